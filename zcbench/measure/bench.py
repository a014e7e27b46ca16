"""The bench runner: Config -> plan -> one measured cell at a time -> results/<run>/.

    run_bench(config) -> Path of the run directory

One server container per arm lives for the whole run, each on its own port, pinned to the
same server CPUs. Per cell: an optional warmup wrk run, then the measured window, with that
server's counters and both containers' cgroup CPU time read at its two ends
(measure.windows), so every number of a sample is a delta over its window. At the end each
server is stopped with SIGTERM and its final JSON kept in the manifest. Each sample is
appended to samples.jsonl as soon as its cell finishes.

Everything that can be checked without starting a container (arguments, Docker reachable,
images present, port free, limits grantable) is checked first by `preflight`. On Ctrl-C or
any failure every container labelled with the run id is removed, the samples so far stay,
and the manifest says "complete": false with the reason.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from zcbench.core import rundir, samples
from zcbench.core.signals import signals_deferred, sigterm_raises
from zcbench.measure import containers, counters, image_contents, images, loadgen, manifest
from zcbench.measure.config import (HOSTS_PATH, Config, ConfigError, format_cpus, host_limit, inventory_hosts,
                                    port_in_use)
from zcbench.host.engines import EngineUnreachable, host_client
from zcbench.measure.host_images import image_id_on
from zcbench.measure.loadgen.base import LoadgenError, LoadRun, achieved_rate, combine_results, paced_window_s
from zcbench.measure.pilot import auto_rates, pilot_config, with_rates
from zcbench.measure.plan import plan_cells
from zcbench.measure import servers
from zcbench.measure.servers import ServerPool, server_ports, start_servers
from zcbench.measure.windows import open_now, run_bracketed, run_scheduled, settled_counters

REQUEST_TIMEOUT_S = 5  # the load generator counts a request slower than this as a timeout error


class PreflightError(RuntimeError):
    """Something checked before any container starts is wrong; the message is one line."""


#: Errors that are the user's input or environment: tasks print the message and exit 2.
USER_ERRORS = (ConfigError, PreflightError, containers.DockerUnavailable, images.ImageError)
#: Failures during a run (after cleanup, with the run marked incomplete): one line, exit 1.
RUN_ERRORS = (containers.ContainerError, LoadgenError, counters.StatsError)


# --- before any container ---------------------------------------------------------------------


def needed_images(config: Config) -> list[str]:
    names = ["loadgen"]
    names += ["server"] if "zcbench" in config.servers else []
    names += ["nginx"] if "nginx" in config.servers else []
    return names


def check_limits(config: Config, bounding: list[str]) -> None:
    """Without CAP_SYS_RESOURCE no container can get limits above the daemon's hard limits."""
    if "SYS_RESOURCE" in bounding:
        return
    for name, wanted in (("memlock", config.memlock), ("nofile", config.nofile)):
        hard = host_limit(name)
        if hard != -1 and (wanted == -1 or wanted > hard):
            shown = "unlimited" if wanted == -1 else str(wanted)
            raise PreflightError(f"--{name} {shown} exceeds this host's hard limit {hard} and "
                                 "CAP_SYS_RESOURCE is not in the capability bounding set: lower it")


@dataclass
class LoadgenHost:
    """A host wrk runs on: this machine, or an inventory's loadgen host reached over SSH."""
    name: str
    client: object
    local: bool  # this machine's engine (cgroup files readable here)
    image_id: str
    running: containers.Running | None = None  # its wrk container, once started


@dataclass
class ServerHost:
    """The host the server containers run on: this machine, or the inventory's server host."""
    name: str
    client: object
    local: bool


def remote_engine(host, wanted: dict[str, str]):
    """A host's engine over SSH, checked: reachable, holding the very images built here
    (name -> id); its client."""
    try:
        client = host_client(host, timeout=120)
    except EngineUnreachable as exc:
        raise PreflightError(str(exc)) from None
    for name, image_id in wanted.items():
        remote_id = image_id_on(client, images.TAGS[name])
        if remote_id != image_id:
            client.close()
            state = "missing" if remote_id is None else f"{remote_id[7:19]}, not this machine's {image_id[7:19]}"
            raise PreflightError(f"{host.name}: image {images.TAGS[name]} {state}: run `invoke build -i INVENTORY`")
    return client


