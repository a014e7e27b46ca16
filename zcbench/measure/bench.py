"""The bench runner: Config -> plan -> one measured cell at a time -> results/<run>/.

    run_bench(config) -> Path of the run directory

Per cell: a fresh server container (fresh counters), a warmup wrk run, then the measured wrk
run with the server's counters and both containers' cgroup CPU time read right before and
right after it; the server is stopped with SIGTERM and its final JSON kept. Each sample is
appended to samples.jsonl as soon as its cell finishes.

Everything that can be checked without starting a container (arguments, Docker reachable,
images present, port free, limits grantable) is checked first by `preflight`. On Ctrl-C or
any failure every container labelled with the run id is removed, the samples so far stay,
and the manifest says "complete": false with the reason.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from zcbench.core import arms, rundir, samples
from zcbench.core.signals import signals_deferred, sigterm_raises
from zcbench.measure import containers, counters, image_contents, images, loadgen, manifest
from zcbench.measure.config import (ADAPTIVE_MODE, HOSTS_PATH, Config, ConfigError, format_cpus, host_limit,
                                    inventory_hosts, port_in_use, rate_key)
from zcbench.host.engines import EngineUnreachable, host_client
from zcbench.measure.host_images import image_id_on
from zcbench.measure.loadgen.base import LoadgenError, LoadRun, achieved_rate, combine_results, paced_window_s
from zcbench.measure.plan import plan_cells

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
    if server_here and config.path in ("loopback", HOSTS_PATH) and port_in_use(config.port, config.bind):
        raise PreflightError(f"port {config.bind}:{config.port} is in use: choose another --port")
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
                 loadgen_names: list[str] | None = None, generator: str = loadgen.DEFAULT) -> samples.Sample:
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
    responses = server_counters.get("responses") if server_counters else None
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
        # wrk counts only responses it completed before its clock stopped; the server also
        # counts the ones still in flight then, so `responses` is a little higher.
        server_responses=responses,
        responses_minus_requests=None if responses is None else responses - requests,
        server_cpu_s=server_cpu_s,
        cpu_us_per_request=(server_cpu_s * 1e6 / requests) if server_cpu_s is not None and requests else None,
        loadgen_cpu_s=sum(run.cpu_s for run in runs),
        loadgen_wall_s=max(run.wall_s for run in runs),
        loadgen_cpu_share=share,
        loadgen_bound=share is not None and share >= samples.LOADGEN_BOUND_SHARE,
        loadgens=parts,
        server_exit=server_exit,
        loadgen_command=list(runs[0].command),
        loadgen=generator,
        **rate_fields(offered_rate, [run.result for run in runs]),
    )


def _cores_used(run: LoadRun, cpus: int) -> int:
    """The loadgen cores a run could occupy: its threads, at most the CPUs it had."""
    return min(cpus, run.threads) if run.threads else cpus


@dataclass
class RunContext:
    client: object
    config: Config
    run_id: str
    image_ids: dict
    privilege: containers.Privilege
    path: NetPath
    loadgens: list[LoadgenHost]
    work: containers.WorkDir  # mounted into server containers (stats file, nginx conf)


def _start_cell_server(ctx: RunContext, cell: samples.Cell) -> containers.Running:
    cfg, name = ctx.config, f"zcbench-{ctx.run_id}-{cell.index}-{cell.arm}"
    if cell.server == "nginx":
        return containers.start_nginx(
            ctx.client, ctx.image_ids["nginx"], cpus=cfg.server_cpus, port=cfg.port,
            bind=ctx.path.server_bind, response_size=cell.response_size, memlock=cfg.memlock,
            nofile=cfg.nofile, run_id=ctx.run_id, work=ctx.work, name=name)
    return containers.start_server(ctx.client, ctx.image_ids["server"],
                                   server_spec(cfg, cell, ctx.path.server_bind), run_id=ctx.run_id,
                                   privilege=ctx.privilege, work=ctx.work, name=name)


def server_spec(cfg: Config, cell: samples.Cell, bind: str) -> containers.ServerSpec:
    """What a zcbench cell's server runs with; the calibration's injected work only in its arm."""
    return containers.ServerSpec(
        send=arms.send_mode(cell.arm), cpus=cfg.server_cpus, port=cfg.port, bind=bind,
        response_size=cell.response_size, zc_max_inflight=cfg.zc_max_inflight,
        drop_ipc_lock=cfg.drop_ipc_lock, memlock=cfg.memlock, nofile=cfg.nofile,
        calibration_work=cfg.calibration_work.get(cell.arm, 0),
        zc_min_bytes=cfg.zc_min_bytes if arms.send_mode(cell.arm) == ADAPTIVE_MODE else None)


def _snapshot(server: containers.Running) -> tuple[float, dict | None]:
    """CPU seconds, then the counters (reading them on another host costs the server nothing:
    the engine reads the file)."""
    cpu = server.cpu_seconds()
    if server.stats_path:
        return cpu, counters.read_stats_file(server.stats_path)["totals"]
    if server.stats_in_container:
        return cpu, counters.read_stats_buffer(
            containers.read_container_file(server.container, server.stats_in_container))["totals"]
    return cpu, None


def measure_cell(ctx: RunContext, cell: samples.Cell) -> samples.Sample:
    """Fresh server, warmup, measured run bracketed by counter/CPU snapshots, stop, sample."""
    cfg = ctx.config
    url = f"http://{ctx.path.target}:{cfg.port}/"
    rate = cfg.rate_for(cell.conns, cell.response_size)
    generator = loadgen.get(cfg.loadgen)
    started_at = manifest.utc_now()
    server = _start_cell_server(ctx, cell)
    try:
        running = [host.running for host in ctx.loadgens]
        if cfg.warmup_s > 0:
            generator.run_together(running, url, conns=cell.conns, threads=cfg.threads,
                                   duration_s=cfg.warmup_s, timeout_s=REQUEST_TIMEOUT_S, rate=rate)
        cpu_before, totals_before = _snapshot(server)
        measured = generator.run_together(running, url, conns=cell.conns, threads=cfg.threads,
                                          duration_s=cfg.duration_s, timeout_s=REQUEST_TIMEOUT_S, rate=rate)
        cpu_after, totals_after = _snapshot(server)
    finally:
        code, stdout, stderr = containers.stop_container(server)
    server_exit = {"code": code}
    if cell.server == "zcbench":
        try:
            final = counters.parse_final_json(stdout)
            server_exit["shutdown"] = final.get("shutdown")
            # Whole-life totals (warmup included): after shutdown every notification is in.
            server_exit["totals"] = final["totals"]
        except counters.StatsError as exc:
            server_exit["error"] = f"{exc}; stderr: {stderr.strip()[-200:]}"
    delta = counters.delta(totals_after, totals_before) if totals_after is not None else None
    return build_sample(cell, started_at=started_at, finished_at=manifest.utc_now(), measured=measured,
                        server_counters=delta, server_cpu_s=cpu_after - cpu_before,
                        loadgen_cores=len(cfg.loadgen_cpus), server_exit=server_exit,
                        offered_rate=rate, loadgen_names=[host.name for host in ctx.loadgens],
                        generator=generator.name)


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


#: --rate auto offers this share of the slower arm's saturated rate, measured by a pilot.
AUTO_RATE_SHARE = 0.7
PILOT_DURATION_S = 3
PILOT_REPEAT = 2
#: The pilot runs wrk through paced.lua too, with a rate no server reaches: pacing costs wrk CPU
#: (a timer per request), so saturation must be measured with the generator the run will use.
PILOT_UNREACHABLE_RATE = 100_000_000


def auto_rates(pilot_samples: list[samples.Sample], share: float = AUTO_RATE_SHARE) -> dict[str, int]:
    """Per cell ("conns/size"), `share` of the slowest arm's mean saturated rate in the pilot."""
    per_arm: dict[str, dict[str, list[float]]] = {}
    for sample in pilot_samples:
        cell, rps = sample.cell, sample.achieved_rate or sample.requests_per_s
        if rps:
            key = rate_key(cell.conns, cell.response_size)
            per_arm.setdefault(key, {}).setdefault(cell.arm, []).append(rps)
    return {key: max(1, round(share * min(sum(v) / len(v) for v in arms.values())))
            for key, arms in per_arm.items()}


