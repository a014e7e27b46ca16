"""zcbench.analyze.stats: the paired test, Holm, the minimum detectable effect, and run summaries.

The paired test and its interval are checked against scipy; the error rates by seeded
simulation (Monte Carlo), so a wrong formula shows as a rate outside its expected band.
"""

import math
import random
import statistics
from pathlib import Path

import pytest
from scipy import stats as scipy_stats

from zcbench.analyze import stats
from zcbench.analyze import runstats
from zcbench.core.rundir import load_samples
from zcbench.core.samples import Sample

from sample_factory import make_sample

RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"


def _logs(pairs):
    return [math.log(a / b) for b, a in pairs]


def test_paired_test_matches_scipy_ttest_rel_on_logs():
    base = [100.0, 103.0, 98.0, 101.0, 99.5, 102.0]
    arm = [104.0, 106.0, 101.5, 106.0, 103.0, 105.5]
    result = stats.paired_test(_logs(zip(base, arm)))
    expected = scipy_stats.ttest_rel([math.log(v) for v in arm], [math.log(v) for v in base])
    assert result.p == pytest.approx(float(expected.pvalue))
    assert result.ratio == pytest.approx(math.exp(statistics.fmean(_logs(zip(base, arm)))))
    # The 95 % interval is scipy's t interval of the mean log ratio, exponentiated.
    one = scipy_stats.ttest_1samp(_logs(zip(base, arm)), 0.0).confidence_interval(0.95)
    assert result.ci95 == pytest.approx([math.exp(one.low), math.exp(one.high)])


def test_paired_test_edges():
    assert stats.paired_test([]).ratio is None
    single = stats.paired_test([0.1])
    assert single.ratio == pytest.approx(math.exp(0.1)) and single.p is None
    same = stats.paired_test([0.05, 0.05, 0.05])
    assert same.p == 0.0 and same.ci95 == pytest.approx([math.exp(0.05)] * 2)
    assert stats.paired_test([0.0, 0.0]).p == 1.0


@pytest.mark.parametrize("p_values", [
    [0.01, 0.04, 0.03, 0.5], [0.001], [0.2, 0.2, 0.01, 0.9, 0.049], [0.5, 0.0, 1.0]])
