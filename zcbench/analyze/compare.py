"""What changed between two runs (`invoke compare RUN_A RUN_B`), per cell, with verdicts.

Both runs are re-summarized from their stored samples (never from a possibly stale
summary.json). Two kinds of change are reported:

- the arm/regular ratios of each run (measured side by side, interleaved, within one run):
  the trustworthy comparison across runs, tested with stats.ratio_change;
- each cell's absolute numbers, run B against run A (stats.compare_unpaired: Welch on the
  logs of the repetitions): on shared machines these drift by tens of percent between runs, so read them
  together with what changed in the configuration and the environment, listed first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zcbench.core import fmt
from zcbench.measure import images
from zcbench.analyze import stats
from zcbench.core.fmt import markdown_table
from zcbench.present.report import SAMPLES, load_manifest, manifest_fact, resolve_run_dir
from zcbench.core.samples import Sample, load_samples

#: Absolute metrics compared cell by cell between the runs.
CELL_METRICS = ("requests_per_s", "latency_mean_us", "latency_p99_us", "cpu_us_per_request")
#: Config keys that describe where the output went, not what was measured.
IGNORED_CONFIG = ("out", "label", "quiet")
#: Environment facts whose change can explain a change in the numbers: (title, places recorded).
ENVIRONMENT_FACTS = (
    ("git commit", ("git.commit",)),
    ("git dirty", ("git.dirty",)),
    ("kernel", ("host.kernel_release",)),
    ("kernel cmdline", ("host.kernel_cmdline",)),
    ("CPU model", ("host.cpu_model",)),
    ("CPU count", ("host.cpu_count",)),
    ("isolated CPUs", ("host.isolated_cpus",)),
    ("governor", ("host.governors",)),
    ("server container", ("privilege.mode",)),
    ("network path", ("path.kind", "config.path")),
    ("interface", ("host.interface",)),
    ("docker", ("docker.engine_version",)),
    ("images", ("images",)),
)


def config_changes(manifest_a: dict, manifest_b: dict) -> list[dict]:
    config_a, config_b = manifest_a.get("config") or {}, manifest_b.get("config") or {}
    keys = sorted((set(config_a) | set(config_b)) - set(IGNORED_CONFIG))
    return [{"name": key, "a": config_a.get(key), "b": config_b.get(key)}
            for key in keys if config_a.get(key) != config_b.get(key)]


def environment_changes(manifest_a: dict, manifest_b: dict) -> list[dict]:
    changes = []
    for title, places in ENVIRONMENT_FACTS:
        a, b = manifest_fact(manifest_a, *places), manifest_fact(manifest_b, *places)
        if a != b and not (a is None and b is None):
            changes.append({"name": title, "a": a, "b": b})
    return changes


def _image_packages(run_dir: Path, manifest: dict) -> dict[str, dict[str, str]] | None:
    """Image -> {package: version} of a run: its copied lists, else the key packages its
    manifest names; None when the run recorded neither (made before zcbench kept them)."""
    lists = images.run_package_lists(run_dir)
    if lists:
        return lists
    recorded = {name: entry["key_packages"] for name, entry in (manifest.get("image_contents") or {}).items()
                if entry.get("key_packages")}
    return recorded or None


def _version_rows(where: str, a: dict[str, str], b: dict[str, str], names) -> list[dict]:
    return [{"where": where, "package": name, "a": a.get(name), "b": b.get(name)}
            for name in names if a.get(name) != b.get(name)]


def package_changes(dir_a: Path, manifest_a: dict, dir_b: Path, manifest_b: dict) -> dict:
    """Which package versions differ between the runs: the key ones of each image (wrk, nginx,
    libc, kernel headers, liburing, gcc) one by one, the image's others as a count, and the
    Python packages zcbench ran with. `unrecorded` names the runs that kept no such record."""
    result: dict = {"key": [], "other_images": [], "python": [], "unrecorded": []}
    lists_a, lists_b = _image_packages(dir_a, manifest_a), _image_packages(dir_b, manifest_b)
    for run, lists in (("A", lists_a), ("B", lists_b)):
        if lists is None:
            result["unrecorded"].append(f"run {run}: image package lists")
    for name in sorted(set(lists_a or {}) & set(lists_b or {})):
        a, b = lists_a[name], lists_b[name]
        result["key"] += _version_rows(f"image {name}", a, b, [p for p in images.KEY_PACKAGES if p in a or p in b])
        others = sorted(p for p in set(a) | set(b) if p not in images.KEY_PACKAGES and a.get(p) != b.get(p))
        if others:
            result["other_images"].append({"where": f"image {name}", "packages": others})
    python_a = (manifest_a.get("python_packages") or {}).get("packages")
    python_b = (manifest_b.get("python_packages") or {}).get("packages")
    for run, packages in (("A", python_a), ("B", python_b)):
        if packages is None:
            result["unrecorded"].append(f"run {run}: Python packages")
    if python_a is not None and python_b is not None:
        result["python"] = _version_rows("Python", python_a, python_b, sorted(set(python_a) | set(python_b)))
    return result


@dataclass
class CellChange:
    """One cell present in both runs: each of CELL_METRICS, B against A."""
    server: str
    arm: str
    conns: int
    response_size: int
    a_indexes: list[int]
    b_indexes: list[int]
    metrics: dict[str, stats.UnpairedComparison]


def cell_changes(samples_a: list[Sample], samples_b: list[Sample]) -> list[CellChange]:
    """Per cell present in both runs: each metric of B against A, with its verdict."""
    groups_a, groups_b = stats.group_samples(samples_a), stats.group_samples(samples_b)
    cells = []
    for key in (k for k in groups_a if k in groups_b):
        server, arm, conns, size = key
        cells.append(CellChange(
            server=server, arm=arm, conns=conns, response_size=size,
            a_indexes=[s.cell.index for s in groups_a[key]],
            b_indexes=[s.cell.index for s in groups_b[key]],
            metrics={metric: stats.compare_unpaired(stats.metric_values(groups_a[key], metric),
                                                    stats.metric_values(groups_b[key], metric), metric)
                     for metric in CELL_METRICS},
        ))
    return cells


@dataclass
class ArmRatioChange:
    """One metric of one arm/regular comparison in both runs: did its ratio move?"""
    arm: str
    conns: int
    response_size: int
    metric: str
    ratio: stats.RatioChange
    p_adjusted: float | None = None  # Holm over every ratio change tested (None: untested)


def ratio_changes(summary_a: stats.RunStats, summary_b: stats.RunStats) -> list[ArmRatioChange]:
    """Per arm/regular comparison and metric present in both runs: did the ratio move?

    The changes are one family: Holm-adjusted, and a change counts only when significant after
    the adjustment (so a rerun of many cells does not "disagree" by chance)."""
    changes = []
    for comparison in summary_a.comparisons:
        arm, conns, size = comparison.arm, comparison.conns, comparison.response_size
        other = summary_b.comparison(arm, conns, size)
        if other is None:
            continue
        for metric in [m for m in comparison.metrics if m in other.metrics]:
            higher_is_better = stats.METRICS[metric].higher_is_better
            changes.append(ArmRatioChange(arm, conns, size, metric, stats.ratio_change(
                comparison.metrics[metric], other.metrics[metric], higher_is_better)))
    tested = [c for c in changes if c.ratio.p is not None]
    for change, p_adjusted in zip(tested, stats.holm_adjust([c.ratio.p for c in tested])):
        change.p_adjusted = p_adjusted
        if p_adjusted >= stats.ALPHA:
            change.ratio.verdict = stats.NO_DIFFERENCE
    return changes


def agreement(result: dict) -> dict:
    """Do the two runs agree? Every arm/regular ratio within the other run's, after Holm."""
    tested = [c for c in result["ratio_changes"] if c.p_adjusted is not None]
    moved = [c for c in tested if c.ratio.verdict in (stats.BETTER, stats.WORSE)]
    return {"ratios_tested": len(tested), "ratios_moved": len(moved), "agree": bool(tested) and not moved}


