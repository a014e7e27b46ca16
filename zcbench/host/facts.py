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
SYS_NODE = Path("/sys/devices/system/node")
SYS_HYPERVISOR = Path("/sys/hypervisor")
DOCKER_SOCKET = "unix:///var/run/docker.sock"
DOCKER_DAEMON_JSON = Path("/etc/docker/daemon.json")
ISOLATION_PARAMS = ("isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity")


class FactUnavailable(Exception):
    """The fact does not exist on this host (e.g. no cpufreq); the message says why."""


def _read(path: str | Path) -> str:
    return Path(path).read_text().strip()


#: ethtool and ip live in sbin, which a non-root login's PATH (an SSH host's) leaves out.
SBIN_PATH = "/usr/local/sbin:/usr/sbin:/sbin"


def _run(*argv: str, timeout: float = 5) -> str:
    path = f"{os.environ.get('PATH', '/usr/bin:/bin')}:{SBIN_PATH}"
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "LC_ALL": "C", "PATH": path})
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
        from zcbench.host.inventory import role_defaults  # lazy: this file also runs alone (remote_facts)

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
    from zcbench.host.provision import load_playbook_code  # lazy: this file also runs alone (remote_facts)

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
    if base.exists():
        facts: dict = {"name": name, "mtu": int(_read(base / "mtu")), "operstate": _read(base / "operstate")}
        driver_link = base / "device" / "driver"
        facts["driver"] = driver_link.resolve().name if driver_link.exists() else ("loopback" if name == "lo" else None)
        facts["speed_mbps"] = _speed(base)
        facts["irq_affinity"] = {str(irq): _safe_read(f"/proc/irq/{irq}/smp_affinity_list") for irq in _msi_irqs(base)}
    else:
        facts = _interface_from_netlink(name)
    if name != "lo":
        facts["features"] = _ethtool_or_reason(_parse_ethtool_features, "-k", name)
        facts["coalesce"] = _ethtool_or_reason(_ethtool_text().parse_coalesce, "-c", name)
        facts["ring"] = _ethtool_or_reason(_ethtool_text().parse_current_section, "-g", name)
        facts["channels"] = _ethtool_or_reason(_ethtool_text().parse_current_section, "-l", name)
    return facts


def _interface_from_netlink(name: str) -> dict:
    """An interface /sys does not show: this process is in a network namespace whose /sys was
    mounted by another (a lab host reached over SSH). `ip` asks the kernel through netlink in
    our own namespace; a virtual link has no IRQs and no speed to read."""
    try:
        links = json.loads(_run("ip", "-j", "-d", "link", "show", "dev", name))
    except (FactUnavailable, OSError, ValueError):
        raise FactUnavailable(f"no interface {name}") from None
    link = links[0]
    return {"name": name, "mtu": link.get("mtu"), "operstate": str(link.get("operstate", "")).lower(),
            "driver": (link.get("linkinfo") or {}).get("info_kind"), "speed_mbps": None, "irq_affinity": {},
            "source": "netlink (this namespace's /sys belongs to another)"}


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


# --- tools the bench builds and measures with (on this host; the images use Debian's own) ----


