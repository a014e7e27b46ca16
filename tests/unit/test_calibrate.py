"""zcbench.analyze.calibration: sizing the dose ladder, judging a run from recorded samples (pass
and every way to fail), repeated runs, and keeping the knob out of benches."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest

from zcbench.analyze import calibration as calibrate
from zcbench.analyze import metrics, runstats, stats
from zcbench.core import arms
from zcbench.core.arms import AA_ARM, WORK_ARM
from zcbench.measure import calibrate as calibration_plan
from zcbench.measure.config import Config, ConfigError
from zcbench.present import calibration as calibration_report

from sample_factory import make_sample

DOSE_ARMS = [arms.dose_arm(i).name for i in (1, 2, 3)]
RESPONSES = 200_000


def _sample(arm, rep, cpu, rps=100_000.0, conns=100, work_ns=None, **fields):
    """A sample of RESPONSES responses; work_ns: its loop's time over all of them (the server
    times one send in 16: the counters carry that share of both)."""
    timed = RESPONSES // 16
    counters = {"responses": RESPONSES} | ({calibrate.WORK_COUNTER: work_ns * timed / RESPONSES,
                                            calibrate.TIMED_COUNTER: timed} if work_ns is not None else {})
    return make_sample(arm, rep, conns=conns, cpu_us_per_request=cpu, requests_per_s=rps,
                       requests=RESPONSES, server_counters=counters, **fields)


def _pilot(ratio, ns_per_iteration=None, plain=8.0):
    work_ns = None if ns_per_iteration is None else ns_per_iteration * calibrate.PILOT_WORK * RESPONSES
    return ([_sample("regular", rep, plain) for rep in range(3)]
            + [_sample(WORK_ARM, rep, plain * ratio, work_ns=work_ns) for rep in range(3)])


def test_doses_are_sized_from_the_loops_own_timing():
    # 1500 iterations of 2 ns: 3 µs on 8 µs per plain request
    sizing = calibrate.size_doses([(calibrate.PILOT_WORK, _pilot(1.375, ns_per_iteration=2.0))])
    assert sizing["sized_by"] == "loop timing" and sizing["ns_per_iteration"] == pytest.approx(2.0)
    per_iteration = 0.002 / 8.0
    assert [d["aimed"] for d in sizing["doses"]] == list(calibrate.DOSES)
    assert [d["work"] for d in sizing["doses"]] == [round(dose / per_iteration) for dose in calibrate.DOSES]
    assert [d["arm"] for d in sizing["doses"]] == DOSE_ARMS
    assert sizing["work"] == sizing["doses"][1]["work"] and sizing["expected_effect"] == 0.05


def test_without_loop_timing_the_ratio_is_pooled_over_every_pilot_block():
    # a noisy pilot: one block +60 %, one +40 %, one +50 %: the pooled slope is their mean
    pilot = [_sample("regular", rep, 8.0) for rep in range(3)] + [
        _sample(WORK_ARM, rep, 8.0 * ratio) for rep, ratio in enumerate((1.6, 1.4, 1.5))]
    slope, points = calibrate.pooled_effect_per_iteration([(calibrate.PILOT_WORK, pilot)])
    assert points == 3 and slope == pytest.approx(0.5 / calibrate.PILOT_WORK)
    sizing = calibrate.size_doses([(calibrate.PILOT_WORK, pilot)])
    assert sizing["sized_by"] == "paired ratio, pooled"
    assert sizing["doses"][2]["work"] == round(0.10 * calibrate.PILOT_WORK / 0.5)


def test_a_pilot_without_cpu_or_effect_is_refused():
    with pytest.raises(calibrate.CalibrationError, match="no server CPU"):
        calibrate.size_doses([(calibrate.PILOT_WORK, [_sample("regular", 0, None), _sample(WORK_ARM, 0, None)])])
    with pytest.raises(calibrate.CalibrationError, match="cost nothing"):
        calibrate.size_doses([(calibrate.PILOT_WORK, _pilot(0.99))])
    short = [_sample(arm, rep, 8.0, offered_rate=50_000, rate_sustained=False)
             for rep in range(3) for arm in ("regular", WORK_ARM)]
    with pytest.raises(calibrate.CalibrationError, match="held its rate"):
        calibrate.size_doses([(calibrate.PILOT_WORK, short)])


def test_measure_work_runs_one_pilot_and_says_what_it_sized():
    said = []
    sizing = calibrate.measure_work(lambda work: (f"/pilot-{work}", _pilot(1.375, 2.0)), log=said.append)
    assert sizing["pilot_run"] == f"/pilot-{calibrate.PILOT_WORK}" and len(sizing["pilots"]) == 1
    assert "loop timing" in said[0] and "+10.0% ->" in said[0]


SIZING = calibrate.size_doses([(calibrate.PILOT_WORK, _pilot(1.375, 2.0))])


def _calibration_samples(aa=1.0, doses=(0.025, 0.05, 0.10), measured=None, blocks=16, conns=(100, 1000),
                         noise=0.01, seed=1):
    """A calibration run's samples: per block a common drift, regular, the A/A arm (factor `aa`)
    and the dose arms costing `doses` more; each dose's loop timing says it cost `measured`
    (the doses themselves unless given)."""
    rng = random.Random(seed)
    measured = measured or doses
    out = []
    for rep in range(blocks):
        for c in conns:
            drift = rng.gauss(1, 0.05)
            base = 8.0 * drift
            out.append(_sample("regular", rep, base * rng.gauss(1, noise), conns=c))
            out.append(_sample(AA_ARM, rep, base * aa * rng.gauss(1, noise), conns=c))
            for arm, dose, truth in zip(DOSE_ARMS, doses, measured):
                plain = base * rng.gauss(1, noise)
                out.append(_sample(arm, rep, plain * (1 + dose), conns=c,
                                   work_ns=truth * 8.0 * drift * 1000 * RESPONSES))
    return out


def _judge(samples):
    return calibrate.judge(runstats.summarize(samples), samples, SIZING)


def test_a_quiet_aa_and_found_doses_whose_intervals_cover_their_truth_pass():
    result = _judge(_calibration_samples())
    assert result["passed"], result
    assert [a["verdict"] for a in result["aa"]] == [stats.NO_DIFFERENCE] * 2
    assert len(result["doses"]) == 6 and all(d["covered"] and d["passed"] for d in result["doses"])
    assert {d["aimed"] for d in result["doses"]} == set(calibrate.DOSES)
    for dose in result["doses"]:
        assert dose["true_effect"] == pytest.approx(dose["aimed"], rel=0.1)
        assert dose["ci"][0] <= 1 + dose["true_effect"] <= dose["ci"][1]
    assert result["family_size"] == 8  # primary family: (A/A + 3 doses) x 2 cells
    assert set(result["mde"]) == {"100c/88B", "1000c/88B"}
    page = calibration_report.render_markdown(result, Path("/x/run"))
    assert "PASSED" in page and "Dose ladder" in page and "FAIL" not in page


def test_a_dose_whose_interval_misses_its_measured_true_effect_fails():
    # the +10 % dose's loop said it cost +20 %: what was measured is not what was found
    result = _judge(_calibration_samples(measured=(0.025, 0.05, 0.20)))
    assert not result["passed"]
    missed = [d for d in result["doses"] if not d["covered"]]
    assert missed and all(d["aimed"] == 0.10 for d in missed)
    assert "interval misses the true effect" in calibration_report.render_markdown(result, Path("/x/run"))


def test_fewer_than_two_blocks_both_held_test_nothing_and_fail():
    """A busy machine's calibration in which regular fell short in one of two blocks: one pair
    each, so nothing is tested, and an untested A/A is no pass."""
    result = _judge(_calibration_samples(blocks=1))
    assert not result["passed"] and result["aa_verdict"] == "untested"
    assert all(a["verdict"] == stats.TOO_FEW and not a["passed"] and a["reason"] == calibrate.UNTESTED
               for a in result["aa"])
    assert all(d["verdict"] == stats.TOO_FEW and not d["passed"] and d["reason"] == calibrate.UNTESTED
               for d in result["doses"])


def test_a_false_alarm_fails():
    result = _judge(_calibration_samples(aa=1.04))
    assert not result["passed"] and result["aa_verdict"] == "false alarm"
    assert any(not a["passed"] for a in result["aa"])
    assert "false alarm" in calibration_report.render_markdown(result, Path("/x/run"))


def test_a_dose_above_the_mde_that_is_not_found_fails_and_one_below_it_need_not_be_found():
    # noisy blocks: the small doses sink below the MDE, the large one stays above it
    noisy = _judge(_calibration_samples(noise=0.06, blocks=10, seed=4))
    small = [d for d in noisy["doses"] if d["aimed"] == 0.025]
    assert all(not d["must_find"] for d in small)  # below the MDE: their verdict does not count
    # a dose that cost nothing in the server's measured CPU but whose loop claims +10 %: must be
    # found (its true effect is above the MDE) and is not
    hidden = _judge(_calibration_samples(doses=(0.025, 0.05, 0.0), measured=(0.025, 0.05, 0.10)))
    failed = [d for d in hidden["doses"] if d["aimed"] == 0.10]
    assert not hidden["passed"] and all(d["must_find"] and not d["found"] for d in failed)


def test_repeated_runs_give_the_false_positive_rate_and_the_power_per_dose():
    results = [_judge(_calibration_samples(seed=seed)) for seed in range(4)]
    results.append(_judge(_calibration_samples(aa=1.04, seed=9)))  # one run with a false alarm
    together = calibrate.repeated(results)
    assert together["runs"] == 5 and together["aa_tested"] == 10
    assert together["false_positives"] >= 1 and together["false_positive_rate"] == together["false_positives"] / 10
    low, high = together["false_positive_ci"]
    assert low <= together["false_positive_rate"] <= high
    assert [p["aimed"] for p in together["power"]] == list(calibrate.DOSES)
    assert all(p["tried"] == 10 and p["ci"][0] <= p["power"] <= p["ci"][1] for p in together["power"])
    assert 0 <= together["aa_uniformity_p"] <= 1 and len(together["aa_p_values"]) == 10
    page = calibration_report.render_markdown(results[-1] | {"repeated": together}, Path("/x/run"))
    assert "5 runs together" in page and "Power" in page


def test_injected_work_cannot_reach_a_real_comparison():
    config = Config.from_args(online_cpus={0, 1}, mode="zc", nofile=20000)
    with pytest.raises(ConfigError, match="calibration work"):
        dataclasses.replace(config, calibration_work={"zc": 100})  # no work arm: refused
    with pytest.raises(ConfigError, match="calibration work"):
        dataclasses.replace(config, arms=("regular", WORK_ARM))  # work arm without work
    doses = {DOSE_ARMS[0]: 100, DOSE_ARMS[1]: 200}
    calibrated = calibration_plan.calibration_config(config, doses)
    assert calibrated.arms == ("regular", AA_ARM, *DOSE_ARMS[:2]) and calibrated.calibration_work == doses
    # Only the dose arms' servers get the flag, each its own, and every calibration arm sends regular.
    from zcbench.measure import bench
    from zcbench.measure.plan import plan_cells

    commands = {cell.arm: bench.server_spec(calibrated, cell, "127.0.0.1").command()
                for cell in plan_cells(calibrated)}
    assert set(commands) == {"regular", AA_ARM, *DOSE_ARMS[:2]}
    assert all(c[c.index("--send") + 1] == "regular" for c in commands.values())
    for arm, work in doses.items():
        assert commands[arm][commands[arm].index("--calibration-work") + 1] == str(work)
    assert "--calibration-work" not in commands["regular"] + commands[AA_ARM]


def test_the_rate_pilot_of_a_calibration_runs_the_pilots_work():
    config = Config.from_args(online_cpus={0, 1}, mode="regular", nofile=20000, rate="auto")
    rated = calibration_plan.rate_pilot_config(config, calibrate.PILOT_WORK)
    assert rated.arms == ("regular", WORK_ARM) and rated.calibration_work == {WORK_ARM: calibrate.PILOT_WORK}
    assert rated.conns == config.conns  # every cell's rate leaves room for the work


@pytest.mark.parametrize("text,expected", [("2.5,5,10", (0.025, 0.05, 0.10)), ("10,1", (0.01, 0.10))])
def test_doses_parse_as_percents(text, expected):
    assert calibration_plan.parse_doses(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["x", "0", "100", "1,1", "1,2,3,4,5"])
def test_bad_doses_are_refused_in_one_line(text):
    with pytest.raises(ConfigError, match="--doses"):
        calibration_plan.parse_doses(text)


def test_bench_modes_cannot_name_the_calibration_arms():
    for mode in (AA_ARM, WORK_ARM, *DOSE_ARMS):
        with pytest.raises(ConfigError):
            Config.from_args(online_cpus={0, 1}, mode=mode, nofile=20000)


def test_the_paced_metric_exists_only_at_equal_offered_load():
    metric = metrics.METRICS["cpu_per_loadgen_cpu"]
    assert metric.extract(make_sample(server_cpu_s=1.0, loadgen_cpu_s=2.0, offered_rate=None)) is None
    assert metric.extract(make_sample(server_cpu_s=1.0, loadgen_cpu_s=2.0, offered_rate=5000)) == 0.5
    assert metric.extract(make_sample(server_cpu_s=1.0, loadgen_cpu_s=0.0, offered_rate=5000)) is None
    assert metrics.metric_plan([make_sample(offered_rate=None)]) == metrics.UNPACED_PLAN
    assert metrics.metric_plan([make_sample(offered_rate=5000)]) == metrics.PACED_PLAN
    assert metrics.PACED_PLAN.primary == metrics.UNPACED_PLAN.primary == "cpu_us_per_request"
    assert "requests_per_s" not in metrics.PACED_PLAN.metrics  # fixed by the pacing: not tested
