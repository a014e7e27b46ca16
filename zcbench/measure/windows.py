"""One window per cell: the server's CPU time and counters, wrk's CPU time, its rate and its
latencies all over the same seconds.

A paced cell on this host runs in a *scheduled window*. The load generator starts (through its
container's launcher), opens its connections and says so (loadgen.launcher.Handshake); the bench
then picks the window, [start, end] on the host's monotonic clock (shared by every container),
a few milliseconds ahead, and hands it over. The generator offers its load from `start`, nothing
from `end` on, and stops right after; the bench reads the server's and the loadgen's CPU time and
the server's counters at those two instants while it runs. So opening the connections (wrk takes
about 90 ms for 1000 of them here, 230 ms for 4000) is outside every number, it costs only its
own time, and the window's length is exactly what was planned. The end snapshot is taken
SNAPSHOT_DELAY_S after `end`, before the generator's exit closes its connections. Requests still
queued at the server then are answered after it: the sample's CPU per request divides the
server's CPU time by the responses the server sent in the same window (bench.build_sample), not
by wrk's count. For the count of every request wrk made against every response the server sent
(not one lost), the server's counters are read before the generator connects and once more when
it has ended and the server has closed its connections (settled_counters): a response wrk has
read may still wait in the server's completion queue for a few milliseconds, longer when the
host is busy, and the start snapshot can come a little after wrk's first responses.

Anything else (no rate, a generator without windows, several loadgens, a loadgen or server on
another host, whose clock and cgroup files are not this machine's) is *bracketed*: the snapshots
are taken right before and after the generator's whole run; the sample's `window.kind` says
which, and the rate is over the generator's own window.

    run_scheduled(...) / run_bracketed(...) -> Measured
"""

from __future__ import annotations

import itertools
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from zcbench.measure import containers, counters
from zcbench.measure.loadgen.base import LoadGenerator, LoadgenError, LoadRun
from zcbench.measure.loadgen.launcher import Handshake, LauncherError

SCHEDULED, BRACKETED = "scheduled", "bracketed"
#: The end snapshot this long after the window's end (paced.lua stops wrk 10 ms after it).
SNAPSHOT_DELAY_S = 0.002
#: wrk's own -d ends a scheduled run this long after its window if nothing else did.
BACKSTOP_S = 30
#: How long a generator may take to open its connections and say so.
READY_TIMEOUT_S = 60
#: From the last thread's "ready" to the window's start: the bench writes the window, the threads
#: see it (they look every 0.2 ms) and take their remaining connections' first delay() calls
#: (about 1 us each).
GO_MARGIN_S = 0.003
GO_MARGIN_PER_CONN_S = 1.5e-6
#: How long the server may take, after the generator has ended, to close its connections (it has
#: then handled every completion before their end); how often to look meanwhile.
SETTLE_TIMEOUT_S = 5.0
SETTLE_POLL_S = 0.002


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
    totals = read_counters(server)
    return Snapshot(at, time.monotonic() - at, server_cpu, loadgen_cpu, totals)


def read_counters(server) -> dict | None:
    """The server's counter totals now: from its stats file here, through its engine on another
    host, none for nginx."""
    if server.stats_path:
        return counters.read_stats_file(server.stats_path)["totals"]
    if server.stats_in_container:
        image = containers.read_container_file(server.container, server.stats_in_container)
        return counters.read_stats_buffer(image)["totals"]
    return None


def settled_counters(server, open_before: int | None) -> dict | None:
    """The server's counter totals once it has closed the connections the generator opened
    (`conns_open` back to `open_before`), at most SETTLE_TIMEOUT_S after the generator ended:
    its worker reaps a send's completion after the client may already have read the response,
    so a read right at the generator's end can miss a few responses wrk counted. Waiting for the
    connections to close (not only for wrk's count) also keeps a cell's closing work (4000
    connections) out of the next cell's window: it costs about 33 ms a cell (412 s for the default
    bench against 406 s without)."""
    totals = read_counters(server)
    if totals is None or open_before is None:
        return totals
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while totals["conns_open"] > open_before and time.monotonic() < deadline:
        time.sleep(SETTLE_POLL_S)
        totals = read_counters(server)
    return totals


def open_connections(snapshot: Snapshot) -> int | None:
    return snapshot.counters["conns_open"] if snapshot.counters is not None else None


def open_now(server) -> int | None:
    """The server's open connections now (None without counters): read before a generator
    connects, it is the level settled_counters waits for once that generator has ended."""
    totals = read_counters(server)
    return totals["conns_open"] if totals is not None else None


@dataclass(frozen=True)
class Window:
    """A scheduled window on the monotonic clock."""
    start_s: float
    end_s: float

    @property
    def length_s(self) -> float:
        return self.end_s - self.start_s


