"""The report's environment section: what the manifest recorded about the run's hosts, as
rows of a table (both report.md and report.html show them).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from zcbench.core import fmt
from zcbench.core.fmt import markdown_table
from zcbench.core.rundir import MANIFEST, manifest_fact

GIB = 1024 ** 3
def _host(manifest: dict) -> dict:
    return manifest.get("host") or {}


def _container_mode(manifest: dict) -> str:
    mode = manifest_fact(manifest, "privilege.mode")
    return "caps+unconfined-seccomp" if mode == "fallback" else mode or fmt.UNKNOWN


def _path_kind(manifest: dict) -> str:
    """'loopback', 'veth', or for a run across hosts how it went ('two hosts over eth1: ...')."""
    kind = manifest_fact(manifest, "path.kind", "config.path") or fmt.UNKNOWN
    return manifest_fact(manifest, "path.note") if kind == "hosts" else kind


ENVIRONMENT_CELL_MAX = 240  # characters; the full value is in manifest.json


def _compact(value) -> str:
    """A manifest value on one table line."""
    if value in (None, "", {}, []):
        return fmt.UNKNOWN
    if isinstance(value, (dict, list)):
        text = json.dumps(value, sort_keys=True, separators=(", ", ": "))
    else:
        text = str(value)
    if len(text) > ENVIRONMENT_CELL_MAX:
        text = text[: ENVIRONMENT_CELL_MAX - 25] + " … (see manifest.json)"
    return text.replace("|", "\\|").replace("\n", " ")


#: ethtool features worth a glance for zero-copy (the rest are in manifest.json), under their
#: long names (ethtool -k) and short ones (ethtool -K).
OFFLOADS = ("tcp-segmentation-offload", "generic-segmentation-offload", "generic-receive-offload",
            "scatter-gather", "tx-checksumming", "tso", "gso", "gro", "sg")


def interface_text(interface) -> str:
    if not isinstance(interface, dict):
        return _compact(interface)
    parts = [str(interface.get("name", "?"))]
    details = [f"{key} {interface[key]}" for key in ("driver", "mtu", "speed_mbps") if interface.get(key) is not None]
    if details:
        parts.append(f"({', '.join(details)})")
    features = interface.get("features") or interface.get("offloads")
    if isinstance(features, dict):
        shown = [f"{key} {features[key]}" for key in OFFLOADS if key in features]
        if shown:
            parts.append("offloads: " + ", ".join(shown))
    return " ".join(parts)


def _host_fact(manifest: dict, *names: str) -> str:
    """A host fact, or "unknown" with the collector's reason (hostfacts records it in "errors")."""
    value = manifest_fact(manifest, *(f"host.{name}" for name in names))
    if value is not None:
        return _compact(value)
    if any(_host(manifest).get(name) == "" for name in names):
        return "none"  # recorded, and empty (e.g. no isolated CPUs)
    reason = manifest_fact(manifest, *(f"host.errors.{name}" for name in names))
    return f"{fmt.UNKNOWN} ({reason})" if reason else fmt.UNKNOWN


def environment_rows(manifest: dict) -> list[list[str]]:
    fact = lambda *paths: manifest_fact(manifest, *paths)  # noqa: E731
    commit = fact("git.commit")
    reason = fact("privilege.reason")
    rows = [
        ("Run", f"{manifest.get('run_id', fmt.UNKNOWN)} ({'complete' if manifest.get('complete') else 'INCOMPLETE'})"),
        ("Started / finished", f"{fact('started_at') or fmt.UNKNOWN} / {fact('finished_at') or fmt.UNKNOWN}"),
        ("Git", f"{commit[:12] if commit else fmt.UNKNOWN}{' (dirty)' if fact('git.dirty') else ''}"),
        ("Arms / servers", f"{_compact(fact('config.arms'))} / {_compact(fact('config.servers'))}"),
        ("Conns / response sizes", f"{_compact(fact('config.conns'))} / {_compact(fact('config.response_sizes'))}"),
        ("Duration / warmup / repeat",
         f"{_compact(fact('config.duration_s'))} s / {_compact(fact('config.warmup_s'))} s / {_compact(fact('config.repeat'))}"),
        ("ZC in-flight cap / drop CAP_IPC_LOCK",
         f"{_compact(fact('config.zc_max_inflight'))} / {_compact(fact('config.drop_ipc_lock'))}"),
        ("Server memlock / nofile", f"{_compact(fact('config.memlock'))} / {_compact(fact('config.nofile'))}"),
        ("Server CPUs / loadgen CPUs / wrk threads",
         f"{_compact(fact('config.server_cpus'))} / {_compact(fact('config.loadgen_cpus'))} / {_compact(fact('config.threads'))}"),
        ("Seed (cell order)", _compact(fact("config.seed"))),
        ("Offered rate (--rate)", _compact(fact("config.cell_rates", "config.rate")) if fact("config.cell_rates", "config.rate")
         else "none: wrk as fast as it can"),
        ("Rerun of", (_compact(fact("config.extra.rerun_of"))
                      + (f"; rates lowered where its blocks fell short: {_compact(fact('config.extra.rates_lowered'))}"
                         if fact("config.extra.rates_lowered") else ""))
         if fact("config.extra.rerun_of") else "—"),
        ("Network path", _compact(fact("path.note", "path.kind", "config.path"))),
        ("Server container", _container_mode(manifest) + (f" ({reason})" if reason else "")),
        ("Docker", _compact(fact("docker.engine_version"))),
        ("Images", _compact(fact("images"))),
        ("Kernel", _compact(fact("host.kernel_release"))),
        ("Kernel cmdline", _compact(fact("host.kernel_cmdline"))),
        ("CPU", f"{_compact(fact('host.cpu_model'))} × {_compact(fact('host.cpu_count'))}"),
        ("Isolated CPUs", _host_fact(manifest, "isolated_cpus")),
        ("Governor", _host_fact(manifest, "governors")),
        ("Host limits", f"memlock {_host_fact(manifest, 'memlock_limit')}, nofile {_host_fact(manifest, 'nofile_limit')}"),
        ("Container limits", _compact(fact("limits"))),
        ("Interface", interface_text(fact("host.interface"))),
        ("io_uring", _compact(fact("host.io_uring"))),
        *host_rows(_host(manifest)),
        *other_host_rows(manifest),
        ("Timing", _compact(fact("timing"))),
    ]
    return [[name, value] for name, value in rows]


