"""The new send paths on the Python side: --mode all skips the modes this kernel lacks,
--zc-min-bytes reaches the adaptive server only (a number, or the latest sweep's crossover on this
host and images), and the report says which path avoided the copy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sample_factory import make_sample

from zcbench import jobs
from zcbench.core import arms, rundir
from zcbench.measure import bench, sweep
from zcbench.measure.config import Config, ConfigError, supported_modes
from zcbench.measure.plan import plan_cells
from zcbench.present import report


def config(**kwargs) -> Config:
    return Config.from_args(online_cpus={0, 1}, nofile=20000, **kwargs)


SUPPORT = {arm.name: {"supported": True, "unsupported": None} for arm in arms.server_modes()}


def test_mode_all_skips_what_the_kernel_lacks_and_says_why():
    lacking = SUPPORT | {"sendmsg-zc": {"supported": False, "unsupported": "this kernel lacks IORING_OP_SENDMSG_ZC"}}
    everything = config(mode="all")
    assert "sendmsg-zc" in everything.arms
    kept = supported_modes(everything, lacking)
    assert "sendmsg-zc" not in kept.arms and len(kept.arms) == len(everything.arms) - 1
    assert kept.extra["modes_skipped"] == {"sendmsg-zc": "this kernel lacks IORING_OP_SENDMSG_ZC"}
    assert supported_modes(everything, SUPPORT) is everything
    with pytest.raises(ConfigError, match="--mode sendmsg-zc: this kernel cannot run the sendmsg-zc send mode"):
        supported_modes(config(mode="sendmsg-zc"), lacking)


def test_zc_min_bytes_reaches_the_adaptive_server_only():
    cfg = config(mode="all", zc_min_bytes="16k")
    assert cfg.zc_min_bytes == 16384 and not cfg.zc_min_bytes_crossover
    commands = {cell.arm: bench.server_spec(cfg, cell, "127.0.0.1").command() for cell in plan_cells(cfg)}
    adaptive = commands["adaptive"]
    assert adaptive[adaptive.index("--zc-min-bytes") + 1] == "16384"
    assert all("--zc-min-bytes" not in command for arm, command in commands.items() if arm != "adaptive")
    assert config(mode="adaptive", zc_min_bytes="crossover").zc_min_bytes_crossover
    with pytest.raises(ConfigError, match="only the adaptive arm takes it"):
        config(mode="zc", zc_min_bytes="4k")
    with pytest.raises(ConfigError, match="--zc-min-bytes"):
        config(mode="adaptive", zc_min_bytes="lots")


def _sweep_run(out: Path, name: str, started: str, kernel: str, images: dict, crossover_size: int | None,
               complete: bool = True) -> Path:
    run = out / name
    run.mkdir(parents=True)
    (run / rundir.SAMPLES).touch()
    rundir.write_manifest(run, {"run_id": name, "complete": complete, "started_at": started,
                                "config": {"extra": {"sweep": {"sizes": [88, 16384]}}},
                                "host": {"kernel_release": kernel}, "images": images})
    crossovers = [{"arm": "zc", "conns": 100, "status": "crossover" if crossover_size else "none in range",
                   "size": crossover_size}, {"arm": "zc-fixed", "conns": 100, "status": "crossover", "size": 88}]
    rundir.write_json(run / rundir.SUMMARY, {"sweep": {"crossovers": crossovers}})
    return run


def test_zc_min_bytes_crossover_takes_the_latest_sweep_on_this_host_and_images(tmp_path):
    mine = {"zcbench/server:latest": "sha256:a", "zcbench/loadgen:latest": "sha256:b"}
    _sweep_run(tmp_path, "old", "2026-12-01T00:00:00Z", "6.18", mine, 4096)
    newest = _sweep_run(tmp_path, "new", "2026-12-03T00:00:00Z", "6.18", mine, 16384)
    _sweep_run(tmp_path, "other-kernel", "2026-12-04T00:00:00Z", "6.1", mine, 65536)
    _sweep_run(tmp_path, "other-images", "2026-12-04T00:00:00Z", "6.18", mine | {"zcbench/server:latest": "sha256:c"}, 88)
    _sweep_run(tmp_path, "cut-short", "2026-12-05T00:00:00Z", "6.18", mine, 88, complete=False)
    found = sweep.latest_crossover(tmp_path, "6.18", mine)
    assert found == {"size": 16384, "arm": "zc", "conns": 100, "run": str(newest)}
    assert "16384" in jobs.sweep_recommendation(newest) and "crossover" in jobs.sweep_recommendation(newest)
    with pytest.raises(ConfigError, match="no complete sweep under"):
        sweep.latest_crossover(tmp_path, "5.15", mine)
    _sweep_run(tmp_path, "no-win", "2026-12-06T00:00:00Z", "6.18", mine, None)
    with pytest.raises(ConfigError, match="found no size where zc pays"):
        sweep.latest_crossover(tmp_path, "6.18", mine)
    assert jobs.sweep_recommendation(tmp_path / "no-win").startswith("no --zc-min-bytes to recommend")


def test_the_report_says_which_path_avoided_the_copy(tmp_path):
    run_id, run_dir = rundir.new_run_dir(tmp_path, "paths")
    counters = {"regular": {"responses": 1000, "sends_regular": 1000},
                "zc": {"responses": 1000, "sends_zc": 900, "sends_regular": 100, "zc_notifs": 900, "zc_copied": 900},
                "splice": {"responses": 1000, "sends_regular": 1000, "splices": 1000},
                # below --zc-min-bytes: every send regular, no notification
                "adaptive": {"responses": 1000, "sends_zc": 0, "sends_regular": 1000, "zc_notifs": 0, "zc_copied": 0}}
    index = 0
    for rep in range(3):
        for arm, cost in (("regular", 10.0), ("zc", 11.0), ("splice", 12.0), ("adaptive", 10.0)):
            rundir.append_sample(run_dir, make_sample(arm, rep, index=index, response_size=16384, requests=1000,
                                                      requests_per_s=1000.0, cpu_us_per_request=cost + rep * 0.01,
                                                      server_cpu_s=0.01, server_counters=counters[arm]))
            index += 1
    rundir.write_manifest(run_dir, {"run_id": run_id, "complete": True, "config": {
        "extra": {"modes_skipped": {"sendmsg-zc": "this kernel lacks IORING_OP_SENDMSG_ZC"}}}})
    report.render_run(run_dir)
    text = (run_dir / rundir.REPORT).read_text()
    section = text.split("## Which path avoided the copy on this host", 1)[1].split("\n## ", 1)[0]
    zc = next(line for line in section.splitlines() if line.startswith(f"| {arms.title('zc')} |"))
    splice = next(line for line in section.splitlines() if line.startswith(f"| {arms.title('splice')} |"))
    assert "| 100.0% | 90.0% |" in zc  # every zero-copy send copied; 90 % of its sends were zero-copy
    assert report.PAGE_CACHE in splice and "3,000 splices" in splice  # summed over the 3 blocks
    adaptive = next(line for line in section.splitlines() if line.startswith(f"| {arms.title('adaptive')} |"))
    assert report.NO_ZC_SENDS in adaptive and "| 0.0% |" in adaptive
    assert "Not run on this host: **sendmsg-zc**: this kernel lacks IORING_OP_SENDMSG_ZC" in section
    assert json.loads((run_dir / rundir.SUMMARY).read_text())["arms"] == ["regular", "zc", "splice", "adaptive"]
