"""One measured cell of a bench run, as stored line by line in samples.jsonl.

samples.jsonl is the raw record every number of a report is computed from; core.rundir appends
each sample as its cell finishes, so a run cut short keeps what it measured. Its JSON Schema is
zcbench/schemas/sample.schema.json; an object looks like:

    {
      "schema": 2,
      "cell": {                        # what was measured
        "index": 7,                    # position in the executed (balanced) order
        "server": "zcbench",           # "zcbench" or "nginx"
        "arm": "zc",                   # a name of core.arms' registry
        "conns": 1000,
        "response_size": 88,           # bytes of each HTTP response (headers + body)
        "rep": 1                       # repetition (block) number, 0-based
      },
      "started_at": "2026-11-22T05:30:00.123Z", "finished_at": "...",
      "duration_s": 10.0,              # the load generator's measured duration
      "loadgen": "wrk",                # which load generator (measure.loadgen) produced it
      "loadgen_result": {...},         # its JSON object verbatim (wrk: loadgen/report.lua)
      "loadgen_command": ["wrk", ...], # the exact measured command line
      "requests": 2450000,             # completed requests counted by the load generator
      "requests_per_s": 245000.0,
      "latency_us": {"mean": ..., "stdev": ..., "max": ..., "p50": ..., "p75": ..., "p90": ...,
                     "p99": ..., "p99.9": ..., "p99.99": ...},
      "errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0},
      "non_2xx": 0,                    # = errors.status: responses counted as failed
      "server_counters": {...},        # measure.counters delta over the measured window (totals)
                                       # null for nginx
      "server_responses": 2450873,     # responses sent from the window's start until the generator
                                       # ended (null for nginx); server_counters.responses counts
                                       # the window alone, the CPU per request's denominator
      "responses_minus_requests": 873, # requests in flight when the generator stopped its clock:
                                       # answered by the server, not counted by it (<= conns)
      "server_cpu_s": 9.1,             # server container CPU seconds in the measured window
      "cpu_us_per_request": 3.7,
      "loadgen_cpu_s": 9.7,            # load generator CPU seconds in the measured window
      "loadgen_wall_s": 10.02,         # wall seconds of that window
      "loadgen_cpu_share": 0.97,       # loadgen_cpu_s / (loadgen_wall_s * min(threads, loadgen cores))
      "loadgen_bound": true,           # loadgen_cpu_share >= LOADGEN_BOUND_SHARE
      "loadgens": [{"host": "lab", "requests": ..., "requests_per_s": ..., "duration_us": ...,
                    "errors": {...}, "latency_us": {...}, "cpu_s": ..., "wall_s": ...,
                    "cpu_share": ..., "command": [...]}],
                                       # each loadgen host's own part (one entry without -i); with
                                       # several, the fields above are their sum (requests_per_s:
                                       # the sum of their rates), mean/stdev latency pooled, a
                                       # percentile the highest of theirs (an upper bound), the
                                       # CPU share the busiest one's; `loadgen_result` is then that
                                       # combination
      "server_exit": null,             # runs with a server per cell: how it ended (now each
                                       # server lives for the run: the manifest's "servers")
      "offered_rate": 60000,           # --rate: requests/s offered (null: as fast as it can)
      "achieved_rate": 59950.2,        # requests / paced_window_s (several loadgens: the sum of
                                       # theirs, each in its `loadgens` part)
      "rate_sustained": true,          # achieved >= RATE_SUSTAINED_SHARE * offered (null: unpaced)
      "paced_window_s": 1.78,          # seconds over which the rate was offered: the threads' mean
                                       # time from their first slot (after opening their
                                       # connections) until they stopped (the longest of the
                                       # loadgens', whose own windows are in `loadgens`)
      "lapsed_slots": 0,               # slots the pacing dropped because the generator fell
                                       # behind by more than its MAX_LAG_MS
      "window": {                      # the seconds every number above covers (measure.windows)
        "kind": "scheduled",           # "scheduled": wrk held to [start_s, end_s] (monotonic
                                       # clock), connections opened before it, the server's and
                                       # wrk's CPU and the counters read at its ends (the end
                                       # one 2 ms after it, before wrk closes its connections);
                                       # "bracketed": the snapshots around the generator's whole
                                       # run (no rate, or a host with another clock)
        "start_s": 812.31, "end_s": 814.31, "length_s": 2.0,
        "lead_s": 0.25,                # the generator was started this long before start_s ...
        "ready_s": 0.24,               # ... and said its connections were open this long after
        "snapshots_s": [[812.3101, 0.0002], [814.3122, 0.0002]],  # each snapshot's time, duration
        "conns": 4000, "generator_wall_s": 2.29
      }
    }

Schema 1 (zcbench before load generators had an interface) named `loadgen_result` "wrk" and
`loadgen_command` "wrk_command"; such samples read as wrk's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

#: samples.jsonl's version: 2 since the load generator interface (schema 1 is read too).
SAMPLES_SCHEMA = 2

#: With --rate: a cell whose achieved rate is below this share of the offered one did not get
#: the load the comparison is about; it is flagged, not compared.
RATE_SUSTAINED_SHARE = 0.97

#: The load generator's threads (each on its own core) busy at least this share of the time: the
#: cell measured the load generator, not the server.
LOADGEN_BOUND_SHARE = 0.90
#: ... and at least this share, its own queue is in the latencies it reports: after a burst of
#: responses (a server that paused), a generator with little headroom reads them late. Measured
#: by `invoke calibrate`'s latency check here: wrk 83-85% busy measured a known 20 ms stall right
#: (1000 connections), 88-91% busy reported p99 4x too long (4000 connections).
LATENCY_HEADROOM_SHARE = 0.85

#: A cell in which an arm fell short of the offered rate in more blocks than this asks for a lower
#: rate: the report suggests one, and a rerun of a --rate auto run (`--from`) takes it.
SHORT_BLOCKS_TOLERATED = 2
#: ... that rate: this share of the lowest rate a short block reached.
SUGGESTED_RATE_SHARE = 0.9


def lower_rates(samples: list) -> dict[tuple[int, int, float | None], int]:
    """(conns, response size, load) -> the lower rate for every cell in which an arm fell short
    in more than SHORT_BLOCKS_TOLERATED blocks."""
    short: dict[tuple, list] = {}
    for sample in samples:
        if sample.rate_sustained is False:
            cell = sample.cell
            short.setdefault((cell.conns, cell.response_size, cell.load, cell.arm), []).append(sample)
    lowered: dict[tuple[int, int, float | None], int] = {}
    for (conns, size, load, _), members in short.items():
        achieved = [s.achieved_rate for s in members if s.achieved_rate]
        if len(members) > SHORT_BLOCKS_TOLERATED and achieved:
            rate = max(1, int(SUGGESTED_RATE_SHARE * min(achieved)))
            lowered[(conns, size, load)] = min(rate, lowered.get((conns, size, load), rate))
    return lowered


# --- the sample ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One cell of a run's plan (zcbench.measure.plan): what a sample measured."""
    index: int  # position in the executed order
    server: str  # "zcbench" | "nginx"
    arm: str  # a name of core.arms' registry
    conns: int
    response_size: int
    rep: int  # repetition number, 0-based
    # the offered load as a share of the cell's measured saturation (--rate 30%,70% or auto);
    # None when wrk ran unpaced or at an absolute --rate
    load: float | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        if self.load is None:  # as runs without a load axis always wrote it
            del data["load"]
        return data

    def describe(self) -> str:
        at = f" at {load_text(self.load)}" if self.load is not None else ""
        return f"{self.arm} c={self.conns} {self.response_size}B{at} rep {self.rep + 1}"


