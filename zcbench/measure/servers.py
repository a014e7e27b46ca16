"""A run's servers: one long-lived container per server configuration its plan needs.

Every cell of an arm (and response size) is served by the same container, started once before
the first cell and stopped once after the last: a block then costs its measured windows, not a
container start and stop per cell. Each server has its own port (the run's --port, then the
next ones) and its own work directory (stats file, nginx config), and all of them are pinned
to the same server CPUs; a server whose arm is not being measured waits in io_uring_enter (or
epoll) and costs nothing. Counters and CPU time are read as deltas around each window
(measure.windows), so a cell needs no fresh counters. What a server carries from one block to
the next is checked afterwards (analyze.independence).

    pool = start_servers(...)     one container per distinct server configuration of the plan
    pool.for_cell(cell)           the Server measuring that cell
    pool.stop()                   SIGTERM each, wait for its final JSON; their exits for the manifest
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zcbench.core import arms
from zcbench.core.samples import Cell
from zcbench.measure import containers, counters
from zcbench.measure.config import ADAPTIVE_MODE, Config


@dataclass(frozen=True)
class ServerKey:
    """What makes two cells' servers the same: the server, its arm and its response size (the
    zcbench server's command follows from them and the run's config)."""
    server: str
    arm: str
    response_size: int

    @classmethod
    def of(cls, cell: Cell) -> ServerKey:
        return cls(cell.server, cell.arm, cell.response_size)

    @property
    def slug(self) -> str:
        """For container, file and volume names."""
        return f"{self.arm}-{self.response_size}"


def server_spec(cfg: Config, key: ServerKey | Cell, bind: str, port: int | None = None) -> containers.ServerSpec:
    """What the zcbench server of a key (or of a cell's key) runs with, on `port` (the run's
    --port unless given); the calibration's injected work only in its arm."""
    return containers.ServerSpec(
        send=arms.send_mode(key.arm), cpus=cfg.server_cpus, port=cfg.port if port is None else port, bind=bind,
        response_size=key.response_size, zc_max_inflight=cfg.zc_max_inflight,
        drop_ipc_lock=cfg.drop_ipc_lock, memlock=cfg.memlock, nofile=cfg.nofile,
        calibration_work=cfg.calibration_work.get(key.arm, 0),
        calibration_stall=cfg.calibration_stall.get(key.arm),
        zc_min_bytes=cfg.zc_min_bytes if arms.send_mode(key.arm) == ADAPTIVE_MODE else None)


def server_keys(cells: list[Cell]) -> list[ServerKey]:
    """The distinct servers of a plan, in a fixed order (by arm, then size), so a rerun with
    the same plan gives every server the same port."""
    keys = {ServerKey.of(cell) for cell in cells}
    return sorted(keys, key=lambda k: (arms.order(k.arm), k.arm, k.response_size, k.server))


def server_ports(cfg: Config, cells: list[Cell]) -> dict[ServerKey, int]:
    """Each server's port: the run's --port for the first, the next ones after it."""
    return {key: cfg.port + i for i, key in enumerate(server_keys(cells))}


@dataclass
class Server:
    """One running server of the run."""
    key: ServerKey
    port: int
    running: containers.Running
    work: containers.WorkDir

    @property
    def name(self) -> str:
        return self.running.name


@dataclass
class ServerPool:
    """The run's servers by key; `stop` ends them all and says how each one ended."""
    client: object
    servers: dict[ServerKey, Server] = field(default_factory=dict)

    def for_cell(self, cell: Cell) -> Server:
        return self.servers[ServerKey.of(cell)]

    def describe(self) -> list[dict]:
        """The manifest's "servers" before they end."""
        return [{"server": s.key.server, "arm": s.key.arm, "response_size": s.key.response_size,
                 "port": s.port, "container": s.name} for s in self.servers.values()]

    def stop(self) -> list[dict]:
        """SIGTERM every server, wait for it and keep its final JSON's shutdown and whole-life
        totals (every zero-copy notification is in by then); best effort on each."""
        exits = []
        for entry, server in zip(self.describe(), self.servers.values()):
            exits.append(entry | {"exit": _stop(server)})
        for server in self.servers.values():
            containers.remove_work_dir(self.client, server.work)
        self.servers.clear()
        return exits

    def remove_work_dirs(self) -> None:
        """After a failure: the servers' directories or volumes (their containers are gone)."""
        for server in self.servers.values():
            containers.remove_work_dir(self.client, server.work)


def _stop(server: Server) -> dict:
    try:
        code, stdout, stderr = containers.stop_container(server.running)
    except Exception as exc:  # noqa: BLE001 - the run's cleanup removes it by label; said in the manifest
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    ended = {"code": code}
    if server.key.server != arms.ZCBENCH:
        return ended
    try:
        final = counters.parse_final_json(stdout)
        ended.update(shutdown=final.get("shutdown"), totals=final["totals"])
    except counters.StatsError as exc:
        ended["error"] = f"{exc}; stderr: {stderr.strip()[-200:]}"
    return ended


def start_servers(client, cfg: Config, cells: list[Cell], *, image_ids: dict, run_id: str,
                  privilege: containers.Privilege, bind: str, local: bool, pool: ServerPool) -> ServerPool:
    """Start every server the plan needs into `pool` (which the caller stops or cleans up, also
    when a start fails halfway)."""
    for key, port in server_ports(cfg, cells).items():
        work = containers.make_work_dir(client, run_id, local, name=key.slug)
        name = f"zcbench-{run_id}-{key.slug}"
        try:
            running = _start(client, cfg, key, port=port, bind=bind, image_ids=image_ids, run_id=run_id,
                             privilege=privilege, work=work, name=name)
        except BaseException:
            containers.remove_work_dir(client, work)
            raise
        pool.servers[key] = Server(key, port, running, work)
    return pool


def _start(client, cfg: Config, key: ServerKey, *, port: int, bind: str, image_ids: dict, run_id: str,
           privilege: containers.Privilege, work: containers.WorkDir, name: str) -> containers.Running:
    if key.server == arms.NGINX:
        return containers.start_nginx(
            client, image_ids["nginx"], cpus=cfg.server_cpus, port=port, bind=bind,
            response_size=key.response_size, memlock=cfg.memlock, nofile=cfg.nofile, run_id=run_id,
            work=work, name=name)
    return containers.start_server(client, image_ids["server"], server_spec(cfg, key, bind, port),
                                   run_id=run_id, privilege=privilege, work=work, name=name)

