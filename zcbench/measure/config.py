"""A bench run's parameters: validated once, every default defined here and nowhere else.

`Config.from_args(...)` takes the strings/numbers of `invoke bench` (or of the sweep) and
returns a frozen Config or raises ConfigError with one clear line. Nothing here touches
Docker; `check_runtime()` in bench.py checks what needs the engine (images, daemon).
"""

from __future__ import annotations

import json
import os
import re
import resource
import secrets
import socket
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import yaml

from zcbench.core import arms as arms_registry
from zcbench.core.paths import ROOT, WORK
from zcbench.core.rundir import load_samples
from zcbench.core.samples import load_text, lower_rates
from zcbench.host import inventory as inventories
from zcbench.host.inventory import desired_settings
from zcbench.measure import loadgen as generators

# --- the defaults (the study's matrix, about 11 minutes on 2 vCPUs) --------------------------

DEFAULT_MODE = "zc"
DEFAULT_SERVER = "zcbench"
DEFAULT_CONNS = (100, 1000, 4000)
DEFAULT_RESPONSE_SIZE = 88  # the study's response (headers + body), bytes
# Many short blocks: a cell's noise on a shared VM is per cell, not per second (2 s and 5 s cells
# wander alike). Measured by `invoke calibrate` (README "How a verdict is made"): 30 blocks of
# 2 s found its 5% at equal load in 3 runs of 3, 10 blocks of 5 s in 3 of 4.
DEFAULT_DURATION_S = 2
# Seconds of load before each cell's window. Off: each arm's server runs for the whole run (it is
# warm after its first cells, and the --rate auto pilot warms every cell first), and a window
# starts only once wrk's connections are open (measure.windows); measured, a 1 s warmup per cell
# left the verdicts and their spread where they were (README, "How fast the bench is").
DEFAULT_WARMUP_S = 0
DEFAULT_REPEAT = 30  # blocks; the paired test and its MDE improve with their number
DEFAULT_ZC_MAX_INFLIGHT = 256  # the study's per-worker cap
DEFAULT_MEMLOCK = 8 * 1024 * 1024  # the usual RLIMIT_MEMLOCK default: what the study's server had
MAX_NOFILE = 1 << 20  # default nofile: this, or the host's hard limit when lower (see default_nofile)
MAX_CPUS = 4096  # CPU numbers accepted for another host before its engine says how many it has
CPU_ISOLATION_DEFAULTS = ROOT / "playbooks" / "roles" / "cpu_isolation" / "defaults" / "main.yml"


def provisioned_cpus(group: str) -> str:
    """The CPU list the cpu_isolation role gives a host group ("server" or "loadgen"): the CPUs
    `invoke provision` isolates for it are where the bench pins it. Read when a run needs a
    default, never at import: `invoke report` or `compare` must not depend on playbook files."""
    path = CPU_ISOLATION_DEFAULTS
    try:
        return str(yaml.safe_load(path.read_text())[f"cpu_isolation_{group}_cpus"])
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise ConfigError(f"no default --{group}-cpus: cannot read it from {path} ({exc}); give the option") from None


#: "" = the provisioned CPUs of that role (provisioned_cpus), resolved when a Config is made.
DEFAULT_SERVER_CPUS = ""
DEFAULT_LOADGEN_CPUS = ""
PROVISIONED_CPUS_HELP = "the CPUs `invoke provision` isolates for it (cpu_isolation role defaults)"
RATE_OFF = "off"
#: `invoke bench` and `invoke calibrate` offer every arm of a cell the same rate, 70% of the
#: slower arm's saturation: at equal load, server CPU per wrk CPU cancels the shared machine's
#: momentary speed, and the calibration finds a 5% CPU cost on this VM only so (README, "How a
#: verdict is made"). paced.lua holds the rate at 100-4000 connections once its connection ramp is
#: left out of the window.
DEFAULT_RATE = "auto"
#: --rate auto offers this share of the slower arm's saturated rate, measured by a pilot
#: (measure.pilot); --rate 30%,70% offers other shares of the same saturation, one cell each.
AUTO_RATE_SHARE = 0.7
#: The sweep's question is a throughput crossover: wrk goes as fast as it can.
DEFAULT_SWEEP_RATE = RATE_OFF
DEFAULT_PORT = 8088
#: A run's servers listen on --port and the ports after it, one per arm and size; the sysctl role
#: keeps this many from DEFAULT_PORT out of the clients' source ports (a wrk connection's TIME_WAIT
#: on one of them keeps a server from binding it).
RESERVED_PORTS = 100
DEFAULT_BIND = "127.0.0.1"
DEFAULT_PATH = "loopback"
DEFAULT_LABEL = "bench"
DEFAULT_LOADGEN = generators.DEFAULT
DEFAULT_OUT = WORK / "results"

