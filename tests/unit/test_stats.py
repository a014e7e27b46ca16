"""zcbench.stats: aggregates, Welch verdicts, ratio intervals, run summaries."""

import math
import statistics
from pathlib import Path

import pytest
from scipy import stats as scipy_stats

from zcbench import stats
from zcbench.samples import load_samples

RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"


def test_describe_gives_mean_median_and_t_interval():
    d = stats.describe([1.0, 2.0, 6.0])
    assert d["n"] == 3 and d["mean"] == 3.0 and d["median"] == 2.0
    assert d["min"] == 1.0 and d["max"] == 6.0
    half = scipy_stats.t.ppf(0.975, 2) * statistics.stdev([1, 2, 6]) / math.sqrt(3)
    assert d["ci95"] == pytest.approx([3.0 - half, 3.0 + half])
    assert d["rel_range"] == pytest.approx(5 / 3)


def test_describe_single_value_has_no_interval_and_empty_has_nothing():
    assert stats.describe([5.0])["ci95"] is None
    assert stats.describe([])["n"] == 0


def test_welch_p_is_scipys_welch_test():
    a, b = [100.0, 102.0, 98.0], [110.0, 111.0, 109.5]
    assert stats.welch_p(a, b) == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)


def test_welch_p_without_any_spread():
    assert stats.welch_p([5.0, 5.0], [5.0, 5.0]) == 1.0
    assert stats.welch_p([5.0, 5.0], [6.0, 6.0]) == 0.0
    assert stats.welch_p([5.0], [6.0, 6.0]) is None


def test_mann_whitney_cannot_reach_significance_with_three_against_three():
    # Why the verdict uses Welch's test: the most extreme 3-vs-3 split gives p = 0.1.
    assert stats.mannwhitney_p([1.0, 2.0, 3.0], [10.0, 11.0, 12.0]) == pytest.approx(0.1)


@pytest.mark.parametrize("delta, p, spread, higher, expected", [
    (0.10, 0.01, 0.02, True, "better"),
    (-0.10, 0.01, 0.02, True, "worse"),
    (0.10, 0.01, 0.02, False, "worse"),  # latency up is worse
    (-0.10, 0.01, 0.02, False, "better"),
    (0.10, 0.20, 0.02, True, "noise"),  # not significant
    (0.03, 0.01, 0.05, True, "noise"),  # significant but within the run-to-run spread
    (0.10, None, None, True, "too few repetitions"),
])
def test_verdict(delta, p, spread, higher, expected):
    assert stats.verdict(delta, p, spread, higher) == expected


def test_compare_values_clear_win_and_interval_brackets_ratio():
    c = stats.compare_values([100.0, 101.0, 99.0], [120.0, 121.0, 119.5], "requests_per_s")
    assert c["verdict"] == "better"
    assert c["ratio"] == pytest.approx(statistics.fmean([120.0, 121.0, 119.5]) / 100.0)
    low, high = c["ci95"]
    assert low < c["ratio"] < high and low > 1.0
    assert c["delta"] == pytest.approx(c["ratio"] - 1)


def test_compare_values_overlapping_arms_are_noise_and_interval_spans_one():
    c = stats.compare_values([100.0, 110.0, 90.0], [104.0, 95.0, 108.0], "requests_per_s")
    assert c["verdict"] == "noise"
    assert c["ci95"][0] < 1.0 < c["ci95"][1]


def test_compare_values_latency_increase_is_worse():
    c = stats.compare_values([900.0, 905.0, 895.0], [1200.0, 1210.0, 1190.0], "latency_mean_us")
    assert c["verdict"] == "worse"


def test_compare_values_without_repetitions_or_data():
    assert stats.compare_values([100.0], [120.0], "requests_per_s")["verdict"] == "too few repetitions"
    assert stats.compare_values([], [120.0], "requests_per_s")["verdict"] == "no data"


def test_ratio_change_detects_a_moved_ratio_and_ignores_a_steady_one():
    before = stats.compare_values([100.0, 101.0, 99.0], [90.0, 91.0, 89.0], "requests_per_s")
    same = stats.compare_values([200.0, 202.0, 198.0], [180.0, 182.0, 178.0], "requests_per_s")
    moved = stats.compare_values([100.0, 101.0, 99.0], [110.0, 111.0, 109.0], "requests_per_s")
    assert stats.ratio_change(before, same)["verdict"] == "noise"
    changed = stats.ratio_change(before, moved)
    assert changed["verdict"] == "better" and changed["change"] == pytest.approx(110 / 90 - 1)


def test_summarize_uses_every_sample_exactly_once_and_traces_means():
    samples = load_samples(RUNS / "study-loopback" / "samples.jsonl")
    summary = stats.summarize(samples)
    used = sorted(i for g in summary["groups"] for i in g["sample_indexes"])
    assert used == sorted(s["cell"]["index"] for s in samples)
    by_index = {s["cell"]["index"]: s for s in samples}
    for group in summary["groups"]:
        rps = [by_index[i]["requests_per_s"] for i in group["sample_indexes"]]
        assert group["metrics"]["requests_per_s"]["mean"] == pytest.approx(statistics.fmean(rps))
        assert all(by_index[i]["cell"]["arm"] == group["arm"] for i in group["sample_indexes"])


def test_summarize_counts_copied_share_and_loadgen_bound_cells():
    summary = stats.summarize(load_samples(RUNS / "study-loopback" / "samples.jsonl"))
    zc = stats.find_group(summary, "zc", 1000, 88)
    assert zc["copied_share"] == pytest.approx(zc["counters"]["zc_copied"] / zc["counters"]["zc_notifs"])
    assert stats.find_group(summary, "regular", 1000, 88)["copied_share"] is None  # no ZC sends
    assert stats.find_group(summary, "nginx", 1000, 88)["counters"] is None
    assert stats.find_group(summary, "regular", 100, 88)["loadgen_bound_reps"] == 3
    assert stats.find_group(summary, "regular", 1000, 88)["loadgen_bound_reps"] == 0


def test_summarize_compares_every_non_baseline_arm_against_regular():
    summary = stats.summarize(load_samples(RUNS / "study-loopback" / "samples.jsonl"))
    compared = {(c["arm"], c["conns"]) for c in summary["comparisons"]}
    assert compared == {(arm, conns) for arm in ("zc", "nginx") for conns in (100, 1000, 4000)}
    c = stats.find_comparison(summary, "zc", 4000, 88)
    assert c["baseline_indexes"] == stats.find_group(summary, "regular", 4000, 88)["sample_indexes"]
    # The fixture's truth: zc clearly slower at 4000 connections, noise at 1000.
    assert c["metrics"]["requests_per_s"]["verdict"] == "worse"
    assert stats.find_comparison(summary, "zc", 1000, 88)["metrics"]["requests_per_s"]["verdict"] == "noise"


@pytest.mark.parametrize("responses, requests, expected", [
    (1100, 1000, 0),      # 100 connections in flight when wrk stopped: explained
    (1000, 1000, 0),
    (1300, 1000, 195),    # beyond conns * reps + errors (100 + 5)
    (990, 1000, -10),     # wrk saw responses the server did not count
    (None, 1000, None),   # no server counters (nginx)
])
def test_unexplained_responses(responses, requests, expected):
    assert stats.unexplained_responses(responses, requests, conns=100, reps=1, errors=5) == expected
