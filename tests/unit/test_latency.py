"""zcbench.analyze.latency: the tail a stall schedule must give (against a brute-force
simulation), and merging per-block percentile tables into one distribution."""

from __future__ import annotations

import random

import pytest

from zcbench.analyze import latency


def simulate(stall_ms: float, period_ms: float, rate_per_ms: float, seconds: float, q: float) -> float:
    """Brute force: a steady stream, one request every 1/rate ms at a random phase; a request
    arriving in a stall waits for its end. The q-quantile of the extra latency."""
    rng = random.Random(5)
    phase, gap = rng.random() * period_ms, 1 / rate_per_ms
    waits, t = [], 0.0
    while t < seconds * 1000:
        into = (t + phase) % period_ms
        waits.append(stall_ms - into if into < stall_ms else 0.0)
        t += gap
    waits.sort()
    return waits[min(len(waits) - 1, int(q * len(waits)))]


@pytest.mark.parametrize("stall,period,rate", [(50, 500, 30), (20, 500, 60), (5, 100, 60), (2, 10, 10)])
@pytest.mark.parametrize("q", [0.9, 0.99, 0.999])
def test_expected_quantile_matches_a_brute_force_simulation(stall, period, rate, q):
    expected = latency.expected_quantile(q, stall, period)
    simulated = simulate(stall, period, rate, 60, q)
    assert simulated == pytest.approx(expected, abs=0.02 * stall + 0.05)


def test_the_measured_table_of_the_issue():
    # 50 ms every 500 ms: p99 45 ms; 20/500: 15 ms; 5/100: 4 ms (wrk measured 45.3, 15.5, 4.6 here)
    assert latency.expected_quantile(0.99, 50, 500) == pytest.approx(45)
    assert latency.expected_quantile(0.99, 20, 500) == pytest.approx(15)
    assert latency.expected_quantile(0.99, 5, 100) == pytest.approx(4)
    assert latency.expected_quantile(0.5, 50, 500) == 0.0  # half the requests never meet a stall
    with pytest.raises(ValueError):
        latency.expected_quantile(0.99, 500, 50)


PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100)


def table_of(values: list[float]) -> list[list[float]]:
    values = sorted(values)
    return [[p, values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))]] for p in PERCENTILES]


def pooled_quantile(groups: list[list[float]], p: float) -> float:
    everything = sorted(v for group in groups for v in group)
    return everything[min(len(everything) - 1, max(0, round(p / 100 * len(everything)) - 1))]


def test_merging_block_tables_gives_the_pooled_distribution():
    rng = random.Random(3)
    # three blocks: one slow (a queue blew up), two ordinary; different sizes
    blocks = [[rng.lognormvariate(0, 0.3) for _ in range(20000)],
              [rng.lognormvariate(0.1, 0.3) for _ in range(10000)],
              [rng.lognormvariate(1.5, 0.5) for _ in range(5000)]]
    merged = latency.merge_percentiles([(len(b), table_of(b)) for b in blocks], (50, 90, 99))
    for p in (50, 90, 99):
        truth = pooled_quantile(blocks, p)
        assert merged[p] == pytest.approx(truth, rel=0.08), p
    # equal blocks merge to themselves
    same = table_of(blocks[0])
    again = latency.merge_percentiles([(1, same), (1, same)], (25, 50, 75, 99))
    assert again == pytest.approx({25: dict(same)[25], 50: dict(same)[50], 75: dict(same)[75], 99: dict(same)[99]},
                                  rel=1e-6)
    assert latency.merge_percentiles([], (50,)) == {}
