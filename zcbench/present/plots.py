"""The run's plots, each drawn once and kept twice: a PNG in plots/ (report.md embeds it) and an
inline SVG (report.html carries it, so the page needs no other file).

    forest.png        every arm/baseline ratio with its interval, per cell and metric, the
                      primary metric first, colour = verdict, the MDE where "no difference"
                      (present.plot_forest)
    blocks.png        the primary metric per block, per cell and arm: drift, outliers, short
                      blocks (present.plot_blocks)
    latency.png       each arm's latency distribution on a percentile axis (present.plot_latency)
    latency_load.png  several loads: p50 / p99 / p99.9 against the offered load per arm, and
                      where each arm's tail blows up (present.plot_latency_load)
    sweep_ratio.png   several response sizes: the throughput ratio against size, with the
                      crossover (present.plot_sweep)

Shared: present.plot_axes (figures, PNG/SVG, ratio and log axes), present.plot_cells (a panel
per cell).

Dropped, and removed when a run is re-rendered: throughput.png (flat by design at equal load,
where zcbench chose the rate), p99.png (one percentile of the distribution latency.png shows
whole) and cpu_per_request.png (absolute values per cell; their arm ratios are in forest.png,
their blocks in blocks.png). Those three also drew one line through cells that ran at different
offered rates, a trend that did not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from zcbench.analyze.summary import Summary
from zcbench.core.atomic import write_atomic
from zcbench.core.samples import Sample
from zcbench.present.plot_axes import to_png, to_svg
from zcbench.present.plot_blocks import blocks_plot, plotted_metric
from zcbench.present.plot_forest import forest_plot
from zcbench.present.plot_latency import has_distribution, latency_plot
from zcbench.present.plot_latency_load import has_curves, latency_load_plot
from zcbench.present.plot_sweep import sweep_ratio_plot


@dataclass(frozen=True)
class Plot:
    """One kind of plot: its file name, when a run has what it needs, how it is drawn."""
    png: str
    applies: Callable[[Summary, list[Sample]], bool]
    draw: Callable[[Summary, list[Sample]], object]


@dataclass(frozen=True)
class DrawnPlot:
    png: str  # file name in plots/
    svg: str  # the same figure as an <svg> element


PLOTS = (
    Plot("forest.png", lambda summary, samples: bool(summary.comparisons),
         lambda summary, samples: forest_plot(summary)),
    Plot("blocks.png", lambda summary, samples: plotted_metric(summary) is not None,
         lambda summary, samples: blocks_plot(summary, samples)),
    Plot("latency.png", lambda summary, samples: has_distribution(samples),
         lambda summary, samples: latency_plot(summary, samples)),
    Plot("latency_load.png", lambda summary, samples: has_curves(summary),
         lambda summary, samples: latency_load_plot(summary)),
    Plot("sweep_ratio.png", lambda summary, samples: len(summary.response_sizes) > 1 and bool(summary.comparisons),
         lambda summary, samples: sweep_ratio_plot(summary)),
)
#: Plots earlier versions drew: a re-render removes them (see the module docstring for why).
DROPPED = ("throughput.png", "p99.png", "cpu_per_request.png")


def render_plots(summary: Summary, samples: list[Sample], plots_dir: Path) -> list[DrawnPlot]:
    """Draw every plot the run supports; each as plots_dir/NAME.png and as SVG text."""
    plots_dir = Path(plots_dir)
    drawn: list[DrawnPlot] = []
    if summary.groups:
        for plot in PLOTS:
            if not plot.applies(summary, samples):
                continue
            fig = plot.draw(summary, samples)
            write_atomic(plots_dir / plot.png, to_png(fig))
            drawn.append(DrawnPlot(plot.png, to_svg(fig, Path(plot.png).stem)))
    # A re-render must not leave a plot of ours that the run no longer supports.
    kept = {plot.png for plot in drawn}
    for name in (*(plot.png for plot in PLOTS), *DROPPED):
        if name not in kept:
            (plots_dir / name).unlink(missing_ok=True)
    return drawn
