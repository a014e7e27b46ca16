"""`pip install .` (not editable) gives a zcbench that works outside the checkout: the project's
data travels as package data, `zcbench` and `python -m zcbench` run the same tasks as invoke."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from zcbench.core.paths import CHECKOUT


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel of this checkout installed into a target directory (dependencies come from
    the test's own environment)."""
    wheels, target = tmp_path_factory.mktemp("wheels"), tmp_path_factory.mktemp("site")
    # a copy of the sources, as a clone has them: setuptools builds in the tree it is given
    source = tmp_path_factory.mktemp("clone") / "zcbench"
    shutil.copytree(CHECKOUT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".cache", "build", "results", "*.egg-info", "__pycache__"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(wheels), str(source)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    [wheel] = wheels.glob("zcbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for data in ("zcbench/_data/server/Makefile", "zcbench/_data/server/include/zcb_stats.h",
                 "zcbench/_data/server/include/zcb_modes.h", "zcbench/_data/server/src/main.c",
                 "zcbench/_data/playbooks/provision.yml", "zcbench/_data/images/server/Dockerfile",
                 "zcbench/_data/loadgen/report.lua", "zcbench/schemas/sample.schema.json",
                 "zcbench/schemas/summary.schema.json"):
        assert data in names, data
    assert not any("/build/" in name or name.endswith(".pyc") for name in names)
    assert any(name.endswith("entry_points.txt") for name in names)
    install = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                              str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    return target


def run_installed(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(target))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_installed_package_finds_its_data_outside_the_checkout(installed, tmp_path):
    probe = run_installed(installed, tmp_path, "-c", "import zcbench.core.paths as p, zcbench.core.arms as a; "
                          "print(p.ROOT); print(p.IN_CHECKOUT); print(p.WORK); print(','.join(a.bench_arms()))")
    assert probe.returncode == 0, probe.stderr
    root, in_checkout, work, arm_names = probe.stdout.splitlines()
    assert Path(root) == installed / "zcbench" / "_data" and in_checkout == "False"
    assert Path(work) == tmp_path  # results go under the current directory
    assert arm_names.split(",")[0] == "regular"


def test_python_m_zcbench_lists_the_same_tasks_as_invoke(installed, tmp_path):
    listed = run_installed(installed, tmp_path, "-m", "zcbench", "--list")
    assert listed.returncode == 0, listed.stderr
    invoke = subprocess.run([sys.executable, "-m", "invoke", "--list"], cwd=CHECKOUT, capture_output=True,
                            text=True, timeout=120)
    def tasks(text):
        return {line.split()[0] for line in text.splitlines() if line.startswith("  ") and line.split()}
    assert tasks(listed.stdout) == tasks(invoke.stdout) >= {"bench", "build", "doctor", "report", "compare"}
