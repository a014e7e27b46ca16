"""Helpers shared by the Docker tests."""

from __future__ import annotations

import random
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


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(span: int = 16) -> int:
    """The first of `span` consecutive ports free on 127.0.0.1: a run's servers listen on --port
    and the ports after it, one per arm and size (a lone free port's neighbour may be some
    connection's source port)."""
    for _ in range(200):
        [first] = free_ports(1)
        if first + span <= 65536 and all(_bindable(port) for port in range(first + 1, first + span)):
            return first
    # Right after a bench, wrk's connections in TIME_WAIT can hold a third of all ports (18,520
    # were seen), and a random span of 16 is then rarely free: look along the whole range.
    start = random.randrange(1024, 65536 - span)
    run = 0
    for port in [*range(start, 65536), *range(1024, start)]:
        run = run + 1 if _bindable(port) else 0
        if run == span:
            return port - span + 1
        if port == 65535:
            run = 0
    raise RuntimeError(f"no {span} consecutive free ports on 127.0.0.1")
