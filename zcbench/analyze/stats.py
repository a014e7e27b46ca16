"""Statistics of paired blocks, with nothing of zcbench's own in them: the paired t-test on log
ratios, its interval and minimum detectable effect, Holm's adjustment, Welch's test, and the
verdict words. analyze.summary applies them to a run's samples.

A comparison puts one metric of an arm beside the same metric of its baseline, **paired by
block**:

    d_i = log(arm_i / baseline_i)             one log ratio per block both ran
    ratio = exp(mean d)                       the geometric mean of the per-block ratios
    t = mean d / (sd d / sqrt n), df = n - 1  a paired t-test on the logs (two-sided p)

Pairing removes what a block shares (the drift of a shared machine over the run) and the log
makes a ratio symmetric (x2 and x0.5 are equally far from 1). The verdict and the interval come
from the same t: a comparison is significant exactly when its interval excludes 1.

Multiplicity: Holm's step-down adjusts each p of a family (family-wise error <= ALPHA); the
verdict uses the adjusted p, and the printed interval is taken at the level that p was
effectively tested at, 1 - ALPHA * p / p_adjusted, so "significant" <=> "the interval excludes 1"
still holds.

Every comparison carries its minimum detectable effect: the smallest true change that the paired
test would find with POWER probability, from the observed spread of the log ratios and the
number of blocks, at the family's strictest level ALPHA / m (Holm's first step).
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import asdict, dataclass

from scipy import optimize
from scipy import stats as scipy_stats

ALPHA = 0.05
POWER = 0.80
CONFIDENCE = 1 - ALPHA

# Verdict words (summary.json and the report use these).
BETTER, WORSE, NO_DIFFERENCE = "better", "worse", "no difference"
TOO_FEW, NO_DATA = "too few repetitions", "no data"


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
    se, df = welch_se_df(se_a, df_a, se_b, df_b)
    if se == 0:  # no spread on either side: the means differ exactly or not at all
        return (1.0 if diff == 0 else 0.0), [math.exp(diff)] * 2
    return float(2 * scipy_stats.t.sf(abs(diff) / se, df)), t_interval(diff, se, df, CONFIDENCE)


def welch_se_df(se_a: float, df_a: float, se_b: float, df_b: float) -> tuple[float, float]:
    """The standard error of a difference of two independent means, and its Welch-Satterthwaite
    degrees of freedom."""
    se = math.sqrt(se_a**2 + se_b**2)
    if se == 0:
        return 0.0, df_a + df_b
    return se, se**4 / sum(s**4 / d for s, d in ((se_a, df_a), (se_b, df_b)) if s)


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
    higher_is_better: bool  # the metric's good direction (analyze.metrics)
    delta: float | None  # ratio - 1
    blocks: list[int]
    blocks_higher: int = 0  # blocks in which the arm's value was above the baseline's
    blocks_lower: int = 0  # ... and below it
    family: str = "primary"  # the Holm family it is judged in (analyze.metrics: primary, secondary, check)
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
        self.p_adjusted, self.family_size = p_adjusted, family_size
        self.verdict = verdict_from(self.ratio, p_adjusted, ALPHA, self.higher_is_better)
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

    @property
    def blocks_worse(self) -> int:
        """Blocks in which the arm did worse than its baseline, in the metric's own sense."""
        return self.blocks_lower if self.higher_is_better else self.blocks_higher

    @property
    def blocks_better(self) -> int:
        return self.blocks_higher if self.higher_is_better else self.blocks_lower

    def to_json(self) -> dict:
        return asdict(self)


def paired_comparison(pairs: list[tuple[int, float, float]], metric: str,
                      higher_is_better: bool) -> PairedComparison:
    """One metric of an arm against its baseline, paired by block (before multiplicity)."""
    test = paired_test(log_ratios(pairs))
    base_values, arm_values = [b for _, b, _ in pairs], [a for _, _, a in pairs]
    comparison = PairedComparison(
        **vars(test), metric=metric, higher_is_better=higher_is_better,
        delta=None if test.ratio is None else test.ratio - 1,
        blocks=[block for block, _, _ in pairs],
        blocks_higher=sum(arm > base for _, base, arm in pairs),
        blocks_lower=sum(arm < base for _, base, arm in pairs),
        baseline_mean=mean_or_none(base_values),
        arm_mean=mean_or_none(arm_values),
        p_welch_logs=welch_on_logs(base_values, arm_values))
    # Until judge_families() sees the whole family, a comparison stands alone.
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


