"""analyze.independence: white-noise blocks pass; autocorrelated or drifting ones are caught."""

import math
import random

import pytest
from scipy import stats as scipy_stats

from zcbench.analyze import independence
from zcbench.core.samples import Cell, Latency, Sample

N = 30  # the default plan's blocks


def white(seed: int, n: int = N, sd: float = 0.05) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(0.05, sd) for _ in range(n)]


def ar1(seed: int, phi: float = 0.8, n: int = N, sd: float = 0.05) -> list[float]:
    rng = random.Random(seed)
    x, series = 0.0, []
    for _ in range(n):
        x = phi * x + rng.gauss(0, sd)
        series.append(0.05 + x)
    return series


def drifting(seed: int, per_block: float = 0.004, n: int = N, sd: float = 0.02) -> list[float]:
    rng = random.Random(seed)
    return [0.05 + per_block * i + rng.gauss(0, sd) for i in range(n)]


def test_autocorrelation_matches_its_definition():
    series = [1.0, 3.0, 2.0, 5.0, 4.0]
    mean = 3.0
    deviations = [x - mean for x in series]
    expected = sum(deviations[i] * deviations[i + 1] for i in range(4)) / sum(d * d for d in deviations)
    assert independence.autocorrelation(series, 1) == pytest.approx(expected)
    assert independence.autocorrelation([2.0] * 5, 1) == 0.0


def test_ljung_box_statistic_and_its_chi_square_p():
    series = ar1(1)
    q, p = independence.ljung_box(series, 3)
    n = len(series)
    by_hand = n * (n + 2) * sum(independence.autocorrelation(series, k) ** 2 / (n - k) for k in (1, 2, 3))
    assert q == pytest.approx(by_hand)
    assert p == pytest.approx(scipy_stats.chi2.sf(by_hand, 3))


def test_white_noise_passes_and_ar1_and_a_trend_fail():
    assert independence.judge([independence.check_series("zc", 100, 88, list(range(N)), white(3))]).verdict == \
        independence.INDEPENDENT
    dependent = independence.judge([independence.check_series("zc", 100, 88, list(range(N)), ar1(3))])
    assert dependent.verdict == independence.DEPENDENT
    assert dependent.cells[0].p_autocorrelation_holm < 0.05
    drift = independence.judge([independence.check_series("zc", 100, 88, list(range(N)), drifting(3))])
    assert drift.verdict == independence.DEPENDENT and drift.cells[0].p_trend_holm < 0.05


def rejection_rate(make, runs: int = 400) -> float:
    rejected = 0
    for seed in range(runs):
        check = independence.judge([independence.check_series("zc", 100, 88, list(range(N)), make(seed))])
        rejected += check.verdict == independence.DEPENDENT
    return rejected / runs


def test_the_check_holds_its_false_alarm_rate_and_has_power():
    # Both tests at 5% after Holm over the two: white noise is flagged at most ~5% of the time.
    assert rejection_rate(white) <= 0.07
    assert rejection_rate(ar1) >= 0.7
    assert rejection_rate(drifting) >= 0.8


def test_too_few_blocks_say_so():
    check = independence.judge([independence.check_series("zc", 100, 88, [0, 1, 2], [0.1, 0.2, 0.1])])
    assert check.verdict == independence.TOO_FEW and check.cells[0].p_autocorrelation is None


def checked(conns: int, p_autocorrelation: float, p_trend: float) -> independence.SeriesCheck:
    check = independence.SeriesCheck("zc", conns, 88, list(range(N)), [0.0] * N, lags=6)
    check.p_autocorrelation, check.p_trend = p_autocorrelation, p_trend
    return check


def test_holm_runs_over_every_test_of_the_run():
    # p 0.015: significant within its own cell's two tests, not among three cells' six
    alone = independence.judge([checked(100, 0.015, 0.9)])
    assert alone.cells[0].p_autocorrelation_holm == pytest.approx(0.03) and alone.verdict == independence.DEPENDENT
    together = independence.judge([checked(100, 0.015, 0.9), checked(1000, 0.5, 0.6), checked(4000, 0.7, 0.8)])
    assert together.cells[0].p_autocorrelation_holm == pytest.approx(0.09)
    assert together.verdict == independence.INDEPENDENT
    assert [c.verdict for c in together.cells] == [independence.INDEPENDENT] * 3


def sample(index: int, arm: str, rep: int, cpu_us: float) -> Sample:
    latency = Latency(mean=1, stdev=1, max=1, p50=1, p75=1, p90=1, p99=1, p99_9=1, p99_99=1)
    return Sample(cell=Cell(index, "zcbench", arm, 100, 88, rep), started_at="", finished_at="", duration_s=2.0,
                  loadgen_result={}, requests=1000, requests_per_s=500.0, latency_us=latency, errors=None,
                  server_counters=None, server_cpu_s=cpu_us * 1000 / 1e6, cpu_us_per_request=cpu_us,
                  loadgen_cpu_s=None, loadgen_cpu_share=None, loadgen_bound=False, loadgen_command=[])


def test_check_blocks_reads_the_log_ratios_of_cpu_per_request_in_block_order():
    logs = drifting(2)
    samples = []
    for rep, log in enumerate(logs):
        samples += [sample(2 * rep, "regular", rep, 10.0), sample(2 * rep + 1, "zc", rep, 10.0 * math.exp(log))]
    check = independence.check_blocks(samples)
    assert len(check.cells) == 1
    cell = check.cells[0]
    assert (cell.arm, cell.conns, cell.blocks) == ("zc", 100, list(range(N)))
    assert cell.log_ratios == pytest.approx(logs)
    assert check.verdict == independence.DEPENDENT
    assert check.to_json()["cells"][0]["n"] == N and "Ljung-Box" in check.to_json()["assumes"]