def check_cpus(client, host: str, cpus, option: str) -> None:
    """Another host's CPU numbers against its own count."""
    count = client.info().get("NCPU") or 0
    if max(cpus) >= count:
        raise PreflightError(f"{option} {format_cpus(cpus)}: {host} has {count} CPUs")


def engines(config: Config, client, image_ids: dict, inventory) -> tuple[ServerHost, list[LoadgenHost]]:
    """Where the server and wrk run: this machine, or the inventory's hosts (remote ones
    checked)."""
    if inventory is None:
        return ServerHost("localhost", client, True), [LoadgenHost("localhost", client, True, image_ids["loadgen"])]
    opened: list = []
    try:
        server = ServerHost(inventory.server.name, client, True)
        if not inventory.server.is_control:
            wanted = {name: image_ids[name] for name in needed_images(config) if name != "loadgen"}
            server = ServerHost(inventory.server.name, remote_engine(inventory.server, wanted), False)
            opened.append(server.client)
            check_cpus(server.client, server.name, config.server_cpus, "--server-cpus")
        loadgens = []
        for host in inventory.loadgens:
            if host.is_control:
                loadgens.append(LoadgenHost(host.name, client, True, image_ids["loadgen"]))
                continue
            remote = remote_engine(host, {"loadgen": image_ids["loadgen"]})
            opened.append(remote)
            check_cpus(remote, host.name, config.loadgen_cpus, "--loadgen-cpus")
            loadgens.append(LoadgenHost(host.name, remote, False, image_ids["loadgen"]))
    except BaseException:
        for remote in opened:
            remote.close()
        raise
    return server, loadgens


def remote_clients(server: ServerHost, loadgens: list[LoadgenHost]) -> list:
    """The clients of other hosts' engines, each once."""
    found = ([] if server.local else [server.client]) + [lg.client for lg in loadgens if not lg.local]
    return list({id(client): client for client in found}.values())


