"""Helpers for the provisioning tests: run a small playbook through zcbench.host.provision."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from zcbench.host import provision


@pytest.fixture
def run_play(tmp_path: Path):
    """Write one play (a dict) to a playbook under tmp_path and run it with ansible-runner."""

    def run(play: dict, **kwargs) -> provision.ProvisionResult:
        playbook = tmp_path / "play.yml"
        playbook.write_text(yaml.safe_dump([play], sort_keys=False))
        return provision.run_playbook(playbook=playbook, **kwargs)

    return run


@pytest.fixture(autouse=True)
def _needs_root():
    if os.geteuid() != 0:
        pytest.fail("the provisioning tests run Ansible against this host and need root")


@pytest.fixture(autouse=True)
def _runner_artifacts_in_tmp_path(tmp_path, monkeypatch):
    """A failed run keeps ansible-runner's directory (for the user to read): in the tests it goes
    under tmp_path, which pytest prunes, not into /tmp."""
    artifacts = tmp_path / "runner"
    artifacts.mkdir()
    monkeypatch.setattr(provision.tempfile, "tempdir", str(artifacts))


@pytest.fixture
def grub_root(tmp_path):
    """A root with a GRUB defaults file holding an empty GRUB_CMDLINE_LINUX."""
    root = tmp_path / "root"
    (root / "etc/default").mkdir(parents=True)
    (root / "etc/default/grub").write_text('GRUB_CMDLINE_LINUX=""\n')
    return root
