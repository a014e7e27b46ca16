"""zcbench.host.inventory: reading an inventory from anywhere, its checks, and the defaults a host gets."""

from __future__ import annotations

import pytest
import yaml

from zcbench.host import inventory as hosts
from zcbench.host import provision

pytestmark = pytest.mark.provisioning

EXAMPLE = hosts.PLAYBOOKS / "inventory" / "two-hosts.example.yml"


def write(tmp_path, inventory: dict, name: str = "hosts.yml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(inventory))
    return path


def test_the_example_inventory_names_one_server_and_its_settings():
    inventory = hosts.load_inventory(EXAMPLE)
    assert inventory.server.name == "server1" and inventory.server.groups == ("server",)
    assert [h.name for h in inventory.loadgens] == ["loadgen1"]
    assert inventory.server.server_address == "10.0.0.1"
    assert inventory.server.docker_url == "ssh://bench@192.0.2.10"
    assert not inventory.server.is_control


def test_an_inventory_elsewhere_gets_the_role_defaults_per_group(tmp_path):
    # no group_vars beside this file: every default must come from the roles
    path = write(tmp_path, {"all": {"children": {
        "server": {"hosts": {"s": {"ansible_host": "10.1.1.1"}}},
        "loadgen": {"hosts": {"l": {"ansible_host": "10.1.1.2", "cpu_isolation_loadgen_cpus": "3"}}}}}})
    inventory = hosts.load_inventory(path)
    server = hosts.desired_settings(inventory.server)
    loadgen = hosts.desired_settings(inventory.loadgens[0])
    assert (server["cpu_isolation_server_cpus"], server["cpu_isolation_loadgen_cpus"]) == ("0", "")
    assert (loadgen["cpu_isolation_server_cpus"], loadgen["cpu_isolation_loadgen_cpus"]) == ("", "3")
    assert server["nic_interface"] == "lo" and server["cpu_isolation_housekeeping_cpus"] == "0"
    assert server["docker_memlock_bytes"] == server["memlock_limit_bytes"]  # resolved reference
    assert "net.core.somaxconn" in server["sysctl_settings"]


def test_the_default_inventory_is_this_machine_in_both_groups():
    inventory = hosts.load_inventory(None)
    assert inventory.server.is_control and inventory.server.groups == ("server", "loadgen")
    assert inventory.hosts == (inventory.server,)
    desired = hosts.desired_settings()
    assert (desired["cpu_isolation_server_cpus"], desired["cpu_isolation_loadgen_cpus"]) == ("0", "1")


def test_the_bench_pins_where_the_role_isolates():
    from zcbench.measure import config

    defaults = hosts.role_defaults("cpu_isolation")
    for group in hosts.GROUPS:
        assert config.provisioned_cpus(group) == str(defaults[f"cpu_isolation_{group}_cpus"])


@pytest.mark.parametrize(("inventory", "message"), [
    ({"all": {"hosts": {"h1": {}}}}, "group 'server' must hold exactly one host (found: none)"),
    ({"all": {"children": {"server": {"hosts": {"a": {}, "b": {}}}, "loadgen": {"hosts": {"a": {}}}}}},
     "group 'server' must hold exactly one host (found: a, b)"),
    ({"all": {"children": {"server": {"hosts": {"a": {}}}}}}, "group 'loadgen' has no host"),
])
def test_an_inventory_without_the_groups_is_refused_with_one_line(tmp_path, inventory, message):
    with pytest.raises(hosts.InventoryError) as error:
        hosts.load_inventory(write(tmp_path, inventory))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_file_that_is_no_inventory_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("{{ this is not [ an inventory\n")
    with pytest.raises(hosts.InventoryError, match="found no hosts|group 'server'"):
        hosts.load_inventory(path)


def test_provision_refuses_before_running_ansible(tmp_path):
    path = write(tmp_path, {"all": {"hosts": {"h1": {}}}})
    with pytest.raises(provision.ProvisionError, match="group 'server'"):
        provision.run_playbook(inventory=path)


def test_the_bench_ports_are_kept_out_of_the_ephemeral_range():
    """The sysctl role widens the source-port range to 1024-65535 and reserves the bench's own
    ports (one server per arm and size, from 8088 on), or a client's TIME_WAIT on one of them
    would keep a server from binding it."""
    from zcbench.measure import config

    reserved = str(hosts.role_defaults("sysctl")["sysctl_settings"]["net.ipv4.ip_local_reserved_ports"])
    ports: set[int] = set()
    for part in reserved.split(","):
        first, _, last = part.partition("-")
        ports.update(range(int(first), int(last or first) + 1))
    assert set(range(config.DEFAULT_PORT, config.DEFAULT_PORT + config.RESERVED_PORTS)) <= ports
