"""A run's groups and arm-against-baseline comparisons, from its samples (no manifest needed).

A *group* is every repetition of one cell of the matrix (server, arm, conns, response size, load).
A repetition is a *block*: the planner runs every arm of a comparison inside it. Each arm is
compared with its baseline (core.arms) metric by metric, paired by block (analyze.stats), and
every comparison of a run is one Holm family.

    summarize(samples) -> RunStats
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

from zcbench.analyze import stats
from zcbench.analyze.metrics import METRICS, PRIMARY, UNPACED_PLAN, MetricPlan, metric_plan, metric_values
from zcbench.analyze.stats import (Description, PairedComparison, UnpairedComparison, describe,
                                   mean_or_none, paired_comparison, share, unpaired_comparison)
from zcbench.core import arms
from zcbench.core.samples import LOADGEN_BOUND_SHARE, Errors, Sample, lower_rates

BASELINE_ARM = arms.BASELINE


class GroupKey(NamedTuple):
    """Which cell of the matrix a group is: every repetition of it shares this."""
    server: str
    arm: str
    conns: int
    response_size: int
    load: float | None = None  # share of saturation (--rate 30%,70% or auto); None: no load axis

    @property
    def where(self) -> tuple[str, int, int, float | None]:
        """(arm, conns, size, load): how reports and comparisons name a cell."""
        return (self.arm, self.conns, self.response_size, self.load)


def group_key(sample: Sample) -> GroupKey:
    cell = sample.cell
    return GroupKey(cell.server, cell.arm, int(cell.conns), int(cell.response_size), cell.load)


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
    return (key.response_size, key.conns, -1 if key.load is None else key.load, arms.order(key.arm), key.arm,
            key.server)


def compare_paired(pairs: list[tuple[int, float, float]], metric: str, family: str = PRIMARY) -> PairedComparison:
    """One metric of an arm against its baseline, paired by block (before multiplicity)."""
    comparison = paired_comparison(pairs, metric, METRICS[metric].higher_is_better)
    comparison.family = family
    return comparison


def compare_unpaired(before: list[float], after: list[float], metric: str) -> UnpairedComparison:
    """One metric of a cell in two runs (analyze.compare): Welch's test on the logs."""
    return unpaired_comparison(before, after, metric, METRICS[metric].higher_is_better)


def block_of(sample: Sample) -> int:
    """The repetition (block) a sample belongs to."""
    return sample.cell.rep


def paired_values(baseline_samples: list[Sample], arm_samples: list[Sample], metric: str,
                  held_only: bool | None = None) -> list[tuple[int, float, float]]:
    """(block, baseline value, arm value) for every block in which both have the metric; for a
    metric that needs equal load (Metric.held_blocks_only, or held_only=True), only the blocks in
    which neither fell short of the offered rate."""
    extract = METRICS[metric].extract
    held_only = METRICS[metric].held_blocks_only if held_only is None else held_only

    def by_block(samples):
        values = {}
        for sample in samples:
            if held_only and sample.rate_sustained is False:
                continue
            value = extract(sample)
            if value is not None and math.isfinite(float(value)) and float(value) > 0:
                values[block_of(sample)] = float(value)
        return values

    base, arm = by_block(baseline_samples), by_block(arm_samples)
    return [(block, base[block], arm[block]) for block in sorted(base) if block in arm]


