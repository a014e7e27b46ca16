"""blocks.png: the primary metric of every sample, block by block in run order, one panel per
cell and one line per arm. Drift shows as the arms moving together, an arm's effect as a gap
that holds, an outlier as one block off its line; a block that fell short of its offered rate
is crossed. Lines join the blocks of one cell only (one offered rate), never cells.
"""

from __future__ import annotations

import math

from zcbench.analyze import metrics
from zcbench.analyze.summary import Summary
from zcbench.core import arms, fmt
from zcbench.core.samples import Sample
from zcbench.present import labels
from zcbench.present.plot_axes import shared_legend, value_axis
from zcbench.present.plot_cells import cell_grid, in_cell

def plotted_metric(summary: Summary) -> str | None:
    """The primary metric, or the first shown one that was measured (no cgroup CPU: latency)."""
    for metric in [labels.primary_metric(summary), *labels.shown_metrics(summary), "latency_p99_us"]:
        if metric in metrics.METRICS and any(g.metrics.get(metric) and g.metrics[metric].n for g in summary.groups):
            return metric
    return None


def _points(samples: list[Sample], metric: str) -> list[tuple[int, float, Sample]]:
    extract = metrics.METRICS[metric].extract
    points = []
    for sample in samples:
        value = extract(sample)
        if value is not None and math.isfinite(float(value)):
            points.append((sample.cell.rep + 1, float(value), sample))
    return points


def _panel(ax, grouped: dict, conns: int, size: int, load: float | None, metric: str) -> None:
    """One cell's arms block by block, short blocks crossed."""
    values = []
    for key, members in grouped.items():
        if not in_cell(key, conns, size, load):
            continue
        points = _points(members, metric)
        if not points:
            continue
        xs, ys = [x for x, _, _ in points], [y for _, y, _ in points]
        values += ys
        ax.plot(xs, ys, color=arms.color(key.arm), marker=arms.marker(key.arm), markersize=3.5,
                linewidth=1.1, label=key.arm)
        short = [(x, y) for x, y, s in points if s.rate_sustained is False]
        if short:
            ax.scatter(*zip(*short), marker="x", s=60, color="black", linewidths=1.6, zorder=5,
                       label="fell short of the offered rate")
    value_axis(ax, values, (lambda v, _: fmt.rate(v)) if metric == "requests_per_s" else None, from_zero=False)
    ax.grid(True, alpha=0.3)
    unit = labels.metric_unit(metric)
    ax.set_ylabel(labels.metric_label(metric) + (f" ({unit})" if unit else "")
                  + (", log scale" if ax.get_yscale() == "log" else ""), fontsize=8)


def blocks_plot(summary: Summary, samples: list[Sample]):
    metric = plotted_metric(summary)
    fig = cell_grid(summary, samples, lambda ax, grouped, *cell: _panel(ax, grouped, *cell, metric),
                    "block (run order)", 2.9)
    shared_legend(fig)
    fig.suptitle(f"{summary.run_id}: {labels.metric_label(metric)} in every block\n"
                 "arms moving together = the machine drifting (pairing cancels it);\n"
                 "a gap that holds = the arm's effect; a lone point = an outlier block", fontsize=9.5)
    return fig
