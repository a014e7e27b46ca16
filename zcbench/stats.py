"""Statistics over repetitions: per-cell aggregates and arm-against-baseline verdicts.

A *group* is every repetition of one cell of the matrix (server, arm, conns, response size).
A repetition is a *block*: the planner runs every arm of a comparison inside it, in a
shuffled order. A *comparison* puts one metric of an arm beside the same metric of its
baseline (regular send, same conns and size), **paired by block**:

    d_i = log(arm_i / baseline_i)             one log ratio per block both ran
    ratio = exp(mean d)                       the geometric mean of the per-block ratios
    t = mean d / (sd d / sqrt n), df = n - 1  a paired t-test on the logs (two-sided p)

Pairing removes what a block shares (the drift of a shared machine over the run) and the log
makes a ratio symmetric (x2 and x0.5 are equally far from 1). The verdict and the interval come
from the same t: a comparison is significant exactly when its interval excludes 1.

Multiplicity: every comparison of one report (arms x conns x sizes x COMPARED_METRICS, or
PACED_COMPARED_METRICS at equal offered load) is one
family. Holm's step-down adjusts each p (family-wise error <= ALPHA); the verdict uses the
adjusted p, and the printed interval is taken at the level that p was effectively tested at,
1 - ALPHA * p / p_adjusted, so "significant" <=> "the interval excludes 1" still holds.

Every comparison carries its minimum detectable effect: the smallest true change that this
run's paired test would find with POWER probability, from the observed spread of the log
ratios and the number of blocks, at the family's strictest level ALPHA / m (Holm's first step).

Welch's test on the unpaired logs is kept in summary.json as a secondary view.
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass
from typing import Callable

from scipy import optimize
from scipy import stats as scipy_stats

from zcbench.samples import LOADGEN_BOUND_SHARE

ALPHA = 0.05
POWER = 0.80
CONFIDENCE = 1 - ALPHA
BASELINE_ARM = "regular"

# Verdict words (summary.json and the report use these).
BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no difference"
TOO_FEW, NO_DATA = "too few repetitions", "no data"
NOT_SUSTAINED = "rate not sustained"  # --rate: a cell that did not get the offered load
#: --rate: a block in which either arm fell short of the offered rate is no equal-load pair and is
#: left out of the cell's comparison; more short blocks than this share mean the rate is beyond
#: what the host sustains, and the cell is not compared at all.
MAX_SHORT_BLOCK_SHARE = 0.2


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


def _cpu_per_loadgen_cpu(sample: dict) -> float | None:
    """Server CPU over wrk's CPU in the same window, at equal offered load only (a paced cell).
    There wrk does the same requests for every arm, so the ratio cancels what moves both (on a
    shared host, the machine's momentary speed: measured here, the two move together and the
    server's CPU for identical work varies ±12 % from one cell to the next) and keeps what the
    arm changes in the server. It assumes the arm leaves wrk's own cost alone; the CPU/request
    beside it shows the server's side unnormalized."""
    if not sample.get("offered_rate"):
        return None
    server, loadgen = sample.get("server_cpu_s"), sample.get("loadgen_cpu_s")
    return server / loadgen if server and loadgen else None


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
        Metric("cpu_per_loadgen_cpu", "server CPU per wrk CPU", "×", False, _cpu_per_loadgen_cpu),
    )
}

#: The metrics an arm is judged on against its baseline.
COMPARED_METRICS = ("requests_per_s", "latency_mean_us", "latency_p99_us", "cpu_us_per_request")
#: ... at equal offered load, also the server's CPU against wrk's (throughput stays: it shows
#: whether an arm kept up with the rate, and the sweep's crossover reads it).
PACED_COMPARED_METRICS = COMPARED_METRICS + ("cpu_per_loadgen_cpu",)


