"""Why a run's zero-copy sends fell back or failed with -ENOMEM, in one sentence for the report.

The kernel charges a SEND_ZC from a plain buffer (len >> PAGE_SHIFT) + 2 pages of the ring
creator's RLIMIT_MEMLOCK until its notification, but only when the creator lacks CAP_IPC_LOCK
(the bench's `--drop-ipc-lock` drops it to reproduce an unprivileged server). The server keeps a
per-worker page budget below that limit and sends regular at the budget, at the in-flight cap,
or to resend after -ENOMEM; the counters say which (fallback_budget, fallback_cap,
fallback_enomem). Everything here reads a run's manifest and a summarized group
(zcbench.analyze.runstats.summarize_group: counters summed over its repetitions, peaks as their maximum).
"""

from __future__ import annotations

from zcbench.core import fmt
from zcbench.analyze.runstats import GroupSummary, RunStats

#: Fallback counters -> what caused them, in the order a sentence names them.
FALLBACK_CAUSES = {"fallback_cap": "the in-flight cap", "fallback_budget": "the memlock page budget",
                   "fallback_optmem": "the MSG_ZEROCOPY optmem budget",
                   "fallback_enomem": "-ENOMEM (the memlock limit itself)",
                   "fallback_enobufs": "-ENOBUFS (optmem_max, for MSG_ZEROCOPY)"}
#: ... as a table's column names them.
FALLBACK_NAMES = {"fallback_cap": "cap", "fallback_budget": "budget", "fallback_optmem": "optmem",
                  "fallback_enomem": "ENOMEM", "fallback_enobufs": "ENOBUFS"}
FALLBACK_HEADER = "Fallback " + " / ".join(FALLBACK_NAMES.values())


def _workers(manifest: dict) -> int:
    """One server worker per server CPU (the bench's zcb-server --cpus)."""
    cpus = (manifest.get("cpus") or {}).get("server") or (manifest.get("config") or {}).get("server_cpus")
    return max(len(cpus), 1) if cpus else 1


def budget_per_worker(manifest: dict, group: GroupSummary) -> int | None:
    """The page budget of one worker. zc_page_budget is a gauge summed over the workers of a
    sample and then over the group's repetitions, so it is divided by both again."""
    total = (group.counters or {}).get("zc_page_budget")
    reps = group.reps
    if total is None or reps <= 0:
        return None
    return round(total / (reps * _workers(manifest)))


def needs_explaining(group: GroupSummary) -> bool:
    counters = group.counters or {}
    return bool(counters.get("zc_enomem") or counters.get("fallback_budget"))


def _limit_text(memlock) -> str:
    if memlock is None:
        return f"RLIMIT_MEMLOCK {fmt.UNKNOWN}"
    if memlock < 0:
        return "RLIMIT_MEMLOCK unlimited"
    return f"RLIMIT_MEMLOCK {fmt.size(memlock)}"


def explain(manifest: dict, group: GroupSummary) -> str | None:
    """One sentence: why memlock was charged, the limit, the budget per worker, the peak pinned
    pages, and which limit caused the fallbacks; None when the group had neither -ENOMEM nor
    budget fallbacks (nothing to explain)."""
    if not needs_explaining(group):
        return None
    counters = group.counters
    config = manifest.get("config") or {}
    workers = _workers(manifest)
    if config.get("drop_ipc_lock"):
        why = "the server dropped CAP_IPC_LOCK (--drop-ipc-lock), so the kernel charged every zero-copy send to memlock"
    elif "drop_ipc_lock" in config:
        why = ("the server kept CAP_IPC_LOCK, so the kernel should not have charged memlock: "
               "something else (another process of the same user?) ran the limit down")
    else:
        why = f"whether the server dropped CAP_IPC_LOCK is {fmt.UNKNOWN}"
    budget = budget_per_worker(manifest, group)
    budget_text = (f"{fmt.UNKNOWN} page budget per worker" if budget is None
                   else "no page budget" if budget == 0 else f"a budget of {fmt.count(budget)} pages per worker")
    fallbacks = {name: int(counters.get(name) or 0) for name in FALLBACK_CAUSES}
    cause = max(fallbacks, key=fallbacks.get)
    split = " / ".join(fmt.count(fallbacks[name]) for name in FALLBACK_CAUSES)
    blame = (f"most fallbacks came from {FALLBACK_CAUSES[cause]}" if fallbacks[cause] else "no fallback was issued")
    return (f"{fmt.count(counters.get('zc_enomem') or 0)} SEND_ZC -ENOMEM at {group.arm}, "
            f"{group.conns} conns, {fmt.size(group.response_size)}: {why}; "
            f"{_limit_text(config.get('memlock'))} shared by the user's {workers} worker(s), {budget_text}, "
            f"peak {fmt.count(counters.get('zc_pages_peak'))} pages pinned by one worker; "
            f"fallbacks {' / '.join(FALLBACK_NAMES.values())} {split}: {blame}.")


def glance_line(summary: RunStats, manifest: dict) -> str | None:
    """The report's "At a glance" line: the cell with the most -ENOMEM (else the most budget
    fallbacks) explained, and how many cells needed it; None when no cell did."""
    groups = [g for g in summary.groups if needs_explaining(g)]
    if not groups:
        return None
    worst = max(groups, key=lambda g: ((g.counters.get("zc_enomem") or 0), g.counters.get("fallback_budget") or 0))
    others = f" ({len(groups)} cells had -ENOMEM or budget fallbacks; this is the worst)" if len(groups) > 1 else ""
    return f"- **Memlock**{others}: {explain(manifest, worst)}"
