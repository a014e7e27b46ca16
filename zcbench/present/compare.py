"""`invoke compare`'s output: what changed between two runs (analyze.compare computes it), as
Markdown (stdout), as compare.html (the same text as one self-contained page, present.page) and
as JSON (`--json`: zcbench/schemas/compare.schema.json).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from zcbench.analyze import metrics, stats
from zcbench.analyze.compare import CELL_METRICS, agreement
from zcbench.core import fmt, rundir
from zcbench.core.fmt import markdown_table
from zcbench.core.rundir import SAMPLES
from zcbench.core.samples import load_text
from zcbench.present import page

#: The version of `invoke compare --json`'s object (its JSON Schema: compare.schema.json).
COMPARE_SCHEMA = 1


def _plain(value):
    """The compare result's values as JSON values: dataclasses as objects, tuples as lists,
    paths as strings, non-finite numbers as null."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return rundir.finite(value)


def compare_json(result: dict) -> dict:
    """`invoke compare --json`: everything the Markdown shows (whatever analyze.compare put in
    the result), its agreement line, and the schema version."""
    return {"schema": COMPARE_SCHEMA, **_plain(result), "agreement": agreement(result)}


def render_compare_html(result: dict) -> str:
    """compare.html: the Markdown of render_compare as one page that loads nothing."""
    return page.render_page(render_compare(result))


def _short(value) -> str:
    text = fmt.UNKNOWN if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _verdict(change: float | None, verdict: str) -> str:
    if change is None:
        return fmt.MISSING
    if verdict in (stats.BETTER, stats.WORSE):
        return f"**{fmt.delta(change)} {verdict}**"
    return f"{fmt.delta(change)} ({'untested' if verdict == stats.TOO_FEW else verdict})"


def render_package_changes(changes: dict | None) -> list[str]:
    """The "Package versions" section: every differing version of a package that matters, a
    count for the rest, and which runs could not say."""
    if changes is None:
        return []
    lines = ["## Package versions", ""]
    rows = [[c["where"], c["package"], _short(c["a"]), _short(c["b"])] for c in changes["key"] + changes["python"]]
    if rows:
        lines += markdown_table(["Where", "Package", "A", "B"], rows)
    for other in changes["other_images"]:
        names = ", ".join(other["packages"][:8]) + (", ..." if len(other["packages"]) > 8 else "")
        lines.append(f"- {other['where']}: {len(other['packages'])} other Debian package(s) differ ({names})")
    for missing in changes["unrecorded"]:
        lines.append(f"- not recorded in {missing}: versions cannot be compared")
    if not rows and not changes["other_images"] and not changes["unrecorded"]:
        lines.append("The same package versions in both runs (images and Python).")
    lines.append("")
    return lines


def agreement_sentence(agree: dict) -> str:
    """'the runs agree: 10 of 10 ratios within their margins', or why not."""
    n = agree["counts"]
    counts = (f"{n[stats.AGREE]} agree, {n[stats.DIFFER]} differ, {n[stats.INCONCLUSIVE]} inconclusive "
              f"of {agree['ratios']} arm/regular ratios")
    if agree["verdict"] == stats.AGREE:
        return f"the runs agree ({counts})"
    if agree["verdict"] == stats.DIFFER:
        return f"the runs DIFFER ({counts})"
    return f"inconclusive: the runs could not show they agree ({counts})"


def _equivalence_text(change) -> str:
    equivalence = change.ratio.equivalence
    if equivalence is None:
        return f"{change.status} (untested)"
    return (f"{change.status} (±{fmt.percent(equivalence.margin, 0)}: "
            f"{fmt.delta(equivalence.ci[0] - 1)} to {fmt.delta(equivalence.ci[1] - 1)})")


