"""The send paths beyond SEND and SEND_ZC (issue 21): sendmsg-zc, msg-zerocopy, splice and
adaptive, each served to independent clients (curl, h2load, Python's http.client, raw pipelining)
at 88 B, 4095 B, 65537 B and 1 MiB, byte-exact, every response counted; and what each path did
(zero-copy sends and their notifications, splices, responses sent regular below the threshold)."""

from __future__ import annotations

import hashlib
import http.client
import socket
import subprocess

import pytest

from .conftest import connect, expected_response, get, head_of, recv_exactly, sends, sends_zero_copy

pytestmark = pytest.mark.server

NEW_MODES = ("sendmsg-zc", "msg-zerocopy", "splice", "adaptive")
SIZES = (88, 4095, 65537, 1 << 20)
MIN_BYTES = 4096  # adaptive's threshold here: 88 and 4095 B go regular, 65537 B and 1 MiB zero-copy


def mode_args(mode: str) -> list[str]:
    return ["--send", mode, *(["--zc-min-bytes", str(MIN_BYTES)] if mode == "adaptive" else [])]


def curl_twice(port: int, tmp_path) -> list[bytes]:
    """Two transfers on one connection (the second reuses it, or the test fails)."""
    url = f"http://127.0.0.1:{port}/"
    first, second = tmp_path / "first", tmp_path / "second"
    proc = subprocess.run(["curl", "-sS", "--fail", "-w", "%{num_connects}\n", url, "-o", str(first), url,
                           "-o", str(second)], capture_output=True, check=True, timeout=60)
    assert proc.stdout.split() == [b"1", b"0"]
    return [first.read_bytes(), second.read_bytes()]


