"""`invoke test`: the whole suite through pytest, in lanes side by side, then a summary by area.

What runs where (both lanes start together; the summary waits for both):

    load        server, then docker, then lab, one after another in one pytest: they load this
                machine's CPUs (wrk against the native server, the bench in containers) and assert
                on what load does to the numbers (a stall's delay, injected CPU per response, a
                calibration's verdicts), share its Docker engine (the lab's second engine takes its
                images from it), and the server's and the docker area's ENOMEM tests share the
                memlock account of uid 65534, so no two of them may overlap. Measured: the lab beside
                the server tests made two of those fail (a stall's delay read 104 ms for a bound of
                70, a dose's CPU 1.6 s for 0.98)
    quiet       unit and provisioning in a second pytest, beside it, then the tests of those areas
                that load no more than a unit test does: the parser's fuzz run (one process on one
                CPU) and the lab's own life cycle and provisioning over SSH (a namespace, sshd and
                an idle second engine; Ansible in check mode or on throwaway files; labs are named
                under a lock, so the two lanes' labs never share a subnet). None of them starts a
                server under load, a container on the main engine or anything as uid 65534; what
                they cost the other lane is CPU time, which their tests never assert on

    images      the full suite (not --fast) also builds the project's images (`invoke build`) from
                the start, beside the server tests: the Docker tests' fixture then finds them
                built (or waits for the build: measure.images builds one at a time per machine)

From a fresh clone on the 2-vCPU VM (2026-12-05): load lane 492 s (server 161, docker 235, the
lab's benches), quiet lane 447 s beside it, the image build 27 s beside the server tests.

The load lane's output streams to the terminal; the quiet lane's and the build's are kept and
printed at the end. A skipped test is not a passed one: in the full suite (not --fast) any skip
fails the run, since it means something the suite promises was not exercised on this host.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from zcbench.core.paths import ROOT

#: Tests that need a Docker engine carry this marker; --fast leaves them out, and the lab's
#: (which start a second engine of their own).
DOCKER_MARKER = "docker"
LAB_MARKER = "lab"
NOTHING_COLLECTED = 5  # pytest's exit status when no test matched


@dataclass(frozen=True)
class Lane:
    """One pytest of the suite: its test directories (or single files of one), run in this order."""
    name: str
    areas: tuple[str, ...]
    streams: bool  # its output goes to the terminal as it comes (else it is printed at its end)


LANES = (Lane("load", ("server", "docker", "lab"), streams=True),
         Lane("quiet", ("unit", "provisioning", "server/test_fuzz.py", "lab/test_lab_task.py",
                        "lab/test_provision_over_ssh.py"), streams=False))
#: The full suite's image build, beside the lanes.
IMAGES_STEP = Lane("images", ("invoke build",), streams=False)


def areas_in_no_lane(tests: Path = ROOT / "tests") -> list[str]:
    """Test directories (or top-level test files) no lane runs: the suite would drop them."""
    laned = {area for lane in LANES for area in lane.areas}
    found = {path.name for path in tests.iterdir() if path.is_dir() and any(path.glob("test_*.py"))}
    found |= {path.name for path in tests.glob("test_*.py")}
    return sorted(found - laned)


def taken_by_other_lanes(lane: Lane) -> list[str]:
    """Files under this lane's directories that another lane runs by name (it must not run them too)."""
    return [area for other in LANES if other is not lane for area in other.areas
            if "/" in area and area.split("/")[0] in lane.areas]


def pytest_command(junit: Path, fast: bool, keyword: str, verbose: bool,
                   areas: tuple[str, ...] | None = None, ignore: list[str] | tuple = ()) -> list[str]:
    paths = [str(ROOT / "tests" / area) for area in areas] if areas else [str(ROOT / "tests")]
    cmd = [sys.executable, "-m", "pytest", *paths, f"--junitxml={junit}", "-rfEs"]
    cmd += [f"--ignore={ROOT / 'tests' / path}" for path in ignore]
    if fast:
        cmd += ["-m", f"not {DOCKER_MARKER} and not {LAB_MARKER}"]
    if keyword:
        cmd += ["-k", keyword]
    cmd.append("-v" if verbose else "-q")
    return cmd


def lanes_text() -> str:
    """'load lane: server -> docker -> lab | quiet lane, beside it: unit -> provisioning'."""
    return " | ".join(f"{lane.name} lane{'' if i == 0 else ', beside it'}: {' -> '.join(lane.areas)}"
                      for i, lane in enumerate(LANES))


def area_of(classname: str) -> str:
    """tests.server.test_http → server; tests/test_x.py at the top level → unit."""
    parts = classname.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "tests" else "unit"


def outcomes_by_area(junit: Path, areas: dict[str, Counter] | None = None) -> dict[str, Counter]:
    areas = areas if areas is not None else defaultdict(Counter)
    for case in ET.parse(junit).getroot().iter("testcase"):
        area = area_of(case.get("classname", ""))
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        areas[area][outcome] += 1
        areas[area]["seconds"] += float(case.get("time", 0))
    return areas


