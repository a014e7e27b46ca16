"""sweep_ratio.png (runs with several response sizes): each zero-copy arm's throughput ratio to
regular against response size, with its Holm-level interval, the 1.0 line, significant wins
circled and each crossover marked. Points are joined only when every size ran at the same
offered rate (or all unpaced): a line across different rates would draw a trend that is the
rates', not the arm's.
"""

from __future__ import annotations

from zcbench.analyze import stats
from zcbench.analyze.stats import PairedComparison
from zcbench.analyze.sweep import sweep_load
from zcbench.analyze.summary import Summary
from zcbench.core import arms, fmt
from zcbench.present.plot_axes import dodge, new_figure, ratio_axis, ratio_limits, size_axis

METRIC = "requests_per_s"  # the crossover is judged on throughput (analyze.sweep)


def ratio_points(summary: Summary, arm: str, conns: int) -> list[tuple[int, PairedComparison]]:
    return [(size, c.metrics[METRIC]) for size in summary.response_sizes
            if (c := summary.comparison(arm, conns, size, sweep_load(summary)))
            and METRIC in c.metrics and c.metrics[METRIC].ratio is not None]


def same_rate(summary: Summary, arm: str, conns: int, sizes: list[int]) -> bool:
    """Whether the arm and regular ran every one of these sizes at one offered rate."""
    rates = {g.offered_rate for size in sizes for name in (arm, arms.BASELINE)
             if (g := summary.group(name, conns, size, sweep_load(summary)))}
    return len(rates) <= 1


def _mark_crossovers(ax, summary: Summary, several_conns: bool) -> list[str]:
    """A dotted vertical line at each crossover; the notes for arms where none could be measured."""
    notes = []
    for c in (summary.sweep.crossovers if summary.sweep else []):
        name = f"{c.arm}" + (f", {c.conns} conns" if several_conns else "")
        if c.status == "crossover" and c.size:
            ax.axvline(c.size, color=arms.color(c.arm), linestyle=":", linewidth=1.6,
                       label=f"crossover {name}: {fmt.size(c.size)}")
        elif c.status == "not measurable":
            notes.append(f"{name}: {c.text}")
    return notes


def sweep_ratio_plot(summary: Summary):
    fig = new_figure(7.6, 4.9)
    ax = fig.subplots()
    several_conns = len(summary.conns) > 1
    lines = [(conns, arm) for conns in summary.conns for arm in summary.arms if arms.is_zero_copy(arm)]
    drawn: list[PairedComparison] = []
    for i, (conns, arm) in enumerate(lines):
        points = ratio_points(summary, arm, conns)
        if not points:
            continue
        drawn += [c for _, c in points]
        color = arms.color(arm)
        sizes = [size * dodge(i, len(lines)) for size, _ in points]
        ratios = [c.ratio for _, c in points]
        bars = [(c.ratio - c.ci[0], c.ci[1] - c.ratio) if c.ci else (0.0, 0.0) for _, c in points]
        joined = same_rate(summary, arm, conns, [size for size, _ in points])
        label = f"{arm} / regular" + (f", {conns} conns" if several_conns else "")
        ax.errorbar(sizes, ratios, yerr=list(zip(*bars)), color=color, marker=arms.marker(arm), capsize=4,
                    linewidth=1.6 if joined else 0, label=label)
        better = [(x, c.ratio) for x, (_, c) in zip(sizes, points) if c.verdict == stats.BETTER]
        if better:
            ax.scatter(*zip(*better), s=110, facecolors="none", edgecolors=color, linewidths=1.4, zorder=4)
    ax.axhline(1.0, color="black", linewidth=1, linestyle="--", label="1.0 = no difference")
    notes = _mark_crossovers(ax, summary, several_conns)
    low, high, clipped = ratio_limits(drawn) if drawn else (0.5, 2.0, False)
    ratio_axis(ax.yaxis, low, high)  # log: the interval is symmetric in the log of the ratio
    size_axis(ax, summary.response_sizes)
    ax.set_ylabel("throughput ratio to regular send (log scale)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    if clipped:
        notes.append("Some intervals reach beyond the axis (few or noisy repetitions): see the report's table.")
    if notes:  # e.g. a ratio on a path that copied every send says nothing about zero-copy
        ax.annotate("\n".join(notes), xy=(0.5, 0), xycoords=ax.xaxis.label, xytext=(0, -6),
                    textcoords="offset points", ha="center", va="top", fontsize=8, color="#a00000")
    conns_text = "" if several_conns else f", {summary.conns[0]} conns"
    ax.set_title(f"{summary.run_id}: where zero-copy starts to pay{conns_text}\n"
                 "throughput ratio per size (geometric mean of the per-block ratios, Holm-level interval);\n"
                 "circled = significantly better; dotted line = the crossover", fontsize=9)
    return fig
