"""Statistics over repetitions: per-cell aggregates and arm-against-baseline verdicts.

A *group* is every repetition of one cell of the matrix (server, arm, conns, response size).
A *comparison* puts one metric of an arm's group beside the same metric of its baseline's group
(regular send, same conns and size) and says whether the difference is real:

    verdict = "noise" unless Welch's t-test gives p < ALPHA
              AND the difference of the means exceeds the run-to-run spread
              (the larger of the two groups' (max - min) / mean);
              otherwise "better" or "worse" in the metric's own sense.

Welch's test is the verdict's test because Mann-Whitney cannot reach p < 0.05 with three
repetitions per arm (its smallest two-sided p for 3 against 3 is 0.1); its p is still kept
in the summary. The ratio of means gets a 95 % interval from the delta method on the log
ratio (Welch-Satterthwaite degrees of freedom), so it matches the t-test's assumptions.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Callable

from scipy import stats as scipy_stats

from zcbench.samples import LOADGEN_BOUND_SHARE

ALPHA = 0.05
CONFIDENCE = 0.95
BASELINE_ARM = "regular"


# --- what is measured per sample -------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    unit: str
    higher_is_better: bool
    extract: Callable[[dict], float | None]


def _latency(key: str) -> Callable[[dict], float | None]:
    return lambda s: (s.get("latency_us") or {}).get(key)


def _gbit_per_s(sample: dict) -> float | None:
    # Response bytes on the wire per second: the sample's own size times its request rate.
    rps, size = sample.get("requests_per_s"), sample.get("cell", {}).get("response_size")
    return None if rps is None or size is None else rps * size * 8 / 1e9


def _cpu_us_per_kib(sample: dict) -> float | None:
    cpu, size = sample.get("cpu_us_per_request"), sample.get("cell", {}).get("response_size")
    return None if cpu is None or not size else cpu * 1024 / size


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("requests_per_s", "throughput", "req/s", True, lambda s: s.get("requests_per_s")),
        Metric("gbit_per_s", "goodput", "Gbit/s", True, _gbit_per_s),
        Metric("latency_mean_us", "mean latency", "µs", False, _latency("mean")),
        Metric("latency_p99_us", "p99 latency", "µs", False, _latency("p99")),
        Metric("cpu_us_per_request", "server CPU per request", "µs", False,
               lambda s: s.get("cpu_us_per_request")),
        Metric("cpu_us_per_kib", "server CPU per KiB sent", "µs", False, _cpu_us_per_kib),
    )
}

#: The metrics an arm is judged on against its baseline.
COMPARED_METRICS = ("requests_per_s", "latency_mean_us", "latency_p99_us", "cpu_us_per_request")


# --- grouping --------------------------------------------------------------------------------

GroupKey = tuple[str, str, int, int]  # (server, arm, conns, response_size)


def group_key(sample: dict) -> GroupKey:
    cell = sample["cell"]
    return (cell["server"], cell["arm"], int(cell["conns"]), int(cell["response_size"]))


def group_samples(samples: list[dict]) -> dict[GroupKey, list[dict]]:
    """Samples per cell, in key order; within a group, by repetition."""
    groups: dict[GroupKey, list[dict]] = {}
    for sample in samples:
        groups.setdefault(group_key(sample), []).append(sample)
    return {
        key: sorted(groups[key], key=lambda s: (s["cell"].get("rep", 0), s["cell"]["index"]))
        for key in sorted(groups, key=_sort_key)
    }


def _sort_key(key: GroupKey):
    server, arm, conns, size = key
    arm_order = {"regular": 0, "zc": 1, "zc-fixed": 2, "nginx": 3}
    return (size, conns, arm_order.get(arm, 9), arm, server)


def metric_values(samples: list[dict], metric: str) -> list[float]:
    """The metric's value in each sample that has it (None = not measured, e.g. no cgroup CPU)."""
    extract = METRICS[metric].extract
    values = (extract(s) for s in samples)
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


# --- one group -------------------------------------------------------------------------------


