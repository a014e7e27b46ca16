"""IORING_SEND_ZC_REPORT_USAGE is probed (Linux 6.2+); without it the zero-copy arms still run
and say the copied share is unknown (issue 11, item 7). --no-zc-report-usage runs the 6.0/6.1
path on this kernel."""

from __future__ import annotations

import pytest

from zcbench.measure import counters

from .conftest import connect, expected_response, get, recv_exactly

pytestmark = pytest.mark.server


def serve_some(server, n: int = 20) -> dict:
    with connect(server.port) as sock:
        sock.sendall(get() * n)
        assert recv_exactly(sock, 88 * n) == expected_response(88) * n
    return server.wait_counters(lambda t: t["zc_inflight"] == 0 and t["responses"] == n)


@pytest.mark.parametrize("arm", ["zc", "zc-fixed"])
def test_copies_are_reported_when_the_kernel_can(start_server, arm):
    server = start_server("--send", arm)
    totals = serve_some(server)
    assert counters.read_stats_file(server.stats_file)["zc_copies_reported"] is True
    assert "zero-copy copies reported" in server.banner
    assert totals["zc_copied"] == totals["zc_notifs"] == totals["sends_zc"] > 0  # loopback copies
    assert server.stop()["config"]["zc_report_usage"] is True


@pytest.mark.parametrize("arm", ["zc", "zc-fixed"])
def test_without_report_usage_zc_runs_and_the_copied_share_is_unknown(start_server, arm):
    server = start_server("--send", arm, "--no-zc-report-usage")
    totals = serve_some(server)
    assert counters.read_stats_file(server.stats_file)["zc_copies_reported"] is False
    assert "zero-copy copies unknown" in server.banner
    assert totals["zc_notifs"] == totals["sends_zc"] > 0
    assert totals["zc_copied"] == 0  # not asked, so never flagged: readers must not call it 0 %
    assert server.stop()["config"]["zc_report_usage"] is False


def test_regular_arm_reports_no_copied_share(start_server):
    server = start_server()
    serve_some(server)
    assert counters.read_stats_file(server.stats_file)["zc_copies_reported"] is False
    server.stop()
