"""A host's Docker engine as zcbench reaches it: the local socket for this machine; for another
host, its engine's socket forwarded by one `ssh` process (the system's client, as Ansible reaches
the host, so ~/.ssh/config applies) to a socket here.

Why not the Docker SDK's own ssh:// transport: it starts a new `ssh ... docker system
dial-stdio` for every API request, 0.22 s each here (key exchange and login), and a cell of a
two-host bench makes about ten of them: a bench with wrk on the lab host spent 14% of its wall
time measuring. Through the forwarded socket a request takes 6 ms. Where ssh cannot forward (no
unix socket there, forwarding refused by sshd) the SDK's transport is used, and one line says so.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
from docker.transport import sshconn

from zcbench.host.inventory import Host

#: The engine's socket on a host whose login sets no DOCKER_HOST.
DEFAULT_ENGINE_SOCKET = "/var/run/docker.sock"
#: How long ssh may take to log in and open the forwarded socket.
FORWARD_TIMEOUT_S = 15
#: The socket file's name in the forward's own temporary directory here.
FORWARDED_SOCKET = "docker.sock"


class EngineUnreachable(RuntimeError):
    """A host's engine cannot be reached; one line for the user."""


def _close_ended_ssh(close):
    """docker-py's SSHSocket.close writes to its `ssh` process, which has already exited when the
    engine ended the connection (after every `docker exec`'s hijacked stream): BrokenPipeError,
    and exec_run loses the output it had read (docker/docker-py#3218, open). Closing a connection
    that already ended is no error: reap the process instead."""
    def tolerant_close(self):
        try:
            close(self)
        except BrokenPipeError:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
    tolerant_close.zcbench_tolerant = True
    return tolerant_close


def _tolerate_ended_ssh() -> None:
    if not getattr(sshconn.SSHSocket.close, "zcbench_tolerant", False):
        sshconn.SSHSocket.close = _close_ended_ssh(sshconn.SSHSocket.close)


class ForwardUnavailable(RuntimeError):
    """ssh could not forward the host's engine socket; why, in one line. `reached`: ssh logged
    in (else the host is unreachable, which the SDK's transport then reports itself)."""

    def __init__(self, message: str, reached: bool = True):
        super().__init__(message)
        self.reached = reached


def engine_socket_path(docker_host: str) -> str:
    """The engine socket's path from a login's DOCKER_HOST ('' when it sets none)."""
    if not docker_host:
        return DEFAULT_ENGINE_SOCKET
    if docker_host.startswith("unix://"):
        return docker_host[len("unix://"):]
    raise ForwardUnavailable(f"its DOCKER_HOST is {docker_host}, not a unix socket")


def remote_engine_socket(host: Host) -> str:
    """The socket `docker` uses there: what its login's DOCKER_HOST says, else the default."""
    try:
        done = subprocess.run(host.ssh_argv("printenv", "DOCKER_HOST"), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=FORWARD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ForwardUnavailable(f"ssh took over {FORWARD_TIMEOUT_S} s", reached=False) from None
    if done.returncode not in (0, 1):  # printenv exits 1 for an unset variable; ssh 255 for its own failure
        raise ForwardUnavailable(f"ssh exited {done.returncode}: {done.stderr.strip()[-160:]}",
                                 reached=done.returncode != 255)
    return engine_socket_path(done.stdout.strip())


class SocketForward:
    """One `ssh -L HERE:THERE` for a host's engine socket. The ssh runs `cat` there with its stdin
    a pipe from this process, so it also ends when this process dies without closing it."""

    def __init__(self, host: Host):
        remote = remote_engine_socket(host)
        self.directory = Path(tempfile.mkdtemp(prefix="zcbench-engine-"))
        self.socket = self.directory / FORWARDED_SOCKET
        argv = host.ssh_argv("cat", options=("-o", "ExitOnForwardFailure=yes", "-L", f"{self.socket}:{remote}"))
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + FORWARD_TIMEOUT_S
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                error = self.process.stderr.read().decode(errors="replace").strip() if self.process.poll() is not None else ""
                self.close()
                raise ForwardUnavailable(error.splitlines()[-1][:160] if error else
                                         f"no forwarded socket within {FORWARD_TIMEOUT_S} s")
            time.sleep(0.005)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stderr):
            with contextlib.suppress(OSError):
                stream.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def forwarded_client(host: Host, timeout: int):
    """A client on the host's engine socket forwarded here; closing it ends the forward."""
    forward = SocketForward(host)
    try:
        client = docker.DockerClient(base_url=f"unix://{forward.socket}", timeout=timeout)
        client.ping()
    except Exception:
        forward.close()
        raise
    close_client = client.close

    def close() -> None:
        try:
            close_client()
        finally:
            forward.close()
    client.close = close
    client.zcbench_forward = forward
    return client


def host_client(host: Host, timeout: int = 600):
    """A Docker client for the host's engine: the local one for the control host, another
    host's through its forwarded socket (or the SDK's ssh transport where that fails)."""
    if not host.is_control:
        try:
            return forwarded_client(host, timeout)
        except ForwardUnavailable as exc:
            if exc.reached:
                print(f"zcbench: {host.name}: ssh could not forward the Docker engine's socket ({exc}); "
                      "using `docker system dial-stdio` (about 0.2 s per API call)", file=sys.stderr)
        except Exception:  # noqa: BLE001 - the engine did not answer there: the SDK's transport says why below
            pass
        _tolerate_ended_ssh()
    try:
        client = docker.DockerClient(base_url=host.docker_url, use_ssh_client=not host.is_control,
                                     timeout=timeout)
        client.ping()
    except Exception as exc:  # the SDK raises many types for "no engine there"
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise EngineUnreachable(f"{host.name}: Docker engine at {host.docker_url} unreachable ({reason}); "
                              f"run `invoke provision -i INVENTORY` and check `ssh {host.address} docker version`") from None
    return client