def load_text(load: float) -> str:
    """A load share as the user wrote it: 0.3 -> '30%', 0.125 -> '12.5%'."""
    return f"{load * 100:g}%"


@dataclass(frozen=True)
class Latency:
    """The load generator's latency summary of a cell, in microseconds (`latency_us`)."""
    mean: float
    stdev: float
    max: float
    p50: float
    p75: float
    p90: float
    p99: float
    p99_9: float
    p99_99: float

    #: attribute -> JSON key, where a key is no Python name
    KEYS = {"p99_9": "p99.9", "p99_99": "p99.99"}

    @classmethod
    def from_json(cls, obj: dict) -> Latency:
        return cls(**{name: obj[cls.KEYS.get(name, name)] for name in cls.__dataclass_fields__})

    def to_json(self) -> dict:
        return {self.KEYS.get(name, name): value for name, value in asdict(self).items()}


@dataclass(frozen=True)
class Errors:
    """wrk's error counts of a cell by kind (wrk.ERROR_KINDS); `status` = non-2xx responses."""
    connect: int = 0
    read: int = 0
    write: int = 0
    timeout: int = 0
    status: int = 0

    @classmethod
    def from_json(cls, obj: dict) -> Errors:
        return cls(**{kind: int(obj.get(kind) or 0) for kind in cls.__dataclass_fields__})

    def to_json(self) -> dict:
        return asdict(self)

    def __add__(self, other: Errors) -> Errors:
        return Errors(**{kind: getattr(self, kind) + getattr(other, kind) for kind in self.__dataclass_fields__})

    @property
    def total(self) -> int:
        return sum(asdict(self).values())