def compared_metrics(samples: list[dict]) -> tuple[str, ...]:
    """The metrics of a run's comparisons: a paced run's, or the plain ones."""
    return PACED_COMPARED_METRICS if any(s.get("offered_rate") for s in samples) else COMPARED_METRICS


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
    arm_order = {"regular": 0, "zc": 1, "zc-fixed": 2, "nginx": 3, "regular-aa": 4, "regular-work": 5}
    return (size, conns, arm_order.get(arm, 9), arm, server)


def metric_values(samples: list[dict], metric: str) -> list[float]:
    """The metric's value in each sample that has it (None = not measured, e.g. no cgroup CPU)."""
    extract = METRICS[metric].extract
    values = (extract(s) for s in samples)
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


# --- one group -------------------------------------------------------------------------------


def describe(values: list[float]) -> dict:
    """n, mean, median, stdev, min, max and a 95 % interval of the mean."""
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
        "ci95": None,
    }
    if stdev is not None:
        half = scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * stdev / math.sqrt(n)
        result["ci95"] = [mean - half, mean + half]
    return result


# --- arm against baseline, paired by block ---------------------------------------------------


def block_of(sample: dict) -> int:
    """The repetition (block) a sample belongs to."""
    return int(sample["cell"].get("rep", 0))


def paired_values(baseline_samples: list[dict], arm_samples: list[dict],
                  metric: str) -> list[tuple[int, float, float]]:
    """(block, baseline value, arm value) for every block in which both have the metric and
    neither fell short of an offered rate."""
    extract = METRICS[metric].extract

    def by_block(samples):
        values = {}
        for sample in samples:
            if sample.get("rate_sustained") is False:
                continue
            value = extract(sample)
            if value is not None and math.isfinite(float(value)) and float(value) > 0:
                values[block_of(sample)] = float(value)
        return values

    base, arm = by_block(baseline_samples), by_block(arm_samples)
    return [(block, base[block], arm[block]) for block in sorted(base) if block in arm]


def log_ratios(pairs: list[tuple[int, float, float]]) -> list[float]:
    return [math.log(arm / base) for _, base, arm in pairs]


def t_interval(mean: float, se: float, df: int, level: float) -> list[float]:
    """exp of a t interval on the log scale: an interval of the ratio."""
    half = scipy_stats.t.ppf(0.5 + level / 2, df) * se
    return [math.exp(mean - half), math.exp(mean + half)]


def paired_test(logs: list[float]) -> dict:
    """One-sample t-test of the per-block log ratios against 0 (= scipy's ttest_rel on logs).

    Returns ratio (geometric mean), p (two-sided), the 95 % interval, and what later steps
    need: the mean and sd of the logs, its standard error and degrees of freedom.
    """
    n = len(logs)
    result = {"n_pairs": n, "ratio": None, "p": None, "ci95": None, "log_mean": None,
              "log_sd": None, "log_se": None, "df": None}
    if n == 0:
        return result
    mean = statistics.fmean(logs)
    result |= {"ratio": math.exp(mean), "log_mean": mean}
    if n < 2:
        return result
    sd = statistics.stdev(logs)
    se = sd / math.sqrt(n)
    result |= {"log_sd": sd, "log_se": se, "df": n - 1}
    if se == 0:  # identical ratios in every block: exactly that ratio, or exactly none
        result |= {"p": 1.0 if mean == 0 else 0.0, "ci95": [math.exp(mean)] * 2}
        return result
    t = mean / se
    result |= {"p": float(2 * scipy_stats.t.sf(abs(t), n - 1)),
               "ci95": t_interval(mean, se, n - 1, CONFIDENCE)}
    return result


def power_of_paired_test(noncentrality: float, n: int, alpha: float) -> float:
    """Probability that a two-sided paired t-test at `alpha` over n blocks rejects when the true
    mean log ratio is `noncentrality` standard errors from 0 (noncentral t)."""
    df = n - 1
    crit = scipy_stats.t.ppf(1 - alpha / 2, df)
    power = float(scipy_stats.nct.sf(crit, df, noncentrality) + scipy_stats.nct.cdf(-crit, df, noncentrality))
    if not math.isfinite(power):  # scipy's nct gives NaN far in the tail: the normal limit there
        power = float(scipy_stats.norm.sf(crit - noncentrality) + scipy_stats.norm.cdf(-crit - noncentrality))
    return power


