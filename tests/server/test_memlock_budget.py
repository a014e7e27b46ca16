"""The memlock budget keeps zero-copy sends free of ENOMEM at any response size (issue 11,
item 2), beside the control without it that does hit ENOMEM.

A SEND_ZC from a plain buffer is charged (len >> PAGE_SHIFT) + 2 pages of RLIMIT_MEMLOCK until
its notification, when the ring's creator lacks CAP_IPC_LOCK. A count cap cannot bound that for
large responses (256 sends of 1 MiB are 66,000 pages); the budget counts the pages. The server
runs as a uid of its own: memlock is charged per user, and root's is shared with every other
process (and test) on the machine. No count cap in either arm, so only the budget is tested.

SENDMSG_ZC is charged the same way (its total length); sendmsg(MSG_ZEROCOPY) too, by
mm_account_pinned_pages(), which fails with ENOBUFS instead of ENOMEM: the budget covers all three.
"""

from __future__ import annotations

import pytest

from .conftest import run_wrk

pytestmark = pytest.mark.server

MEMLOCK = 8 << 20
SERVER_UID = 65534  # nobody: unprivileged, so no CAP_IPC_LOCK and a memlock account of its own
SECONDS = 1  # ENOMEM (or the budget) comes within milliseconds of the first sends
# connections per size: enough zero-copy sends in flight to exceed 8 MiB without the budget
CONNS = {"88": 2000, "64k": 500, "1m": 500}
# each memlock-charged mode and the counter of the kernel's refusals it gets
CHARGED = {"zc": "zc_enomem", "sendmsg-zc": "zc_enomem", "msg-zerocopy": "zc_enobufs"}


def load(start_server, size: str, *budget: str, mode: str = "zc") -> tuple[dict, dict]:
    server = start_server("--send", mode, "--zc-max-inflight", "0", "--response-size", size, *budget,
                          memlock=MEMLOCK, nofile=16384, uid=SERVER_UID)
    assert "memlock accounting on" in server.banner
    wrk = run_wrk(server.port, CONNS[size], SECONDS)
    final = server.stop()
    totals = final["totals"]
    print(f"\n[{mode} {size} conns={CONNS[size]} {' '.join(budget) or 'budget auto'}] zc_enomem={totals['zc_enomem']} "
          f"zc_enobufs={totals['zc_enobufs']} "
          f"fallback_budget={totals['fallback_budget']} sends_zc={totals['sends_zc']} "
          f"zc_pages_peak={totals['zc_pages_peak']} budget={totals['zc_page_budget']} responses={totals['responses']}")
    assert wrk["errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0}
    assert totals["requests"] == totals["responses"] + totals["responses_dropped"]
    # wrk closes its connections when its clock stops, with large responses still being sent:
    # at most one failed send per connection (then it is closed), never an ENOMEM (counted apart)
    assert totals["send_errors"] <= CONNS[size]
    # every send started as a zero-copy send or as a regular one at the budget, and ended as a
    # response, a partial send, or an error (the client had gone)
    assert (totals["sends_zc"] + totals["fallback_budget"] + totals["fallback_optmem"]
            == totals["responses"] + totals["partial_sends"] - totals["responses_coalesced"] + totals["send_errors"])
    if mode == "msg-zerocopy":  # a sendmsg that failed took no id: nothing to notify
        assert totals["zc_notifs"] + totals["zc_enobufs"] <= totals["sends_zc"]
        assert totals["zc_notifs"] + totals["zc_enobufs"] + totals["send_errors"] >= totals["sends_zc"]
    else:
        assert totals["zc_notifs"] == totals["sends_zc"]
    assert totals["zc_pages"] == 0 and totals["zc_inflight"] == 0
    return final, totals


@pytest.mark.parametrize("size", list(CONNS))
@pytest.mark.parametrize("mode", list(CHARGED))
def test_budget_keeps_zc_free_of_enomem_and_its_control_does_not(start_server, mode, size):
    refused = CHARGED[mode]
    final, totals = load(start_server, size, mode=mode)
    memlock = final["memlock"]
    assert memlock["charged"] is True and memlock["limit_bytes"] == MEMLOCK
    budget = memlock["zc_page_budget_per_worker"]
    assert 0 < budget < MEMLOCK // memlock["page_size"]
    assert totals["zc_page_budget"] == budget
    assert totals[refused] == 0
    assert totals["fallback_budget"] > 0  # the budget was reached: the load was there
    assert totals["zc_pages_peak"] <= budget

    _, control = load(start_server, size, "--zc-page-budget", "0", mode=mode)
    assert control["zc_page_budget"] == 0 and control["fallback_budget"] == 0
    assert control[refused] > 0  # the same load without the budget overruns memlock
    assert control["zc_pages_peak"] > budget


def test_no_budget_when_the_kernel_does_not_charge(start_server):
    """Root keeping CAP_IPC_LOCK is never charged: no budget, and zero-copy is not held back."""
    server = start_server("--send", "zc", "--response-size", "64k", memlock=MEMLOCK)
    assert "memlock accounting off" in server.banner
    final = server.stop()
    assert final["memlock"]["charged"] is False
    assert final["memlock"]["zc_page_budget_per_worker"] == 0


def test_explicit_budget_and_bad_values(start_server, server_binary):
    server = start_server("--send", "zc", "--zc-page-budget", "300")
    assert "zc page budget 300/worker" in server.banner
    assert server.stop()["totals"]["zc_page_budget"] == 300
