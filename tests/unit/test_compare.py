"""zcbench.analyze.compare: what changed between two stored runs, per cell, with verdicts."""

import json
import shutil
from pathlib import Path

import pytest

from zcbench.analyze import compare
from zcbench.analyze import stats
from zcbench.core.rundir import RunDirError
from zcbench.present import compare as compare_report

RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"


def copy_run(name: str, tmp_path: Path, as_name: str | None = None) -> Path:
    return Path(shutil.copytree(RUNS / name, tmp_path / (as_name or name)))


def scale_arm(run_dir: Path, arm: str, conns: int, factor: float) -> None:
    """Make one cell of a run faster by `factor` (throughput up, latency down)."""
    out = []
    for line in (run_dir / "samples.jsonl").read_text().splitlines():
        sample = json.loads(line)
        if sample["cell"]["arm"] == arm and sample["cell"]["conns"] == conns:
            sample["requests_per_s"] *= factor
            sample["latency_us"] = {k: v / factor for k, v in sample["latency_us"].items()}
        out.append(json.dumps(sample))
    (run_dir / "samples.jsonl").write_text("\n".join(out) + "\n")


def test_a_run_against_itself_changes_nothing(tmp_path):
    run = copy_run("study-loopback", tmp_path)
    result = compare.compare_runs(run, run)
    assert result["config_changes"] == [] and result["environment_changes"] == []
    assert all(r.ratio.change == pytest.approx(0) and r.ratio.verdict == stats.NO_DIFFERENCE
               for r in result["ratio_changes"])
    assert all(m.verdict == stats.NO_DIFFERENCE for c in result["cells"] for m in c.metrics.values())


def test_a_faster_zc_cell_shows_in_its_ratio_and_its_cell_only(tmp_path):
    a = copy_run("study-loopback", tmp_path, "a")
    b = copy_run("study-loopback", tmp_path, "b")
    scale_arm(b, "zc", 4000, 1.25)
    result = compare.compare_runs(a, b)
    moved = [r for r in result["ratio_changes"] if r.ratio.verdict != stats.NO_DIFFERENCE]
    assert {(r.arm, r.conns, r.metric) for r in moved} == {
        ("zc", 4000, "requests_per_s"), ("zc", 4000, "latency_mean_us"), ("zc", 4000, "latency_p99_us")}
    assert all(r.ratio.verdict == "better" for r in moved)
    changed_cells = {(c.arm, c.conns) for c in result["cells"]
                     if c.metrics["requests_per_s"].verdict != stats.NO_DIFFERENCE}
    assert changed_cells == {("zc", 4000)}
    text = compare_report.render_compare(result)
    assert "**+25% better**" in text


def test_setup_changes_and_missing_cells_are_listed(tmp_path):
    a = copy_run("study-loopback", tmp_path)
    b = copy_run("incomplete", tmp_path)
    result = compare.compare_runs(a, b)
    names = {c["name"] for c in result["config_changes"]}
    assert {"seed", "servers"} <= names
    assert "kernel" in {c["name"] for c in result["environment_changes"]}
    assert ("nginx", 4000, 88, None) in result["only_in_a"] and result["only_in_b"] == []
    text = compare_report.render_compare(result)
    assert "run B is incomplete" in text and "Only in A: nginx" in text


def test_compare_of_a_missing_run_fails_clearly(tmp_path):
    run = copy_run("sweep-nowin", tmp_path)
    with pytest.raises(RunDirError, match="no such run directory"):
        compare.compare_runs(run, tmp_path / "nope")


def test_agreement_and_rerun_relation(tmp_path):
    a = copy_run("study-loopback", tmp_path, "a")
    b = copy_run("study-loopback", tmp_path, "b")
    manifest_b = json.loads((b / "manifest.json").read_text())
    manifest_b["config"]["extra"] = {"rerun_of": str(a), "rerun_overrides": ["duration"]}
    (b / "manifest.json").write_text(json.dumps(manifest_b))
    same = compare.compare_runs(a, b)
    agreement = compare.agreement(same)
    # a run against itself: nothing differs, but its 5 blocks cannot show +-3 % at 100c: inconclusive
    assert agreement["counts"][stats.DIFFER] == 0 and agreement["verdict"] == stats.INCONCLUSIVE
    assert agreement["counts"][stats.AGREE] + agreement["counts"][stats.INCONCLUSIVE] == agreement["ratios"] == 24
    assert "inconclusive: the runs could not show they agree" in compare_report.render_compare(same)
    wide = compare.compare_runs(a, b, margins={name: 0.2 for name in compare.MARGINS})
    assert compare.agreement(wide)["verdict"] == stats.AGREE
    text = compare_report.render_compare(wide)
    assert "B reruns A" in text and "same seed and cell order: yes" in text and "the runs agree" in text
    assert "±20%" in text  # the margins it used
    # a rerun of a run from before pairs ran back to back: same seed, another order, and why
    manifest_b["plan"] = dict(manifest_b["plan"], pairs="adjacent", order=manifest_b["plan"]["order"][::-1])
    (b / "manifest.json").write_text(json.dumps(manifest_b))
    relation = compare.rerun_relation(json.loads((a / "manifest.json").read_text()), manifest_b, a)
    assert relation.startswith("B reruns A (`invoke bench --from`): same seed and cell order: NO "
                               "(A's plan: interleaved pairs, B's: adjacent)")
    scale_arm(b, "zc", 4000, 1.25)
    moved = compare.compare_runs(a, b)
    assert compare.agreement(moved)["verdict"] == stats.DIFFER and "the runs DIFFER" in compare_report.render_compare(moved)


def test_a_paced_run_from_before_paced_windows_is_named_as_measured_otherwise(tmp_path):
    older, newer = copy_run("paced", tmp_path, "older"), copy_run("paced", tmp_path, "newer")
    out = []
    for line in (newer / "samples.jsonl").read_text().splitlines():
        sample = json.loads(line)
        sample["paced_window_s"] = sample["duration_s"] * 0.95  # the connection ramp left out
        out.append(json.dumps(sample))
    (newer / "samples.jsonl").write_text("\n".join(out) + "\n")
    assert compare.compare_runs(older, older)["measurement_changes"] == []
    result = compare.compare_runs(older, newer)
    assert result["measurement_changes"] == [{"name": "achieved rate and paced throughput over",
                                              "a": compare.WHOLE_DURATION, "b": compare.PACED_WINDOW}]
    text = compare_report.render_compare(result)
    assert f"| measurement | achieved rate and paced throughput over | {compare.WHOLE_DURATION} |" in text
    # unpaced runs measured no rate: nothing to say
    study = copy_run("study-loopback", tmp_path)
    assert compare.compare_runs(study, newer)["measurement_changes"] == []
