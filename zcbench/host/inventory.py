"""The hosts of an inventory: which one serves, which ones generate load, how to reach them.

An inventory (any format Ansible reads: YAML, INI, a directory) names one host in group
`server` and one or more in group `loadgen` (one host may be in both: the default inventory's
localhost). Per-host variables, all optional:

    ansible_host, ansible_user, ansible_port   how SSH reaches the host (Ansible's own)
    ansible_become                              sudo for a non-root ansible_user (Ansible's own;
                                                 the playbook turns it on for any user but root)
    ansible_connection: local                   this machine itself (no SSH; also set
                                                 ansible_python_interpreter: "{{ ansible_playbook_python }}")
    zcbench_server_address                      server host: the address wrk targets [ansible_host;
                                                 127.0.0.1 for this machine: set it when wrk runs elsewhere]
    nic_interface                               the NIC the bench traffic crosses [lo; the bench
                                                 wants it on the server host when wrk runs elsewhere]
    cpu_isolation_server_cpus                   server host: CPUs of the server workers [0]
    cpu_isolation_loadgen_cpus                  loadgen host: CPUs of wrk [1]
    cpu_isolation_housekeeping_cpus             CPUs kept for the kernel and the NIC's IRQs [0]

Defaults come from the roles' defaults/ (never from group_vars next to the inventory), so an
inventory anywhere gets the same ones. The inventory is read with Ansible's own parser.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from zcbench.core.paths import ROOT

PLAYBOOKS = ROOT / "playbooks"
DEFAULT_INVENTORY = PLAYBOOKS / "inventory" / "hosts.yml"
ROLES = ("sysctl", "memlock", "nic", "cpu_isolation", "docker")
GROUPS = ("server", "loadgen")


# Variables Ansible adds to every host: not the inventory's own settings.
_MAGIC_VARS = {"group_names", "groups", "playbook_dir", "ansible_playbook_python", "ansible_config_file",
               "ansible_version", "ansible_facts", "omit"}


class InventoryError(ValueError):
    """An inventory the bench cannot use; the message is one line for the user."""


@dataclass(frozen=True)
class Host:
    name: str
    groups: tuple[str, ...]
    vars: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_control(self) -> bool:
        """This machine, where Ansible runs: it cannot reboot itself mid-play."""
        return self.vars.get("ansible_connection") == "local"

    @property
    def address(self) -> str:
        return str(self.vars.get("ansible_host") or self.name)

    @property
    def ssh_user(self) -> str | None:
        user = self.vars.get("ansible_user")
        return str(user) if user else None

    @property
    def server_address(self) -> str:
        """The address wrk targets on this (server) host."""
        if self.vars.get("zcbench_server_address"):
            return str(self.vars["zcbench_server_address"])
        return "127.0.0.1" if self.is_control else self.address

    def ssh_argv(self, *command: str, options: tuple[str, ...] = ()) -> list[str]:
        """`ssh` running `command` on this host as Ansible reaches it (user, port, key, its
        ssh args), never asking anything: batch mode; `options` go before the host."""
        argv = ["ssh", "-o", "BatchMode=yes", *options]
        argv += shlex.split(str(self.vars.get("ansible_ssh_args") or ""))
        if self.vars.get("ansible_ssh_private_key_file"):
            argv += ["-i", str(self.vars["ansible_ssh_private_key_file"])]
        if self.vars.get("ansible_port"):
            argv += ["-p", str(self.vars["ansible_port"])]
        if self.ssh_user:
            argv += ["-l", self.ssh_user]
        return argv + ["--", self.address, *command]

    @property
    def interface(self) -> str:
        """The NIC the bench traffic crosses on this host (what the nic role tunes)."""
        return str(self.vars.get("nic_interface") or "lo")

    @property
    def docker_url(self) -> str:
        """How the Docker SDK reaches this host's engine (ssh:// runs `docker system dial-stdio` there)."""
        if self.is_control:
            return "unix://" + str(self.vars.get("docker_socket") or "/var/run/docker.sock")
        user = f"{self.ssh_user}@" if self.ssh_user else ""
        port = f":{self.vars['ansible_port']}" if self.vars.get("ansible_port") else ""
        return f"ssh://{user}{self.address}{port}"


@dataclass(frozen=True)
class Inventory:
    path: Path
    server: Host
    loadgens: tuple[Host, ...]

    def path_description(self) -> str:
        """How the bench traffic travels, for the manifest and the report's header."""
        interface = self.server.interface
        if all(host.name == self.server.name for host in self.loadgens):
            return f"one host ({self.server.name}) over {interface}"
        count = {2: "two", 3: "three"}.get(len(self.hosts), str(len(self.hosts)))
        return (f"{count} hosts over {interface}: server on {self.server.name}, wrk on "
                + ", ".join(host.name for host in self.loadgens))

    @property
    def hosts(self) -> tuple[Host, ...]:
        """Every host once, the server first."""
        seen = {self.server.name: self.server}
        for host in self.loadgens:
            seen.setdefault(host.name, host)
        return tuple(seen.values())


