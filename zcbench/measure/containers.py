"""The bench's containers through the Docker SDK: server, nginx reference, loadgen.

Rules every function here keeps:
- nothing pulls: containers are created from local images with create()+start() (the SDK's
  run() pulls on ImageNotFound); callers check the images exist first (images.require_images);
- every container carries the label `zcbench.run=<run id>`, so `remove_run_containers` can
  clean up after Ctrl-C or a failure, whatever was running;
- the server gets `--privileged`, or, where the daemon cannot grant it (a capability bounding
  set without CAP_SYS_RESOURCE makes runc fail with "unable to apply caps"), every capability
  of the host's bounding set plus unconfined seccomp (io_uring needs it under Docker >= 25's
  default profile). `privilege_options` finds out once and says which in the manifest;
- memlock and nofile ulimits are explicit (containers would inherit the daemon's).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import socket
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
from docker.types import Ulimit

from zcbench.measure.cgroups import CgroupError, EngineCpu, cgroup_cpu_file, read_cpu_seconds
from zcbench.measure.loadgen.launcher import Launcher
from zcbench.measure.nginx import write_nginx_config

RUN_LABEL = "zcbench.run"
ROLE_LABEL = "zcbench.role"
#: host name/boot id/pid of the process that made the container: one killed outright (SIGKILL, a
#: machine restart) never removes its containers, and the next run can tell they are orphans
OWNER_LABEL = "zcbench.owner"
BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
STATS_MOUNT = "/run/zcb"  # where a server container sees its host directory
SERVER_BINARY = "/zcb-server"
READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 20  # docker stop: SIGTERM, then SIGKILL after this many seconds

#: Capability names by bit number (linux/capability.h), to turn CapBnd into --cap-add names.
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)


class DockerUnavailable(RuntimeError):
    """The Docker engine cannot be reached; the message points at `invoke provision`."""


class ContainerError(RuntimeError):
    """A container failed to start or behaved unexpectedly; the message says which and why."""


def docker_client():
    """A client for the local engine, or DockerUnavailable with one line saying what to do."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:  # the SDK raises several types for "no daemon"
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise DockerUnavailable(f"Docker engine unreachable ({reason}): run `invoke provision`") from None
    return client


# --- privilege -------------------------------------------------------------------------------


def bounding_capabilities(status_path: str = "/proc/self/status") -> list[str]:
    """Names of the capabilities in this process's bounding set (CapBnd)."""
    with open(status_path) as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    return [name for bit, name in enumerate(CAPABILITIES) if mask >> bit & 1]


@dataclass(frozen=True)
class Privilege:
    mode: str  # "privileged" or "fallback"
    kwargs: dict = field(hash=False)  # arguments for containers.create
    reason: str = ""  # why the fallback was needed

    def to_json(self) -> dict:
        return {"mode": self.mode, "reason": self.reason, "cap_add": self.kwargs.get("cap_add"),
                "security_opt": self.kwargs.get("security_opt")}


def _probe(client, probe_image: str, run_id: str, **kwargs) -> None:
    """Create, start and remove a throwaway container; APIError if the daemon refuses."""
    probe = client.containers.create(probe_image, ["true"], network_mode="none",
                                     labels=_labels(run_id, "probe"), **kwargs)
    try:
        probe.start()
        probe.wait(timeout=30)
    finally:
        probe.remove(force=True)


def _fallback(client, probe_image: str, run_id: str, reason: str) -> Privilege:
    """Every bounding-set capability the daemon knows (older daemons reject e.g. CAP_PERFMON)."""
    caps, unknown = bounding_capabilities(), []
    while True:
        kwargs = {"cap_add": caps, "security_opt": ["seccomp=unconfined"]}
        try:
            _probe(client, probe_image, run_id, **kwargs)
            break
        except docker.errors.APIError as exc:
            text = _api_reason(exc)
            name = text.rsplit("unknown capability:", 1)[-1].strip(' "').removeprefix("CAP_")
            if "unknown capability" not in text or name not in caps:
                raise ContainerError(f"neither --privileged nor the capability fallback works: {text}") from None
            caps = [c for c in caps if c != name]
            unknown.append(name)
    if unknown:
        reason += f"; capabilities unknown to this Docker left out: {', '.join(unknown)}"
    return Privilege("fallback", kwargs, reason)


def privilege_options(client, probe_image: str, run_id: str) -> Privilege:
    """--privileged if a throwaway container gets it; else the capability fallback."""
    try:
        _probe(client, probe_image, run_id, privileged=True)
        return Privilege("privileged", {"privileged": True})
    except docker.errors.APIError as exc:
        return _fallback(client, probe_image, run_id, f"--privileged refused: {_api_reason(exc)}")


