"""A second load generator plugged in through the interface alone: a script printing a fixed
result runs a one-block bench in the real containers, and the sample says it made it."""

from __future__ import annotations

import json

import pytest

from zcbench import jobs
from zcbench.core import rundir
from zcbench.core.jsonline import last_json_object
from zcbench.measure import loadgen
from zcbench.measure.config import Config
from zcbench.measure.loadgen.base import LoadGenerator, check_result

RESULT = {"fixed_result": 1, "requests": 4321, "duration_us": 1_000_000, "bytes": 380248,
          "requests_per_s": 4321.0, "errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0},
          "latency_us": {"mean": 230.0, "stdev": 20.0, "min": 100.0, "max": 900.0, "p50": 220.0, "p75": 240.0,
                         "p90": 280.0, "p99": 500.0, "p99.9": 800.0, "p99.99": 900.0},
          "percentiles_us": [[50, 220.0], [99, 500.0]], "paced": None}


class FixedResult(LoadGenerator):
    """Sends nothing: sleeps the cell's duration in the loadgen container and prints RESULT."""
    name = "fixed-result"

    def command(self, url, *, conns, threads, duration_s, timeout_s, rate=None):
        return ["sh", "-c", f"sleep {duration_s}; echo 'noise first'; echo '{json.dumps(RESULT)}'"]

    def parse(self, stdout):
        return check_result(last_json_object(stdout, lambda obj: obj.get("fixed_result") == 1))

    def version_command(self):
        return ["sh", "-c", "echo fixed-result 1.0"]


@pytest.fixture
def fixed_result():
    generator = loadgen.register(FixedResult())
    yield generator
    loadgen.unregister(generator.name)


def test_a_fake_generator_runs_a_one_block_bench(fixed_result, zcbench_images, docker_client, tmp_path, port):
    config = Config.from_args(loadgen=fixed_result.name, mode="zc", conns="10", repeat=1, duration=1, warmup=0,
                              rate="off", out=tmp_path, quiet=True, port=port, seed=3)
    run_dir = jobs.bench(config, log=lambda line: None)
    recorded = rundir.load_samples(run_dir)
    assert sorted(s.cell.arm for s in recorded) == ["regular", "zc"]
    for sample in recorded:
        assert sample.loadgen == fixed_result.name
        assert sample.loadgen_result == RESULT and sample.requests == 4321
        assert sample.loadgen_command[:2] == ["sh", "-c"]
        assert sample.latency_us.p99 == 500.0
        assert sample.loadgen_cpu_s is not None and sample.server_cpu_s is not None
    manifest = rundir.read_manifest(run_dir)
    assert manifest["complete"] and manifest["config"]["loadgen"] == fixed_result.name
    assert manifest["loadgen"] == {"name": fixed_result.name, "version": "fixed-result 1.0"}
    assert (run_dir / rundir.REPORT).exists()
    assert not docker_client.containers.list(all=True, filters={"label": f"zcbench.run={manifest['run_id']}"})