@functools.lru_cache(maxsize=256)
def detectable_noncentrality(n: int, alpha: float, power: float = POWER) -> float:
    """How many standard errors a true effect must be for the test to reach `power`; it depends
    only on n and alpha, so one root-finding serves every comparison of a report."""
    def shortfall(nc):
        return power_of_paired_test(nc, n, alpha) - power
    high = 1.0
    while shortfall(high) < 0:  # grow the bracket until the power is reached
        high *= 2
    return optimize.brentq(shortfall, 0.0, high, xtol=1e-9)


def minimum_detectable_effect(sd: float | None, n: int, alpha: float = ALPHA,
                              power: float = POWER) -> float | None:
    """The smallest relative change (exp(effect) - 1) the paired test finds with `power`
    probability, given the sd of the per-block log ratios; None with fewer than two blocks."""
    if sd is None or n < 2:
        return None
    effect = detectable_noncentrality(n, alpha, power) * sd / math.sqrt(n)
    return math.inf if effect > 700 else math.expm1(effect)


def welch_log_difference(diff: float, se_a: float, df_a: float, se_b: float,
                         df_b: float) -> tuple[float, list[float]]:
    """Welch's test of a difference of two independent log means (standard errors se_a, se_b
    with df_a, df_b degrees of freedom): its two-sided p and the 95 % interval of exp(diff)."""
    se = math.sqrt(se_a**2 + se_b**2)
    if se == 0:  # no spread on either side: the means differ exactly or not at all
        return (1.0 if diff == 0 else 0.0), [math.exp(diff)] * 2
    df = se**4 / sum(s**4 / d for s, d in ((se_a, df_a), (se_b, df_b)) if s)  # Welch-Satterthwaite
    return float(2 * scipy_stats.t.sf(abs(diff) / se, df)), t_interval(diff, se, df, CONFIDENCE)


def _log_mean_se_df(values: list[float]) -> tuple[float, float, int]:
    return statistics.fmean(values), math.sqrt(statistics.variance(values) / len(values)), len(values) - 1


def welch_on_logs(baseline: list[float], arm: list[float]) -> float | None:
    """Two-sided p of Welch's t-test on the logs of two unpaired groups (secondary view)."""
    a, b = [math.log(v) for v in baseline if v > 0], [math.log(v) for v in arm if v > 0]
    if len(a) < 2 or len(b) < 2:
        return None
    (mean_a, se_a, df_a), (mean_b, se_b, df_b) = _log_mean_se_df(a), _log_mean_se_df(b)
    return welch_log_difference(mean_b - mean_a, se_a, df_a, se_b, df_b)[0]


def verdict_from(ratio: float | None, p: float | None, alpha: float, higher_is_better: bool) -> str:
    """BETTER / WORSE when p < alpha (in the metric's own sense), else NO_DIFFERENCE."""
    if ratio is None:
        return NO_DATA
    if p is None:
        return TOO_FEW
    if p >= alpha:
        return NO_DIFFERENCE
    return BETTER if (ratio > 1) == higher_is_better else WORSE


def compare_paired(pairs: list[tuple[int, float, float]], metric: str) -> dict:
    """One metric of an arm against its baseline, paired by block (before multiplicity)."""
    test = paired_test(log_ratios(pairs))
    base_values, arm_values = [b for _, b, _ in pairs], [a for _, _, a in pairs]
    result = {
        "metric": metric,
        **test,
        "delta": None if test["ratio"] is None else test["ratio"] - 1,
        "blocks": [block for block, _, _ in pairs],
        "baseline_mean": statistics.fmean(base_values) if base_values else None,
        "arm_mean": statistics.fmean(arm_values) if arm_values else None,
        "p_welch_logs": welch_on_logs(base_values, arm_values),
    }
    # Until apply_holm() sees the whole family, a comparison stands alone.
    return result | family_result(result, p_adjusted=test["p"], family_size=1)