def with_auto_rates(config: Config, log=print, render: Render | None = None) -> Config:
    """--rate auto: a short pilot run (its own run directory) saturating every arm through the
    paced generator, then the rates it implies."""
    pilot = replace(config, rate_auto=False, rate=PILOT_UNREACHABLE_RATE, repeat=PILOT_REPEAT,
                    duration_s=PILOT_DURATION_S, label=f"{config.label}-rate-pilot", quiet=True)
    pilot_dir = run_bench(pilot, log=log, render=render)
    rates = auto_rates(rundir.load_samples(pilot_dir))
    if not config.quiet:
        log(f"zcbench: --rate auto: {AUTO_RATE_SHARE:.0%} of the slower arm's saturation: "
            + ", ".join(f"{key} -> {rate}/s" for key, rate in rates.items()))
    return replace(config, cell_rates=rates,
                   extra=config.extra | {"rate_pilot_run": str(pilot_dir), "auto_rate_share": AUTO_RATE_SHARE})


#: What renders a run directory once its cells are done (present.report.render_run): measure
#: does not import present, jobs hands it in.
Render = Callable[[Path], object]


def run(config: Config, log=print, render: Render | None = None) -> Path:
    """`invoke bench`: the run, preceded by the rate pilot when --rate auto."""
    if config.rate_auto and not config.cell_rates:
        config = with_auto_rates(config, log, render)
    return run_bench(config, log, render)


