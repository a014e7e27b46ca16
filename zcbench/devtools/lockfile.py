"""requirements.lock: the exact Python packages (with hashes) bootstrap.sh and CI install.

pyproject.toml keeps version ranges, for people who install zcbench into their own
environment; the lock pins every package, extras and build backend included, so a fresh
machine gets the environment the tests passed with.

The lock is made by `uv pip compile --universal`: one file that holds, behind environment
markers, the right pins for every Python the project supports (Debian 12's 3.11 and Debian
13's 3.13 need different numpy/scipy), in the plain requirements format that stock
`pip install --require-hashes` reads, so installing needs no tool beyond pip. (pip-compile
resolves for the running interpreter only: a lock made on 3.11 is wrong on 3.13.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from zcbench.core.paths import ROOT

LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
#: Installed beside the locked packages, so `pip install --no-build-isolation -e .` needs no
#: unpinned download: the build backend (from pyproject) and pip itself.
INSTALLER_PACKAGES = ("pip",)
#: What `invoke lock` prints in the lock's header as the command that made it.
COMPILE_COMMAND = "invoke lock"


class LockError(RuntimeError):
    """The lock could not be refreshed; the message says why in one line."""


def _pyproject(path: Path = PYPROJECT) -> dict:
    return tomllib.loads(path.read_text())


def build_requirements(path: Path = PYPROJECT) -> list[str]:
    """[build-system].requires of pyproject.toml, plus the installer itself."""
    return [*_pyproject(path)["build-system"]["requires"], *INSTALLER_PACKAGES]


def minimum_python(path: Path = PYPROJECT) -> str:
    """The lowest Python the project supports ('3.11' from requires-python '>=3.11')."""
    spec = _pyproject(path)["project"]["requires-python"]
    match = re.search(r">=\s*(\d+\.\d+)", spec)
    if not match:
        raise LockError(f"requires-python {spec!r} has no lower bound (>=X.Y) to lock for")
    return match.group(1)


def uv_executable() -> str:
    """uv from this environment (the `lock` extra), else from PATH."""
    beside = Path(sys.executable).with_name("uv")
    found = str(beside) if beside.exists() else shutil.which("uv")
    if not found:
        raise LockError("uv is not installed: run ./bootstrap.sh deps (the lock installs it)")
    return found


def compile_command(uv: str, build_in: Path, output: Path, upgrade: bool) -> list[str]:
    return [uv, "pip", "compile", PYPROJECT.name, str(build_in), "--all-extras", "--universal",
            "--python-version", minimum_python(), "--generate-hashes", "--output-file", str(output),
            "--custom-compile-command", COMPILE_COMMAND, "--quiet",
            # keep the pins already in the lock unless asked to move them all
            *(["--upgrade"] if upgrade else [])]


def refresh_lock(upgrade: bool = False, lock: Path = LOCK) -> Path:
    """Re-resolve the lock from pyproject.toml: new or changed requirements get pins, the
    others keep theirs (upgrade=True moves every pin to the newest allowed release)."""
    uv = uv_executable()
    with tempfile.TemporaryDirectory(prefix="zcbench-lock-") as tmp:
        # uv names its inputs in the lock's comments: run it on copies under fixed relative
        # names, so the lock does not depend on where the checkout is
        build_in = Path("build-requirements.in")
        (Path(tmp) / build_in).write_text("\n".join(build_requirements()) + "\n")
        shutil.copyfile(PYPROJECT, Path(tmp) / PYPROJECT.name)
        output = Path(tmp) / lock.name
        if lock.exists():  # uv keeps the pins of the existing output file
            shutil.copyfile(lock, output)
        proc = subprocess.run(compile_command(uv, build_in, output, upgrade), capture_output=True,
                              text=True, cwd=tmp, env={**os.environ, "UV_NO_PROGRESS": "1"})
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise LockError(f"uv pip compile failed: {last}")
        shutil.copyfile(output, lock)
    return lock


def locked_pins(lock: Path = LOCK) -> dict[str, list[str]]:
    """Package name -> the version(s) pinned in the lock (two when markers split by Python)."""
    pins: dict[str, list[str]] = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if match:
            pins.setdefault(normalize(match.group(1)), []).append(match.group(2))
    return pins


def normalize(name: str) -> str:
    """PEP 503 name: 'PyYAML' and 'pyyaml', 'ruamel.yaml' and 'ruamel-yaml' are the same."""
    return re.sub(r"[-_.]+", "-", name).lower()
