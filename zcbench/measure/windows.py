"""One window per cell: the server's CPU time and counters, wrk's CPU time, its rate and its
latencies all over the same seconds.

A paced cell on this host runs in a *scheduled window*: the bench picks [start, end] on the
host's monotonic clock (shared by every container), hands it to the load generator, and reads
the server's and the loadgen's CPU time and the server's counters at those two instants while
the generator runs. The generator opens its connections before `start` (the lead: wrk takes
about 250 ms for 4000 of them), offers nothing before `start` and nothing from `end` on, and
stops right after. So the connect ramp is outside every number, and the window's length is
exactly what was planned. The end snapshot is taken SNAPSHOT_DELAY_S after `end`, before the
generator's exit closes its connections. Requests still queued at the server then are answered
after the snapshot: the sample's CPU per request divides the server's CPU time by the responses
the server sent in the same window (bench.build_sample), not by wrk's count.

Anything else (no rate, a generator without windows, a loadgen or server on another host,
whose clock and cgroup files are not this machine's) is *bracketed*: the snapshots are taken
right before and after the generator's whole run; the sample's `window.kind` says which, and
the rate is over the generator's own window.

    run_scheduled(...) / run_bracketed(...) -> Measured
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from zcbench.measure import containers, counters
from zcbench.measure.loadgen.base import LoadGenerator, LoadRun, Window

SCHEDULED, BRACKETED = "scheduled", "bracketed"
#: The end snapshot this long after the window's end (paced.lua stops wrk 10 ms after it).
SNAPSHOT_DELAY_S = 0.002
#: wrk's own -d ends a scheduled run this long after its window if nothing else did.
BACKSTOP_S = 2
#: Until a connection count has been seen: time to start the generator (`docker exec` and wrk's
#: start took 45-90 ms here) and to open each connection (wrk: about 60 us each).
FIRST_LEAD_S = 0.12
FIRST_LEAD_PER_CONN_S = 100e-6
#: Then: the slowest of the last LEAD_HISTORY starts at that count, with this margin; twice
#: that after a start that left connections to open inside the window.
LEAD_MARGIN = 1.2
LEAD_SLACK_S = 0.02
LEAD_HISTORY = 5


@dataclass(frozen=True)
class Snapshot:
    """What the bench reads at one end of a window (CPU seconds from cgroups, counter totals)."""
    at_s: float  # monotonic time the reading began
    took_s: float  # how long reading took
    server_cpu_s: float
    loadgen_cpu_s: tuple[float, ...]
    counters: dict | None


def take_snapshot(server, loadgens: list) -> Snapshot:
    """Server CPU first, then each loadgen's (none for a bracketed run: each run times its own),
    then the server's counters: from its stats file here, through its engine on another host,
    none for nginx."""
    at = time.monotonic()
    server_cpu = server.cpu_seconds()
    loadgen_cpu = tuple(running.cpu_seconds() for running in loadgens)
    totals = None
    if server.stats_path:
        totals = counters.read_stats_file(server.stats_path)["totals"]
    elif server.stats_in_container:
        image = containers.read_container_file(server.container, server.stats_in_container)
        totals = counters.read_stats_buffer(image)["totals"]
    return Snapshot(at, time.monotonic() - at, server_cpu, loadgen_cpu, totals)


@dataclass(frozen=True)
class Measured:
    """One cell's measurement: the generator's runs (their CPU time and wall over the window),
    and the server's CPU time and counter changes over the same window."""
    runs: list[LoadRun]
    server_cpu_s: float
    server_counters: dict | None
    window: dict  # the sample's `window` record


def counter_delta(before: Snapshot, after: Snapshot) -> dict | None:
    return counters.delta(after.counters, before.counters) if after.counters is not None else None


def sleep_until(moment: float) -> None:
    while (left := moment - time.monotonic()) > 0:
        time.sleep(left)