def rerun_relation(manifest_a: dict, manifest_b: dict, dir_a: Path) -> str | None:
    """'B reruns A ...' when B was made with `invoke bench --from A/manifest.json`."""
    extra = (manifest_b.get("config") or {}).get("extra") or {}
    if not extra.get("rerun_of") or Path(extra["rerun_of"]).resolve() != dir_a.resolve():
        return None
    order_a = (manifest_a.get("plan") or {}).get("order") or []
    order_b = (manifest_b.get("plan") or {}).get("order") or []
    same = bool(order_a) and order_a == order_b
    overrides = ", ".join(extra.get("rerun_overrides") or []) or "none"
    return (f"B reruns A (`invoke bench --from`): same seed and cell order: {'yes' if same else 'NO'}; "
            f"options overridden: {overrides}")


WHOLE_DURATION = "wrk's whole duration (zcbench before paced windows)"
PACED_WINDOW = "the paced window (connecting left out)"


def _achieved_over(samples: list[Sample]) -> str | None:
    paced = [s for s in samples if s.offered_rate]
    if not paced:
        return None
    return PACED_WINDOW if all(s.paced_window_s is not None for s in paced) else WHOLE_DURATION


def measurement_changes(samples_a: list[Sample], samples_b: list[Sample]) -> list[dict]:
    """How the two runs measured what they share, where zcbench changed it: a paced run from
    before paced windows judged its achieved rate (and throughput) over wrk's whole duration, so
    its throughput at many connections reads a few percent low against a newer run's."""
    a, b = _achieved_over(samples_a), _achieved_over(samples_b)
    if a and b and a != b:
        return [{"name": "achieved rate and paced throughput over", "a": a, "b": b}]
    return []


