"""`invoke calibrate` end to end on a tiny plan: pilot, sizing, the A/A and the dose ladder at
every connection count, the loop's measured cost, its files; with --json, stdout is
calibration.json's object alone, valid against its schema, and the run directory goes to stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from zcbench.analyze import calibration
from zcbench.core import arms, rundir
from zcbench.core.paths import ROOT
from zcbench.devtools.schemas import problems, run_dir_problems
from zcbench.measure import containers

pytestmark = pytest.mark.docker

INVOKE = str(Path(sys.executable).with_name("invoke"))
DOSE_ARMS = [arms.dose_arm(i).name for i in (1, 2, 3)]


def calibrate(out: Path, port: int, *plan: str, output: str = "--quiet") -> tuple[Path, dict]:
    """`invoke calibrate` on tiny cells of 1 s; its run directory and calibration.json."""
    proc = subprocess.run([INVOKE, "calibrate", "--out", str(out), "--port", str(port), output,
                           "--duration", "1", "--warmup", "0", *plan],
                          cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr
    if output == "--json":
        printed = json.loads(proc.stdout)  # the whole of stdout, one document
        assert problems("calibration", printed) == []
        run_dir = Path(proc.stderr.strip().splitlines()[-1])  # the run directory, on stderr
    else:
        assert len(proc.stdout.strip().splitlines()) == 1, proc.stdout  # --quiet: the run directory alone
        run_dir = Path(proc.stdout.strip())
    result = json.loads((run_dir / rundir.CALIBRATION_JSON).read_text())
    if output == "--json":
        assert printed == result
    return run_dir, result


@pytest.mark.timeout(420)
def test_a_paced_calibration_runs_twice_on_one_sizing_and_writes_its_verdicts(tmp_path, docker_client,
                                                                              zcbench_images, port):
    # One calibration does what a user's would (rate pilot, sizing pilot, the latency check, two
    # CPU runs) on the smallest plan: one connection count, two blocks of 1 s, at 40% of the
    # saturation (at 70% a busy machine's regular fell short in one of the two blocks: one pair,
    # nothing tested).
    run_dir, result = calibrate(tmp_path, port, "--conns", "20", "--repeat", "2", "--seed", "6", "--rate", "40%",
                                "--runs", "2", output="--json")
    for key in ("aa", "doses", "mde", "passed", "aa_verdict", "injected_verdict", "expected_effect"):
        assert key in result
    assert result["metric"] == "cpu_us_per_request" and result["blocks"] == 2  # the primary metric, paced or not
    assert result["family_size"] == 4  # primary family: A/A + 3 doses at one connection count
    assert [a["conns"] for a in result["aa"]] == [20]
    assert sorted((d["conns"], d["aimed"]) for d in result["doses"]) == [(20, dose) for dose in calibration.DOSES]
    for dose in result["doses"]:
        # the server timed its loop: every dose has a measured true effect near what it aimed at
        assert dose["true_effect"] is not None and 0.3 * dose["aimed"] < dose["true_effect"] < 3 * dose["aimed"]
        assert dose["ci"] and set(dose) >= {"estimate", "verdict", "found", "covered"}
    # the sizing reads the loop's own timing and the plain requests' CPU: blocks a busy machine
    # could not hold no longer stop it (a fresh machine's failure: every pilot block fell short)
    sizing = result["sizing"]
    assert sizing["sized_by"] == "loop timing" and sizing["ns_per_iteration"] > 0
    assert [d["arm"] for d in sizing["doses"]] == DOSE_ARMS
    assert (run_dir / "calibration.md").read_text().startswith("# zcbench calibration:")

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["calibration_work"] == {d["arm"]: d["work"] for d in sizing["doses"]}
    recorded = rundir.load_samples(run_dir)
    assert Counter(s.cell.arm for s in recorded) == {"regular": 2, arms.AA_ARM: 2, **{arm: 2 for arm in DOSE_ARMS}}
    assert all((s.server_counters or {}).get("calibration_work_ns") for s in recorded if s.cell.arm in DOSE_ARMS)
    assert not any((s.server_counters or {}).get("calibration_work_ns") for s in recorded
                   if s.cell.arm not in DOSE_ARMS)
    # The sizing pilot is a run of its own, with the large fixed work beside regular.
    pilot_dir = Path(sizing["pilot_run"])
    pilot = json.loads((pilot_dir / "manifest.json").read_text())
    assert pilot["config"]["arms"] == ["regular", arms.WORK_ARM] and pilot["complete"]
    assert pilot["config"]["calibration_work"] == {arms.WORK_ARM: calibration.PILOT_WORK}

    # --rate 40%: the rate pilot saturated regular beside the pilot's work, so the rate leaves
    # room for it; every run of the calibration offered that rate
    [rate_pilot_dir] = tmp_path.glob("*-rate-pilot")
    rate_pilot = json.loads((rate_pilot_dir / "manifest.json").read_text())
    assert rate_pilot["config"]["arms"] == ["regular", arms.WORK_ARM]
    rates = manifest["config"]["cell_rates"]
    assert set(rates) == {"20/88@40%"} and pilot["config"]["cell_rates"] == rates
    assert manifest["config"]["extra"]["rate_pilot_run"] == pilot["config"]["extra"]["rate_pilot_run"]
    offered = {s.offered_rate for run in (run_dir, pilot_dir) for s in rundir.load_samples(run)}
    assert offered <= set(rates.values())

    # --runs 2: two calibration runs on one sizing, and what they add up to
    repeated = result["repeated"]
    assert repeated["runs"] == 2 and repeated["run_dirs"][-1] == str(run_dir)
    assert repeated["aa_tested"] == 2 and 0 <= repeated["false_positive_rate"] <= 1
    assert [p["aimed"] for p in repeated["power"]] == list(calibration.DOSES)
    assert all(p["tried"] == 2 for p in repeated["power"])
    first_dir = Path(repeated["run_dirs"][0])
    first = json.loads((first_dir / "calibration.json").read_text())
    assert "repeated" not in first and first["sizing"] == sizing
    assert "2 runs together" in (run_dir / "calibration.md").read_text()

    # the latency check ran once, at 30% and 40% of the same saturation, regular beside a server
    # that stalled 20 ms every 500 ms (twice in each 1 s window); its verdicts are in every run's
    # calibration.json
    check = result["latency"]
    assert first["latency"] == check
    assert check["stall_ms"] == 20 and check["period_ms"] == 500
    assert [(c["conns"], c["load"]) for c in check["cells"]] == [(20, 0.3), (20, 0.4)]
    saturation = rates["20/88@40%"] / 0.4
    assert [c["offered_rate"] for c in check["cells"]] == [round(0.3 * saturation), rates["20/88@40%"]]
    assert result["passed"] == (result["cpu_passed"] and check["passed"])
    latency_samples = rundir.load_samples(Path(check["run_dir"]))
    stalled = [s for s in latency_samples if s.cell.arm == arms.STALL_ARM]
    assert len(stalled) == 2 * 6 and all(1 <= s.server_counters["calibration_stalls"] <= 3 for s in stalled)
    assert all(not (s.server_counters or {}).get("calibration_stalls")
               for s in latency_samples if s.cell.arm == "regular")
    # the stall shows in the tail it must: p99.9 of the stalling arm sits above half the stall and
    # within a few times what the queue model expects (on a machine as busy as the suite's, a
    # backlog drains slower than the model's: 64 ms was seen at 70% load for an expected 33)
    for cell in check["cells"]:
        assert 10 < cell["measured_p99.9_ms"] < max(60, 3 * cell["expected_p99.9_ms"]), cell

    for run in (manifest, pilot, rate_pilot, json.loads((first_dir / "manifest.json").read_text())):
        assert containers.run_containers(docker_client, run["run_id"]) == []
    # every file of the calibration, of its first run and of its pilots against its schema
    for part in (run_dir, first_dir, pilot_dir, rate_pilot_dir, Path(check["run_dir"])):
        assert run_dir_problems(part) == [], part
    assert (pilot_dir / rundir.REPORT_HTML).exists()
