"""latency_load.png (a run with several loads): each arm's p50, p99 and p99.9 against the offered
load, one panel per cell (conns × size), with block-bootstrap intervals, and a mark where each
arm's p99 first exceeds 10× its lowest-load value. The numbers are summary.json's
`latency_against_load` (analyze.latency); the report's "Latency against load" table holds them.
"""

from __future__ import annotations

import math

from zcbench.analyze import latency
from zcbench.analyze.summary import Summary
from zcbench.core import arms
from zcbench.present import labels
from zcbench.present.plot_axes import log_axis, new_figure, shared_legend

MAX_COLUMNS = 3
#: How each percentile is drawn (the arm's colour is its own).
STYLES = {50.0: ":", 99.0: "-", 99.9: "--"}


def _cells(summary: Summary) -> list[tuple[str, int, int]]:
    return sorted({(c.server, c.conns, c.response_size) for c in summary.latency_curves},
                  key=lambda cell: (cell[2], cell[1], cell[0]))


def _panel(ax, curves: list[latency.LoadCurve]) -> None:
    for curve in sorted(curves, key=lambda c: (arms.order(c.arm), c.arm)):
        color = arms.color(curve.arm)
        x = [point.load * 100 for point in curve.points]
        for percentile, style in STYLES.items():
            y = [point.percentiles_us[percentile] / 1000 for point in curve.points]
            low = [y_ - point.intervals_us[percentile][0] / 1000 for y_, point in zip(y, curve.points)]
            high = [point.intervals_us[percentile][1] / 1000 - y_ for y_, point in zip(y, curve.points)]
            ax.errorbar(x, y, yerr=[low, high], color=color, linestyle=style, marker=arms.marker(curve.arm),
                        markersize=3, linewidth=1.3, capsize=2, label=f"{curve.arm} p{percentile:g}")
        knee = curve.knee
        if knee is not None and knee.load is not None:
            ax.axvline(knee.load * 100, color=color, linewidth=0.8, alpha=0.6)
            ax.annotate(f"{curve.arm}: p99 ×{knee.factor:g}", (knee.load * 100, 1), xycoords=("data", "axes fraction"),
                        rotation=90, va="top", ha="right", fontsize=6.5, color=color)
    log_axis(ax.yaxis)
    ax.set_ylabel("latency (ms, log scale)", fontsize=8)
    ax.set_xlabel("offered load (% of the measured saturation)", fontsize=8)
    ax.grid(True, which="major", alpha=0.3)


def latency_load_plot(summary: Summary):
    cells = _cells(summary)
    columns = min(MAX_COLUMNS, len(cells))
    rows = math.ceil(len(cells) / columns)
    fig = new_figure(max(6.4, 4.4 * columns), 1.6 + 3.4 * rows)
    axes = fig.subplots(rows, columns, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(cells):
            ax.set_visible(False)
            continue
        server, conns, size = cells[i]
        _panel(ax, [c for c in summary.latency_curves if (c.server, c.conns, c.response_size) == cells[i]])
        ax.set_title(labels.where_text(summary, conns, size), fontsize=9)
    shared_legend(fig, fontsize=7.5)
    fig.suptitle(f"{summary.run_id}: latency against offered load\n"
                 "dotted p50, solid p99, dashed p99.9 (95% block-bootstrap intervals);\n"
                 "a vertical line: where the arm's p99 first exceeds 10× its lowest-load value", fontsize=9.5)
    return fig


def has_curves(summary: Summary) -> bool:
    return bool(summary.latency_curves)
