"""`invoke doctor`: what provisioning wants against what the host has, as one table.

Desired values come from the playbook's own variables (role defaults + the inventory's host
vars, zcbench.host.inventory.desired_settings), actual ones from zcbench.host.facts. A row is `ok`,
`differs` (a tunable is off: results are noisier, the bench still runs), `n/a` (the host has
no such knob: no GRUB, no cpufreq, no irqbalance), `info`, or `MISSING` (the bench cannot run:
no Docker engine, io_uring unusable, no SEND_ZC). Any MISSING row makes the exit code 1.

`invoke doctor --json` prints the same rows and verdicts as one JSON object instead
(zcbench/schemas/doctor.schema.json): one entry per host, and the exit code.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from functools import lru_cache

from rich.console import Console
from rich.table import Table

from zcbench.core import fmt
from zcbench.core.rundir import json_text
from zcbench.host.engines import EngineUnreachable, host_client
from zcbench.host.facts import collect_host_facts, engine_version
from zcbench.host.inventory import desired_settings
from zcbench.host.provision import load_playbook_code
from zcbench.host.remote_facts import collect_host_facts_over_ssh

OK, DIFFERS, NA, INFO, MISSING = "ok", "differs", "n/a", "info", "MISSING"
#: The version of `invoke doctor --json`'s object (its JSON Schema: doctor.schema.json).
DOCTOR_SCHEMA = 1
_STYLE = {OK: "green", DIFFERS: "yellow", NA: "dim", INFO: "cyan", MISSING: "bold red"}


@dataclass(frozen=True)
class Row:
    area: str
    setting: str
    desired: str
    actual: str
    status: str
    note: str = ""


@lru_cache(maxsize=1)
def _cpuset_module():
    """The cpu_isolation role's own CPU-list logic, so doctor and the role never disagree."""
    return load_playbook_code("roles/cpu_isolation/library/zcbench_cpuset.py")


@lru_cache(maxsize=1)
def _kernel_cmdline_module():
    """The cpu_isolation role's own reboot decision, so doctor and provisioning never disagree."""
    return load_playbook_code("roles/cpu_isolation/library/zcbench_kernel_cmdline.py")


# Settings the kernel forgets at every reboot: `invoke provision` writes them again each run.
RUNTIME_NOTE = "runtime only: lost at reboot, `invoke provision` re-applies it"


def _show(value) -> str:
    if value is None:
        return "—"
    if value == "":
        return "(none)"
    return str(value)


def _compare(desired, actual) -> str:
    return OK if " ".join(str(desired).split()) == " ".join(str(actual).split()) else DIFFERS


def _limit_text(value) -> str:
    return "unlimited" if value in (None, -1, "unlimited") else str(value)


def _wanted_isolation(desired: dict) -> tuple[str, list[str]]:
    """The isolated CPU list and the kernel parameters the cpu_isolation role would set."""
    cpuset = _cpuset_module()
    workload = set(cpuset.parse_cpulist(desired.get("cpu_isolation_server_cpus", ""))) | set(
        cpuset.parse_cpulist(desired.get("cpu_isolation_loadgen_cpus", "")))
    housekeeping = set(cpuset.parse_cpulist(desired.get("cpu_isolation_housekeeping_cpus", "0")))
    isolated, _, params = cpuset.isolation_params(workload, housekeeping)
    return isolated, params


def reboot_rows(facts: dict, desired: dict, own_grub_params: set[str] | None = None) -> list[Row]:
    """Whether the running kernel's command line is what provisioning wants (GRUB hosts only).

    own_grub_params: parameters the host's own GRUB configuration sets (never counted as
    stale); read from /etc/default/grub when not given."""
    if not facts.get("grub_installed"):
        return [Row("cpu", "reboot required", "no", "—", NA, "no GRUB: the kernel command line is not managed")]
    module = _kernel_cmdline_module()
    if own_grub_params is None:
        dropin = desired.get("cpu_isolation_grub_dropin", "etc/default/grub.d/60-zcbench-cpu-isolation.cfg")
        own_grub_params = module.own_grub_words("/etc/default/grub", "/" + dropin)
    _, params = _wanted_isolation(desired)
    managed = ["isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity"]
    decision = module.decide(params, str(facts.get("kernel_cmdline") or "").split(), managed, own_grub_params)
    if decision["reboot_required"]:
        return [Row("cpu", "reboot required", "no", "yes", DIFFERS, decision["reason"])]
    return [Row("cpu", "reboot required", "no", "no", OK)]