def judge(comparisons: list[ArmComparison]) -> None:
    """Every verdict of a run, each within its own Holm family (analyze.metrics: the primary
    metric across cells, the secondary metrics, the checks; and the shortfall tests)."""
    stats.judge_families([m for c in comparisons for m in c.metrics.values()])
    stats.judge_families([c.shortfall for c in comparisons if c.shortfall is not None])


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
    load: float | None = None  # GroupKey.load

    @property
    def key(self) -> GroupKey:
        return GroupKey(self.server, self.arm, self.conns, self.response_size, self.load)

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
    server, arm, conns, size, load = key
    totals = counter_totals(samples)
    errors = sum((s.errors for s in samples), Errors())
    wrk_requests = sum(int(s.requests or 0) for s in samples)
    # every response to wrk's requests (a scheduled window's own count misses those queued at its end)
    responses = (sum(s.server_responses for s in samples)
                 if samples and all(s.server_responses is not None for s in samples)
                 else totals.get("responses") if totals else None)
    cpu_shares = [s.loadgen_cpu_share for s in samples if s.loadgen_cpu_share is not None]
    return GroupSummary(
        server=server,
        arm=arm,
        conns=conns,
        response_size=size,
        load=load,
        sample_indexes=[s.cell.index for s in samples],
        metrics={name: describe(metric_values(samples, name)) for name in METRICS},
        counters=totals,
        zc_inflight_peak=peak_counter(samples, "zc_inflight_peak"),
        copied_share=share(totals.get("zc_copied"), totals.get("zc_notifs")) if totals else None,
        zc_send_share=(share(totals.get("sends_zc"), totals.get("sends_zc", 0) + totals.get("sends_regular", 0))
                       if totals else None),
        loadgen_bound_reps=sum(_is_loadgen_bound(s) for s in samples),
        offered_rate=max((s.offered_rate for s in samples if s.offered_rate), default=None),
        achieved_rate=mean_or_none([s.achieved_rate for s in samples if s.achieved_rate is not None]),
        rate_unsustained_reps=sum(s.rate_sustained is False for s in samples),
        loadgen_cpu_share_max=max(cpu_shares) if cpu_shares else None,
        errors=errors,
        wrk_requests=wrk_requests,
        server_responses=responses,
        responses_per_request=share(responses, wrk_requests),
        responses_unexplained=unexplained_responses(responses, wrk_requests, conns, len(samples), errors.total),
    )


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
class Shortfall:
    """At equal offered load, how often each arm could not hold the rate, and whether one fell
    short more often than the other: an exact McNemar test on the blocks where only one did
    (a verdict of its own, in its own Holm family; dropping those blocks would hide it)."""
    offered_rate: int | None
    blocks: int  # blocks in which both arms ran
    baseline_short: int
    arm_short: int
    only_baseline: int
    only_arm: int
    p: float
    lowest_achieved: float | None  # the lowest rate a short block reached (either arm)
    family: str = "shortfall"
    p_adjusted: float | None = None
    family_size: int = 1
    verdict: str = stats.NO_DATA

    def judge_in_family(self, p_adjusted: float | None, family_size: int) -> None:
        self.p_adjusted, self.family_size = p_adjusted, family_size
        if not (self.baseline_short or self.arm_short):
            self.verdict = HELD
        elif p_adjusted is None or p_adjusted >= stats.ALPHA:
            self.verdict = stats.NO_DIFFERENCE
        else:  # fell short more often: worse at holding the rate
            self.verdict = stats.WORSE if self.only_arm > self.only_baseline else stats.BETTER

    #: the lower rate core.samples.lower_rates gives this cell (None: it needs none)
    suggested_rate: int | None = None

    @property
    def needs_lower_rate(self) -> bool:
        return self.suggested_rate is not None

    def to_json(self) -> dict:
        return asdict(self)


HELD = "every block held its rate"


def shortfall(baseline_samples: list[Sample], arm_samples: list[Sample]) -> Shortfall | None:
    """The shortfall test of a paced cell (None unpaced)."""
    if not any(s.offered_rate for s in baseline_samples + arm_samples):
        return None
    base = {block_of(s): s for s in baseline_samples}
    arm = {block_of(s): s for s in arm_samples}
    both = sorted(set(base) & set(arm))
    base_short = {b for b in both if base[b].rate_sustained is False}
    arm_short = {b for b in both if arm[b].rate_sustained is False}
    achieved = [s.achieved_rate for b in both for s in (base[b], arm[b])
                if s.rate_sustained is False and s.achieved_rate]
    only_base, only_arm = len(base_short - arm_short), len(arm_short - base_short)
    cell = (baseline_samples + arm_samples)[0].cell
    return Shortfall(suggested_rate=lower_rates(baseline_samples + arm_samples).get((cell.conns, cell.response_size,
                                                                                     cell.load)),
                     offered_rate=max((s.offered_rate or 0 for s in baseline_samples + arm_samples), default=None),
                     blocks=len(both), baseline_short=len(base_short), arm_short=len(arm_short),
                     only_baseline=only_base, only_arm=only_arm, p=stats.exact_mcnemar(only_base, only_arm),
                     lowest_achieved=min(achieved) if achieved else None)


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
    # At equal offered load, a block in which either arm fell short of the rate is no equal-load
    # pair: the CPU metrics leave it out (their all-blocks estimate stays beside them), latency
    # and throughput never do, and the shortfall test judges the blocks themselves.
    short_blocks: list[int]
    metrics: dict[str, PairedComparison]  # every metric of the run's plan, each in its family
    all_blocks: dict[str, PairedComparison]  # held-blocks-only metrics over every block (no verdict)
    shortfall: Shortfall | None  # paced cells only
    zc_send_share: float | None  # the arm's sends that went zero-copy (None: not a zero-copy arm)
    load: float | None = None  # GroupKey.load

    @property
    def key(self) -> GroupKey:
        return GroupKey(self.server, self.arm, self.conns, self.response_size, self.load)

    @property
    def mostly_regular(self) -> bool:
        """A zero-copy arm whose sends were mostly regular (at its in-flight cap or budget): its
        verdicts are mostly about regular sends, and say so."""
        return self.zc_send_share is not None and self.zc_send_share < ZC_SHARE_LABELLED

    @property
    def normaliser_moved(self) -> bool:
        """The arm moved wrk's CPU per request (the check failed): server CPU per wrk CPU, which
        assumes it did not, is demoted."""
        check = self.metrics.get("loadgen_cpu_us_per_request")
        return check is not None and check.verdict in (stats.BETTER, stats.WORSE)

    def to_json(self) -> dict:
        return asdict(self) | {
            "metrics": {name: m.to_json() for name, m in self.metrics.items()},
            "all_blocks": {name: m.to_json() for name, m in self.all_blocks.items()},
            "shortfall": self.shortfall.to_json() if self.shortfall else None,
            "mostly_regular": self.mostly_regular, "normaliser_moved": self.normaliser_moved}


