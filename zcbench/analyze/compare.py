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

from dataclasses import dataclass, replace
from pathlib import Path

from zcbench.analyze import metrics, runstats, stats
from zcbench.analyze.metrics import COMPARED_METRICS
from zcbench.core import rundir
from zcbench.core.rundir import KEY_PACKAGES, manifest_fact
from zcbench.core.samples import Sample

#: Absolute metrics compared cell by cell between the runs: those an arm is judged on.
CELL_METRICS = COMPARED_METRICS
#: How far an arm/baseline ratio may move between two runs and still "agree" (TOST margins): what
#: a user would call the same answer (3 % of CPU is about the smallest cost worth a verdict, the
#: tail's noise is tens of percent). They are not a measured spread: on the 2-vCPU VM two default
#: runs' 90 % intervals of a CPU ratio's change are ±3–5 % wide, so most such reruns come out
#: "inconclusive" at these margins rather than "agree" (docs/statistics.md). --margin-* changes them.
MARGINS = {"cpu_us_per_request": 0.03, "cpu_per_loadgen_cpu": 0.03, "loadgen_cpu_us_per_request": 0.03,
           "requests_per_s": 0.03, "latency_mean_us": 0.10, "latency_p99_us": 0.25}
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
    lists = rundir.read_package_lists(run_dir)
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
        result["key"] += _version_rows(f"image {name}", a, b, [p for p in KEY_PACKAGES if p in a or p in b])
        others = sorted(p for p in set(a) | set(b) if p not in KEY_PACKAGES and a.get(p) != b.get(p))
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
    load: float | None
    a_indexes: list[int]
    b_indexes: list[int]
    metrics: dict[str, stats.UnpairedComparison]


def cell_changes(samples_a: list[Sample], samples_b: list[Sample]) -> list[CellChange]:
    """Per cell present in both runs: each metric of B against A, with its verdict."""
    groups_a, groups_b = runstats.group_samples(samples_a), runstats.group_samples(samples_b)
    cells = []
    for key in (k for k in groups_a if k in groups_b):
        cells.append(CellChange(
            **key._asdict(),
            a_indexes=[s.cell.index for s in groups_a[key]],
            b_indexes=[s.cell.index for s in groups_b[key]],
            metrics={metric: runstats.compare_unpaired(metrics.metric_values(groups_a[key], metric),
                                                    metrics.metric_values(groups_b[key], metric), metric)
                     for metric in CELL_METRICS},
        ))
    return cells


@dataclass
class ArmRatioChange:
    """One metric of one arm/regular comparison in both runs: did its ratio move?"""
    arm: str
    conns: int
    response_size: int
    load: float | None
    metric: str
    ratio: stats.RatioChange
    p_adjusted: float | None = None  # Holm over every ratio change tested (None: untested)
    status: str = stats.INCONCLUSIVE  # agree / differ / inconclusive (ratio_changes)


def ratio_changes(summary_a: runstats.RunStats, summary_b: runstats.RunStats,
                  margins: dict[str, float] | None = None) -> list[ArmRatioChange]:
    """Per arm/regular comparison and metric present in both runs: did the ratio move, and is
    it the same within the metric's margin?

    A change is "differ" when Welch's test of it is significant after Holm over every change
    (so a rerun of many cells does not differ by chance); "agree" when the two one-sided tests
    put it within its margin (TOST at alpha: the 90 % interval inside +-margin; no adjustment is
    needed for "every ratio agrees", which holds only if each does); otherwise "inconclusive":
    the runs could not tell, which is not agreement."""
    margins = MARGINS | (margins or {})
    changes = []
    for comparison in summary_a.comparisons:
        arm, conns, size, load = comparison.key.where
        other = summary_b.comparison(arm, conns, size, load)
        if other is None:
            continue
        for metric in [m for m in comparison.metrics if m in other.metrics]:
            higher_is_better = metrics.METRICS[metric].higher_is_better
            changes.append(ArmRatioChange(arm, conns, size, load, metric, stats.ratio_change(
                comparison.metrics[metric], other.metrics[metric], higher_is_better, margins.get(metric))))
    tested = [c for c in changes if c.ratio.p is not None]
    for change, p_adjusted in zip(tested, stats.holm_adjust([c.ratio.p for c in tested])):
        change.p_adjusted = p_adjusted
        if p_adjusted >= stats.ALPHA:
            change.ratio.verdict = stats.NO_DIFFERENCE
    for change in changes:
        change.status = _status(change)
    return changes


