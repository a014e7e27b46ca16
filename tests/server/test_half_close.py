"""Half-close: a client that pipelines requests and then shuts down its sending side gets
every response it asked for, byte-exact, before the server closes (issue 11, item 1).

The requests alternate GET and HEAD so the output queue cannot merge them into runs: most of
them wait in the receive buffer while parsing is paused on a full queue when the FIN arrives.
"""

from __future__ import annotations

import socket
import struct

import pytest

from .conftest import ARMS, connect, expected_response, head_of, recv_until_close

pytestmark = pytest.mark.server

SIZE = 1 << 20
REQUESTS = 300  # 150 GET + 150 HEAD: about 5.6 KiB of requests, 150 MiB of responses


@pytest.mark.parametrize("arm", ARMS)
def test_half_close_gets_every_pipelined_response(start_server, arm):
    server = start_server("--send", arm, "--response-size", "1m")
    get, head = b"GET / HTTP/1.1\r\n\r\n", b"HEAD / HTTP/1.1\r\n\r\n"
    ok = expected_response(SIZE)
    with connect(server.port) as sock:
        sock.sendall((get + head) * (REQUESTS // 2))
        sock.shutdown(socket.SHUT_WR)
        got = recv_until_close(sock)
    expected = (ok + head_of(ok)) * (REQUESTS // 2)
    assert len(got) == len(expected)
    assert got == expected
    totals = server.stop()["totals"]
    assert totals["requests"] == totals["responses"] == REQUESTS
    assert totals["responses_dropped"] == 0


def test_reset_counts_unanswered_requests_as_dropped(start_server):
    """A client that resets its connection cannot be answered: what it asked is counted."""
    server = start_server("--response-size", "1m")
    get, head = b"GET / HTTP/1.1\r\n\r\n", b"HEAD / HTTP/1.1\r\n\r\n"
    sock = connect(server.port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall((get + head) * (REQUESTS // 2))
    # wait until the server has parsed what its queue holds and is sending, then reset
    server.wait_counters(lambda t: t["requests"] > 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    totals = server.wait_counters(lambda t: t["conns_open"] == 0)
    assert totals["conns_open"] == 0
    assert totals["requests"] == REQUESTS  # every request was parsed or counted at the reset
    assert totals["responses_dropped"] > 0
    assert totals["requests"] == totals["responses"] + totals["responses_dropped"]
    server.stop()
