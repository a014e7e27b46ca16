"""zcbench.analyze.latency: the tail a stall schedule must give (against a brute-force
simulation of a queue), merging per-block percentile tables into one distribution with a block
bootstrap, and latency against load with the load where the tail blows up."""

from __future__ import annotations

import math
import random

import pytest

from zcbench.analyze import latency

from sample_factory import make_sample


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


def simulate_queue(stall_ms: float, period_ms: float, rate_per_ms: float, capacity_per_ms: float,
                   seconds: float, q: float) -> float:
    """Brute force with a server of finite speed: one FIFO server answering capacity_per_ms
    requests per ms, stopped during the first stall_ms of every period; a steady stream at a
    random phase. The q-quantile of the wait beyond the service time itself."""
    rng = random.Random(11)
    phase, gap, service = rng.random() * period_ms, 1 / rate_per_ms, 1 / capacity_per_ms
    waits, t, free_at = [], 0.0, 0.0
    while t < seconds * 1000:
        start = max(t, free_at)
        into = (start + phase) % period_ms
        if into < stall_ms:
            start += stall_ms - into
        free_at = start + service
        waits.append(start - t)
        t += gap
    waits.sort()
    return waits[min(len(waits) - 1, int(q * len(waits)))]


@pytest.mark.parametrize("stall,period,rate", [(50, 500, 30), (20, 500, 60), (5, 100, 60), (2, 10, 10)])
@pytest.mark.parametrize("q", [0.9, 0.99, 0.999])
def test_expected_quantile_matches_a_brute_force_simulation(stall, period, rate, q):
    expected = latency.expected_quantile(q, stall, period)
    simulated = simulate(stall, period, rate, 60, q)
    assert simulated == pytest.approx(expected, abs=0.02 * stall + 0.05)


@pytest.mark.parametrize("utilisation", [0.3, 0.7, 0.9])
@pytest.mark.parametrize("stall,period", [(20, 500), (50, 500), (5, 100)])
@pytest.mark.parametrize("q", [0.99, 0.999])
def test_expected_quantile_under_load_matches_a_simulated_queue(stall, period, utilisation, q):
    capacity = 60.0  # requests per ms the server answers when it runs
    expected = latency.expected_quantile(q, stall, period, utilisation)
    simulated = simulate_queue(stall, period, utilisation * capacity, capacity, 60, q)
    assert simulated == pytest.approx(expected, abs=0.02 * stall + 0.05)
    # the load lengthens the tail: the low-load formula would be off by (1 - q) * rho * P
    assert expected >= latency.expected_quantile(q, stall, period)


def test_the_measured_table_of_the_issue():
    # 50 ms every 500 ms: p99 45 ms; 20/500: 15 ms; 5/100: 4 ms (wrk measured 45.3, 15.5, 4.6 here)
    assert latency.expected_quantile(0.99, 50, 500) == pytest.approx(45)
    assert latency.expected_quantile(0.99, 20, 500) == pytest.approx(15)
    assert latency.expected_quantile(0.99, 5, 100) == pytest.approx(4)
    assert latency.expected_quantile(0.5, 50, 500) == 0.0  # half the requests never meet a stall
    with pytest.raises(ValueError):
        latency.expected_quantile(0.99, 500, 50)
    with pytest.raises(ValueError):
        latency.expected_quantile(0.99, 20, 500, utilisation=1.0)


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
    # equal blocks merge to themselves (to the grid's resolution: well under 0.1 %)
    same = table_of(blocks[0])
    again = latency.merge_percentiles([(1, same), (1, same)], (25, 50, 75, 99))
    assert again == pytest.approx({25: dict(same)[25], 50: dict(same)[50], 75: dict(same)[75], 99: dict(same)[99]},
                                  rel=1e-3)
    assert latency.merge_percentiles([], (50,)) == {}


def _sample(rep: int, load: float | None, values: list[float], arm: str = "regular"):
    return make_sample(arm, rep, load=load, requests=len(values), loadgen_result={"percentiles_us": table_of(values)})


