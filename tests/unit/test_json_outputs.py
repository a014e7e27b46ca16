"""`--json` on report, compare, doctor and calibrate: stdout is one JSON document (nothing else),
valid against its schema; `compare --html FILE` writes compare.html."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zcbench import jobs, tasks
from zcbench.core import rundir
from zcbench.core.paths import ROOT
from zcbench.devtools.schemas import problems

INVOKE = str(Path(sys.executable).with_name("invoke"))
RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"


def invoke(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([INVOKE, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def strict_json(text: str):
    """The whole of `text` as one standard JSON document (no Infinity, nothing around it)."""
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))


def test_compare_json_and_html(tmp_path):
    run_a = shutil.copytree(RUNS / "study-loopback", tmp_path / "a")
    page = tmp_path / "compare.html"
    wide = ("--margin-cpu", "20", "--margin-throughput", "20")  # this 5-block fixture cannot show +-3 %
    proc = invoke("compare", str(run_a), str(RUNS / "study-loopback"), *wide, "--json", "--html", str(page))
    assert proc.returncode == 0, proc.stderr
    result = strict_json(proc.stdout)
    assert problems("compare", result) == []
    assert result["agreement"]["agree"] is True and result["a"]["samples"] == result["b"]["samples"] == 90
    assert {change["status"] for change in result["ratio_changes"]} == {"agree"}
    assert result["margins"]["cpu_us_per_request"] == 0.2
    markdown = invoke("compare", str(run_a), str(RUNS / "study-loopback"), *wide).stdout
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and "the runs agree" in html and "the runs agree" in markdown
    assert "src=" not in html and "default-src 'none'" in html
    missing_dir = invoke("compare", str(run_a), str(run_a), "--html", str(tmp_path / "no" / "such" / "c.html"))
    assert missing_dir.returncode == 2 and len(missing_dir.stderr.splitlines()) == 1 and not missing_dir.stdout


def test_report_json_is_the_summary_it_wrote(tmp_path):
    run_dir = shutil.copytree(RUNS / "paced", tmp_path / "paced")
    proc = invoke("report", "-r", str(run_dir), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = strict_json(proc.stdout)
    assert problems("summary", summary) == []
    assert summary == json.loads((run_dir / rundir.SUMMARY).read_text())
    plain = invoke("report", "-r", str(run_dir))
    assert plain.stdout.splitlines() == [str(run_dir / rundir.REPORT), str(run_dir / rundir.REPORT_HTML)]


@pytest.mark.timeout(300)
def test_doctor_json_on_this_machine():
    proc = invoke("doctor", "--json", timeout=280)
    report = strict_json(proc.stdout)
    assert problems("doctor", report) == []
    assert proc.returncode == report["exit_code"] and report["hosts"][0]["where"] == "here"


def test_calibrate_json_prints_calibration_json_alone_and_the_rest_to_stderr(tmp_path, monkeypatch, capsys):
    """The task's own path with the run stubbed: whatever the run prints (progress, the run
    directory) lands on stderr, stdout holds calibration.json's object and nothing else."""
    recorded = {"schema": rundir.CALIBRATION_SCHEMA, "passed": True, "metric": "cpu_us_per_request",
                "aa": [{"conns": 100, "response_size": 88, "estimate": 0.001, "ci": [0.98, 1.02], "verdict": "no difference",
                        "verdicts": {"cpu_us_per_request": "no difference"}, "passed": True, "reason": "no difference"}],
                "doses": [{"arm": "regular-dose1", "conns": 100, "response_size": 88, "aimed": 0.05, "true_effect": 0.049,
                           "estimate": 0.051, "ci": [1.03, 1.07], "verdict": "worse", "found": True, "covered": True,
                           "must_find": True, "passed": True, "reason": "found"}],
                "mde": {"100c/88B": 0.02}, "sizing": {"doses": [{"arm": "regular-dose1", "aimed": 0.05, "work": 300}],
                                                      "pilot_work": 1500}}

    def calibrate(config, runs=1, doses=(), stall=(20, 500), parts=("cpu", "latency"), log=print):
        log("zcbench: 9 cells, server CPUs 0, wrk CPUs 1")
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        rundir.write_json(run_dir / rundir.CALIBRATION_JSON, recorded)
        return run_dir

    monkeypatch.setattr(jobs, "calibrate", calibrate)
    tasks.calibrate.body(None, out=str(tmp_path), json_=True)
    out, err = capsys.readouterr()
    assert strict_json(out) == recorded and problems("calibration", strict_json(out)) == []
    assert "9 cells" in err and str(tmp_path / "run") in err
