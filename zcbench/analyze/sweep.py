"""A run with several response sizes read as a sweep: the per-size rows and, per zero-copy arm
and connection count, the crossover -- where zero-copy send starts to pay on this host.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from zcbench.analyze import metrics, stats
from zcbench.analyze.runstats import GroupSummary, RunStats
from zcbench.analyze.stats import PairedComparison
from zcbench.core import arms, fmt

NOT_MEASURABLE_COPIED = "not measurable on this path: every send was copied"
NOT_MEASURABLE_NO_ZC = "not measurable: no SEND_ZC notification was counted"
NONE_IN_RANGE = "none in range"


@dataclass
class SweepRow:
    """One (conns, size, arm) of zcbench arms in the sweep table."""
    conns: int
    response_size: int
    arm: str
    reps: int
    requests_per_s: float | None
    gbit_per_s: float | None
    ratio: float | None  # the crossover metric against regular (None for regular itself): throughput, or
                         # at equal offered load server CPU per request
    ratio_ci: list[float] | None
    mde: float | None
    verdict: str | None
    cpu_us_per_request: float | None
    cpu_us_per_kib: float | None
    latency_p99_us: float | None
    copied_share: float | None
    loadgen_bound_reps: int
    sample_indexes: list[int]


@dataclass
class Crossover:
    """Where a zc arm starts to pay at one connection count; `status` says whether it does:
    "crossover" (at `size`), "none in range" or "not measurable", and `text` says it in words."""
    arm: str
    conns: int
    sizes_tested: list[int]
    metric: str = "requests_per_s"  # what it was judged on (crossover_metric)
    status: str = ""
    text: str = ""
    size: int | None = None
    ratio: float | None = None
    ratio_ci: list[float] | None = None
    copied_share: float | None = None
    arm_indexes: list[int] | None = None  # the samples of a crossover's size
    baseline_indexes: list[int] | None = None

    def to_json(self) -> dict:
        fields = asdict(self)
        if self.status != "crossover":  # only a found crossover names its samples
            del fields["arm_indexes"], fields["baseline_indexes"]
        return fields


@dataclass
class Sweep:
    """summary.json's sweep section: the table rows and a crossover per zc arm and conns."""
    sizes: list[int]
    rows: list[SweepRow]
    crossovers: list[Crossover]

    def to_json(self) -> dict:
        return {"sizes": self.sizes, "rows": [asdict(row) for row in self.rows],
                "crossovers": [c.to_json() for c in self.crossovers]}


def sweep_load(summary: RunStats) -> float | None:
    """The load a sweep ran at (one: `invoke sweep` takes no load axis)."""
    return summary.loads[0]


def is_sweep(summary: RunStats) -> bool:
    return len(summary.response_sizes) > 1


def sweep_rows(summary: RunStats) -> list[SweepRow]:
    """One row per (conns, size, arm) of zcbench arms: the numbers of the sweep table."""
    rows = []
    for conns in summary.conns:
        for size in summary.response_sizes:
            for arm in (a for a in summary.arms if a == arms.BASELINE or arms.is_zero_copy(a)):
                group = summary.group(arm, conns, size, sweep_load(summary))
                if group is None:
                    continue
                comparison = summary.comparison(arm, conns, size, sweep_load(summary))
                throughput = comparison.metrics.get(crossover_metric(summary)) if comparison else None
                rows.append(SweepRow(
                    conns=conns,
                    response_size=size,
                    arm=arm,
                    reps=group.reps,
                    requests_per_s=group.mean("requests_per_s"),
                    gbit_per_s=group.mean("gbit_per_s"),
                    ratio=throughput.ratio if throughput else None,
                    ratio_ci=throughput.ci if throughput else None,
                    mde=throughput.mde if throughput else None,
                    verdict=throughput.verdict if throughput else None,
                    cpu_us_per_request=group.mean("cpu_us_per_request"),
                    cpu_us_per_kib=group.mean("cpu_us_per_kib"),
                    latency_p99_us=group.mean("latency_p99_us"),
                    copied_share=group.copied_share,
                    loadgen_bound_reps=group.loadgen_bound_reps,
                    sample_indexes=group.sample_indexes,
                ))
    return rows


#: A size where at least this share of the arm's SEND_ZC notifications said "copied" cannot be
#: credited with a win: whatever its numbers say, no zero-copy happened there.
COPIED_LIMIT = 0.99


