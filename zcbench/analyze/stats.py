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
from dataclasses import asdict, dataclass
from typing import Callable

from scipy import optimize
from scipy import stats as scipy_stats

from zcbench.core.samples import LOADGEN_BOUND_SHARE, Errors, Sample

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
    extract: Callable[[Sample], float | None]


def _throughput(sample: Sample) -> float | None:
    """Requests per second; paced, over the paced window (Sample.achieved_rate): wrk's whole
    duration includes opening its connections, when nothing is offered yet."""
    if sample.offered_rate and sample.achieved_rate is not None:
        return sample.achieved_rate
    return sample.requests_per_s


def _gbit_per_s(sample: Sample) -> float | None:
    # Response bytes on the wire per second: the sample's own size times its request rate.
    rps, size = _throughput(sample), sample.cell.response_size
    return None if rps is None else rps * size * 8 / 1e9


def _cpu_us_per_kib(sample: Sample) -> float | None:
    cpu, size = sample.cpu_us_per_request, sample.cell.response_size
    return None if cpu is None or not size else cpu * 1024 / size


def _cpu_per_loadgen_cpu(sample: Sample) -> float | None:
    """Server CPU over wrk's CPU in the same window, at equal offered load only (a paced cell).
    There wrk does the same requests for every arm, so the ratio cancels what moves both (on a
    shared host, the machine's momentary speed: measured here, the two move together and the
    server's CPU for identical work varies ±12 % from one cell to the next) and keeps what the
    arm changes in the server. It assumes the arm leaves wrk's own cost alone; the CPU/request
    beside it shows the server's side unnormalized."""
    if not sample.offered_rate:
        return None
    server, loadgen = sample.server_cpu_s, sample.loadgen_cpu_s
    return server / loadgen if server and loadgen else None


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("requests_per_s", "throughput", "req/s", True, _throughput),
        Metric("gbit_per_s", "goodput", "Gbit/s", True, _gbit_per_s),
        Metric("latency_mean_us", "mean latency", "µs", False, lambda s: s.latency_us.mean),
        Metric("latency_p99_us", "p99 latency", "µs", False, lambda s: s.latency_us.p99),
        Metric("cpu_us_per_request", "server CPU per request", "µs", False, lambda s: s.cpu_us_per_request),
        Metric("cpu_us_per_kib", "server CPU per KiB sent", "µs", False, _cpu_us_per_kib),
        Metric("cpu_per_loadgen_cpu", "server CPU per wrk CPU", "×", False, _cpu_per_loadgen_cpu),
    )
}

#: The metrics an arm is judged on against its baseline.
COMPARED_METRICS = ("requests_per_s", "latency_mean_us", "latency_p99_us", "cpu_us_per_request")
#: ... at equal offered load, also the server's CPU against wrk's (throughput stays: it shows
#: whether an arm kept up with the rate, and the sweep's crossover reads it).
PACED_COMPARED_METRICS = COMPARED_METRICS + ("cpu_per_loadgen_cpu",)


def compared_metrics(samples: list[Sample]) -> tuple[str, ...]:
    """The metrics of a run's comparisons: a paced run's, or the plain ones."""
    return PACED_COMPARED_METRICS if any(s.offered_rate for s in samples) else COMPARED_METRICS


# --- grouping --------------------------------------------------------------------------------

GroupKey = tuple[str, str, int, int]  # (server, arm, conns, response_size)


def group_key(sample: Sample) -> GroupKey:
    cell = sample.cell
    return (cell.server, cell.arm, int(cell.conns), int(cell.response_size))


