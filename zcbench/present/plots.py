"""The run's plots (matplotlib, Agg: no display needed), drawn from the summary only.

    throughput.png, p99.png, cpu_per_request.png   the metric against connections, one line per
        arm (against response size instead when the run has one connection level and several
        sizes; one panel per size when it has several of both). Points are means with their
        95 % interval; the small dots are the repetitions themselves; † marks a loadgen-bound cell.
    sweep_ratio.png   (several sizes) the arm/regular throughput ratio against response size on a
        log axis with its 95 % interval and the 1.0 line, one line per zc arm (and conns level).
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: never look for a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from zcbench.analyze import stats  # noqa: E402
from zcbench.analyze.runstats import GroupSummary  # noqa: E402
from zcbench.analyze.stats import PairedComparison  # noqa: E402
from zcbench.analyze.summary import Summary  # noqa: E402
from zcbench.core import arms, fmt  # noqa: E402
from zcbench.core.atomic import write_atomic  # noqa: E402

DPI = 110
DODGE = 0.06

#: file name -> (metric, y label, scale applied to the metric's values)
METRIC_PLOTS = {
    "throughput.png": ("requests_per_s", "throughput (req/s)", 1.0),
    "p99.png": ("latency_p99_us", "p99 latency (ms)", 1e-3),
    "cpu_per_request.png": ("cpu_us_per_request", "server CPU per request (µs)", 1.0),
}
SWEEP_PLOT = "sweep_ratio.png"



def _size_axis(ax, sizes) -> None:
    """Log x axis of response sizes, one slanted label per size (88 B and 512 B sit close)."""
    ax.set_xscale("log")
    ax.set_xticks(sizes)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt.size(int(v))))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis="x", labelrotation=35)
    ax.set_xlabel("response size")

def _save(fig, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    write_atomic(path, buffer.getvalue())


def _error_bar(center: float, interval: list[float] | None, scale: float = 1.0) -> tuple[float, float]:
    """Distances below and above `center` to the interval's ends (none without an interval)."""
    if not interval:
        return 0.0, 0.0
    return (center - interval[0]) * scale, (interval[1] - center) * scale


def _x_axis(summary: Summary) -> tuple[str, list[int], list[int | None]]:
    """What goes on x ('conns' or 'response_size'), its values, and the panels (the other one)."""
    if len(summary.conns) == 1 and len(summary.response_sizes) > 1:
        return "response_size", summary.response_sizes, summary.conns
    return "conns", summary.conns, summary.response_sizes


def _group_at(summary: Summary, arm: str, x_name: str, x: int, panel: int) -> GroupSummary | None:
    conns, size = (x, panel) if x_name == "conns" else (panel, x)
    return summary.group(arm, conns, size)


def _dodge(index: int, count: int) -> float:
    """A small multiplicative shift on the log x axis so arms at the same x do not hide each other."""
    return 1 + DODGE * (index - (count - 1) / 2)


def _draw_metric(ax, summary: Summary, metric: str, scale: float, x_name: str, xs: list[int], panel: int):
    for i, arm in enumerate(summary.arms):
        points = [(x * _dodge(i, len(summary.arms)), g) for x in xs
                  if (g := _group_at(summary, arm, x_name, x, panel)) and g.metrics[metric].n]
        if not points:
            continue
        color = arms.color(arm)
        x_values = [x for x, _ in points]
        means = [g.metrics[metric].mean * scale for _, g in points]
        bars = [_error_bar(g.metrics[metric].mean, g.metrics[metric].ci95, scale) for _, g in points]
        ax.errorbar(x_values, means, yerr=list(zip(*bars)), color=color, marker=arms.marker(arm),
                    capsize=4, linewidth=1.6, label=arm)
        for x, group in points:
            values = [v * scale for v in group.metrics[metric].values]
            ax.scatter([x] * len(values), values, color=color, s=10, alpha=0.45, zorder=3)
            if group.loadgen_bound_reps:
                ax.annotate("†", (x, group.metrics[metric].mean * scale), textcoords="offset points",
                            xytext=(6, 4), color=color, fontsize=12)
    if x_name == "response_size":
        _size_axis(ax, xs)
    else:
        ax.set_xscale("log")
        ax.set_xticks(xs)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("connections")
    ax.set_ylim(bottom=0)
    if metric == "requests_per_s":
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt.rate(v)))
    ax.grid(True, alpha=0.3)


def metric_plot(summary: Summary, metric: str, ylabel: str, scale: float):
    x_name, xs, panels = _x_axis(summary)
    fig, axes = plt.subplots(1, len(panels), figsize=(max(6.4, 4.2 * len(panels)), 4.2),
                             squeeze=False, sharey=False)
    for ax, panel in zip(axes[0], panels):
        _draw_metric(ax, summary, metric, scale, x_name, xs, panel)
        ax.set_title(f"{fmt.size(panel)} responses" if x_name == "conns" else f"{panel} connections",
                     fontsize=10)
        ax.set_ylabel(ylabel)
    axes[0][0].legend(loc="best", fontsize=9)
    fig.suptitle(f"{summary.run_id}: {ylabel} (mean, 95% CI; dots = repetitions; † loadgen-bound)",
                 fontsize=10)
    return fig


