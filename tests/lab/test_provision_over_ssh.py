"""Provisioning a host over real SSH as a non-root user (become), with an inventory outside
playbooks/inventory. The lab host shares this machine's files, so every file a role writes is
sent to a temporary directory; its net.* sysctls are its own (they live in its namespace)."""

from __future__ import annotations

import pytest

from zcbench.host import inventory as hosts
from zcbench.host import provision

pytestmark = pytest.mark.lab

SOMAXCONN = "/proc/sys/net/core/somaxconn"


def per_namespace_sysctls() -> dict:
    """The role's sysctls a network namespace has of its own (netdev_max_backlog and optmem_max
    exist in the initial namespace only)."""
    return {k: v for k, v in provision.role_defaults("sysctl")["sysctl_settings"].items()
            if k.startswith(("net.ipv4.", "net.core.somaxconn"))}


def read_here(path: str) -> str:
    with open(path) as handle:
        return handle.read().strip()


def test_sysctls_over_ssh_with_become_then_idempotent_then_reverted(lab, tmp_path):
    inventory = hosts.load_inventory(lab.inventory)
    assert inventory.server.docker_url == f"ssh://{lab.user}@{lab.address}"
    before_lab, before_here = lab.run("cat", SOMAXCONN).strip(), read_here(SOMAXCONN)
    wanted = str(provision.role_defaults("sysctl")["sysctl_settings"]["net.core.somaxconn"])
    assert before_lab != wanted, "a fresh namespace should start from the kernel's default"
    files = {"sysctl_file": str(tmp_path / "sysctl.d" / "60-zcbench.conf"),
             "sysctl_originals_dir": str(tmp_path / "originals"), "sysctl_settings": per_namespace_sysctls()}
    (tmp_path / "sysctl.d").mkdir()

    first = provision.run_playbook(inventory=lab.inventory, tags=["sysctl"], extravars=files)
    assert first.ok, [(t.task, t.message) for t in first.failures] or first.error
    assert {t.host for t in first.tasks} == {"lab"}
    assert first.changed > 0
    assert lab.run("cat", SOMAXCONN).strip() == wanted
    assert read_here(SOMAXCONN) == before_here  # this machine's namespace untouched
    # written through sudo: the file belongs to root, not to the login user
    assert (tmp_path / "sysctl.d" / "60-zcbench.conf").stat().st_uid == 0

    second = provision.run_playbook(inventory=lab.inventory, tags=["sysctl"], extravars=files)
    assert second.ok and second.changed == 0, [t.task for t in second.tasks if t.status == "changed"]

    reverted = provision.run_playbook(inventory=lab.inventory, tags=["sysctl"], extravars=files, revert=True)
    assert reverted.ok, reverted.failures
    assert lab.run("cat", SOMAXCONN).strip() == before_lab
    assert not (tmp_path / "sysctl.d" / "60-zcbench.conf").exists()


def test_the_whole_playbook_in_check_mode_over_ssh_with_become(lab, tmp_path):
    # check mode writes nothing, so the shared files of this machine are safe
    result = provision.run_playbook(inventory=lab.inventory, check=True,
                                    extravars={"nic_interface": lab.veth, "nic_install_ethtool": False,
                                               "sysctl_settings": per_namespace_sysctls()})
    assert result.ok, [(t.task, t.message) for t in result.failures] or result.error
    ran = {t.task.split(" : ")[0] for t in result.tasks if t.host == "lab" and " : " in t.task}
    assert ran == set(hosts.ROLES)
    assert {t.host for t in result.tasks} == {"lab"}


def test_two_hosts_each_isolate_the_cpus_of_their_own_group(lab, tmp_path):
    import yaml

    lab_entry = yaml.safe_load(lab.inventory.read_text())["all"]["children"]["server"]["hosts"]["lab"]
    inventory = tmp_path / "two-hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "vars": {"cpu_isolation_server_cpus": "1", "cpu_isolation_loadgen_cpus": "0",
                 "cpu_isolation_housekeeping_cpus": "0"},
        "children": {"server": {"hosts": {"lab": lab_entry}},
                     "loadgen": {"hosts": {"localhost": {
                         "ansible_connection": "local",
                         "ansible_python_interpreter": "{{ ansible_playbook_python }}"}}}}}}))
    for host in ("lab", "localhost"):  # a GRUB root per host: they share this machine's files
        (tmp_path / host / "etc" / "default").mkdir(parents=True)
        (tmp_path / host / "etc" / "default" / "grub").write_text('GRUB_CMDLINE_LINUX=""\n')
    result = provision.run_playbook(inventory=inventory, tags=["cpu_isolation"], extravars={
        "cpu_isolation_root": str(tmp_path) + "/{{ inventory_hostname }}",
        "cpu_isolation_originals_dir": str(tmp_path) + "/originals-{{ inventory_hostname }}"})
    assert result.ok, [(t.task, t.message) for t in result.failures] or result.error
    dropin = "etc/default/grub.d/60-zcbench-cpu-isolation.cfg"
    # the server host isolates the server's CPU 1; the loadgen host's CPU 0 is housekeeping
    assert "isolcpus=managed_irq,domain,1 " in (tmp_path / "lab" / dropin).read_text()
    assert "isolcpus" not in (tmp_path / "localhost" / dropin).read_text()
    assert set(result.reboot_reasons) == {"lab"}