def modes() -> dict[str, tuple[str, ...]]:
    """--mode choices and the zcbench arms each runs (core.arms: every send mode the server's
    header lists, each beside the baseline it is judged against, and "all")."""
    return arms_registry.modes()


SERVER_CHOICES = ("zcbench", "nginx", "both")
PATHS = ("loopback", "veth")
HOSTS_PATH = "hosts"  # with --inventory: the server on its host, wrk on the loadgen hosts

_SIZE = re.compile(r"^(\d+)\s*([kKmM]?)(i?[bB]?)$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ConfigError(ValueError):
    """Bad input; the message is the one line shown to the user."""


@dataclass(frozen=True)
class Config:
    arms: tuple[str, ...] = (arms_registry.BASELINE, DEFAULT_MODE)  # zcbench server arms
    servers: tuple[str, ...] = (DEFAULT_SERVER,)
    conns: tuple[int, ...] = DEFAULT_CONNS
    response_sizes: tuple[int, ...] = (DEFAULT_RESPONSE_SIZE,)
    duration_s: int = DEFAULT_DURATION_S
    warmup_s: int = DEFAULT_WARMUP_S
    repeat: int = DEFAULT_REPEAT
    zc_max_inflight: int = DEFAULT_ZC_MAX_INFLIGHT
    # --zc-min-bytes: the adaptive arm's threshold (None: the server's own default); "crossover"
    # sets zc_min_bytes_crossover and jobs.bench takes it from the latest sweep on this host
    zc_min_bytes: int | None = None
    zc_min_bytes_crossover: bool = False
    drop_ipc_lock: bool = False
    memlock: int = DEFAULT_MEMLOCK  # bytes; -1 = unlimited
    nofile: int = MAX_NOFILE
    server_cpus: tuple[int, ...] = (0,)
    loadgen_cpus: tuple[int, ...] = (1,)
    threads: int = 1
    port: int = DEFAULT_PORT
    bind: str = DEFAULT_BIND
    path: str = DEFAULT_PATH
    out: Path = DEFAULT_OUT
    label: str = DEFAULT_LABEL
    seed: int = 0
    quiet: bool = False
    mode: str = DEFAULT_MODE  # as given, for the manifest
    extra: dict = field(default_factory=dict)  # callers' notes (e.g. the sweep), kept in the manifest
    # Iterations of the server's calibration loop per response, per calibration arm (measure/
    # calibrate.py): only `invoke calibrate` sets it, and only for arms that take it.
    calibration_work: dict = field(default_factory=dict)
    # The latency check's stall per calibration arm that takes it ("S/P": S ms every P ms;
    # measure/calibrate.py): only `invoke calibrate` sets it.
    calibration_stall: dict = field(default_factory=dict)
    # --rate: requests/s wrk offers in every cell (None = as fast as it can); with --rate auto or
    # shares (--rate 30%,70%), rate_auto is set, rate_shares holds the shares (auto: AUTO_RATE_SHARE),
    # every cell runs at each of them, and bench.run() fills cell_rates (rate_key -> rate) from a pilot.
    rate: int | None = None
    rate_auto: bool = False
    rate_shares: tuple[float, ...] = ()
    cell_rates: dict = field(default_factory=dict)
    # --inventory: the hosts file (absolute path); "" = this machine alone (loopback or veth path)
    inventory: str = ""
    loadgen: str = "wrk"  # --loadgen: a generator of measure.loadgen's registry

    def rate_for(self, conns: int, response_size: int, load: float | None = None) -> int | None:
        """The request rate offered to a cell (the same for every arm of it), or None."""
        return self.cell_rates.get(rate_key(conns, response_size, load), self.rate)

    @property
    def loads(self) -> tuple[float | None, ...]:
        """The load axis of the plan: each share of saturation, or (None,) without one."""
        return self.rate_shares if self.rate_auto and self.rate_shares else (None,)

    def __post_init__(self):
        # The injected cost must never reach a real comparison: it exists only with its own arm.
        working = {arm for arm in self.arms if arms_registry.get(arm).calibration_work}
        given = {arm for arm, iterations in (self.calibration_work or {}).items() if iterations > 0}
        if working != given or given != set(self.calibration_work or {}):
            raise ConfigError(f"calibration work ({self.calibration_work}) runs only in the calibration arms "
                              "that take it, each with its own iterations, in `invoke calibrate`")
        stalling = {arm for arm in self.arms if arms_registry.get(arm).calibration_stall}
        if stalling != set(self.calibration_stall or {}) or not all((self.calibration_stall or {}).values()):
            raise ConfigError(f"a calibration stall ({self.calibration_stall}) runs only in the calibration arm "
                              "that takes it, in `invoke calibrate`")

    @property
    def arms_to_run(self) -> tuple[tuple[str, str], ...]:
        """(server, arm) pairs of the run: the zcbench arms, then nginx as its own arm."""
        pairs = [("zcbench", arm) for arm in self.arms] if "zcbench" in self.servers else []
        if "nginx" in self.servers:
            pairs.append(("nginx", "nginx"))
        return tuple(pairs)

    def to_json(self) -> dict:
        data = asdict(self)
        data["out"] = str(self.out)
        return data

    @classmethod
    def from_args(cls, *, mode=None, server=DEFAULT_SERVER, conns=DEFAULT_CONNS,
                  response_size=DEFAULT_RESPONSE_SIZE, duration=DEFAULT_DURATION_S,
                  warmup=DEFAULT_WARMUP_S, repeat=DEFAULT_REPEAT,
                  zc_max_inflight=DEFAULT_ZC_MAX_INFLIGHT, drop_ipc_lock=False, zc_min_bytes=None,
                  memlock=DEFAULT_MEMLOCK, nofile=None,
                  server_cpus=DEFAULT_SERVER_CPUS, loadgen_cpus=DEFAULT_LOADGEN_CPUS,
                  threads=None, port=DEFAULT_PORT, bind=DEFAULT_BIND, path=DEFAULT_PATH,
                  out=DEFAULT_OUT, label=DEFAULT_LABEL, seed=None, quiet=False,
                  online_cpus=None, extra=None, rate=None, inventory=None, loadgen=None) -> Config:
        loadgen_name = loadgen or DEFAULT_LOADGEN
        mode_given = mode not in (None, "")  # None/"": not given, DEFAULT_MODE for zcbench
        mode = mode if mode_given else DEFAULT_MODE
        choices = modes()
        if mode not in choices:
            raise ConfigError(f"unknown --mode {mode!r}; expected one of {', '.join(choices)}")
        if loadgen_name not in generators.GENERATORS:
            raise ConfigError(f"unknown --loadgen {loadgen_name!r}; expected one of {', '.join(generators.GENERATORS)}")
        if server not in SERVER_CHOICES:
            raise ConfigError(f"unknown --server {server!r}; expected one of {', '.join(SERVER_CHOICES)}")
        if server == "nginx" and mode_given and mode != "regular":
            # nginx has no zero-copy send: the arms asked for would silently not run
            raise ConfigError(f"--server nginx --mode {mode}: nginx has no zero-copy arm; use --server both "
                              "to run it beside zcbench's arms, or leave --mode out")
        hosts = inventory_hosts(inventory) if inventory else None
        if hosts:
            path, bind, server_cpus, loadgen_cpus = _on_hosts(hosts, path, bind, server_cpus, loadgen_cpus)
        elif path not in PATHS:
            raise ConfigError(f"unknown --path {path!r}; expected one of {', '.join(PATHS)}")
        conn_levels = parse_int_list(conns, "--conns", minimum=1)
        sizes = parse_size_list(response_size, "--response-size")
        online = set(online_cpus if online_cpus is not None else available_cpus())
        # another host's CPUs are checked against its own engine (bench.preflight)
        anywhere = set(range(MAX_CPUS))
        server_online = online if not hosts or hosts.server.is_control else anywhere
        server_set = parse_cpu_list(server_cpus or provisioned_cpus("server"), "--server-cpus", server_online)
        loadgen_online = online if not hosts or all(h.is_control for h in hosts.loadgens) else anywhere
        loadgen_set = parse_cpu_list(loadgen_cpus or provisioned_cpus("loadgen"), "--loadgen-cpus", loadgen_online)
        if (not hosts or _server_host_generates_load(hosts)) and set(server_set) & set(loadgen_set):
            raise ConfigError(f"--server-cpus {format_cpus(server_set)} and --loadgen-cpus "
                              f"{format_cpus(loadgen_set)} overlap: give them disjoint CPUs")
        if threads not in (None, "") and str(threads).strip() == "0":
            raise ConfigError(f"--threads 0: {loadgen_name} needs at least 1 thread; leave --threads out for "
                              f"one per loadgen CPU ({len(loadgen_set)} here)")
        nthreads = len(loadgen_set) if threads in (None, "") else parse_int(threads, "--threads", 1)
        problem = generators.get(loadgen_name).config_error(
            threads=nthreads, conns=min(conn_levels), generators=len(hosts.loadgens) if hosts else 1)
        if problem:
            raise ConfigError(problem)
        if not _LABEL.match(str(label)):
            raise ConfigError(f"--label {label!r}: use letters, digits, '.', '_' or '-' (at most 64)")
        memlock_bytes = -1 if str(memlock).lower() in ("unlimited", "-1") else parse_size(memlock, "--memlock")
        absolute_rate, shares = parse_rate(rate)
        return cls(
            arms=choices[mode] if server != "nginx" else (),
            servers=("zcbench", "nginx") if server == "both" else (server,),
            conns=conn_levels,
            response_sizes=sizes,
            duration_s=parse_int(duration, "--duration", 1),
            warmup_s=parse_int(warmup, "--warmup", 0),
            repeat=parse_int(repeat, "--repeat", 1),
            zc_max_inflight=parse_int(zc_max_inflight, "--zc-max-inflight", 0),
            zc_min_bytes=_zc_min_bytes(zc_min_bytes, choices[mode] if server != "nginx" else ()),
            zc_min_bytes_crossover=str(zc_min_bytes).strip().lower() == CROSSOVER,
            drop_ipc_lock=bool(drop_ipc_lock),
            memlock=memlock_bytes,
            nofile=parse_int(default_nofile() if nofile in (None, "") else nofile, "--nofile",
                             max(conn_levels) + 1024),
            server_cpus=server_set,
            loadgen_cpus=loadgen_set,
            threads=nthreads,
            port=parse_int(port, "--port", 1024, 65535),
            bind=bind,
            path=path,
            out=Path(out),
            label=str(label),
            seed=secrets.randbits(32) if seed in (None, "") else parse_int(seed, "--seed", 0),
            quiet=bool(quiet),
            mode=mode,
            extra=dict(extra or {}),
            rate=absolute_rate,
            rate_auto=bool(shares),
            rate_shares=shares,
            inventory=str(hosts.path) if hosts else "",
            loadgen=loadgen_name,
        )


def inventory_hosts(inventory):
    """The parsed inventory (zcbench.host.inventory.Inventory), checked for a bench (wrk elsewhere can
    reach the server), or ConfigError in one line."""
    try:
        loaded = inventories.load_inventory(inventory)
        inventories.check_reachable(loaded)
        return loaded
    except inventories.InventoryError as exc:
        raise ConfigError(str(exc)) from None


def _server_host_generates_load(inventory) -> bool:
    """The server host is also a loadgen host: its two CPU sets must not overlap."""
    return any(host.name == inventory.server.name for host in inventory.loadgens)


def _on_hosts(inventory, path, bind, server_cpus, loadgen_cpus) -> tuple[str, str, str, str]:
    """(path, bind, server CPUs, loadgen CPUs) of a run across an inventory's hosts: the server
    listens on the address wrk targets; CPUs default to what the hosts' inventory entries give
    the cpu_isolation role (the first loadgen host's for every loadgen)."""
    server = inventory.server
    if path not in (DEFAULT_PATH, HOSTS_PATH):
        raise ConfigError(f"--path {path} with an inventory: wrk runs on the inventory's loadgen hosts")
    if bind not in (None, "", DEFAULT_BIND, server.server_address):
        raise ConfigError(f"--bind {bind} with an inventory: set zcbench_server_address on {server.name} instead")
    server_cpus = server_cpus or str(desired_settings(server).get("cpu_isolation_server_cpus") or "")
    loadgen_cpus = loadgen_cpus or str(desired_settings(inventory.loadgens[0]).get("cpu_isolation_loadgen_cpus") or "")
    return HOSTS_PATH, server.server_address, server_cpus, loadgen_cpus


CROSSOVER = "crossover"  # --zc-min-bytes crossover: the latest sweep's, on this host and images
ADAPTIVE_MODE = "adaptive"  # the send mode --zc-min-bytes is for


def _zc_min_bytes(value, run_arms) -> int | None:
    """--zc-min-bytes: bytes (4k...), or None for "not given" and for "crossover" (resolved before
    the run: jobs.bench); refused when no arm of the run sends adaptively."""
    if value in (None, ""):
        return None
    if not any(arms_registry.known(a) and arms_registry.get(a).send == ADAPTIVE_MODE for a in run_arms):
        raise ConfigError(f"--zc-min-bytes {value}: only the {ADAPTIVE_MODE} arm takes it "
                          f"(--mode {ADAPTIVE_MODE} or --mode all)")
    if str(value).strip().lower() == CROSSOVER:
        return None
    return parse_size(value, "--zc-min-bytes")


def supported_modes(config: Config, support: dict[str, dict]) -> Config:
    """The config without the send modes this kernel lacks (support: host.uring's per-mode
    probe, name -> {"supported", "unsupported"}): --mode all skips them and records why
    (extra.modes_skipped, a line in the report); a mode asked for by name is refused in one line."""
    missing = {arm: support[arms_registry.get(arm).send]["unsupported"] for arm in config.arms
               if arms_registry.get(arm).send in support and not support[arms_registry.get(arm).send]["supported"]}
    if not missing:
        return config
    if config.mode != "all":
        arm, why = next(iter(missing.items()))
        raise ConfigError(f"--mode {config.mode}: this kernel cannot run the {arm} send mode ({why})")
    return replace(config, arms=tuple(a for a in config.arms if a not in missing),
                   extra=config.extra | {"modes_skipped": missing})


def rate_key(conns: int, response_size: int, load: float | None = None) -> str:
    """A cell's key in Config.cell_rates (JSON object keys are strings): "conns/size", and
    "@30%" after it for a cell at a share of saturation."""
    return f"{conns}/{response_size}" + (f"@{load_text(load)}" if load is not None else "")


def _keyed_by_load(rates: dict, share: float) -> dict:
    """A recorded run's cell_rates with every key at a load: runs before the load axis keyed
    their --rate auto rates "conns/size" alone (at AUTO_RATE_SHARE)."""
    return {key if "@" in key else f"{key}@{load_text(share)}": rate for key, rate in rates.items()}


# --- parsers (each raises ConfigError naming the option) ------------------------------------


def parse_rate(value) -> tuple[int | None, tuple[float, ...]]:
    """--rate: (absolute requests/s or None, shares of saturation) from 'off' (unpaced), 'auto'
    (AUTO_RATE_SHARE), '20000' (one absolute rate) or '30%,70%' (a cell at each share, ascending)."""
    text = "" if value is None else str(value).strip()
    if text in ("", RATE_OFF):
        return None, ()
    if text == "auto":
        return None, (AUTO_RATE_SHARE,)
    items = _items(text)
    if len(items) > 1 and {"auto", RATE_OFF} & set(items):
        word = "auto" if "auto" in items else RATE_OFF
        raise ConfigError(f"--rate {text}: {word} stands alone; give loads as shares of saturation (30%,70%)")
    if not any(item.endswith("%") for item in items):
        if len(items) > 1:
            raise ConfigError(f"--rate {text}: one absolute rate per run; several loads are shares of "
                              "saturation (30%,70%)")
        return parse_int(text, "--rate", 1), ()
    shares = tuple(_parse_share(item, text) for item in items)
    if len(set(shares)) != len(shares):
        raise ConfigError(f"--rate {text} repeats a load")
    return None, tuple(sorted(shares))


def _parse_share(item: str, text: str) -> float:
    """One share of saturation ('30%' -> 0.3), above 0% and at most 100%."""
    if not item.endswith("%"):
        raise ConfigError(f"--rate {text}: {item!r} is no share of saturation; write every load as one (30%,70%)")
    try:
        percent = float(item[:-1])
    except ValueError:
        raise ConfigError(f"--rate {text}: {item!r} is no share of saturation (e.g. 50%)") from None
    if not 0 < percent <= 100 or percent != percent:
        raise ConfigError(f"--rate {text}: {item} must be above 0% and at most 100% of saturation")
    return round(percent / 100, 6)


def parse_int(value, option: str, minimum: int | None = None, maximum: int | None = None) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a whole number") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{option} {number} must be at least {minimum}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{option} {number} must be at most {maximum}")
    return number


