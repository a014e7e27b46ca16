"""latency.png: each arm's latency distribution on a percentile axis (p50 to p99.99, spaced by
the nines: each step is ten times rarer), one panel per cell. A line is the median over the
blocks of each block's percentile; its band holds the middle half of the blocks. Every block
counts (latency never leaves a short block out: those are the queue blow-ups).

The tables are the load generator's own (`loadgen_result.percentiles_us`, loadgen/report.lua);
a sample without one gives its headline percentiles. summary.json keeps no distribution, hence
the samples.
"""

from __future__ import annotations

import math

import numpy

from zcbench.analyze.summary import Summary
from zcbench.core import arms
from zcbench.core.samples import Sample
from zcbench.present.plot_axes import log_axis
from zcbench.present.plot_cells import cell_grid

SHOWN = (50.0, 90.0, 99.0, 99.9, 99.99)
LOWEST, HIGHEST = SHOWN[0], SHOWN[-1]


def nines(percentile: float) -> float:
    """Position on the percentile axis: p50 -> 0.3, p90 -> 1, p99 -> 2, p99.9 -> 3."""
    return -math.log10(1 - percentile / 100)


def percentile_table(sample: Sample) -> dict[float, float]:
    """{percentile: latency in µs} from LOWEST to HIGHEST of one sample."""
    table = (sample.loadgen_result or {}).get("percentiles_us")
    if table:
        rows = {float(p): float(v) for p, v in table if v is not None}
    else:
        latency = sample.latency_us
        rows = {50.0: latency.p50, 75.0: latency.p75, 90.0: latency.p90, 99.0: latency.p99,
                99.9: latency.p99_9, 99.99: latency.p99_99}
    return {p: v for p, v in rows.items() if LOWEST <= p <= HIGHEST and v > 0}


def distribution(samples: list[Sample]) -> tuple[list[float], numpy.ndarray] | None:
    """(percentiles every sample has, blocks × percentiles latencies in µs), or None."""
    tables = [t for t in (percentile_table(s) for s in samples) if t]
    if not tables:
        return None
    shared = sorted(set.intersection(*(set(t) for t in tables)))
    if len(shared) < 2:
        return None
    return shared, numpy.array([[t[p] for p in shared] for t in tables])


def _panel(ax, grouped: dict, conns: int, size: int) -> None:
    for key, members in grouped.items():
        if (key.conns, key.response_size) != (conns, size):
            continue
        found = distribution(members)
        if found is None:
            continue
        percentiles, values = found
        x = [nines(p) for p in percentiles]
        low, median, high = (numpy.percentile(values / 1000, q, axis=0) for q in (25, 50, 75))
        color = arms.color(key.arm)
        ax.fill_between(x, low, high, color=color, alpha=0.18, linewidth=0)
        ax.plot(x, median, color=color, marker=arms.marker(key.arm), markersize=3, linewidth=1.5,
                label=f"{key.arm} (median of {len(values)} blocks)")
    log_axis(ax.yaxis)
    ax.set_xticks([nines(p) for p in SHOWN], [f"p{p:g}" for p in SHOWN])
    ax.set_xlim(nines(LOWEST) - 0.1, nines(HIGHEST) + 0.1)
    ax.set_ylabel("latency (ms, log scale)", fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")


def latency_plot(summary: Summary, samples: list[Sample]):
    fig = cell_grid(summary, samples, _panel, "percentile (each step ten times rarer)", 3.0)
    fig.suptitle(f"{summary.run_id}: latency distribution per arm\n"
                 "line = the median over the blocks of each block's percentile; band = the middle half of\n"
                 "the blocks; arms that part only towards p99.99 differ in their tail", fontsize=9.5)
    return fig


def has_distribution(samples: list[Sample]) -> bool:
    return any(percentile_table(s) for s in samples)