def other_host_rows(manifest: dict) -> list[tuple[str, str]]:
    """A run across an inventory: one row per host other than the server's (whose facts are the
    rows above): its part, kernel, CPUs, engine and NIC."""
    hosts = manifest.get("hosts") or {}
    rows = []
    for name, host in hosts.items():
        if not isinstance(host, dict) or not isinstance(host.get("facts"), dict):
            continue  # the bookkeeping keys, and the server host (its facts are the manifest's host)
        facts = host["facts"]
        engine = (host.get("docker") or {}).get("engine_version") or fmt.UNKNOWN
        rows.append((f"Host {name} ({', '.join(host.get('groups') or [])})",
                     f"{host.get('address', '?')}: kernel {facts.get('kernel_release') or fmt.UNKNOWN}, "
                     f"{facts.get('cpu_model') or fmt.UNKNOWN} × {facts.get('cpu_count') or '?'}, Docker {engine}, "
                     f"interface {interface_text(facts.get('interface'))}"))
    return rows


def environment_lines(manifest: dict) -> list[str]:
    return ["## Environment", "", f"From `{MANIFEST}` (everything recorded is there).", "",
            *markdown_table(["Item", "Value"], environment_rows(manifest)), ""]


VIRT_WITNESSES = ("systemd_detect_virt_vm", "systemd_detect_virt_container", "sys_hypervisor_type",
                  "cpuinfo_hypervisor_flag")


def _smt_text(smt: dict) -> str:
    return f"{'on' if smt['active'] else 'off'} ({smt['control']})"


def _memory_text(memory: dict) -> str:
    return f"{memory['total_bytes'] / GIB:.1f} GiB, {memory['available_bytes'] / GIB:.1f} GiB available"


def _virt_text(virt: dict) -> str:
    seen = [f"{key} {virt[key]}" for key in VIRT_WITNESSES if virt.get(key) is not None]
    return ", ".join(seen) or "none seen"


def _load_text(load: dict) -> str:
    return f"{load['1m']:.2f} {load['5m']:.2f} {load['15m']:.2f}"


def _offloads_text(features: dict) -> str:
    return ", ".join(f"{key} {features[key]}" for key in OFFLOADS if key in features)


def host_rows(host: dict) -> list[tuple[str, str]]:
    """A few of the facts above as (label, value) rows for report.md's environment table."""
    errors = host.get("errors") or {}

    def show(name: str, render: Callable) -> str:
        value = host.get(name)
        if value is None:
            return f"unknown ({errors[name]})" if errors.get(name) else "unknown"
        try:
            return render(value)
        except (KeyError, TypeError, ValueError, AttributeError):
            return json.dumps(value, sort_keys=True)  # a shape this version does not know

    return [
        ("SMT / NUMA nodes", f"{show('smt', _smt_text)} / {show('numa_nodes', lambda v: str(v['count']))}"),
        ("Memory", show("memory", _memory_text)),
        ("Virtualization", show("virtualization", _virt_text)),
        ("Load average at start (1/5/15 min)", show("load_average", _load_text)),
        ("wrk / liburing / cc", f"{show('wrk_version', str)} / {show('liburing_version', lambda v: v['version'])} / "
                                f"{show('compiler_versions', lambda v: v.get('cc') or 'none')}"),
        ("Loopback offloads", show("loopback_offloads", _offloads_text)),
    ]
