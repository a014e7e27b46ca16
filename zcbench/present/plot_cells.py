"""Plots with one panel per cell of the matrix (conns × response size × load): the grid, the panels'
titles, and their samples grouped by cell (present.plot_blocks, present.plot_latency).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from zcbench.analyze import runstats
from zcbench.analyze.summary import Summary
from zcbench.core import fmt
from zcbench.core.samples import Sample
from zcbench.present import labels
from zcbench.present.plot_axes import new_figure

MAX_COLUMNS = 3

#: draw(ax, grouped samples, conns, size, load): one cell's panel
DrawPanel = Callable[[object, dict, int, int, "float | None"], None]


def cells_of(summary: Summary) -> list[tuple[int, int, float | None]]:
    """(conns, size, load) of every cell that has a group, sizes outermost (the report's order)."""
    return summary.cells()


def in_cell(key: runstats.GroupKey, conns: int, size: int, load: float | None) -> bool:
    """Whether a group is one of the cell's arms."""
    return (key.conns, key.response_size, key.load) == (conns, size, load)


def cell_title(summary: Summary, conns: int, size: int, load: float | None = None) -> str:
    """'100c · 52K req/s offered': where, and the rate every arm of the cell was offered."""
    offered = {g.offered_rate for g in summary.groups if in_cell(g.key, conns, size, load)} - {None}
    return (labels.where_text(summary, conns, size, load)
            + (f" · {fmt.rate(max(offered))} req/s offered" if offered else ""))


def cell_grid(summary: Summary, samples: list[Sample], draw: DrawPanel, xlabel: str, panel_height: float):
    """A figure with a panel per cell, each drawn by `draw`, x labelled on the bottom row."""
    cells = cells_of(summary)
    columns = min(MAX_COLUMNS, len(cells))
    rows = math.ceil(len(cells) / columns)
    fig = new_figure(max(6.4, 4.0 * columns), 1.4 + panel_height * rows)
    axes = fig.subplots(rows, columns, squeeze=False)
    grouped = runstats.group_samples(samples)
    for i, ax in enumerate(axes.flat):
        if i >= len(cells):
            ax.set_visible(False)
            continue
        draw(ax, grouped, *cells[i])
        ax.set_title(cell_title(summary, *cells[i]), fontsize=9)
        if i + columns >= len(cells):  # nothing below it
            ax.set_xlabel(xlabel, fontsize=8)
    return fig