def isolation_rows(facts: dict, desired: dict) -> list[Row]:
    isolated, params = _wanted_isolation(desired)
    managed = bool(facts.get("grub_installed"))
    on_cmdline = facts.get("cmdline_isolation") or {}
    rows = []
    for param in params:
        name, _, value = param.partition("=")
        actual = on_cmdline.get(name)
        status = _compare(value, actual) if managed or actual else NA
        note = "" if managed else "no GRUB: not managed"
        rows.append(Row("cpu", f"cmdline {name}", value, _show(actual), status, note))
    actual_isolated = facts.get("isolated_cpus")
    status = _compare(isolated, actual_isolated) if managed or actual_isolated else NA
    rows.append(Row("cpu", "isolated CPUs (sysfs)", _show(isolated), _show(actual_isolated), status))
    return rows


def governor_rows(facts: dict, desired: dict) -> list[Row]:
    wanted = desired.get("cpu_isolation_governor", "performance")
    governors = facts.get("governors")
    if not governors:
        reason = (facts.get("errors") or {}).get("governors", "unknown")
        return [Row("cpu", "cpufreq governor", wanted, "—", NA, reason)]
    return [Row("cpu", f"governor {policy}", wanted, g, _compare(wanted, g), RUNTIME_NOTE)
            for policy, g in governors.items()]


def irqbalance_rows(facts: dict, desired: dict) -> list[Row]:
    irqbalance = facts.get("irqbalance") or {}
    mode = desired.get("cpu_isolation_irqbalance", "ban")
    if not irqbalance.get("installed"):
        return [Row("cpu", "irqbalance", mode, "not installed", NA)]
    if mode == "stop":
        actual = "running" if irqbalance.get("running") else "stopped"
        return [Row("cpu", "irqbalance", "stopped", actual, _compare("stopped", actual))]
    return [Row("cpu", "irqbalance banned CPUs", mode, _show(irqbalance.get("banned_cpus")), INFO)]


def limit_rows(facts: dict, desired: dict) -> list[Row]:
    memlock = _limit_text(desired.get("memlock_limit_bytes"))
    nofile = str(desired.get("memlock_nofile"))
    ulimits = facts.get("docker_default_ulimits") or {}
    rows = []
    for name, wanted, fact in (("memlock", memlock, "memlock_limit"), ("nofile", nofile, "nofile_limit")):
        limit = facts.get(fact)
        actual_text = _limit_text(limit["soft"]) if limit else "—"
        rows.append(Row("limits", f"{name} (this shell)", wanted, actual_text, _compare(wanted, actual_text),
                        "limits.d applies to new login sessions"))
        container = ulimits.get(name, {}).get("soft")
        container_text = _limit_text(container) if name in ulimits else "daemon default"
        capped = limit and container is not None and container == limit["hard"] and container_text != wanted
        rows.append(Row("limits", f"{name} (containers, daemon.json)", wanted, container_text,
                        _compare(wanted, container_text),
                        "capped at the hard limit the engine inherits" if capped else ""))
    return rows


def sysctl_rows(facts: dict, desired: dict) -> list[Row]:
    actual = facts.get("sysctls") or {}
    return [
        Row("sysctl", name, str(value), _show(actual.get(name)), _compare(value, actual.get(name)))
        for name, value in (desired.get("sysctl_settings") or {}).items()
    ]


def nic_rows(facts: dict, desired: dict) -> list[Row]:
    interface = facts.get("interface")
    wanted_name = desired.get("nic_interface", "lo")
    if interface is None:
        reason = (facts.get("errors") or {}).get("interface", "not found")
        return [Row("nic", "interface", wanted_name, "—", DIFFERS, reason)]
    rows = [Row("nic", "interface", wanted_name, f"{interface['name']} ({_show(interface.get('driver'))})",
                _compare(wanted_name, interface["name"]))]
    for kind in ("features", "coalesce", "ring", "channels"):
        current = interface.get(kind) or {}
        for key, value in (desired.get(f"nic_{kind}") or {}).items():
            wanted = ("on" if value else "off") if isinstance(value, bool) else str(value)
            actual = current.get(key)
            actual_value = actual.split()[0] if isinstance(actual, str) else actual
            rows.append(Row("nic", f"{kind} {key}", wanted, _show(actual), _compare(wanted, actual_value),
                            RUNTIME_NOTE))
    if not any(desired.get(f"nic_{kind}") for kind in ("features", "coalesce", "ring", "channels")):
        rows.append(Row("nic", "ethtool settings", "(none configured)", "—", NA))
    housekeeping = _cpuset_module().format_cpulist(
        _cpuset_module().parse_cpulist(desired.get("cpu_isolation_housekeeping_cpus", "0")))
    for irq, affinity in (interface.get("irq_affinity") or {}).items():
        rows.append(Row("nic", f"IRQ {irq} affinity", housekeeping, _show(affinity), _compare(housekeeping, affinity),
                        RUNTIME_NOTE))
    return rows