def render_compare(result: dict) -> str:
    a, b = result["a"], result["b"]
    lines = [f"# zcbench compare: A = {a['run_id']} → B = {b['run_id']}", ""]
    for name, run in (("A", a), ("B", b)):
        if not run["complete"]:
            lines.append(f"> ⚠ run {name} is incomplete ({run['samples']} samples)")
    lines += ["", "Ratios (arm / regular, paired by block within each run) are the firmer comparison. "
              "Each ratio's change is judged three ways: **differ** when Welch's t on the two runs' mean "
              "log ratios is significant after Holm over every ratio; **agree** when two one-sided tests "
              f"(TOST, alpha {stats.ALPHA}) put the change within its margin; otherwise **inconclusive**: "
              "the runs could not tell, which is not agreement. Cells, B against A, use Welch's t on the "
              "logs of the repetitions, unadjusted; absolute numbers between runs drift on shared machines.", ""]
    agree = agreement(result)
    if result.get("rerun"):
        lines += [f"**{result['rerun']}**", ""]
    if agree["ratios"]:
        lines += [f"**Agreement**: {agreement_sentence(agree)}", "",
                  "Margins: " + ", ".join(f"{metrics.METRICS[name].label} ±{fmt.percent(margin, 0)}"
                                          for name, margin in agree["margins"].items()
                                          if name in {r.metric for r in result["ratio_changes"]}), ""]
    lines += ["## What changed in the setup", ""]
    changes = [("config", c) for c in result["config_changes"]] + \
              [("environment", c) for c in result["environment_changes"]] + \
              [("measurement", c) for c in result.get("measurement_changes", [])]
    if changes:
        lines += markdown_table(["Kind", "What", "A", "B"],
                        [[kind, c["name"], _short(c["a"]), _short(c["b"])] for kind, c in changes])
    else:
        lines.append("Nothing recorded differs (configuration and environment are the same).")
    lines.append("")
    lines += render_package_changes(result.get("package_changes"))
    if result["ratio_changes"]:
        rows = [[r.arm, _conns(r), fmt.size(r.response_size), metrics.METRICS[r.metric].label,
                 fmt.ratio(r.ratio.before), fmt.ratio(r.ratio.after), _verdict(r.ratio.change, r.ratio.verdict),
                 f"{fmt.pvalue(r.ratio.p)} / {fmt.pvalue(r.p_adjusted)}", _equivalence_text(r)]
                for r in result["ratio_changes"]]
        lines += ["## Arm / regular ratios", "",
                  *markdown_table(["Arm", "Conns", "Size", "Metric", "Ratio A", "Ratio B", "Change", "p / p Holm",
                                   "Same within margin? (90% CI of the change)"], rows), ""]
    if result["cells"]:
        rows = []
        for cell in result["cells"]:
            m = cell.metrics
            rows.append([cell.arm, _conns(cell), fmt.size(cell.response_size),
                         f"{fmt.rate(m['requests_per_s'].before_mean)} → {fmt.rate(m['requests_per_s'].after_mean)}",
                         *(_verdict(m[metric].delta, m[metric].verdict) for metric in CELL_METRICS),
                         f"{','.join(map(str, cell.a_indexes))} / {','.join(map(str, cell.b_indexes))}"])
        lines += ["## Cells, B against A", "",
                  *markdown_table(["Arm", "Conns", "Size", "req/s A → B", "Throughput", "Mean latency", "p99",
                           "CPU/request", "Samples A / B"], rows), ""]
    for name, keys in (("A", result["only_in_a"]), ("B", result["only_in_b"])):
        if keys:
            lines.append(f"Only in {name}: " + ", ".join(
                f"{arm} {conns}c {fmt.size(size)}" + (f" at {load_text(load)}" if load is not None else "")
                for arm, conns, size, load in keys))
    lines += ["", f"Raw samples: `{a['dir']}/{SAMPLES}` and `{b['dir']}/{SAMPLES}`.", ""]
    return "\n".join(lines)


def _conns(row) -> str:
    """The Conns column: the connection count, and the load when the runs have a load axis."""
    return str(row.conns) + (f" at {load_text(row.load)}" if row.load is not None else "")
