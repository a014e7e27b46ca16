"""msg-zerocopy's own limit: each socket's unread MSG_ZEROCOPY notifications are charged to its
option memory, and past net.core.optmem_max sendmsg fails with ENOBUFS. The per-socket optmem
budget (--zc-optmem-budget, auto = optmem_max) keeps it at 0, beside its control without the
budget that does hit ENOBUFS under the same load. Both resend regular: nothing is lost.

optmem_max is per network namespace on this kernel, so the server and wrk run in one of their own
with a small optmem_max (4 KiB: four notifications of the 832 bytes measured here); the host's
setting is never touched. The server keeps CAP_IPC_LOCK, so memlock plays no part: every ENOBUFS
is optmem's. Pipelined 64 KiB responses keep several sends of a socket unacknowledged at once.
"""

from __future__ import annotations

import pytest

from .conftest import WRK_PIPELINE_SCRIPT, run_wrk

pytestmark = pytest.mark.server

OPTMEM = 4096
CONNS, DEPTH, SECONDS = 200, 16, 1


def load(start_server, *budget: str) -> tuple[dict, dict]:
    server = start_server("--send", "msg-zerocopy", "--zc-max-inflight", "0", "--response-size", "64k", *budget,
                          optmem_max=OPTMEM)
    wrk = run_wrk(server.port, CONNS, SECONDS, script=WRK_PIPELINE_SCRIPT, script_args=(str(DEPTH),),
                  prefix=server.client_prefix)
    final = server.stop()
    totals = final["totals"]
    print(f"\n[msg-zerocopy optmem_max={OPTMEM} {' '.join(budget) or 'budget auto'}] zc_enobufs={totals['zc_enobufs']} "
          f"fallback_enobufs={totals['fallback_enobufs']} fallback_optmem={totals['fallback_optmem']} "
          f"sends_zc={totals['sends_zc']} zc_notifs={totals['zc_notifs']} responses={totals['responses']}")
    # nothing lost: every request answered or counted as dropped when wrk left; none failed
    assert wrk["errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0}
    assert totals["requests"] == totals["responses"] + totals["responses_dropped"]
    assert 0 <= totals["responses"] - wrk["requests"] <= CONNS * DEPTH
    assert totals["send_errors"] <= CONNS  # wrk closes its connections with sends on their way
    # every notification waited for: no send still held, none missing
    assert totals["zc_inflight"] == 0 and final["shutdown"]["zc_notifications_missing"] == 0
    assert totals["zc_notifs"] + totals["zc_enobufs"] <= totals["sends_zc"]
    return final, totals


def test_optmem_budget_keeps_msg_zerocopy_free_of_enobufs_and_its_control_does_not(start_server):
    final, totals = load(start_server)
    assert final["optmem"]["sends_per_socket"] == totals["zc_optmem_budget"] == OPTMEM // 1024
    assert totals["zc_enobufs"] == 0
    assert totals["fallback_optmem"] > 0  # the budget was reached: the load was there
    assert totals["zc_notifs"] > 0

    _, control = load(start_server, "--zc-optmem-budget", "0")
    assert control["zc_optmem_budget"] == 0 and control["fallback_optmem"] == 0
    assert control["zc_enobufs"] > 0  # the same load without the budget overruns optmem_max
    assert 0 < control["fallback_enobufs"] <= control["zc_enobufs"]


def test_explicit_optmem_budget(start_server):
    server = start_server("--send", "msg-zerocopy", "--zc-optmem-budget", "8k")
    final = server.stop()
    assert final["config"]["zc_optmem_budget"] == 8192
    assert final["optmem"]["sends_per_socket"] == final["totals"]["zc_optmem_budget"] == 8