def preflight(config: Config):
    """Check what needs the engines; return (this machine's client, image ids, the inventory or
    None, server host, loadgen hosts). Starts no container."""
    client = containers.docker_client()
    image_ids = images.require_images(client, needed_images(config))
    inventory = inventory_hosts(config.inventory) if config.inventory else None
    server_here = inventory is None or inventory.server.is_control
    if server_here and config.path in ("loopback", HOSTS_PATH):
        ports = sorted(server_ports(config, plan_cells(config)).values())
        taken = [port for port in ports if port_in_use(port, config.bind)]
        if taken:
            wanted = f"{ports[0]}-{ports[-1]}" if len(ports) > 1 else str(ports[0])
            raise PreflightError(f"port {config.bind}:{taken[0]} is in use (the run's servers listen on "
                                 f"{wanted}, one per arm and size): choose another --port, or run "
                                 "`invoke provision` (it keeps those ports out of clients' source ports)")
    if server_here:  # another host's engine says itself what limits it grants
        check_limits(config, containers.bounding_capabilities())
    try:
        Path(config.out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PreflightError(f"--out {config.out}: cannot create it ({exc.strerror})") from None
    if not os.access(config.out, os.W_OK):
        raise PreflightError(f"--out {config.out} is not writable")
    return (client, image_ids, inventory, *engines(config, client, image_ids, inventory))


# --- the network path -------------------------------------------------------------------------


@dataclass(frozen=True)
class NetPath:
    kind: str  # "loopback" | "veth" | "hosts"
    server_bind: str  # where the server listens (on the host)
    target: str  # the address wrk connects to
    loadgen_network: str  # "host" or the Docker network the loadgen joins
    interface: str

    note: str = ""

    def to_json(self) -> dict:
        return {"kind": self.kind, "server_bind": self.server_bind, "target": self.target,
                "loadgen_network": self.loadgen_network, "interface": self.interface,
                "note": self.note or ("loopback: server and wrk share the host network namespace"
                                      if self.kind == "loopback" else
                                      "veth: wrk in its own network namespace on a Docker bridge network; "
                                      "its traffic crosses a veth pair and the bridge to the host")}


def setup_path(client, config: Config, run_id: str, inventory=None) -> NetPath:
    if inventory is not None:
        return NetPath(HOSTS_PATH, config.bind, config.bind, "host",
                       inventory.server.interface, inventory.path_description())
    if config.path == "loopback":
        return NetPath("loopback", config.bind, config.bind, "host", "lo")
    bridge = "zcb" + hashlib.sha1(run_id.encode()).hexdigest()[:10]  # <= 15 chars (IFNAMSIZ)
    network = client.networks.create(
        f"zcbench-{run_id}", driver="bridge", labels={containers.RUN_LABEL: run_id},
        options={"com.docker.network.bridge.name": bridge})
    network.reload()
    gateway = network.attrs["IPAM"]["Config"][0]["Gateway"].split("/")[0]
    return NetPath("veth", gateway, gateway, network.name, bridge)


def remove_run_networks(client, run_id: str) -> None:
    for network in client.networks.list(filters={"label": f"{containers.RUN_LABEL}={run_id}"}):
        try:
            network.remove()
        except Exception:  # noqa: BLE001 - best effort; reported by the caller's leftovers check
            pass


# --- one cell ---------------------------------------------------------------------------------


def rate_fields(offered: int | None, results: list[dict]) -> dict:
    """What a sample records about pacing (all null when wrk ran as fast as it could): the
    achieved rate is over the paced window (from wrk's first paced request, once its connections
    are open, until it stopped; wrk.paced_window_s), summed over the loadgens."""
    if not offered:
        return {"offered_rate": None, "achieved_rate": None, "rate_sustained": None,
                "paced_window_s": None, "lapsed_slots": None}
    rates = [achieved_rate(result) for result in results]
    achieved = None if None in rates else sum(rates)
    windows = [paced_window_s(result) for result in results]
    lapsed = [(result.get("paced") or {}).get("lapsed_slots") for result in results]
    return {"offered_rate": offered, "achieved_rate": achieved,
            "rate_sustained": achieved is not None and achieved >= samples.RATE_SUSTAINED_SHARE * offered,
            "paced_window_s": None if None in windows else max(windows),
            "lapsed_slots": None if None in lapsed else sum(lapsed)}


def loadgen_share(run: LoadRun, cores: int) -> float | None:
    """wrk's CPU against the cores its threads can occupy: with fewer threads than loadgen CPUs,
    a saturated thread leaves the other cores idle and would hide behind the average."""
    return run.cpu_s / (run.wall_s * cores) if run.wall_s > 0 else None


def loadgen_record(host: str, run: LoadRun, cores: int) -> samples.LoadgenPart:
    """One loadgen host's part of a cell (samples' `loadgens`)."""
    result = run.result
    return samples.LoadgenPart(
        host=host, requests=int(result["requests"]), duration_us=result["duration_us"],
        requests_per_s=result["requests_per_s"], errors=samples.Errors.from_json(result["errors"]),
        latency_us=dict(result["latency_us"]), cpu_s=run.cpu_s, wall_s=run.wall_s,
        cpu_share=loadgen_share(run, cores), command=list(run.command),
        paced_window_s=paced_window_s(result), achieved_rate=achieved_rate(result))


def build_sample(cell: samples.Cell, *, started_at: str, finished_at: str, measured: LoadRun | list[LoadRun],
                 server_counters: dict | None, server_cpu_s: float | None, loadgen_cores: int,
                 server_exit: dict | None = None, offered_rate: int | None = None,
                 server_responses: int | None = None,
                 loadgen_names: list[str] | None = None, generator: str = loadgen.DEFAULT,
                 window: dict | None = None) -> samples.Sample:
    """One samples.jsonl record (schema: zcbench/samples.py) from what a cell measured: one wrk
    run, or one per loadgen host (summed; each kept under `loadgens`)."""
    runs = measured if isinstance(measured, list) else [measured]
    names = loadgen_names or ["localhost"] * len(runs)
    parts = [loadgen_record(name, run, _cores_used(run, loadgen_cores)) for name, run in zip(names, runs)]
    result = combine_results([run.result for run in runs])
    requests = int(result["requests"])
    duration_s = result["duration_us"] / 1e6
    # the busiest loadgen decides whether the cell measured the server or the load generator
    shares = [part.cpu_share for part in parts if part.cpu_share is not None]
    share = max(shares) if shares else None
    # several loadgens: the sum of their own rates, each over its own clock (combine_results)
    requests_per_s = (result["requests_per_s"] if len(runs) > 1
                      else requests / duration_s if duration_s > 0 else None)
    responses = server_counters.get("responses") if server_counters else None  # in the window
    if server_responses is None:
        server_responses = responses
    errors = samples.Errors.from_json(result["errors"])
    return samples.Sample(
        cell=cell,
        started_at=started_at,
        finished_at=finished_at,
        duration_s=duration_s,
        loadgen_result=result,
        requests=requests,
        requests_per_s=requests_per_s,
        latency_us=samples.Latency.from_json(result["latency_us"]),
        errors=errors,
        non_2xx=errors.status,
        server_counters=server_counters,
        # wrk counts the responses it completed before it stopped, the server those it sent from
        # the window's start until the generator ended: the server's may exceed wrk's by the
        # requests in flight when wrk stopped its clock (at most one a connection), never fall short
        server_responses=server_responses,
        responses_minus_requests=None if server_responses is None else server_responses - requests,
        server_cpu_s=server_cpu_s,
        cpu_us_per_request=cpu_per_request(server_cpu_s, responses, requests),
        loadgen_cpu_s=sum(run.cpu_s for run in runs),
        loadgen_wall_s=max(run.wall_s for run in runs),
        loadgen_cpu_share=share,
        loadgen_bound=share is not None and share >= samples.LOADGEN_BOUND_SHARE,
        loadgens=parts,
        server_exit=server_exit,
        loadgen_command=list(runs[0].command),
        loadgen=generator,
        window=window,
        **rate_fields(offered_rate, [run.result for run in runs]),
    )


def cpu_per_request(server_cpu_s: float | None, responses: int | None, requests: int) -> float | None:
    """Server CPU microseconds per response it sent, both over the same window; per request wrk
    completed when the server keeps no counters (nginx). (wrk also counts requests answered
    after the window's end snapshot, when the server lagged: up to a few percent at 4000
    connections here, which would understate the server's CPU per request.)"""
    served = responses or requests
    return server_cpu_s * 1e6 / served if server_cpu_s is not None and served else None


def _cores_used(run: LoadRun, cpus: int) -> int:
    """The loadgen cores a run could occupy: its threads, at most the CPUs it had."""
    return min(cpus, run.threads) if run.threads else cpus


@dataclass
class RunContext:
    client: object
    config: Config
    run_id: str
    path: NetPath
    loadgens: list[LoadgenHost]
    servers: ServerPool
    generator_thread: ThreadPoolExecutor  # a scheduled window's generator runs here (measure.windows)
    scheduled: bool  # paced cells run in scheduled windows


#: What a zcbench server of a cell runs with (servers.server_spec; callers know it by this name).
server_spec = servers.server_spec


def can_schedule(config: Config, server: ServerHost, loadgens: list[LoadgenHost]) -> bool:
    """Scheduled windows need the generator's support, one loadgen and every container on this
    machine: the window is on this host's monotonic clock, agreed through the loadgen's launcher,
    and the snapshots read this host's cgroup files."""
    return (loadgen.get(config.loadgen).schedules_windows and server.local and len(loadgens) == 1
            and loadgens[0].local and loadgens[0].running.launcher is not None)


def measure_cell(ctx: RunContext, cell: samples.Cell) -> samples.Sample:
    """The cell's server (running since the run began), an optional warmup, then its window:
    scheduled when paced on this machine, else bracketing the generator's run."""
    cfg = ctx.config
    server = ctx.servers.for_cell(cell)
    url = f"http://{ctx.path.target}:{server.port}/"
    rate = cfg.rate_for(cell.conns, cell.response_size, cell.load)
    generator = loadgen.get(cfg.loadgen)
    running = [host.running for host in ctx.loadgens]
    load = {"conns": cell.conns, "threads": cfg.threads, "timeout_s": REQUEST_TIMEOUT_S, "rate": rate}
    started_at = manifest.utc_now()
    if cfg.warmup_s > 0:
        open_before = open_now(server.running)
        generator.run_together(running, url, duration_s=cfg.warmup_s, **load)
        # the warmup's connections closed before the window's generator connects (the window's
        # accounting waits for the server's open connections to come back to their level)
        settled_counters(server.running, open_before)
    if rate and ctx.scheduled:
        measured = run_scheduled(ctx.generator_thread, generator, server.running, running[0], url,
                                 duration_s=cfg.duration_s, **load)
    else:
        measured = run_bracketed(generator, server.running, running, url, duration_s=cfg.duration_s, **load)
    return build_sample(cell, started_at=started_at, finished_at=manifest.utc_now(), measured=measured.runs,
                        server_counters=measured.server_counters, server_cpu_s=measured.server_cpu_s,
                        loadgen_cores=len(cfg.loadgen_cpus), offered_rate=rate,
                        loadgen_names=[host.name for host in ctx.loadgens], generator=generator.name,
                        window=measured.window, server_responses=measured.server_responses)


# --- progress ---------------------------------------------------------------------------------


@contextmanager
def progress_bar(total: int, quiet: bool):
    """yields advance(description): rich progress with cells done and ETA, or nothing if quiet."""
    if quiet:
        yield lambda description, done=False: None
        return

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("ETA"),
                  TimeRemainingColumn()) as progress:
        task = progress.add_task("starting", total=total)

        def advance(description: str, done: bool = False) -> None:
            progress.update(task, description=description, advance=1 if done else 0)

        yield advance