def http_client_bodies(port: int, n: int) -> list[bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    bodies = []
    for _ in range(n):
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200
        bodies.append(response.read())
    conn.close()
    return bodies


def h2load(port: int, requests: int, conns: int = 10, pipeline: int = 4) -> None:
    proc = subprocess.run(["h2load", "--h1", "-n", str(requests), "-c", str(conns), "-m", str(pipeline),
                           f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=300)
    assert f"{requests} succeeded, 0 failed, 0 errored" in proc.stdout, proc.stdout
    assert f"status codes: {requests} 2xx" in proc.stdout, proc.stdout


def assert_path_did_its_work(mode: str, size: int, totals: dict, heads: int = 0) -> None:
    """heads: HEAD requests among them (a head alone is below adaptive's threshold)."""
    assert sends(totals) == totals["responses"] + totals["partial_sends"] - totals["responses_coalesced"]
    assert totals["zc_inflight"] == 0 and totals["zc_pages"] == 0
    if mode == "splice":
        # the bodies came from the page cache: no user pages, nothing to notify or copy
        assert totals["splices"] > 0 and totals["splice_bytes"] > 0
        assert totals["sends_zc"] == totals["zc_notifs"] == totals["zc_copied"] == 0
    elif sends_zero_copy(mode, size, MIN_BYTES):
        assert totals["sends_zc"] > 0 and totals["zc_notifs"] == totals["sends_zc"]
        assert totals["zc_copied"] == totals["zc_notifs"]  # loopback copies every one, and says so
        if mode == "msg-zerocopy":
            assert 0 < totals["errqueue_reads"] <= totals["zc_notifs"]
    else:  # adaptive below its threshold
        assert totals["sends_zc"] == 0 and totals["adaptive_small"] == sends(totals) > 0
    if mode == "adaptive" and sends_zero_copy(mode, size, MIN_BYTES):
        assert totals["adaptive_small"] == heads


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", NEW_MODES)
def test_independent_clients_get_exact_bytes(start_server, mode, size, tmp_path):
    server = start_server(*mode_args(mode), "--response-size", str(size))
    expected = expected_response(size)
    head = head_of(expected)
    body = expected[len(head):]

    assert [hashlib.sha256(b).hexdigest() for b in curl_twice(server.port, tmp_path)] == [
        hashlib.sha256(body).hexdigest()] * 2
    assert http_client_bodies(server.port, 5) == [body] * 5
    with connect(server.port) as sock:  # pipelined: answered in order, HEAD with the head only
        sock.sendall(get() * 3 + b"HEAD / HTTP/1.1\r\n\r\n" + get())
        assert recv_exactly(sock, 4 * size + len(head)) == expected * 3 + head + expected
    h2_requests = 400 if size < (1 << 20) else 40
    h2load(server.port, h2_requests)

    totals = server.stop()["totals"]
    answered = 2 + 5 + 5 + h2_requests
    assert totals["requests"] == totals["responses"] == answered
    assert totals["responses_dropped"] == totals["send_errors"] == totals["http_errors"] == 0
    assert totals["bytes_sent"] == (answered - 1) * size + len(head)
    assert_path_did_its_work(mode, size, totals, heads=1)


@pytest.mark.parametrize("mode", ("sendmsg-zc", "msg-zerocopy", "splice"))
def test_h2load_20000_requests_none_failed(start_server, mode):
    server = start_server("--send", mode)
    h2load(server.port, 20000, conns=20, pipeline=4)
    totals = server.stop()["totals"]
    assert totals["requests"] == totals["responses"] == 20000
    assert totals["responses_dropped"] == totals["send_errors"] == 0
    assert_path_did_its_work(mode, 88, totals)


def test_adaptive_threshold_is_per_response_size(start_server):
    """Below --zc-min-bytes every send is regular (counted in adaptive_small); at it, zero-copy."""
    for size, zero_copy in ((4095, False), (4096, True)):
        server = start_server("--send", "adaptive", "--zc-min-bytes", "4k", "--response-size", str(size))
        with connect(server.port) as sock:
            sock.sendall(get() * 10)
            assert recv_exactly(sock, 10 * size) == expected_response(size) * 10
        totals = server.wait_counters(lambda t: t["responses"] == 10 and t["zc_inflight"] == 0)
        assert (totals["sends_zc"] > 0) is zero_copy and (totals["adaptive_small"] > 0) is not zero_copy
        assert sends(totals) == totals["sends_zc"] + totals["adaptive_small"]
        assert server.stop()["config"]["zc_min_bytes"] == 4096


@pytest.mark.parametrize(("mode", "option", "value"),
                         [("zc", "--zc-min-bytes", "4k"), ("regular", "--zc-min-bytes", "0"),
                          ("zc", "--zc-optmem-budget", "4096"), ("splice", "--zc-optmem-budget", "auto")])
def test_mode_options_are_refused_with_other_modes(server_binary, mode, option, value):
    proc = subprocess.run([str(server_binary), "--port", "0", "--send", mode, option, value],
                          capture_output=True, text=True, timeout=10)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and option in lines[0] and "only" in lines[0], proc.stderr


def test_splice_continues_short_socket_writes_from_the_pipe(start_server):
    """A slow reader with a tiny receive buffer: pipe -> socket splices come back short or wait;
    what stayed in the pipe goes first next time, and every byte arrives in order."""
    size, requests = 200_000, 40
    server = start_server("--send", "splice", "--response-size", str(size))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(20)
    sock.connect(("127.0.0.1", server.port))
    with sock:
        sock.sendall(get() * requests)
        got = bytearray()
        while len(got) < requests * size:
            chunk = sock.recv(1500)
            assert chunk, f"closed after {len(got)} bytes"
            got += chunk
    assert bytes(got) == expected_response(size) * requests
    totals = server.stop()["totals"]
    assert totals["responses"] == requests and totals["bytes_sent"] == requests * size
    # a run longer than the pipe holds goes out in several chains, each continuing the last
    assert totals["partial_sends"] > 0 and totals["splices"] > requests
    # each response's head went by a regular SEND at the start of its first chain, the rest spliced
    assert totals["splice_bytes"] == requests * (size - len(head_of(expected_response(size))))