def _api_reason(exc) -> str:
    text = getattr(exc, "explanation", None) or str(exc)
    text = str(text)
    return text.split("unable to start container process: ")[-1][:200]


# --- generic helpers -------------------------------------------------------------------------


def _labels(run_id: str, role: str) -> dict[str, str]:
    return {RUN_LABEL: run_id, ROLE_LABEL: role, OWNER_LABEL: owner()}


def boot_id(path: str = BOOT_ID_PATH) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return "unknown"


def owner() -> str:
    """This process as a container's owner: 'host/boot id/pid'."""
    return f"{socket.gethostname()}/{boot_id()}/{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def owner_gone(label: str, *, host: str | None = None, boot: str | None = None, alive=_pid_alive) -> bool:
    """Whether the process an owner label names is certainly gone: this host's, and of an earlier
    boot or no longer running. Another host's process (a lab engine shared by two machines) or a
    label this cannot read is never judged gone."""
    parts = label.split("/")
    if len(parts) != 3 or not parts[2].isdigit():
        return False
    label_host, label_boot, pid = parts
    if label_host != (host if host is not None else socket.gethostname()):
        return False
    return label_boot != (boot if boot is not None else boot_id()) or not alive(int(pid))


def remove_orphaned_runs(client) -> dict[str, list[str]]:
    """Remove the containers, volumes and networks of every run whose process is gone; per run id,
    the names of its containers removed."""
    orphans: dict[str, list] = {}
    for container in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
        labels = container.labels
        if RUN_LABEL in labels and owner_gone(labels[OWNER_LABEL]):
            orphans.setdefault(labels[RUN_LABEL], []).append(container)
    for run_id in orphans:
        remove_run_containers(client, run_id)
        for volume in client.volumes.list(filters={"label": f"{RUN_LABEL}={run_id}"}):
            with contextlib.suppress(docker.errors.APIError):
                volume.remove(force=True)
        for network in client.networks.list(filters={"label": f"{RUN_LABEL}={run_id}"}):
            with contextlib.suppress(docker.errors.APIError):
                network.remove()
    return {run_id: [c.name for c in found] for run_id, found in orphans.items()}


def _ulimits(memlock: int | None, nofile: int) -> list:
    limits = [Ulimit(name="nofile", soft=nofile, hard=nofile)]
    if memlock is not None:
        limits.append(Ulimit(name="memlock", soft=memlock, hard=memlock))
    return limits


def _cpuset(cpus) -> str:
    return ",".join(str(c) for c in cpus)


def remove_run_containers(client, run_id: str) -> list[str]:
    """Force-remove every container labelled with this run id; return their names."""
    removed = []
    for container in client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"}):
        try:
            container.remove(force=True)
            removed.append(container.name)
        except docker.errors.NotFound:
            pass
    return removed


def run_containers(client, run_id: str) -> list:
    return client.containers.list(all=True, filters={"label": f"{RUN_LABEL}={run_id}"})


def host_stats_dir(run_id: str, name: str = "") -> Path:
    """A host directory for a server's stats file, on tmpfs when there is one (it is mmapped)."""
    parent = "/dev/shm" if os.path.isdir("/dev/shm") else None
    return Path(tempfile.mkdtemp(prefix=f"zcbench-{run_id}-{name + '-' if name else ''}", dir=parent))


def remove_stats_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class WorkDir:
    """Where a run's server containers keep their files (at STATS_MOUNT): a directory of this
    host (the stats file mmapped and read in place), or, for a server on another host, a Docker
    volume there whose files come and go through the engine's archive API."""
    host_dir: Path | None = None
    volume: str | None = None

    def mount(self) -> dict:
        return {str(self.host_dir) if self.host_dir else self.volume: {"bind": STATS_MOUNT, "mode": "rw"}}


def make_work_dir(client, run_id: str, local: bool, name: str = "work") -> WorkDir:
    """One server's work directory (each of a run's servers has its own: `name`)."""
    if local:
        return WorkDir(host_dir=host_stats_dir(run_id, name))
    volume = client.volumes.create(f"zcbench-{run_id}-{name}", labels={RUN_LABEL: run_id})
    return WorkDir(volume=volume.name)


def remove_work_dir(client, work: WorkDir) -> None:
    """Best effort (after the containers using it are gone)."""
    if work.host_dir:
        remove_stats_dir(work.host_dir)
        return
    try:
        client.volumes.get(work.volume).remove(force=True)
    except Exception:  # noqa: BLE001 - a leftover volume is named by the run id; not worth failing the run
        pass


def read_container_file(container, path: str) -> bytes:
    """One file of a container (its mounts included) through the engine's archive API: the
    way to read a file on another host, and in an image without a shell or cat."""

    stream, _ = container.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
        member = archive.next()
        return archive.extractfile(member).read()