#: A zero-copy arm's verdicts below this share of zero-copy sends carry "mostly regular sends".
ZC_SHARE_LABELLED = 0.5
MOSTLY_REGULAR = "mostly regular sends (in-flight cap)"


def compare_groups(baseline: GroupSummary, arm: GroupSummary, baseline_samples: list[Sample],
                   arm_samples: list[Sample], plan: MetricPlan = UNPACED_PLAN) -> ArmComparison:
    """An arm's group against its baseline group, metric by metric, paired by block."""
    short = short_blocks(baseline_samples, arm_samples)
    return ArmComparison(
        server=arm.server,
        arm=arm.arm,
        baseline_arm=baseline.arm,
        conns=arm.conns,
        response_size=arm.response_size,
        load=arm.load,
        baseline_indexes=baseline.sample_indexes,
        arm_indexes=arm.sample_indexes,
        short_blocks=short,
        metrics={metric: compare_paired(paired_values(baseline_samples, arm_samples, metric), metric,
                                        plan.family(metric))
                 for metric in plan.metrics},
        all_blocks={metric: all_blocks_estimate(baseline_samples, arm_samples, metric)
                    for metric in plan.metrics if short and METRICS[metric].held_blocks_only},
        shortfall=shortfall(baseline_samples, arm_samples),
        zc_send_share=arm.zc_send_share if arms.is_zero_copy(arm.arm) else None,
    )


def all_blocks_estimate(baseline_samples: list[Sample], arm_samples: list[Sample], metric: str) -> PairedComparison:
    """A held-blocks-only metric over every block, short ones included: the estimate shown beside
    the equal-load one (its unadjusted 95 % interval; no verdict)."""
    comparison = compare_paired(paired_values(baseline_samples, arm_samples, metric, held_only=False), metric,
                                family="all blocks")
    comparison.p_adjusted, comparison.verdict = None, "not judged: all blocks, short ones included"
    return comparison


@dataclass(kw_only=True)
class RunStats:
    """A run's groups and arm-against-baseline comparisons, the plan of metrics they were judged
    on, and the matrix they span."""
    plan: MetricPlan = UNPACED_PLAN
    samples_count: int
    arms: list[str]
    conns: list[int]
    response_sizes: list[int]
    groups: list[GroupSummary]
    comparisons: list[ArmComparison]
    loads: list = None  # the load axis (shares of saturation), [None] without one

    def __post_init__(self):
        if self.loads is None:
            self.loads = sorted({g.load for g in self.groups if g.load is not None}) or [None]

    def group(self, arm: str, conns: int, size: int, load: float | None = None) -> GroupSummary | None:
        return next((g for g in self.groups if g.key.where == (arm, conns, size, load)), None)

    def comparison(self, arm: str, conns: int, size: int, load: float | None = None) -> ArmComparison | None:
        return next((c for c in self.comparisons if c.key.where == (arm, conns, size, load)), None)

    def cells(self) -> list[tuple[int, int, float | None]]:
        """(conns, size, load) of every cell the run measured, by size, conns, then load."""
        found = {(g.conns, g.response_size, g.load) for g in self.groups}
        return sorted(found, key=lambda cell: (cell[1], cell[0], -1 if cell[2] is None else cell[2]))

    def comparisons_of(self, arm: str) -> list[ArmComparison]:
        return [c for c in self.comparisons if c.arm == arm]

    def to_json(self) -> dict:
        return {"metric_plan": self.plan.to_json(), "samples_count": self.samples_count, "arms": self.arms,
                "conns": self.conns, "loads": self.loads,
                "response_sizes": self.response_sizes, "groups": [g.to_json() for g in self.groups],
                "comparisons": [c.to_json() for c in self.comparisons]}


def summarize(samples: list[Sample]) -> RunStats:
    """Groups and arm-against-regular comparisons of a run's samples (no manifest needed)."""
    grouped = group_samples(samples)
    groups = [summarize_group(key, members) for key, members in grouped.items()]
    by_key = {key: group for key, group in zip(grouped, groups)}
    comparisons = []
    plan = metric_plan(samples)  # one plan for the whole run: one set of families
    for key, group in by_key.items():
        baseline = arms.ARMS[key.arm].baseline if arms.known(key.arm) else BASELINE_ARM
        base_key = key._replace(server=arms.ZCBENCH, arm=baseline)
        if baseline is None or base_key not in by_key:
            continue
        comparisons.append(compare_groups(by_key[base_key], group, grouped[base_key], grouped[key], plan))
    judge(comparisons)
    return RunStats(
        plan=plan,
        samples_count=len(samples),
        arms=sorted({k.arm for k in grouped}, key=arms.order),
        conns=sorted({k.conns for k in grouped}),
        response_sizes=sorted({k.response_size for k in grouped}),
        groups=groups,
        comparisons=comparisons,
    )
