"""Helpers shared by the Docker tests."""

from __future__ import annotations

import random
import socket
from pathlib import Path

from zcbench.measure.config import DEFAULT_PORT

RESERVED_PORTS = Path("/proc/sys/net/ipv4/ip_local_reserved_ports")


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
    """Whether a server could listen on it now, as the bench's preflight checks (SO_REUSEADDR,
    like zcb-server and nginx: a server's own connections in TIME_WAIT do not stop it)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def reserved_ports(path: Path = RESERVED_PORTS) -> list[int]:
    """The ports the kernel never picks as a source port ("8088-8187" after provisioning)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return []
    ports: list[int] = []
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        ports += range(int(low), int(high or low) + 1)
    return ports


def _span_in(ports: list[int], span: int) -> int | None:
    """The first port of `span` consecutive bindable ones among `ports` (sorted), looking from a
    random place on (so tests one after another do not all take the same ports)."""
    if not ports:
        return None
    start = random.randrange(len(ports))
    run = 0
    for i in [*range(start, len(ports)), *range(start)]:
        if i == 0 or ports[i] != ports[i - 1] + 1:
            run = 0
        run = run + 1 if _bindable(ports[i]) else 0
        if run == span:
            return ports[i] - span + 1
    return None


def free_port(span: int = 16) -> int:
    """The first of `span` consecutive ports free on 127.0.0.1: a run's servers listen on --port
    and the ports after it, one per arm and size.

    From the range provisioning reserves, as the bench's own advice says: a calibration binds its
    servers again for each of its runs, and a port outside that range can meanwhile become the
    source port of one of its own wrk connections (seen: 'port 127.0.0.1:42424 is in use' between
    two runs of one calibration). Elsewhere only without such a range (or no free span in it)."""
    # not the default --port's span: a bench a user runs here meanwhile keeps its ports, and a
    # test's --port is then never the default (a rerun records it as an override)
    first = _span_in(sorted(p for p in reserved_ports() if p >= DEFAULT_PORT + span), span)
    if first is not None:
        return first
    # Right after a bench, wrk's connections in TIME_WAIT can hold a third of all ports (18,520
    # were seen), and a random span of 16 is then rarely free: look along the whole range.
    first = _span_in(list(range(1024, 65536)), span)
    if first is None:
        raise RuntimeError(f"no {span} consecutive free ports on 127.0.0.1")
    return first
