"""SIGTERM / SIGINT under load: finish sends, wait for every notification, report, exit 0 fast."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from zcbench.measure import counters

from .conftest import WRK_SCRIPT

pytestmark = pytest.mark.server


@pytest.mark.parametrize(("mode", "sig"), [("zc", signal.SIGTERM), ("zc", signal.SIGINT), ("sendmsg-zc", signal.SIGTERM),
                                           ("msg-zerocopy", signal.SIGTERM), ("splice", signal.SIGTERM)])
def test_stop_under_zero_copy_load(start_server, mode, sig):
    server = start_server("--send", mode, "--zc-max-inflight", "0", "--response-size", "64k")
    wrk = subprocess.Popen(
        ["wrk", "-t1", "-c500", "-d10s", "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{server.port}/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        server.wait_counters(lambda t: t["responses"] > 1000, timeout=10)
        started = time.monotonic()
        server.proc.send_signal(sig)
        out, err = server.proc.communicate(timeout=5)
        elapsed = time.monotonic() - started
    finally:
        wrk.kill()
        wrk.wait()
    assert server.proc.returncode == 0, err.decode()
    assert elapsed < 2.0
    final = counters.parse_final_json(out.decode())
    totals = final["totals"]
    assert final["shutdown"]["zc_notifications_missing"] == 0
    assert totals["zc_inflight"] == 0
    if mode == "splice":  # nothing of the user's to notify: every splice chain ended
        assert totals["splices"] > 0 and totals["sends_zc"] == totals["zc_notifs"] == 0
    elif mode == "msg-zerocopy":  # every send that took an id was notified (a failed one took none)
        assert 0 < totals["zc_notifs"] <= totals["sends_zc"] <= totals["zc_notifs"] + totals["send_errors"]
    else:
        assert totals["zc_notifs"] == totals["sends_zc"] > 0
    assert totals["conns_open"] == 0
