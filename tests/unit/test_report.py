"""zcbench.present.report (and plots): render_run on recorded fixture runs."""

import json
import shutil
import statistics
from pathlib import Path

import pytest

from zcbench.core import fmt
from zcbench.present import report
from zcbench.core import rundir
from zcbench.core.rundir import RunDirError
from zcbench.core.rundir import load_samples

RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def copy_run(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(RUNS / name, tmp_path / name))


@pytest.fixture(scope="module")
def rendered(rendered_runs):
    """Every fixture run rendered once: {name: (run_dir, summary, report text)}."""
    result = {}
    for name in ("study-loopback", "sweep-win", "sweep-copied", "sweep-nowin", "incomplete"):
        run_dir, summary = rendered_runs[name]
        result[name] = (run_dir, summary, (run_dir / "report.md").read_text())
    return result


@pytest.mark.parametrize("name", ["study-loopback", "sweep-win", "incomplete"])
def test_render_run_writes_summary_report_and_plots(rendered, name):
    run_dir, summary, _ = rendered[name]
    assert json.loads((run_dir / "summary.json").read_text()) == json.loads(json.dumps(summary.to_json()))
    assert summary.plots
    for plot in summary.plots:
        assert (run_dir / plot).read_bytes()[:8] == PNG_MAGIC
    leftovers = [p.name for p in run_dir.rglob(".*")]
    assert leftovers == []  # no temp file of an atomic write is left behind


def test_study_table_has_the_study_shape_and_traces_to_samples(rendered):
    run_dir, summary, text = rendered["study-loopback"]
    assert "| Conns | Regular Send | ZC Send | Throughput Delta | Latency Delta |" in text
    samples = {s.cell.index: s for s in load_samples(run_dir / "samples.jsonl")}
    for conns in (100, 1000, 4000):
        group = summary.group("zc", conns, 88)
        rps = statistics.fmean(samples[i].requests_per_s for i in group.sample_indexes)
        latency = statistics.fmean(samples[i].latency_us.mean for i in group.sample_indexes)
        assert f"{fmt.rate(rps)} req/s, {fmt.micros(latency)}" in text


def test_deltas_are_labelled_by_their_verdicts(rendered):
    _, _, text = rendered["study-loopback"]
    row_1000 = next(line for line in text.splitlines() if line.startswith("| 1000 |"))
    row_4000 = next(line for line in text.splitlines() if line.startswith("| 4000 |"))
    assert row_1000.count("(no difference, MDE ±") == 2
    assert "worse**" in row_4000 and "no difference" not in row_4000


def test_loadgen_bound_cells_are_flagged(rendered):
    _, _, text = rendered["study-loopback"]
    row_100 = next(line for line in text.splitlines() if line.startswith("| 100 "))
    assert report.LOADGEN_MARK in row_100
    assert "Loadgen-bound" in text
    _, _, clean = rendered["sweep-win"]
    assert "Loadgen-bound" not in clean


def test_counters_copied_share_and_nginx_reference(rendered):
    _, summary, text = rendered["study-loopback"]
    assert "## nginx reference" in text and "## Server counters and checks" in text
    zc = summary.group("zc", 4000, 88)
    assert fmt.count(zc.counters["fallback_cap"]) in text
    assert "Copied share** of ZC sends: 100%" in text
    assert "## nginx reference" not in rendered["sweep-win"][2]


def test_report_says_where_the_raw_samples_are(rendered):
    _, summary, text = rendered["study-loopback"]
    assert "`samples.jsonl`" in text
    group = summary.group("zc", 4000, 88)
    assert ",".join(map(str, group.sample_indexes)) in text


def test_incomplete_run_has_a_banner_and_short_cells(rendered):
    _, summary, text = rendered["incomplete"]
    assert summary.complete is False and summary.samples_count == 7  # torn line skipped
    assert "INCOMPLETE RUN" in text and "interrupted by the user" in text
    assert "(1/10 reps)" in text and "untested" in text
    assert "| Kernel | unknown |" in text  # the manifest lacks "host"
    assert "INCOMPLETE RUN" not in rendered["study-loopback"][2]


def test_sweep_section_only_for_several_sizes(rendered):
    _, summary, text = rendered["sweep-win"]
    assert "## Response-size sweep" in text and summary.sweep
    assert "**zc** at 100 conns: 16 KiB" in text
    assert "plots/sweep_ratio.png" in summary.plots
    assert sweep_crossover_text(rendered["sweep-copied"][2]).endswith("every send was copied")
    assert "## Response-size sweep" not in rendered["study-loopback"][2]
    assert rendered["study-loopback"][1].sweep is None
    assert "sweep" not in json.loads((rendered["study-loopback"][0] / "summary.json").read_text())


def sweep_crossover_text(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("- **zc** at"))


def test_render_without_manifest_says_unknown(tmp_path):
    run_dir = copy_run("sweep-nowin", tmp_path)
    (run_dir / "manifest.json").unlink()
    summary = report.render_run(run_dir)
    text = (run_dir / "report.md").read_text()
    assert summary.run_id == "unknown" and "| Git | unknown |" in text


def test_rerender_removes_a_plot_the_samples_no_longer_support(tmp_path):
    run_dir = copy_run("sweep-nowin", tmp_path)
    report.render_run(run_dir)
    assert (run_dir / "plots" / "sweep_ratio.png").exists()
    lines = (run_dir / "samples.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "samples.jsonl").write_text("".join(
        line for line in lines if json.loads(line)["cell"]["response_size"] == 88))
    summary = report.render_run(run_dir)
    assert summary.response_sizes == [88]
    assert not (run_dir / "plots" / "sweep_ratio.png").exists()


def test_render_of_a_directory_without_samples_fails_clearly(tmp_path):
    with pytest.raises(RunDirError, match="samples.jsonl"):
        report.render_run(tmp_path)
    with pytest.raises(RunDirError, match="no such run directory"):
        rundir.resolve_run_dir(tmp_path / "missing")


def test_empty_samples_file_renders_a_report_saying_so(tmp_path):
    run_dir = copy_run("incomplete", tmp_path)
    (run_dir / "samples.jsonl").write_text("")
    summary = report.render_run(run_dir)
    assert summary.groups == [] and summary.plots == []
    assert "No sample was recorded." in (run_dir / "report.md").read_text()


@pytest.mark.parametrize("value, text", [(88, "88 B"), (4096, "4 KiB"), (1536, "1.5 KiB"), (1 << 20, "1 MiB")])
def test_sizes_read_like_the_issue(value, text):
    assert fmt.size(value) == text


def test_numbers_read_like_the_study():
    assert fmt.rate(112_000) == "112K" and fmt.rate(9_500) == "9.5K"
    assert fmt.micros(900) == "0.90ms" and fmt.micros(10_740) == "10.74ms" and fmt.micros(45) == "45µs"
    assert fmt.delta(0.07) == "+7.0%" and fmt.delta(-0.004) == "-0.4%" and fmt.delta(0.37) == "+37%"