def docker_rows(facts: dict) -> list[Row]:
    docker = facts.get("docker")
    if not docker:
        reason = (facts.get("errors") or {}).get("docker", "not reachable")
        return [Row("docker", "engine", "reachable", "—", MISSING, reason)]
    return [Row("docker", "engine", "reachable", f"{docker.get('version')} (API {docker.get('api_version')})", OK)]


def io_uring_rows(facts: dict) -> list[Row]:
    probe = facts.get("io_uring") or {}
    disabled = facts.get("io_uring_disabled")
    rows = [Row("io_uring", "kernel.io_uring_disabled", "0", _show(disabled),
                OK if disabled in (0, None) else MISSING if disabled == 2 else DIFFERS)]
    if probe.get("not_probed"):
        return rows + [Row("io_uring", "usable", "yes", "—", INFO, probe["not_probed"])]
    if probe.get("usable") is not True:
        rows.append(Row("io_uring", "usable", "yes", "no", MISSING, _show(probe.get("error"))))
        return rows
    rows.append(Row("io_uring", "usable", "yes", "yes", OK))
    rows.append(Row("io_uring", "SEND_ZC opcode", "supported", "yes" if probe.get("send_zc") else "no",
                    OK if probe.get("send_zc") else MISSING))
    for mode, support in (probe.get("modes") or {}).items():
        # a mode the kernel lacks is skipped by the bench, never an error: reported, not missing
        rows.append(Row("io_uring", f"send mode {mode}", "supported", "yes" if support["supported"] else "no",
                        OK if support["supported"] else INFO, support["unsupported"] or ""))
    for flag, accepted in (probe.get("setup_flags") or {}).items():
        rows.append(Row("io_uring", f"setup {flag}", "accepted", "yes" if accepted else "no",
                        OK if accepted else DIFFERS, "" if accepted else "the server runs without it"))
    charged = probe.get("zc_charged_to_memlock")
    charged_text = {True: "yes", False: "no"}.get(charged, "—")
    rows.append(Row("io_uring", "ZC sends charged to memlock", "—", charged_text, INFO,
                    "CAP_IPC_LOCK held" if charged is False else "memlock bounds in-flight ZC sends"))
    return rows


def doctor_rows(facts: dict, desired: dict, groups=("server", "loadgen")) -> list[Row]:
    """Every row for a host; io_uring only where the server runs (wrk does not use it)."""
    return [
        *docker_rows(facts),
        *(io_uring_rows(facts) if "server" in groups else []),
        *isolation_rows(facts, desired),
        *reboot_rows(facts, desired),
        *governor_rows(facts, desired),
        *irqbalance_rows(facts, desired),
        *limit_rows(facts, desired),
        *sysctl_rows(facts, desired),
        *nic_rows(facts, desired),
    ]


COLUMNS = ("area", "setting", "desired", "actual", "status", "note")
TITLE = "zcbench doctor: desired vs actual"


def render(rows: list[Row], console: Console) -> None:
    """A coloured table on a terminal; plain Markdown otherwise (piped, captured, CI logs),
    where a terminal-width table would fold its cells into one word per line."""
    if not console.is_terminal:
        lines = [f"# {TITLE}", "", *fmt.markdown_table(
            list(COLUMNS), [[r.area, r.setting, r.desired, r.actual, r.status, r.note] for r in rows]), ""]
        for line in lines:
            _plain(console, line)
        return
    table = Table(title=TITLE)
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.area, row.setting, row.desired, row.actual,
                      f"[{_STYLE[row.status]}]{row.status}[/]", row.note)
    console.print(table)