def describe(values: list[float]) -> dict:
    """n, mean, median, stdev, min, max, the relative range and a 95 % interval of the mean."""
    n = len(values)
    if n == 0:
        return {"n": 0, "values": []}
    mean = statistics.fmean(values)
    stdev = statistics.stdev(values) if n > 1 else None
    result = {
        "n": n,
        "values": list(values),
        "mean": mean,
        "median": statistics.median(values),
        "stdev": stdev,
        "min": min(values),
        "max": max(values),
        "rel_range": relative_range(values),
        "ci95": None,
    }
    if stdev is not None:
        half = scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * stdev / math.sqrt(n)
        result["ci95"] = [mean - half, mean + half]
    return result


def relative_range(values: list[float]) -> float | None:
    """(max - min) / mean: how far repetitions of the same cell wander apart."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    return (max(values) - min(values)) / abs(mean) if mean else None


# --- arm against baseline --------------------------------------------------------------------


def welch_p(a: list[float], b: list[float]) -> float | None:
    """Two-sided p of Welch's t-test; None with fewer than two values on a side."""
    if len(a) < 2 or len(b) < 2:
        return None
    if statistics.pvariance(a) == 0 and statistics.pvariance(b) == 0:
        # No spread at all: the means either differ exactly or not (scipy returns nan here).
        return 1.0 if statistics.fmean(a) == statistics.fmean(b) else 0.0
    return float(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)


def mannwhitney_p(a: list[float], b: list[float]) -> float | None:
    if len(a) < 2 or len(b) < 2:
        return None
    return float(scipy_stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def ratio_of_means(baseline: list[float], arm: list[float]) -> dict:
    """arm mean / baseline mean with a 95 % interval (delta method on the log of the ratio).

    Returns {"ratio", "ci95", "log_se", "df"}; the interval is None with fewer than two values
    on a side. log_se and df let compare.py test whether a ratio changed between runs.
    """
    mean_a, mean_b = statistics.fmean(baseline), statistics.fmean(arm)
    if mean_a == 0 or mean_b == 0:
        return {"ratio": None, "ci95": None, "log_se": None, "df": None}
    ratio = mean_b / mean_a
    if len(baseline) < 2 or len(arm) < 2:
        return {"ratio": ratio, "ci95": None, "log_se": None, "df": None}
    # Relative variance of each mean: var(log mean) ~ var / (n * mean^2).
    rel_a = statistics.variance(baseline) / (len(baseline) * mean_a**2)
    rel_b = statistics.variance(arm) / (len(arm) * mean_b**2)
    log_se = math.sqrt(rel_a + rel_b)
    if log_se == 0:
        return {"ratio": ratio, "ci95": [ratio, ratio], "log_se": 0.0, "df": None}
    df = (rel_a + rel_b) ** 2 / (rel_a**2 / (len(baseline) - 1) + rel_b**2 / (len(arm) - 1))
    t = scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, df)
    return {"ratio": ratio, "ci95": [ratio * math.exp(-t * log_se), ratio * math.exp(t * log_se)],
            "log_se": log_se, "df": df}


def verdict(delta: float | None, p: float | None, spread: float | None, higher_is_better: bool) -> str:
    """"better"/"worse" only when significant and beyond the spread; "noise" otherwise.

    "too few repetitions" when the test could not run (fewer than two values on a side).
    """
    if delta is None or p is None:
        return "too few repetitions"
    if p >= ALPHA or abs(delta) <= (spread or 0.0):
        return "noise"
    improved = delta > 0 if higher_is_better else delta < 0
    return "better" if improved else "worse"