def _items(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value]
    return [v.strip() for v in str(value).split(",")]


def parse_int_list(value, option: str, minimum: int = 1) -> tuple[int, ...]:
    items = _items(value)
    if not items or any(not i for i in items):
        raise ConfigError(f"{option} {value!r}: give a comma-separated list of whole numbers")
    numbers = tuple(parse_int(i, option, minimum) for i in items)
    if len(set(numbers)) != len(numbers):
        raise ConfigError(f"{option} {value!r} repeats a value")
    return numbers


def parse_size(value, option: str) -> int:
    """Bytes from '88', '4k', '1m', '64KiB' (k = 1024)."""
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        text = str(value).strip()
    m = _SIZE.match(text)
    if not m:
        raise ConfigError(f"{option} {value!r} is not a size (e.g. 88, 4k, 1m)")
    number = int(m.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[m.group(2).lower()]
    if number < 1:
        raise ConfigError(f"{option} {value!r} must be at least 1 byte")
    return number


def parse_size_list(value, option: str) -> tuple[int, ...]:
    items = _items(value)
    if not items or any(not i for i in items):
        raise ConfigError(f"{option} {value!r}: give a size or a comma-separated list of sizes")
    sizes = tuple(parse_size(i, option) for i in items)
    if len(set(sizes)) != len(sizes):
        raise ConfigError(f"{option} {value!r} repeats a size")
    return sizes


def parse_cpu_list(value, option: str, online: set[int]) -> tuple[int, ...]:
    """CPUs from '0', '0,2', '0-3' (Linux list format); each must be online and usable."""
    cpus: list[int] = []
    for item in _items(value):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", item)
        if not m:
            raise ConfigError(f"{option} {value!r} is not a CPU list (e.g. 0 or 0,2 or 2-3)")
        low, high = int(m.group(1)), int(m.group(2) or m.group(1))
        if high < low:
            raise ConfigError(f"{option} {value!r}: range {item} runs backwards")
        cpus.extend(range(low, high + 1))
    missing = sorted(set(cpus) - online)
    if missing:
        raise ConfigError(f"{option} {value!r}: CPU {format_cpus(missing)} does not exist or is not "
                          f"usable here (usable: {format_cpus(sorted(online))})")
    if len(set(cpus)) != len(cpus):
        raise ConfigError(f"{option} {value!r} repeats a CPU")
    return tuple(sorted(cpus))


def format_cpus(cpus) -> str:
    return ",".join(str(c) for c in cpus)


def available_cpus() -> set[int]:
    """CPUs this process may run on (online and in our affinity mask)."""
    return set(os.sched_getaffinity(0))


def default_nofile() -> int:
    """MAX_NOFILE, or the hard limit this host hands its processes when lower: without
    CAP_SYS_RESOURCE in the bounding set a container cannot be given more than the daemon has."""
    return min(MAX_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE)[1])


