"""The JSON Schemas (zcbench/schemas): each one valid, versioned like the file it describes, and
every file zcbench writes valid against its own; older files without a version still read, a
version this zcbench cannot read is one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from sample_factory import make_sample

from zcbench import schemas
from zcbench.analyze import calibration, runstats
from zcbench.core import arms, rundir
from zcbench.core.arms import AA_ARM
from zcbench.core.samples import SAMPLES_SCHEMA, Sample
from zcbench.devtools.schemas import problems, run_dir_problems
from zcbench.host.doctor import DOCTOR_SCHEMA
from zcbench.measure import manifest
from zcbench.measure.config import Config
from zcbench.measure.plan import plan_cells
from zcbench.present.compare import COMPARE_SCHEMA

RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"
#: The reference run of 2026-12-02 (its manifest, its first samples): files from before versions
UNVERSIONED = RUNS / "unversioned"


def test_every_schema_is_a_valid_versioned_draft_2020_12_schema():
    assert set(schemas.names()) == {"sample", "summary", "manifest", "calibration", "compare", "doctor"}
    for name in schemas.names():
        schema = schemas.load(name)
        Draft202012Validator.check_schema(schema)
        assert schema["$id"] == f"urn:zcbench:schema:{name}:{schemas.version(name)}"
        assert "schema" in schema["required"]
    with pytest.raises(KeyError, match="known: calibration"):
        schemas.load("nonexistent")


def test_each_run_file_schema_describes_the_version_zcbench_writes():
    for file_name, name in rundir.SCHEMA_NAMES.items():
        assert schemas.version(name) == rundir.SCHEMAS[file_name], file_name
    assert schemas.version("sample") == SAMPLES_SCHEMA
    assert schemas.version("compare") == COMPARE_SCHEMA and schemas.version("doctor") == DOCTOR_SCHEMA


@pytest.fixture(scope="module")
def rendered(rendered_runs):
    return {name: rendered_runs[name][0] for name in ("study-loopback", "paced", "sweep-win", "incomplete")}


@pytest.mark.parametrize("name", ["study-loopback", "paced", "sweep-win", "incomplete"])
def test_the_summary_of_every_fixture_run_follows_its_schema(rendered, name):
    summary = json.loads((rendered[name] / rundir.SUMMARY).read_text())
    assert summary["schema"] == rundir.SUMMARY_SCHEMA
    assert problems("summary", summary) == []


def test_samples_of_the_first_schema_are_migrated_into_the_current_one(rendered):
    """The fixtures are schema-1 samples: as stored they are not schema 2 (the schema can fail),
    as read and written again they are."""
    lines = (RUNS / "paced" / rundir.SAMPLES).read_text().splitlines()
    stored = json.loads(lines[0])
    assert stored["schema"] == 1 and any("schema" in p or "loadgen" in p for p in problems("sample", stored))
    for line in lines:
        assert problems("sample", Sample.from_json(json.loads(line)).to_json()) == []


def test_a_sample_as_the_bench_appends_it_follows_the_schema(tmp_path):
    _, run_dir = rundir.new_run_dir(tmp_path, "t")
    sample = make_sample("zc", 0, requests=100, requests_per_s=50.0, server_cpu_s=0.1, cpu_us_per_request=1000.0,
                         loadgen_result={"percentiles_us": [[50, 900.0], [99, 2000.0], [100, None]]},
                         offered_rate=50, achieved_rate=49.9, rate_sustained=True)
    rundir.append_sample(run_dir, sample)
    assert run_dir_problems(run_dir) == []
    bad = sample.to_json() | {"cell": sample.cell.to_json() | {"conns": 0}}
    assert any(p.startswith("cell/conns:") for p in problems("sample", bad))


class NoEngine:
    """A Docker client whose engine cannot be reached: the manifest records that, it does not fail."""

    def version(self):
        raise ConnectionError("no engine")


def test_a_manifest_as_the_bench_writes_it_follows_the_schema(tmp_path):
    config = Config.from_args(online_cpus={0, 1}, mode="zc", conns="100", repeat=2, nofile=20000, out=tmp_path)
    record = manifest.initial_manifest(run_id="r", config=config, cells=plan_cells(config),
                                       path={"kind": "loopback", "interface": "lo"}, client=NoEngine(),
                                       privilege=None, image_ids={}, limits={})
    assert problems("manifest", json.loads(rundir.json_text(record))) == []  # as written
    final = manifest.finish_manifest(record, complete=True, reason=None, timing={"wall_s": 1.0, "cells_done": 4})
    rundir.write_manifest(tmp_path, final)
    assert problems("manifest", json.loads((tmp_path / rundir.MANIFEST).read_text())) == []
    del final["config"]
    assert problems("manifest", final) == ["(top): 'config' is a required property"]


def test_a_summary_missing_its_groups_fails_its_schema(rendered):
    summary = json.loads((rendered["paced"] / rundir.SUMMARY).read_text())
    del summary["groups"]
    assert problems("summary", summary) == ["(top): 'groups' is a required property"]


# --- versions and older files ----------------------------------------------------------------


def test_files_from_before_versions_read_as_version_zero(tmp_path):
    """An old reference run's manifest and samples predate versions; a summary or calibration
    without "schema" reads as it is."""
    assert "schema" not in rundir.read_manifest(UNVERSIONED) and rundir.read_manifest(UNVERSIONED)["run_id"]
    assert {s.loadgen for s in rundir.load_samples(UNVERSIONED)} == {"wrk"}  # schema 1, migrated
    for name in (rundir.SUMMARY, rundir.CALIBRATION_JSON):
        (tmp_path / name).write_text(json.dumps({"run_id": "old", "passed": True}))
        assert rundir.read_json(tmp_path / name)["run_id"] == "old"


def test_a_sample_line_without_any_version_reads_as_the_first_schema(tmp_path):
    line = json.loads((RUNS / "paced" / rundir.SAMPLES).read_text().splitlines()[0])
    del line["schema"]
    (tmp_path / rundir.SAMPLES).write_text(json.dumps(line) + "\n")
    [sample] = rundir.load_samples(tmp_path)
    assert sample.loadgen == "wrk" and sample.loadgen_result == line["wrk"]


@pytest.mark.parametrize("version, words", [(99, "newer than this zcbench reads"),
                                            ("two", "is no version number"), (-1, "is no version number")])
def test_a_version_this_zcbench_cannot_read_is_one_line(tmp_path, version, words):
    path = tmp_path / rundir.CALIBRATION_JSON
    path.write_text(json.dumps({"schema": version, "passed": True}))
    with pytest.raises(rundir.RunDirError, match=words) as caught:
        rundir.read_json(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_written_json_is_strict_without_infinities(tmp_path):
    path = tmp_path / rundir.SUMMARY
    rundir.write_json(path, {"mde": math.inf, "p": math.nan, "nested": [{"x": -math.inf}], "ok": 1.5})
    text = path.read_text()
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard {c}")) == {
        "mde": None, "p": None, "nested": [{"x": None}], "ok": 1.5}


def test_calibration_json_as_judged_follows_its_schema():
    """analyze.calibration.judge on a recorded calibration shape: A/A quiet, a dose ladder whose
    loop the server timed."""
    doses = {arms.dose_arm(i + 1).name: effect for i, effect in enumerate((0.025, 0.05, 0.10))}
    cost = {"regular": 8.0, AA_ARM: 8.0} | {arm: 8.0 * (1 + effect) for arm, effect in doses.items()}
    samples = []
    for rep in range(8):
        for i, arm in enumerate(cost):
            timed = 10_000 // 64
            counters = ({"responses": 10_000, "calibration_work_ns": doses[arm] * 8.0 * 1000 * timed,
                         "calibration_work_timed": timed} if arm in doses else {"responses": 10_000})
            samples.append(make_sample(arm, rep, index=len(cost) * rep + i, requests=10_000, requests_per_s=100_000.0,
                                       server_cpu_s=0.08, server_counters=counters,
                                       cpu_us_per_request=cost[arm] * (1 + 0.01 * ((rep * 7 + i) % 5 - 2))))
    sizing = {"pilot_work": 1500, "sized_by": "loop timing", "expected_effect": 0.05, "work": 200,
              "doses": [{"arm": arm, "aimed": effect, "work": 100 * (i + 1)} for i, (arm, effect) in enumerate(doses.items())]}
    result = json.loads(rundir.json_text(calibration.judge(runstats.summarize(samples), samples, sizing)))
    assert problems("calibration", result) == []
    assert len(result["doses"]) == 3 and all(d["true_effect"] is not None for d in result["doses"])
    assert problems("calibration", result | {"passed": "yes"}) == ["passed: 'yes' is not of type 'boolean'"]
