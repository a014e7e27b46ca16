"""`invoke test`: the whole suite through pytest, then a summary by area.

A skipped test is not a passed one: in the full suite (not --fast) any skip fails the run,
since it means something the suite promises was not exercised on this host.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

from zcbench.core.paths import ROOT

#: Tests that need a Docker engine carry this marker; --fast leaves them out, and the lab's
#: (which start a second engine of their own).
DOCKER_MARKER = "docker"
LAB_MARKER = "lab"


def pytest_command(junit: Path, fast: bool, keyword: str, verbose: bool) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "tests"), f"--junitxml={junit}", "-rfEs"]
    if fast:
        cmd += ["-m", f"not {DOCKER_MARKER} and not {LAB_MARKER}"]
    if keyword:
        cmd += ["-k", keyword]
    cmd.append("-v" if verbose else "-q")
    return cmd


def area_of(classname: str) -> str:
    """tests.server.test_http → server; tests/test_x.py at the top level → unit."""
    parts = classname.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "tests" else "unit"


def outcomes_by_area(junit: Path) -> dict[str, Counter]:
    areas: dict[str, Counter] = defaultdict(Counter)
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


def print_summary(areas: dict[str, Counter]) -> Counter:
    total: Counter = Counter()
    print("\nzcbench test summary")
    print(f"  {'area':<14}{'passed':>8}{'failed':>8}{'skipped':>9}{'seconds':>10}")
    for area in sorted(areas):
        c = areas[area]
        print(f"  {area:<14}{c['passed']:>8}{c['failed']:>8}{c['skipped']:>9}{c['seconds']:>10.1f}")
        total.update(c)
    return total


def run_suite(fast: bool = False, keyword: str = "", verbose: bool = False) -> int:
    """Run the suite; returns the exit status for `invoke test`."""
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        status = subprocess.call(pytest_command(junit, fast, keyword, verbose), cwd=ROOT)
        if not junit.exists():
            return status or 1
        total = print_summary(outcomes_by_area(junit))
    if status == 5:  # pytest: no test collected
        print("zcbench: no test ran", file=sys.stderr)
        return 1
    if total["skipped"] and not fast:
        print(f"zcbench: {total['skipped']} test(s) skipped: the full suite counts a skip as a failure",
              file=sys.stderr)
        status = status or 1
    print(f"{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    return status