def put_directory(container, directory: Path, target: str = STATS_MOUNT) -> None:
    """The files under `directory` into a created container at `target` (archive API)."""

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for child in sorted(directory.iterdir()):
            archive.add(child, arcname=child.name)
    if not container.put_archive(target, buffer.getvalue()):
        raise ContainerError(f"{container.name}: could not put {directory} at {target}")


def _wait_for_log(container, needle: str, timeout: float) -> str:
    """Poll the container's stderr until `needle` appears; ContainerError if it exits first."""
    deadline = time.monotonic() + timeout
    while True:
        text = container.logs(stdout=False, stderr=True).decode(errors="replace")
        if needle in text:
            return text
        container.reload()
        if container.status in ("exited", "dead") or time.monotonic() > deadline:
            out = container.logs(stdout=True, stderr=True).decode(errors="replace").strip()
            state = "exited" if container.status in ("exited", "dead") else "not ready in time"
            raise ContainerError(f"{container.name} {state}: {out[-400:] or '(no output)'}")
        time.sleep(0.02)


@dataclass
class Running:
    """A started container and what the bench reads from it."""
    container: object
    cpu_file: tuple[Path, str] | None  # None: on another host, CPU time read through its engine
    stats_path: Path | None = None  # the server's stats file on this host
    stats_in_container: str | None = None  # ... or its path inside the container (another host)
    launcher: Launcher | None = None  # a loadgen here: runs its commands without `docker exec`
    engine_cpu: EngineCpu | None = field(default=None, repr=False, compare=False)  # on another host, once probed

    def alive(self) -> bool:
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return False
        return self.container.status == "running"

    def cpu_seconds(self) -> float:
        if self.cpu_file is None:
            if self.engine_cpu is None:
                self.engine_cpu = EngineCpu.probe(self.container)
            return self.engine_cpu.read()
        return read_cpu_seconds(self.cpu_file)

    @property
    def name(self) -> str:
        return self.container.name


def _start(container, local: bool = True) -> tuple[Path, str] | None:
    """Start the container; the cgroup file of its CPU time when it runs on this host."""
    try:
        container.start()
    except docker.errors.APIError as exc:
        reason = _api_reason(exc)
        if "rlimit" in reason:
            reason += (" (a memlock/nofile limit above the Docker daemon's hard limit needs "
                       "CAP_SYS_RESOURCE: lower --memlock/--nofile or raise the daemon's limits)")
        raise ContainerError(f"{container.name} did not start: {reason}") from None
    container.reload()
    pid = container.attrs["State"]["Pid"]
    if not pid:
        raise ContainerError(f"{container.name} did not start: {container.logs().decode(errors='replace')[-400:]}")
    if not local:
        return None
    try:
        return cgroup_cpu_file(pid, container.id)
    except CgroupError as exc:
        raise ContainerError(str(exc)) from None


# --- the zcbench server ----------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    """What a zcb-server container runs with (one per cell)."""
    send: str = "regular"  # a send mode of server/include/zcb_modes.h
    cpus: tuple[int, ...] = (0,)
    port: int = 8088
    bind: str = "127.0.0.1"
    response_size: int = 88
    zc_max_inflight: int = 256
    drop_ipc_lock: bool = False
    memlock: int = 8 * 1024 * 1024
    nofile: int = 1 << 20
    max_conns: int | None = None
    calibration_work: int = 0  # `invoke calibrate`'s injected cost; 0 in every real comparison
    calibration_stall: str | None = None  # `invoke calibrate`'s latency check: "S/P"; None in every comparison
    zc_min_bytes: int | None = None  # the adaptive send mode's threshold (None: the server's default)

    def command(self) -> list[str]:
        args = ["--port", str(self.port), "--bind", self.bind, "--cpus", _cpuset(self.cpus),
                "--send", self.send, "--zc-max-inflight", str(self.zc_max_inflight),
                "--response-size", str(self.response_size),
                "--stats-file", f"{STATS_MOUNT}/stats", "--idle-timeout", "0"]
        if self.max_conns:
            args += ["--max-conns", str(self.max_conns)]
        if self.drop_ipc_lock:
            args.append("--drop-ipc-lock")
        if self.calibration_work:
            args += ["--calibration-work", str(self.calibration_work)]
        if self.calibration_stall:
            args += ["--calibration-stall", self.calibration_stall]
        if self.zc_min_bytes is not None:
            args += ["--zc-min-bytes", str(self.zc_min_bytes)]
        return args


