"""Helpers shared by the Docker tests."""

from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 now, held open together so they differ.

    Asked of the kernel rather than fixed: provisioning widens the ephemeral range to 1024-65535,
    so any fixed port may be the source port of an earlier test's wrk connection, whose TIME_WAIT
    keeps a server from binding it for a minute. The kernel never hands out such a port here."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def free_port() -> int:
    [port] = free_ports(1)
    return port
