"""A host's Docker engine as zcbench reaches it: the local socket for this machine, the Docker
SDK's ssh:// transport (the system's ssh client, so ~/.ssh/config applies) for another host.
"""

from __future__ import annotations

import contextlib
import subprocess

import docker
from docker.transport import sshconn

from zcbench.host.inventory import Host


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


def host_client(host: Host, timeout: int = 600):
    """A Docker client for the host's engine; the local one for the control host."""
    if not host.is_control:
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