def _cell_keys(summary: stats.RunStats) -> set[tuple]:
    return {(g.arm, g.conns, g.response_size) for g in summary.groups}


def compare_runs(run_a: str | Path, run_b: str | Path) -> dict:
    dir_a, dir_b = resolve_run_dir(run_a), resolve_run_dir(run_b)
    manifest_a, manifest_b = load_manifest(dir_a), load_manifest(dir_b)
    samples_a, samples_b = load_samples(dir_a / SAMPLES), load_samples(dir_b / SAMPLES)
    summary_a, summary_b = stats.summarize(samples_a), stats.summarize(samples_b)
    keys_a, keys_b = _cell_keys(summary_a), _cell_keys(summary_b)
    return {
        "a": {"dir": str(dir_a), "run_id": manifest_a.get("run_id", dir_a.name),
              "complete": manifest_a.get("complete"), "samples": len(samples_a)},
        "b": {"dir": str(dir_b), "run_id": manifest_b.get("run_id", dir_b.name),
              "complete": manifest_b.get("complete"), "samples": len(samples_b)},
        "config_changes": config_changes(manifest_a, manifest_b),
        "environment_changes": environment_changes(manifest_a, manifest_b),
        "measurement_changes": measurement_changes(samples_a, samples_b),
        "package_changes": package_changes(dir_a, manifest_a, dir_b, manifest_b),
        "ratio_changes": ratio_changes(summary_a, summary_b),
        "rerun": rerun_relation(manifest_a, manifest_b, dir_a),
        "cells": cell_changes(samples_a, samples_b),
        "only_in_a": sorted(keys_a - keys_b),
        "only_in_b": sorted(keys_b - keys_a),
    }


# --- rendering -------------------------------------------------------------------------------


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


def render_compare(result: dict) -> str:
    a, b = result["a"], result["b"]
    lines = [f"# zcbench compare: A = {a['run_id']} → B = {b['run_id']}", ""]
    for name, run in (("A", a), ("B", b)):
        if not run["complete"]:
            lines.append(f"> ⚠ run {name} is incomplete ({run['samples']} samples)")
    lines += ["", "Ratios (arm / regular, paired by block within each run) are the firmer comparison: "
              "a ratio's change is tested with Welch's t on the two runs' mean log ratios. Cells, B "
              "against A, use Welch's t on the logs of the repetitions; absolute numbers between runs "
              f"drift on shared machines. Ratio changes are Holm-adjusted as one family; cells are unadjusted "
              f"(p < {stats.ALPHA}).", ""]
    agree = agreement(result)
    if result.get("rerun"):
        lines += [f"**{result['rerun']}**", ""]
    if agree["ratios_tested"]:
        lines += [f"**Agreement**: {'the runs agree' if agree['agree'] else 'the runs DISAGREE'} — "
                  f"{agree['ratios_moved']} of {agree['ratios_tested']} arm/regular ratios moved beyond "
                  "their intervals (Holm-adjusted).", ""]
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
        rows = [[r.arm, str(r.conns), fmt.size(r.response_size), stats.METRICS[r.metric].label,
                 fmt.ratio(r.ratio.before), fmt.ratio(r.ratio.after), _verdict(r.ratio.change, r.ratio.verdict),
                 f"{fmt.pvalue(r.ratio.p)} / {fmt.pvalue(r.p_adjusted)}"] for r in result["ratio_changes"]]
        lines += ["## Arm / regular ratios", "",
                  *markdown_table(["Arm", "Conns", "Size", "Metric", "Ratio A", "Ratio B", "Change", "p / p Holm"], rows), ""]
    if result["cells"]:
        rows = []
        for cell in result["cells"]:
            m = cell.metrics
            rows.append([cell.arm, str(cell.conns), fmt.size(cell.response_size),
                         f"{fmt.rate(m['requests_per_s'].before_mean)} → {fmt.rate(m['requests_per_s'].after_mean)}",
                         *(_verdict(m[metric].delta, m[metric].verdict) for metric in CELL_METRICS),
                         f"{','.join(map(str, cell.a_indexes))} / {','.join(map(str, cell.b_indexes))}"])
        lines += ["## Cells, B against A", "",
                  *markdown_table(["Arm", "Conns", "Size", "req/s A → B", "Throughput", "Mean latency", "p99",
                           "CPU/request", "Samples A / B"], rows), ""]
    for name, keys in (("A", result["only_in_a"]), ("B", result["only_in_b"])):
        if keys:
            lines.append(f"Only in {name}: " + ", ".join(f"{arm} {conns}c {fmt.size(size)}"
                                                        for arm, conns, size in keys))
    lines += ["", f"Raw samples: `{a['dir']}/{SAMPLES}` and `{b['dir']}/{SAMPLES}`.", ""]
    return "\n".join(lines)
