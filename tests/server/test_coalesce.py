"""Coalesced pipelined responses (issue 11, item 3): requests of one kind parsed together are
answered by one send of back-to-back copies, in every arm, byte-exact, with each response still
counted: sends = responses + partial_sends - responses_coalesced."""

from __future__ import annotations

import socket

import pytest

from .conftest import (ARMS, WRK_PIPELINE_SCRIPT, connect, expected_response, get, head_of, recv_exactly,
                       recv_until_close, run_wrk, sends, sends_zero_copy)

pytestmark = pytest.mark.server

PIPELINED = 200
# sendmsg-zc's head and body iovecs make zero-copy skbs whose frags a 4 KiB receive buffer cannot
# hold a window's worth of: measured here, 800 responses of 10 kB then trickle at ~10 kB/s (one
# segment per persist-timer probe) where every other arm takes 0.2 s; from 8 KiB on it takes 0.1 s.
TINY_RCVBUF = {"sendmsg-zc": 8192}


def assert_each_response_counted(totals: dict, requests: int) -> None:
    assert totals["requests"] == totals["responses"] == requests
    assert totals["responses_dropped"] == 0 and totals["send_errors"] == 0
    assert sends(totals) == totals["responses"] + totals["partial_sends"] - totals["responses_coalesced"]
    assert totals["zc_notifs"] == totals["sends_zc"] and totals["zc_pages"] == 0


@pytest.mark.parametrize("arm", ARMS)
def test_pipelined_requests_share_sends(start_server, arm):
    server = start_server("--send", arm)  # 88-byte responses
    with connect(server.port) as sock:
        sock.sendall(get() * PIPELINED)
        got = recv_exactly(sock, PIPELINED * 88)
    assert got == expected_response(88) * PIPELINED
    totals = server.stop()["totals"]
    assert_each_response_counted(totals, PIPELINED)
    assert totals["bytes_sent"] == PIPELINED * 88
    # the requests arrive in a few receives; one send per receive, not one per request
    assert sends(totals) <= PIPELINED // 10, totals
    assert totals["responses_coalesced"] >= PIPELINED - PIPELINED // 10
    if sends_zero_copy(arm, 88):
        assert totals["sends_zc"] == sends(totals)  # far below the in-flight cap: all zero-copy


@pytest.mark.parametrize("arm", ARMS)
def test_mixed_kinds_keep_their_order_and_close_comes_last(start_server, arm):
    """Runs of GET, HEAD and HTTP/1.0 keep-alive requests, then Connection: close: each run
    shares sends, the bytes come in request order and the close ends the connection."""
    server = start_server("--send", arm, "--response-size", "300")
    ok, alive = expected_response(300), expected_response(300, keep_alive=True)
    head = b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n"
    http10 = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    runs = 40
    with connect(server.port) as sock:
        sock.sendall(get() * runs + head * runs + http10 * runs + get() * runs
                     + get(extra="Connection: close\r\n") + get() * 5)  # after the close: ignored
        got = recv_until_close(sock)
    expected = ok * runs + head_of(ok) * runs + alive * runs + ok * runs + expected_response(300, close=True)
    assert len(got) == len(expected) and got == expected
    totals = server.stop()["totals"]
    assert_each_response_counted(totals, 4 * runs + 1)
    assert sends(totals) <= 4 * runs // 5, totals


@pytest.mark.parametrize("arm", ARMS)
def test_short_coalesced_sends_continue_where_they_stopped(start_server, arm):
    """A client with a tiny receive buffer that reads slowly: coalesced sends of 10 kB copies come
    back short and continue mid-response; every byte still arrives in order."""
    size, requests, attempts = 10_000, 800, 3
    server = start_server("--send", arm, "--response-size", str(size))
    # Whether a send comes back short depends on how far the reader lags when it is issued;
    # up to `attempts` slow readers until one did (each must be byte-exact regardless).
    for attempt in range(1, attempts + 1):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, TINY_RCVBUF.get(arm, 4096))
        sock.settimeout(10)
        sock.connect(("127.0.0.1", server.port))
        with sock:
            sock.sendall(get() * requests)
            chunks, got = [], 0
            while got < requests * size:
                chunk = sock.recv(1500)  # small reads keep the window small
                assert chunk, f"connection closed after {got} bytes"
                chunks.append(chunk)
                got += len(chunk)
        assert b"".join(chunks) == expected_response(size) * requests
        if server.wait_counters(lambda t: t["responses"] == attempt * requests)["partial_sends"] > 0:
            break
    totals = server.stop()["totals"]
    assert_each_response_counted(totals, attempt * requests)
    assert totals["bytes_sent"] == attempt * requests * size
    assert totals["responses_coalesced"] > 0 and sends(totals) < attempt * requests
    if arm != "splice":
        assert totals["partial_sends"] > 0
    # splice's pipe -> socket waits in an io-wq worker until the pipe is empty, so its sends never
    # come back short here; test_send_paths covers its continuation across pipe-sized chains


def test_coalesced_zero_copy_sends_hit_by_enomem_are_resent_whole(start_server):
    """Without cap and budget, pipelined zero-copy sends overrun 8 MiB of memlock: the -ENOMEM
    fallback resends each coalesced send as a whole and nothing is lost or duplicated."""
    conns, depth = 2000, 16
    server = start_server("--send", "zc", "--zc-max-inflight", "0", "--zc-page-budget", "0", "--drop-ipc-lock",
                          memlock=8 << 20, nofile=16384, uid=65534)
    wrk = run_wrk(server.port, conns, 2, script=WRK_PIPELINE_SCRIPT, script_args=(str(depth),))
    totals = server.stop()["totals"]
    assert wrk["errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0}
    assert totals["zc_enomem"] > 0 and totals["fallback_enomem"] > 0  # the control: ENOMEM happened
    assert totals["responses_coalesced"] > 0
    assert totals["requests"] == totals["responses"] + totals["responses_dropped"]
    assert 0 <= totals["responses"] - wrk["requests"] <= conns * depth
    assert (totals["sends_zc"] == totals["responses"] + totals["partial_sends"] - totals["responses_coalesced"]
            + totals["send_errors"] + totals["zc_enomem"] - totals["fallback_enomem"])
