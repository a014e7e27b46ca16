"""A run's summary: everything report.md, summary.json and the plots show, computed from the
stored samples and the manifest (nothing here renders or measures).

    build_summary(manifest, samples) -> Summary

is stats.summarize (groups, paired comparisons, Holm, MDE) plus the run's identity and, when the
run has several response sizes, the sweep section: the per-size rows and, per zc arm and
connection count, the crossover -- where zero-copy send starts to pay on this host.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from zcbench import __version__
from zcbench.core import fmt
from zcbench.analyze import stats
from zcbench.core.samples import LOADGEN_BOUND_SHARE, SAMPLES_FILE, Sample

ZC_ARMS = ("zc", "zc-fixed")

NOT_MEASURABLE_COPIED = "not measurable on this path: every send was copied"
NOT_MEASURABLE_NO_ZC = "not measurable: no SEND_ZC notification was counted"
NONE_IN_RANGE = "none in range"


def statistics_note() -> dict:
    """summary.json's words on how its numbers were tested (for a reader; no code reads them)."""
    return {"test": "paired t-test on per-block log ratios (two-sided)",
            "ratio": "geometric mean of the per-block ratios arm / baseline",
            "multiplicity": "Holm over every comparison of the report (family-wise error)",
            "alpha": stats.ALPHA,
            "interval": "t interval of the mean log ratio at level 1 - alpha * p / p_adjusted "
                        "(excludes 1 exactly when the adjusted p < alpha); ci95 is unadjusted",
            "mde": f"smallest change found with {stats.POWER:.0%} power at alpha / family size",
            "secondary": "p_welch_logs: Welch's t-test on the unpaired logs",
            "loadgen_bound_share": LOADGEN_BOUND_SHARE}


@dataclass
class SweepRow:
    """One (conns, size, arm) of zcbench arms in the sweep table."""
    conns: int
    response_size: int
    arm: str
    reps: int
    requests_per_s: float | None
    gbit_per_s: float | None
    ratio: float | None  # throughput against regular (None for regular itself)
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


@dataclass(kw_only=True)
class Summary(stats.RunStats):
    """A run's statistics with its identity, its sweep section when it has several sizes, and
    the plots drawn from it (set by the report)."""
    run_id: str
    label: str
    complete: bool
    incomplete_reason: str | None
    repeat_planned: int | None
    sweep: Sweep | None = None
    plots: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """summary.json's object."""
        return super().to_json() | {
            "zcbench_version": __version__, "run_id": self.run_id, "label": self.label,
            "complete": self.complete, "incomplete_reason": self.incomplete_reason,
            "samples_file": SAMPLES_FILE, "repeat_planned": self.repeat_planned,
            "statistics": statistics_note(), "plots": self.plots,
        } | ({"sweep": self.sweep.to_json()} if self.sweep else {})


def build_summary(manifest: dict, samples: list[Sample]) -> Summary:
    """stats.summarize plus the run's identity and, for several sizes, the sweep section."""
    config = manifest.get("config") or {}
    summary = Summary(
        **vars(stats.summarize(samples)),
        run_id=manifest.get("run_id", fmt.UNKNOWN),
        label=manifest.get("label", config.get("label", fmt.UNKNOWN)),
        complete=bool(manifest.get("complete", False)),
        incomplete_reason=manifest.get("incomplete_reason"),
        repeat_planned=config.get("repeat"),
    )
    if is_sweep(summary):
        summary.sweep = summarize_sweep(summary)
    return summary



# --- reading a summary as a sweep ------------------------------------------------------------


def is_sweep(summary: stats.RunStats) -> bool:
    return len(summary.response_sizes) > 1


def sweep_rows(summary: stats.RunStats) -> list[SweepRow]:
    """One row per (conns, size, arm) of zcbench arms: the numbers of the sweep table."""
    rows = []
    for conns in summary.conns:
        for size in summary.response_sizes:
            for arm in (a for a in summary.arms if a in ("regular", *ZC_ARMS)):
                group = summary.group(arm, conns, size)
                if group is None:
                    continue
                comparison = summary.comparison(arm, conns, size)
                throughput = comparison.metrics["requests_per_s"] if comparison else None
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


def _every_size_copied(groups: list[stats.GroupSummary]) -> bool:
    shares = [g.copied_share for g in groups if g.copied_share is not None]
    return bool(shares) and all(s >= COPIED_LIMIT for s in shares)


def crossover(summary: stats.RunStats, arm: str, conns: int) -> Crossover:
    """Where `arm` starts to pay at `conns`, judged per size on throughput (Holm-adjusted verdicts):

    the smallest size that is significantly better than regular, was really zero-copied there
    (its own copied share below COPIED_LIMIT), and from which no larger size is significantly
    worse. Otherwise why there is none."""
    sizes = [s for s in summary.response_sizes if summary.comparison(arm, conns, s)]
    groups = [summary.group(arm, conns, s) for s in sizes]
    verdicts = [summary.comparison(arm, conns, s).metrics["requests_per_s"] for s in sizes]
    result = Crossover(arm, conns, sizes)
    if not any((g.counters or {}).get("zc_notifs") for g in groups):
        result.status, result.text = "not measurable", NOT_MEASURABLE_NO_ZC
        return result
    if _every_size_copied(groups):
        result.status, result.text = "not measurable", NOT_MEASURABLE_COPIED
        return result
    for i, (size, group, throughput) in enumerate(zip(sizes, groups, verdicts)):
        copied = group.copied_share
        if throughput.verdict != stats.BETTER or copied is None or copied >= COPIED_LIMIT:
            continue
        if any(later.verdict == stats.WORSE for later in verdicts[i + 1:]):
            continue
        comparison = summary.comparison(arm, conns, size)
        text = (f"{fmt.size(size)} (throughput ×{fmt.ratio(throughput.ratio)}, "
                f"{fmt.interval(throughput.ci)} at the Holm-adjusted level; copied share "
                f"{fmt.percent(copied)})")
        if group.loadgen_bound_reps:
            text += "; loadgen-bound there, so the win may be wrk's"
        return Crossover(arm, conns, sizes, status="crossover", text=text, size=size, ratio=throughput.ratio,
                         ratio_ci=throughput.ci, copied_share=copied, arm_indexes=comparison.arm_indexes,
                         baseline_indexes=comparison.baseline_indexes)
    span = f"{fmt.size(sizes[0])}–{fmt.size(sizes[-1])}" if sizes else "no sizes"
    result.status, result.text = NONE_IN_RANGE, f"{NONE_IN_RANGE} ({span})"
    return result


def summarize_sweep(summary: stats.RunStats) -> Sweep:
    """The sweep section of summary.json: the table rows and a crossover per zc arm and conns."""
    arms = [a for a in summary.arms if a in ZC_ARMS]
    return Sweep(sizes=summary.response_sizes, rows=sweep_rows(summary),
                 crossovers=[crossover(summary, arm, conns) for conns in summary.conns for arm in arms])