def _status(change: ArmRatioChange) -> str:
    if change.ratio.verdict in (stats.BETTER, stats.WORSE):
        return stats.DIFFER
    equivalence = change.ratio.equivalence
    return stats.AGREE if equivalence is not None and equivalence.equivalent else stats.INCONCLUSIVE


def agreement(result: dict) -> dict:
    """Do the two runs agree? Only when every arm/baseline ratio agrees within its margin; they
    differ when any ratio moved (Holm); otherwise the runs could not tell."""
    changes = result["ratio_changes"]
    counts = {status: sum(c.status == status for c in changes)
              for status in (stats.AGREE, stats.DIFFER, stats.INCONCLUSIVE)}
    verdict = (stats.DIFFER if counts[stats.DIFFER] else stats.AGREE if changes and counts[stats.AGREE] == len(changes)
               else stats.INCONCLUSIVE)
    tested = [c for c in changes if c.p_adjusted is not None]
    return {"verdict": verdict, "ratios": len(changes), "counts": counts, "ratios_tested": len(tested),
            "ratios_moved": counts[stats.DIFFER], "agree": verdict == stats.AGREE,
            "margins": result.get("margins", MARGINS)}


#: what a manifest's plan without `pairs` did: runs before 2026-12-05 interleaved a block's comparisons
INTERLEAVED = "interleaved"


def rerun_relation(manifest_a: dict, manifest_b: dict, dir_a: Path) -> str | None:
    """'B reruns A ...' when B was made with `invoke bench --from A/manifest.json`."""
    extra = (manifest_b.get("config") or {}).get("extra") or {}
    if not extra.get("rerun_of") or Path(extra["rerun_of"]).resolve() != dir_a.resolve():
        return None
    order_a = (manifest_a.get("plan") or {}).get("order") or []
    order_b = (manifest_b.get("plan") or {}).get("order") or []
    same = bool(order_a) and order_a == order_b
    overrides = ", ".join(extra.get("rerun_overrides") or []) or "none"
    pairs_a, pairs_b = ((m.get("plan") or {}).get("pairs", INTERLEAVED) for m in (manifest_a, manifest_b))
    why = f" (A's plan: {pairs_a} pairs, B's: {pairs_b})" if not same and pairs_a != pairs_b else ""
    return (f"B reruns A (`invoke bench --from`): same seed and cell order: {'yes' if same else 'NO'}{why}; "
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


def _cell_keys(summary: runstats.RunStats) -> set[tuple]:
    return {g.key.where for g in summary.groups}


def _where_order(where: tuple) -> tuple:
    arm, conns, size, load = where
    return (arm, conns, size, -1 if load is None else load)


def aligned_loads(samples_a: list[Sample], samples_b: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """The two runs' samples with one load axis: a paced run from before the load axis (no load
    on its cells) ran at --rate auto's one share, so when the other run has exactly one load, its
    cells are taken to be at that load."""
    loads_a, loads_b = {s.cell.load for s in samples_a}, {s.cell.load for s in samples_b}

    def at(samples, load):
        if not all(s.offered_rate for s in samples):
            return samples
        return [replace(s, cell=replace(s.cell, load=load)) for s in samples]

    if loads_a == {None} and len(loads_b) == 1 and None not in loads_b:
        return at(samples_a, next(iter(loads_b))), samples_b
    if loads_b == {None} and len(loads_a) == 1 and None not in loads_a:
        return samples_a, at(samples_b, next(iter(loads_a)))
    return samples_a, samples_b


def compare_runs(run_a: str | Path, run_b: str | Path, margins: dict[str, float] | None = None) -> dict:
    dir_a, dir_b = rundir.resolve_run_dir(run_a), rundir.resolve_run_dir(run_b)
    manifest_a, manifest_b = rundir.read_manifest(dir_a), rundir.read_manifest(dir_b)
    samples_a, samples_b = aligned_loads(rundir.load_samples(dir_a), rundir.load_samples(dir_b))
    summary_a, summary_b = runstats.summarize(samples_a), runstats.summarize(samples_b)
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
        "ratio_changes": ratio_changes(summary_a, summary_b, margins),
        "margins": MARGINS | (margins or {}),
        "rerun": rerun_relation(manifest_a, manifest_b, dir_a),
        "cells": cell_changes(samples_a, samples_b),
        "only_in_a": sorted(keys_a - keys_b, key=_where_order),
        "only_in_b": sorted(keys_b - keys_a, key=_where_order),
    }