def with_auto_rates(config: Config, log=print, render: Render | None = None) -> Config:
    """--rate auto for a caller that runs its own runs (calibrate): a short pilot run (its own run
    directory and containers) saturating every arm through the paced generator, then the rates
    it implies. `invoke bench` runs its pilot on the run's own containers instead (run)."""
    pilot_dir = run_bench(pilot_config(config), log=log, render=render)
    return _rated(config, pilot_dir, log)


def _rated(config: Config, pilot_dir: Path, log) -> Config:
    rates = auto_rates(rundir.load_samples(pilot_dir), config.rate_shares)
    if not config.quiet:
        shares = ", ".join(samples.load_text(share) for share in config.rate_shares)
        log(f"zcbench: --rate: {shares} of the slower arm's saturation: "
            + ", ".join(f"{key} -> {rate}/s" for key, rate in rates.items()))
    return with_rates(config, rates, pilot_dir)


#: What renders a run directory once its cells are done (present.report.render_run): measure
#: does not import present, jobs hands it in. If it returns a callable, that writes the report
#: again once the run's final timing (rendering included) is in the manifest.
Render = Callable[[Path], object]


def run(config: Config, log=print, render: Render | None = None, started: float | None = None) -> Path:
    """`invoke bench`: the run, preceded by its rate pilot on the same containers (--rate auto).
    `started`: the command's start on the monotonic clock (the run's timing counts from it)."""
    return run_bench(config, log, render, started=started, pilot=config.rate_auto and not config.cell_rates)


