"""Latency distributions: a known tail to check the measurement against, each cell's per-block
percentile tables merged into one distribution with a block-bootstrap interval, and latency
against offered load with the load where an arm's tail blows up.

The known tail. A server that stops answering for S ms every P ms (zcb-server's
--calibration-stall) holds the requests that arrive during a stall and answers them in order
once it ends; at utilisation rho (offered rate over what the server can answer) the backlog
drains in S * rho / (1 - rho). A request arriving t ms into the stall is answered after
S + rho * t, so it waits S - (1 - rho) * t, until that reaches 0. At a steady rate t is uniform
over the period, so P(wait > x) = (S - x) / ((1 - rho) * P) and the q-quantile of the extra
latency is

    x_q = S - (1 - q) * (1 - rho) * P      when (1 - q) * (1 - rho) * P < S, else about 0,

on top of the server's own latency. At low load: 50 ms every 500 ms gives p99 = 45 ms, 20/500
gives 15 ms, 5/100 gives 4 ms (what wrk measured here with its corrected percentiles: 45.3,
15.5, 4.6). Near saturation the tail lengthens towards S.

Merging. Each sample keeps its load generator's percentile table (p -> latency). A cell's blocks
are merged by averaging their cumulative distribution functions, each block weighted by its
requests: the pooled distribution of every request of the cell, as far as the tables describe it
(linear between their points). Its interval resamples whole blocks (a block bootstrap): a block,
not a request, is the unit that varies from one repetition to the next. Every block counts,
short ones included (latency never leaves a block out: a short block is a queue blowing up).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy

from zcbench.core.samples import Sample

#: The percentiles a distribution is shown and stored at (plot_latency's axis, summary.json).
SHOWN = (50.0, 90.0, 99.0, 99.9, 99.99)
#: The percentiles latency against load follows.
CURVE_PERCENTILES = (50.0, 99.0, 99.9)
#: An arm's tail "blows up" at the load where its p99 first exceeds this many times its p99 at
#: the lowest load of the run.
KNEE_FACTOR = 10.0
KNEE_PERCENTILE = 99.0
#: Bootstrap draws of the blocks, and the level of the intervals they give.
DRAWS = 2000
DISTRIBUTION_DRAWS = 1000  # every group of a run has one: a sweep has dozens
LEVEL = 0.95
#: Points of the (log-spaced) latency grid the distributions are evaluated on: adjacent points
#: differ by well under 1 % over six decades, and quantiles interpolate between them.
GRID_POINTS = 2400
SEED = 20260105  # the bootstrap's draws are fixed, so a report renders the same twice


def expected_quantile(q: float, stall_ms: float, period_ms: float, utilisation: float = 0.0) -> float:
    """The extra latency (ms) at quantile q (0..1) that stalls of stall_ms every period_ms add to
    a steady stream of requests, the server busy `utilisation` of the time it is not stalled."""
    if not 0 < stall_ms < period_ms:
        raise ValueError(f"a stall of {stall_ms} ms every {period_ms} ms is no schedule")
    if not 0 <= utilisation < 1:
        raise ValueError(f"utilisation {utilisation} must be in [0, 1)")
    return max(0.0, stall_ms - (1 - q) * (1 - utilisation) * period_ms)


def stall_wait_cdf(wait_ms: numpy.ndarray, stall_ms: float, period_ms: float, utilisation: float) -> numpy.ndarray:
    """P(extra wait <= w) for the stall schedule: an atom at 0 (requests that never meet a stall
    or its backlog), then linear up to 1 at the stall's length."""
    return numpy.clip(1 - (stall_ms - wait_ms) / ((1 - utilisation) * period_ms), 0.0, 1.0) * (wait_ms >= 0)


def expected_quantile_over(q: float, stall_ms: float, period_ms: float, utilisation: float,
                           plain: Sequence[Sample]) -> float | None:
    """The q-quantile (ms) of the stall's wait plus the plain server's own latency in the same
    cell (its pooled distribution, `plain`), taken as independent: P(W + B <= x) = E[F_W(x - B)].
    At p99.9 a few ms of the plain server's own tail add to a 5 ms stall; the median alone would
    leave them out. None without plain samples."""
    pool = _Pool(plain)
    if not pool:
        return None
    expected_quantile(q, stall_ms, period_ms, utilisation)  # checks the schedule
    base_ms = pool.grid / 1000
    base_cdf = pool.quantiles_cdf()
    base_mass = numpy.diff(numpy.concatenate(([0.0], base_cdf)))  # P(B in (g[i-1], g[i]])

    def cdf(x_ms: float) -> float:
        return float(base_mass @ stall_wait_cdf(x_ms - base_ms, stall_ms, period_ms, utilisation))

    low, high = 0.0, stall_ms + float(base_ms[-1])
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) < q else (low, mid)
    return high