def test_holm_matches_its_definition(p_values):
    """Holm: sort, multiply the k-th smallest by (m - k), running maximum, cap at 1."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    expected, running = {}, 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p_values[i]))
        expected[i] = running
    assert stats.holm_adjust(p_values) == pytest.approx([expected[i] for i in range(m)])


def _comparison(pairs, metric="requests_per_s"):
    return runstats.ArmComparison(server="zcbench", arm="zc", baseline_arm="regular", conns=100, response_size=88,
                               baseline_indexes=[], arm_indexes=[], short_blocks=[], rate_unsustained=False,
                               metrics={metric: runstats.compare_paired(pairs, metric)})


def _pairs(rng, n, effect, sd, block_sd=0.0):
    """n blocks: a shared block factor (drift) times independent noise on each arm."""
    out = []
    for block in range(n):
        shared = math.exp(rng.gauss(0, block_sd))
        base = 100 * shared * math.exp(rng.gauss(0, sd))
        arm = 100 * shared * math.exp(effect + rng.gauss(0, sd))
        out.append((block, base, arm))
    return out


def test_significant_exactly_when_the_holm_interval_excludes_one():
    rng = random.Random(5)
    comparisons = [_comparison(_pairs(rng, 8, effect, 0.03))
                   for effect in (0.0, 0.01, 0.02, 0.03, 0.05, -0.04, 0.08, 0.0)]
    runstats.apply_holm(comparisons)
    seen = set()
    for c in comparisons:
        m = c.metrics["requests_per_s"]
        excludes_one = m.ci[0] > 1 or m.ci[1] < 1
        significant = m.verdict in (stats.BETTER, stats.WORSE)
        assert significant == excludes_one == (m.p_adjusted < stats.ALPHA)
        assert m.p_adjusted >= m.p and m.family_size == 8
        seen.add(significant)
    assert seen == {True, False}  # both kinds occurred, so the check above means something


def test_verdict_direction_follows_the_metric():
    rng = random.Random(9)
    faster = runstats.compare_paired(_pairs(rng, 10, 0.1, 0.01), "requests_per_s")
    slower_latency = runstats.compare_paired(_pairs(rng, 10, 0.1, 0.01), "latency_p99_us")
    assert faster.verdict == stats.BETTER and slower_latency.verdict == stats.WORSE
    assert runstats.compare_paired([(0, 100.0, 120.0)], "requests_per_s").verdict == stats.TOO_FEW
    assert runstats.compare_paired([], "requests_per_s").verdict == stats.NO_DATA


def test_pairing_removes_block_drift_that_hides_an_effect_from_welch():
    rng = random.Random(3)
    pairs = _pairs(rng, 10, 0.03, 0.005, block_sd=0.10)  # drift 10 %, effect 3 %, noise 0.5 %
    paired = runstats.compare_paired(pairs, "requests_per_s")
    assert paired.verdict == stats.BETTER
    assert paired.p_welch_logs > stats.ALPHA  # unpaired, the drift swamps the effect


def test_minimum_detectable_effect_has_the_power_it_claims():
    """Simulate at the MDE: the paired test must reject about POWER of the time."""
    sd, n, trials = 0.03, 10, 2000
    mde = stats.minimum_detectable_effect(sd * math.sqrt(2), n)
    rng = random.Random(11)
    hits = sum(stats.paired_test(_logs((b, a) for _, b, a in _pairs(rng, n, math.log1p(mde), sd))).p
               < stats.ALPHA for _ in range(trials))
    error = 4 * math.sqrt(stats.POWER * (1 - stats.POWER) / trials)
    assert abs(hits / trials - stats.POWER) < error


def test_minimum_detectable_effect_shrinks_with_blocks_and_stricter_levels_raise_it():
    assert stats.minimum_detectable_effect(0.03, 20) < stats.minimum_detectable_effect(0.03, 10)
    assert stats.minimum_detectable_effect(0.03, 10, 0.05 / 12) > stats.minimum_detectable_effect(0.03, 10)
    assert stats.minimum_detectable_effect(None, 10) is None
    assert stats.minimum_detectable_effect(0.03, 1) is None
    assert stats.minimum_detectable_effect(0.0, 10) == 0.0
    # MDE in standard errors depends on n and alpha only: doubling the spread doubles the log MDE
    assert math.log1p(stats.minimum_detectable_effect(0.04, 10)) == pytest.approx(
        2 * math.log1p(stats.minimum_detectable_effect(0.02, 10)))


def test_aa_false_positive_rate_is_alpha():
    """Identical arms: the paired test says "different" ALPHA of the time, within Monte Carlo error."""
    rng, trials = random.Random(21), 4000
    hits = sum(stats.paired_test(_logs((b, a) for _, b, a in _pairs(rng, 6, 0.0, 0.03, 0.05))).p
               < stats.ALPHA for _ in range(trials))
    error = 3 * math.sqrt(stats.ALPHA * (1 - stats.ALPHA) / trials)
    assert abs(hits / trials - stats.ALPHA) < error


def test_holm_keeps_the_family_wise_error_of_a_report():
    """12 true nulls per report: at least one false "different" in at most ALPHA of reports."""
    rng, reports = random.Random(8), 600
    any_false = 0
    for _ in range(reports):
        family = [_comparison(_pairs(rng, 6, 0.0, 0.03)) for _ in range(12)]
        runstats.apply_holm(family)
        any_false += any(c.metrics["requests_per_s"].verdict != stats.NO_DIFFERENCE for c in family)
    assert any_false / reports < stats.ALPHA + 3 * math.sqrt(stats.ALPHA * (1 - stats.ALPHA) / reports)


def test_power_rises_with_the_number_of_blocks():
    rng, trials = random.Random(13), 600
    def power(n):
        return sum(stats.paired_test(_logs((b, a) for _, b, a in _pairs(rng, n, 0.02, 0.02))).p
                   < stats.ALPHA for _ in range(trials)) / trials
    low, mid, high = power(3), power(6), power(12)
    assert low < mid < high
    assert high - low > 0.3


def test_old_range_rule_is_gone_more_blocks_never_hide_a_real_effect():
    """The issue's simulation: 3 % noise, a 2-sigma effect. Detection must grow with n."""
    rng, trials = random.Random(17), 400
    def detection(n):
        return sum(runstats.compare_paired(_pairs(rng, n, 0.06, 0.03), "requests_per_s").verdict
                   == stats.BETTER for _ in range(trials)) / trials
    assert detection(3) < detection(10) < detection(30)
    assert detection(30) > 0.95


