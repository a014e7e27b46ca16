"""Runner pieces without Docker: the sample record, limit checks, run directories."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from zcbench.core import rundir, samples
from zcbench.core.samples import Cell
from zcbench.measure import bench, windows
from zcbench.measure.config import Config
from zcbench.measure.loadgen.base import LoadRun

WRK = {"zcbench_wrk": 1, "requests": 200000, "duration_us": 2000000, "bytes": 17600000,
       "requests_per_s": 100000.0,
       "errors": {"connect": 0, "read": 1, "write": 0, "timeout": 0, "status": 3},
       "latency_us": {"mean": 900.0, "stdev": 50.0, "min": 10, "max": 9000, "p50": 880, "p75": 950,
                      "p90": 1000, "p99": 1500, "p99.9": 3000, "p99.99": 8000},
       "percentiles_us": [[50, 880], [100, 9000]]}
CELL = Cell(index=3, server="zcbench", arm="zc", conns=1000, response_size=88, rep=1)


def sample(cpu_s=1.9, wall_s=2.0, cores=1, counters=None):
    return bench.build_sample(CELL, started_at="a", finished_at="b", measured=LoadRun(WRK, cpu_s, wall_s),
                              server_counters=counters, server_cpu_s=0.5, loadgen_cores=cores)


def test_sample_has_the_schema_fields():
    s = sample(counters={"responses": 200040, "sends_zc": 10})
    assert s.cell.to_json() == {"index": 3, "server": "zcbench", "arm": "zc", "conns": 1000,
                         "response_size": 88, "rep": 1}
    assert s.requests == 200000 and s.requests_per_s == pytest.approx(100000.0)
    assert s.duration_s == pytest.approx(2.0)
    assert s.latency_us.p99_99 == 8000 and s.to_json()["latency_us"]["p99.9"] == 3000
    assert s.errors.status == 3 and s.non_2xx == 3
    # per response the server sent in the window its CPU time covers (not wrk's count)
    assert s.cpu_us_per_request == pytest.approx(0.5e6 / 200040)
    assert s.server_responses == 200040 and s.responses_minus_requests == 40
    assert s.loadgen_result is WRK and s.loadgen == "wrk"
    json.dumps(s.to_json())


def test_loadgen_bound_flag_uses_the_share_of_all_loadgen_cores():
    assert sample(cpu_s=1.9, wall_s=2.0, cores=1).loadgen_bound is True
    assert sample(cpu_s=1.9, wall_s=2.0, cores=2).loadgen_bound is False
    share = sample(cpu_s=1.0, wall_s=2.0).loadgen_cpu_share
    assert share == pytest.approx(0.5) and share < samples.LOADGEN_BOUND_SHARE


def test_nginx_sample_has_no_counters():
    s = sample(counters=None)
    assert s.server_counters is None and s.server_responses is None
    assert s.cpu_us_per_request == pytest.approx(0.5e6 / 200000)  # per request wrk completed


def test_limits_above_the_hard_limit_fail_without_sys_resource(monkeypatch):
    monkeypatch.setattr(bench, "host_limit", lambda name: 8 << 20 if name == "memlock" else 20000)
    config = Config.from_args(memlock="16m", nofile=20000, online_cpus={0, 1}, seed=1)
    with pytest.raises(bench.PreflightError, match="--memlock 16777216 exceeds"):
        bench.check_limits(config, bounding=["IPC_LOCK"])
    bench.check_limits(config, bounding=["IPC_LOCK", "SYS_RESOURCE"])  # may raise: fine
    ok = Config.from_args(memlock="8m", nofile=20000, online_cpus={0, 1}, seed=1)
    bench.check_limits(ok, bounding=["IPC_LOCK"])


def test_run_dirs_are_unique_and_latest_points_at_the_newest(tmp_path):
    run_a, dir_a = rundir.new_run_dir(tmp_path, "x")
    run_b, dir_b = rundir.new_run_dir(tmp_path, "x")
    assert dir_a != dir_b and run_a.endswith("-x") and dir_a.is_dir()
    rundir.point_latest(dir_a)
    rundir.point_latest(dir_b)
    assert (tmp_path / "latest").resolve() == dir_b.resolve()


def test_needed_images():
    assert bench.needed_images(Config.from_args(server="both", online_cpus={0, 1}, nofile=20000)) == [
        "loadgen", "server", "nginx"]
    assert bench.needed_images(Config.from_args(server="nginx", online_cpus={0, 1}, nofile=20000)) == [
        "loadgen", "nginx"]



def test_a_scheduled_windows_responses_through_the_generators_end_are_the_accounting_count():
    """The window's own responses divide the CPU; those until wrk ended are checked against wrk's."""
    s = bench.build_sample(CELL, started_at="a", finished_at="b", measured=LoadRun(WRK, 1.9, 2.0),
                           server_counters={"responses": 199_950}, server_cpu_s=0.5, loadgen_cores=1,
                           server_responses=200_030)
    assert s.server_responses == 200_030 and s.responses_minus_requests == 30
    assert s.cpu_us_per_request == pytest.approx(0.5e6 / 199_950)


def test_the_settled_read_waits_for_the_server_to_close_the_generators_connections(monkeypatch):
    """A response wrk read may still wait in the server's completion queue: the read that checks
    wrk's count against the server's waits until the connections are closed (and no longer)."""
    reads = iter([{"conns_open": 200, "responses": 990}, {"conns_open": 120, "responses": 998},
                  {"conns_open": 0, "responses": 1000}, {"conns_open": 0, "responses": 1000}])
    monkeypatch.setattr(windows, "read_counters", lambda server: next(reads))
    monkeypatch.setattr(windows, "SETTLE_POLL_S", 0)
    assert windows.settled_counters(object(), open_before=0) == {"conns_open": 0, "responses": 1000}
    assert next(reads) == {"conns_open": 0, "responses": 1000}  # it stopped at the first settled read


def test_the_settled_read_gives_up_after_its_timeout(monkeypatch):
    monkeypatch.setattr(windows, "read_counters", lambda server: {"conns_open": 5, "responses": 7})
    monkeypatch.setattr(windows, "SETTLE_POLL_S", 0)
    monkeypatch.setattr(windows, "SETTLE_TIMEOUT_S", 0.05)
    assert windows.settled_counters(object(), open_before=0) == {"conns_open": 5, "responses": 7}
    # nothing to wait for without counters (nginx) or without a count before the run
    monkeypatch.setattr(windows, "read_counters", lambda server: None)
    assert windows.settled_counters(object(), open_before=0) is None


class FakeServer:
    """A server whose counters a fake generator moves: its connections open when it connects,
    and its last responses are counted (and the connections closed) a little after it ended."""

    def __init__(self):
        self.totals = {"conns_open": 0, "responses": 0}

    def cpu_seconds(self) -> float:
        return 1.0


def test_a_scheduled_windows_accounting_waits_for_the_generators_connections_to_close(tmp_path, monkeypatch):
    """The start snapshot already counts the generator's connections open, and can come after its
    first responses: the accounting counts from a read before it connected, and waits for the
    connections to be back at that level (with the start's level it did not wait at all, and a
    busy machine's server had not yet counted responses wrk had read)."""
    server = FakeServer()
    monkeypatch.setattr(windows, "read_counters", lambda srv: dict(srv.totals))
    loadgen = SimpleNamespace(launcher=SimpleNamespace(directory=tmp_path), cpu_seconds=lambda: 2.0)

    class Generator:
        def run_together(self, loadgens, url, *, window, **load):
            server.totals["conns_open"] = 50  # connected
            server.totals["responses"] = 4  # answered before the start snapshot (a late one)
            with open(tmp_path / Path(window.ready).name, "w") as ready:
                ready.write("ready\n")
            go = tmp_path / Path(window.go).name
            while not go.exists():
                time.sleep(0.001)
            end_s = float(go.read_text().split()[1]) / 1e3
            windows.sleep_until(end_s + 0.005)
            server.totals["responses"] = 994  # what the server had counted when wrk ended

            def catch_up():
                server.totals.update(responses=1004, conns_open=0)

            threading.Timer(0.05, catch_up).start()
            return [LoadRun(dict(WRK, requests=1004), 0.5, 0.1)]

    with ThreadPoolExecutor(1) as pool:
        measured = windows.run_scheduled(pool, Generator(), server, loadgen, "http://x/", conns=50, threads=1,
                                         duration_s=0.05, timeout_s=5, rate=1000)
    assert measured.server_responses == 1004  # every response wrk read, once the server closed them
    assert windows.open_now(server) == 0
    monkeypatch.setattr(windows, "read_counters", lambda srv: None)
    assert windows.open_now(server) is None