#: The ratio axis shows at most this factor beyond the ratios themselves; a wider interval
#: (two repetitions on a noisy host can give 0.001-480) runs off the axis instead of flattening it.
RATIO_AXIS_REACH = 2.0
RATIO_TICKS = (0.1, 0.2, 0.25, 0.5, 0.67, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 10.0)


def _ratio_points(summary: Summary, arm: str, conns: int) -> list[tuple[int, PairedComparison]]:
    return [(size, c.metrics["requests_per_s"]) for size in summary.response_sizes
            if (c := summary.comparison(arm, conns, size))
            and c.metrics["requests_per_s"].ratio is not None]


def _ratio_limits(comparisons: list[PairedComparison]) -> tuple[float, float, bool]:
    """y limits covering every ratio, its interval (up to RATIO_AXIS_REACH) and 1.0; clipped?"""
    low = min([1.0] + [c.ratio for c in comparisons])
    high = max([1.0] + [c.ratio for c in comparisons])
    ends = [bound for c in comparisons for bound in (c.ci or [])]
    clipped = any(e < low / RATIO_AXIS_REACH or e > high * RATIO_AXIS_REACH for e in ends)
    low = max(min([low] + ends), low / RATIO_AXIS_REACH)
    high = min(max([high] + ends), high * RATIO_AXIS_REACH)
    return low / 1.05, high * 1.05, clipped


def sweep_ratio_plot(summary: Summary):
    fig, ax = plt.subplots(figsize=(7.2, 4.4))
    several_conns = len(summary.conns) > 1
    lines = [(conns, arm) for conns in summary.conns for arm in summary.arms if arm != "regular"]
    drawn: list[PairedComparison] = []
    for i, (conns, arm) in enumerate(lines):
        points = _ratio_points(summary, arm, conns)
        if not points:
            continue
        drawn += [c for _, c in points]
        color = arms.color(arm)
        sizes = [size * _dodge(i, len(lines)) for size, _ in points]
        ratios = [c.ratio for _, c in points]
        bars = [_error_bar(c.ratio, c.ci) for _, c in points]
        label = f"{arm} / regular" + (f", {conns} conns" if several_conns else "")
        ax.errorbar(sizes, ratios, yerr=list(zip(*bars)), color=color, marker=arms.marker(arm),
                    capsize=4, linewidth=1.6, label=label)
        better = [(x, c.ratio) for x, (_, c) in zip(sizes, points) if c.verdict == stats.BETTER]
        if better:
            ax.scatter(*zip(*better), s=110, facecolors="none", edgecolors=color, linewidths=1.4, zorder=4)
    ax.axhline(1.0, color="black", linewidth=1, linestyle="--", label="1.0 = no difference")
    # Log y: the interval is symmetric in the log of the ratio, and x0.5 looks as far as x2.
    ax.set_yscale("log")
    low, high, clipped = _ratio_limits(drawn) if drawn else (0.5, 2.0, False)
    ax.set_ylim(low, high)
    ax.set_yticks([t for t in RATIO_TICKS if low <= t <= high] or [1.0])
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    _size_axis(ax, summary.response_sizes)
    ax.set_ylabel("throughput ratio to regular send")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    crossovers = summary.sweep.crossovers if summary.sweep else []
    notes = [f"{c.arm} at {c.conns} conns: {c.text}" for c in crossovers if c.status == "not measurable"]
    if clipped:
        notes.append("Some intervals reach beyond the axis (few or noisy repetitions): see report.md.")
    if notes:  # e.g. a ratio on a path that copied every send says nothing about zero-copy
        # anchored under the x label, whatever room the tick labels took
        ax.annotate("\n".join(notes), xy=(0.5, 0), xycoords=ax.xaxis.label, xytext=(0, -6),
                    textcoords="offset points", ha="center", va="top", fontsize=8, color="#a00000")
    conns_text = "" if several_conns else f", {summary.conns[0]} conns"
    ax.set_title(f"{summary.run_id}: ZC / regular throughput{conns_text}\n"
                 "(geometric mean of per-block ratios, Holm-level CI, log scale; circled = significantly better)", fontsize=10)
    return fig


def render_plots(summary: Summary, plots_dir: Path) -> list[str]:
    """Draw every plot the summary supports into plots_dir; the file names written."""
    plots_dir = Path(plots_dir)
    written: list[str] = []
    if summary.groups:
        for name, (metric, ylabel, scale) in METRIC_PLOTS.items():
            if any(g.metrics[metric].n for g in summary.groups):
                _save(metric_plot(summary, metric, ylabel, scale), plots_dir / name)
                written.append(name)
        if len(summary.response_sizes) > 1 and summary.comparisons:
            _save(sweep_ratio_plot(summary), plots_dir / SWEEP_PLOT)
            written.append(SWEEP_PLOT)
    # A re-render must not leave a plot of ours that the summary no longer supports.
    for name in (*METRIC_PLOTS, SWEEP_PLOT):
        if name not in written:
            (plots_dir / name).unlink(missing_ok=True)
    return written
