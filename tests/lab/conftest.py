"""The lab tests: a second host made on this machine (tests/lab/lab_host.py). Select them with
`-m lab`; they need root, sshd, sudo and nsenter (bootstrap.sh installs them)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lab_host import lab_host, missing_tools  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: makes a second host on this machine (namespace + sshd)")


@pytest.fixture(autouse=True)
def _runner_artifacts_in_tmp_path(tmp_path, monkeypatch):
    """Failed runs keep ansible-runner's directory: under tmp_path (pruned by pytest), not /tmp."""
    from zcbench import provision

    (tmp_path / "runner").mkdir()
    monkeypatch.setattr(provision.tempfile, "tempdir", str(tmp_path / "runner"))


@pytest.fixture
def lab(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("the lab tests make network namespaces and users: they need root")
    missing = missing_tools()
    if missing:
        pytest.fail(f"the lab needs {', '.join(missing)} (apt-get install openssh-server sudo util-linux)")
    with lab_host(tmp_path) as host:
        yield host