def print_summary(areas: dict[str, Counter], lane_seconds: dict[str, float] | None = None) -> Counter:
    total: Counter = Counter()
    print("\nzcbench test summary")
    print(f"  {'area':<14}{'passed':>8}{'failed':>8}{'skipped':>9}{'seconds':>10}")
    for area in sorted(areas):
        c = areas[area]
        print(f"  {area:<14}{c['passed']:>8}{c['failed']:>8}{c['skipped']:>9}{c['seconds']:>10.1f}")
        total.update(c)
    for lane, seconds in (lane_seconds or {}).items():
        print(f"  {lane} lane: {seconds:.0f} s of wall time")
    return total


@dataclass
class Started:
    lane: Lane
    process: subprocess.Popen
    junit: Path
    output: Path | None
    began: float


def start_lane(lane: Lane, tmp: Path, fast: bool, keyword: str, verbose: bool) -> Started:
    junit = tmp / f"{lane.name}.xml"
    command = pytest_command(junit, fast, keyword, verbose, lane.areas, taken_by_other_lanes(lane))
    output = None if lane.streams else tmp / f"{lane.name}.out"
    sink = None if output is None else open(output, "wb")  # noqa: SIM115 - closed once the lane ends
    try:
        process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT if sink else None)
    finally:
        if sink is not None:
            sink.close()
    return Started(lane, process, junit, output, time.monotonic())


def finish_lane(started: Started, show: bool = True) -> tuple[int, float]:
    """Wait for a lane; its exit status and wall seconds (its kept output printed if `show`)."""
    status = started.process.wait()
    seconds = time.monotonic() - started.began
    if show:
        show_kept_output(started)
    return status, seconds


def show_kept_output(started: Started) -> None:
    if started.output is not None:
        print(f"\n--- {started.lane.name} lane ({', '.join(started.lane.areas)}) ---")
        sys.stdout.write(started.output.read_text(errors="replace"))
        sys.stdout.flush()


def combined_status(statuses: list[int]) -> int:
    """One exit status for the lanes: a lane that collected nothing (its areas had no match for
    -k or --fast) is fine while another ran tests; nothing collected anywhere is not."""
    ran = [s for s in statuses if s != NOTHING_COLLECTED]
    if not ran:
        return NOTHING_COLLECTED
    return next((s for s in ran if s != 0), 0)


def start_image_build(tmp: Path) -> Started:
    """`invoke build` in the background (its output kept)."""
    output = tmp / "build.out"
    with open(output, "wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "invoke", "--search-root", str(ROOT), "build"],
                                   cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    return Started(IMAGES_STEP, process, tmp / "build.xml", output, time.monotonic())


def run_suite(fast: bool = False, keyword: str = "", verbose: bool = False) -> int:
    """Run the suite; returns the exit status for `invoke test`."""
    missing = areas_in_no_lane()
    if missing:
        print(f"zcbench: tests/{', tests/'.join(missing)} in no lane of zcbench.devtools.testing: add it to one",
              file=sys.stderr)
        return 2
    print(f"zcbench: {lanes_text()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        build = [] if fast else [start_image_build(Path(tmp))]
        started = {lane.name: start_lane(lane, Path(tmp), fast, keyword, verbose) for lane in LANES}
        steps = [*started.values(), *build]
        ended: dict[str, tuple[int, float]] = {}
        try:
            while len(ended) < len(steps):  # each one's own wall time, taken when it ends
                for step in steps:
                    if step.lane.name not in ended and step.process.poll() is not None:
                        ended[step.lane.name] = finish_lane(step, show=False)  # shown below, not mid-stream
                time.sleep(0.2)
        except KeyboardInterrupt:
            for lane_run in build + list(started.values()):
                lane_run.process.terminate()
            raise
        built = [ended[step.lane.name] for step in build]
        finished = [ended[lane.name] for lane in LANES]
        started_in_order = [started[lane.name] for lane in LANES]
        for step in build + started_in_order:
            show_kept_output(step)
        status = combined_status([s for s, _ in finished]) or next((s for s, _ in built if s), 0)
        areas: dict[str, Counter] = defaultdict(Counter)
        for lane_run in started_in_order:
            if lane_run.junit.exists():
                outcomes_by_area(lane_run.junit, areas)
        if not areas:
            return status or 1
        total = print_summary(areas, {lane_run.lane.name: seconds for lane_run, (_, seconds)
                                      in zip(build + started_in_order, built + finished)})
    if status == NOTHING_COLLECTED:
        print("zcbench: no test ran", file=sys.stderr)
        return 1
    if total["skipped"] and not fast:
        print(f"zcbench: {total['skipped']} test(s) skipped: the full suite counts a skip as a failure",
              file=sys.stderr)
        status = status or 1
    print(f"{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    return status
