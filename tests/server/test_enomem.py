"""The study's ENOMEM, reproduced and prevented, with memlock accounting on.

io_uring charges each SEND_ZC (len >> PAGE_SHIFT) + 2 pages of RLIMIT_MEMLOCK until its
notification, but only when the ring's creator lacks CAP_IPC_LOCK. --drop-ipc-lock makes that so
even for root; 8 MiB of memlock is 2048 pages, about 1000 sends of 88 bytes in flight. Thousands
of connections therefore overrun it without a cap and stay well inside it with the default cap
of 256 per worker. Every test also checks that nothing was lost: the -ENOMEM fallback resends.
"""

from __future__ import annotations

import pytest

from .conftest import run_wrk

pytestmark = pytest.mark.server

MEMLOCK = 8 << 20
CONNS = 2000
SECONDS = 1  # ENOMEM (or the budget) comes within milliseconds of the first sends


def load(start_server, *args: str, drop_ipc_lock: bool = True) -> tuple[dict, dict]:
    # --zc-page-budget 0: these tests are about the count cap; test_memlock_budget.py tests the budget
    flags = ["--drop-ipc-lock", "--zc-page-budget", "0"] if drop_ipc_lock else []
    server = start_server(*flags, *args, memlock=MEMLOCK)
    wrk = run_wrk(server.port, CONNS, SECONDS)
    return wrk, server.stop()["totals"]


def assert_nothing_lost(wrk: dict, totals: dict) -> None:
    assert wrk["errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0}
    assert wrk["requests"] > CONNS
    # every request parsed was answered, or its client left first (wrk's exit: one per connection)
    assert totals["requests"] == totals["responses"] + totals["responses_dropped"]
    assert totals["responses_dropped"] <= CONNS
    assert totals["send_errors"] == 0
    # wrk stops its clock with up to one request in flight per connection (no pipelining): the
    # server answered those too, wrk did not count them.
    assert 0 <= totals["responses"] - wrk["requests"] <= CONNS
    assert (totals["sends_zc"] + totals["fallback_cap"]
            == totals["responses"] + totals["partial_sends"] - totals["responses_coalesced"])
    assert totals["zc_notifs"] == totals["sends_zc"]


@pytest.mark.parametrize("mode", ["zc", "sendmsg-zc"])
def test_without_cap_zc_hits_enomem_and_falls_back(start_server, mode):
    """The negative control: it shows the load provokes ENOMEM, so the capped test can fail."""
    wrk, totals = load(start_server, "--send", mode, "--zc-max-inflight", "0")
    assert totals["zc_enomem"] > 0
    # a resend is counted only when issued (not when its connection was closing)
    assert 0 < totals["fallback_enomem"] <= totals["zc_enomem"]
    assert totals["sends_regular"] == totals["fallback_enomem"] + totals["fallback_cap"]
    assert_nothing_lost(wrk, totals)


@pytest.mark.parametrize("mode", ["zc", "sendmsg-zc"])
def test_default_cap_keeps_zc_free_of_enomem(start_server, mode):
    wrk, totals = load(start_server, "--send", mode)
    assert totals["zc_enomem"] == 0
    assert totals["fallback_cap"] > 0  # the cap was reached: the load was there
    assert totals["zc_inflight_peak"] <= 256
    assert_nothing_lost(wrk, totals)


def test_zc_fixed_without_cap_is_not_charged_per_send(start_server):
    """A registered buffer is charged once, at registration: no per-send memlock, no ENOMEM."""
    wrk, totals = load(start_server, "--send", "zc-fixed", "--zc-max-inflight", "0")
    assert totals["zc_enomem"] == 0
    assert totals["zc_inflight_peak"] > 1024  # more in flight than the plain buffer could afford
    assert_nothing_lost(wrk, totals)


def test_with_cap_ipc_lock_zc_is_never_charged(start_server):
    """Root keeps CAP_IPC_LOCK without --drop-ipc-lock: the ring is exempt from memlock."""
    wrk, totals = load(start_server, "--send", "zc", "--zc-max-inflight", "0", drop_ipc_lock=False)
    assert totals["zc_enomem"] == 0
    assert totals["zc_inflight_peak"] > 1024
    assert_nothing_lost(wrk, totals)