# --- one sample's table --------------------------------------------------------------------------


def sample_table(sample: Sample) -> list[tuple[float, float]]:
    """[(percentile, latency in µs)] of one sample, ascending: the load generator's table
    (`loadgen_result.percentiles_us`), else its headline percentiles."""
    table = (sample.loadgen_result or {}).get("percentiles_us")
    if table:
        rows = [(float(p), float(v)) for p, v in table if v is not None]
    else:
        latency = sample.latency_us
        rows = [(50.0, latency.p50), (75.0, latency.p75), (90.0, latency.p90), (99.0, latency.p99),
                (99.9, latency.p99_9), (99.99, latency.p99_99)]
    rows = sorted((p, v) for p, v in rows if v is not None and v > 0 and math.isfinite(v))
    # a table's values never fall as the percentile rises (wrk's buckets can round so): keep them monotone
    monotone, highest = [], 0.0
    for p, v in rows:
        highest = max(highest, v)
        monotone.append((p, highest))
    return monotone


def sample_weight(sample: Sample) -> float:
    """A block's weight in its cell's pooled distribution: its requests (1 when unknown)."""
    return float(sample.requests) if sample.requests else 1.0


# --- merging ----------------------------------------------------------------------------------


def latency_grid(tables: Sequence[Sequence[tuple[float, float]]]) -> numpy.ndarray:
    """Log-spaced latencies from the smallest to the largest value any table names."""
    values = [v for table in tables for _, v in table]
    low, high = min(values), max(values)
    if high <= low:
        high = low * 1.0001
    return numpy.geomspace(low, high, GRID_POINTS)


def cdf_rows(tables: Sequence[Sequence[tuple[float, float]]], grid: numpy.ndarray) -> numpy.ndarray:
    """blocks x grid: each table's P(latency <= x) at each grid point (linear between the table's
    points, from 0 at 0 to its first point, its last percentile beyond its last value)."""
    rows = numpy.empty((len(tables), len(grid)))
    for i, table in enumerate(tables):
        values = [0.0] + [v for _, v in table]
        probabilities = [0.0] + [p / 100 for p, _ in table]
        rows[i] = numpy.interp(grid, values, probabilities)
    return rows


def quantiles_of(cdfs: numpy.ndarray, grid: numpy.ndarray, percentiles: Sequence[float]) -> numpy.ndarray:
    """draws x percentiles: where each row of pooled CDFs reaches each percentile (linear between
    grid points; the grid's top when a row never reaches it)."""
    cdfs = numpy.atleast_2d(cdfs)
    out = numpy.empty((cdfs.shape[0], len(percentiles)))
    for j, p in enumerate(percentiles):
        target = p / 100 - 1e-12
        reached = cdfs >= target
        index = numpy.where(reached.any(axis=1), reached.argmax(axis=1), len(grid) - 1)
        before = numpy.maximum(index - 1, 0)
        low_p, high_p = cdfs[numpy.arange(len(index)), before], cdfs[numpy.arange(len(index)), index]
        span = numpy.where(high_p > low_p, high_p - low_p, 1.0)
        fraction = numpy.clip((target - low_p) / span, 0.0, 1.0)
        fraction = numpy.where(index == before, 0.0, fraction)
        out[:, j] = grid[before] + fraction * (grid[index] - grid[before])
    return out


def merge_percentiles(tables: Sequence[tuple[float, Sequence[Sequence[float]]]],
                      percentiles: Sequence[float]) -> dict[float, float]:
    """The pooled distribution's value at each percentile, from (weight, table) pairs."""
    usable = [(weight, [(float(p), float(v)) for p, v in table]) for weight, table in tables if weight > 0 and table]
    if not usable:
        return {}
    grid = latency_grid([table for _, table in usable])
    weights = numpy.array([weight for weight, _ in usable])
    pooled = weights @ cdf_rows([table for _, table in usable], grid) / weights.sum()
    return dict(zip(percentiles, (float(v) for v in quantiles_of(pooled, grid, percentiles)[0])))


