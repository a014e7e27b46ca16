"""The nic role for real: ethtool against a veth pair in a network namespace made here."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from provisioning_helpers import changed_tasks, task_named

pytestmark = pytest.mark.provisioning

APPLY_TASK = "nic : Apply or revert the NIC settings"


@pytest.fixture
def veth():
    """(netns, interface): a veth pair inside a private namespace, deleted afterwards."""
    netns = f"zcbtest-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "-n", netns, "link", "add", "zcbva", "type", "veth", "peer", "name", "zcbvb"], check=True)
        yield netns, "zcbva"
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)


def ethtool(netns: str, *args: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, "ethtool", *args], check=True,
                          capture_output=True, text=True).stdout


def feature(netns: str, interface: str, name: str) -> str:
    for line in ethtool(netns, "-k", interface).splitlines():
        if line.strip().startswith(name + ":"):
            return line.split(":", 1)[1].split()[0]
    raise AssertionError(f"{name} not in ethtool -k output")


def rx_channels(netns: str, interface: str) -> str:
    current = ethtool(netns, "-l", interface).split("Current hardware settings:")[1]
    return next(line.split()[1] for line in current.splitlines() if line.startswith("RX:"))


def nic_play(netns: str, interface: str, tmp_path, state: str = "present") -> dict:
    return {
        "name": "nic role against a veth",
        "hosts": "localhost",
        "gather_facts": False,
        "roles": [{
            "role": "nic",
            "vars": {
                "nic_state": state,
                "nic_interface": interface,
                "nic_netns": netns,
                "nic_install_ethtool": False,
                "nic_originals_dir": str(tmp_path / "originals"),
                "nic_features": {"generic-receive-offload": "on", "tcp-segmentation-offload": "off",
                                 "loopback": "on"},  # loopback is [fixed] off on a veth
                "nic_channels": {"rx": 2},
                "nic_coalesce": {"rx-usecs": 10},  # veth has no coalescing
            },
        }],
    }


def test_nic_role_changes_then_is_idempotent_then_reverts(veth, tmp_path, run_play):
    netns, interface = veth
    assert feature(netns, interface, "generic-receive-offload") == "off"
    assert feature(netns, interface, "tcp-segmentation-offload") == "on"
    assert rx_channels(netns, interface) == "1"

    first = run_play(nic_play(netns, interface, tmp_path))
    assert first.ok, [t for t in first.failures]
    assert task_named(first, APPLY_TASK).status == "changed"
    assert feature(netns, interface, "generic-receive-offload") == "on"
    assert feature(netns, interface, "tcp-segmentation-offload") == "off"
    assert rx_channels(netns, interface) == "2"
    refused = [t.message for t in first.tasks if t.task.endswith("did not take")]
    assert any("features.loopback not applied: fixed at off" in m for m in refused), refused
    assert any("coalesce.rx-usecs not applied" in m for m in refused), refused

    second = run_play(nic_play(netns, interface, tmp_path))
    assert second.ok
    assert task_named(second, APPLY_TASK).status == "ok"
    assert second.changed == 0, changed_tasks(second)

    reverted = run_play(nic_play(netns, interface, tmp_path, state="absent"))
    assert reverted.ok
    assert task_named(reverted, APPLY_TASK).status == "changed"
    assert feature(netns, interface, "generic-receive-offload") == "off"
    assert feature(netns, interface, "tcp-segmentation-offload") == "on"
    assert rx_channels(netns, interface) == "1"
    assert not (tmp_path / "originals" / f"nic-{netns}-{interface}.json").exists()


def test_nic_role_fails_clearly_for_a_missing_interface(veth, tmp_path, run_play):
    netns, _ = veth
    result = run_play(nic_play(netns, "zcbnone", tmp_path))
    assert not result.ok
    failure = result.failures[0]
    assert failure.task == APPLY_TASK
    assert "interface zcbnone does not exist" in failure.message
