"""Running wrk and reading the one JSON line its Lua script (loadgen/report.lua) prints.

Nothing here parses wrk's human-readable text: report.lua's done() writes a JSON object
marked "zcbench_wrk" on a line of its own, and `parse_wrk_json` takes that line.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from zcbench.core.paths import ROOT

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


def paced_window_s(result: dict) -> float | None:
    """Seconds over which a paced wrk offered its rate: paced.lua's mean window over its threads
    (each from its first slot, after opening its connections, until it stopped). Without one
    (zcbench before windows), wrk's duration less the mean ramp. None for an unpaced run, or one
    whose threads never took a slot."""
    paced = result.get("paced") or {}
    if paced.get("window_ms_mean") is not None:
        return paced["window_ms_mean"] / 1e3
    if paced.get("ramp_ms_mean") is None:
        return None
    return max(0.0, result["duration_us"] / 1e6 - paced["ramp_ms_mean"] / 1e3)


def achieved_rate(result: dict) -> float | None:
    """Requests per second over the paced window: what the offered rate is judged against
    (0 for a paced run whose threads never took a slot: nothing was offered)."""
    if result.get("paced") is None:
        return None
    window = paced_window_s(result)
    return result["requests"] / window if window else 0.0


@dataclass(frozen=True)
class WrkRun:
    result: dict  # the report.lua object
    cpu_s: float  # CPU seconds of the loadgen container's cgroup during the run
    wall_s: float
    command: tuple[str, ...] = ()  # the exact wrk command line (recorded in each sample)
    threads: int | None = None  # wrk's -t (a loadgen's share of a cell may run fewer)


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
    return WrkRun(parse_wrk_json(stdout_text), cpu, wall, tuple(command), threads)


# --- several load generators, one cell --------------------------------------------------------


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` as `parts` whole shares differing by at most one, the larger ones first."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def run_wrk_together(loadgens: list, url: str, *, conns: int, threads: int, duration_s: int,
                     timeout_s: int, rate: int | None = None) -> list[WrkRun]:
    """wrk on every loadgen container at once, the cell's connections (and rate) shared out
    among them; each one's own run, in `loadgens` order. One loadgen: a plain run_wrk."""
    if len(loadgens) == 1:
        return [run_wrk(loadgens[0], url, conns=conns, threads=threads, duration_s=duration_s,
                        timeout_s=timeout_s, rate=rate)]
    from concurrent.futures import ThreadPoolExecutor

    shares = split_evenly(conns, len(loadgens))
    rates = split_evenly(rate, len(loadgens)) if rate else [None] * len(loadgens)
    with ThreadPoolExecutor(max_workers=len(loadgens)) as pool:
        futures = [pool.submit(run_wrk, loadgen, url, conns=share, threads=min(threads, share),
                               duration_s=duration_s, timeout_s=timeout_s, rate=share_rate)
                   for loadgen, share, share_rate in zip(loadgens, shares, rates)]
        return [future.result() for future in futures]


def combine_results(results: list[dict]) -> dict:
    """One report.lua object for a cell served to several loadgens at once: counts summed,
    the mean and stdev of all requests pooled; a percentile is the highest of the loadgens'
    (an upper bound: their histograms are not in the JSON), so a combined object says so."""
    if len(results) == 1:
        return results[0]
    n = [r["requests"] for r in results]
    total = sum(n)
    means = [r["latency_us"]["mean"] for r in results]
    mean = sum(k * m for k, m in zip(n, means)) / total if total else 0.0
    variance = (sum(k * (r["latency_us"]["stdev"] ** 2 + (m - mean) ** 2)
                    for k, m, r in zip(n, means, results)) / total) if total else 0.0
    latency = {key: max(r["latency_us"][key] for r in results)
               for key in ("max", *HEADLINE_PERCENTILES)}
    latency.update(mean=mean, stdev=variance ** 0.5, min=min(r["latency_us"].get("min", 0) for r in results))
    rows = zip(*(r["percentiles_us"] for r in results))
    return {
        "zcbench_wrk": 1,
        "requests": total,
        # all start together; the longest clock is the cell's (requests_per_s below is the sum)
        "duration_us": max(r["duration_us"] for r in results),
        "bytes": sum(r["bytes"] for r in results),
        "requests_per_s": sum(r["requests_per_s"] for r in results),
        "errors": {kind: sum(r["errors"][kind] for r in results) for kind in ERROR_KINDS},
        "latency_us": latency,
        "percentiles_us": [[row[0][0], max(value for _, value in row)] for row in rows],
        "paced": _combined_paced([r.get("paced") for r in results]),
        "combined_from": len(results),
        "percentiles_combined": "highest of the loadgens' (an upper bound of the combined percentile)",
    }


def _combined_paced(parts: list[dict | None]) -> dict | None:
    """The loadgens' paced objects as one: counts summed, the longest ramp. No window: each
    loadgen's own stays in its part of the sample, and the combined achieved rate is the sum of
    theirs (Sample.achieved_rate), not requests over one window."""
    if not parts or any(part is None for part in parts):
        return None
    ramps = [part.get("ramp_ms_max") for part in parts]
    return {"threads": sum(part["threads"] for part in parts),
            "ramp_ms_max": None if None in ramps else max(ramps),
            "slots": sum(part["slots"] for part in parts),
            "lapsed_slots": sum(part["lapsed_slots"] for part in parts)}