def family_result(comparison: dict, p_adjusted: float | None, family_size: int) -> dict:
    """Verdict, interval and MDE of a comparison once its family's adjusted p is known."""
    p = comparison["p"]
    higher = METRICS[comparison["metric"]].higher_is_better
    out = {"p_adjusted": p_adjusted, "family_size": family_size,
           "verdict": verdict_from(comparison["ratio"], p_adjusted, ALPHA, higher),
           "ci": None, "ci_level": None,
           "mde": minimum_detectable_effect(comparison["log_sd"], comparison["n_pairs"],
                                            ALPHA / max(family_size, 1)),
           "mde_alpha": ALPHA / max(family_size, 1)}
    if p is None or comparison["log_se"] is None:
        return out
    # The level at which this p was effectively tested: its interval excludes 1 exactly when
    # p_adjusted < ALPHA (p < ALPHA * p / p_adjusted <=> p_adjusted < ALPHA).
    tested_at = ALPHA * p / p_adjusted if p_adjusted else ALPHA / family_size
    level = 1 - tested_at
    if comparison["log_se"] == 0:
        out |= {"ci": [comparison["ratio"]] * 2, "ci_level": level}
    else:
        out |= {"ci": t_interval(comparison["log_mean"], comparison["log_se"], comparison["df"], level),
                "ci_level": level}
    return out