def host_limit(name: str) -> int:
    """Hard limit of this process for 'memlock' or 'nofile' (-1 = unlimited)."""
    which = {"memlock": resource.RLIMIT_MEMLOCK, "nofile": resource.RLIMIT_NOFILE}[name]
    hard = resource.getrlimit(which)[1]
    return -1 if hard == resource.RLIM_INFINITY else hard


def port_in_use(port: int, bind: str = DEFAULT_BIND) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((bind, port))
        except OSError:
            return True
    return False


# --- rerun from a manifest (`invoke bench --from RUN/manifest.json`) -------------------------


def args_of_config(recorded: dict) -> dict:
    """Config.from_args keyword arguments that rebuild a recorded Config (manifest["config"])."""
    servers = recorded.get("servers") or [DEFAULT_SERVER]
    args = {
        "mode": recorded.get("mode") or DEFAULT_MODE,
        "server": "both" if len(servers) > 1 else servers[0],
        "conns": ",".join(map(str, recorded["conns"])),
        "response_size": ",".join(map(str, recorded["response_sizes"])),
        "duration": recorded["duration_s"], "warmup": recorded["warmup_s"], "repeat": recorded["repeat"],
        "zc_max_inflight": recorded["zc_max_inflight"], "drop_ipc_lock": recorded["drop_ipc_lock"],
        "zc_min_bytes": recorded.get("zc_min_bytes"),
        "memlock": recorded["memlock"], "nofile": recorded["nofile"],
        "server_cpus": format_cpus(recorded["server_cpus"]), "loadgen_cpus": format_cpus(recorded["loadgen_cpus"]),
        "threads": recorded["threads"], "port": recorded["port"], "bind": recorded.get("bind", DEFAULT_BIND),
        "path": recorded.get("path", DEFAULT_PATH), "label": recorded.get("label", DEFAULT_LABEL),
        "seed": recorded["seed"], "extra": recorded.get("extra") or {},
        "rate": _recorded_rate(recorded),
        "inventory": recorded.get("inventory") or None,
        "loadgen": recorded.get("loadgen") or DEFAULT_LOADGEN,
    }
    if args["server"] == "nginx":
        args["mode"] = None
    return args


