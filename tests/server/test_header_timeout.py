"""The header deadline: a request head must complete within --header-timeout of its first byte,
else 408 and close; a connection idle between requests is governed by --idle-timeout only
(issue 11, item 6). Runs on both builds, so the slow sender is also tried under ASan/UBSan."""

from __future__ import annotations

import time

import pytest

from .conftest import connect, expected_response, get, recv_exactly, recv_until_close

pytestmark = pytest.mark.server

REPLY_408 = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def test_slow_sender_gets_408_and_idle_keep_alive_stays_open(start_server):
    server = start_server("--header-timeout", "1", "--idle-timeout", "30")
    slow, idle = connect(server.port), connect(server.port)
    with slow, idle:
        idle.sendall(get())
        assert recv_exactly(idle, 88) == expected_response(88)
        # a byte every 200 ms keeps the idle timer fresh but never completes the head
        slow.sendall(b"GET / HTTP/1.1\r\n")
        started, closed_after = time.monotonic(), None
        slow.settimeout(0.2)
        for i in range(20):  # at most 4 s
            try:
                slow.sendall(b"X-Slow-%d: y\r\n" % i)
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                reply = slow.recv(4096)
            except TimeoutError:
                continue
            slow.settimeout(5)
            reply += recv_until_close(slow)
            closed_after = time.monotonic() - started
            assert reply == REPLY_408
            break
        assert closed_after is not None, "the slow sender was never cut off"
        assert 0.9 < closed_after < 2.6  # deadline 1 s, checked once a second
        # past the header deadline the idle keep-alive connection is still served
        time.sleep(max(0.0, 2.2 - (time.monotonic() - started)))
        idle.sendall(get())
        assert recv_exactly(idle, 88) == expected_response(88)
    totals = server.stop()["totals"]
    assert totals["header_timeouts"] == 1
    assert totals["idle_closed"] == 0
    assert totals["http_errors"] == 1
    assert totals["requests"] == totals["responses"] == 3


def test_header_timeout_zero_never_cuts_off(start_server):
    server = start_server("--header-timeout", "0", "--idle-timeout", "30")
    with connect(server.port) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        time.sleep(2.2)
        sock.sendall(b"\r\n")
        assert recv_exactly(sock, 88) == expected_response(88)
    assert server.stop()["totals"]["header_timeouts"] == 0