def compare_values(baseline: list[float], arm: list[float], metric: str) -> dict:
    """Everything a report needs to state one metric of an arm against its baseline."""
    if not baseline or not arm:
        return {"metric": metric, "verdict": "no data", "ratio": None, "delta": None, "ci95": None,
                "p_welch": None, "p_mannwhitney": None, "spread": None,
                "baseline_mean": statistics.fmean(baseline) if baseline else None,
                "arm_mean": statistics.fmean(arm) if arm else None,
                "n_baseline": len(baseline), "n_arm": len(arm)}
    ratio = ratio_of_means(baseline, arm)
    delta = None if ratio["ratio"] is None else ratio["ratio"] - 1
    spreads = [s for s in (relative_range(baseline), relative_range(arm)) if s is not None]
    spread = max(spreads) if spreads else None
    p = welch_p(baseline, arm)
    return {
        "metric": metric,
        "ratio": ratio["ratio"],
        "ci95": ratio["ci95"],
        "log_se": ratio["log_se"],
        "df": ratio["df"],
        "delta": delta,
        "p_welch": p,
        "p_mannwhitney": mannwhitney_p(baseline, arm),
        "spread": spread,
        "verdict": verdict(delta, p, spread, METRICS[metric].higher_is_better),
        "baseline_mean": statistics.fmean(baseline),
        "arm_mean": statistics.fmean(arm),
        "n_baseline": len(baseline),
        "n_arm": len(arm),
    }


# --- counters summed over a group's repetitions ----------------------------------------------


def counter_totals(samples: list[dict]) -> dict[str, int] | None:
    """Each server counter summed over the repetitions; None when no sample has counters (nginx).

    Peaks are summed too, which overstates them: use peak_counter() for those.
    """
    with_counters = [s["server_counters"] for s in samples if s.get("server_counters")]
    if not with_counters:
        return None
    totals: dict[str, int] = {}
    for counters in with_counters:
        for name, value in counters.items():
            totals[name] = totals.get(name, 0) + int(value)
    return totals


def peak_counter(samples: list[dict], name: str) -> int | None:
    values = [s["server_counters"].get(name) for s in samples if s.get("server_counters")]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def share(part: int | None, whole: int | None) -> float | None:
    """part / whole, or None when the whole is zero or unknown."""
    if part is None or not whole:
        return None
    return part / whole


# --- the summary of a run --------------------------------------------------------------------


def _is_loadgen_bound(sample: dict) -> bool:
    if sample.get("loadgen_bound") is not None:
        return bool(sample["loadgen_bound"])
    cpu_share = sample.get("loadgen_cpu_share")
    return cpu_share is not None and cpu_share >= LOADGEN_BOUND_SHARE


def summarize_group(key: GroupKey, samples: list[dict]) -> dict:
    """One cell over its repetitions: metrics, counters, flags, and the samples it used."""
    server, arm, conns, size = key
    totals = counter_totals(samples)
    errors: dict[str, int] = {}
    for sample in samples:
        for kind, count in (sample.get("errors") or {}).items():
            errors[kind] = errors.get(kind, 0) + int(count or 0)
    wrk_requests = sum(int(s.get("requests") or 0) for s in samples)
    responses = totals.get("responses") if totals else None
    cpu_shares = [s["loadgen_cpu_share"] for s in samples if s.get("loadgen_cpu_share") is not None]
    return {
        "server": server,
        "arm": arm,
        "conns": conns,
        "response_size": size,
        "sample_indexes": [s["cell"]["index"] for s in samples],
        "reps": len(samples),
        "metrics": {name: describe(metric_values(samples, name)) for name in METRICS},
        "counters": totals,
        "zc_inflight_peak": peak_counter(samples, "zc_inflight_peak"),
        "copied_share": share(totals.get("zc_copied"), totals.get("zc_notifs")) if totals else None,
        "zc_send_share": (share(totals.get("sends_zc"),
                                totals.get("sends_zc", 0) + totals.get("sends_regular", 0))
                          if totals else None),
        "loadgen_bound_reps": sum(_is_loadgen_bound(s) for s in samples),
        "loadgen_cpu_share_max": max(cpu_shares) if cpu_shares else None,
        "errors": errors,
        "errors_total": sum(errors.values()),
        "wrk_requests": wrk_requests,
        "server_responses": responses,
        "responses_per_request": share(responses, wrk_requests),
        "responses_unexplained": unexplained_responses(responses, wrk_requests, conns, len(samples),
                                                       sum(errors.values())),
    }


