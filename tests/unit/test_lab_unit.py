"""zcbench.host.lab without making a lab: the task's refusals, the state file, the inventory it writes
(tests/lab/ makes real ones)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from zcbench.core.paths import ROOT
from zcbench.host import inventory as hosts
from zcbench.host import lab as lab_mod

INVOKE = Path(sys.executable).with_name("invoke")


def a_lab(state_dir: Path) -> lab_mod.Lab:
    """A lab's names as `up` records them; nothing exists."""
    return lab_mod.Lab(
        state_dir=state_dir, netns="zcblab-abc123", veth="zcblabc123", host_veth="zcbhabc123",
        address="10.213.7.2", host_address="10.213.7.1", user="zcblababc123", key=state_dir / "id_ed25519",
        inventory=state_dir / "hosts.yml", run_dir=Path("/run/zcblab-abc123"), data_root=Path("/var/lib/zcblab-abc123"),
        sudoers=Path("/etc/sudoers.d/zcblababc123"), ssh_config=Path("/etc/ssh/ssh_config.d/zcbench-lab-abc123.conf"),
        sshd_pid=11, dockerd_pid=12, complete=True)


def run_task(tmp_path: Path, *args: str, patch: str = "") -> subprocess.CompletedProcess:
    """`invoke lab ARGS` with `patch` (Python) run first in the same process."""
    code = f"{patch}\nfrom invoke.main import program\nprogram.run(['invoke', 'lab', *{list(args)!r}])"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, lab_mod.STATE_DIR_ENV: str(tmp_path / "state")})


@pytest.mark.parametrize("args", [(), ("--up", "--down")])
def test_the_task_wants_exactly_one_of_up_and_down(args, tmp_path):
    done = subprocess.run([str(INVOKE), "lab", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, lab_mod.STATE_DIR_ENV: str(tmp_path / "state")})
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "zcbench: invoke lab: give exactly one of --up and --down\n"


@pytest.mark.parametrize("patch, says", [
    ("import os; os.geteuid = lambda: 1000", "invoke lab needs root"),
    ("import shutil; which = shutil.which\n"
     "shutil.which = lambda tool, **kw: None if tool in ('sshd', 'dockerd') else which(tool, **kw)",
     "invoke lab --up needs sshd, dockerd ("),
])
def test_not_root_or_missing_tools_is_one_line_before_anything_is_made(patch, says, tmp_path):
    done = run_task(tmp_path, "--up", patch=patch)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"zcbench: {says}") and done.stderr.count("\n") == 1
    assert not (tmp_path / "state").exists()


def test_the_state_file_gives_back_the_lab_it_recorded(tmp_path):
    lab = a_lab(tmp_path)
    lab_mod._save(lab)
    assert lab_mod.load(tmp_path) == lab
    assert lab_mod.load(tmp_path / "elsewhere") is None


def test_down_without_a_lab_removes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(lab_mod.os, "geteuid", lambda: 0)
    assert lab_mod.down(tmp_path / "state") == []
    assert not (tmp_path / "state").exists()


def test_the_inventory_is_the_study_topology_and_loads(tmp_path):
    lab = a_lab(tmp_path)
    path = lab_mod.write_inventory(lab, lab.inventory, lab_mod.study_inventory(lab))
    text = path.read_text()
    assert text.startswith("# ") and "`invoke lab --down` removes it" in text
    inventory = hosts.load_inventory(path)
    server, (loadgen,) = inventory.server, inventory.loadgens
    assert (server.name, server.is_control, server.groups) == ("localhost", True, ("server",))
    assert server.server_address == "10.213.7.1" and server.vars["nic_interface"] == "zcbhabc123"
    assert server.docker_url == "unix:///var/run/docker.sock"
    assert (loadgen.name, loadgen.groups, loadgen.docker_url) == ("lab", ("loadgen",), "ssh://zcblababc123@10.213.7.2")
    assert loadgen.vars["ansible_ssh_private_key_file"] == str(tmp_path / "id_ed25519")
    assert loadgen.vars["ansible_python_interpreter"] == "/usr/bin/python3"
    assert loadgen.vars["nic_interface"] == "zcblabc123"
    assert "ControlMaster=no" in loadgen.vars["ansible_ssh_args"]


def test_the_lab_engine_is_reached_here_through_its_own_socket(tmp_path):
    assert a_lab(tmp_path).docker_url_here() == "unix:///run/zcblab-abc123/docker.sock"
