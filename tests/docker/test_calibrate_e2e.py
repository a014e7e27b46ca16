"""`invoke calibrate` end to end on a tiny plan: pilot, sizing, both checks, its files."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from zcbench.core.paths import ROOT
from zcbench.measure import containers
from zcbench.core import arms, rundir

pytestmark = pytest.mark.docker

INVOKE = str(Path(sys.executable).with_name("invoke"))


def calibrate(out: Path, port: int, *plan: str) -> tuple[Path, dict]:
    """`invoke calibrate` on one tiny 20-connection cell; its run directory and calibration.json."""
    proc = subprocess.run([INVOKE, "calibrate", "--out", str(out), "--port", str(port), "--quiet",
                           "--duration", "1", "--warmup", "1", "--conns", "20", *plan],
                          cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 1, proc.stdout  # --quiet: the run directory alone
    run_dir = Path(proc.stdout.strip())
    return run_dir, json.loads((run_dir / "calibration.json").read_text())


@pytest.mark.timeout(300)
def test_calibrate_runs_the_aa_and_the_injected_arm_and_writes_its_verdicts(tmp_path, docker_client,
                                                                           zcbench_images, port):
    run_dir, result = calibrate(tmp_path, port, "--repeat", "3", "--seed", "5", "--rate", "off")
    for key in ("aa_verdict", "injected_verdict", "injected_effect", "mde", "expected_effect", "passed"):
        assert key in result
    assert result["blocks"] == 3 and result["family_size"] == 8  # 2 arms x 4 metrics, one cell
    assert result["metric"] == "cpu_us_per_request"  # unpaced
    sizing = result["sizing"]
    assert sizing["cpu_us_per_iteration"] > 0 and sizing["work"] >= 1
    assert sizing["expected_effect"] == pytest.approx(0.05, rel=0.01)
    assert (run_dir / "calibration.md").read_text().startswith("# zcbench calibration:")

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["calibration_work"] == sizing["work"]
    recorded = rundir.load_samples(run_dir / "samples.jsonl")
    assert Counter(s.cell.arm for s in recorded) == {
        "regular": 3, arms.AA_ARM: 3, arms.WORK_ARM: 3}
    # The pilot is a run of its own, with the large fixed work beside regular.
    pilot = json.loads((Path(sizing["pilot_run"]) / "manifest.json").read_text())
    assert pilot["config"]["arms"] == ["regular", arms.WORK_ARM] and pilot["complete"]
    assert pilot["config"]["calibration_work"] == sizing["pilot_work"] == sizing["pilots"][-1]["work"]
    for run in (manifest, pilot):
        assert containers.run_containers(docker_client, run["run_id"]) == []


@pytest.mark.timeout(300)
def test_a_paced_calibration_chooses_one_rate_then_sizes_and_judges_at_it(tmp_path, docker_client,
                                                                         zcbench_images, port):
    run_dir, result = calibrate(tmp_path, port, "--repeat", "2", "--seed", "6", "--rate", "auto")
    assert result["metric"] == result["sizing"]["metric"] == "cpu_per_loadgen_cpu"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    pilot = json.loads((Path(result["sizing"]["pilot_run"]) / "manifest.json").read_text())
    # one rate pilot, whose rate both the sizing pilot and the calibration were offered
    rates = manifest["config"]["cell_rates"]
    assert rates and pilot["config"]["cell_rates"] == rates
    assert manifest["config"]["extra"]["rate_pilot_run"] == pilot["config"]["extra"]["rate_pilot_run"]
    offered = {s.offered_rate for run in (run_dir, Path(result["sizing"]["pilot_run"]))
               for s in rundir.load_samples(run / "samples.jsonl")}
    assert offered == set(rates.values())
    assert len(list(tmp_path.glob("*-rate-pilot"))) == 1
