"""Another host's facts, by the same collectors as this one's: host.facts' own source, with
what it reads from zcbench here (the sysctl role's names, the nic role's ethtool parsers) shipped
inside it, run by that host's python3 over SSH. facts.py imports only the standard library at
its top for this reason.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from zcbench.host import facts
from zcbench.host.inventory import PLAYBOOKS, role_defaults


def remote_facts_script(interface: str) -> str:
    """A standalone script for another host's python3: host.facts' collectors, with what they
    read from zcbench here (the sysctl role's names, the nic role's ethtool parsers) shipped
    inside it; it prints one JSON line."""
    module = Path(facts.__file__).read_text().split('\nif __name__ == "__main__":')[0]
    parsers = (PLAYBOOKS / "module_utils" / "zcbench_ethtool_text.py").read_text()
    names = tuple(role_defaults("sysctl")["sysctl_settings"])
    return module + f"""
import types as _types
_parsers = _types.ModuleType("zcbench_ethtool_text")
exec(compile({parsers!r}, "zcbench_ethtool_text.py", "exec"), _parsers.__dict__)
_ethtool_text = lambda: _parsers
_collect_sysctls = collect_sysctls
collect_sysctls = lambda names={names!r}: _collect_sysctls(names)
print(json.dumps(collect_host_facts({interface!r})))
"""


def collect_host_facts_over_ssh(host, interface: str, timeout: float = 60) -> dict:
    """The same collectors on another host (a zcbench.host.inventory.Host): host.facts' source run by
    that host's python3 over SSH (it imports only the standard library at the top; the facts
    needing zcbench itself come back null with their reason). An unreachable host gives a dict
    with only "errors"."""
    source = remote_facts_script(interface)
    try:
        done = subprocess.run(host.ssh_argv("python3", "-"), input=source, capture_output=True,
                              text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"errors": {"ssh": f"{type(exc).__name__}: {exc}"}}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"errors": {"ssh": (done.stderr.strip() or f"exit {done.returncode}")[-300:]}}
    return json.loads(lines[-1])