def bootstrap_weights(blocks: int, draws: int = DRAWS, seed: int = SEED) -> numpy.ndarray:
    """draws x blocks: how often each block is drawn in each resample (with replacement)."""
    rng = numpy.random.default_rng(seed)
    return rng.multinomial(blocks, [1 / blocks] * blocks, size=draws).astype(float)


def _interval(values: numpy.ndarray) -> list[float]:
    tail = (1 - LEVEL) / 2 * 100
    return [float(numpy.percentile(values, tail)), float(numpy.percentile(values, 100 - tail))]


@dataclass
class Distribution:
    """One cell's latency (µs) pooled over its blocks, with block-bootstrap intervals."""
    percentiles: dict[float, float]
    intervals: dict[float, list[float]]
    blocks: int
    requests: int

    def to_json(self) -> dict:
        return {"percentiles_us": {f"{p:g}": v for p, v in self.percentiles.items()},
                "intervals_us": {f"{p:g}": ci for p, ci in self.intervals.items()},
                "blocks": self.blocks, "requests": self.requests, "level": LEVEL,
                "method": "weighted mean of the blocks' CDFs; block bootstrap"}


class _Pool:
    """A cell's blocks ready to pool: their CDFs on one grid and their weights."""

    def __init__(self, samples: Sequence[Sample], grid: numpy.ndarray | None = None):
        usable = [(s, t) for s, t in ((s, sample_table(s)) for s in samples) if t]
        self.samples = [s for s, _ in usable]
        self.grid = latency_grid([t for _, t in usable]) if grid is None and usable else grid
        self.cdfs = cdf_rows([t for _, t in usable], self.grid) if usable else numpy.empty((0, 0))
        self.weights = numpy.array([sample_weight(s) for s in self.samples])

    def __bool__(self) -> bool:
        return bool(self.samples)

    def quantiles_cdf(self) -> numpy.ndarray:
        """The pooled CDF on the grid, every block once."""
        return self.weights @ self.cdfs / self.weights.sum()

    def quantiles(self, percentiles: Sequence[float], counts: numpy.ndarray | None = None) -> numpy.ndarray:
        """draws x percentiles, each draw weighting block i by counts[:, i] (None: every block once)."""
        counts = numpy.ones((1, len(self.samples))) if counts is None else counts
        weights = counts * self.weights
        pooled = weights @ self.cdfs / weights.sum(axis=1, keepdims=True)
        return quantiles_of(pooled, self.grid, percentiles)


def distribution(samples: Sequence[Sample], percentiles: Sequence[float] = SHOWN,
                 draws: int = DRAWS) -> Distribution | None:
    """A cell's pooled distribution and its intervals (None when no sample has a table)."""
    pool = _Pool(samples)
    if not pool:
        return None
    point = pool.quantiles(percentiles)[0]
    resampled = pool.quantiles(percentiles, bootstrap_weights(len(pool.samples), draws))
    return Distribution(percentiles={p: float(v) for p, v in zip(percentiles, point)},
                        intervals={p: _interval(resampled[:, j]) for j, p in enumerate(percentiles)},
                        blocks=len(pool.samples), requests=int(sum(s.requests or 0 for s in pool.samples)))


# --- latency against load ---------------------------------------------------------------------


@dataclass
class LoadPoint:
    """One arm's pooled latency at one load."""
    load: float
    offered_rate: int | None
    blocks: int
    percentiles_us: dict[float, float]
    intervals_us: dict[float, list[float]]


@dataclass
class Knee:
    """The load at which an arm's p99 first exceeds KNEE_FACTOR x its p99 at the lowest load
    (linear in log latency between the loads measured), with its bootstrap interval; None where
    the tail never got there (an interval's end None: beyond the highest load in more than
    (1 - LEVEL) / 2 of the draws)."""
    factor: float
    percentile: float
    reference_load: float
    threshold_us: float
    load: float | None
    interval: list[float | None]
    reached_share: float  # of the bootstrap draws that saw it within the loads measured


@dataclass
class LoadCurve:
    """One arm's latency against offered load in one cell (server, conns, size)."""
    server: str
    arm: str
    conns: int
    response_size: int
    points: list[LoadPoint] = field(default_factory=list)
    knee: Knee | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        for point in data["points"]:
            point["percentiles_us"] = {f"{p:g}": v for p, v in point["percentiles_us"].items()}
            point["intervals_us"] = {f"{p:g}": v for p, v in point["intervals_us"].items()}
        return data


