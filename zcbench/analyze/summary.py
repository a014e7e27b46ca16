"""A run's summary: everything report.md, summary.json and the plots show, computed from the
stored samples and the manifest (nothing here renders or measures).

    build_summary(manifest, samples) -> Summary

is runstats.summarize (groups, paired comparisons, Holm, MDE) plus the run's identity and, when
the run has several response sizes, the sweep section (analyze.sweep).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zcbench import __version__
from zcbench.analyze import latency, runstats, stats
from zcbench.analyze.independence import IndependenceCheck, check_blocks
from zcbench.analyze.sweep import Sweep, is_sweep, summarize_sweep
from zcbench.core import fmt
from zcbench.core.rundir import SAMPLES, SUMMARY_SCHEMA
from zcbench.core.samples import LOADGEN_BOUND_SHARE, Sample


def statistics_note() -> dict:
    """summary.json's words on how its numbers were tested (for a reader; no code reads them)."""
    return {"test": "paired t-test on per-block log ratios (two-sided)",
            "ratio": "geometric mean of the per-block ratios arm / baseline",
            "multiplicity": "Holm within each family: the primary metric across cells, the secondary "
                            "metrics, the checks, the shortfall tests (family-wise error per family)",
            "families": "metric_plan names the primary, secondary and check metrics; each comparison's "
                        "metrics carry their family",
            "blocks": "CPU metrics pair the blocks where both arms held the offered rate (all_blocks: "
                      "with the short ones, no verdict); latency and throughput pair every block",
            "shortfall": "exact McNemar test on the blocks where only one arm fell short of the rate",
            "alpha": stats.ALPHA,
            "interval": "t interval of the mean log ratio at level 1 - alpha * p / p_adjusted "
                        "(excludes 1 exactly when the adjusted p < alpha); ci95 is unadjusted",
            "mde": f"smallest change found with {stats.POWER:.0%} power at alpha / family size",
            "second_view": "p_welch_logs: Welch's t-test on the unpaired logs",
            "loadgen_bound_share": LOADGEN_BOUND_SHARE}


@dataclass(kw_only=True)
class Summary(runstats.RunStats):
    """A run's statistics with its identity, its sweep section when it has several sizes, and
    the plots drawn from it (set by the report)."""
    run_id: str
    label: str
    complete: bool
    incomplete_reason: str | None
    repeat_planned: int | None
    sweep: Sweep | None = None
    independence: IndependenceCheck | None = None  # are the blocks independent (analyze.independence)
    # each group's latency pooled over its blocks, and latency against load (analyze.latency)
    latency_distributions: dict[runstats.GroupKey, latency.Distribution] = field(default_factory=dict)
    latency_curves: list[latency.LoadCurve] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)

    def distribution(self, key: runstats.GroupKey) -> latency.Distribution | None:
        return self.latency_distributions.get(key)

    def to_json(self) -> dict:
        """summary.json's object."""
        return super().to_json() | {
            "schema": SUMMARY_SCHEMA, "zcbench_version": __version__, "run_id": self.run_id, "label": self.label,
            "complete": self.complete, "incomplete_reason": self.incomplete_reason,
            "samples_file": SAMPLES, "repeat_planned": self.repeat_planned,
            "statistics": statistics_note(), "plots": self.plots,
            "latency_distributions": [key._asdict() | found.to_json()
                                      for key, found in self.latency_distributions.items()],
            "latency_against_load": [curve.to_json() for curve in self.latency_curves],
        } | ({"sweep": self.sweep.to_json()} if self.sweep else {}) | (
            {"independence": self.independence.to_json()} if self.independence else {})


def latency_distributions(samples: list[Sample]) -> dict[runstats.GroupKey, latency.Distribution]:
    """Each group's latency pooled over its blocks, with block-bootstrap intervals."""
    found = {key: latency.distribution(members, draws=latency.DISTRIBUTION_DRAWS)
             for key, members in runstats.group_samples(samples).items()}
    return {key: distribution for key, distribution in found.items() if distribution is not None}


def build_summary(manifest: dict, samples: list[Sample]) -> Summary:
    """runstats.summarize plus the run's identity, the latency distributions (against load with
    several loads) and, for several sizes, the sweep section."""
    config = manifest.get("config") or {}
    summary = Summary(
        **vars(runstats.summarize(samples)),
        run_id=manifest.get("run_id", fmt.UNKNOWN),
        label=manifest.get("label", config.get("label", fmt.UNKNOWN)),
        complete=bool(manifest.get("complete", False)),
        incomplete_reason=manifest.get("incomplete_reason"),
        repeat_planned=config.get("repeat"),
        independence=check_blocks(samples),
        latency_distributions=latency_distributions(samples),
        latency_curves=latency.load_curves(samples),
    )
    if is_sweep(summary):
        summary.sweep = summarize_sweep(summary)
    return summary
