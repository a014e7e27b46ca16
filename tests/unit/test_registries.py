"""The arm registry and the load generator registry: what a contributor adds in one place
reaches everything that uses it, and the C server's send modes are the Python arms."""

from __future__ import annotations

import json
import re

import pytest

from sample_factory import make_sample

from zcbench.core import arms, rundir
from zcbench.core.paths import ROOT
from zcbench.measure import loadgen
from zcbench.measure.config import Config, ConfigError
from zcbench.measure.loadgen.base import LoadGenerator
from zcbench.measure.plan import plan_cells
from zcbench.present import plot_blocks, plot_forest, plot_latency, plot_sweep, report

THROWAWAY = arms.Arm("zc-throwaway", "Throwaway Zero-Copy Send", send="zc", zero_copy=True, limit="memlock")


@pytest.fixture
def throwaway_arm():
    arms.register(THROWAWAY)
    yield THROWAWAY
    arms.unregister(THROWAWAY.name)


def test_every_send_mode_of_the_servers_header_is_an_arm():
    header = (ROOT / "server" / "include" / "zcb_modes.h").read_text()
    names = re.findall(r'^\s*X\(\w+, "([^"]+)"', header, re.M)
    assert names and names[0] == arms.BASELINE
    for name in names:
        arm = arms.get(name)
        assert arm.send == name and arm.server == arms.ZCBENCH and not arm.calibration
    assert set(names) <= set(arms.bench_arms())
    assert set(arms.modes()["all"]) == set(names)


def test_a_throwaway_arm_reaches_config_plan_report_and_plots(throwaway_arm, tmp_path, monkeypatch):
    # config validation: a --mode of its own, run beside the baseline it is judged against
    config = Config.from_args(mode=throwaway_arm.name, online_cpus={0, 1}, conns="100", repeat=3,
                              nofile=20000, out=tmp_path)
    assert config.arms == (arms.BASELINE, throwaway_arm.name)
    with pytest.raises(ConfigError, match="unknown --mode"):
        Config.from_args(mode="zc-nonexistent", online_cpus={0, 1}, nofile=20000)
    # the plan: every block holds it
    cells = plan_cells(config)
    assert sorted(c.arm for c in cells if c.rep == 0) == sorted(config.arms)
    # the report and the plots, from samples the plan would have produced
    run_id, run_dir = rundir.new_run_dir(tmp_path, "throwaway")
    for cell in cells:
        cost = 10.0 if cell.arm == arms.BASELINE else 12.0
        rundir.append_sample(run_dir, make_sample(cell.arm, cell.rep, index=cell.index, requests=10000,
                                                  requests_per_s=5000.0, cpu_us_per_request=cost + cell.rep * 0.1,
                                                  server_cpu_s=0.1))
    rundir.write_manifest(run_dir, {"run_id": run_id, "config": config.to_json(), "complete": True})
    colours = []
    monkeypatch.setattr(arms, "color", lambda name, original=arms.color: colours.append(name) or original(name))
    summary = report.render_run(run_dir)
    text = (run_dir / rundir.REPORT).read_text()
    assert throwaway_arm.title in text and f"{throwaway_arm.name} vs regular" in text
    assert [c.arm for c in summary.comparisons] == [throwaway_arm.name]
    assert throwaway_arm.name in colours and summary.plots
    assert all((run_dir / plot).stat().st_size > 0 for plot in summary.plots)
    # the plots ask the registry, nothing of their own
    assert plot_blocks.arms is plot_latency.arms is plot_sweep.arms is plot_forest.arms is arms


def test_an_arm_name_is_registered_once():
    with pytest.raises(ValueError, match="already registered"):
        arms.register(arms.Arm(arms.BASELINE, "again"))


class _Named(LoadGenerator):
    name = "named-only"


def test_a_load_generator_registers_by_name_and_reaches_config(tmp_path):
    generator = loadgen.register(_Named())
    try:
        config = Config.from_args(loadgen="named-only", online_cpus={0, 1}, nofile=20000, out=tmp_path)
        assert config.loadgen == "named-only" and config.to_json()["loadgen"] == "named-only"
        with pytest.raises(ValueError, match="already registered"):
            loadgen.register(_Named())
    finally:
        loadgen.unregister(generator.name)
    with pytest.raises(ConfigError, match="unknown --loadgen 'named-only'"):
        Config.from_args(loadgen="named-only", online_cpus={0, 1}, nofile=20000)


def test_wrk_is_the_default_generator_and_checks_its_threads():
    assert Config.from_args(online_cpus={0, 1}, nofile=20000).loadgen == loadgen.DEFAULT == "wrk"
    with pytest.raises(ConfigError, match="wrk needs at least one connection per thread"):
        Config.from_args(online_cpus={0, 1}, nofile=20000, threads=8, conns="4")


def test_an_older_samples_file_names_its_generator_wrk(tmp_path):
    old = make_sample().to_json()
    old["schema"] = 1
    old["wrk"], old["wrk_command"] = old.pop("loadgen_result"), old.pop("loadgen_command")
    del old["loadgen"]
    (tmp_path / rundir.SAMPLES).write_text(json.dumps(old) + "\n")
    [sample] = rundir.load_samples(tmp_path)
    assert sample.loadgen == "wrk" and sample.loadgen_result == old["wrk"]


def test_the_send_paths_declare_their_pages_limit_and_needs():
    """zcb_modes.h's entries carry what reports and probes need: whether a copied share applies
    (user pages, zero-copy), the limit that bounds a mode, and what the kernel must offer."""
    splice, msgzc, sendmsg = arms.get("splice"), arms.get("msg-zerocopy"), arms.get("sendmsg-zc")
    assert splice.zero_copy and not splice.user_pages and not splice.copied_share_applies
    assert msgzc.limit == "optmem_max" and msgzc.needs == ("SENDMSG", "RECVMSG", "SO_ZEROCOPY")
    assert sendmsg.limit == "memlock" and sendmsg.needs == ("SENDMSG_ZC",) and sendmsg.copied_share_applies
    assert not arms.get("regular").copied_share_applies and arms.get("adaptive").zero_copy
    assert all(arm.needs and arm.kernel for arm in arms.server_modes())
    assert arms.get("zc").to_json()["needs"] == ["SEND_ZC"] and arms.get("zc").to_json()["user_pages"] is True


def test_a_malformed_modes_entry_is_not_an_arm():
    text = ('    X(OK, "ok", 1, 0, 1, "memlock", "6.0", "SEND_ZC", "Ok") \\\n'
            '    X(OLD, "old", 1, 0, "memlock", "6.0", "Old format") \\\n')
    assert [arm.name for arm in arms.parse_modes_header(text)] == ["ok"]
