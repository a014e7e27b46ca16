"""What every plot of a run shares: figures without pyplot's global state, PNG and inline-SVG
output, and the axes zcbench draws on (ratios and response sizes on log scales, log where
values span more than a decade).
"""

from __future__ import annotations

import io
import math
import re

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from zcbench.core import fmt

DPI = 110
DODGE = 0.06
#: Beyond this max/min a value axis is logarithmic: one slow point would squash the rest.
LOG_SPAN = 10.0

#: The ratio axis shows at most this factor beyond the ratios themselves; a wider interval
#: (two repetitions on a noisy host can give 0.001-480) runs off the axis instead of flattening it.
RATIO_AXIS_REACH = 2.0
RATIO_TICKS = (0.1, 0.2, 0.25, 0.5, 0.67, 0.8, 0.9, 0.95, 0.98, 1.0, 1.02, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0,
               5.0, 10.0)
#: Ticks of a ratio axis stay at least this share of its (log) span apart.
RATIO_TICK_GAP = 1 / 8

#: Matplotlib settings of every saved figure: text stays text in the SVG (small, searchable,
#: the browser's font) and ids are derived from a fixed salt, so a re-render is byte-stable.
SAVE_SETTINGS = {"svg.fonttype": "none", "svg.hashsalt": "zcbench"}


def new_figure(width: float, height: float) -> Figure:
    """A figure of its own (no pyplot: nothing global to close, nothing drawn on a display)."""
    return Figure(figsize=(width, height), layout="constrained")


def shared_legend(fig: Figure, fontsize: float = 8) -> None:
    """One legend under the panels of a grid: every label any panel drew, once."""
    handles: dict = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncol=min(6, len(handles)),
               fontsize=fontsize, frameon=False)


def to_png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    with matplotlib.rc_context(SAVE_SETTINGS):
        fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


_SVG_REFERENCES = re.compile(r'(\bid="|url\(#|href="#)')


def to_svg(fig: Figure, prefix: str) -> str:
    """The figure as an <svg> element to put inside an HTML page: no XML prologue, no date, and
    every id prefixed so that several figures on one page never share one."""
    buffer = io.StringIO()
    with matplotlib.rc_context(SAVE_SETTINGS):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    return _SVG_REFERENCES.sub(lambda m: f"{m.group(1)}{prefix}-", text)


def dodge(index: int, count: int) -> float:
    """A small multiplicative shift on a log axis so series at the same x do not hide each other."""
    return 1 + DODGE * (index - (count - 1) / 2)


def is_wide(values) -> bool:
    """Positive values spanning more than LOG_SPAN (max / min)."""
    positive = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    return len(positive) > 1 and max(positive) / min(positive) > LOG_SPAN


def log_axis(axis) -> None:
    """A logarithmic value axis labelled in plain numbers (2, 5, 10, 20), not powers of ten."""
    (axis.axes.set_xscale if axis is axis.axes.xaxis else axis.axes.set_yscale)("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def value_axis(ax, values, formatter=None, from_zero: bool = True) -> None:
    """y logarithmic when the values span more than a decade (the axis label should say so);
    else linear, from 0 unless `from_zero` is off (a series whose wiggles are the news)."""
    if is_wide(values):
        log_axis(ax.yaxis)
    elif from_zero:
        ax.set_ylim(bottom=0)
    if formatter is not None:
        ax.yaxis.set_major_formatter(FuncFormatter(formatter))


def size_axis(ax, sizes) -> None:
    """Log x axis of response sizes, one slanted label per size (88 B and 512 B sit close)."""
    ax.set_xscale("log")
    ax.set_xticks(sizes)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: fmt.size(int(round(v)))))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis="x", labelrotation=35)
    ax.set_xlabel("response size (log scale)")


def ratio_limits(comparisons) -> tuple[float, float, bool]:
    """Limits covering every ratio, its interval (up to RATIO_AXIS_REACH) and 1.0, and whether
    an interval was cut. `comparisons` have .ratio and .ci."""
    low = min([1.0] + [c.ratio for c in comparisons])
    high = max([1.0] + [c.ratio for c in comparisons])
    ends = [bound for c in comparisons for bound in (c.ci or [])]
    clipped = any(e < low / RATIO_AXIS_REACH or e > high * RATIO_AXIS_REACH for e in ends)
    low = max(min([low] + ends), low / RATIO_AXIS_REACH)
    high = min(max([high] + ends), high * RATIO_AXIS_REACH)
    return low / 1.05, high * 1.05, clipped


def ratio_ticks(low: float, high: float) -> list[float]:
    """Plain ratios between low and high, 1 first, then the nearest to 1 that keep their labels
    apart (a 0.9-1.1 axis gets 0.95 and 1.05, a 0.2-5 one does not)."""
    gap = math.log(high / low) * RATIO_TICK_GAP
    chosen: list[float] = []
    for tick in sorted((t for t in RATIO_TICKS if low <= t <= high), key=lambda t: abs(math.log(t))):
        if all(abs(math.log(tick / other)) >= gap for other in chosen):
            chosen.append(tick)
    return sorted(chosen) or [1.0]


def ratio_axis(axis, low: float, high: float) -> None:
    """A log axis of ratios (x0.5 as far from 1 as x2) from low to high, ticked at plain ratios."""
    scale, limits, ticks = ((axis.axes.set_xscale, axis.axes.set_xlim, axis.axes.set_xticks)
                            if axis is axis.axes.xaxis else
                            (axis.axes.set_yscale, axis.axes.set_ylim, axis.axes.set_yticks))
    scale("log")
    limits(low, high)
    ticks(ratio_ticks(low, high))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())