def knee_load(loads: Sequence[float], tails: numpy.ndarray, factor: float = KNEE_FACTOR) -> numpy.ndarray:
    """Per row of tails (draws x loads, ascending loads), the load where the tail first exceeds
    factor x its value at the first load, linear in log latency between loads; NaN if never."""
    tails = numpy.atleast_2d(tails)
    loads_ = numpy.asarray(loads, dtype=float)
    threshold = factor * tails[:, :1]
    above = tails > threshold
    above[:, 0] = False
    found = above.any(axis=1)
    first = numpy.where(found, above.argmax(axis=1), 1)
    rows = numpy.arange(len(tails))
    before, after = tails[rows, first - 1], tails[rows, first]
    span = numpy.log(after) - numpy.log(before)
    fraction = numpy.where(span > 0, (numpy.log(threshold[:, 0]) - numpy.log(before)) / numpy.where(span > 0, span, 1),
                           1.0)
    knee = loads_[first - 1] + numpy.clip(fraction, 0, 1) * (loads_[first] - loads_[first - 1])
    return numpy.where(found, knee, numpy.nan)


def _knee(loads: list[float], pools: dict[float, _Pool], factor: float, draws: int) -> Knee | None:
    """The knee from the blocks every load has, resampled together (a block holds every load)."""
    reps = set.intersection(*({s.cell.rep for s in pools[load].samples} for load in loads))
    if not reps:
        return None
    order = sorted(reps)
    counts = bootstrap_weights(len(order), draws)
    point_tails, drawn_tails = [], []
    for load in loads:
        pool = pools[load]
        at = [next(i for i, s in enumerate(pool.samples) if s.cell.rep == rep) for rep in order]
        # a resample's counts land on this load's samples of the drawn blocks
        spread = numpy.zeros((draws, len(pool.samples)))
        spread[:, at] = counts
        single = numpy.zeros((1, len(pool.samples)))
        single[:, at] = 1
        point_tails.append(pool.quantiles([KNEE_PERCENTILE], single)[:, 0])
        drawn_tails.append(pool.quantiles([KNEE_PERCENTILE], spread)[:, 0])
    point = knee_load(loads, numpy.column_stack(point_tails), factor)[0]
    drawn = knee_load(loads, numpy.column_stack(drawn_tails), factor)
    reached = ~numpy.isnan(drawn)
    tail = (1 - LEVEL) / 2
    ordered = numpy.sort(numpy.where(reached, drawn, numpy.inf))
    low = ordered[int(math.floor(tail * (draws - 1)))]
    high = ordered[int(math.ceil((1 - tail) * (draws - 1)))]
    return Knee(factor=factor, percentile=KNEE_PERCENTILE, reference_load=loads[0],
                threshold_us=float(factor * point_tails[0][0]),
                load=None if math.isnan(point) else float(point),
                interval=[None if math.isinf(low) else float(low), None if math.isinf(high) else float(high)],
                reached_share=float(reached.mean()))


def load_curves(samples: Sequence[Sample], factor: float = KNEE_FACTOR, draws: int = DRAWS) -> list[LoadCurve]:
    """Latency against load for every arm and cell of a run with a load axis (two loads or more);
    [] otherwise."""
    by_curve: dict[tuple, dict[float, list[Sample]]] = {}
    for sample in samples:
        cell = sample.cell
        if cell.load is not None:
            key = (cell.server, cell.arm, cell.conns, cell.response_size)
            by_curve.setdefault(key, {}).setdefault(cell.load, []).append(sample)
    curves = []
    for (server, arm, conns, size), by_load in sorted(by_curve.items(), key=lambda item: (item[0][3], item[0][2])):
        loads = sorted(by_load)
        if len(loads) < 2:
            continue
        pools = {load: _Pool(by_load[load]) for load in loads}
        if not all(pools.values()):
            continue
        curve = LoadCurve(server, arm, conns, size)
        for load in loads:
            found = distribution(by_load[load], CURVE_PERCENTILES, draws)
            curve.points.append(LoadPoint(load=load, offered_rate=max((s.offered_rate or 0 for s in by_load[load]),
                                                                      default=None) or None,
                                          blocks=found.blocks, percentiles_us=found.percentiles,
                                          intervals_us=found.intervals))
        curve.knee = _knee(loads, pools, factor, draws)
        curves.append(curve)
    return curves
