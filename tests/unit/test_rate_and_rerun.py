"""--rate (equal offered load) and --from (rerun from a manifest): config, pilot, samples, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zcbench.measure import bench
from zcbench.present import report
from zcbench.analyze import stats
from zcbench.analyze import summary as summary_mod
from zcbench.measure.config import Config, ConfigError, rate_key, rerun_config
from zcbench.measure.plan import plan_cells
from zcbench.core.rundir import load_samples

from sample_factory import make_sample

RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"


def test_rate_option_fixed_auto_and_bad():
    fixed = Config.from_args(online_cpus={0, 1}, rate="50000")
    assert fixed.rate == 50000 and not fixed.rate_auto and fixed.rate_for(100, 88) == 50000
    auto = Config.from_args(online_cpus={0, 1}, rate="auto")
    assert auto.rate is None and auto.rate_auto
    assert Config.from_args(online_cpus={0, 1}).rate_for(100, 88) is None
    for bad in ("fast", "0", "-5"):
        with pytest.raises(ConfigError, match="--rate"):
            Config.from_args(online_cpus={0, 1}, rate=bad)


def test_rate_takes_shares_of_saturation_each_a_load_of_the_plan():
    auto = Config.from_args(online_cpus={0, 1}, rate="auto")
    assert auto.rate_shares == (0.7,) and auto.loads == (0.7,)
    shares = Config.from_args(online_cpus={0, 1}, rate="70%, 30%,12.5%", conns="100", repeat=2)
    assert shares.rate_auto and shares.rate is None and shares.rate_shares == (0.125, 0.3, 0.7)
    cells = plan_cells(shares)
    assert {c.load for c in cells} == {0.125, 0.3, 0.7} and len(cells) == 2 * 3 * 2
    # every block holds every arm at every load once
    assert sorted((c.rep, c.load, c.arm) for c in cells) == sorted(
        (rep, load, arm) for rep in range(2) for load in (0.125, 0.3, 0.7) for arm in ("regular", "zc"))
    assert Config.from_args(online_cpus={0, 1}, rate="off").loads == (None,)
    assert Config.from_args(online_cpus={0, 1}, rate="20000").loads == (None,)
    assert rate_key(100, 88, 0.3) == "100/88@30%" and rate_key(100, 88) == "100/88"


@pytest.mark.parametrize("bad, why", [
    ("0%", "above 0% and at most 100%"), ("150%", "above 0% and at most 100%"),
    ("abc%", "no share of saturation"), ("auto,5", "auto stands alone"), ("30%,5000", "no share of saturation"),
    ("10000,20000", "one absolute rate per run"), ("30%,30%", "repeats a load"), ("-5%", "above 0%"),
    ("nan%", "above 0%"), ("off,50%", "off stands alone")])
def test_a_bad_rate_is_one_line_naming_the_option(bad, why):
    with pytest.raises(ConfigError) as raised:
        Config.from_args(online_cpus={0, 1}, rate=bad)
    message = str(raised.value)
    assert message.startswith(f"--rate {bad}") and why in message and "\n" not in message


def test_auto_rates_offer_a_share_of_the_slower_arm_per_cell():
    def sample(arm, conns, rps):
        return make_sample(arm, conns=conns, requests_per_s=rps)
    pilot = [sample("regular", 100, 100_000.0), sample("zc", 100, 90_000.0), sample("zc", 100, 94_000.0),
             sample("regular", 1000, 200_000.0), sample("zc", 1000, 210_000.0)]
    # the slower arm by its median over the pilot's repetitions
    assert bench.auto_rates(pilot, (0.7,)) == {rate_key(100, 88, 0.7): 64_400, rate_key(1000, 88, 0.7): 140_000}
    # several loads: each a share of the same saturation
    assert bench.auto_rates(pilot, (0.3, 0.7)) == {
        rate_key(100, 88, 0.3): 27_600, rate_key(100, 88, 0.7): 64_400,
        rate_key(1000, 88, 0.3): 60_000, rate_key(1000, 88, 0.7): 140_000}
    # one draw at a slow moment of a shared machine does not drag the rate down (a mean would: 47,133)
    slow_moment = pilot + [sample("zc", 100, 20_000.0)]
    assert bench.auto_rates(slow_moment, (0.7,))[rate_key(100, 88, 0.7)] == 63_000


def _paced_result(requests, duration_s, ramp_ms, lapsed=0):
    return {"requests": requests, "duration_us": duration_s * 1e6,
            "paced": {"threads": 1, "ramp_ms_mean": ramp_ms, "ramp_ms_max": ramp_ms,
                      "slots": requests + 100, "lapsed_slots": lapsed}}


def test_rate_fields_flag_a_cell_that_fell_short():
    assert bench.rate_fields(None, [_paced_result(1000, 1.0, 0)]) == {
        "offered_rate": None, "achieved_rate": None, "rate_sustained": None,
        "paced_window_s": None, "lapsed_slots": None}
    assert bench.rate_fields(1000, [_paced_result(990, 1.0, 0)])["rate_sustained"] is True
    assert bench.rate_fields(1000, [_paced_result(900, 1.0, 0, lapsed=95)]) == {
        "offered_rate": 1000, "achieved_rate": 900.0, "rate_sustained": False,
        "paced_window_s": 1.0, "lapsed_slots": 95}


def test_the_achieved_rate_leaves_out_the_time_wrk_spent_opening_its_connections():
    # measured: 4000 connections took wrk 232 ms to open, inside its 2.03 s, before any slot
    opened_late = _paced_result(17930, 2.0318, 232.2)
    assert 17930 / 2.0318 < 0.97 * 10000  # over wrk's whole duration the cell would look short
    fields = bench.rate_fields(10000, [opened_late])
    assert fields["paced_window_s"] == pytest.approx(1.7996)
    assert fields["achieved_rate"] == pytest.approx(17930 / 1.7996) and fields["rate_sustained"] is True
    # two loadgens: each over its own window, summed
    two = bench.rate_fields(20000, [opened_late, _paced_result(10000, 1.0, 0)])
    assert two["achieved_rate"] == pytest.approx(17930 / 1.7996 + 10000) and two["rate_sustained"]
    # paced.lua's own window (first slot to each thread's stop) wins over duration less ramp
    windowed = _paced_result(17930, 2.0318, 232.2)
    windowed["paced"]["window_ms_mean"] = 1850.0
    assert bench.rate_fields(10000, [windowed])["achieved_rate"] == pytest.approx(17930 / 1.85)
    # a run whose threads never took a slot offered nothing: no window, achieved 0
    never = {"requests": 0, "duration_us": 1e6, "paced": {"threads": 1, "ramp_ms_mean": None,
                                                          "ramp_ms_max": None, "slots": 0, "lapsed_slots": 0}}
    assert bench.rate_fields(1000, [never])["rate_sustained"] is False


def test_equal_load_report_judges_a_short_cell_instead_of_dropping_it():
    run = RUNS / "paced"
    manifest = json.loads((run / "manifest.json").read_text())
    summary = summary_mod.build_summary(manifest, load_samples(run / "samples.jsonl"))
    text = report.render_markdown(summary, manifest)
    assert "## At equal offered load" in text and "| Offered | Achieved |" in text
    # zc fell short in every block at 1000 conns: no equal-load CPU pair, but latency and the
    # shortfall itself are judged
    short = summary.comparison("zc", 1000, 88)
    assert short.metrics["cpu_us_per_request"].verdict == stats.NO_DATA
    assert short.metrics["latency_p99_us"].n_pairs == 10
    assert short.shortfall.verdict == stats.WORSE and short.shortfall.arm_short == 10
    # the fixture's truth at 100 conns: zc costs 6 % more CPU per request, found at equal load
    found = summary.comparison("zc", 100, 88).metrics["cpu_us_per_request"]
    assert found.verdict == stats.WORSE and found.delta == pytest.approx(0.06, abs=0.01)
    assert found.family == "primary" and found.family_size == 1  # the only primary test with pairs
    glance = text[text.index("## At a glance"):text.index("## At equal offered load")]
    assert glance.index("server CPU per request** (primary)") < glance.index("p99 latency")
    assert "zc could not hold 60K req/s in 10 of 10 blocks, regular in 0" in glance
    assert "--rate 48420" in glance  # a lower rate for the cell that could not hold it
    assert "MDE ±0.0%" not in text
    # throughput is fixed by the pacing: never tested
    assert all("requests_per_s" not in c.metrics for c in summary.comparisons)


def _manifest_of(config: Config, tmp_path: Path) -> Path:
    path = tmp_path / "run" / "manifest.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"config": json.loads(json.dumps(config.to_json()))}))
    return path


def test_rerun_keeps_matrix_seed_order_and_chosen_rates_and_records_overrides(tmp_path):
    from dataclasses import replace

    original = replace(Config.from_args(online_cpus={0, 1}, mode="all", conns="50,100", seed=7, rate="auto"),
                       cell_rates={rate_key(50, 88, 0.7): 1000, rate_key(100, 88, 0.7): 2000})
    path = _manifest_of(original, tmp_path)
    again = rerun_config(path, {}, online_cpus={0, 1})
    assert [c.to_json() for c in plan_cells(again)] == [c.to_json() for c in plan_cells(original)]
    assert again.cell_rates == original.cell_rates and again.rate_for(100, 88, 0.7) == 2000
    # several loads come back as they were given
    loads = replace(Config.from_args(online_cpus={0, 1}, conns="100", seed=7, rate="30%,70%"),
                    cell_rates={rate_key(100, 88, 0.3): 900, rate_key(100, 88, 0.7): 2100})
    loads_again = rerun_config(_manifest_of(loads, tmp_path / "loads"), {}, online_cpus={0, 1})
    assert loads_again.rate_shares == (0.3, 0.7) and loads_again.cell_rates == loads.cell_rates
    assert again.extra["rerun_of"] == str(path.parent) and again.extra["rerun_overrides"] == []
    shorter = rerun_config(path, {"duration": "2", "rate": "500"}, online_cpus={0, 1})
    assert shorter.duration_s == 2 and shorter.rate_for(100, 88) == 500 and shorter.cell_rates == {}
    assert shorter.extra["rerun_overrides"] == ["duration", "rate"] and shorter.seed == 7


def test_a_rerun_of_an_auto_run_takes_a_lower_rate_where_blocks_fell_short(tmp_path):
    from dataclasses import replace

    from sample_factory import make_sample
    from zcbench.core import rundir

    # recorded before the load axis: --rate auto's rates keyed by conns and size alone, samples
    # without a load (taken to be at auto's share)
    original = replace(Config.from_args(online_cpus={0, 1}, mode="zc", conns="50,100", seed=7, rate="auto"),
                       cell_rates={rate_key(50, 88): 1000, rate_key(100, 88): 2000})
    path = _manifest_of(original, tmp_path)
    # at 100 conns zc fell short in 3 of 4 blocks (reaching 1500 at worst); at 50 conns once only
    for rep in range(4):
        for arm in ("regular", "zc"):
            short_100 = arm == "zc" and rep < 3
            rundir.append_sample(path.parent, make_sample(
                arm, rep, conns=100, offered_rate=2000, rate_sustained=not short_100,
                achieved_rate=1500.0 + 100 * rep if short_100 else 2000.0))
            rundir.append_sample(path.parent, make_sample(
                arm, rep, conns=50, offered_rate=1000, rate_sustained=not (arm == "zc" and rep == 0),
                achieved_rate=900.0 if arm == "zc" and rep == 0 else 1000.0))
    again = rerun_config(path, {}, online_cpus={0, 1})
    assert again.rate_for(100, 88, 0.7) == 1350  # 90 % of 1500
    assert again.rate_for(50, 88, 0.7) == 1000  # one short block is tolerated
    assert again.extra["rates_lowered"] == {rate_key(100, 88, 0.7): 1350}
    # a fixed --rate given on the rerun wins, and an unpaced-to-auto switch keeps nothing
    assert rerun_config(path, {"rate": "700"}, online_cpus={0, 1}).rate_for(100, 88) == 700


def test_rerun_refuses_what_it_cannot_rerun(tmp_path):
    with pytest.raises(ConfigError, match="no such manifest"):
        rerun_config(tmp_path / "nope.json", {}, online_cpus={0, 1})
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ConfigError, match="not a zcbench manifest"):
        rerun_config(bad, {}, online_cpus={0, 1})


def test_reports_and_task_definitions_do_not_read_playbook_files():
    """`invoke report`/`compare` must work without the inventory: no YAML read at import."""
    import subprocess
    import sys

    from zcbench.core.paths import ROOT

    code = ("import sys\n"
            "opened = []\n"
            "sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == 'open' else None)\n"
            "sys.path.insert(0, '.')\n"
            "import tasks, zcbench.present.report, zcbench.analyze.compare, zcbench.measure.sweep, zcbench.measure.bench\n"
            "print([p for p in opened if 'playbooks' in p])\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_missing_inventory_defaults_give_one_line(monkeypatch, tmp_path):
    from zcbench.measure import config

    monkeypatch.setattr(config, "CPU_ISOLATION_DEFAULTS", tmp_path / "missing.yml")
    with pytest.raises(ConfigError, match="no default --server-cpus") as err:
        Config.from_args(online_cpus={0, 1})
    assert "\n" not in str(err.value)
    assert Config.from_args(online_cpus={0, 1}, server_cpus="0", loadgen_cpus="1").server_cpus == (0,)


def test_a_sweep_runs_at_one_load():
    from zcbench.measure import sweep

    assert sweep.sweep_config(rate="50%", online_cpus={0, 1}).rate_shares == (0.5,)
    with pytest.raises(ConfigError, match="a sweep runs at one load"):
        sweep.sweep_config(rate="30%,70%", online_cpus={0, 1})


def test_a_reruns_report_names_its_run_and_the_rates_it_lowered():
    from zcbench.present.environment import environment_rows
    manifest = {"run_id": "r2", "config": {"extra": {"rerun_of": "/results/r1",
                                                     "rates_lowered": {rate_key(1000, 88, 0.7): 39492}}}}
    row = dict((name, value) for name, value in environment_rows(manifest))["Rerun of"]
    assert row.startswith("/results/r1") and "rates lowered" in row and "39492" in row
    plain = {"run_id": "r3", "config": {"extra": {"rerun_of": "/results/r1"}}}
    assert dict((n, v) for n, v in environment_rows(plain))["Rerun of"] == "/results/r1"
