"""Latency distributions: a known tail to check the measurement against, and the per-block
percentile tables of a cell merged into one distribution per arm.

The known tail. A server that stops answering for S ms every P ms (zcb-server's
--calibration-stall) holds the requests that arrive during a stall until it ends. At a steady
rate, arrivals fall in a stall with probability S / P, at a uniform point of it, and wait the
rest of it: the extra latency L satisfies P(L > x) = (S / P) * (S - x) / S for 0 <= x < S. Its
q-quantile is therefore

    x_q = S * (1 - (1 - q) * P / S)      when 1 - q < S / P, and about nothing otherwise,

on top of the server's own latency: 50 ms every 500 ms gives p99 = 45 ms, 20/500 gives 15 ms,
5/100 gives 4 ms (what was measured here with wrk's corrected percentiles: 45.3, 15.5, 4.6).

Merging. Each sample keeps its load generator's percentile table (p -> latency). A cell's blocks
are merged into one distribution by averaging their cumulative distribution functions (each
block weighted by its requests): the pooled distribution of every request of the cell, as far as
the tables describe it (linear between their points).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence


def expected_quantile(q: float, stall_ms: float, period_ms: float) -> float:
    """The extra latency (ms) at quantile q (0..1) that stalls of stall_ms every period_ms add to
    a steady stream of requests."""
    if not 0 < stall_ms < period_ms:
        raise ValueError(f"a stall of {stall_ms} ms every {period_ms} ms is no schedule")
    share = stall_ms / period_ms
    tail = 1 - q
    return stall_ms * (1 - tail / share) if tail < share else 0.0


def _cdf(table: Sequence[Sequence[float]], x: float) -> float:
    """P(latency <= x) from a percentile table [[p, value], ...] (p in percent, ascending)."""
    values = [value for _, value in table]
    probabilities = [p / 100 for p, _ in table]
    if x < values[0]:
        return probabilities[0] * (x / values[0]) if values[0] > 0 and x > 0 else 0.0
    if x >= values[-1]:
        return probabilities[-1]
    i = bisect.bisect_right(values, x)
    low_v, high_v = values[i - 1], values[i]
    low_p, high_p = probabilities[i - 1], probabilities[i]
    if high_v == low_v:
        return high_p
    return low_p + (high_p - low_p) * (x - low_v) / (high_v - low_v)


def merge_percentiles(tables: Sequence[tuple[float, Sequence[Sequence[float]]]],
                      percentiles: Sequence[float]) -> dict[float, float]:
    """The pooled distribution's value at each percentile, from (weight, table) pairs: the value
    x at which the weighted mean of the tables' CDFs reaches p (found by bisection between the
    smallest and largest value any table names)."""
    usable = [(weight, sorted(table)) for weight, table in tables if weight > 0 and table]
    if not usable:
        return {}
    total = sum(weight for weight, _ in usable)
    low = min(table[0][1] for _, table in usable)
    high = max(table[-1][1] for _, table in usable)

    def pooled(x: float) -> float:
        return sum(weight * _cdf(table, x) for weight, table in usable) / total

    merged = {}
    for p in percentiles:
        target = p / 100
        lo, hi = 0.0 if low > 0 else low, high
        for _ in range(80):
            mid = (lo + hi) / 2
            if pooled(mid) < target:
                lo = mid
            else:
                hi = mid
        merged[p] = hi
    return merged