def unpaired_comparison(before: list[float], after: list[float], metric: str,
                        higher_is_better: bool) -> UnpairedComparison:
    """One metric of a cell in two runs (compare.py): Welch's test on the logs and the ratio
    of geometric means with its 95 % interval (no pairing exists across runs)."""
    a, b = [math.log(v) for v in before if v > 0], [math.log(v) for v in after if v > 0]
    result = UnpairedComparison(metric, n_before=len(a), n_after=len(b),
                                before_mean=mean_or_none(before),
                                after_mean=mean_or_none(after))
    if not a or not b:
        return result
    diff = statistics.fmean(b) - statistics.fmean(a)
    result.ratio, result.delta = math.exp(diff), math.expm1(diff)
    if len(a) < 2 or len(b) < 2:
        result.verdict = TOO_FEW
        return result
    (_, se_a, df_a), (_, se_b, df_b) = _log_mean_se_df(a), _log_mean_se_df(b)
    result.p, result.ci95 = welch_log_difference(diff, se_a, df_a, se_b, df_b)
    result.verdict = verdict_from(result.ratio, result.p, ALPHA, higher_is_better)
    return result


def share(part: int | None, whole: int | None) -> float | None:
    """part / whole, or None when the whole is zero or unknown."""
    if part is None or not whole:
        return None
    return part / whole


def mean_or_none(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def judge_families(members: list, p_of=lambda m: m.p) -> None:
    """Holm over each family of `members` (anything with .family, a p, and judge_in_family):
    verdicts, intervals and MDEs within its own family. Untested members (no p) get their
    family's MDE level."""
    families: dict[str, list] = {}
    for member in members:
        families.setdefault(member.family, []).append(member)
    for family in families.values():
        tested = [m for m in family if p_of(m) is not None]
        for member, p_adjusted in zip(tested, holm_adjust([p_of(m) for m in tested])):
            member.judge_in_family(p_adjusted, len(tested))
        for member in family:
            if p_of(member) is None:
                member.judge_in_family(None, max(len(tested), 1))


# --- counts: blocks that fell short, repeated runs -------------------------------------------


def exact_mcnemar(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p: of the blocks where exactly one of two arms had an event, is the
    split between them more lopsided than a fair coin would make it?"""
    n = only_a + only_b
    if n == 0:
        return 1.0
    return min(1.0, float(2 * scipy_stats.binom.cdf(min(only_a, only_b), n, 0.5)))


def clopper_pearson(successes: int, trials: int, level: float = CONFIDENCE) -> list[float] | None:
    """The exact (Clopper-Pearson) interval of a binomial proportion; None without trials."""
    if trials == 0:
        return None
    tail = (1 - level) / 2
    low = 0.0 if successes == 0 else float(scipy_stats.beta.ppf(tail, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(scipy_stats.beta.ppf(1 - tail, successes + 1, trials - successes))
    return [low, high]


def uniformity_p(p_values: list[float]) -> float | None:
    """Kolmogorov-Smirnov test of p-values against the uniform distribution they have when there
    is nothing to find (an A/A's); None with fewer than two."""
    if len(p_values) < 2:
        return None
    return float(scipy_stats.kstest(p_values, "uniform").pvalue)


# --- equivalence ------------------------------------------------------------------------------

AGREE, DIFFER, INCONCLUSIVE = "agree", "differ", "inconclusive"


@dataclass
class Equivalence:
    """Two one-sided tests (TOST) of a log ratio against symmetric margins: equivalent when the
    (1 - 2 alpha) interval lies within [1 - margin, 1 + margin] (on the ratio scale, the lower
    bound taken as 1 / (1 + margin) so the margin is symmetric on the log scale)."""
    ratio: float
    margin: float
    p: float  # max of the two one-sided p's
    ci: list[float]  # the (1 - 2 alpha) interval the decision reads
    equivalent: bool


def tost(log_diff: float, se: float, df: float, margin: float, alpha: float = ALPHA) -> Equivalence:
    """TOST of exp(log_diff) within +-margin, with standard error `se` and `df` degrees of freedom."""
    bound = math.log1p(margin)
    if se == 0:
        inside = abs(log_diff) < bound
        return Equivalence(math.exp(log_diff), margin, 0.0 if inside else 1.0, [math.exp(log_diff)] * 2, inside)
    p_low = float(scipy_stats.t.sf((log_diff + bound) / se, df))  # H0: diff <= -bound
    p_high = float(scipy_stats.t.cdf((log_diff - bound) / se, df))  # H0: diff >= +bound
    p = max(p_low, p_high)
    return Equivalence(math.exp(log_diff), margin, p, t_interval(log_diff, se, df, 1 - 2 * alpha), p < alpha)


@dataclass
class RatioChange:
    """Did an arm/baseline ratio move between two runs: `change` = after / before - 1; and is it
    the same within a margin (`equivalence`, TOST)?"""
    before: float | None
    after: float | None
    change: float | None = None
    p: float | None = None
    ci95: list[float] | None = None
    verdict: str = TOO_FEW
    equivalence: Equivalence | None = None


def ratio_change(before: PairedComparison, after: PairedComparison,
                 higher_is_better: bool = True, margin: float | None = None) -> RatioChange:
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
    if margin is not None:
        se, df = welch_se_df(before.log_se, before.df, after.log_se, after.df)
        result.equivalence = tost(diff, se, df, margin)
    return result
