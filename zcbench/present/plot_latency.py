"""latency.png: each arm's latency distribution on a percentile axis (p50 to p99.99, spaced by
the nines: each step is ten times rarer), one panel per cell. A line is the cell's pooled
distribution (its blocks' tables merged, each block weighted by its requests: analyze.latency);
its band is the 95% block-bootstrap interval. Every block counts (latency never leaves a short
block out: those are the queue blow-ups).

The tables are the load generator's own (`loadgen_result.percentiles_us`, loadgen/report.lua);
a sample without one gives its headline percentiles. summary.json keeps the pooled distribution
at the five shown percentiles (`latency_distributions`); the line here follows every percentile
of the tables between them.
"""

from __future__ import annotations

import math

from zcbench.analyze import latency
from zcbench.analyze.summary import Summary
from zcbench.core import arms
from zcbench.core.samples import Sample
from zcbench.present.plot_axes import log_axis
from zcbench.present.plot_cells import cell_grid, in_cell

SHOWN = latency.SHOWN
LOWEST, HIGHEST = SHOWN[0], SHOWN[-1]
#: The line's points: the load generator's table between p50 and p99.99 (loadgen/report.lua).
DRAWN = (50, 60, 70, 75, 80, 85, 90, 95, 96, 97, 98, 99, 99.5, 99.9, 99.95, 99.99)
#: Fewer draws than summary.json's: the band only has to be seen.
PLOT_DRAWS = 400


def nines(percentile: float) -> float:
    """Position on the percentile axis: p50 -> 0.3, p90 -> 1, p99 -> 2, p99.9 -> 3."""
    return -math.log10(1 - percentile / 100)


def _panel(ax, grouped: dict, conns: int, size: int, load: float | None) -> None:
    for key, members in grouped.items():
        if not in_cell(key, conns, size, load):
            continue
        found = latency.distribution(members, DRAWN, draws=PLOT_DRAWS)
        if found is None:
            continue
        x = [nines(p) for p in DRAWN]
        color = arms.color(key.arm)
        ax.fill_between(x, [found.intervals[p][0] / 1000 for p in DRAWN],
                        [found.intervals[p][1] / 1000 for p in DRAWN], color=color, alpha=0.18, linewidth=0)
        ax.plot(x, [found.percentiles[p] / 1000 for p in DRAWN], color=color, linewidth=1.5,
                label=f"{key.arm} ({found.blocks} blocks pooled)")
        ax.plot([nines(p) for p in SHOWN], [found.percentiles[p] / 1000 for p in SHOWN], linestyle="none",
                color=color, marker=arms.marker(key.arm), markersize=3.5)
    log_axis(ax.yaxis)
    ax.set_xticks([nines(p) for p in SHOWN], [f"p{p:g}" for p in SHOWN])
    ax.set_xlim(nines(LOWEST) - 0.1, nines(HIGHEST) + 0.1)
    ax.set_ylabel("latency (ms, log scale)", fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")


def latency_plot(summary: Summary, samples: list[Sample]):
    fig = cell_grid(summary, samples, _panel, "percentile (each step ten times rarer)", 3.0)
    fig.suptitle(f"{summary.run_id}: latency distribution per arm\n"
                 "line = every block's requests pooled; band = 95% block-bootstrap interval;\n"
                 "arms that part only towards p99.99 differ in their tail", fontsize=9.5)
    return fig


def has_distribution(samples: list[Sample]) -> bool:
    return any(latency.sample_table(s) for s in samples)
