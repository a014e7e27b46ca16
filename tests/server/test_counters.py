"""The counters add up, live (stats file through cffi) and in the final JSON."""

from __future__ import annotations

import pytest

from zcbench.measure import counters

from .conftest import ARMS, connect, expected_response, get, recv_exactly, sends_zero_copy

pytestmark = pytest.mark.server

SIZE = 1000
PER_CONN = 25
CONNS = 4


@pytest.mark.parametrize("arm", ARMS)
def test_counters_add_up_live_and_at_exit(start_server, arm):
    server = start_server("--send", arm, "--response-size", str(SIZE))
    total = PER_CONN * CONNS
    socks = [connect(server.port) for _ in range(CONNS)]
    for sock in socks:
        sock.sendall(get() * PER_CONN)
    for sock in socks:
        assert recv_exactly(sock, PER_CONN * SIZE) == expected_response(SIZE) * PER_CONN

    live = server.wait_counters(lambda t: t["responses"] == total and t["zc_inflight"] == 0)
    assert live["requests"] == live["responses"] == total
    assert live["responses_dropped"] == 0
    assert live["conns_open"] == CONNS and live["conns_accepted"] == CONNS
    assert live["bytes_sent"] == total * SIZE
    # pipelined requests share sends: each send is one response's own, or a short one
    sends = live["sends_regular"] + live["sends_zc"] + live["splices"]
    assert sends == total + live["partial_sends"] - live["responses_coalesced"]
    if not sends_zero_copy(arm, SIZE):
        assert live["sends_zc"] == live["zc_notifs"] == 0
    else:
        # every response started as a zero-copy send or as a regular one at the cap
        assert live["sends_zc"] + live["fallback_cap"] == total + live["partial_sends"] - live["responses_coalesced"]
        assert live["zc_notifs"] == live["sends_zc"]
        # loopback always copies: the kernel says so in each notification
        assert live["zc_copied"] == live["zc_notifs"]
        assert 1 <= live["zc_inflight_peak"] <= 256

    for sock in socks:
        sock.close()
    final = server.stop()
    totals = final["totals"]
    for name in ("requests", "responses", "bytes_sent", "sends_zc", "sends_regular", "zc_notifs"):
        assert totals[name] == live[name], name
    assert totals["conns_closed"] == CONNS and totals["conns_open"] == 0
    assert final["shutdown"]["zc_notifications_missing"] == 0


def test_workers_each_count_and_totals_are_their_sum(start_server):
    server = start_server("--workers", "2", "--send", "zc")
    socks = [connect(server.port) for _ in range(40)]
    for sock in socks:
        sock.sendall(get() * 3)
    for sock in socks:
        assert recv_exactly(sock, 3 * 88) == expected_response(88) * 3
    # a response is counted when its worker reaps its send's completion, which can come after the
    # client has read it (a busy fresh machine's run read one worker's 42 as 0 here)
    server.wait_counters(lambda totals: totals["responses"] == 120)
    snapshot = counters.read_stats_file(server.stats_file)
    assert snapshot["nworkers"] == 2
    for field in counters.counter_fields():
        values = [w[field.name] for w in snapshot["workers"]]
        # a peak of the whole is the highest worker's peak: their sum was never reached
        assert snapshot["totals"][field.name] == (max(values) if field.kind == "peak" else sum(values)), field
    assert snapshot["totals"]["zc_inflight_peak"] > 0
    # SO_REUSEPORT spread 40 connections over both listeners
    assert all(w["conns_accepted"] > 0 for w in snapshot["workers"])
    final = server.stop()
    assert [w["responses"] for w in final["workers"]] == [w["responses"] for w in snapshot["workers"]]
    peaks = [w["zc_inflight_peak"] for w in final["workers"]]
    assert final["totals"]["zc_inflight_peak"] == max(peaks)
    assert final["totals"]["responses"] == 120


def test_counters_delta_treats_gauges_as_levels():
    before = {"responses": 10, "zc_inflight": 5, "zc_inflight_peak": 7}
    after = {"responses": 25, "zc_inflight": 2, "zc_inflight_peak": 9}
    assert counters.delta(after, before) == {"responses": 15, "zc_inflight": 2, "zc_inflight_peak": 9}


def test_stats_reader_rejects_foreign_files(tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"\0" * 4096)
    with pytest.raises(counters.StatsError, match="not a zcbench stats file"):
        counters.read_stats_file(junk)
    with pytest.raises(counters.StatsError, match="does not exist"):
        counters.read_stats_file(tmp_path / "missing")


def test_final_json_parser_needs_every_counter():
    with pytest.raises(counters.StatsError, match="lacks counters"):
        counters.parse_final_json('{"totals": {"requests": 1}, "workers": []}')
    with pytest.raises(counters.StatsError, match="no final JSON"):
        counters.parse_final_json("zcb-server: listening\n")
