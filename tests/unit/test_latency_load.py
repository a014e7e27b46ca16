"""Latency against load: --rate shares make a load axis, the report's section and plot show each
arm's p50 / p99 / p99.9 per load with the knee, every latency verdict carries its MDE, and the
latency check of `invoke calibrate` is judged against the tail its stall schedule must give."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from sample_factory import make_sample
from zcbench.analyze import latency_calibration
from zcbench.core import rundir
from zcbench.core.arms import STALL_ARM
from zcbench.devtools.schemas import problems
from zcbench.measure import calibrate as calibration_plan
from zcbench.measure import containers
from zcbench.measure.config import Config, ConfigError, modes, rate_key
from zcbench.measure.pilot import rates_at
from zcbench.present import calibration as calibration_report
from zcbench.present import report

RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"
LOADS = (0.3, 0.7)


def scaled(sample, load: float, factor: float):
    """The sample at `load`, its latencies (headline and table) times `factor`."""
    result = dict(sample.loadgen_result or {})
    if result.get("percentiles_us"):
        result["percentiles_us"] = [[p, v * factor if v is not None else None] for p, v in result["percentiles_us"]]
    lat = sample.latency_us
    latency_us = type(lat)(**{name: getattr(lat, name) * factor for name in lat.__dataclass_fields__})
    return replace(sample, cell=replace(sample.cell, load=load), loadgen_result=result, latency_us=latency_us)


@pytest.fixture
def loads_run(tmp_path) -> Path:
    """The paced fixture at two loads: at 70 % zc's latency is 30x its 30 % value, regular's 1.5x."""
    run_dir = shutil.copytree(RUNS / "paced", tmp_path / "loads")
    samples = rundir.load_samples(run_dir)
    (run_dir / rundir.SAMPLES).unlink()
    index = 0
    for load in LOADS:
        for sample in samples:
            factor = 1.0 if load == 0.3 else (30.0 if sample.cell.arm == "zc" else 1.5)
            moved = scaled(sample, load, factor)
            rundir.append_sample(run_dir, replace(moved, cell=replace(moved.cell, index=index)))
            index += 1
    manifest = rundir.read_manifest(run_dir)
    manifest["config"] |= {"rate_auto": True, "rate_shares": list(LOADS)}
    rundir.write_manifest(run_dir, manifest)
    return run_dir


def test_the_report_shows_latency_against_load_with_the_knee_and_mdes(loads_run):
    summary = report.render_run(loads_run)
    assert summary.loads == [0.3, 0.7]
    text = (loads_run / rundir.REPORT).read_text()
    section = text[text.index("## Latency against load"):]
    section = section[:section.index("\n## ", 5)]
    assert "zc p99 vs regular" in section and "| 30% |" in section and "| 70% |" in section
    curves = {(c.arm, c.conns): c for c in summary.latency_curves}
    assert curves[("zc", 100)].knee.load is not None and 0.3 < curves[("zc", 100)].knee.load <= 0.7
    assert curves[("regular", 100)].knee.load is None
    assert "**zc**: p99 above 10× its value at 30%" in section and "not reached up to 70% load" in section
    # every latency verdict of the report carries its MDE, "worse" ones too
    p99 = [c.metrics["latency_p99_us"] for c in summary.comparisons]
    assert any(c.verdict == "worse" for c in p99)
    for line in text.splitlines():
        if "worse**" in line and "latency" in line.lower():
            assert "MDE" in line, line
    glance = next(line for line in text.splitlines() if line.startswith("- **zc vs regular, p99 latency**"))
    assert "100c at 70% load (+" in glance and "MDE ±" in glance
    assert (loads_run / "plots" / "latency_load.png").exists() and "plots/latency_load.png" in summary.plots
    data = json.loads((loads_run / rundir.SUMMARY).read_text())
    assert problems("summary", data) == [] and len(data["latency_against_load"]) == 4
    assert {d["load"] for d in data["latency_distributions"]} == {0.3, 0.7}


def test_one_load_has_no_section_and_keeps_its_old_cells(tmp_path):
    run_dir = shutil.copytree(RUNS / "paced", tmp_path / "paced")
    summary = report.render_run(run_dir)
    assert summary.latency_curves == [] and summary.loads == [None]
    assert "## Latency against load" not in (run_dir / rundir.REPORT).read_text()
    assert not (run_dir / "plots" / "latency_load.png").exists()


def test_the_stall_knob_is_refused_outside_its_calibration_arm():
    base = Config.from_args(online_cpus={0, 1}, mode="regular", rate="auto")
    assert STALL_ARM not in {arm for arms in modes().values() for arm in arms}  # no --mode runs it
    with pytest.raises(ConfigError, match="calibration stall"):
        replace(base, calibration_stall={"regular": "20/500"})
    with pytest.raises(ConfigError, match="calibration stall"):
        replace(base, arms=("regular", STALL_ARM))  # the arm without its stall
    stalled = replace(base, arms=("regular", STALL_ARM), calibration_stall={STALL_ARM: "20/500"})
    assert stalled.calibration_stall == {STALL_ARM: "20/500"}
    plain = containers.ServerSpec(send="regular")
    assert "--calibration-stall" not in plain.command()  # off by default
    assert containers.ServerSpec(send="regular", calibration_stall="20/500").command()[-2:] == [
        "--calibration-stall", "20/500"]


@pytest.mark.parametrize("text, duration, why", [
    ("20", 2, "STALL_MS/PERIOD_MS"), ("500/20", 2, "shorter than its period"), ("0/500", 2, "shorter"),
    ("20/300", 2, "must divide the 2 s window"), ("a/b", 2, "STALL_MS/PERIOD_MS")])
def test_a_bad_stall_is_one_line(text, duration, why):
    with pytest.raises(ConfigError, match=why):
        calibration_plan.parse_stall(text, duration)


def test_the_latency_check_runs_at_two_loads_at_the_pilots_saturation():
    assert calibration_plan.parse_stall("20/500", 2) == (20, 500)
    config = Config.from_args(online_cpus={0, 1}, mode="regular", rate="auto", conns="100,4000")
    assert calibration_plan.latency_loads(config) == (0.3, 0.7)
    assert calibration_plan.latency_loads(replace(config, rate_shares=(0.2,))) == (0.1, 0.2)
    rates = rates_at({rate_key(100, 88, 0.7): 70_000, rate_key(4000, 88, 0.7): 35_000}, (0.3, 0.7))
    assert rates == {rate_key(100, 88, 0.3): 30_000, rate_key(100, 88, 0.7): 70_000,
                     rate_key(4000, 88, 0.3): 15_000, rate_key(4000, 88, 0.7): 35_000}
    check = calibration_plan.latency_config(config, (20, 500), rates)
    assert check.arms == ("regular", STALL_ARM) and check.calibration_stall == {STALL_ARM: "20/500"}
    assert check.loads == (0.3, 0.7) and check.rate_for(4000, 88, 0.3) == 15_000
    assert calibration_plan.parse_only("") == ("cpu", "latency") and calibration_plan.parse_only("latency") == (
        "latency",)
    with pytest.raises(ConfigError, match="--only"):
        calibration_plan.parse_only("both")
    with pytest.raises(ConfigError, match="needs a paced rate"):
        calibration_plan.check_latency_plan(Config.from_args(online_cpus={0, 1}, mode="regular", rate="off"),
                                            ("latency",))


def _stalled_sample(arm: str, rep: int, p99_ms: float, p999_ms: float, load: float = 0.3, cpu_s: float = 0.5,
                    busy: float = 0.5):
    table = [[50, 300.0], [90, 600.0], [99, p99_ms * 1000], [99.9, p999_ms * 1000], [100, p999_ms * 1100]]
    return make_sample(arm, rep, load=load, requests=60_000, offered_rate=30_000, server_cpu_s=cpu_s,
                       duration_s=2.0, loadgen_cpu_share=busy, loadgen_result={"percentiles_us": table})


def test_the_latency_check_passes_a_tail_that_matches_the_schedule_and_fails_one_that_misses_it():
    # 20 ms every 500 ms, server busy 0.5 / (2 s * 0.96) = 26 % of its running time:
    # p99 = 20 - 0.01 * 0.74 * 500 = 16.3 ms, p99.9 = 19.6 ms, plus the plain median 0.3 ms
    good = [_stalled_sample(STALL_ARM, rep, 16.5, 19.8) for rep in range(6)]
    plain = [_stalled_sample("regular", rep, 1.0, 2.0) for rep in range(6)]
    result = latency_calibration.judge_latency(good + plain, 20, 500)
    [cell] = result["cells"]
    assert cell["utilisation"] == pytest.approx(0.5 / (2.0 * 0.96))
    assert cell["expected_p99_ms"] == pytest.approx(20 - 0.01 * (1 - cell["utilisation"]) * 500 + 0.3, rel=0.01)
    assert cell["passed"] and result["passed"] and result["untrusted"] == []
    # a generator that lost the stall (no coordinated-omission correction): p99 of 3 ms
    missed = [_stalled_sample(STALL_ARM, rep, 3.0, 19.8) for rep in range(6)]
    failed = latency_calibration.judge_latency(missed + plain, 20, 500)
    assert not failed["passed"] and failed["untrusted"] == [{"conns": 100, "load": 0.3, "why": "fail"}]
    # the same miss with wrk 90% busy: its own queue, untrusted but no failure of the method
    busy = [_stalled_sample(STALL_ARM, rep, 60.0, 80.0, busy=0.9) for rep in range(6)]
    bound = latency_calibration.judge_latency(busy + plain, 20, 500)
    assert bound["passed"] and not bound["every_cell_passed"]
    assert bound["untrusted"] == [{"conns": 100, "load": 0.3, "why": "generator-bound"}]
    text = calibration_report.render_markdown({"schema": 2, "passed": False, "latency": failed | {"run_dir": "x"}},
                                              Path("run"))
    assert "FAILED" in text and "do not trust latency numbers measured there" in text and "100 connections" in text
    assert problems("calibration", {"schema": 2, "passed": False, "latency": failed | {"run_dir": "x"}}) == []
