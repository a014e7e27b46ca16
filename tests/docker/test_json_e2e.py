"""`invoke calibrate --json` end to end: stdout is calibration.json's object alone, valid against
its schema; the run's progress and directory go to stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from zcbench.core import rundir
from zcbench.core.paths import ROOT
from zcbench.devtools.schemas import problems, run_dir_problems

pytestmark = pytest.mark.docker

INVOKE = str(Path(sys.executable).with_name("invoke"))


@pytest.mark.timeout(300)
def test_calibrate_json_prints_its_verdicts_alone(tmp_path, docker_client, zcbench_images, port):
    proc = subprocess.run([INVOKE, "calibrate", "--json", "--out", str(tmp_path), "--port", str(port),
                           "--duration", "1", "--warmup", "1", "--conns", "20", "--repeat", "2", "--seed", "5",
                           "--rate", "off"], cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # the whole of stdout, one document
    assert problems("calibration", result) == []
    run_dir = Path(proc.stderr.strip().splitlines()[-1])  # the run directory, on stderr
    assert result == json.loads((run_dir / rundir.CALIBRATION_JSON).read_text())
    assert run_dir_problems(run_dir) == []
    pilot = Path(result["sizing"]["pilot_run"])
    assert run_dir_problems(pilot) == [] and (pilot / rundir.REPORT_HTML).exists()