@dataclass(frozen=True)
class LoadgenPart:
    """One loadgen host's own part of a cell (samples' `loadgens`)."""
    host: str
    requests: int
    duration_us: float
    requests_per_s: float
    errors: Errors
    latency_us: dict  # the generator's latency object as it printed it (min included)
    cpu_s: float
    wall_s: float
    cpu_share: float | None
    command: list[str]
    paced_window_s: float | None = None  # --rate: duration less the connection ramp
    achieved_rate: float | None = None  # --rate: requests / paced_window_s

    @classmethod
    def from_json(cls, obj: dict) -> LoadgenPart:
        return cls(**obj | {"errors": Errors.from_json(obj["errors"])})

    def to_json(self) -> dict:
        return asdict(self) | {"errors": self.errors.to_json()}


@dataclass(frozen=True)
class Sample:
    """One measured cell (the module docstring has the meaning of every field). The fields
    after `loadgen_command` are absent from samples of older zcbench versions, hence their
    defaults."""
    cell: Cell
    started_at: str
    finished_at: str
    duration_s: float
    loadgen_result: dict  # the load generator's JSON object verbatim
    requests: int
    requests_per_s: float | None
    latency_us: Latency
    errors: Errors
    server_counters: dict | None  # named by the server's C header (zcbench.measure.counters)
    server_cpu_s: float | None
    cpu_us_per_request: float | None
    loadgen_cpu_s: float | None
    loadgen_cpu_share: float | None
    loadgen_bound: bool | None
    loadgen_command: list[str]
    loadgen: str = "wrk"  # the measure.loadgen generator that produced it
    offered_rate: int | None = None
    achieved_rate: float | None = None
    rate_sustained: bool | None = None
    paced_window_s: float | None = None
    lapsed_slots: int | None = None
    non_2xx: int | None = None
    server_responses: int | None = None
    responses_minus_requests: int | None = None
    loadgen_wall_s: float | None = None
    loadgens: list[LoadgenPart] = field(default_factory=list)
    server_exit: dict | None = None  # how the cell's own server ended (runs with a server per cell)
    window: dict | None = None  # the window its numbers cover (measure.windows)

    @classmethod
    def from_json(cls, obj: dict) -> Sample:
        """A samples.jsonl object of any schema up to SAMPLES_SCHEMA (core.rundir checks it)."""
        obj = migrate(obj)
        fields = {name: obj[name] for name in cls.__dataclass_fields__ if name in obj}
        return cls(**fields | {
            "cell": Cell(**obj["cell"]),
            "latency_us": Latency.from_json(obj["latency_us"]),
            "errors": Errors.from_json(obj["errors"]),
            "loadgens": [LoadgenPart.from_json(part) for part in obj.get("loadgens") or []],
        })

    @property
    def measured_window_s(self) -> float:
        """Seconds of load this sample measured: its window, over which its rate is taken (a
        scheduled one, else the paced window, else the load generator's duration)."""
        if self.window and self.window.get("kind") == "scheduled":
            return self.window["length_s"]
        return self.paced_window_s if self.paced_window_s is not None else self.duration_s

    def to_json(self) -> dict:
        """The samples.jsonl object, "schema" included."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__} | {
            "schema": SAMPLES_SCHEMA,
            "cell": self.cell.to_json(),
            "latency_us": self.latency_us.to_json(),
            "errors": self.errors.to_json(),
            "loadgens": [part.to_json() for part in self.loadgens],
        }



#: Schema 1 -> 2: the load generator's fields got names that are not wrk's.
RENAMED_IN_2 = {"wrk": "loadgen_result", "wrk_command": "loadgen_command"}


def migrate(obj: dict) -> dict:
    """A sample object of an older schema in the current one's shape."""
    if obj.get("schema", 1) < 2:
        obj = {RENAMED_IN_2.get(key, key): value for key, value in obj.items()} | {"loadgen": "wrk"}
    return obj
