"""`invoke bench --rate` paces every arm to the same rate; `--from` reruns it; compare agrees."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from zcbench.core.paths import ROOT
from zcbench.measure import containers
from zcbench.measure.pilot import PILOT_REPEAT
from zcbench.core import rundir, samples

pytestmark = pytest.mark.docker

INVOKE = str(Path(sys.executable).with_name("invoke"))
RATE = 3000


def invoke(*args: str, timeout: int = 200) -> subprocess.CompletedProcess:
    return subprocess.run([INVOKE, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(420)
def test_paced_bench_then_rerun_from_its_manifest_and_compare(tmp_path, docker_client, zcbench_images, port):
    first = invoke("bench", "--out", str(tmp_path / "a"), "--port", str(port), "--quiet", "--mode", "zc",
                   "--conns", "20", "--duration", "1", "--warmup", "0", "--repeat", "2", "--seed", "3",
                   "--rate", str(RATE), "--label", "paced")
    assert first.returncode == 0, first.stderr
    run_a = Path(first.stdout.strip().splitlines()[-1])
    recorded = rundir.load_samples(run_a / "samples.jsonl")
    assert len(recorded) == 4
    for sample in recorded:
        assert sample.offered_rate == RATE
        # paced.lua's RATE THREADS, then CONNS and the scheduled window's handshake files
        assert sample.loadgen_command[-6:-2] == ["--", str(RATE), "1", "20"]
        # far below what either arm can do here: wrk offered it and the server kept up
        assert sample.rate_sustained is True
        assert sample.achieved_rate == pytest.approx(RATE, rel=0.05)
    text = (run_a / "report.md").read_text()
    assert "| Offered | Achieved |" in text and "At equal offered load" in text

    # Rerun: same matrix, seed and order, another warmup overridden (and recorded).
    second = invoke("bench", "--from", str(run_a / "manifest.json"), "--out", str(tmp_path / "b"),
                    "--port", str(port), "--quiet", "--warmup", "1")
    assert second.returncode == 0, second.stderr
    run_b = Path(second.stdout.strip().splitlines()[-1])
    manifest_a = json.loads((run_a / "manifest.json").read_text())
    manifest_b = json.loads((run_b / "manifest.json").read_text())
    assert manifest_b["plan"]["order"] == manifest_a["plan"]["order"]
    assert manifest_b["config"]["warmup_s"] == 1 and manifest_b["config"]["rate"] == RATE
    assert manifest_b["config"]["extra"]["rerun_overrides"] == ["out", "port", "quiet", "warmup"]
    for manifest in (manifest_a, manifest_b):
        assert containers.run_containers(docker_client, manifest["run_id"]) == []

    compared = invoke("compare", str(run_a), str(run_b), timeout=60)
    assert compared.returncode == 0, compared.stderr
    assert "B reruns A" in compared.stdout and "same seed and cell order: yes" in compared.stdout
    assert "**Agreement**" in compared.stdout


@pytest.mark.timeout(300)
def test_the_default_bench_offers_every_arm_70_percent_of_its_pilots_saturation(tmp_path, docker_client,
                                                                                zcbench_images, port):
    done = invoke("bench", "--out", str(tmp_path), "--port", str(port), "--quiet", "--mode", "zc",
                  "--conns", "200", "--duration", "1", "--warmup", "1", "--repeat", "2", "--seed", "4")
    assert done.returncode == 0, done.stderr
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    config = manifest["config"]
    assert config["rate_auto"] is True and config["rate_shares"] == [0.7] == config["extra"]["rate_shares"]
    # the rate traces to the pilot's own samples: 70% of the slower arm's median achieved rate; the
    # pilot ran inside the run, on its containers
    pilot_dir = Path(config["extra"]["rate_pilot_run"])
    assert pilot_dir == run_dir / rundir.RATE_PILOT
    pilot = rundir.load_samples(pilot_dir / "samples.jsonl")
    saturation = {arm: [s.achieved_rate for s in pilot if s.cell.arm == arm] for arm in ("regular", "zc")}
    assert all(len(rates) == PILOT_REPEAT for rates in saturation.values())
    assert rundir.read_manifest(pilot_dir)["part_of"] == manifest["run_id"]
    assert manifest["timing"]["pilot_s"] > 0
    slower = min(statistics.median(rates) for rates in saturation.values())
    assert config["cell_rates"] == {"200/88@70%": round(0.7 * slower)}

    recorded = rundir.load_samples(run_dir / "samples.jsonl")
    assert len(recorded) == 4
    for sample in recorded:
        assert sample.offered_rate == config["cell_rates"]["200/88@70%"] and sample.cell.load == 0.7
        # judged over its scheduled window: wrk connected before it, and was stopped after it
        window = sample.window  # wrk's connections were open before it started
        assert window["kind"] == "scheduled" and 0 < window["ready_s"] < window["lead_s"]
        assert sample.paced_window_s == pytest.approx(1.0) == sample.window["length_s"]
        assert sample.paced_window_s < sample.duration_s
        assert sample.achieved_rate == pytest.approx(sample.requests / sample.paced_window_s)
        # the server's and wrk's CPU time were read at the window's two ends
        (start, _), (end, _) = sample.window["snapshots_s"]
        assert start == pytest.approx(sample.window["start_s"], abs=0.01)
        assert end == pytest.approx(sample.window["end_s"], abs=0.02)
        assert sample.rate_sustained is (sample.achieved_rate >= samples.RATE_SUSTAINED_SHARE * sample.offered_rate)
        assert sample.lapsed_slots is not None and sample.lapsed_slots >= 0
        # not one lost request: the server answered every request wrk counted (read once wrk had
        # ended), and at most one more a connection; the window's own count is CPU/request's
        assert 0 <= sample.responses_minus_requests <= sample.cell.conns
        assert sample.server_responses >= sample.server_counters["responses"]
    report = (run_dir / "report.md").read_text()
    assert "At equal offered load" in report and "unexplained" not in report
    assert containers.run_containers(docker_client, manifest["run_id"]) == []