def inventory_path(inventory: str | os.PathLike | None) -> Path:
    """The inventory file or directory; an error for a path that does not exist (Ansible would
    take a mistyped path for a host name)."""
    path = Path(inventory) if inventory else DEFAULT_INVENTORY
    if not path.exists():
        raise InventoryError(f"inventory {path} does not exist")
    return path.resolve()


def load_inventory(inventory: str | os.PathLike | None = None) -> Inventory:
    """Parse and check an inventory: exactly one server host, at least one loadgen host."""
    # lazy: Ansible's parser costs 0.27 s to import (measured), and every `invoke --list` imports this module
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    path = inventory_path(inventory)
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[str(path)])
    if not manager.hosts:
        raise InventoryError(f"inventory {path}: Ansible found no hosts in it (not an inventory, or empty)")
    variables = VariableManager(loader=loader, inventory=manager)

    def members(group: str) -> list:
        return manager.groups[group].get_hosts() if group in manager.groups else []

    servers, loadgens = members("server"), members("loadgen")
    if len(servers) != 1:
        found = ", ".join(h.name for h in servers) or "none"
        raise InventoryError(f"inventory {path}: group 'server' must hold exactly one host (found: {found})")
    if not loadgens:
        raise InventoryError(f"inventory {path}: group 'loadgen' has no host; put at least one there "
                             "(the server host itself for a one-host run)")

    def host(ansible_host) -> Host:
        host_vars = variables.get_vars(host=ansible_host, include_hostvars=False)
        groups = tuple(g for g in GROUPS if ansible_host in members(g))
        return Host(ansible_host.name, groups, {k: v for k, v in host_vars.items() if k not in _MAGIC_VARS
                                                and not k.startswith("inventory_")})

    return Inventory(path, host(servers[0]), tuple(host(h) for h in loadgens))


def _is_loopback(address: str) -> bool:
    """An address wrk on another host cannot reach this one by (or that names no host at all)."""
    return address.strip("[]") in ("localhost", "::1", "::", "0.0.0.0") or address.startswith("127.")


def check_reachable(inventory: Inventory) -> None:
    """For a bench: wrk on another host must have an address to target and a NIC to arrive on
    (a server answering on loopback cannot be reached; a bench link left at lo would be tuned and
    recorded wrongly). Provisioning and doctor take such an inventory as it is."""
    server = inventory.server
    remote = [host.name for host in inventory.loadgens if host.name != server.name]
    if not remote:
        return
    if _is_loopback(server.server_address):
        raise InventoryError(f"inventory {inventory.path}: wrk on {', '.join(remote)} cannot reach the server "
                             f"at {server.server_address}; set zcbench_server_address on {server.name} "
                             "to its address on the bench link")
    if server.interface == "lo":
        raise InventoryError(f"inventory {inventory.path}: set nic_interface on {server.name} to the NIC the "
                             f"traffic from {', '.join(remote)} arrives on (two hosts do not meet over lo)")


# --- what the playbook sets on a host (for `invoke doctor` and the host facts) -----------------


def role_defaults(role: str) -> dict:
    return yaml.safe_load((PLAYBOOKS / "roles" / role / "defaults" / "main.yml").read_text()) or {}


def all_role_defaults() -> dict:
    merged: dict = {}
    for role in ROLES:
        merged.update(role_defaults(role))
    return merged


def _resolve(value, merged: dict):
    """A plain `{{ name }}` or `{{ name | filter }}` reference replaced by name's value."""
    match = re.fullmatch(r"\{\{\s*(\w+)\s*(\|[^}]*)?\}\}", value) if isinstance(value, str) else None
    return merged[match.group(1)] if match and match.group(1) in merged else value


def desired_settings(host: Host | None = None) -> dict:
    """Role defaults overridden by the host's inventory variables (the default inventory's
    server host when none is given). A host outside a group gets none of that group's CPUs,
    as in the cpu_isolation role. Only plain `{{ name }}` references are resolved."""
    host = host or load_inventory().server
    merged = all_role_defaults()
    merged.update({k: v for k, v in host.vars.items() if not k.startswith("ansible_")})
    for group in GROUPS:
        if group not in host.groups:
            merged[f"cpu_isolation_{group}_cpus"] = ""
    return {key: _resolve(value, merged) for key, value in merged.items()}
