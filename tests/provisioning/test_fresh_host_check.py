"""`invoke provision --check` on a host without the Docker engine or ethtool: it succeeds and says
what a real run would do (check mode installs nothing, so the later steps must not need it)."""

from __future__ import annotations

import pytest
from provisioning_helpers import task_named

from zcbench.host import provision

pytestmark = pytest.mark.provisioning


def test_check_mode_succeeds_without_docker_and_without_ethtool(tmp_path):
    daemon_json = tmp_path / "etc" / "docker" / "daemon.json"
    fresh = {  # what this host would look like before its first provisioning
        "docker_dockerd": str(tmp_path / "no-such-dockerd"),
        "docker_daemon_json": str(daemon_json),
        "nic_ethtool": str(tmp_path / "no-such-ethtool"),
        "nic_features": {"generic-receive-offload": "on"},
        "docker_originals_dir": str(tmp_path / "originals"),
        "nic_originals_dir": str(tmp_path / "originals"),
        "cpu_isolation_originals_dir": str(tmp_path / "originals"),
    }
    result = provision.run_playbook(check=True, extravars=fresh)
    assert result.ok, [(t.task, t.message) for t in result.failures] or result.error
    assert "not installed yet" in task_named(result, "Report that the engine would be started once installed").message
    nic = task_named(result, "Apply or revert the NIC settings")
    assert nic.status == "changed"
    assert not any(t.task.endswith("Start dockerd in the background (systemd is not PID 1)") and t.status != "skipped"
                   for t in result.tasks)
    assert not daemon_json.exists() and not (tmp_path / "originals").exists()  # check mode wrote nothing