def _tool_output(*argv: str) -> str:
    """stdout+stderr of a version query, whatever its exit code (`wrk -v` exits 1)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5, env={**os.environ, "LC_ALL": "C"})
    except FileNotFoundError:
        raise FactUnavailable(f"{argv[0]} not installed on this host") from None
    return (done.stdout + done.stderr).strip()


def parse_wrk_version(text: str) -> str:
    """'wrk debian/4.1.0-3+b2 [epoll] Copyright ...' -> 'debian/4.1.0-3+b2'."""
    match = re.match(r"\s*wrk\s+(\S+)", text)
    if not match:
        raise FactUnavailable(f"unrecognised `wrk -v` output: {text[:80]!r}")
    return match.group(1)


def collect_wrk_version() -> str:
    return parse_wrk_version(_tool_output("wrk", "-v"))


LIBURING_VERSION_HEADER = Path("/usr/include/liburing/io_uring_version.h")


def parse_liburing_version_header(text: str) -> str:
    """IO_URING_VERSION_MAJOR/MINOR from io_uring_version.h (liburing >= 2.4 installs it)."""
    parts = dict(re.findall(r"#define\s+IO_URING_VERSION_(MAJOR|MINOR)\s+(\d+)", text))
    if set(parts) != {"MAJOR", "MINOR"}:
        raise FactUnavailable("io_uring_version.h defines no IO_URING_VERSION_MAJOR/MINOR")
    return f"{parts['MAJOR']}.{parts['MINOR']}"


def collect_liburing_version(header: Path = LIBURING_VERSION_HEADER) -> dict:
    """The liburing the server is built against: its version header, else pkg-config (2.3 has no header)."""
    if header.exists():
        return {"version": parse_liburing_version_header(header.read_text()), "source": str(header)}
    try:
        version = _run("pkg-config", "--modversion", "liburing").strip()
    except FileNotFoundError:
        raise FactUnavailable(f"no {header} and no pkg-config on this host") from None
    if not re.fullmatch(r"\d+(\.\d+)+\S*", version):
        raise FactUnavailable(f"pkg-config says {version!r} for liburing")
    return {"version": version, "source": "pkg-config liburing"}


def parse_compiler_version(text: str) -> str:
    """The first line of `cc --version` (names the compiler, its vendor build and version)."""
    first = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not re.search(r"\d+\.\d+", first):
        raise FactUnavailable(f"unrecognised compiler version output: {first[:80]!r}")
    return first


def collect_compiler_versions() -> dict[str, str | None]:
    """`cc` (the server Makefile's default is gcc) and clang (the fuzzer build); null when absent."""
    found: dict[str, str | None] = {}
    for compiler in ("cc", "gcc", "clang"):
        try:
            found[compiler] = parse_compiler_version(_tool_output(compiler, "--version"))
        except FactUnavailable:
            found[compiler] = None
    if not any(found.values()):
        raise FactUnavailable("no C compiler (cc, gcc, clang) on this host")
    return found


# --- machine: SMT, NUMA, memory, virtualization, load -----------------------------------------


def collect_smt(cpu_dir: Path = SYS_CPU) -> dict:
    """Simultaneous multithreading: the kernel's smt/active and smt/control ("on", "off",
    "forceoff", "notsupported", "notimplemented")."""
    smt = cpu_dir / "smt"
    if not (smt / "active").exists():
        raise FactUnavailable(f"no {smt}/active (kernel without CONFIG_HOTPLUG_SMT)")
    active = _read(smt / "active")
    if active not in ("0", "1"):
        raise FactUnavailable(f"{smt}/active reads {active!r}")
    control = _safe_read(smt / "control")
    return {"active": active == "1", "control": control}


def collect_numa_nodes(node_dir: Path = SYS_NODE) -> dict:
    """NUMA nodes and the CPUs of each (one node: memory is equally near every CPU)."""
    nodes = sorted((p for p in node_dir.glob("node[0-9]*") if p.name[4:].isdigit()), key=lambda p: int(p.name[4:]))
    if not nodes:
        raise FactUnavailable(f"no {node_dir}/node* (kernel without CONFIG_NUMA)")
    cpus = {p.name: _safe_read(p / "cpulist") for p in nodes}
    return {"count": len(nodes), "cpus": cpus}


MEMINFO_FIELDS = {"MemTotal": "total_bytes", "MemAvailable": "available_bytes", "SwapTotal": "swap_total_bytes",
                  "Hugepagesize": "hugepage_size_bytes", "HugePages_Total": "hugepages_total"}


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo's fields of interest in bytes (HugePages_Total is a count)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in MEMINFO_FIELDS:
            number, *unit = rest.split()
            values[MEMINFO_FIELDS[name]] = int(number) * (1024 if unit == ["kB"] else 1)
    if "total_bytes" not in values:
        raise FactUnavailable("no MemTotal in /proc/meminfo")
    return values


def collect_memory() -> dict[str, int]:
    return parse_meminfo(_read("/proc/meminfo"))


def _detect_virt(flag: str) -> str | None:
    """systemd-detect-virt --vm|--container: the technology, or "none" (it exits 1 then)."""
    try:
        done = subprocess.run(["systemd-detect-virt", flag], capture_output=True, text=True, timeout=5)
    except FileNotFoundError:
        return None
    answer = done.stdout.strip()
    return answer if answer else None


def cpuinfo_has_hypervisor_flag(cpuinfo: str) -> bool | None:
    """The x86 'hypervisor' CPUID bit as /proc/cpuinfo lists it; None when cpuinfo has no flags line."""
    flags_lines = [line for line in cpuinfo.splitlines() if re.match(r"(flags|Features)\s*:", line)]
    if not flags_lines:
        return None
    return "hypervisor" in flags_lines[0].split(":", 1)[1].split()


def collect_virtualization(hypervisor_dir: Path = SYS_HYPERVISOR) -> dict:
    """Three independent witnesses of running under a hypervisor or in a container; any may be
    null when this host cannot say (no systemd-detect-virt, no /sys/hypervisor, no flags line)."""
    vm, container = _detect_virt("--vm"), _detect_virt("--container")
    hyper_type = _safe_read(hypervisor_dir / "type") if hypervisor_dir.exists() else None
    flag = cpuinfo_has_hypervisor_flag(_safe_read(Path("/proc/cpuinfo")) or "")
    witnesses = [vm not in (None, "none") if vm is not None else None, bool(hyper_type) or None, flag]
    if all(w is None for w in witnesses):
        raise FactUnavailable("no systemd-detect-virt, no /sys/hypervisor/type and no cpuinfo flags")
    return {"virtualized": any(w for w in witnesses if w is not None), "systemd_detect_virt_vm": vm,
            "systemd_detect_virt_container": container, "sys_hypervisor_type": hyper_type,
            "cpuinfo_hypervisor_flag": flag}


def parse_loadavg(text: str) -> dict:
    """/proc/loadavg: '1.57 0.60 0.22 6/113 10285'."""
    fields = text.split()
    try:
        one, five, fifteen = (float(v) for v in fields[:3])
        running, total = (int(v) for v in fields[3].split("/"))
    except (ValueError, IndexError):
        raise FactUnavailable(f"unrecognised /proc/loadavg: {text[:80]!r}") from None
    return {"1m": one, "5m": five, "15m": fifteen, "runnable": running, "threads": total}


def collect_load_average() -> dict:
    """At collection time, i.e. when the run starts: a busy host skews every cell."""
    return parse_loadavg(_read("/proc/loadavg"))


# --- the loopback, which every local run crosses -------------------------------------------


def collect_loopback_offloads() -> dict[str, str]:
    """`ethtool -k lo`: GSO/GRO/TSO decide how many sends one response becomes on loopback.
    /sys/class/net/lo exposes no feature flags, so without ethtool there is no answer."""
    try:
        text = _run("ethtool", "-k", "lo")
    except FileNotFoundError:
        raise FactUnavailable("ethtool not installed (`invoke provision` installs it); "
                              "/sys/class/net/lo has no offload flags to read instead") from None
    return _parse_ethtool_features(text)


def parse_link_gso_limits(text: str) -> dict[str, int]:
    """`ip -d link show lo`: gso_max_size, gso_max_segs, tso_max_size, tso_max_segs, gro_max_size."""
    limits = {name: int(value) for name, value in
              re.findall(r"\b((?:gso|tso|gro)_max_(?:size|segs))\s+(\d+)", text)}
    if not limits:
        raise FactUnavailable("`ip -d link` shows no gso/tso/gro limits")
    return limits


def collect_loopback_gso_limits() -> dict[str, int]:
    """The largest GSO/GRO packet on loopback (bounds how a big response is segmented)."""
    try:
        return parse_link_gso_limits(_run("ip", "-d", "link", "show", "lo"))
    except FileNotFoundError:
        raise FactUnavailable("ip (iproute2) not installed") from None


GIB = 1024 ** 3
# --- Docker and io_uring --------------------------------------------------------------------


def engine_version(client) -> dict:
    """What a Docker engine says it is (this host's here, another host's in doctor)."""
    version = client.version()
    return {"version": version.get("Version"), "api_version": version.get("ApiVersion")}


def collect_docker() -> dict:
    """The engine's version through the Docker API (short timeout: doctor must stay quick)."""
    import docker  # not at the top: this file also runs alone on hosts without the SDK (remote_facts)

    client = docker.DockerClient(base_url=os.environ.get("DOCKER_HOST", DOCKER_SOCKET), timeout=3)
    try:
        return engine_version(client)
    finally:
        client.close()


def collect_docker_default_ulimits() -> dict:
    """daemon.json's default-ulimits ({} when it sets none)."""
    if not DOCKER_DAEMON_JSON.exists():
        return {}
    ulimits = json.loads(DOCKER_DAEMON_JSON.read_text()).get("default-ulimits", {})
    return {name: {"soft": u.get("Soft"), "hard": u.get("Hard")} for name, u in ulimits.items()}


def collect_io_uring() -> dict:
    from zcbench.host import uring  # lazy: this file also runs alone (remote_facts)

    return uring.probe()


# --- everything -----------------------------------------------------------------------------


def _default_interface() -> str:
    from zcbench.host.inventory import desired_settings  # lazy: this file also runs alone (remote_facts)

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
        "load_average": (collect_load_average,),  # first: the collectors below add load of their own
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
        "wrk_version": (collect_wrk_version,),
        "liburing_version": (collect_liburing_version,),
        "compiler_versions": (collect_compiler_versions,),
        "smt": (collect_smt,),
        "numa_nodes": (collect_numa_nodes,),
        "memory": (collect_memory,),
        "virtualization": (collect_virtualization,),
        "loopback_offloads": (collect_loopback_offloads,),
        "loopback_gso_limits": (collect_loopback_gso_limits,),
    }
    facts = {name: safe(name, *spec) for name, spec in collectors.items()}
    facts["errors"] = errors
    return facts


if __name__ == "__main__":
    print(json.dumps(collect_host_facts(), indent=2))