def unexplained_responses(responses: int | None, requests: int, conns: int, reps: int, errors: int) -> int | None:
    """Server responses that wrk's count cannot explain (0 = consistent; None = no server counters).

    The server counts every response sent in the measured window; wrk only those it received
    before its clock stopped. wrk does not pipeline, so at most one response per connection is
    in flight at that moment, and a request wrk gave up on (timeout, error) may still have been
    answered: 0 <= responses - requests <= conns * reps + errors. Anything else is a lost or
    double-counted response.
    """
    if responses is None:
        return None
    surplus = responses - requests
    if surplus < 0:
        return surplus
    return max(0, surplus - (conns * reps + errors))


def compare_groups(baseline: dict, arm: dict, baseline_samples: list[dict],
                   arm_samples: list[dict]) -> dict:
    """An arm's group against its baseline group, metric by metric."""
    return {
        "server": arm["server"],
        "arm": arm["arm"],
        "baseline_arm": baseline["arm"],
        "conns": arm["conns"],
        "response_size": arm["response_size"],
        "baseline_indexes": baseline["sample_indexes"],
        "arm_indexes": arm["sample_indexes"],
        "metrics": {
            metric: compare_values(metric_values(baseline_samples, metric),
                                   metric_values(arm_samples, metric), metric)
            for metric in COMPARED_METRICS
        },
    }


def summarize(samples: list[dict]) -> dict:
    """Groups and arm-against-regular comparisons of a run's samples (no manifest needed)."""
    grouped = group_samples(samples)
    groups = [summarize_group(key, members) for key, members in grouped.items()]
    by_key = {key: group for key, group in zip(grouped, groups)}
    comparisons = []
    for key, group in by_key.items():
        server, arm, conns, size = key
        base_key = ("zcbench", BASELINE_ARM, conns, size)
        if arm == BASELINE_ARM or base_key not in by_key:
            continue
        comparisons.append(compare_groups(by_key[base_key], group, grouped[base_key], grouped[key]))
    return {
        "samples_count": len(samples),
        "arms": sorted({k[1] for k in grouped}, key=lambda a: _sort_key(("", a, 0, 0))),
        "conns": sorted({k[2] for k in grouped}),
        "response_sizes": sorted({k[3] for k in grouped}),
        "groups": groups,
        "comparisons": comparisons,
    }


def group_mean(group: dict | None, metric: str) -> float | None:
    """A summarized group's mean of one metric (None when the group or the metric is missing)."""
    return (group or {}).get("metrics", {}).get(metric, {}).get("mean")


def find_group(summary: dict, arm: str, conns: int, size: int) -> dict | None:
    for group in summary["groups"]:
        if (group["arm"], group["conns"], group["response_size"]) == (arm, conns, size):
            return group
    return None


def find_comparison(summary: dict, arm: str, conns: int, size: int) -> dict | None:
    for comparison in summary["comparisons"]:
        if (comparison["arm"], comparison["conns"], comparison["response_size"]) == (arm, conns, size):
            return comparison
    return None


def ratio_change(before: dict, after: dict, higher_is_better: bool = True) -> dict:
    """Did an arm/baseline ratio change between two runs? (compare.py)

    `before` and `after` are compare_values() results. The test is on the difference of the
    log ratios, with the two standard errors combined and Welch-Satterthwaite degrees of freedom.
    """
    result = {"before": before.get("ratio"), "after": after.get("ratio"), "change": None,
              "p": None, "verdict": "too few repetitions"}
    if not before.get("ratio") or not after.get("ratio"):
        return result | {"verdict": "no data"}
    result["change"] = after["ratio"] / before["ratio"] - 1
    se_a, se_b, df_a, df_b = before.get("log_se"), after.get("log_se"), before.get("df"), after.get("df")
    if se_a is None or se_b is None:
        return result
    se = math.sqrt(se_a**2 + se_b**2)
    if se == 0:
        p = 1.0 if result["change"] == 0 else 0.0
    else:
        parts = [(s**4 / d) for s, d in ((se_a, df_a), (se_b, df_b)) if s and d]
        df = se**4 / sum(parts) if parts else 1.0
        t = abs(math.log(after["ratio"] / before["ratio"])) / se
        p = float(2 * scipy_stats.t.sf(t, df))
    return result | {"p": p, "verdict": verdict(result["change"], p, 0.0, higher_is_better)}
