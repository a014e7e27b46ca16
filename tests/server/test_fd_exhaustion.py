"""Out of file descriptors (EMFILE): the server pauses accepting instead of busy-looping,
refuses the connections it cannot take (each counted once), logs one line per episode, and
keeps serving the connections it has (issue 11, item 5)."""

from __future__ import annotations

import os
import socket
import time

import pytest

from .conftest import connect, expected_response, get, recv_exactly

pytestmark = pytest.mark.server

NOFILE = 48  # the server's whole descriptor table: a few for itself, the rest for connections
CLIENTS = 150


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def answered(sock: socket.socket) -> bool:
    """True if the server answered this connection, False if it closed it unanswered."""
    try:
        sock.sendall(get())
        reply = recv_exactly(sock, 88)
    except (ConnectionResetError, BrokenPipeError):
        return False
    if reply == b"":
        return False
    assert reply == expected_response(88)
    return True


def test_emfile_backs_off_refuses_and_keeps_serving(start_server):
    server = start_server("--idle-timeout", "0", nofile=NOFILE)
    socks = [connect(server.port) for _ in range(CLIENTS)]
    served = [s for s in socks if answered(s)]
    refused = [s for s in socks if s not in served]
    assert 10 < len(served) < NOFILE and len(served) + len(refused) == CLIENTS

    # out of descriptors now: accepting is retried every 200 ms, not in a loop
    before_cpu, before = cpu_seconds(server.proc.pid), server.counters()
    time.sleep(1.0)
    after_cpu, after = cpu_seconds(server.proc.pid), server.counters()
    assert after_cpu - before_cpu < 0.2
    assert 2 <= after["accept_backoffs"] - before["accept_backoffs"] <= 7
    assert after["conns_rejected"] == len(refused)  # connections, not failed attempts
    assert after["conns_accepted"] == after["conns_open"] == len(served)

    # the connections it has are still served
    assert all(answered(s) for s in served)

    # descriptors come back: the episode ends and new connections are accepted again
    for s in socks:
        s.close()
    server.wait_counters(lambda t: t["conns_open"] == 0)
    deadline = time.monotonic() + 5
    while True:
        with connect(server.port) as sock:
            if answered(sock):
                break
        assert time.monotonic() < deadline, "never accepted again"
        time.sleep(0.05)
    final = server.stop()
    episodes = [line for line in server.stderr.splitlines() if "out of file descriptors" in line]
    assert len(episodes) == 1, server.stderr
    assert "Too many open files" in episodes[0]
    assert f" {final['totals']['conns_rejected']} connections refused" in episodes[0]