def test_paired_values_pair_by_block_and_skip_missing_blocks():
    def sample(arm, rep, rps):
        return make_sample(arm, rep, requests_per_s=rps)
    base = [sample("regular", 0, 100.0), sample("regular", 1, 110.0), sample("regular", 2, 90.0)]
    arm = [sample("zc", 2, 99.0), sample("zc", 0, 105.0)]  # block 1 missing (cut short)
    assert runstats.paired_values(base, arm, "requests_per_s") == [(0, 100.0, 105.0), (2, 90.0, 99.0)]


def _paced_samples(arm: str, cpu_per_req: list[float], short: set[int]) -> list[Sample]:
    return [make_sample(arm, rep, cpu_us_per_request=cpu, offered_rate=1000, rate_sustained=rep not in short)
            for rep, cpu in enumerate(cpu_per_req)]


def test_a_block_short_of_the_offered_rate_is_left_out_of_the_pairs():
    rng = random.Random(4)
    base_cpu = [10.0 * math.exp(rng.gauss(0, 0.01)) for _ in range(10)]
    arm_cpu = [v * 1.05 for v in base_cpu]
    arm_cpu[3] = base_cpu[3] * 0.5  # the stalled block's value would wreck the pair
    base, arm = _paced_samples("regular", base_cpu, set()), _paced_samples("zc", arm_cpu, {3})
    assert [b for b, _, _ in runstats.paired_values(base, arm, "cpu_us_per_request")] == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    summary = runstats.summarize(base + arm)
    [comparison] = summary.comparisons
    assert comparison.short_blocks == [3] and not comparison.rate_unsustained
    cpu = comparison.metrics["cpu_us_per_request"]
    assert cpu.verdict == stats.WORSE and cpu.n_pairs == 9
    assert cpu.delta == pytest.approx(0.05, abs=1e-9)


def test_a_cell_short_in_too_many_blocks_is_not_compared():
    cpu = [10.0] * 10
    allowed = int(runstats.MAX_SHORT_BLOCK_SHARE * 10)
    for short, expected in ((set(range(allowed)), False), (set(range(allowed + 1)), True)):
        # the baseline's short blocks count as much as the arm's
        summary = runstats.summarize(_paced_samples("regular", cpu, short) + _paced_samples("zc", cpu, set()))
        [comparison] = summary.comparisons
        assert comparison.rate_unsustained is expected
        verdict = comparison.metrics["cpu_us_per_request"].verdict
        assert (verdict == runstats.NOT_SUSTAINED) is expected


def test_compare_unpaired_is_welch_on_logs():
    a, b = [100.0, 101.0, 99.0, 100.5], [110.0, 111.0, 109.0, 110.2]
    c = runstats.compare_unpaired(a, b, "requests_per_s")
    expected = scipy_stats.ttest_ind([math.log(v) for v in b], [math.log(v) for v in a], equal_var=False)
    assert c.p == pytest.approx(float(expected.pvalue))
    assert c.verdict == stats.BETTER and c.ci95[0] > 1
    assert runstats.compare_unpaired([100.0], [120.0], "requests_per_s").verdict == stats.TOO_FEW


def test_ratio_change_detects_a_moved_ratio_and_ignores_a_steady_one():
    rng = random.Random(6)
    before = runstats.compare_paired(_pairs(rng, 10, -0.10, 0.01), "requests_per_s")
    same = runstats.compare_paired(_pairs(rng, 10, -0.10, 0.01), "requests_per_s")
    moved = runstats.compare_paired(_pairs(rng, 10, 0.10, 0.01), "requests_per_s")
    assert stats.ratio_change(before, same).verdict == stats.NO_DIFFERENCE
    changed = stats.ratio_change(before, moved)
    assert changed.verdict == stats.BETTER
    assert changed.change == pytest.approx(moved.ratio / before.ratio - 1)


