"""The words and colours every renderer of a run shares (report.md, report.html, the plots,
compare): a verdict's word and colour, a delta with its verdict, the MDE, "worse in 27 of 30
blocks", a cell's place in the matrix, and which metric leads. One place, so the Markdown, the
HTML and the figures cannot disagree on a number or a word.
"""

from __future__ import annotations

from zcbench.analyze import metrics, stats
from zcbench.analyze.runstats import RunStats
from zcbench.analyze.stats import PairedComparison
from zcbench.core import fmt
from zcbench.core.samples import load_text

#: Above this, an MDE says only that the run could not see any plausible change (too few
#: blocks, or blocks disagreeing wildly): its digits would be noise.
MDE_SHOWN_MAX = fmt.MDE_SHOWN_MAX

UNTESTED = "untested (<2 reps)"
#: The order the glance lists verdicts in.
VERDICT_ORDER = (stats.BETTER, stats.WORSE, stats.NO_DIFFERENCE, UNTESTED, stats.NO_DATA)

#: A verdict's colour in the plots and the HTML (colour-blind safe: blue/orange, not green/red).
VERDICT_COLORS = {stats.WORSE: "#d55e00", stats.BETTER: "#0072b2", stats.NO_DIFFERENCE: "#6b6b6b"}
OTHER_VERDICT_COLOR = "#b0b0b0"  # untested, not sustained, no data


def verdict_word(verdict: str) -> str:
    if verdict in (stats.BETTER, stats.WORSE, stats.NO_DIFFERENCE):
        return verdict
    return UNTESTED if verdict == stats.TOO_FEW else stats.NO_DATA


def verdict_color(verdict: str) -> str:
    return VERDICT_COLORS.get(verdict, OTHER_VERDICT_COLOR)


def mde_text(comparison: PairedComparison) -> str:
    """'±4.1%': the smallest change this run could have seen (80 % power); '>±100%' past that."""
    return fmt.mde(comparison.mde)


def delta_label(comparison: PairedComparison | None) -> str:
    """'**-7.8% worse**', '+0.4% (no difference, MDE ±3.1%)', '+3.0% (untested: <2 reps)'
    (Markdown: the HTML renders the same text)."""
    if comparison is None or comparison.delta is None:
        return fmt.MISSING
    text = fmt.delta(comparison.delta)
    verdict = comparison.verdict
    if verdict in (stats.BETTER, stats.WORSE):
        # a latency verdict carries its MDE too: what the run could see matters as much for the
        # tail as for "no difference" (its MDE is often wide)
        mde = f" (MDE {mde_text(comparison)})" if is_latency(comparison.metric) else ""
        return f"**{text} {verdict}**{mde}"
    if verdict == stats.TOO_FEW:
        return f"{text} (untested: <2 reps)"
    if verdict == stats.NO_DIFFERENCE:
        return f"{text} (no difference, MDE {mde_text(comparison)})"
    return f"{text} ({verdict})"


def is_latency(metric: str | None) -> bool:
    """A latency metric (mean, p99): its verdicts show their MDE whatever they say."""
    return bool(metric) and metric.startswith("latency_")


def ratio_label(ratio: float | None, ci: list[float] | None) -> str:
    if ratio is None:
        return fmt.MISSING
    return f"{fmt.ratio(ratio)} [{fmt.interval(ci)}]" if ci else fmt.ratio(ratio)


def direction(comparison: PairedComparison) -> str | None:
    """Which way a comparison went: its verdict when significant, else the sign of its estimate
    ('worse' / 'better'); None without an estimate or when it is exactly 1."""
    if comparison.verdict in (stats.BETTER, stats.WORSE):
        return comparison.verdict
    if comparison.ratio is None or comparison.ratio == 1:
        return None
    return stats.BETTER if (comparison.ratio > 1) == comparison.higher_is_better else stats.WORSE


def blocks_went(comparison: PairedComparison) -> tuple[str, int, int] | None:
    """(direction, blocks that went that way, blocks paired) of a comparison: its own counts of
    the pairs it was tested on (PairedComparison.blocks_higher / blocks_lower)."""
    way = direction(comparison)
    if way is None or not comparison.n_pairs:
        return None
    went = comparison.blocks_better if way == stats.BETTER else comparison.blocks_worse
    return way, went, comparison.n_pairs


def blocks_phrase(comparison: PairedComparison) -> str | None:
    """'worse in 27 of 30 blocks': how many of the paired blocks went the comparison's way."""
    went = blocks_went(comparison)
    if went is None:
        return None
    way, count, blocks = went
    return f"{way} in {count} of {blocks} blocks"


def where_text(summary: RunStats, conns: int, size: int, load: float | None = None) -> str:
    """A cell's place in the matrix, naming only what varies in this run ('100c', '4 KiB',
    '4 KiB/100c', '100c at 30% load')."""
    several_conns, several_sizes = len(summary.conns) > 1, len(summary.response_sizes) > 1
    if several_sizes and not several_conns:
        where = fmt.size(size)
    elif several_sizes:
        where = f"{fmt.size(size)}/{conns}c"
    else:
        where = f"{conns}c"
    return where + (f" at {load_text(load)} load" if load is not None and len(summary.loads) > 1 else "")


def conns_text(summary: RunStats, conns: int, load: float | None) -> str:
    """A Conns column's cell: '100', or '100 at 30%' when the run has several loads."""
    return str(conns) + (f" at {load_text(load)}" if load is not None and len(summary.loads) > 1 else "")


def metric_label(metric: str) -> str:
    """A metric's words ('server CPU per request'); its own name when the registry lacks it."""
    known = metrics.METRICS.get(metric)
    return known.label if known else metric.replace("_", " ")


def metric_unit(metric: str) -> str:
    known = metrics.METRICS.get(metric)
    return known.unit if known else ""


# --- which metric leads ----------------------------------------------------------------------

#: What a run at equal offered load cannot be judged on: the rate was fixed for every arm.
FIXED_AT_EQUAL_LOAD = ("requests_per_s", "gbit_per_s")
#: The order metrics are shown in after the primary one; a metric the summary holds that is not
#: listed here follows them, by name.
SHOWN_ORDER = ("cpu_us_per_request", "cpu_per_loadgen_cpu", "latency_p99_us", "latency_mean_us",
               "requests_per_s", "gbit_per_s", "cpu_us_per_kib")


def is_paced(summary: RunStats) -> bool:
    return any(g.offered_rate for g in summary.groups)


def primary_metric(summary: RunStats) -> str:
    """The metric a run's answer leads with: the one its summary declares when it declares a
    metric plan (issue 18's `plan.primary`); otherwise at equal offered load the server's CPU per
    request (the arm cannot move it, DESIGN.md), unpaced throughput, unless wrk was the
    bottleneck somewhere (then throughput is wrk's, and CPU per request is the server's own)."""
    plan = getattr(summary, "plan", None)
    if plan is not None:
        return plan.primary
    if is_paced(summary) or any(g.loadgen_bound_reps for g in summary.groups):
        return "cpu_us_per_request"
    return "requests_per_s"


def shown_metrics(summary: RunStats) -> list[str]:
    """Every metric the summary's comparisons hold, the primary first; at equal offered load
    without the ones the pacing fixed."""
    held = {m for c in summary.comparisons for m in c.metrics}
    if is_paced(summary):
        held -= set(FIXED_AT_EQUAL_LOAD)
    primary = primary_metric(summary)
    rank = {name: i for i, name in enumerate(SHOWN_ORDER)}
    return sorted(held, key=lambda m: (m != primary, rank.get(m, len(rank)), m))
