"""zcbench.analyze.calibration: sizing the injected work, judging a run, and keeping the knob out of benches."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from zcbench.analyze import calibration as calibrate
from zcbench.analyze import runstats
from zcbench.analyze import metrics
from zcbench.analyze import stats
from zcbench.measure.config import Config, ConfigError
from zcbench.core.arms import AA_ARM, WORK_ARM
from zcbench.measure import calibrate as calibration_plan
from zcbench.present import calibration as calibration_report

from sample_factory import make_sample


def _sample(arm, rep, cpu, rps=100_000.0, **fields):
    return make_sample(arm, rep, cpu_us_per_request=cpu, requests_per_s=rps, **fields)


def test_size_work_aims_at_the_target_from_the_pilots_paired_ratio():
    # the work arm costs 1.5x per block, whatever the block's own speed
    pilot = [_sample("regular", 0, 8.0), _sample("regular", 1, 10.0), _sample("regular", 2, 9.0),
             _sample(WORK_ARM, 0, 12.0), _sample(WORK_ARM, 1, 15.0), _sample(WORK_ARM, 2, 13.5)]
    sizing = calibrate.size_work(pilot, target=0.05)
    per_iteration = 0.5 / calibrate.PILOT_WORK
    assert sizing["metric"] == calibrate.METRIC and sizing["pilot_blocks"] == 3
    assert sizing["pilot_ratio"] == pytest.approx(1.5)
    assert sizing["work"] == round(0.05 / per_iteration)
    assert sizing["expected_effect"] == pytest.approx(0.05, rel=0.01)
    assert sizing["cpu_us_per_iteration"] == pytest.approx(per_iteration * 9.0)


def test_a_paced_pilot_sizes_in_the_paced_metric():
    pilot = []
    for rep, speed in enumerate((1.0, 1.2, 0.9)):  # the machine's speed moves server and wrk CPU alike
        for arm, cost in (("regular", 1.0), (WORK_ARM, 1.3)):
            pilot.append(_sample(arm, rep, 8.0 * speed * cost, offered_rate=50_000, rate_sustained=True,
                                 server_cpu_s=1.0 * speed * cost, loadgen_cpu_s=2.0 * speed))
    sizing = calibrate.size_work(pilot, target=0.05)
    assert sizing["metric"] == calibrate.PACED_METRIC and sizing["pilot_ratio"] == pytest.approx(1.3)
    assert sizing["work"] == round(0.05 * calibrate.PILOT_WORK / 0.3)


def test_size_work_refuses_a_pilot_without_cpu_or_effect():
    with pytest.raises(calibrate.CalibrationError, match="no server CPU"):
        calibrate.size_work([_sample("regular", 0, None), _sample(WORK_ARM, 0, None)])
    with pytest.raises(calibrate.CalibrationError, match="cost nothing"):
        calibrate.size_work([_sample("regular", 0, 8.0), _sample(WORK_ARM, 0, 7.9)])


def _pilot(ratio):
    return [_sample("regular", rep, 8.0) for rep in range(3)] + \
        [_sample(WORK_ARM, rep, 8.0 * ratio) for rep in range(3)]


def test_a_pilot_that_moved_too_little_is_measured_again_with_twice_the_work():
    ratios = {calibrate.PILOT_WORK: 0.894, 2 * calibrate.PILOT_WORK: 1.4}
    asked, said = [], []

    def run_pilot(work):
        asked.append(work)
        return f"/pilot-{work}", _pilot(ratios[work])

    sizing = calibrate.measure_work(run_pilot, said.append)
    assert asked == [calibrate.PILOT_WORK, 2 * calibrate.PILOT_WORK] and len(said) == 1
    assert sizing["pilot_work"] == 2 * calibrate.PILOT_WORK
    assert sizing["pilot_run"] == f"/pilot-{2 * calibrate.PILOT_WORK}"
    assert [p["work"] for p in sizing["pilots"]] == asked
    assert sizing["work"] == round(0.05 * 2 * calibrate.PILOT_WORK / 0.4)


def test_a_doubled_pilot_the_server_cannot_keep_up_with_falls_back_to_the_last_one_that_measured():
    def short_everywhere():
        return [_sample(arm, rep, 8.0, offered_rate=50_000, rate_sustained=False)
                for rep in range(3) for arm in ("regular", WORK_ARM)]

    def run_pilot(work):
        return f"/pilot-{work}", _pilot(1.06) if work == calibrate.PILOT_WORK else short_everywhere()

    said = []
    sizing = calibrate.measure_work(run_pilot, said.append)
    assert sizing["pilot_work"] == calibrate.PILOT_WORK and sizing["pilot_run"] == f"/pilot-{calibrate.PILOT_WORK}"
    assert sizing["pilots"][-1]["ratio"] is None and "fell short" in sizing["pilots"][-1]["failed"]
    assert "sizing from 1500" in said[-1]
    with pytest.raises(calibrate.CalibrationError, match="fell short of the offered rate"):
        calibrate.measure_work(lambda work: ("/p", short_everywhere()), said.append)


def test_a_pilot_that_moved_enough_is_used_at_once_and_the_last_one_sizes_what_it_saw():
    asked = []

    def run_pilot(work, ratio=1.25):
        asked.append(work)
        return "/p", _pilot(ratio)

    assert calibrate.measure_work(run_pilot, print)["pilot_work"] == calibrate.PILOT_WORK and len(asked) == 1
    small = calibrate.measure_work(lambda work: ("/p", _pilot(1.05)), lambda line: None)
    assert len(small["pilots"]) == calibrate.PILOT_ATTEMPTS
    assert small["pilot_work"] == calibrate.PILOT_WORK * 2 ** (calibrate.PILOT_ATTEMPTS - 1)
    with pytest.raises(calibrate.CalibrationError, match="cost nothing"):
        calibrate.measure_work(lambda work: ("/p", _pilot(0.9)), lambda line: None)


def _run(aa_factor, work_factor, blocks=10):
    import random
    rng = random.Random(1)
    out = []
    for rep in range(blocks):
        drift = rng.gauss(1, 0.05)
        for arm, factor in (("regular", 1.0), (AA_ARM, aa_factor), (WORK_ARM, work_factor)):
            out.append(_sample(arm, rep, 8.0 * drift * factor * rng.gauss(1, 0.004),
                               100_000 * drift * rng.gauss(1, 0.004)))
    return runstats.summarize(out)


SIZING = {"expected_effect": 0.05, "work": 300, "cpu_us_per_iteration": 0.0013,
          "plain_cpu_us_per_request": 8.0, "metric": calibrate.METRIC, "pilot_ratio": 1.5,
          "pilot_blocks": 3, "pilot_work": calibrate.PILOT_WORK}


def test_judge_passes_when_the_aa_is_quiet_and_the_injected_cost_is_found():
    result = calibrate.judge(_run(1.0, 1.05), SIZING)
    assert result["passed"] and result["aa_verdict"] == stats.NO_DIFFERENCE
    assert result["injected_verdict"] == stats.WORSE
    assert result["injected_effect"] == pytest.approx(0.05, abs=0.01)
    assert result["family_size"] == 8 and result["mde"] > 0
    page = calibration_report.render_markdown(result, Path("/x/run"))
    assert "PASSED" in page and "Pilots tried" not in page
    twice = dict(result, sizing=SIZING | {"pilots": [{"work": 1500, "ratio": 0.894, "run": "/a"},
                                                     {"work": 3000, "ratio": 1.4, "run": "/b"}]})
    assert "1500 iterations ×0.894, 3000 iterations ×1.4" in calibration_report.render_markdown(twice, Path("/x/run"))


def test_judge_fails_on_a_false_alarm_and_on_a_missed_cost():
    alarm = calibrate.judge(_run(1.05, 1.05), SIZING)
    assert not alarm["passed"] and alarm["aa_verdict"] == "false alarm"
    missed = calibrate.judge(_run(1.0, 1.0), SIZING)
    assert not missed["passed"] and missed["injected_verdict"] == stats.NO_DIFFERENCE
    assert "FAILED" in calibration_report.render_markdown(missed, Path("/x/run"))


def test_injected_work_cannot_reach_a_real_comparison():
    config = Config.from_args(online_cpus={0, 1}, mode="zc")
    with pytest.raises(ConfigError, match="calibration work"):
        dataclasses.replace(config, calibration_work=100)  # no work arm: refused
    with pytest.raises(ConfigError, match="calibration work"):
        dataclasses.replace(config, arms=("regular", WORK_ARM))  # work arm without work
    calibrated = calibration_plan.calibration_config(config, 100)
    assert calibrated.arms == ("regular", AA_ARM, WORK_ARM) and calibrated.calibration_work == 100
    # Only the work arm's server gets the flag, and every calibration arm is a regular send.
    from zcbench.measure import bench
    from zcbench.measure.plan import plan_cells

    commands = {cell.arm: bench.server_spec(calibrated, cell, "127.0.0.1").command()
                for cell in plan_cells(calibrated)}
    assert set(commands) == {"regular", AA_ARM, WORK_ARM}
    assert all(c[c.index("--send") + 1] == "regular" for c in commands.values())
    worked = commands[WORK_ARM]
    assert worked[worked.index("--calibration-work") + 1] == "100"
    assert "--calibration-work" not in commands["regular"] + commands[AA_ARM]


def test_bench_modes_cannot_name_the_calibration_arms():
    for mode in (AA_ARM, WORK_ARM):
        with pytest.raises(ConfigError):
            Config.from_args(online_cpus={0, 1}, mode=mode)


def _paced_run(work_factor, common_sd=0.12, blocks=12):
    """Paced cells whose server and wrk CPU move together with the machine's momentary speed
    (what this VM does: ±12 % per cell), with the injected cost only in the server's."""
    import random
    rng = random.Random(3)
    out = []
    for rep in range(blocks):
        for arm, factor in (("regular", 1.0), (AA_ARM, 1.0), (WORK_ARM, work_factor)):
            speed = rng.gauss(1, common_sd)  # each cell its own: adjacent cells differ too
            cpu = 8.0 * speed * factor * rng.gauss(1, 0.01)
            out.append(_sample(arm, rep, cpu, 100_000, offered_rate=50_000, rate_sustained=True,
                               server_cpu_s=cpu * 0.2,  # 200K requests per cell
                               loadgen_cpu_s=1.6 * speed * rng.gauss(1, 0.01)))
    return runstats.summarize(out)


