"""wrk (Debian's 4.x) as a load generator: the project's Lua scripts print one JSON line.

Nothing here parses wrk's human-readable text: loadgen/report.lua's done() writes a JSON object
marked "zcbench_wrk" on a line of its own (latencies in microseconds), and paced.lua adds the
paced window with --rate: each thread holds its requests to a schedule of RATE / THREADS per
second. wrk corrects coordinated omission after the run (synthetic samples for latencies above
twice the mean per-connection interval).
"""

from __future__ import annotations

import re

from zcbench.core.paths import ROOT
from zcbench.core.jsonline import last_json_object
from zcbench.measure.loadgen.base import LoadGenerator, LoadgenError, check_result
from zcbench.measure.loadgen.launcher import Window

SCRIPT_IN_IMAGE = "/loadgen/report.lua"  # images/loadgen/Dockerfile copies loadgen/ to /loadgen
SCRIPT_ON_HOST = ROOT / "loadgen" / "report.lua"
PACED_SCRIPT_IN_IMAGE = "/loadgen/paced.lua"
MARKER = "zcbench_wrk"


def wrk_command(url: str, *, conns: int, threads: int, duration_s: float, timeout_s: int,
                rate: int | None = None, script: str | None = None, wrk: str = "wrk",
                window: Window | None = None) -> list[str]:
    """wrk's command line: as fast as it can, or paced to `rate` requests/s in total, and then
    held to `window` if one is given (paced.lua's CONNS READY GO; wrk's -d, whole seconds, is
    then a backstop past the window's end)."""
    if window is not None and not rate:
        raise ValueError("a scheduled window needs a rate (paced.lua holds it)")
    script = script or (PACED_SCRIPT_IN_IMAGE if rate else SCRIPT_IN_IMAGE)
    command = [wrk, "--latency", "-t", str(threads), "-c", str(conns), "-d", f"{duration_s:g}s",
               "--timeout", f"{timeout_s}s", "-s", script, url]
    if not rate:
        return command
    command += ["--", str(rate), str(threads)]
    if window is not None:
        command += [str(conns), window.ready, window.go]
    return command


def parse_wrk_json(stdout: str) -> dict:
    """The report.lua object from wrk's stdout (the last line that is one), checked for shape."""
    obj = last_json_object(stdout, lambda o: o.get(MARKER) == 1)
    if obj is None:
        raise LoadgenError(f"no zcbench JSON line in wrk's output: {stdout.strip()[-300:] or '(empty)'}")
    return check_result(obj)


class Wrk(LoadGenerator):
    name = "wrk"
    schedules_windows = True  # paced.lua

    def command(self, url, *, conns, threads, duration_s, timeout_s, rate=None, window=None):
        return wrk_command(url, conns=conns, threads=threads, duration_s=duration_s,
                           timeout_s=timeout_s, rate=rate, window=window)

    def parse(self, stdout):
        return parse_wrk_json(stdout)

    def version_command(self):
        return ["wrk", "-v"]

    def parse_version(self, output):
        match = re.search(r"wrk\s+(\S+)", output)
        return match.group(1) if match else super().parse_version(output)

    def config_error(self, *, threads, conns, generators):
        if threads * generators > conns:
            per = f" on each of {generators} loadgen hosts" if generators > 1 else ""
            return (f"--threads {threads}{per} exceeds the smallest --conns {conns} "
                    "(wrk needs at least one connection per thread)")
        return None