def _plain(console: Console, line: str) -> None:
    """One line as is: no markup, no highlighting, never wrapped."""
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def exit_code(rows: list[Row]) -> int:
    return 1 if any(row.status == MISSING for row in rows) else 0


def _rows_for(facts: dict | None, desired: dict | None, groups) -> list[Row]:
    """Every row of a host, collecting what was not given (this machine's facts)."""
    desired = desired if desired is not None else desired_settings()
    facts = facts if facts is not None else collect_host_facts(desired.get("nic_interface"))
    return doctor_rows(facts, desired, groups)


def run(facts: dict | None = None, desired: dict | None = None, console: Console | None = None,
        groups=("server", "loadgen"), where: str = "here") -> int:
    """Collect (unless given), print the table and a verdict line; the exit code."""
    console = console or Console()
    rows = _rows_for(facts, desired, groups)
    render(rows, console)
    entry = host_entry(rows, where, groups)
    if entry["missing"]:
        _plain(console, f"doctor: the bench cannot run {where}: missing {', '.join(entry['missing'])}")
    else:
        differs = entry["differs"]
        _plain(console, f"doctor: ready to bench {where}; {differs} tunable(s) differ from what provisioning sets"
                      + (" (see the notes; `invoke provision` sets what this host allows)" if differs else ""))
    return exit_code(rows)


def host_entry(rows: list[Row], where: str, groups) -> dict:
    """One host's rows and verdict (the table's verdict line, and `--json`'s entry)."""
    missing = [f"{row.area} {row.setting}" for row in rows if row.status == MISSING]
    return {"where": where, "groups": list(groups), "ready": not missing, "missing": missing,
            "differs": sum(row.status == DIFFERS for row in rows), "rows": [asdict(row) for row in rows]}


def write_json_report(entries: list[dict], out=None) -> int:
    """`--json`'s object for these hosts on `out` (stdout); its exit code."""
    report = {"schema": DOCTOR_SCHEMA, "hosts": entries,
              "exit_code": 0 if all(entry["ready"] for entry in entries) else 1}
    (out or sys.stdout).write(json_text(report))
    return report["exit_code"]


def run_json(facts: dict | None = None, desired: dict | None = None, groups=("server", "loadgen"),
             where: str = "here", out=None) -> int:
    """`invoke doctor --json` for this machine: the JSON object on `out`; the exit code."""
    return write_json_report([host_entry(_rows_for(facts, desired, groups), where, groups)], out)


def remote_facts(host) -> dict:
    """A remote host's facts over SSH; its engine as the bench reaches it (the Docker SDK over
    SSH), not as a Python there without the SDK would."""
    facts = collect_host_facts_over_ssh(host, host.interface)
    facts.setdefault("errors", {}).pop("docker", None)
    if "ssh" not in facts["errors"]:
        # the cffi probe needs zcbench there; the bench's first server container is the probe
        facts["errors"].pop("io_uring", None)
        facts["io_uring"] = {"not_probed": "not probed over SSH: the bench's server container shows it"}
    try:
        client = host_client(host, timeout=30)
        try:
            facts["docker"] = engine_version(client)
        finally:
            client.close()
    except EngineUnreachable as exc:
        facts["docker"] = None
        facts["errors"]["docker"] = str(exc)
    return facts


def _facts_of(host, desired: dict, facts_of) -> dict:
    if facts_of is not None:
        return facts_of(host)
    if host.is_control:
        return collect_host_facts(desired.get("nic_interface"))
    return remote_facts(host)


def run_inventory(inventory, console: Console | None = None, facts_of=None, as_json: bool = False,
                  out=None) -> int:
    """Every host of an inventory, each against what the playbook wants on it; the worst exit.
    as_json: one JSON object for all of them on `out` (stdout) instead of the tables."""
    console = console or Console()
    worst, entries = 0, []
    for host in inventory.hosts:
        desired = desired_settings(host)
        facts = _facts_of(host, desired, facts_of)
        if as_json:
            entries.append(host_entry(doctor_rows(facts, desired, host.groups), host.name, host.groups))
            continue
        _plain(console, f"## {host.name} ({', '.join(host.groups)}; "
                        + ("this machine" if host.is_control else f"over SSH: {host.address}") + ")")
        worst = max(worst, run(facts, desired, console, groups=host.groups, where=f"on {host.name}"))
        _plain(console, "")
    return write_json_report(entries, out) if as_json else worst
