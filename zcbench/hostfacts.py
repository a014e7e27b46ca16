"""What this host is, as far as the benchmark cares: one `collect_*` function per fact.

`collect_host_facts()` runs them all and never raises: a fact that cannot be read is recorded
as null and its reason goes to `errors[fact]`. It is cheap (files under /proc and /sys, a few
ethtool calls for a real NIC, one Docker API round trip with a short timeout, the io_uring
probe), so the bench manifest embeds it for every run and `invoke doctor` compares it with
what provisioning sets.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

SYS_CPU = Path("/sys/devices/system/cpu")
DOCKER_SOCKET = "unix:///var/run/docker.sock"
DOCKER_DAEMON_JSON = Path("/etc/docker/daemon.json")
ISOLATION_PARAMS = ("isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity")


class FactUnavailable(Exception):
    """The fact does not exist on this host (e.g. no cpufreq); the message says why."""


def _read(path: str | Path) -> str:
    return Path(path).read_text().strip()


def _run(*argv: str, timeout: float = 5) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env={**os.environ, "LC_ALL": "C"})
    if done.returncode != 0:
        raise FactUnavailable(f"{' '.join(argv)}: {(done.stderr or done.stdout).strip() or done.returncode}")
    return done.stdout


def _limit(value: int) -> int | None:
    return None if value == resource.RLIM_INFINITY else value


# --- kernel and CPUs ------------------------------------------------------------------------


def collect_kernel_release() -> str:
    return os.uname().release


def collect_kernel_cmdline() -> str:
    return _read("/proc/cmdline")


def collect_cmdline_isolation() -> dict[str, str | None]:
    """The CPU isolation parameters on the running kernel's command line (null when absent)."""
    words = _read("/proc/cmdline").split()
    found = {name: None for name in ISOLATION_PARAMS}
    for word in words:
        name, _, value = word.partition("=")
        if name in found:
            found[name] = value
    return found


def collect_cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    raise FactUnavailable("no 'model name' in /proc/cpuinfo")


def collect_cpu_count() -> int:
    return os.cpu_count() or 0


def collect_cpus_online() -> str:
    return _read(SYS_CPU / "online")


def collect_isolated_cpus() -> str:
    """CPUs the kernel isolated at boot ('' when none)."""
    return _read(SYS_CPU / "isolated")


def collect_nohz_full_cpus() -> str:
    path = SYS_CPU / "nohz_full"
    if not path.exists():
        raise FactUnavailable("kernel built without CONFIG_NO_HZ_FULL")
    return _read(path).replace("(null)", "")


def collect_governors() -> dict[str, str]:
    """cpufreq governor per policy."""
    policies = sorted((SYS_CPU / "cpufreq").glob("policy*"))
    if not policies:
        raise FactUnavailable("no cpufreq on this host")
    return {p.name: _read(p / "scaling_governor") for p in policies}


def collect_irqbalance() -> dict:
    """Whether irqbalance runs, and the CPUs it is told to leave alone."""
    running = any(
        _safe_read(comm) == "irqbalance" for comm in Path("/proc").glob("[0-9]*/comm")
    )
    banned = None
    defaults = Path("/etc/default/irqbalance")
    if defaults.exists():
        match = re.search(r"^IRQBALANCE_BANNED_CPULIST=(\S*)", defaults.read_text(), re.M)
        banned = match.group(1) if match else None
    return {"installed": Path("/usr/sbin/irqbalance").exists(), "running": running, "banned_cpus": banned}


def _safe_read(path: Path) -> str | None:
    try:
        return _read(path)
    except OSError:
        return None


def collect_systemd_pid1() -> bool:
    return _read("/proc/1/comm") == "systemd"


def collect_grub_installed() -> bool:
    return Path("/etc/default/grub").exists()


# --- limits and sysctls ---------------------------------------------------------------------


def collect_memlock_limit() -> dict:
    """RLIMIT_MEMLOCK of this process, bytes (null = unlimited)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return {"soft": _limit(soft), "hard": _limit(hard)}


def collect_nofile_limit() -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {"soft": _limit(soft), "hard": _limit(hard)}


def collect_sysctls(names: tuple[str, ...] | None = None) -> dict[str, str | None]:
    """The sysctls provisioning manages (values as `sysctl -n` prints them, whitespace collapsed)."""
    if names is None:
        from zcbench.provision import role_defaults

        names = tuple(role_defaults("sysctl")["sysctl_settings"])
    values = {}
    for name in names:
        value = _safe_read(Path("/proc/sys") / name.replace(".", "/"))
        values[name] = " ".join(value.split()) if value is not None else None
    return values


def collect_io_uring_disabled() -> int:
    return int(_read("/proc/sys/kernel/io_uring_disabled"))


# --- network interface ----------------------------------------------------------------------


@lru_cache(maxsize=1)
def _ethtool_text():
    """The nic role's own ethtool parsers (playbooks/module_utils): one reading of ethtool."""
    from zcbench.provision import load_playbook_code

    return load_playbook_code("module_utils/zcbench_ethtool_text.py")


def _parse_ethtool_features(text: str) -> dict[str, str]:
    """{feature: "on" | "off" | "on [fixed]" | "off [fixed]"}, as doctor and the report show it."""
    return {name: f["value"] + (" [fixed]" if f["fixed"] else "")
            for name, f in _ethtool_text().parse_features(text).items()}