def group_samples(samples: list[Sample]) -> dict[GroupKey, list[Sample]]:
    """Samples per cell, in key order; within a group, by repetition."""
    groups: dict[GroupKey, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(group_key(sample), []).append(sample)
    return {
        key: sorted(groups[key], key=lambda s: (s.cell.rep, s.cell.index))
        for key in sorted(groups, key=_sort_key)
    }


def _sort_key(key: GroupKey):
    server, arm, conns, size = key
    arm_order = {"regular": 0, "zc": 1, "zc-fixed": 2, "nginx": 3, "regular-aa": 4, "regular-work": 5}
    return (size, conns, arm_order.get(arm, 9), arm, server)


def metric_values(samples: list[Sample], metric: str) -> list[float]:
    """The metric's value in each sample that has it (None = not measured, e.g. no cgroup CPU)."""
    extract = METRICS[metric].extract
    values = (extract(s) for s in samples)
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


# --- one group -------------------------------------------------------------------------------


@dataclass
class Description:
    """One metric over a group's repetitions (None where it has too few values)."""
    values: list[float]
    mean: float | None = None
    median: float | None = None
    stdev: float | None = None
    min: float | None = None
    max: float | None = None
    ci95: list[float] | None = None  # 95 % interval of the mean

    @property
    def n(self) -> int:
        return len(self.values)

    def to_json(self) -> dict:
        # a metric no repetition had is only its count (summary.json's shape)
        return {"n": self.n, **asdict(self)} if self.values else {"n": 0, "values": []}


def describe(values: list[float]) -> Description:
    """n, mean, median, stdev, min, max and a 95 % interval of the mean."""
    n = len(values)
    if n == 0:
        return Description([])
    mean = statistics.fmean(values)
    stdev = statistics.stdev(values) if n > 1 else None
    ci95 = None
    if stdev is not None:
        half = scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * stdev / math.sqrt(n)
        ci95 = [mean - half, mean + half]
    return Description(list(values), mean=mean, median=statistics.median(values), stdev=stdev,
                       min=min(values), max=max(values), ci95=ci95)


# --- arm against baseline, paired by block ---------------------------------------------------


def block_of(sample: Sample) -> int:
    """The repetition (block) a sample belongs to."""
    return sample.cell.rep


def paired_values(baseline_samples: list[Sample], arm_samples: list[Sample],
                  metric: str) -> list[tuple[int, float, float]]:
    """(block, baseline value, arm value) for every block in which both have the metric and
    neither fell short of an offered rate."""
    extract = METRICS[metric].extract

    def by_block(samples):
        values = {}
        for sample in samples:
            if sample.rate_sustained is False:
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


@dataclass(kw_only=True)
class PairedTest:
    """A paired t-test of per-block log ratios: the ratio (geometric mean), p (two-sided), the
    95 % interval, and what later steps need (mean and sd of the logs, standard error, df)."""
    n_pairs: int
    ratio: float | None = None
    p: float | None = None
    ci95: list[float] | None = None
    log_mean: float | None = None
    log_sd: float | None = None
    log_se: float | None = None
    df: int | None = None


def paired_test(logs: list[float]) -> PairedTest:
    """One-sample t-test of the per-block log ratios against 0 (= scipy's ttest_rel on logs)."""
    n = len(logs)
    if n == 0:
        return PairedTest(n_pairs=0)
    mean = statistics.fmean(logs)
    if n < 2:
        return PairedTest(n_pairs=n, ratio=math.exp(mean), log_mean=mean)
    sd = statistics.stdev(logs)
    se = sd / math.sqrt(n)
    test = PairedTest(n_pairs=n, ratio=math.exp(mean), log_mean=mean, log_sd=sd, log_se=se, df=n - 1)
    if se == 0:  # identical ratios in every block: exactly that ratio, or exactly none
        test.p, test.ci95 = 1.0 if mean == 0 else 0.0, [math.exp(mean)] * 2
        return test
    test.p = float(2 * scipy_stats.t.sf(abs(mean / se), n - 1))
    test.ci95 = t_interval(mean, se, n - 1, CONFIDENCE)
    return test


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


@dataclass(kw_only=True)
class PairedComparison(PairedTest):
    """One metric of an arm against its baseline, paired by block: the test, and its verdict,
    interval and MDE within the report's family of comparisons (judge_in_family)."""
    metric: str
    delta: float | None  # ratio - 1
    blocks: list[int]
    baseline_mean: float | None
    arm_mean: float | None
    p_welch_logs: float | None  # secondary view: Welch's test on the unpaired logs
    p_adjusted: float | None = None
    family_size: int = 1
    verdict: str = NO_DATA
    ci: list[float] | None = None  # interval of the ratio at ci_level, the level p was tested at
    ci_level: float | None = None
    mde: float | None = None
    mde_alpha: float = ALPHA

    def judge_in_family(self, p_adjusted: float | None, family_size: int) -> None:
        """Verdict, interval and MDE once the family's adjusted p is known."""
        higher = METRICS[self.metric].higher_is_better
        self.p_adjusted, self.family_size = p_adjusted, family_size
        self.verdict = verdict_from(self.ratio, p_adjusted, ALPHA, higher)
        self.mde_alpha = ALPHA / max(family_size, 1)
        self.mde = minimum_detectable_effect(self.log_sd, self.n_pairs, self.mde_alpha)
        self.ci, self.ci_level = None, None
        if self.p is None or self.log_se is None:
            return
        # The level at which this p was effectively tested: its interval excludes 1 exactly when
        # p_adjusted < ALPHA (p < ALPHA * p / p_adjusted <=> p_adjusted < ALPHA).
        tested_at = ALPHA * self.p / p_adjusted if p_adjusted else ALPHA / family_size
        self.ci_level = 1 - tested_at
        self.ci = ([self.ratio] * 2 if self.log_se == 0
                   else t_interval(self.log_mean, self.log_se, self.df, self.ci_level))

    def set_aside(self, verdict: str) -> None:
        """Out of the family (its cell's offered rate was not sustained): no verdict on it."""
        self.p_adjusted, self.verdict, self.ci, self.ci_level = None, verdict, None, None

    def to_json(self) -> dict:
        return asdict(self)


def compare_paired(pairs: list[tuple[int, float, float]], metric: str) -> PairedComparison:
    """One metric of an arm against its baseline, paired by block (before multiplicity)."""
    test = paired_test(log_ratios(pairs))
    base_values, arm_values = [b for _, b, _ in pairs], [a for _, _, a in pairs]
    comparison = PairedComparison(
        **vars(test), metric=metric,
        delta=None if test.ratio is None else test.ratio - 1,
        blocks=[block for block, _, _ in pairs],
        baseline_mean=_mean_or_none(base_values),
        arm_mean=_mean_or_none(arm_values),
        p_welch_logs=welch_on_logs(base_values, arm_values))
    # Until apply_holm() sees the whole family, a comparison stands alone.
    comparison.judge_in_family(p_adjusted=test.p, family_size=1)
    return comparison


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


def apply_holm(comparisons: list[ArmComparison]) -> None:
    """Adjust every metric comparison of a report as one family, in place (comparisons whose
    offered rate was not sustained are left out of it and say so)."""
    for c in comparisons:
        if c.rate_unsustained:
            for metric in c.metrics.values():
                metric.set_aside(NOT_SUSTAINED)
    tested = [m for c in comparisons if not c.rate_unsustained
              for m in c.metrics.values() if m.p is not None]
    adjusted = holm_adjust([m.p for m in tested])
    family = len(tested)
    for metric, p_adjusted in zip(tested, adjusted):
        metric.judge_in_family(p_adjusted, family)
    for c in comparisons:  # untested ones still get the family's MDE level
        for metric in c.metrics.values():
            if metric.p is None and not c.rate_unsustained:
                metric.judge_in_family(None, max(family, 1))


# --- two runs, unpaired ----------------------------------------------------------------------


@dataclass
class UnpairedComparison:
    """One metric of a cell in two runs: the ratio of geometric means (after / before)."""
    metric: str
    n_before: int
    n_after: int
    before_mean: float | None
    after_mean: float | None
    ratio: float | None = None
    delta: float | None = None  # ratio - 1
    ci95: list[float] | None = None
    p: float | None = None
    verdict: str = NO_DATA


def compare_unpaired(before: list[float], after: list[float], metric: str) -> UnpairedComparison:
    """One metric of a cell in two runs (compare.py): Welch's test on the logs and the ratio
    of geometric means with its 95 % interval (no pairing exists across runs)."""
    a, b = [math.log(v) for v in before if v > 0], [math.log(v) for v in after if v > 0]
    result = UnpairedComparison(metric, n_before=len(a), n_after=len(b),
                                before_mean=_mean_or_none(before),
                                after_mean=_mean_or_none(after))
    if not a or not b:
        return result
    diff = statistics.fmean(b) - statistics.fmean(a)
    result.ratio, result.delta = math.exp(diff), math.expm1(diff)
    if len(a) < 2 or len(b) < 2:
        result.verdict = TOO_FEW
        return result
    (_, se_a, df_a), (_, se_b, df_b) = _log_mean_se_df(a), _log_mean_se_df(b)
    result.p, result.ci95 = welch_log_difference(diff, se_a, df_a, se_b, df_b)
    result.verdict = verdict_from(result.ratio, result.p, ALPHA, METRICS[metric].higher_is_better)
    return result


# --- counters summed over a group's repetitions ----------------------------------------------


def counter_totals(samples: list[Sample]) -> dict[str, int] | None:
    """Each server counter summed over the repetitions, peaks (`*_peak`) as their maximum;
    None when no sample has counters (nginx)."""
    with_counters = [s.server_counters for s in samples if s.server_counters]
    if not with_counters:
        return None
    totals: dict[str, int] = {}
    for counters in with_counters:
        for name, value in counters.items():
            combine = max if name.endswith("_peak") else (lambda a, b: a + b)
            totals[name] = combine(totals.get(name, 0), int(value))
    return totals


def peak_counter(samples: list[Sample], name: str) -> int | None:
    values = [s.server_counters.get(name) for s in samples if s.server_counters]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def share(part: int | None, whole: int | None) -> float | None:
    """part / whole, or None when the whole is zero or unknown."""
    if part is None or not whole:
        return None
    return part / whole


# --- the summary of a run --------------------------------------------------------------------


def _is_loadgen_bound(sample: Sample) -> bool:
    if sample.loadgen_bound is not None:
        return sample.loadgen_bound
    cpu_share = sample.loadgen_cpu_share
    return cpu_share is not None and cpu_share >= LOADGEN_BOUND_SHARE


@dataclass
class GroupSummary:
    """One cell of the matrix over its repetitions: metrics, counters, flags, and the samples
    (by cell.index) it was computed from."""
    server: str
    arm: str
    conns: int
    response_size: int
    sample_indexes: list[int]
    metrics: dict[str, Description]  # every one of METRICS
    counters: dict[str, int] | None  # counter_totals (None: no server counters, nginx)
    zc_inflight_peak: int | None
    copied_share: float | None  # zc_copied / zc_notifs
    zc_send_share: float | None  # sends_zc / all sends
    loadgen_bound_reps: int
    offered_rate: int | None
    achieved_rate: float | None  # mean over the repetitions, each over its paced window
    rate_unsustained_reps: int
    loadgen_cpu_share_max: float | None
    errors: Errors
    wrk_requests: int
    server_responses: int | None
    responses_per_request: float | None
    responses_unexplained: int | None  # see unexplained_responses

    @property
    def reps(self) -> int:
        return len(self.sample_indexes)

    def mean(self, metric: str) -> float | None:
        """The mean of one metric over the repetitions (None when none had it)."""
        return self.metrics[metric].mean

    def to_json(self) -> dict:
        return asdict(self) | {"reps": self.reps, "errors": self.errors.to_json(),
                               "errors_total": self.errors.total,
                               "metrics": {name: d.to_json() for name, d in self.metrics.items()}}


def summarize_group(key: GroupKey, samples: list[Sample]) -> GroupSummary:
    """One cell over its repetitions: metrics, counters, flags, and the samples it used."""
    server, arm, conns, size = key
    totals = counter_totals(samples)
    errors = sum((s.errors for s in samples), Errors())
    wrk_requests = sum(int(s.requests or 0) for s in samples)
    responses = totals.get("responses") if totals else None
    cpu_shares = [s.loadgen_cpu_share for s in samples if s.loadgen_cpu_share is not None]
    return GroupSummary(
        server=server,
        arm=arm,
        conns=conns,
        response_size=size,
        sample_indexes=[s.cell.index for s in samples],
        metrics={name: describe(metric_values(samples, name)) for name in METRICS},
        counters=totals,
        zc_inflight_peak=peak_counter(samples, "zc_inflight_peak"),
        copied_share=share(totals.get("zc_copied"), totals.get("zc_notifs")) if totals else None,
        zc_send_share=(share(totals.get("sends_zc"), totals.get("sends_zc", 0) + totals.get("sends_regular", 0))
                       if totals else None),
        loadgen_bound_reps=sum(_is_loadgen_bound(s) for s in samples),
        offered_rate=max((s.offered_rate for s in samples if s.offered_rate), default=None),
        achieved_rate=_mean_or_none([s.achieved_rate for s in samples if s.achieved_rate is not None]),
        rate_unsustained_reps=sum(s.rate_sustained is False for s in samples),
        loadgen_cpu_share_max=max(cpu_shares) if cpu_shares else None,
        errors=errors,
        wrk_requests=wrk_requests,
        server_responses=responses,
        responses_per_request=share(responses, wrk_requests),
        responses_unexplained=unexplained_responses(responses, wrk_requests, conns, len(samples), errors.total),
    )


def _mean_or_none(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


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


def short_blocks(baseline_samples: list[Sample], arm_samples: list[Sample]) -> list[int]:
    """Blocks in which the baseline or the arm fell short of the offered rate."""
    return sorted({block_of(s) for s in baseline_samples + arm_samples if s.rate_sustained is False})


@dataclass
class ArmComparison:
    """An arm's group against its baseline group (regular, same conns and size), metric by metric."""
    server: str
    arm: str
    baseline_arm: str
    conns: int
    response_size: int
    baseline_indexes: list[int]
    arm_indexes: list[int]
    # At equal offered load, a block that did not get it is left out of the pairs; a cell with
    # too many such blocks is flagged, not compared.
    short_blocks: list[int]
    rate_unsustained: bool
    metrics: dict[str, PairedComparison]

    def to_json(self) -> dict:
        return asdict(self) | {"metrics": {name: m.to_json() for name, m in self.metrics.items()}}


def compare_groups(baseline: GroupSummary, arm: GroupSummary, baseline_samples: list[Sample],
                   arm_samples: list[Sample], metrics: tuple[str, ...] = COMPARED_METRICS) -> ArmComparison:
    """An arm's group against its baseline group, metric by metric, paired by block."""
    short = short_blocks(baseline_samples, arm_samples)
    blocks = {block_of(s) for s in baseline_samples + arm_samples}
    return ArmComparison(
        server=arm.server,
        arm=arm.arm,
        baseline_arm=baseline.arm,
        conns=arm.conns,
        response_size=arm.response_size,
        baseline_indexes=baseline.sample_indexes,
        arm_indexes=arm.sample_indexes,
        short_blocks=short,
        rate_unsustained=len(short) > MAX_SHORT_BLOCK_SHARE * len(blocks),
        metrics={metric: compare_paired(paired_values(baseline_samples, arm_samples, metric), metric)
                 for metric in metrics},
    )


@dataclass(kw_only=True)
class RunStats:
    """A run's groups and arm-against-regular comparisons (one Holm family), and the matrix
    they span."""
    samples_count: int
    arms: list[str]
    conns: list[int]
    response_sizes: list[int]
    groups: list[GroupSummary]
    comparisons: list[ArmComparison]

    def group(self, arm: str, conns: int, size: int) -> GroupSummary | None:
        return next((g for g in self.groups if (g.arm, g.conns, g.response_size) == (arm, conns, size)), None)

    def comparison(self, arm: str, conns: int, size: int) -> ArmComparison | None:
        return next((c for c in self.comparisons if (c.arm, c.conns, c.response_size) == (arm, conns, size)),
                    None)

    def to_json(self) -> dict:
        return {"samples_count": self.samples_count, "arms": self.arms, "conns": self.conns,
                "response_sizes": self.response_sizes, "groups": [g.to_json() for g in self.groups],
                "comparisons": [c.to_json() for c in self.comparisons]}


def summarize(samples: list[Sample]) -> RunStats:
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
    return RunStats(
        samples_count=len(samples),
        arms=sorted({k[1] for k in grouped}, key=lambda a: _sort_key(("", a, 0, 0))),
        conns=sorted({k[2] for k in grouped}),
        response_sizes=sorted({k[3] for k in grouped}),
        groups=groups,
        comparisons=comparisons,
    )


@dataclass
class RatioChange:
    """Did an arm/baseline ratio move between two runs: `change` = after / before - 1."""
    before: float | None
    after: float | None
    change: float | None = None
    p: float | None = None
    ci95: list[float] | None = None
    verdict: str = TOO_FEW


def ratio_change(before: PairedComparison, after: PairedComparison,
                 higher_is_better: bool = True) -> RatioChange:
    """Did an arm/baseline ratio change between two runs? (compare.py)

    `before` and `after` are paired comparisons (compare_paired). The test is Welch's on the
    difference of the two mean log ratios, each with its own standard error and n - 1 df.
    """
    result = RatioChange(before.ratio, after.ratio)
    if not before.ratio or not after.ratio:
        result.verdict = NO_DATA
        return result
    diff = math.log(after.ratio / before.ratio)
    result.change = math.expm1(diff)
    if before.log_se is None or after.log_se is None:
        return result
    result.p, result.ci95 = welch_log_difference(diff, before.log_se, before.df, after.log_se, after.df)
    result.verdict = verdict_from(math.exp(diff), result.p, ALPHA, higher_is_better)
    return result