def test_counter_totals_sum_counts_and_take_the_peak_of_peaks():
    samples = [make_sample(server_counters={"responses": 10, "zc_inflight_peak": 7}),
               make_sample(server_counters={"responses": 5, "zc_inflight_peak": 9}), make_sample(server_counters=None)]
    assert runstats.counter_totals(samples) == {"responses": 15, "zc_inflight_peak": 9}


def test_describe_reports_mean_interval_and_spread():
    d = stats.describe([1.0, 2.0, 6.0])
    assert d.mean == pytest.approx(3.0) and d.median == 2.0
    assert d.ci95[0] < 3.0 < d.ci95[1]
    assert stats.describe([5.0]).ci95 is None and stats.describe([]).n == 0


def test_summarize_uses_every_sample_exactly_once_and_traces_means():
    samples = load_samples(RUNS / "study-loopback" / "samples.jsonl")
    summary = runstats.summarize(samples)
    used = sorted(i for g in summary.groups for i in g.sample_indexes)
    assert used == sorted(s.cell.index for s in samples)
    by_index = {s.cell.index: s for s in samples}
    for group in summary.groups:
        rps = [by_index[i].requests_per_s for i in group.sample_indexes]
        assert group.metrics["requests_per_s"].mean == pytest.approx(statistics.fmean(rps))
        assert all(by_index[i].cell.arm == group.arm for i in group.sample_indexes)


def test_summarize_counts_copied_share_and_loadgen_bound_cells():
    summary = runstats.summarize(load_samples(RUNS / "study-loopback" / "samples.jsonl"))
    zc = summary.group("zc", 1000, 88)
    assert zc.copied_share == pytest.approx(zc.counters["zc_copied"] / zc.counters["zc_notifs"])
    assert summary.group("regular", 1000, 88).copied_share is None  # no ZC sends
    assert summary.group("nginx", 1000, 88).counters is None
    assert summary.group("regular", 100, 88).loadgen_bound_reps == 10
    assert summary.group("regular", 1000, 88).loadgen_bound_reps == 0


def test_summarize_compares_every_non_baseline_arm_against_regular():
    summary = runstats.summarize(load_samples(RUNS / "study-loopback" / "samples.jsonl"))
    compared = {(c.arm, c.conns) for c in summary.comparisons}
    assert compared == {(arm, conns) for arm in ("zc", "nginx") for conns in (100, 1000, 4000)}
    c = summary.comparison("zc", 4000, 88)
    assert c.baseline_indexes == summary.group("regular", 4000, 88).sample_indexes
    # The fixture's truth: zc clearly slower at 4000 connections, no difference at 1000.
    assert c.metrics["requests_per_s"].verdict == stats.WORSE
    at_1000 = summary.comparison("zc", 1000, 88).metrics["requests_per_s"]
    assert at_1000.verdict == stats.NO_DIFFERENCE and at_1000.mde > 0


@pytest.mark.parametrize("responses, requests, expected", [
    (1100, 1000, 0),      # 100 connections in flight when wrk stopped: explained
    (1000, 1000, 0),
    (1300, 1000, 195),    # beyond conns * reps + errors (100 + 5)
    (990, 1000, -10),     # wrk saw responses the server did not count
    (None, 1000, None),   # no server counters (nginx)
])
def test_unexplained_responses(responses, requests, expected):
    assert runstats.unexplained_responses(responses, requests, conns=100, reps=1, errors=5) == expected


def test_welch_on_logs_matches_scipy_and_handles_no_spread():
    a, b = [100.0, 103.0, 98.0, 101.0], [106.0, 104.5, 109.0]
    expected = scipy_stats.ttest_ind([math.log(v) for v in b], [math.log(v) for v in a], equal_var=False)
    assert stats.welch_on_logs(a, b) == pytest.approx(float(expected.pvalue))
    assert stats.welch_on_logs([5.0, 5.0], [5.0, 5.0]) == 1.0
    assert stats.welch_on_logs([5.0, 5.0], [6.0, 6.0]) == 0.0
    assert stats.welch_on_logs([5.0], [6.0, 6.0]) is None