def test_a_distribution_pools_the_blocks_and_its_interval_covers_them():
    rng = random.Random(8)
    blocks = [[rng.lognormvariate(5 + 0.05 * rng.random(), 0.4) for _ in range(4000)] for _ in range(20)]
    found = latency.distribution([_sample(rep, None, values) for rep, values in enumerate(blocks)],
                                 (50, 99), draws=400)
    for p in (50, 99):
        truth = pooled_quantile(blocks, p)
        assert found.percentiles[p] == pytest.approx(truth, rel=0.05)
        low, high = found.intervals[p]
        assert low <= found.percentiles[p] <= high and high > low
    assert found.blocks == 20 and found.requests == 80000
    # one block far off widens the interval: blocks, not requests, are what varies
    wild = blocks[:19] + [[v * 20 for v in blocks[19]]]
    wider = latency.distribution([_sample(rep, None, values) for rep, values in enumerate(wild)], (99,), draws=400)
    assert (wider.intervals[99][1] - wider.intervals[99][0]) > 3 * (found.intervals[99][1] - found.intervals[99][0])


def test_knee_load_interpolates_in_log_latency_and_says_never():
    loads = [0.3, 0.5, 0.7, 0.9]
    # p99 1 ms, 2 ms, 100 ms: 10x the first (10 ms) is crossed between 0.5 and 0.7, at
    # log(10/2) / log(100/2) of the way
    tails = [[1.0, 2.0, 100.0, 200.0], [1.0, 1.5, 2.0, 3.0], [1.0, 20.0, 1.0, 1.0]]
    knees = latency.knee_load(loads, tails)
    assert knees[0] == pytest.approx(0.5 + 0.2 * math.log(5) / math.log(50))
    assert math.isnan(knees[1])
    assert knees[2] == pytest.approx(0.3 + 0.2 * math.log(10) / math.log(20))  # the first crossing counts


def test_load_curves_find_where_one_arm_blows_up_and_the_other_does_not():
    rng = random.Random(4)
    loads = (0.3, 0.5, 0.7, 0.9)
    # regular: p99 grows mildly with load; zc: its tail explodes past 70 %
    scale = {"regular": {0.3: 1.0, 0.5: 1.2, 0.7: 1.5, 0.9: 2.0}, "zc": {0.3: 1.0, 0.5: 1.3, 0.7: 4.0, 0.9: 60.0}}
    samples = [_sample(rep, load, [rng.lognormvariate(5, 0.3) * scale[arm][load] for _ in range(3000)], arm)
               for rep in range(12) for load in loads for arm in ("regular", "zc")]
    curves = {c.arm: c for c in latency.load_curves(samples, draws=300)}
    assert set(curves) == {"regular", "zc"}
    assert [p.load for p in curves["zc"].points] == list(loads)
    assert curves["regular"].knee.load is None and curves["regular"].knee.reached_share < 0.05
    zc_knee = curves["zc"].knee
    assert 0.7 < zc_knee.load < 0.9 and zc_knee.reached_share > 0.95
    assert zc_knee.interval[0] <= zc_knee.load <= zc_knee.interval[1]
    p99 = {p.load: p.percentiles_us[99.0] for p in curves["zc"].points}
    assert p99[0.9] > 30 * p99[0.3]
    # one load is no curve
    assert latency.load_curves([s for s in samples if s.cell.load == 0.3]) == []


def test_the_expected_tail_over_the_plain_servers_own_latency_matches_a_simulation():
    rng = random.Random(21)
    plain_values = [rng.lognormvariate(math.log(300), 0.8) for _ in range(20000)]  # µs, a long own tail
    plain = [make_sample("regular", rep, requests=len(plain_values) // 4,
                         loadgen_result={"percentiles_us": table_of(plain_values[rep::4])}) for rep in range(4)]
    stall, period, rho = 5.0, 100.0, 0.4
    # brute force: a uniform arrival phase's wait plus an independent draw of the plain latency
    totals = []
    for value in plain_values * 5:
        t = rng.random() * period
        wait = max(0.0, stall - (1 - rho) * t)
        totals.append(wait + value / 1000)
    totals.sort()
    for q in (0.99, 0.999):
        simulated = totals[int(q * len(totals))]
        assert latency.expected_quantile_over(q, stall, period, rho, plain) == pytest.approx(simulated, rel=0.05)
    # a constant plain latency just shifts the formula's tail
    flat = [make_sample("regular", 0, requests=1000, loadgen_result={"percentiles_us": [[p, 500.0] for p in PERCENTILES]})]
    assert latency.expected_quantile_over(0.99, 20, 500, 0.3, flat) == pytest.approx(
        latency.expected_quantile(0.99, 20, 500, 0.3) + 0.5, abs=0.02)
    assert latency.expected_quantile_over(0.99, 20, 500, 0.3, []) is None
