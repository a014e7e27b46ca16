"""The latency check of `invoke calibrate`: does the measured tail of a server that stalls on a
known schedule (zcb-server --calibration-stall S/P) match the tail that schedule must give?

Per cell (connection count and load) of the check's run: the stalling arm's pooled p99 and
p99.9 (analyze.latency: every block's requests), against the tail the schedule adds at the
server's measured utilisation (analyze.latency.expected_quantile) on top of the plain server's
own latency in the same cell (its pooled distribution: expected_quantile_over).
A measured value within TOLERANCE of the expected one passes; a cell that misses says the load
generator's latency cannot be trusted there, and calibration.md names it. A miss where the
generator itself was busy (core.samples.LATENCY_HEADROOM_SHARE or more) is its own queue: after
each stall a burst of responses arrives at once, and a generator without headroom reads the last
of them late. That is a limit of the host (give the generator more CPU, or a second host), not of
the method, and it is told apart: such a cell is untrusted, and the check fails only on a miss
the generator's load does not explain.
"""

from __future__ import annotations

import statistics

from zcbench.analyze import latency
from zcbench.core.arms import BASELINE, STALL_ARM
from zcbench.core.samples import LATENCY_HEADROOM_SHARE, Sample

TOLERANCE = 0.20
CHECKED = (99.0, 99.9)
#: The utilisation the expected tail is computed at is capped here: near 1 the formula's drain
#: time runs past the period, which a steady server never reaches at the loads the check uses.
MAX_UTILISATION = 0.95


def utilisation(samples: list[Sample], stall_ms: int, period_ms: int) -> float | None:
    """The stalling server's busy share of the time it was not stalled (its CPU time over the
    window less the stalls; median over the blocks)."""
    running = 1 - stall_ms / period_ms
    shares = [s.server_cpu_s / (s.measured_window_s * running) for s in samples
              if s.server_cpu_s is not None and s.measured_window_s]
    return min(MAX_UTILISATION, statistics.median(shares)) if shares else None


def check_cell(stalled: list[Sample], plain: list[Sample], stall_ms: int, period_ms: int) -> dict:
    """One cell: expected and measured p99 and p99.9 (ms), and whether each is within TOLERANCE."""
    cell = stalled[0].cell
    measured = latency.distribution(stalled, CHECKED)
    base = latency.distribution(plain, (50.0,))
    rho = utilisation(stalled, stall_ms, period_ms)
    base_ms = base.percentiles[50.0] / 1000 if base else 0.0
    entry = {"conns": cell.conns, "response_size": cell.response_size, "load": cell.load,
             "offered_rate": max((s.offered_rate or 0 for s in stalled), default=None) or None,
             "blocks": len(stalled), "utilisation": rho, "plain_p50_ms": base_ms}
    checks = []
    for q in CHECKED:
        name = f"p{q:g}"
        over = latency.expected_quantile_over(q / 100, stall_ms, period_ms, rho or 0.0, plain)
        expected = over if over is not None else latency.expected_quantile(q / 100, stall_ms, period_ms, rho or 0.0)
        got = measured.percentiles[q] / 1000 if measured else None
        ratio = got / expected if got is not None and expected > 0 else None
        entry |= {f"expected_{name}_ms": expected, f"measured_{name}_ms": got,
                  f"measured_{name}_ci_ms": [v / 1000 for v in measured.intervals[q]] if measured else None,
                  f"ratio_{name}": ratio}
        checks.append(ratio is not None and abs(ratio - 1) <= TOLERANCE)
    busy = [s.loadgen_cpu_share for s in stalled if s.loadgen_cpu_share is not None]
    entry["loadgen_busy"] = statistics.median(busy) if busy else None
    entry["passed"] = all(checks)
    entry["status"] = (PASS if entry["passed"] else
                       GENERATOR_BOUND if (entry["loadgen_busy"] or 0) >= LATENCY_HEADROOM_SHARE else FAIL)
    return entry


PASS, FAIL, GENERATOR_BOUND = "pass", "fail", "generator-bound"


def judge_latency(samples: list[Sample], stall_ms: int, period_ms: int) -> dict:
    """calibration.json's `latency`: every cell of the check, and whether all passed."""
    cells: dict[tuple, dict[str, list[Sample]]] = {}
    for sample in samples:
        c = sample.cell
        cells.setdefault((c.response_size, c.conns, -1 if c.load is None else c.load), {}).setdefault(
            c.arm, []).append(sample)
    entries = [check_cell(arms_[STALL_ARM], arms_.get(BASELINE, []), stall_ms, period_ms)
               for _, arms_ in sorted(cells.items()) if arms_.get(STALL_ARM)]
    return {"stall_ms": stall_ms, "period_ms": period_ms, "tolerance": TOLERANCE,
            "checked": [f"p{q:g}" for q in CHECKED], "loadgen_headroom_share": LATENCY_HEADROOM_SHARE,
            "cells": entries, "passed": bool(entries) and all(e["status"] != FAIL for e in entries),
            "every_cell_passed": bool(entries) and all(e["passed"] for e in entries),
            "untrusted": [{"conns": e["conns"], "load": e["load"], "why": e["status"]}
                          for e in entries if not e["passed"]]}
