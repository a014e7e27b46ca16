"""`invoke bench -i`: the server here, wrk on the lab host through its own Docker engine over
SSH (the study's topology), through the real CLI. One lab for the module: its image transfer is
the slow part."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from zcbench.core.paths import ROOT
from zcbench.host import lab as lab_mod
from zcbench.measure.containers import RUN_LABEL
from zcbench.measure.images import TAGS

pytestmark = [pytest.mark.lab, pytest.mark.docker]  # docker: needs this machine's images

INVOKE = Path(sys.executable).with_name("invoke")
SHORT_RUN = ["--conns", "20,60", "--duration", "1", "--warmup", "0", "--repeat", "2", "--quiet"]


@pytest.fixture(scope="module")
def study_lab(tmp_path_factory):
    """`invoke lab`'s own inventory: this machine serves on its veth end, the lab runs wrk;
    the lab engine holds the loadgen image (`invoke build -i`)."""
    try:
        lab_mod.check_can_run(making=True)
    except lab_mod.LabUnavailable as exc:
        pytest.fail(str(exc))
    state_dir = tmp_path_factory.mktemp("study-lab")
    try:
        lab = lab_mod.up(state_dir)
        built = invoke("build", "-i", str(lab.inventory), "--only", "loadgen", timeout=600)
        assert built.returncode == 0, built.stderr[-800:]
        assert "lab" in built.stdout and TAGS["loadgen"] in built.stdout
        yield lab
    finally:
        lab_mod.down(state_dir)
    # everything the module made there went with it, also the files provisioning wrote for the lab
    assert not state_dir.exists(), sorted(str(p) for p in state_dir.rglob("*"))


def invoke(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(INVOKE), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def run_containers(url: str, run_id: str | None = None) -> list[str]:
    """zcbench's run containers on the engine at `url`; only `run_id`'s where given (this machine's
    own engine may hold another run's, e.g. a bench someone runs beside the tests)."""
    client = docker.DockerClient(base_url=url)
    try:
        return [c.name for c in client.containers.list(all=True)
                if RUN_LABEL in c.labels and run_id in (None, c.labels[RUN_LABEL])]
    finally:
        client.close()


def rx_packets(interface: str) -> int:
    return int(Path(f"/sys/class/net/{interface}/statistics/rx_packets").read_text())


def test_wrk_on_the_lab_host_every_sample_complete_and_both_hosts_recorded(study_lab, tmp_path):
    lab = study_lab
    received_before = rx_packets(lab.host_veth)
    done = invoke("bench", "-i", str(lab.inventory), *SHORT_RUN, "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-800:]
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    # the requests came in through this machine's end of the veth: wrk ran in the lab's namespace
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert rx_packets(lab.host_veth) - received_before >= sum(s["requests"] for s in samples)

    assert len(samples) == 2 * 2 * 2  # arms x conns x blocks
    manifest = json.loads((run_dir / "manifest.json").read_text())
    rates = manifest["config"]["cell_rates"]  # the default --rate auto: its pilot ran across the hosts too
    assert sorted(rates) == ["20/88@70%", "60/88@70%"]
    for s in samples:
        assert s["offered_rate"] == rates[f'{s["cell"]["conns"]}/{s["cell"]["response_size"]}@70%']
        assert s["achieved_rate"] > 0 and s["paced_window_s"] > 0 and s["lapsed_slots"] is not None
        assert [part["host"] for part in s["loadgens"]] == ["lab"]
        assert s["requests"] > 0 and s["requests_per_s"] > 0
        assert sum(s["errors"].values()) == 0
        assert 0 <= s["responses_minus_requests"] <= s["cell"]["conns"]
        assert s["loadgens"][0]["cpu_s"] > 0  # wrk's CPU read through the lab engine's API
        assert s["server_cpu_s"] > 0

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert manifest["path"]["kind"] == "hosts"
    assert manifest["path"]["target"] == lab.host_address
    assert manifest["path"]["note"] == f"two hosts over {lab.host_veth}: server on localhost, wrk on lab"
    lab_record = manifest["hosts"]["lab"]
    assert lab_record["groups"] == ["loadgen"] and lab_record["address"] == lab.address
    assert lab_record["facts"]["kernel_release"] == manifest["host"]["kernel_release"]  # one machine
    assert lab_record["facts"]["interface"]["name"] == lab.veth
    assert lab_record["facts"]["interface"]["driver"] == "veth"
    # ethtool ran there, in the lab's namespace, as its non-root login (sbin is not on its PATH)
    assert lab_record["facts"]["interface"]["features"]["tcp-segmentation-offload"] in ("on", "off")
    assert lab_record["docker"]["engine_version"]
    local = docker.from_env()
    try:
        assert lab_record["images"][TAGS["loadgen"]] == local.images.get(TAGS["loadgen"]).id
    finally:
        local.close()
    assert "two hosts over" in (run_dir / "report.md").read_text()
    assert run_containers(lab.docker_url_here()) == []
    assert run_containers("unix:///var/run/docker.sock", manifest["run_id"]) == []


def test_an_interrupt_removes_the_run_containers_on_both_hosts(study_lab, tmp_path):
    lab = study_lab
    bench = subprocess.Popen([str(INVOKE), "bench", "-i", str(lab.inventory), "--rate", "off", "--conns", "20",
                              "--duration", "2", "--warmup", "0", "--repeat", "10", "--quiet",
                              "--out", str(tmp_path / "results")], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True,
                             # a suite started in the background (an asynchronous command) hands its
                             # children SIGINT ignored, and Python then never raises KeyboardInterrupt
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not run_containers(lab.docker_url_here()):  # wrk's container is up on the lab
            assert bench.poll() is None, bench.communicate()
            assert time.monotonic() < deadline, "no run container on the lab engine after 120 s"
            time.sleep(0.2)
        time.sleep(3)  # mid-cell
        bench.send_signal(signal.SIGINT)
        out, err = bench.communicate(timeout=120)
    finally:
        if bench.poll() is None:
            bench.kill()
    assert bench.returncode == 130, err[-800:]
    assert "interrupted" in err
    (run_dir,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir() and not p.is_symlink()]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert run_containers(lab.docker_url_here()) == []
    assert run_containers("unix:///var/run/docker.sock", manifest["run_id"]) == []
    assert manifest["complete"] is False and "interrupted" in manifest["incomplete_reason"]
    assert any(name.startswith("lab:") for name in manifest["containers_removed_at_end"])


def test_the_lab_inventory_provisions_both_hosts_then_changes_nothing(study_lab):
    """`invoke lab`'s inventory as given: this machine (locally) and the lab host (over SSH with
    sudo), each for its part; the lab's files land in its state dir, its sysctls in its namespace."""
    from zcbench.host import provision

    lab = study_lab
    wanted = str(provision.role_defaults("sysctl")["sysctl_settings"]["net.core.somaxconn"])
    first = provision.run_playbook(inventory=lab.inventory, tags=["sysctl"])
    assert first.ok, [(t.host, t.task, t.message) for t in first.failures] or first.error
    assert {t.host for t in first.tasks} == {"localhost", "lab"}
    assert lab.run("cat", "/proc/sys/net/core/somaxconn").strip() == wanted
    assert (lab.state_dir / "provisioned" / "sysctl.conf").exists()  # not this machine's sysctl.d
    second = provision.run_playbook(inventory=lab.inventory, tags=["sysctl"])
    assert second.ok and second.changed == 0, [(t.host, t.task) for t in second.tasks if t.status == "changed"]


def test_the_server_on_the_lab_host_wrk_here(study_lab, tmp_path):
    """The other way round: the server container on a host reached over SSH (its counters read
    through its engine's archive API, its CPU through the engine's stats), wrk on this machine."""
    lab = study_lab
    reversed_inventory = lab_mod.write_inventory(lab, tmp_path / "server-on-lab.yml", {"all": {"children": {
        "server": {"hosts": {"lab": lab_mod.lab_host_vars(lab)}},
        "loadgen": {"hosts": {"localhost": {"ansible_connection": "local"}}}}}})
    built = invoke("build", "-i", str(reversed_inventory), "--only", "server", timeout=600)
    assert built.returncode == 0, built.stderr[-800:]
    done = invoke("bench", "-i", str(reversed_inventory), *SHORT_RUN, "--rate", "off", "--out", str(tmp_path / "results"))
    assert done.returncode == 0, done.stderr[-800:]
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 8
    for s in samples:
        assert s["loadgens"][0]["host"] == "localhost"
        assert s["requests"] > 0 and sum(s["errors"].values()) == 0
        counters = s["server_counters"]
        assert counters is not None  # read from the lab engine's volume mid-run
        assert 0 <= counters["responses"] - s["requests"] <= s["cell"]["conns"]
        assert s["server_cpu_s"] > 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["complete"] is True
    # each arm's server lived for the run on the lab host; it stopped cleanly there, its whole-life
    # totals (read through the lab engine) covering every request its arm's samples made
    for server in manifest["servers"]:
        assert server["exit"]["code"] == 0, server
        served = sum(s["requests"] for s in samples if s["cell"]["arm"] == server["arm"])
        assert server["exit"]["totals"]["responses"] >= served
    assert manifest["path"]["target"] == lab.address
    assert manifest["path"]["note"] == f"two hosts over {lab.veth}: server on lab, wrk on localhost"
    assert manifest["host"]["interface"]["name"] == lab.veth  # the server host's facts, over SSH
    assert manifest["hosts"]["localhost"]["facts"]["kernel_release"]
    lab_engine = docker.DockerClient(base_url=lab.docker_url_here())
    try:
        assert [c.name for c in lab_engine.containers.list(all=True)] == []
        assert [v.name for v in lab_engine.volumes.list() if v.name.startswith("zcbench-")] == []
    finally:
        lab_engine.close()


def test_two_loadgen_hosts_share_each_cell_and_their_figures_add_up(study_lab, tmp_path):
    """A second lab host: wrk on both at once, each with half the connections; the sample is
    their sum, each one's own figures kept."""
    first = study_lab
    second_state = tmp_path / "second-lab"
    try:
        second = lab_mod.up(second_state)
        # the server listens on the first lab's link; the second lab reaches it through its own
        second.run("ip", "route", "add", f"{first.host_address}/32", "via", second.host_address)
        inventory = lab_mod.write_inventory(first, tmp_path / "two-loadgens.yml", {"all": {"children": {
            "server": {"hosts": {"localhost": {"ansible_connection": "local",
                                               "zcbench_server_address": first.host_address,
                                               "nic_interface": first.host_veth}}},
            "loadgen": {"hosts": {"lab1": lab_mod.lab_host_vars(first), "lab2": lab_mod.lab_host_vars(second)}}}}})
        built = invoke("build", "-i", str(inventory), "--only", "loadgen", timeout=600)
        assert built.returncode == 0, built.stderr[-800:]
        assert "lab2" in built.stdout and "sent" in built.stdout  # lab1 already had it
        done = invoke("bench", "-i", str(inventory), "--rate", "3001", "--conns", "41", "--duration", "1", "--warmup", "0",
                      "--repeat", "2", "--mode", "regular", "--quiet", "--out", str(tmp_path / "results"))
        assert done.returncode == 0, done.stderr[-800:]
        run_dir = Path(done.stdout.strip().splitlines()[-1])
        samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
        assert len(samples) == 2
        for s in samples:
            parts = s["loadgens"]
            assert [part["host"] for part in parts] == ["lab1", "lab2"]
            assert [part["command"][part["command"].index("-c") + 1] for part in parts] == ["21", "20"]
            assert all(part["requests"] > 0 and part["cpu_s"] > 0 for part in parts)
            assert s["requests"] == sum(part["requests"] for part in parts)
            assert s["requests_per_s"] == pytest.approx(
                sum(part["requests"] / (part["duration_us"] / 1e6) for part in parts))
            assert s["loadgen_result"]["combined_from"] == 2
            # paced: each loadgen its share of the rate, the cell's achieved rate the sum of theirs
            assert [part["command"][-2] for part in parts] == ["1501", "1500"] and s["offered_rate"] == 3001
            assert all(part["achieved_rate"] > 0 and part["paced_window_s"] > 0 for part in parts)
            assert s["achieved_rate"] == pytest.approx(sum(part["achieved_rate"] for part in parts))
            # the server answered both: its count covers the sum (up to one in flight per connection)
            assert 0 <= s["server_counters"]["responses"] - s["requests"] <= 41
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["path"]["note"] == f"three hosts over {first.host_veth}: server on localhost, wrk on lab1, lab2"
        assert set(manifest["hosts"]) >= {"localhost", "lab1", "lab2"}
        assert run_containers(second.docker_url_here()) == [] and run_containers(first.docker_url_here()) == []
    finally:
        lab_mod.down(second_state)