def _every_size_copied(groups: list[GroupSummary]) -> bool:
    shares = [g.copied_share for g in groups if g.copied_share is not None]
    return bool(shares) and all(s >= COPIED_LIMIT for s in shares)


#: A larger size "does not lose" what a crossover won if its ratio's one-sided 95 % bound stays
#: within this margin of 1 (non-inferiority; absence of a significant "worse" is not evidence).
NONINFERIORITY_MARGIN = 0.03


def crossover_metric(summary: RunStats) -> str:
    """What a crossover is judged on: throughput when wrk went as fast as it could; at equal
    offered load throughput is fixed, so the primary metric (server CPU per request)."""
    return summary.plan.primary if summary.plan.paced else "requests_per_s"


def non_inferior(c: PairedComparison, margin: float = NONINFERIORITY_MARGIN) -> bool:
    """The arm is no worse than its baseline by more than `margin`: the one-sided (1 - alpha)
    bound of the ratio on the worse side lies within it."""
    if c.log_mean is None or c.log_se is None or c.df is None:
        return False
    low, high = stats.t_interval(c.log_mean, c.log_se, c.df, 1 - 2 * stats.ALPHA)
    return low >= 1 / (1 + margin) if c.higher_is_better else high <= 1 + margin


def _loadgen_bound(summary: RunStats, arm: str, conns: int, size: int) -> bool:
    load = sweep_load(summary)
    return any(g is not None and g.loadgen_bound_reps
               for g in (summary.group(arm, conns, size, load), summary.group(arms.BASELINE, conns, size, load)))


def crossover(summary: RunStats, arm: str, conns: int) -> Crossover:
    """Where `arm` starts to pay at `conns`, judged per size on crossover_metric (Holm-adjusted):

    the smallest size that is significantly better than regular, was really zero-copied there (its
    own copied share below COPIED_LIMIT), was not loadgen-bound (there the win would be wrk's), and
    from which every larger size is non-inferior within NONINFERIORITY_MARGIN. Otherwise why
    there is none."""
    metric = crossover_metric(summary)
    sizes = [s for s in summary.response_sizes if summary.comparison(arm, conns, s, sweep_load(summary))]
    groups = [summary.group(arm, conns, s, sweep_load(summary)) for s in sizes]
    verdicts = [summary.comparison(arm, conns, s, sweep_load(summary)).metrics[metric] for s in sizes]
    result = Crossover(arm, conns, sizes, metric=metric)
    if not any((g.counters or {}).get("zc_notifs") for g in groups):
        result.status, result.text = "not measurable", NOT_MEASURABLE_NO_ZC
        return result
    if _every_size_copied(groups):
        result.status, result.text = "not measurable", NOT_MEASURABLE_COPIED
        return result
    label = metrics.METRICS[metric].label
    for i, (size, group, judged) in enumerate(zip(sizes, groups, verdicts)):
        copied = group.copied_share
        if judged.verdict != stats.BETTER or copied is None or copied >= COPIED_LIMIT:
            continue
        if _loadgen_bound(summary, arm, conns, size):
            continue
        if not all(non_inferior(later) for later in verdicts[i + 1:]):
            continue
        comparison = summary.comparison(arm, conns, size, sweep_load(summary))
        text = (f"{fmt.size(size)} ({label} ×{fmt.ratio(judged.ratio)}, "
                f"{fmt.interval(judged.ci)} at the Holm-adjusted level; copied share "
                f"{fmt.percent(copied)}; every larger size within {fmt.percent(NONINFERIORITY_MARGIN, 0)})")
        return Crossover(arm, conns, sizes, metric=metric, status="crossover", text=text, size=size,
                         ratio=judged.ratio, ratio_ci=judged.ci, copied_share=copied,
                         arm_indexes=comparison.arm_indexes, baseline_indexes=comparison.baseline_indexes)
    span = f"{fmt.size(sizes[0])}–{fmt.size(sizes[-1])}" if sizes else "no sizes"
    result.status, result.text = NONE_IN_RANGE, f"{NONE_IN_RANGE} ({span}, judged on {label})"
    return result


def summarize_sweep(summary: RunStats) -> Sweep:
    """The sweep section of summary.json: the table rows and a crossover per zc arm and conns."""
    zero_copy = [a for a in summary.arms if arms.is_zero_copy(a)]
    return Sweep(sizes=summary.response_sizes, rows=sweep_rows(summary),
                 crossovers=[crossover(summary, arm, conns) for conns in summary.conns for arm in zero_copy])
