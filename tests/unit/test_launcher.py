"""loadgen/launcher.sh and its host side (measure.loadgen.launcher), run here without Docker."""

import subprocess
import time

import pytest

from zcbench.core.paths import ROOT
from zcbench.measure.loadgen.launcher import Launcher, LauncherError

SCRIPT = ROOT / "loadgen" / "launcher.sh"


@pytest.fixture
def launched(tmp_path):
    launcher = Launcher(tmp_path)
    process = subprocess.Popen(["sh", str(SCRIPT), str(tmp_path)])
    yield launcher, process
    process.kill()
    process.wait()
    launcher.close()


def test_each_command_runs_with_its_own_output_and_status(launched):
    launcher, process = launched
    alive = lambda: process.poll() is None  # noqa: E731
    assert launcher.run(["sh", "-c", "echo out; echo \"it's\" >&2; exit 3"], 10, alive) == (3, "out\n", "it's\n")
    # arguments reach the command as they were, one after another
    assert launcher.run(["printf", "%s|", "a b", "$HOME", "'q'"], 10, alive) == (0, "a b|$HOME|'q'|", "")
    assert sorted(p.name for p in launcher.directory.iterdir()) == ["done", "requests"]  # nothing left behind


def test_a_launcher_that_is_gone_is_an_error_not_a_hang(launched):
    launcher, process = launched
    process.kill()
    process.wait()
    began = time.monotonic()
    with pytest.raises(LauncherError, match="launcher"):
        launcher.run(["true"], 30, alive=lambda: process.poll() is None)
    assert time.monotonic() - began < 10


def test_a_command_that_outlasts_its_timeout_is_an_error(launched):
    launcher, process = launched
    with pytest.raises(LauncherError, match="in time"):
        launcher.run(["sleep", "5"], 0.5, alive=lambda: process.poll() is None)