@dataclass
class RunProgress:
    """How far a run got and how long its parts took (the manifest's "timing")."""
    started: float  # monotonic
    since: str  # what `started` is: "command" (the process's start) or "run"
    cells_planned: int = 0
    done: int = 0
    complete: bool = False
    reason: str | None = "interrupted before the first cell"
    measured_s: float = 0.0  # the run's windows (Sample.measured_window_s), summed
    pilot_s: float = 0.0  # wall time of the rate pilot
    pilot_measured_s: float = 0.0
    setup_s: float | None = None  # from the start until the first cell (the pilot's included)
    cells_s: float | None = None  # from the first cell to the last one's end


def run_bench(config: Config, log=print, render: Render | None = None, *, started: float | None = None,
              pilot: bool = False) -> Path:
    """Run the whole plan (after its rate pilot if `pilot`); return the run directory (also when
    cut short: the exception propagates after cleanup, with the run marked incomplete).
    `render` makes its report."""
    progress = RunProgress(time.monotonic(), "run") if started is None else RunProgress(started, "command")
    client, image_ids, inventory, server, loadgens = preflight(config)
    remove_orphans([server.client, *(host.client for host in loadgens)])
    cells = plan_cells(config)
    progress.cells_planned = len(cells)
    run_id, run_dir = rundir.new_run_dir(Path(config.out), config.label)
    pool = ServerPool(server.client)
    generator_thread = ThreadPoolExecutor(max_workers=1)  # a scheduled window's generator runs here
    record: dict = {}
    try:
        with sigterm_raises(lambda signum: KeyboardInterrupt(f"signal {signum}")):
            # a throwaway container of an image the server's engine holds (its command is moot);
            # it runs while the manifest's facts are read (half a second each)
            probe_image = image_ids["loadgen"] if server.local else image_ids.get("server") or image_ids["nginx"]
            probe = generator_thread.submit(containers.privilege_options, server.client, probe_image, run_id)
            path = setup_path(client, config, run_id, inventory)
            facts = _facts_record(client, config, run_id, run_dir, server, loadgens, image_ids, inventory)
            privilege = probe.result()
            record = _initial_record(config, run_id, run_dir, cells, path, server, privilege, image_ids,
                                     inventory, facts)
            if not config.quiet:
                log(f"zcbench: run {run_id}: {len(cells)} cells, server CPUs "
                    f"{format_cpus(config.server_cpus)}, wrk CPUs {format_cpus(config.loadgen_cpus)}, "
                    f"{privilege.mode} server container")
            for host in loadgens:
                host.running = containers.start_loadgen(
                    host.client, host.image_id, cpus=config.loadgen_cpus, nofile=config.nofile,
                    run_id=run_id, network=path.loadgen_network, local=host.local,
                    name=f"zcbench-{run_id}-loadgen" + (f"-{host.name}" if config.inventory else ""))
            generator = loadgen.get(config.loadgen)
            record["loadgen"] = {"name": generator.name, "version": generator.version(loadgens[0].running)}
            start_servers(server.client, config, cells, image_ids=image_ids, run_id=run_id, privilege=privilege,
                          bind=path.server_bind, local=server.local, pool=pool)
            record["servers"] = pool.describe()
            rundir.write_manifest(run_dir, record)
            ctx = RunContext(server.client, config, run_id, path, loadgens, pool, generator_thread,
                             scheduled=can_schedule(config, server, loadgens))
            if pilot:
                ctx.config = config = _run_pilot(ctx, config, run_dir, progress, log)
                record["config"] = config.to_json()
                rundir.write_manifest(run_dir, record)
            _run_cells(ctx, cells, run_dir, progress)
            progress.complete, progress.reason = True, None
    except KeyboardInterrupt:
        progress.reason = f"interrupted after {progress.done} of {len(cells)} cells"
        raise
    except BaseException as exc:
        progress.reason = f"failed after {progress.done} of {len(cells)} cells: {type(exc).__name__}: {exc}"
        raise
    finally:
        with signals_deferred():
            _finish(client, config, run_id, run_dir, record, progress, pool, generator_thread, log, server,
                    loadgens, render)
    return run_dir


