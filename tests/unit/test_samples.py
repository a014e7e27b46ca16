"""zcbench.core.samples: a Sample reads and writes samples.jsonl's objects unchanged, old ones too."""

import json
from pathlib import Path

import pytest

from zcbench.core import rundir, samples
from zcbench.core.samples import Cell, Sample
from zcbench.measure import bench
from zcbench.measure.loadgen.base import LoadRun

RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"
WRK = {"zcbench_wrk": 1, "requests": 1000, "duration_us": 1_000_000, "bytes": 88000, "requests_per_s": 1000.0,
       "errors": {"connect": 0, "read": 2, "write": 0, "timeout": 1, "status": 3},
       "latency_us": {"mean": 900.0, "stdev": 50.0, "min": 10, "max": 9000, "p50": 880, "p75": 950,
                      "p90": 1000, "p99": 1500, "p99.9": 3000, "p99.99": 8000},
       "percentiles_us": [[50, 880], [100, 9000]]}
#: Keys a sample of this zcbench has that the fixtures' older samples lack, and what they read as.
NEWER_KEYS = {"non_2xx": None, "server_responses": None, "responses_minus_requests": None,
              "loadgen_wall_s": None, "loadgens": [], "server_exit": None,
              "paced_window_s": None, "lapsed_slots": None, "window": None}


def measured() -> Sample:
    cell = Cell(index=4, server="zcbench", arm="zc", conns=10, response_size=88, rep=2)
    runs = [LoadRun(WRK, 0.9, 1.0, ("wrk", "-t", "1"), 1), LoadRun(WRK, 0.5, 1.1, ("wrk", "-t", "1"), 1)]
    return bench.build_sample(cell, started_at="a", finished_at="b", measured=runs,
                              server_counters={"responses": 2010}, server_cpu_s=0.4, loadgen_cores=1,
                              server_exit={"code": 0}, offered_rate=2000, loadgen_names=["lg1", "lg2"])


def test_a_measured_sample_round_trips_through_its_json_line(tmp_path):
    sample = measured()
    path = tmp_path / rundir.SAMPLES
    rundir.append_sample(tmp_path, sample)
    line = json.loads(path.read_text())
    assert line["schema"] == samples.SAMPLES_SCHEMA and line["loadgen"] == "wrk"
    assert line["latency_us"]["p99.9"] == 3000 and "p99_9" not in line["latency_us"]
    assert line["loadgens"][1]["host"] == "lg2" and line["loadgens"][0]["latency_us"]["min"] == 10
    assert line["errors"] == {kind: 2 * n for kind, n in WRK["errors"].items()} and line["non_2xx"] == 6  # two loadgens
    assert rundir.load_samples(tmp_path) == [sample]
    assert Sample.from_json(sample.to_json()).to_json() == sample.to_json()


@pytest.mark.parametrize("run", sorted(p.name for p in RUNS.iterdir()))
def test_old_fixture_samples_load_and_keep_every_value(run):
    lines = [json.loads(line) for line in (RUNS / run / "samples.jsonl").read_text().splitlines(keepends=True)
             if line.endswith("\n")]
    loaded = rundir.load_samples(RUNS / run)
    assert len(loaded) == len(lines) > 0
    for original, sample in zip(lines, loaded):
        # nothing lost, nothing changed: schema 1's wrk fields under their generator-neutral names
        assert original["schema"] == 1 and "wrk" in original
        assert sample.to_json() == NEWER_KEYS | samples.migrate(original) | {"schema": samples.SAMPLES_SCHEMA}
        assert sample.loadgen == "wrk" and sample.loadgen_result == original["wrk"]
        assert sample.loadgen_command == original["wrk_command"]
        assert sample.latency_us.p99_99 == original["latency_us"]["p99.99"]
        assert sample.cell.to_json() == original["cell"]


def test_a_sample_of_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / rundir.SAMPLES
    newer = samples.SAMPLES_SCHEMA + 1
    path.write_text(json.dumps(measured().to_json() | {"schema": newer}) + "\n")
    with pytest.raises(rundir.RunDirError, match=f"schema {newer} is newer"):
        rundir.load_samples(tmp_path)


def test_errors_add_up_and_total():
    errors = samples.Errors.from_json(WRK["errors"])
    assert (errors + errors).to_json() == {kind: 2 * n for kind, n in WRK["errors"].items()}
    assert errors.total == 6