def start_server(client, image: str, spec: ServerSpec, *, run_id: str, privilege: Privilege,
                 stats_dir: Path | None = None, work: WorkDir | None = None, name: str | None = None) -> Running:
    """Create and start a zcb-server container and wait until it listens. Its stats file goes
    to `stats_dir` (or `work`'s host directory) here, or to `work`'s volume on another host."""
    work = work or WorkDir(host_dir=stats_dir)
    stats_path = None
    if work.host_dir:
        work.host_dir.mkdir(parents=True, exist_ok=True)
        stats_path = work.host_dir / "stats"
        stats_path.unlink(missing_ok=True)
    container = client.containers.create(
        image, spec.command(), name=name, network_mode="host", cpuset_cpus=_cpuset(spec.cpus),
        ulimits=_ulimits(spec.memlock, spec.nofile), labels=_labels(run_id, "server"),
        volumes=work.mount(), **privilege.kwargs,
    )
    try:
        cpu_file = _start(container, local=work.host_dir is not None)
        _wait_for_log(container, "listening on", READY_TIMEOUT_S)
    except BaseException:
        container.remove(force=True)
        raise
    return Running(container, cpu_file, stats_path, None if stats_path else f"{STATS_MOUNT}/stats")


def stop_container(running: Running, timeout: int = STOP_TIMEOUT_S) -> tuple[int, str, str]:
    """SIGTERM (docker stop), wait, collect (exit code, stdout, stderr), remove the container."""
    container = running.container
    try:
        container.stop(timeout=timeout)
        code = container.wait(timeout=timeout + 10)["StatusCode"]
        stdout = container.logs(stdout=True, stderr=False).decode(errors="replace")
        stderr = container.logs(stdout=False, stderr=True).decode(errors="replace")
    finally:
        container.remove(force=True)
    return code, stdout, stderr


# --- the nginx reference (its config: measure.nginx) ----------------------------------------


def start_nginx(client, image: str, *, cpus, port: int, bind: str, response_size: int,
                memlock: int, nofile: int, run_id: str, conf_dir: Path | None = None,
                work: WorkDir | None = None, name: str | None = None) -> Running:
    """nginx with its rendered config: written into the host directory, or, on another host,
    rendered here and put into the container's work volume before it starts."""
    work = work or WorkDir(host_dir=conf_dir)
    staging = work.host_dir or Path(tempfile.mkdtemp(prefix="zcbench-nginx-"))
    try:
        write_nginx_config(staging, port=port, bind=bind, response_size=response_size, nofile=nofile, cpus=cpus)
        container = client.containers.create(
            image, name=name, network_mode="host", cpuset_cpus=_cpuset(cpus),
            ulimits=_ulimits(memlock, nofile), labels=_labels(run_id, "nginx"), volumes=work.mount(),
        )
        if not work.host_dir:
            try:
                put_directory(container, staging)
            except BaseException:
                container.remove(force=True)
                raise
    finally:
        if not work.host_dir:
            shutil.rmtree(staging, ignore_errors=True)
    try:
        cpu_file = _start(container, local=work.host_dir is not None)
        _wait_for_port(container, bind, port, READY_TIMEOUT_S)
    except BaseException:
        container.remove(force=True)
        raise
    return Running(container, cpu_file, None)


def _wait_for_port(container, host: str, port: int, timeout: float) -> None:

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            container.reload()
            if container.status in ("exited", "dead") or time.monotonic() > deadline:
                out = container.logs().decode(errors="replace").strip()
                raise ContainerError(f"{container.name} not listening on {host}:{port}: {out[-400:]}") from None
            time.sleep(0.05)


# --- the load generator ----------------------------------------------------------------------


def start_loadgen(client, image: str, *, cpus, nofile: int, run_id: str, network: str = "host",
                  name: str | None = None, local: bool = True) -> Running:
    """A wrk container on `cpus` whose runs' CPU time lands in its cgroup: on this machine its
    main process is a launcher (measure.loadgen.launcher) starting each run; on another host
    (local False: CPU time then comes through its API) it idles and each run is a `docker exec`.
    network: "host" or a Docker network name (veth path)."""
    launcher = Launcher(host_stats_dir(run_id, "loadgen")) if local else None
    try:
        container = client.containers.create(
            image, launcher.command() if launcher else ["sleep", "infinity"], name=name, network_mode=network,
            cpuset_cpus=_cpuset(cpus), ulimits=_ulimits(None, nofile), labels=_labels(run_id, "loadgen"),
            volumes=launcher.mount() if launcher else None)
    except BaseException:
        if launcher:
            launcher.close()
        raise
    try:
        cpu_file = _start(container, local)
    except BaseException:
        container.remove(force=True)
        if launcher:
            launcher.close()
        raise
    return Running(container, cpu_file, None, launcher=launcher)
