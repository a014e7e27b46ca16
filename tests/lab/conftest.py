"""The lab tests: a second host made on this machine by zcbench.host.lab (`invoke lab`), its state in
the test's temporary directory. Select them with `-m lab`; they need root, sshd, sudo, nsenter
and dockerd (bootstrap.sh installs them)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from zcbench.host import lab as lab_mod


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: makes a second host on this machine (namespace, sshd, Docker engine)")


@pytest.fixture(autouse=True)
def _runner_artifacts_in_tmp_path(tmp_path, monkeypatch):
    """Failed runs keep ansible-runner's directory: under tmp_path (pruned by pytest), not /tmp."""
    from zcbench.host import provision

    (tmp_path / "runner").mkdir()
    monkeypatch.setattr(provision.tempfile, "tempdir", str(tmp_path / "runner"))


def lab_can_run() -> None:
    try:
        lab_mod.check_can_run(making=True)
    except lab_mod.LabUnavailable as exc:
        pytest.fail(str(exc))


@pytest.fixture
def lab(tmp_path):
    """A lab host whose inventory (the tests' own, not `invoke lab`'s) has it in both groups,
    reached over SSH. Its filesystem is this machine's: tests point every file a role writes
    into tmp_path; what differs per host is the network (net.* sysctls, links)."""
    lab_can_run()
    state_dir = tmp_path / "lab"
    try:
        made = lab_mod.up(state_dir)
        inventory = {"all": {"children": {"server": {"hosts": {"lab": lab_mod.lab_host_vars(made)}},
                                          "loadgen": {"hosts": {"lab": None}}}}}
        yield replace(made, inventory=lab_mod.write_inventory(made, tmp_path / "lab-hosts.yml", inventory))
    finally:
        lab_mod.down(state_dir)  # also after a failed test or a failed up