def run_bench(config: Config, log=print, render: Render | None = None) -> Path:
    """Run the whole plan; return the run directory (also when cut short: the exception
    propagates after cleanup, with the run marked incomplete). `render` makes its report."""
    client, image_ids, inventory, server, loadgens = preflight(config)
    cells = plan_cells(config)
    run_id, run_dir = rundir.new_run_dir(Path(config.out), config.label)
    t0 = time.monotonic()
    state = {"complete": False, "reason": "interrupted before the first cell", "done": 0}
    work = None
    record: dict = {}
    try:
        with sigterm_raises(lambda signum: KeyboardInterrupt(f"signal {signum}")):
            work = containers.make_work_dir(server.client, run_id, server.local)
            # a throwaway container of an image the server's engine holds (its command is moot)
            probe_image = image_ids["loadgen"] if server.local else image_ids.get("server") or image_ids["nginx"]
            privilege = containers.privilege_options(server.client, probe_image, run_id)
            path = setup_path(client, config, run_id, inventory)
            limits = {"server_memlock": config.memlock, "server_nofile": config.nofile,
                      "loadgen_nofile": config.nofile}
            record = manifest.initial_manifest(
                run_id=run_id, config=config, cells=cells, path=path.to_json(), client=server.client,
                privilege=privilege, image_ids={images.TAGS[n]: i for n, i in image_ids.items()},
                limits=limits, server_host=inventory.server if inventory else None)
            record["image_contents"] = image_contents.record_image_contents(client, image_ids, run_dir, run_id)
            if inventory:
                record["hosts"] = manifest.inventory_hosts_record(
                    inventory, {server.name: server.client} | {lg.name: lg.client for lg in loadgens})
                # each checked equal to this machine's in preflight
                record["hosts"][server.name]["images"] = {images.TAGS[n]: i for n, i in image_ids.items()
                                                          if n != "loadgen"}
                for host in loadgens:
                    record["hosts"][host.name].setdefault("images", {})[images.TAGS["loadgen"]] = host.image_id
            rundir.write_manifest(run_dir, record)
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
            record["loadgen"] = {"name": generator.name,
                                 "version": generator.version(loadgens[0].running)}
            rundir.write_manifest(run_dir, record)
            ctx = RunContext(server.client, config, run_id, image_ids, privilege, path, loadgens, work)
            with progress_bar(len(cells), config.quiet) as advance:
                for cell in cells:
                    advance(cell.describe())
                    rundir.append_sample(run_dir, measure_cell(ctx, cell))
                    state["done"] += 1
                    advance(cell.describe(), done=True)
            state.update(complete=True, reason=None)
    except KeyboardInterrupt:
        state["reason"] = f"interrupted after {state['done']} of {len(cells)} cells"
        raise
    except BaseException as exc:
        state["reason"] = f"failed after {state['done']} of {len(cells)} cells: {type(exc).__name__}: {exc}"
        raise
    finally:
        with signals_deferred():
            _finish(client, config, run_id, run_dir, record, state, cells, work, t0, log, server, loadgens, render)
    return run_dir