def remove_orphans(clients: list) -> None:
    """Before a run starts: remove what runs killed outright left on its engines (their process is
    gone, so no cleanup of theirs ran), one line each on stderr."""
    seen: set[int] = set()
    for client in clients:
        if id(client) in seen:
            continue
        seen.add(id(client))
        for run_id, names in containers.remove_orphaned_runs(client).items():
            print(f"zcbench: removed {len(names)} container(s) of run {run_id}, whose process is gone "
                  "(killed outright, or the machine restarted)", file=sys.stderr)


def _facts_record(client, config, run_id, run_dir, server, loadgens, image_ids, inventory) -> dict:
    """The manifest's parts that need no container of the run: the images' contents and, across
    an inventory, its hosts."""
    facts = {"image_contents": image_contents.record_image_contents(client, image_ids, run_dir, run_id)}
    if inventory:
        hosts = manifest.inventory_hosts_record(
            inventory, {server.name: server.client} | {lg.name: lg.client for lg in loadgens})
        # each checked equal to this machine's in preflight
        hosts[server.name]["images"] = {images.TAGS[n]: i for n, i in image_ids.items() if n != "loadgen"}
        for host in loadgens:
            hosts[host.name].setdefault("images", {})[images.TAGS["loadgen"]] = host.image_id
        facts["hosts"] = hosts
    return facts