def holm_adjust(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order (monotone, capped at 1)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def apply_holm(comparisons: list[dict]) -> None:
    """Adjust every metric comparison of a report as one family, in place (comparisons whose
    offered rate was not sustained are left out of it and say so)."""
    for c in comparisons:
        if c.get("rate_unsustained"):
            for metric in c["metrics"].values():
                metric.update(p_adjusted=None, verdict=NOT_SUSTAINED, ci=None, ci_level=None)
    tested = [m for c in comparisons if not c.get("rate_unsustained")
              for m in c["metrics"].values() if m.get("p") is not None]
    adjusted = holm_adjust([m["p"] for m in tested])
    family = len(tested)
    for metric, p_adjusted in zip(tested, adjusted):
        metric.update(family_result(metric, p_adjusted, family))
    for c in comparisons:  # untested ones still get the family's MDE level
        for metric in c["metrics"].values():
            if metric.get("p") is None and not c.get("rate_unsustained"):
                metric.update(family_result(metric, None, max(family, 1)))


# --- two runs, unpaired ----------------------------------------------------------------------


def compare_unpaired(before: list[float], after: list[float], metric: str) -> dict:
    """One metric of a cell in two runs (compare.py): Welch's test on the logs and the ratio
    of geometric means with its 95 % interval (no pairing exists across runs)."""
    a, b = [math.log(v) for v in before if v > 0], [math.log(v) for v in after if v > 0]
    result = {"metric": metric, "ratio": None, "delta": None, "ci95": None, "p": None,
              "n_before": len(a), "n_after": len(b), "verdict": NO_DATA,
              "before_mean": statistics.fmean(before) if before else None,
              "after_mean": statistics.fmean(after) if after else None}
    if not a or not b:
        return result
    diff = statistics.fmean(b) - statistics.fmean(a)
    result |= {"ratio": math.exp(diff), "delta": math.expm1(diff)}
    if len(a) < 2 or len(b) < 2:
        return result | {"verdict": TOO_FEW}
    (_, se_a, df_a), (_, se_b, df_b) = _log_mean_se_df(a), _log_mean_se_df(b)
    p, ci = welch_log_difference(diff, se_a, df_a, se_b, df_b)
    higher = METRICS[metric].higher_is_better
    return result | {"p": p, "ci95": ci, "verdict": verdict_from(result["ratio"], p, ALPHA, higher)}


# --- counters summed over a group's repetitions ----------------------------------------------


def counter_totals(samples: list[dict]) -> dict[str, int] | None:
    """Each server counter summed over the repetitions, peaks (`*_peak`) as their maximum;
    None when no sample has counters (nginx)."""
    with_counters = [s["server_counters"] for s in samples if s.get("server_counters")]
    if not with_counters:
        return None
    totals: dict[str, int] = {}
    for counters in with_counters:
        for name, value in counters.items():
            combine = max if name.endswith("_peak") else (lambda a, b: a + b)
            totals[name] = combine(totals.get(name, 0), int(value))
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
        "offered_rate": max((s["offered_rate"] for s in samples if s.get("offered_rate")), default=None),
        "rate_unsustained_reps": sum(s.get("rate_sustained") is False for s in samples),
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


def short_blocks(baseline_samples: list[dict], arm_samples: list[dict]) -> list[int]:
    """Blocks in which the baseline or the arm fell short of the offered rate."""
    return sorted({block_of(s) for s in baseline_samples + arm_samples if s.get("rate_sustained") is False})


def compare_groups(baseline: dict, arm: dict, baseline_samples: list[dict],
                   arm_samples: list[dict], metrics: tuple[str, ...] = COMPARED_METRICS) -> dict:
    """An arm's group against its baseline group, metric by metric, paired by block."""
    short = short_blocks(baseline_samples, arm_samples)
    blocks = {block_of(s) for s in baseline_samples + arm_samples}
    return {
        "server": arm["server"],
        "arm": arm["arm"],
        "baseline_arm": baseline["arm"],
        "conns": arm["conns"],
        "response_size": arm["response_size"],
        "baseline_indexes": baseline["sample_indexes"],
        "arm_indexes": arm["sample_indexes"],
        # At equal offered load, a block that did not get it is left out; a cell with too many
        # such blocks is flagged, not compared.
        "short_blocks": short,
        "rate_unsustained": len(short) > MAX_SHORT_BLOCK_SHARE * len(blocks),
        "metrics": {
            metric: compare_paired(paired_values(baseline_samples, arm_samples, metric), metric)
            for metric in metrics
        },
    }


def summarize(samples: list[dict]) -> dict:
    """Groups and arm-against-regular comparisons of a run's samples (no manifest needed)."""
    grouped = group_samples(samples)
    groups = [summarize_group(key, members) for key, members in grouped.items()]
    by_key = {key: group for key, group in zip(grouped, groups)}
    comparisons = []
    metrics = compared_metrics(samples)  # one set for the whole run: one Holm family
    for key, group in by_key.items():
        server, arm, conns, size = key
        base_key = ("zcbench", BASELINE_ARM, conns, size)
        if arm == BASELINE_ARM or base_key not in by_key:
            continue
        comparisons.append(compare_groups(by_key[base_key], group, grouped[base_key], grouped[key], metrics))
    apply_holm(comparisons)
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

    `before` and `after` are paired comparisons (compare_paired). The test is Welch's on the
    difference of the two mean log ratios, each with its own standard error and n - 1 df.
    """
    result = {"before": before.get("ratio"), "after": after.get("ratio"), "change": None,
              "p": None, "ci95": None, "verdict": TOO_FEW}
    if not before.get("ratio") or not after.get("ratio"):
        return result | {"verdict": NO_DATA}
    diff = math.log(after["ratio"] / before["ratio"])
    result["change"] = math.expm1(diff)
    se_a, se_b, df_a, df_b = before.get("log_se"), after.get("log_se"), before.get("df"), after.get("df")
    if se_a is None or se_b is None:
        return result
    p, ci = welch_log_difference(diff, se_a, df_a, se_b, df_b)
    return result | {"p": p, "ci95": ci, "verdict": verdict_from(math.exp(diff), p, ALPHA, higher_is_better)}
