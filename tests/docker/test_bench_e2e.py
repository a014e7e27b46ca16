"""A small real bench end to end through `invoke bench`, and one interrupted by Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import headless_chromium

from zcbench.core.paths import ROOT
from zcbench.devtools.schemas import run_dir_problems
from zcbench.measure import containers
from zcbench.core import rundir

pytestmark = pytest.mark.docker

INVOKE = str(Path(sys.executable).with_name("invoke"))


def bench_command(out: Path, port: int, *args: str) -> list[str]:
    return [INVOKE, "bench", "--out", str(out), "--port", str(port), "--quiet", *args]


def only_run_dir(out: Path) -> Path:
    runs = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(runs) == 1, runs
    return runs[0]


def left_containers(client, run_id: str) -> list[str]:
    return [c.name for c in containers.run_containers(client, run_id)]


@pytest.mark.timeout(240)
def test_small_bench_writes_every_result_file(tmp_path, docker_client, zcbench_images, port):
    proc = subprocess.run(
        bench_command(tmp_path, port, "--rate", "off", "--mode", "zc", "--conns", "50,200", "--duration", "1",
                      "--warmup", "0", "--repeat", "2", "--seed", "11", "--label", "e2e"),
        cwd=ROOT, capture_output=True, text=True, timeout=220)
    assert proc.returncode == 0, proc.stderr
    run_dir = only_run_dir(tmp_path)
    assert proc.stdout.strip().endswith(str(run_dir))
    assert (tmp_path / "latest").resolve() == run_dir.resolve()

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["complete"] is True and manifest["incomplete_reason"] is None
    assert manifest["config"]["conns"] == [50, 200] and manifest["plan"]["seed"] == 11
    assert manifest["privilege"]["mode"] in ("privileged", "fallback")
    assert manifest["git"]["commit"] and isinstance(manifest["git"]["dirty"], bool)
    assert manifest["docker"]["engine_version"]
    assert all(v.startswith("sha256:") for v in manifest["images"].values())
    assert manifest["host"]["kernel_release"] and manifest["host"]["io_uring"]["usable"]
    timing = manifest["timing"]
    assert timing["cells_done"] == 8 and timing["started"] == "command"
    assert left_containers(docker_client, manifest["run_id"]) == []

    recorded = rundir.load_samples(run_dir / "samples.jsonl")
    assert len(recorded) == 8
    # the measured share is the samples' windows over the wall time, to the report
    windows = sum(s.measured_window_s for s in recorded)
    assert timing["measured_s"] == pytest.approx(windows, abs=1e-3)
    assert timing["measured_share"] == pytest.approx(windows / timing["wall_s"], abs=1e-4)
    assert 0 < timing["measured_share"] < 1
    # one long-lived server per arm, each on its own port, each ended by SIGTERM with its final JSON
    servers = {entry["arm"]: entry for entry in manifest["servers"]}
    assert set(servers) == {"regular", "zc"} and len({e["port"] for e in servers.values()}) == 2
    for entry in servers.values():
        assert entry["exit"]["code"] == 0
    final = servers["zc"]["exit"]["totals"]  # after shutdown every zero-copy send has its notification
    assert final["zc_notifs"] == final["sends_zc"] > 0
    assert servers["regular"]["exit"]["totals"]["sends_zc"] == 0
    assert Counter((s.cell.arm, s.cell.conns) for s in recorded) == {
        ("regular", 50): 2, ("regular", 200): 2, ("zc", 50): 2, ("zc", 200): 2}
    assert [s.cell.index for s in recorded] == list(range(8))
    for s in recorded:
        c = s.server_counters
        assert s.requests > 0 and s.errors.total == 0
        assert s.window["kind"] == "bracketed"  # unpaced: the snapshots around wrk's run
        assert s.server_cpu_s > 0 and s.cpu_us_per_request > 0
        assert 0 < s.loadgen_cpu_share <= 1.05
        # The server answered at least what wrk completed (it also counts in-flight ones).
        assert c["responses"] >= s.requests
        if s.cell.arm == "regular":
            assert c["sends_zc"] == 0 and c["sends_regular"] >= c["responses"] - c["responses_coalesced"]
        else:
            assert c["sends_zc"] > 0
            # In a window, sends still awaiting their notification make the difference
            assert abs(c["zc_notifs"] - c["sends_zc"]) <= c["zc_inflight_peak"]
            assert (c["sends_zc"] + c["fallback_cap"] + c["fallback_enomem"]
                    >= c["responses"] - c["responses_coalesced"])

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary
    report = (run_dir / "report.md").read_text()
    assert "Regular Send" in report and "ZC Send" in report
    plots = sorted((run_dir / "plots").glob("*.png"))
    assert plots and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)
    names = {p.name for p in run_dir.iterdir()}
    assert {"manifest.json", "samples.jsonl", "summary.json", "report.md", "report.html", "plots"} <= names
    assert not [n for n in names if n.startswith(".")], names  # no temp files left

    # every file of a real run against its JSON Schema, and its report.html in a real browser
    assert run_dir_problems(run_dir) == []
    page = headless_chromium.open_page(run_dir / "report.html")
    (tmp_path / "report-first-screen.png").write_bytes(page.screenshot)  # kept with the test's tmp_path
    assert page.problems() == []
    assert page.figures == len(summary["plots"]) > 0 and page.first_heading == "At a glance"


@pytest.mark.timeout(180)
@pytest.mark.parametrize("rate", ["off", "3000"])  # a bracketed window, and a scheduled one (its wrk in a thread)
def test_ctrl_c_mid_cell_leaves_no_container_and_marks_the_run_incomplete(tmp_path, docker_client,
                                                                          zcbench_images, port, rate):
    proc = subprocess.Popen(
        bench_command(tmp_path, port, "--rate", rate, "--mode", "zc", "--conns", "100", "--duration", "4",
                      "--warmup", "0", "--repeat", "3", "--label", "interrupt"),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # Ctrl-C as a terminal sends it: a suite started in the background (`cmd &` in a script)
        # hands its children SIGINT ignored, and Python then never raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 90
        samples_path = None
        while time.monotonic() < deadline:
            runs = [p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink()]
            if runs and (runs[0] / "samples.jsonl").exists():
                samples_path = runs[0] / "samples.jsonl"
                if samples_path.read_text().count("\n") >= 1:
                    break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        else:
            pytest.fail("the bench did not finish a first cell in time")
        time.sleep(1.5)  # now inside the second cell: its server and wrk are running
        run_id = json.loads((samples_path.parent / "manifest.json").read_text())["run_id"]
        assert left_containers(docker_client, run_id), "expected the cell's containers to be running"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "interrupted" in stderr
    assert left_containers(docker_client, run_id) == []
    manifest = json.loads((samples_path.parent / "manifest.json").read_text())
    assert manifest["complete"] is False
    assert manifest["incomplete_reason"].startswith("interrupted after 1 of 6 cells")
    kept = rundir.load_samples(samples_path)
    assert len(kept) == 1  # the finished cell stays, the cut one is not recorded


@pytest.mark.timeout(120)
def test_veth_path_runs_wrk_in_its_own_netns(tmp_path, docker_client, zcbench_images, port):
    """--path veth: wrk's traffic crosses a veth pair and a bridge; the path is in the manifest,
    and the kernel flags the zero-copy sends as copied (a local path always copies)."""
    proc = subprocess.run(
        bench_command(tmp_path, port, "--rate", "off", "--path", "veth", "--mode", "zc", "--conns", "50",
                      "--duration", "1", "--warmup", "0", "--repeat", "1", "--label", "veth"),
        cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert proc.returncode == 0, proc.stderr
    run_dir = only_run_dir(tmp_path)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    path = manifest["path"]
    assert path["kind"] == "veth" and path["loadgen_network"] != "host"
    assert path["target"] != "127.0.0.1"
    run_id = manifest["run_id"]
    assert docker_client.networks.list(filters={"label": f"{containers.RUN_LABEL}={run_id}"}) == []
    zc = [s for s in rundir.load_samples(run_dir / "samples.jsonl") if s.cell.arm == "zc"]
    assert len(zc) == 1 and zc[0].requests > 0
    counters = next(e for e in manifest["servers"] if e["arm"] == "zc")["exit"]["totals"]
    assert counters["zc_notifs"] > 0 and counters["zc_copied"] == counters["zc_notifs"]
