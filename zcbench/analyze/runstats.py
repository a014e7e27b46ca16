"""A run's groups and arm-against-baseline comparisons, from its samples (no manifest needed).

A *group* is every repetition of one cell of the matrix (server, arm, conns, response size).
A repetition is a *block*: the planner runs every arm of a comparison inside it. Each arm is
compared with its baseline (core.arms) metric by metric, paired by block (analyze.stats), and
every comparison of a run is one Holm family.

    summarize(samples) -> RunStats
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

from zcbench.analyze.metrics import COMPARED_METRICS, METRICS, compared_metrics, metric_values
from zcbench.analyze.stats import (Description, PairedComparison, UnpairedComparison, describe, holm_adjust,
                                   mean_or_none, paired_comparison, share, unpaired_comparison)
from zcbench.core import arms
from zcbench.core.samples import LOADGEN_BOUND_SHARE, Errors, Sample

BASELINE_ARM = arms.BASELINE
NOT_SUSTAINED = "rate not sustained"  # --rate: a cell that did not get the offered load
#: --rate: a block in which either arm fell short of the offered rate is no equal-load pair and is
#: left out of the cell's comparison; more short blocks than this share mean the rate is beyond
#: what the host sustains, and the cell is not compared at all.
MAX_SHORT_BLOCK_SHARE = 0.2


class GroupKey(NamedTuple):
    """Which cell of the matrix a group is: every repetition of it shares this."""
    server: str
    arm: str
    conns: int
    response_size: int

    @property
    def where(self) -> tuple[str, int, int]:
        """(arm, conns, size): how reports and comparisons name a cell."""
        return (self.arm, self.conns, self.response_size)


def group_key(sample: Sample) -> GroupKey:
    cell = sample.cell
    return GroupKey(cell.server, cell.arm, int(cell.conns), int(cell.response_size))


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
    return (key.response_size, key.conns, arms.order(key.arm), key.arm, key.server)


def compare_paired(pairs: list[tuple[int, float, float]], metric: str) -> PairedComparison:
    """One metric of an arm against its baseline, paired by block (before multiplicity)."""
    return paired_comparison(pairs, metric, METRICS[metric].higher_is_better)


def compare_unpaired(before: list[float], after: list[float], metric: str) -> UnpairedComparison:
    """One metric of a cell in two runs (analyze.compare): Welch's test on the logs."""
    return unpaired_comparison(before, after, metric, METRICS[metric].higher_is_better)


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

    @property
    def key(self) -> GroupKey:
        return GroupKey(self.server, self.arm, self.conns, self.response_size)

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

    @property
    def key(self) -> GroupKey:
        return GroupKey(self.server, self.arm, self.conns, self.response_size)

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
        return next((g for g in self.groups if g.key.where == (arm, conns, size)), None)

    def comparison(self, arm: str, conns: int, size: int) -> ArmComparison | None:
        return next((c for c in self.comparisons if c.key.where == (arm, conns, size)), None)

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
        baseline = arms.ARMS[key.arm].baseline if arms.known(key.arm) else BASELINE_ARM
        base_key = key._replace(server=arms.ZCBENCH, arm=baseline)
        if baseline is None or base_key not in by_key:
            continue
        comparisons.append(compare_groups(by_key[base_key], group, grouped[base_key], grouped[key], metrics))
    apply_holm(comparisons)
    return RunStats(
        samples_count=len(samples),
        arms=sorted({k.arm for k in grouped}, key=arms.order),
        conns=sorted({k.conns for k in grouped}),
        response_sizes=sorted({k.response_size for k in grouped}),
        groups=groups,
        comparisons=comparisons,
    )