_windows = itertools.count()  # names of the windows' handshake files


@dataclass(frozen=True)
class Measured:
    """One cell's measurement: the generator's runs (their CPU time and wall over the window),
    and the server's CPU time and counter changes over the same window."""
    runs: list[LoadRun]
    server_cpu_s: float
    server_counters: dict | None
    window: dict  # the sample's `window` record
    #: responses the server sent to this generator, from before it connected until it had ended
    #: and its connections were closed: every one wrk counted is among them (the window's own
    #: count misses those still queued at its end, and a late start snapshot its first ones)
    server_responses: int | None = None


def counter_delta(before: Snapshot, after: Snapshot) -> dict | None:
    return counters.delta(after.counters, before.counters) if after.counters is not None else None


def sleep_until(moment: float) -> None:
    while (left := moment - time.monotonic()) > 0:
        time.sleep(left)


def run_scheduled(pool: ThreadPoolExecutor, generator: LoadGenerator, server, loadgen, url: str, *,
                  conns: int, threads: int, duration_s: float, timeout_s: int, rate: int) -> Measured:
    """The generator (in `pool`) opens its connections and says so; the window then starts
    GO_MARGIN later and lasts `duration_s`; the snapshots are taken here at its two ends."""
    handshake = Handshake(loadgen.launcher, f"w{next(_windows)}")
    # Before the generator connects, the count every response to it is checked from: the start
    # snapshot already counts its connections open, and it can be taken late (a busy host's bench
    # thread was seen 0.6 ms past the start, with wrk's first responses counted before it).
    launch = read_counters(server)
    try:
        launched = time.monotonic()
        future = pool.submit(generator.run_together, [loadgen], url, conns=conns, threads=threads,
                             duration_s=math.ceil(duration_s) + BACKSTOP_S, timeout_s=timeout_s, rate=rate,
                             window=handshake.window)
        try:
            ready = handshake.wait_ready(threads, READY_TIMEOUT_S, alive=lambda: not future.done())
        except LauncherError as exc:
            if future.done():
                future.result()  # the generator's own failure says more
            raise LoadgenError(str(exc)) from None
        start = ready + GO_MARGIN_S + GO_MARGIN_PER_CONN_S * conns / threads
        window = Window(start, start + duration_s)
        handshake.go(window.start_s, window.end_s)
        sleep_until(window.start_s)
        before = take_snapshot(server, [loadgen])
        sleep_until(window.end_s + SNAPSHOT_DELAY_S)
        after = take_snapshot(server, [loadgen])
        runs = future.result()
        settled = settled_counters(server, launch["conns_open"] if launch is not None else None)
    finally:
        handshake.close()
    # wrk's CPU time and wall over the window too (the loadgen's busy share is judged on it)
    timed = [replace(run, cpu_s=after.loadgen_cpu_s[0] - before.loadgen_cpu_s[0], wall_s=after.at_s - before.at_s)
             for run in runs]
    record = {"kind": SCHEDULED, "start_s": window.start_s, "end_s": window.end_s,
              "length_s": window.length_s, "lead_s": window.start_s - launched, "ready_s": ready - launched,
              "snapshots_s": [[before.at_s, before.took_s], [after.at_s, after.took_s]], "conns": conns,
              "generator_wall_s": max(run.wall_s for run in runs)}
    through_end = (settled["responses"] - launch["responses"]
                   if settled is not None and launch is not None else None)
    return Measured(timed, after.server_cpu_s - before.server_cpu_s, counter_delta(before, after), record,
                    through_end)


def run_bracketed(generator: LoadGenerator, server, loadgens: list, url: str, *, conns: int, threads: int,
                  duration_s: float, timeout_s: int, rate: int | None) -> Measured:
    """The generator's whole run between two snapshots of the server (each loadgen's CPU time
    is its own run's, timed around it; the rate is over the generator's own window). The second
    is taken once the server has closed the generator's connections, so it holds every response
    the generator counted and the server's CPU time for them."""
    before = take_snapshot(server, [])
    runs = generator.run_together(loadgens, url, conns=conns, threads=threads, duration_s=duration_s,
                                  timeout_s=timeout_s, rate=rate)
    settled_counters(server, open_connections(before))
    after = take_snapshot(server, [])
    record = {"kind": BRACKETED, "length_s": after.at_s - before.at_s,
              "snapshots_s": [[before.at_s, before.took_s], [after.at_s, after.took_s]], "conns": conns}
    delta = counter_delta(before, after)
    return Measured(runs, after.server_cpu_s - before.server_cpu_s, delta, record,
                    delta.get("responses") if delta else None)