def remove_everywhere(client, server: ServerHost, loadgens: list[LoadgenHost], run_id: str,
                      work: containers.WorkDir | None) -> list[str]:
    """The run's containers removed from this engine and every other host's, the server's work
    directory or volume after them; the containers' names (another host's prefixed by it)."""
    removed = containers.remove_run_containers(client, run_id)
    names = {id(server.client): server.name} | {id(lg.client): lg.name for lg in loadgens}
    for remote in remote_clients(server, loadgens):
        host = names[id(remote)]
        try:
            removed += [f"{host}:{name}" for name in containers.remove_run_containers(remote, run_id)]
        except Exception as exc:  # noqa: BLE001 - the others are still removed; said in the manifest
            removed.append(f"{host}: NOT CLEANED ({type(exc).__name__}: {str(exc)[:120]})")
    if work is not None:
        containers.remove_work_dir(server.client, work)
    for remote in remote_clients(server, loadgens):
        remote.close()
    return removed


def _render(render: Render | None, run_dir: Path) -> str | None:
    """The run's report; the reason when it could not be rendered (the samples are kept)."""
    if render is None:
        return None
    try:
        render(run_dir)
    except Exception as exc:  # noqa: BLE001 - the samples are kept; the report can be redone
        return f"rendering failed: {type(exc).__name__}: {exc} (retry with `invoke report`)"
    return None


def _finish(client, config, run_id, run_dir, record, state, cells, work, t0, log, server, loadgens,
            render: Render | None) -> None:
    """Cleanup and the final manifest; runs on success, Ctrl-C and failure alike."""
    removed = remove_everywhere(client, server, loadgens, run_id, work)
    remove_run_networks(client, run_id)
    wall = time.monotonic() - t0
    measured = state["done"] * config.duration_s
    timing = {"wall_s": round(wall, 3), "measured_s": measured,
              "warmup_s": state["done"] * config.warmup_s, "cells_done": state["done"],
              "cells_planned": len(cells),
              "overhead_share": round((wall - measured) / measured, 4) if measured else None}
    if not record:  # failed before the manifest was assembled: still leave a marked manifest
        record = {"run_id": run_id, "config": config.to_json(), "started_at": None}
    final = manifest.finish_manifest(
        record, complete=state["complete"], reason=state["reason"], timing=timing,
        extra={"containers_removed_at_end": removed})
    rundir.write_manifest(run_dir, final)
    # The report reads the final manifest; if it cannot be rendered, the manifest says why.
    render_error = _render(render, run_dir) if state["done"] else "no samples"
    if render_error:
        final["report_error"] = render_error
        rundir.write_manifest(run_dir, final)
    rundir.point_latest(run_dir)
    if not config.quiet and state["complete"]:
        log(f"zcbench: {state['done']} cells in {wall:.0f} s ({measured} s measured); results in {run_dir}")
    if render_error and state["done"] and not config.quiet:
        log(f"zcbench: report not rendered: {render_error}")
