"""zcbench.devtools.testing: what `invoke test` runs, and where."""

import subprocess
import sys
from pathlib import Path

from zcbench.core.paths import ROOT
from zcbench.devtools import testing


def pytest_args(fast: bool, areas=None) -> list[str]:
    command = testing.pytest_command(Path("/tmp/junit.xml"), fast=fast, keyword="", verbose=False, areas=areas)
    return command[command.index("pytest") + 1:]  # after `python -m pytest`


def test_fast_leaves_out_the_docker_and_the_lab_tests():
    fast = pytest_args(fast=True)
    assert fast[fast.index("-m") + 1] == "not docker and not lab"
    assert "-m" not in pytest_args(fast=False)


def test_each_lane_runs_its_areas_in_order():
    args = pytest_args(fast=False, areas=("server", "docker", "lab"))
    assert args[:3] == [str(ROOT / "tests" / area) for area in ("server", "docker", "lab")]


def test_every_area_of_the_suite_is_in_exactly_one_lane():
    areas = [area for lane in testing.LANES for area in lane.areas]
    assert len(areas) == len(set(areas))
    assert testing.areas_in_no_lane() == []
    # the ones that share uid 65534's memlock account (server, docker), the engine, or the CPUs
    # under a load whose effect they assert (all three) run one after another
    load = next(lane for lane in testing.LANES if lane.streams)
    assert load.areas == ("server", "docker", "lab")
    files = [area for lane in testing.LANES for area in lane.areas if "/" in area]
    assert files and all((ROOT / "tests" / area).is_file() for area in files)
    # each file a lane runs by name lies in a directory of the load lane, which leaves it out
    assert sorted(testing.taken_by_other_lanes(load)) == sorted(files)


def collected(command: list[str]) -> list[str]:
    """The test ids a lane's pytest would run."""
    args = [a for a in command[command.index("pytest") + 1:] if not a.startswith(("--junitxml", "-rfEs", "-q"))]
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return [line for line in out.stdout.splitlines() if "::" in line]


def test_the_lanes_together_run_every_test_of_the_suite_once():
    lanes = [collected(testing.pytest_command(Path("/tmp/j.xml"), False, "", False, lane.areas,
                                              testing.taken_by_other_lanes(lane)))
             for lane in testing.LANES]
    everything = collected([sys.executable, "-m", "pytest", str(ROOT / "tests")])
    ran = [test for lane in lanes for test in lane]
    assert sorted(ran) == sorted(everything) and len(set(ran)) == len(ran)
    quiet = next(lane for lane, tests in zip(testing.LANES, lanes) if not lane.streams)
    assert quiet.name == "quiet" and any("test_fuzz.py" in t for t in lanes[testing.LANES.index(quiet)])

def test_a_new_area_in_no_lane_is_found(tmp_path):
    for area in ("unit", "perf"):
        (tmp_path / area).mkdir()
        (tmp_path / area / "test_x.py").write_text("")
    (tmp_path / "test_top.py").write_text("")
    assert testing.areas_in_no_lane(tmp_path) == ["perf", "test_top.py"]


def test_a_lane_that_collected_nothing_is_fine_beside_one_that_ran():
    assert testing.combined_status([testing.NOTHING_COLLECTED, 0]) == 0
    assert testing.combined_status([1, testing.NOTHING_COLLECTED]) == 1
    assert testing.combined_status([0, 1]) == 1
    assert testing.combined_status([testing.NOTHING_COLLECTED] * 2) == testing.NOTHING_COLLECTED


def test_outcomes_add_up_over_the_lanes(tmp_path):
    junit = tmp_path / "a.xml"
    junit.write_text('<testsuites><testsuite><testcase classname="tests.unit.test_a" time="1.5"/>'
                     '<testcase classname="tests.server.test_b" time="2"><failure/></testcase>'
                     '</testsuite></testsuites>')
    areas = testing.outcomes_by_area(junit)
    testing.outcomes_by_area(junit, areas)
    assert areas["unit"]["passed"] == 2 and areas["server"]["failed"] == 2 and areas["unit"]["seconds"] == 3.0