class Leads:
    """How long before its window a cell's generator is started: long enough to start it and
    open its connections, learnt per connection count from what paced.lua reports (its start
    and its connections' readiness), with a margin; generous for a count not seen yet."""

    def __init__(self) -> None:
        self.needed: dict[int, deque] = defaultdict(lambda: deque(maxlen=LEAD_HISTORY))

    def lead_s(self, conns: int) -> float:
        seen = self.needed.get(conns)
        if not seen:
            return FIRST_LEAD_S + FIRST_LEAD_PER_CONN_S * conns
        return LEAD_MARGIN * max(seen) + LEAD_SLACK_S

    def learn(self, conns: int, launched_s: float, results: list[dict], lead_s: float) -> None:
        """From each loadgen's paced object: its start (ms) and ramp to readiness."""
        late = (ready_connections(results) or 0) < conns
        for result in results:
            paced = result.get("paced") or {}
            started, ramp = paced.get("started_ms"), paced.get("ramp_ms_max")
            if started is not None and ramp is not None:
                needed = max(0.0, started / 1e3 - launched_s) + ramp / 1e3
                self.needed[conns].append(max(needed, 2 * lead_s) if late else needed)


def ready_connections(results: list[dict]) -> int | None:
    """Connections that were open before the window (paced.lua's count of early delay() calls)."""
    counts = [(result.get("paced") or {}).get("ready_before_window") for result in results]
    return None if None in counts else sum(counts)


def run_scheduled(pool: ThreadPoolExecutor, generator: LoadGenerator, server, loadgens: list, url: str, *,
                  conns: int, threads: int, duration_s: float, timeout_s: int, rate: int,
                  leads: Leads) -> Measured:
    """The generator held to a window starting one lead from now and lasting `duration_s`,
    with the snapshots at its two ends (taken here while the generator runs in `pool`)."""
    launched = time.monotonic()
    lead = leads.lead_s(conns)
    window = Window(launched + lead, launched + lead + duration_s)
    backstop = math.ceil(lead + duration_s) + BACKSTOP_S  # wrk's -d: whole seconds
    future = pool.submit(generator.run_together, loadgens, url, conns=conns, threads=threads,
                         duration_s=backstop, timeout_s=timeout_s, rate=rate, window=window)
    sleep_until(window.start_s)
    before = take_snapshot(server, loadgens)
    sleep_until(window.end_s + SNAPSHOT_DELAY_S)
    after = take_snapshot(server, loadgens)
    runs = future.result()
    results = [run.result for run in runs]
    leads.learn(conns, launched, results, lead)
    # wrk's CPU time and wall over the window too (the loadgen's busy share is judged on it)
    timed = [replace(run, cpu_s=cpu_after - cpu_before, wall_s=after.at_s - before.at_s)
             for run, cpu_before, cpu_after in zip(runs, before.loadgen_cpu_s, after.loadgen_cpu_s)]
    record = {"kind": SCHEDULED, "start_s": window.start_s, "end_s": window.end_s,
              "length_s": window.length_s, "lead_s": lead,
              "snapshots_s": [[before.at_s, before.took_s], [after.at_s, after.took_s]],
              "ready_connections": ready_connections(results), "conns": conns,
              "generator_wall_s": max(run.wall_s for run in runs)}
    return Measured(timed, after.server_cpu_s - before.server_cpu_s, counter_delta(before, after), record)


def run_bracketed(generator: LoadGenerator, server, loadgens: list, url: str, *, conns: int, threads: int,
                  duration_s: float, timeout_s: int, rate: int | None) -> Measured:
    """The generator's whole run between two snapshots of the server (each loadgen's CPU time
    is its own run's, timed around it; the rate is over the generator's own window)."""
    before = take_snapshot(server, [])
    runs = generator.run_together(loadgens, url, conns=conns, threads=threads, duration_s=duration_s,
                                  timeout_s=timeout_s, rate=rate)
    after = take_snapshot(server, [])
    record = {"kind": BRACKETED, "length_s": after.at_s - before.at_s,
              "snapshots_s": [[before.at_s, before.took_s], [after.at_s, after.took_s]], "conns": conns}
    return Measured(runs, after.server_cpu_s - before.server_cpu_s, counter_delta(before, after), record)