def _recorded_rate(recorded: dict):
    """--rate as a recorded config had it."""
    shares = tuple(recorded.get("rate_shares") or ())
    if not recorded.get("rate_auto"):
        return recorded.get("rate")
    if not shares or shares == (AUTO_RATE_SHARE,):
        return "auto"
    return ",".join(load_text(share) for share in shares)


def rerun_config(manifest_path: str | Path, overrides: dict, **host) -> Config:
    """The recorded run's Config again (same matrix, seed, hence cell order, and any rates
    --rate auto chose), with `overrides` (options the user gave) applied and recorded."""
    path = Path(manifest_path)
    try:
        recorded = json.loads(path.read_text())["config"]
    except FileNotFoundError:
        raise ConfigError(f"--from {manifest_path}: no such manifest") from None
    except (json.JSONDecodeError, KeyError, TypeError):
        raise ConfigError(f"--from {manifest_path}: not a zcbench manifest with a config") from None
    if recorded.get("calibration_work") or recorded.get("calibration_stall"):
        raise ConfigError(f"--from {manifest_path}: a calibration run; rerun it with `invoke calibrate`")
    try:
        args = args_of_config(recorded)
    except KeyError as exc:
        raise ConfigError(f"--from {manifest_path}: the recorded config lacks {exc}") from None
    args.update(overrides)
    args["extra"] = dict(args["extra"]) | {"rerun_of": str(path.resolve().parent),
                                            "rerun_overrides": sorted(overrides)}
    config = Config.from_args(**args, **host)
    # The rates a --rate auto pilot chose are part of what is rerun (unless --rate was given), lower
    # where the recorded run could not hold them (core.samples.lower_rates).
    if "rate" not in overrides and recorded.get("cell_rates"):
        rates = _keyed_by_load(recorded["cell_rates"], AUTO_RATE_SHARE) if config.rate_auto else dict(recorded["cell_rates"])
        lowered = {key: rate for key, rate in
                   _keyed_by_load({rate_key(*cell): rate for cell, rate in lower_rates(_recorded_samples(path)).items()},
                                  AUTO_RATE_SHARE).items()
                   if config.rate_auto and key in rates}
        config = replace(config, cell_rates=rates | lowered,
                         extra=config.extra | ({"rates_lowered": lowered} if lowered else {}))
    return config


def _recorded_samples(manifest_path: Path) -> list:
    """The samples beside a recorded manifest (none when they cannot be read)."""
    try:
        return load_samples(manifest_path.parent)
    except (OSError, ValueError):
        return []