def test_paced_calibration_is_judged_on_server_cpu_against_wrk_cpu_which_cancels_the_common_factor():
    result = calibrate.judge(_paced_run(1.05), SIZING)
    assert result["metric"] == calibrate.PACED_METRIC
    assert result["passed"] and result["injected_verdict"] == stats.WORSE
    assert result["injected_effect"] == pytest.approx(0.05, abs=0.015)
    assert result["family_size"] == 10  # 2 arms x 5 metrics: paced runs add it to the family
    assert "server CPU per wrk CPU" in calibration_report.render_markdown(result, Path("/x/run"))
    # the same cells judged on CPU/request alone: the common factor hides the cost
    cpu = [c.metrics["cpu_us_per_request"] for c in _paced_run(1.05).comparisons if c.arm == WORK_ARM]
    assert cpu[0].verdict == stats.NO_DIFFERENCE and cpu[0].mde > 0.05


def test_the_paced_metric_exists_only_at_equal_offered_load():
    metric = metrics.METRICS["cpu_per_loadgen_cpu"]
    assert metric.extract(make_sample(server_cpu_s=1.0, loadgen_cpu_s=2.0, offered_rate=None)) is None
    assert metric.extract(make_sample(server_cpu_s=1.0, loadgen_cpu_s=2.0, offered_rate=5000)) == 0.5
    assert metric.extract(make_sample(server_cpu_s=1.0, loadgen_cpu_s=0.0, offered_rate=5000)) is None
    assert metrics.compared_metrics([make_sample(offered_rate=None)]) == metrics.COMPARED_METRICS
    assert metrics.compared_metrics([make_sample(offered_rate=5000)]) == (*metrics.COMPARED_METRICS, "cpu_per_loadgen_cpu")
    assert calibrate.judge(_run(1.0, 1.05), SIZING)["metric"] == calibrate.METRIC  # unpaced