def _initial_record(config, run_id, run_dir, cells, path, server, privilege, image_ids, inventory,
                    facts: dict) -> dict:
    """The manifest before the first cell (written): what runs where, with which images."""
    limits = {"server_memlock": config.memlock, "server_nofile": config.nofile, "loadgen_nofile": config.nofile}
    record = manifest.initial_manifest(
        run_id=run_id, config=config, cells=cells, path=path.to_json(), client=server.client,
        privilege=privilege, image_ids={images.TAGS[n]: i for n, i in image_ids.items()},
        limits=limits, server_host=inventory.server if inventory else None) | facts
    rundir.write_manifest(run_dir, record)
    return record


def _run_pilot(ctx: RunContext, config: Config, run_dir: Path, progress: RunProgress, log) -> Config:
    """--rate auto on the run's own containers: the saturated pilot's samples into the run's
    rate-pilot directory, and the config with the rates they imply."""
    began = time.monotonic()
    pilot = pilot_config(config)
    pilot_dir = rundir.new_part_dir(run_dir, rundir.RATE_PILOT)
    pilot_cells = plan_cells(pilot)
    rundir.write_manifest(pilot_dir, manifest.part_manifest(f"{ctx.run_id}/{rundir.RATE_PILOT}", pilot,
                                                            pilot_cells, part_of=ctx.run_id))
    ctx.config = pilot
    measured = [_measure_into(ctx, cell, pilot_dir) for cell in pilot_cells]
    ctx.config = config
    progress.pilot_s = time.monotonic() - began
    progress.pilot_measured_s = sum(sample.measured_window_s for sample in measured)
    rundir.write_manifest(pilot_dir, manifest.finish_part_manifest(
        rundir.read_manifest(pilot_dir), timing={"wall_s": round(progress.pilot_s, 3),
                                                 "measured_s": round(progress.pilot_measured_s, 3)}))
    return _rated(config, pilot_dir, log)


def _measure_into(ctx: RunContext, cell: samples.Cell, run_dir: Path) -> samples.Sample:
    sample = measure_cell(ctx, cell)
    rundir.append_sample(run_dir, sample)
    return sample


def _run_cells(ctx: RunContext, cells: list[samples.Cell], run_dir: Path, progress: RunProgress) -> None:
    began = time.monotonic()
    progress.setup_s = began - progress.started
    with progress_bar(len(cells), ctx.config.quiet) as advance:
        for cell in cells:
            advance(cell.describe())
            progress.measured_s += _measure_into(ctx, cell, run_dir).measured_window_s
            progress.done += 1
            progress.cells_s = time.monotonic() - began
            advance(cell.describe(), done=True)


