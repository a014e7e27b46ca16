"""forest.png: every arm/baseline ratio of a run with its interval, one row per cell, grouped
by metric with the primary metric first. A row's colour is its verdict; where the verdict is
"no difference" a grey band shows the smallest change the run could have seen (its MDE), so a
reader sees at once whether "no difference" means "the same" or "could not tell".
"""

from __future__ import annotations

from dataclasses import dataclass

from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from zcbench.analyze import stats
from zcbench.analyze.stats import PairedComparison
from zcbench.analyze.summary import Summary
from zcbench.core import arms, fmt
from zcbench.present import labels
from zcbench.present.plot_axes import new_figure, ratio_axis, ratio_limits

ROW_INCHES = 0.3
BAND_COLOR = "#e3e3e3"


@dataclass(frozen=True)
class Row:
    """One line of the forest: a metric's section header (comparison None) or one ratio."""
    label: str
    comparison: PairedComparison | None = None


def _mde_band(c: PairedComparison) -> tuple[float, float] | None:
    """The ratios a 'no difference' could not tell from 1: 1 / (1 + MDE) to 1 + MDE."""
    if c.verdict != stats.NO_DIFFERENCE or not c.mde or c.mde > labels.MDE_SHOWN_MAX:
        return None
    return 1 / (1 + c.mde), 1 + c.mde


def forest_rows(summary: Summary) -> list[Row]:
    """A header per shown metric (primary first), then its ratio in every cell."""
    several_arms = len({c.arm for c in summary.comparisons}) > 1
    ordered = sorted(summary.comparisons, key=lambda c: (c.response_size, c.conns, -1 if c.load is None else c.load,
                                                          arms.order(c.arm), c.arm))
    rows = []
    for metric in labels.shown_metrics(summary):
        rows.append(Row(labels.metric_label(metric)))
        for comparison in ordered:
            c = comparison.metrics.get(metric)
            if c is None:
                continue
            where = labels.where_text(summary, comparison.conns, comparison.response_size, comparison.load)
            rows.append(Row(f"{comparison.arm} · {where}" if several_arms else where, c))
    return rows


def _row_text(c: PairedComparison) -> str:
    """'+13% worse · worse in 27/30' beside the row; a row without a ratio says why."""
    word = labels.verdict_word(c.verdict)
    text = f"{fmt.delta(c.delta)} {word}" if c.delta is not None else word
    went = labels.blocks_went(c)
    if went:
        text += f" · {went[0]} in {went[1]}/{went[2]}"
    return text


def _draw_row(ax, y: int, row: Row, low: float, high: float) -> None:
    c = row.comparison
    color = labels.verdict_color(c.verdict)
    ax.text(1.01, y, _row_text(c), transform=blended_transform_factory(ax.transAxes, ax.transData),
            va="center", ha="left", fontsize=8, color=color)
    if c.ratio is None:  # e.g. a cell whose rate was not sustained: its words only
        return
    band = _mde_band(c)
    if band:
        ax.barh(y, band[1] - band[0], left=band[0], height=0.6, color=BAND_COLOR, zorder=1)
    if c.ci:
        lo, hi = max(c.ci[0], low), min(c.ci[1], high)
        ax.hlines(y, lo, hi, color=color, linewidth=2.2, zorder=2)
        for end, edge, marker in ((c.ci[0], low, "<"), (c.ci[1], high, ">")):
            if (end < edge) if marker == "<" else (end > edge):  # the interval runs off the axis
                ax.plot([edge], [y], marker=marker, color=color, markersize=6, zorder=3)
    significant = c.verdict in (stats.BETTER, stats.WORSE)
    ax.plot([min(max(c.ratio, low), high)], [y], marker="o", markersize=7, color=color, zorder=4,
            markerfacecolor=color if significant else "white", markeredgewidth=1.6)


def _legend_handles() -> list:
    def dot(verdict: str, filled: bool) -> Line2D:
        color = labels.verdict_color(verdict)
        return Line2D([], [], marker="o", color=color, markerfacecolor=color if filled else "white",
                      linewidth=2.2, label=verdict)
    return [dot(stats.WORSE, True), dot(stats.BETTER, True), dot(stats.NO_DIFFERENCE, False),
            Patch(color=BAND_COLOR, label="MDE: changes smaller than this could not be seen")]


def forest_plot(summary: Summary):
    rows = forest_rows(summary)
    compared = [r.comparison for r in rows if r.comparison is not None and r.comparison.ratio is not None]
    bands = [b for c in compared if (b := _mde_band(c))]
    low, high, _ = ratio_limits(compared)
    low, high = min([low] + [b[0] for b in bands]), max([high] + [b[1] for b in bands])
    fig = new_figure(10.0, 1.9 + ROW_INCHES * len(rows))
    ax = fig.subplots()
    for y, row in enumerate(rows):
        if row.comparison is not None:
            _draw_row(ax, y, row, low, high)
    ax.axvline(1.0, color="black", linewidth=1, linestyle="--", zorder=1)
    ratio_axis(ax.xaxis, low, high)
    ax.set_yticks(range(len(rows)), [r.label for r in rows])
    for tick, row in zip(ax.get_yticklabels(), rows):
        if row.comparison is None:
            tick.set_fontweight("bold")
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the first row on top
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_xlabel("ratio arm / regular (geometric mean of the per-block ratios; log scale; 1 = the same)")
    fig.legend(handles=_legend_handles(), loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f"{summary.run_id}: each arm against regular, cell by cell (primary metric first)\n"
                 "dot = ratio; bar = its interval at the Holm-adjusted level (it excludes 1 exactly when the verdict\n"
                 "is significant); colour = the verdict; right: the verdict and how many blocks went its way",
                 fontsize=9.5)
    return fig
