"""measure.servers: one long-lived server per (server, arm, size) of a plan, each on its own port;
and what a run's timing says (bench.timing_record, Sample.measured_window_s)."""

from dataclasses import replace

import pytest

from zcbench.core.samples import Cell
from zcbench.measure import bench, servers
from zcbench.measure.calibrate import calibration_config
from zcbench.measure.config import Config
from zcbench.measure.plan import plan_cells

from sample_factory import make_sample


def config(**kw) -> Config:
    return Config.from_args(online_cpus={0, 1}, nofile=20000, seed=5, **kw)


def test_every_server_of_a_plan_once_on_consecutive_ports_in_a_fixed_order():
    cfg = config(mode="zc", server="both", response_size="88,4k", port=9000)
    ports = servers.server_ports(cfg, plan_cells(cfg))
    assert [(k.server, k.arm, k.response_size) for k in ports] == [
        ("zcbench", "regular", 88), ("zcbench", "regular", 4096), ("zcbench", "zc", 88), ("zcbench", "zc", 4096),
        ("nginx", "nginx", 88), ("nginx", "nginx", 4096)]
    assert list(ports.values()) == list(range(9000, 9006))
    # another seed (another cell order): the same servers on the same ports
    assert servers.server_ports(replace(cfg, seed=99), plan_cells(replace(cfg, seed=99))) == ports


def test_each_cell_is_served_by_its_arm_and_size_server():
    cfg = config(mode="zc", response_size="88,4k")
    pool = servers.ServerPool(client=None)

    class Running:
        name = "container"

    for key, port in servers.server_ports(cfg, plan_cells(cfg)).items():
        pool.servers[key] = servers.Server(key, port, running=Running(), work=None)
    cell = Cell(index=3, server="zcbench", arm="zc", conns=1000, response_size=4096, rep=2)
    assert pool.for_cell(cell).key == servers.ServerKey("zcbench", "zc", 4096)
    assert [entry["port"] for entry in pool.describe()] == [8088, 8089, 8090, 8091]


def test_a_calibration_gets_one_server_per_dose_with_its_work_and_none_elsewhere():
    cfg = calibration_config(config(mode="regular"), {"regular-dose1": 300, "regular-dose2": 600})
    specs = {key.arm: servers.server_spec(cfg, key, "127.0.0.1", port).command()
             for key, port in servers.server_ports(cfg, plan_cells(cfg)).items()}
    work = {arm: command[command.index("--calibration-work") + 1] if "--calibration-work" in command else None
            for arm, command in specs.items()}
    assert work == {"regular": None, "regular-aa": None, "regular-dose1": "300", "regular-dose2": "600"}
    assert len({command[command.index("--port") + 1] for command in specs.values()}) == 4


def test_the_measured_share_is_the_samples_windows_over_the_wall_time():
    progress = bench.RunProgress(started=100.0, since="command", cells_planned=4, done=4, measured_s=8.0,
                                 pilot_s=1.2, pilot_measured_s=1.0, setup_s=2.0, cells_s=8.7)
    timing = bench.timing_record(progress, wall_s=10.0, warmup_s=0)
    assert timing["measured_share"] == pytest.approx(0.8) and timing["started"] == "command"
    assert timing["wall_s"] == 10.0 and timing["pilot_s"] == 1.2 and timing["cells_done"] == 4


def test_a_samples_measured_window_is_the_window_its_rate_is_over():
    scheduled = make_sample(duration_s=2.31, paced_window_s=2.0,
                            window={"kind": "scheduled", "length_s": 2.0, "snapshots_s": []})
    assert scheduled.measured_window_s == 2.0
    # bracketed: a paced run's rate is over its paced window, an unpaced one's over wrk's duration
    assert make_sample(duration_s=2.05, paced_window_s=1.79,
                       window={"kind": "bracketed", "length_s": 2.2, "snapshots_s": []}).measured_window_s == 1.79
    assert make_sample(duration_s=2.05).measured_window_s == 2.05
