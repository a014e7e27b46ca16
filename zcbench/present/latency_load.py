"""report.md's "Latency against load" section (a run with several loads, `--rate 30%,70%`): per
cell, each arm's p50 / p99 / p99.9 at every load with its interval, the arm's p99 against
regular at each load (paired by block, with its MDE), and the load at which each arm's tail
blows up. The numbers are summary.json's `latency_against_load` (analyze.latency).
"""

from __future__ import annotations

from zcbench.analyze import latency
from zcbench.analyze.summary import Summary
from zcbench.core import arms, fmt
from zcbench.core.fmt import markdown_table
from zcbench.core.samples import LATENCY_HEADROOM_SHARE, load_text
from zcbench.present.labels import delta_label, where_text

TITLE = "Latency against load"
NO_HEADROOM_MARK = "‡"
NO_HEADROOM_NOTE = (f"{NO_HEADROOM_MARK} wrk was at least {LATENCY_HEADROOM_SHARE:.0%} busy in a block at this load: "
                    "its own queue is in these latencies (after a burst of responses it reads them late). "
                    "`invoke calibrate`'s latency check found such cells off by up to 4x on a 2-vCPU host; "
                    "read their tails as an upper bound.")
VERDICT_METRIC = "latency_p99_us"


def milliseconds(us: float) -> str:
    """'2.14', '0.412', '151': milliseconds to three significant digits."""
    ms = us / 1000
    return f"{ms:.3g}" if ms < 1000 else f"{ms:.0f}"


def latency_text(point: latency.LoadPoint, percentile: float) -> str:
    """'2.14 [1.92–2.40]': a pooled percentile (ms) with its block-bootstrap interval."""
    value, (low, high) = point.percentiles_us[percentile], point.intervals_us[percentile]
    return f"{milliseconds(value)} [{milliseconds(low)}–{milliseconds(high)}]"


def knee_text(knee: latency.Knee | None, highest: float) -> str:
    """'at 78% load [72–85%]', 'not reached up to 90% (in 3% of the bootstrap draws)'."""
    if knee is None:
        return fmt.MISSING
    if knee.load is None:
        return (f"not reached up to {load_text(highest)} load (reached in {fmt.percent(knee.reached_share)} of the "
                "bootstrap draws)")
    low, high = knee.interval
    span = (f"{load_text(round(low, 3))}–{load_text(round(high, 3))}" if high is not None
            else f"{load_text(round(low, 3))} to beyond {load_text(highest)}")
    return f"at {load_text(round(knee.load, 3))} load [{span}]"


def cell_lines(summary: Summary, curves: list[latency.LoadCurve]) -> list[str]:
    """One cell's table (a row per load) and its knees."""
    first = curves[0]
    loads = [point.load for point in first.points]
    judged = [c.arm for c in curves if summary.comparison(c.arm, c.conns, c.response_size, loads[0]) is not None]
    header = ["Load", "Offered"]
    for curve in curves:
        header += [f"{curve.arm} p50 (ms)", f"{curve.arm} p99", f"{curve.arm} p99.9"]
    header += [f"{arm} p99 vs {summary.comparison(arm, first.conns, first.response_size, loads[0]).baseline_arm}"
               for arm in judged]
    rows = []
    for i, load in enumerate(loads):
        busy = [g.loadgen_cpu_share_max for c in curves
                if (g := summary.group(c.arm, c.conns, c.response_size, load)) and g.loadgen_cpu_share_max is not None]
        mark = f" {NO_HEADROOM_MARK}" if busy and max(busy) >= LATENCY_HEADROOM_SHARE else ""
        row = [load_text(load) + mark, fmt.rate(first.points[i].offered_rate)]
        for curve in curves:
            point = curve.points[i]
            row += [latency_text(point, p) for p in latency.CURVE_PERCENTILES]
        for arm in judged:
            comparison = summary.comparison(arm, first.conns, first.response_size, load)
            row.append(delta_label(comparison.metrics.get(VERDICT_METRIC)) if comparison else fmt.MISSING)
        rows.append(row)
    where = where_text(summary, first.conns, first.response_size)
    knees = [f"- **{curve.arm}**: p99 above {curve.knee.factor:g}× its value at {load_text(loads[0])} "
             f"({milliseconds(curve.knee.threshold_us)} ms): {knee_text(curve.knee, loads[-1])}"
             for curve in curves if curve.knee is not None]
    marked = any(NO_HEADROOM_MARK in row[0] for row in rows)
    return [f"### {where}", "", *markdown_table(header, rows), "",
            *([NO_HEADROOM_NOTE, ""] if marked else []),
            f"Where the tail blows up (p99 over {first.knee.factor:g}× its lowest-load value; linear in log "
            "latency between the loads measured; 95% block-bootstrap interval):" if first.knee else "",
            *knees, ""]


def latency_load_lines(summary: Summary) -> list[str]:
    """The section, or nothing for a run with one load."""
    if not summary.latency_curves:
        return []
    by_cell: dict[tuple, list[latency.LoadCurve]] = {}
    for curve in summary.latency_curves:
        by_cell.setdefault((curve.server == arms.ZCBENCH, curve.response_size, curve.conns), []).append(curve)
    lines = [f"## {TITLE}", "",
             "Every arm of a cell was offered the same rate at each load: a share of the slower arm's "
             "saturated rate, measured by the rate pilot. Latency is pooled over every block at that load "
             "(short blocks included: they are the queue blowing up), each block weighted by its requests, "
             "with a 95% interval from resampling whole blocks; milliseconds. The arm's p99 against its baseline is the "
             "paired per-block comparison at that load (Holm within the secondary family), its MDE beside "
             "it. `latency_load.png` draws the same numbers.", ""]
    for key in sorted(by_cell, key=lambda k: (not k[0], k[1], k[2])):
        curves = sorted(by_cell[key], key=lambda c: (arms.order(c.arm), c.arm))
        lines += cell_lines(summary, curves)
    return lines
