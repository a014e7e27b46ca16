"""`invoke lab --up` / `--down` through the real CLI, in processes of their own (the daemons
must outlive them), with the state in the test's directory (ZCBENCH_LAB_DIR), never a user's
/run/zcbench-lab."""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest

from zcbench.core.paths import ROOT
from zcbench.host import engines
from zcbench.host import inventory as hosts
from zcbench.host import lab as lab_mod

pytestmark = pytest.mark.lab

INVOKE = Path(sys.executable).with_name("invoke")


def lab_env(state_dir: Path) -> dict:
    return {**os.environ, lab_mod.STATE_DIR_ENV: str(state_dir)}


def invoke_lab(flag: str, state_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(INVOKE), "lab", flag], cwd=ROOT, env=lab_env(state_dir), capture_output=True,
                          text=True, timeout=180)


def start_up(state_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([str(INVOKE), "lab", "--up"], cwd=ROOT, env=lab_env(state_dir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def namespaces() -> set[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in listing.splitlines() if line.strip()}


def running_naming(path: Path) -> list[int]:
    """Live processes whose command line names a file under path (zombies have none)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and f"{path}/".encode() in (entry / "cmdline").read_bytes().replace(b"\0", b" "):
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


def leftovers(lab: lab_mod.Lab) -> list[str]:
    """What of this lab still exists on this machine."""
    mounts = Path("/proc/mounts").read_text()
    there = {
        f"network namespace {lab.netns}": lab.netns in namespaces(),
        f"veth {lab.host_veth}": Path(f"/sys/class/net/{lab.host_veth}").exists(),
        f"user {lab.user}": user_exists(lab.user),
        f"home of {lab.user}": Path(f"/home/{lab.user}").exists(),
        f"processes {running_naming(lab.run_dir)}": bool(running_naming(lab.run_dir)),
        f"mounts under {lab.run_dir} or {lab.data_root}": f"{lab.run_dir}/" in mounts or f"{lab.data_root}" in mounts,
    }
    files = (lab.sudoers, lab.ssh_config, lab.run_dir, lab.data_root, lab.key, lab.inventory,
             lab.state_dir / lab_mod.STATE_FILE)
    there.update({str(path): path.exists() for path in files})
    return [what for what, exists in there.items() if exists]


def wait_for_engine_starting(state_dir: Path, up: subprocess.Popen) -> lab_mod.Lab:
    """The lab as soon as its dockerd was started: namespace, user and key made, sshd not yet."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert up.poll() is None, f"invoke lab --up ended early: {up.communicate()}"
        lab = lab_mod.load(state_dir)
        if lab is not None and lab.dockerd_pid:
            return lab
        time.sleep(0.02)
    pytest.fail("invoke lab --up did not start the lab's dockerd within 60 s")


def test_up_twice_is_one_lab_ssh_and_the_sdk_reach_then_down_twice_removes_all(tmp_path):
    lab_mod.check_can_run(making=True)  # not root, tools missing: fails here, in one line
    state_dir = tmp_path / "state"
    try:
        first = invoke_lab("--up", state_dir)
        assert first.returncode == 0, first.stderr
        inventory = Path(first.stdout.splitlines()[0])
        assert inventory == state_dir / "hosts.yml"
        assert f"invoke provision -i {inventory}" in first.stdout
        assert inventory.read_text().startswith("#") and "invoke lab --down" in inventory.read_text()
        lab, written = lab_mod.load(state_dir), inventory.read_text()
        state_mtime = (state_dir / lab_mod.STATE_FILE).stat().st_mtime_ns

        second = invoke_lab("--up", state_dir)
        assert second.returncode == 0, second.stderr
        assert second.stdout == first.stdout and inventory.read_text() == written
        # the same lab, untouched: same namespace and daemons, state not rewritten
        assert lab_mod.load(state_dir) == lab and lab.netns in namespaces()
        assert (state_dir / lab_mod.STATE_FILE).stat().st_mtime_ns == state_mtime
        assert set(running_naming(lab.run_dir)) >= {lab.sshd_pid, lab.dockerd_pid}

        loaded = hosts.load_inventory(inventory)
        assert (loaded.server.name, loaded.server.is_control) == ("localhost", True)
        assert loaded.server.server_address == lab.host_address
        assert loaded.server.vars["nic_interface"] == lab.host_veth
        (loadgen,) = loaded.loadgens
        assert loadgen.docker_url == f"ssh://{lab.user}@{lab.address}"
        assert loadgen.vars["nic_interface"] == lab.veth
        # plain ssh as root (what the SDK runs) reaches the lab's engine, not this machine's,
        # as a non-root user with passwordless sudo
        ssh = subprocess.run(["ssh", "-o", "BatchMode=yes", f"{lab.user}@{lab.address}",
                              "id -u; sudo -n id -u; docker info --format '{{.DockerRootDir}}'"],
                             capture_output=True, text=True, timeout=60)
        assert ssh.returncode == 0, ssh.stderr
        uid, sudo_uid, root_dir = ssh.stdout.split()
        assert (uid != "0", sudo_uid, root_dir) == (True, "0", str(lab.data_root))
        client = docker.DockerClient(base_url=loadgen.docker_url, use_ssh_client=True, timeout=30)
        try:
            assert client.ping()
            assert client.info()["DockerRootDir"] == str(lab.data_root)
        finally:
            client.close()
        # zcbench's own client: the lab engine's socket (its login's DOCKER_HOST) forwarded by one
        # ssh, ended with the client
        forwarded = engines.host_client(loadgen, timeout=30)
        forward = forwarded.zcbench_forward
        try:
            assert forwarded.info()["DockerRootDir"] == str(lab.data_root)
            assert forward.process.poll() is None and forward.socket.is_socket()
        finally:
            forwarded.close()
        assert forward.process.poll() is not None and not forward.directory.exists()
    finally:
        down = invoke_lab("--down", state_dir)
    assert down.returncode == 0, down.stderr
    assert f"removed network namespace {lab.netns}" in down.stdout.splitlines()
    assert f"removed user {lab.user}" in down.stdout.splitlines()
    assert leftovers(lab) == []
    again = invoke_lab("--down", state_dir)
    assert (again.returncode, again.stdout, again.stderr) == (0, f"no lab in {state_dir}: nothing removed\n", "")


def test_an_up_terminated_midway_removes_what_it_had_made(tmp_path):
    lab_mod.check_can_run(making=True)  # not root, tools missing: fails here, in one line
    state_dir = tmp_path / "state"
    up = start_up(state_dir)
    try:
        lab = wait_for_engine_starting(state_dir, up)
        assert lab.netns in namespaces() and user_exists(lab.user)
        up.send_signal(signal.SIGTERM)
        out, err = up.communicate(timeout=120)
        assert up.returncode == 128 + signal.SIGTERM, (out, err)
        assert leftovers(lab) == []
    finally:
        if up.poll() is None:
            up.kill()
        lab_mod.down(state_dir)  # whatever the test found left


def test_after_an_up_killed_midway_the_next_up_removes_the_remains_and_makes_a_new_lab(tmp_path):
    lab_mod.check_can_run(making=True)  # not root, tools missing: fails here, in one line
    state_dir = tmp_path / "state"
    up = start_up(state_dir)
    try:
        half = wait_for_engine_starting(state_dir, up)
        up.kill()  # no chance to clean up
        up.wait()
        assert half.dockerd_pid in running_naming(half.run_dir)
        assert leftovers(half) != []

        again = invoke_lab("--up", state_dir)
        assert again.returncode == 0, again.stderr
        # only the state directory's files remain: they are the new lab's now
        assert leftovers(half) == [str(half.key), str(half.inventory), str(state_dir / lab_mod.STATE_FILE)]
        fresh = lab_mod.load(state_dir)
        assert fresh.netns != half.netns and fresh.complete and lab_mod.healthy(fresh)
    finally:
        if up.poll() is None:
            up.kill()
        down = invoke_lab("--down", state_dir)
    assert down.returncode == 0, down.stderr
    assert leftovers(fresh) == [] and leftovers(half) == []
