"""Running wrk and reading the one JSON line its Lua script (loadgen/report.lua) prints.

Nothing here parses wrk's human-readable text: report.lua's done() writes a JSON object
marked "zcbench_wrk" on a line of its own, and `parse_wrk_json` takes that line.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from zcbench import ROOT

SCRIPT_IN_IMAGE = "/loadgen/report.lua"  # images/loadgen/Dockerfile copies loadgen/ to /loadgen
SCRIPT_ON_HOST = ROOT / "loadgen" / "report.lua"
# --rate: paced.lua holds each request to a schedule (RATE / THREADS per second per thread)
PACED_SCRIPT_IN_IMAGE = "/loadgen/paced.lua"
HEADLINE_PERCENTILES = ("p50", "p75", "p90", "p99", "p99.9", "p99.99")
ERROR_KINDS = ("connect", "read", "write", "timeout", "status")


class WrkError(RuntimeError):
    """wrk failed or printed no JSON; the message carries its exit code and last output."""


def wrk_command(url: str, *, conns: int, threads: int, duration_s: int, timeout_s: int,
                rate: int | None = None, script: str | None = None, wrk: str = "wrk") -> list[str]:
    """wrk's command line: as fast as it can, or paced to `rate` requests/s in total."""
    script = script or (PACED_SCRIPT_IN_IMAGE if rate else SCRIPT_IN_IMAGE)
    command = [wrk, "--latency", "-t", str(threads), "-c", str(conns), "-d", f"{duration_s}s",
               "--timeout", f"{timeout_s}s", "-s", script, url]
    return command + (["--", str(rate), str(threads)] if rate else [])


def parse_wrk_json(stdout: str) -> dict:
    """The report.lua object from wrk's stdout (the last line that is one), checked for shape."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if obj.get("zcbench_wrk") != 1:
            continue
        missing = [k for k in ("requests", "duration_us", "bytes", "errors", "latency_us", "percentiles_us")
                   if k not in obj]
        missing += [f"errors.{k}" for k in ERROR_KINDS if k not in obj.get("errors", {})]
        missing += [f"latency_us.{k}" for k in ("mean", "stdev", "max", *HEADLINE_PERCENTILES)
                    if k not in obj.get("latency_us", {})]
        if missing:
            raise WrkError(f"wrk JSON lacks {', '.join(missing)}")
        return obj
    raise WrkError(f"no zcbench JSON line in wrk's output: {stdout.strip()[-300:] or '(empty)'}")


@dataclass(frozen=True)
class WrkRun:
    result: dict  # the report.lua object
    cpu_s: float  # CPU seconds of the loadgen container's cgroup during the run
    wall_s: float
    command: tuple[str, ...] = ()  # the exact wrk command line (recorded in each sample)


def run_wrk(loadgen, url: str, *, conns: int, threads: int, duration_s: int, timeout_s: int,
            rate: int | None = None) -> WrkRun:
    """Run wrk inside the loadgen container (`docker exec`) and measure its CPU time."""
    command = wrk_command(url, conns=conns, threads=threads, duration_s=duration_s, timeout_s=timeout_s,
                          rate=rate)
    cpu_before, wall_before = loadgen.cpu_seconds(), time.monotonic()
    code, (stdout, stderr) = loadgen.container.exec_run(command, demux=True)
    wall, cpu = time.monotonic() - wall_before, loadgen.cpu_seconds() - cpu_before
    stdout_text = (stdout or b"").decode(errors="replace")
    if code != 0:
        err = (stderr or b"").decode(errors="replace").strip()
        raise WrkError(f"wrk exited {code}: {(err or stdout_text).strip()[-300:]}")
    return WrkRun(parse_wrk_json(stdout_text), cpu, wall, tuple(command))
