"""What every load generator is to the bench, and what they share.

A generator runs inside the loadgen container (started by the container's launcher, or by one
`docker exec` per run on another host, so its CPU time lands in that container's cgroup) and
prints one JSON object, which it parses into the common shape:

    {"requests": N, "duration_us": D, "bytes": B, "requests_per_s": R,
     "errors": {"connect", "read", "write", "timeout", "status"},
     "latency_us": {"mean", "stdev", "min", "max", "p50", "p75", "p90", "p99", "p99.9", "p99.99"},
     "percentiles_us": [[percentile, microseconds], ...],   # the finer table, for distributions
     "paced": {...} or null}                                  # with --rate: the paced window

A subclass says how to build its command line, parse its output and tell its version; running
it, timing its CPU, and sharing a cell among several loadgen hosts are the same for all.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from zcbench.measure.loadgen.launcher import LauncherError, Window

HEADLINE_PERCENTILES = ("p50", "p75", "p90", "p99", "p99.9", "p99.99")
ERROR_KINDS = ("connect", "read", "write", "timeout", "status")
RESULT_KEYS = ("requests", "duration_us", "bytes", "errors", "latency_us", "percentiles_us")


class LoadgenError(RuntimeError):
    """A load generator failed or printed no result; the message carries its exit code and output."""


@dataclass(frozen=True)
class LoadRun:
    """One run of a generator: its result (the common shape) and what it cost."""
    result: dict
    cpu_s: float  # CPU seconds of the loadgen container's cgroup during the run
    wall_s: float
    command: tuple[str, ...] = ()  # the exact command line (recorded in each sample)
    threads: int | None = None  # its threads (a loadgen's share of a cell may run fewer)


def check_result(obj: dict) -> dict:
    """A result in the common shape, or LoadgenError naming what it lacks."""
    missing = [k for k in RESULT_KEYS if k not in obj]
    missing += [f"errors.{k}" for k in ERROR_KINDS if k not in obj.get("errors", {})]
    missing += [f"latency_us.{k}" for k in ("mean", "stdev", "max", *HEADLINE_PERCENTILES)
                if k not in obj.get("latency_us", {})]
    if missing:
        raise LoadgenError(f"load generator result lacks {', '.join(missing)}")
    return obj


def paced_window_s(result: dict) -> float | None:
    """Seconds over which a paced generator offered its rate: the threads' mean window (each
    from its first slot, after opening its connections, until it stopped). Without one (zcbench
    before windows), the duration less the mean ramp. None for an unpaced run, or one whose
    threads never took a slot."""
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


class LoadGenerator:
    """One load generator. Subclasses set `name` and implement command(), parse(), version()."""
    name = ""
    #: The project image it runs in (measure.images builds it).
    image = "loadgen"
    #: Whether command() takes a `window` (a paced run held to a scheduled Window); without it
    #: the bench brackets the whole run with its snapshots.
    schedules_windows = False

    def command(self, url: str, *, conns: int, threads: int, duration_s: float, timeout_s: int,
                rate: int | None = None, window: Window | None = None) -> list[str]:
        """Its command line; `window` (only asked of a generator that schedules_windows, with a
        rate) holds the load to it, `duration_s` then being a backstop past its end."""
        raise NotImplementedError

    def parse(self, stdout: str) -> dict:
        """Its output -> a result in the common shape (check_result)."""
        raise NotImplementedError

    def version_command(self) -> list[str]:
        """A command printing its version inside its container."""
        raise NotImplementedError

    def parse_version(self, output: str) -> str:
        return output.strip().splitlines()[0] if output.strip() else ""

    def config_error(self, *, threads: int, conns: int, generators: int) -> str | None:
        """Why a plan cannot run with this generator, or None (checked before anything starts)."""
        return None

    # --- the same for every generator --------------------------------------------------------

    def version(self, running) -> str | None:
        """Its version, asked inside its running container (None when it cannot say)."""
        try:
            code, output = running.container.exec_run(self.version_command())
        except Exception:  # noqa: BLE001 - recorded as unknown, the run goes on
            return None
        return self.parse_version((output or b"").decode(errors="replace")) or None

    def run(self, running, url: str, *, conns: int, threads: int, duration_s: float, timeout_s: int,
            rate: int | None = None, window: Window | None = None) -> LoadRun:
        """One run inside its container (`docker exec`), with the container's CPU time around it."""
        scheduled = {"window": window} if window is not None else {}  # generators without windows lack the keyword
        command = self.command(url, conns=conns, threads=threads, duration_s=duration_s,
                               timeout_s=timeout_s, rate=rate, **scheduled)
        cpu_before, wall_before = running.cpu_seconds(), time.monotonic()
        code, stdout_text, err = _execute(running, command, timeout_s=duration_s + RUN_TIMEOUT_SLACK_S)
        wall, cpu = time.monotonic() - wall_before, running.cpu_seconds() - cpu_before
        if code != 0:
            raise LoadgenError(f"{self.name} exited {code}: {(err.strip() or stdout_text).strip()[-300:]}")
        return LoadRun(self.parse(stdout_text), cpu, wall, tuple(command), threads)

    def run_together(self, containers: list, url: str, *, conns: int, threads: int, duration_s: float,
                     timeout_s: int, rate: int | None = None, window: Window | None = None) -> list[LoadRun]:
        """The generator in every loadgen container at once, the cell's connections (and rate)
        shared out among them, all held to `window` if one is given; each one's own run, in
        `containers` order."""
        if len(containers) == 1:
            return [self.run(containers[0], url, conns=conns, threads=threads, duration_s=duration_s,
                             timeout_s=timeout_s, rate=rate, window=window)]
        shares = split_evenly(conns, len(containers))
        rates = split_evenly(rate, len(containers)) if rate else [None] * len(containers)
        with ThreadPoolExecutor(max_workers=len(containers)) as pool:
            futures = [pool.submit(self.run, running, url, conns=share, threads=min(threads, share),
                                   duration_s=duration_s, timeout_s=timeout_s, rate=share_rate, window=window)
                       for running, share, share_rate in zip(containers, shares, rates)]
            return [future.result() for future in futures]


#: A run that has not ended this long after its duration has hung (its container's launcher).
RUN_TIMEOUT_SLACK_S = 60


def _execute(running, command: list[str], timeout_s: float) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of a command in a loadgen container: through its launcher
    when it has one, else `docker exec`."""
    if running.launcher is not None:
        try:
            return running.launcher.run(command, timeout_s, alive=running.alive)
        except LauncherError as exc:
            raise LoadgenError(str(exc)) from None
    code, (stdout, stderr) = running.container.exec_run(command, demux=True)
    return code, (stdout or b"").decode(errors="replace"), (stderr or b"").decode(errors="replace")


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` as `parts` whole shares differing by at most one, the larger ones first."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def combine_results(results: list[dict]) -> dict:
    """One result for a cell served to several loadgens at once: counts summed, the mean and
    stdev of all requests pooled; a percentile is the highest of the loadgens' (an upper bound:
    their histograms are not in the JSON), so a combined object says so."""
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