def remove_everywhere(client, server: ServerHost, loadgens: list[LoadgenHost], run_id: str) -> list[str]:
    """The run's containers removed from this engine and every other host's; the containers'
    names (another host's prefixed by it)."""
    removed = containers.remove_run_containers(client, run_id)
    names = {id(server.client): server.name} | {id(lg.client): lg.name for lg in loadgens}
    for remote in remote_clients(server, loadgens):
        host = names[id(remote)]
        try:
            removed += [f"{host}:{name}" for name in containers.remove_run_containers(remote, run_id)]
        except Exception as exc:  # noqa: BLE001 - the others are still removed; said in the manifest
            removed.append(f"{host}: NOT CLEANED ({type(exc).__name__}: {str(exc)[:120]})")
    return removed


def _render(render: Render | None, run_dir: Path) -> tuple[object, str | None]:
    """The run's report (and what render returned); the reason when it could not be rendered
    (the samples are kept)."""
    if render is None:
        return None, None
    try:
        return render(run_dir), None
    except Exception as exc:  # noqa: BLE001 - the samples are kept; the report can be redone
        return None, f"rendering failed: {type(exc).__name__}: {exc} (retry with `invoke report`)"


def timing_record(progress: RunProgress, wall_s: float, warmup_s: int) -> dict:
    """The manifest's "timing": the wall time from the start ("started" says which: the command's
    or the run's) to the report, the seconds inside the run's measured windows and their share."""
    return {"wall_s": round(wall_s, 3), "measured_s": round(progress.measured_s, 3),
            "measured_share": round(progress.measured_s / wall_s, 4) if wall_s > 0 else None,
            "started": progress.since, "setup_s": _rounded(progress.setup_s), "cells_s": _rounded(progress.cells_s),
            "pilot_s": round(progress.pilot_s, 3), "pilot_measured_s": round(progress.pilot_measured_s, 3),
            "warmup_s": progress.done * warmup_s, "cells_done": progress.done,
            "cells_planned": progress.cells_planned}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _finish(client, config, run_id, run_dir, record, progress: RunProgress, pool: ServerPool,
            generator_thread: ThreadPoolExecutor, log, server, loadgens, render: Render | None) -> None:
    """Cleanup and the final manifest; runs on success, Ctrl-C and failure alike."""
    exits = pool.stop() if progress.complete else []  # the servers' final JSON when it all went well
    removed = remove_everywhere(client, server, loadgens, run_id)
    # a cut run's generator sees its container gone within a second (launcher.ALIVE_CHECK_S)
    generator_thread.shutdown(wait=True)
    pool.remove_work_dirs()
    for host in loadgens:
        if host.running is not None and host.running.launcher is not None:
            host.running.launcher.close()
    remove_run_networks(client, run_id)
    for remote in remote_clients(server, loadgens):
        remote.close()
    if not record:  # failed before the manifest was assembled: still leave a marked manifest
        record = {"run_id": run_id, "config": config.to_json(), "started_at": None}
    if exits:
        record["servers"] = exits

    def final_manifest(render_error: str | None) -> dict:
        timing = timing_record(progress, time.monotonic() - progress.started, config.warmup_s)
        final = manifest.finish_manifest(record, complete=progress.complete, reason=progress.reason, timing=timing,
                                         extra={"containers_removed_at_end": removed})
        if render_error:
            final["report_error"] = render_error
        rundir.write_manifest(run_dir, final)
        return final

    final = final_manifest(None if progress.done else "no samples")
    # The report reads the final manifest; its timing is written again once the report is, and
    # the report's text then once more with it (what render returned does that).
    rendered, render_error = _render(render, run_dir) if progress.done else (None, None)
    final = final_manifest(render_error or final.get("report_error"))
    if callable(rendered):
        rendered()
    rundir.point_latest(run_dir)
    timing = final["timing"]
    if not config.quiet and progress.complete:
        log(f"zcbench: {progress.done} cells in {timing['wall_s']:.0f} s, {timing['measured_s']:.0f} s of it "
            f"measured ({timing['measured_share']:.0%}); results in {run_dir}")
    if render_error and progress.done and not config.quiet:
        log(f"zcbench: report not rendered: {render_error}")
