"""Are a run's blocks independent? The paired test (analyze.stats) treats each block's log
ratio as an independent draw. A bench whose servers live for the whole run (measure.servers)
can carry state from block to block, and a drifting machine can move the ratio over the run;
either would make the intervals too narrow. This checks it on the primary metric, server CPU
per request, for every arm-against-baseline cell:

- autocorrelation: the Ljung-Box portmanteau test over lags 1..h (h = n // 5, at most 10) of the
  per-block log ratios in the order the blocks ran. It assumes the series is stationary and,
  under "independent", that Q follows chi-square with h degrees of freedom (an approximation
  at 30 blocks: it is somewhat conservative there);
- trend: Kendall's tau between a block's position and its log ratio (Mann-Kendall). It assumes
  nothing about the distribution: under "no trend" every order of the values is equally likely.

Every p-value of a run (2 per cell) is one Holm family: with 3 cells, six unadjusted tests would
cry wolf in one run of four. A cell fails the check when either of its adjusted p-values is
below ALPHA; a run passes when no cell fails.

    check_blocks(samples) -> IndependenceCheck
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from scipy import stats as scipy_stats

from zcbench.analyze import runstats
from zcbench.analyze.metrics import PRIMARY_METRIC
from zcbench.analyze.stats import ALPHA, holm_adjust, log_ratios
from zcbench.core import arms
from zcbench.core.samples import Sample

METRIC = PRIMARY_METRIC
MIN_BLOCKS = 8  # fewer: nothing said (a few lags of a handful of points test nothing)
MAX_LAGS = 10

INDEPENDENT, DEPENDENT, TOO_FEW = "independent", "not independent", "too few blocks"

ASSUMES = ("Ljung-Box on the per-block log ratios of server CPU per request in run order, lags 1..h "
           "(h = n // 5, at most 10): a stationary series, Q ~ chi-square(h) when the blocks are "
           "independent; Kendall's tau of log ratio against block position for a trend: every order "
           "equally likely when there is none. Holm over every p of the run.")


def autocorrelation(series: list[float], lag: int) -> float:
    """The sample autocorrelation at `lag` (deviations from the series' mean, over its variance)."""
    n = len(series)
    mean = math.fsum(series) / n
    deviations = [x - mean for x in series]
    variance = math.fsum(d * d for d in deviations)
    if variance == 0:
        return 0.0
    return math.fsum(deviations[i] * deviations[i + lag] for i in range(n - lag)) / variance


def lags_for(n: int) -> int:
    return max(1, min(MAX_LAGS, n // 5))


def ljung_box(series: list[float], lags: int) -> tuple[float, float]:
    """(Q, p): Q = n (n + 2) sum_k r_k^2 / (n - k) over k = 1..lags, p from chi-square(lags)."""
    n = len(series)
    q = n * (n + 2) * math.fsum(autocorrelation(series, k) ** 2 / (n - k) for k in range(1, lags + 1))
    return q, float(scipy_stats.chi2.sf(q, lags))


def trend(series: list[float]) -> tuple[float, float]:
    """(Kendall's tau of the values against their positions, its two-sided p)."""
    result = scipy_stats.kendalltau(range(len(series)), series)
    tau, p = float(result.statistic), float(result.pvalue)
    return (0.0, 1.0) if math.isnan(tau) else (tau, p)  # a constant series has no order


@dataclass
class SeriesCheck:
    """One cell's per-block log ratios (arm / baseline) checked for autocorrelation and trend."""
    arm: str
    conns: int
    response_size: int
    blocks: list[int]
    log_ratios: list[float]
    lags: int | None = None
    q: float | None = None
    p_autocorrelation: float | None = None
    p_autocorrelation_holm: float | None = None
    tau: float | None = None
    p_trend: float | None = None
    p_trend_holm: float | None = None
    verdict: str = TOO_FEW
    load: float | None = None  # share of saturation (None: no load axis)

    @property
    def n(self) -> int:
        return len(self.log_ratios)

    def to_json(self) -> dict:
        return asdict(self) | {"n": self.n}


def check_series(arm: str, conns: int, size: int, blocks: list[int], logs: list[float],
                 load: float | None = None) -> SeriesCheck:
    """The two tests of one cell (before the run's Holm adjustment)."""
    check = SeriesCheck(arm, conns, size, blocks, logs, load=load)
    if check.n < MIN_BLOCKS:
        return check
    check.lags = lags_for(check.n)
    check.q, check.p_autocorrelation = ljung_box(logs, check.lags)
    check.tau, check.p_trend = trend(logs)
    return check


@dataclass
class IndependenceCheck:
    """Every cell's check, the run's verdict, and what the tests assume."""
    metric: str = METRIC
    alpha: float = ALPHA
    cells: list[SeriesCheck] = field(default_factory=list)
    assumes: str = ASSUMES

    @property
    def verdict(self) -> str:
        judged = [c for c in self.cells if c.verdict != TOO_FEW]
        if not judged:
            return TOO_FEW
        return DEPENDENT if any(c.verdict == DEPENDENT for c in judged) else INDEPENDENT

    def to_json(self) -> dict:
        return {"metric": self.metric, "alpha": self.alpha, "verdict": self.verdict, "assumes": self.assumes,
                "cells": [c.to_json() for c in self.cells]}


def judge(checks: list[SeriesCheck]) -> IndependenceCheck:
    """Holm over every p of the run; a cell is not independent when either adjusted p < ALPHA."""
    tested = [c for c in checks if c.p_autocorrelation is not None]
    adjusted = holm_adjust([p for c in tested for p in (c.p_autocorrelation, c.p_trend)])
    for i, c in enumerate(tested):
        c.p_autocorrelation_holm, c.p_trend_holm = adjusted[2 * i], adjusted[2 * i + 1]
        c.verdict = DEPENDENT if min(c.p_autocorrelation_holm, c.p_trend_holm) < ALPHA else INDEPENDENT
    return IndependenceCheck(cells=checks)


def check_blocks(samples: list[Sample]) -> IndependenceCheck:
    """Each arm's cells against their baseline, in block order."""
    grouped = runstats.group_samples(samples)
    checks = []
    for key, members in grouped.items():
        baseline = arms.ARMS[key.arm].baseline if arms.known(key.arm) else runstats.BASELINE_ARM
        base_key = key._replace(server=arms.ZCBENCH, arm=baseline)
        if baseline is None or base_key not in grouped:
            continue
        pairs = runstats.paired_values(grouped[base_key], members, METRIC)
        checks.append(check_series(key.arm, key.conns, key.response_size, [block for block, _, _ in pairs],
                                   log_ratios(pairs), key.load))
    return judge(checks)