def _ethtool_or_reason(parse: Callable[[str], dict], *argv: str) -> dict:
    try:
        return parse(_run("ethtool", *argv))
    except (FactUnavailable, OSError, subprocess.TimeoutExpired) as exc:
        return {"unavailable": str(exc)}


def collect_interface(name: str) -> dict:
    """Driver, MTU, speed, IRQ affinities and (except for the loopback) ethtool settings."""
    base = Path("/sys/class/net") / name
    if not base.exists():
        raise FactUnavailable(f"no interface {name}")
    facts: dict = {"name": name, "mtu": int(_read(base / "mtu")), "operstate": _read(base / "operstate")}
    driver_link = base / "device" / "driver"
    facts["driver"] = driver_link.resolve().name if driver_link.exists() else ("loopback" if name == "lo" else None)
    facts["speed_mbps"] = _speed(base)
    facts["irq_affinity"] = {str(irq): _safe_read(f"/proc/irq/{irq}/smp_affinity_list") for irq in _msi_irqs(base)}
    if name != "lo":
        facts["features"] = _ethtool_or_reason(_parse_ethtool_features, "-k", name)
        facts["coalesce"] = _ethtool_or_reason(_ethtool_text().parse_coalesce, "-c", name)
        facts["ring"] = _ethtool_or_reason(_ethtool_text().parse_current_section, "-g", name)
        facts["channels"] = _ethtool_or_reason(_ethtool_text().parse_current_section, "-l", name)
    return facts


def _msi_irqs(base: Path) -> list[int]:
    """The NIC's MSI IRQs: under its PCI device, or that device's parent for a virtio NIC."""
    device = base / "device"
    if not device.exists():
        return []
    for candidate in (device.resolve(), device.resolve().parent):
        if (candidate / "msi_irqs").is_dir():
            return sorted(int(p.name) for p in (candidate / "msi_irqs").iterdir() if p.name.isdigit())
    return []


def _speed(base: Path) -> int | None:
    try:
        speed = int(_read(base / "speed"))
    except (OSError, ValueError):
        return None  # loopback and virtual links have no speed
    return speed if speed > 0 else None


# --- Docker and io_uring --------------------------------------------------------------------


def collect_docker() -> dict:
    """The engine's version through the Docker API (short timeout: doctor must stay quick)."""
    import docker

    client = docker.DockerClient(base_url=os.environ.get("DOCKER_HOST", DOCKER_SOCKET), timeout=3)
    try:
        version = client.version()
    finally:
        client.close()
    return {"version": version.get("Version"), "api_version": version.get("ApiVersion")}


def collect_docker_default_ulimits() -> dict:
    """daemon.json's default-ulimits ({} when it sets none)."""
    if not DOCKER_DAEMON_JSON.exists():
        return {}
    ulimits = json.loads(DOCKER_DAEMON_JSON.read_text()).get("default-ulimits", {})
    return {name: {"soft": u.get("Soft"), "hard": u.get("Hard")} for name, u in ulimits.items()}


def collect_io_uring() -> dict:
    from zcbench import uring

    return uring.probe()


# --- everything -----------------------------------------------------------------------------


def _default_interface() -> str:
    from zcbench.provision import desired_settings

    return desired_settings().get("nic_interface", "lo")


def collect_host_facts(interface: str | None = None) -> dict:
    """Every fact above; a fact that fails is null and its reason is in facts['errors']."""
    errors: dict[str, str] = {}

    def safe(name: str, collect: Callable, *args):
        try:
            return collect(*args)
        except Exception as exc:  # noqa: BLE001 - a fact collector records, it never raises
            errors[name] = str(exc) if isinstance(exc, FactUnavailable) else f"{type(exc).__name__}: {exc}"
            return None

    if interface is None:
        interface = safe("interface", _default_interface) or "lo"
    collectors: dict[str, tuple] = {
        "kernel_release": (collect_kernel_release,),
        "kernel_cmdline": (collect_kernel_cmdline,),
        "cmdline_isolation": (collect_cmdline_isolation,),
        "cpu_model": (collect_cpu_model,),
        "cpu_count": (collect_cpu_count,),
        "cpus_online": (collect_cpus_online,),
        "isolated_cpus": (collect_isolated_cpus,),
        "nohz_full_cpus": (collect_nohz_full_cpus,),
        "governors": (collect_governors,),
        "irqbalance": (collect_irqbalance,),
        "systemd_pid1": (collect_systemd_pid1,),
        "grub_installed": (collect_grub_installed,),
        "memlock_limit": (collect_memlock_limit,),
        "nofile_limit": (collect_nofile_limit,),
        "sysctls": (collect_sysctls,),
        "io_uring_disabled": (collect_io_uring_disabled,),
        "interface": (collect_interface, interface),
        "docker": (collect_docker,),
        "docker_default_ulimits": (collect_docker_default_ulimits,),
        "io_uring": (collect_io_uring,),
    }
    facts = {name: safe(name, *spec) for name, spec in collectors.items()}
    facts["errors"] = errors
    return facts


if __name__ == "__main__":
    print(json.dumps(collect_host_facts(), indent=2))
