"""One measured cell of a bench run, as stored line by line in samples.jsonl.

samples.jsonl is the raw record every number of a report is computed from; it is appended
(and flushed) as each cell finishes, so a run cut short keeps what it measured.

A sample is a JSON object:

    {
      "schema": 1,
      "cell": {                        # what was measured
        "index": 7,                    # position in the executed (shuffled) order
        "server": "zcbench",           # "zcbench" or "nginx"
        "arm": "zc",                   # "regular" | "zc" | "zc-fixed" | "nginx"
                                       # (calibration: "regular-aa" | "regular-work")
        "conns": 1000,
        "response_size": 88,           # bytes of each HTTP response (headers + body)
        "rep": 1                       # repetition number, 0-based
      },
      "started_at": "2026-11-22T05:30:00.123Z", "finished_at": "...",
      "duration_s": 10.0,              # wrk's measured duration
      "wrk": {...},                    # the loadgen JSON object verbatim (loadgen/report.lua)
      "requests": 2450000,             # completed requests counted by wrk
      "requests_per_s": 245000.0,
      "latency_us": {"mean": ..., "stdev": ..., "max": ..., "p50": ..., "p75": ..., "p90": ...,
                     "p99": ..., "p99.9": ..., "p99.99": ...},
      "errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0},
      "non_2xx": 0,                    # = errors.status: responses wrk counted as failed
      "server_counters": {...},        # zcbench.measure.counters delta over the measured window (totals)
                                       # null for nginx
      "server_responses": 2450873,     # server_counters.responses (null for nginx)
      "responses_minus_requests": 873, # requests in flight when wrk stopped its clock: answered
                                       # by the server, not counted by wrk (<= conns)
      "server_cpu_s": 9.1,             # server container CPU seconds in the measured window
      "cpu_us_per_request": 3.7,
      "loadgen_cpu_s": 9.7,            # wrk container CPU seconds in the measured window
      "loadgen_wall_s": 10.02,         # wall seconds of that window
      "loadgen_cpu_share": 0.97,       # loadgen_cpu_s / (loadgen_wall_s * min(wrk threads, loadgen cores))
      "loadgen_bound": true,           # loadgen_cpu_share >= LOADGEN_BOUND_SHARE
      "loadgens": [{"host": "lab", "requests": ..., "requests_per_s": ..., "duration_us": ...,
                    "errors": {...}, "latency_us": {...}, "cpu_s": ..., "wall_s": ...,
                    "cpu_share": ..., "command": [...]}],
                                       # each loadgen host's own part (one entry without -i); with
                                       # several, the fields above are their sum (requests_per_s:
                                       # the sum of their rates), mean/stdev latency pooled, a
                                       # percentile the highest of theirs (an upper bound), the
                                       # CPU share the busiest one's; `wrk` is then that combination
      "server_exit": {"code": 0, ...}, # how the cell's server container ended
      "wrk_command": ["wrk", ...],     # the exact measured command line
      "offered_rate": 60000,           # --rate: requests/s offered (null: as fast as wrk can)
      "achieved_rate": 59950.2,        # requests / paced_window_s (several loadgens: the sum of
                                       # theirs, each in its `loadgens` part)
      "rate_sustained": true,          # achieved >= RATE_SUSTAINED_SHARE * offered (null: unpaced)
      "paced_window_s": 1.78,          # seconds over which wrk offered the rate: its threads' mean
                                       # time from their first slot (after opening their connections)
                                       # until they stopped (wrk.paced.window_ms_mean; the longest of
                                       # the loadgens', whose own windows are in `loadgens`)
      "lapsed_slots": 0                # slots paced.lua dropped because wrk fell behind by more
                                       # than its MAX_LAG_MS (summed over threads and loadgens)
    }
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

SCHEMA_VERSION = 1
SAMPLES_FILE = "samples.jsonl"  # in every run directory

#: With --rate: a cell whose achieved rate is below this share of the offered one did not get
#: the load the comparison is about; it is flagged, not compared.
RATE_SUSTAINED_SHARE = 0.97

#: wrk's threads (each on its own core) busy at least this share of the time: the cell measured
#: wrk, not the server.
LOADGEN_BOUND_SHARE = 0.90

ARMS = ("regular", "zc", "zc-fixed")
#: The calibration's arms (`invoke calibrate`): a second plain regular arm (the A/A) and a
#: regular arm whose server adds a known CPU cost per response (the A/A'). Both send regular.
AA_ARM = "regular-aa"
WORK_ARM = "regular-work"
CALIBRATION_ARMS = (AA_ARM, WORK_ARM)


def send_mode(arm: str) -> str:
    """The server's --send for an arm (the calibration arms are regular sends)."""
    return "regular" if arm in CALIBRATION_ARMS else arm
SERVERS = ("zcbench", "nginx")


# --- the sample ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One cell of a run's plan (zcbench.measure.plan): what a sample measured."""
    index: int  # position in the executed order
    server: str  # "zcbench" | "nginx"
    arm: str  # "regular" | "zc" | "zc-fixed" | "nginx"
    conns: int
    response_size: int
    rep: int  # repetition number, 0-based

    def to_json(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return f"{self.arm} c={self.conns} {self.response_size}B rep {self.rep + 1}"


@dataclass(frozen=True)
class Latency:
    """wrk's latency summary of a cell, in microseconds (`latency_us`)."""
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
    latency_us: dict  # wrk's latency object as it printed it (min included)
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
    after `wrk_command` are absent from samples of older zcbench versions, hence their defaults."""
    cell: Cell
    started_at: str
    finished_at: str
    duration_s: float
    wrk: dict  # the loadgen JSON object verbatim (loadgen/report.lua)
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
    wrk_command: list[str]
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
    server_exit: dict | None = None  # how the server container ended (its final JSON's parts)

    @classmethod
    def from_json(cls, obj: dict) -> Sample:
        """A samples.jsonl object (its "schema" already checked)."""
        fields = {name: obj[name] for name in cls.__dataclass_fields__ if name in obj}
        return cls(**fields | {
            "cell": Cell(**obj["cell"]),
            "latency_us": Latency.from_json(obj["latency_us"]),
            "errors": Errors.from_json(obj["errors"]),
            "loadgens": [LoadgenPart.from_json(part) for part in obj.get("loadgens") or []],
        })

    def to_json(self) -> dict:
        """The samples.jsonl object, "schema" included."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__} | {
            "schema": SCHEMA_VERSION,
            "cell": self.cell.to_json(),
            "latency_us": self.latency_us.to_json(),
            "errors": self.errors.to_json(),
            "loadgens": [part.to_json() for part in self.loadgens],
        }


# --- samples.jsonl ---------------------------------------------------------------------------


def append_sample(path: str | Path, sample: Sample) -> None:
    """Append one sample as a line and make it durable before the next cell starts."""
    line = json.dumps(sample.to_json(), sort_keys=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def iter_samples(path: str | Path) -> Iterator[Sample]:
    """Every complete sample of a samples.jsonl; a torn last line (crash mid-write) is skipped."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            obj = json.loads(line)
            if obj.get("schema") != SCHEMA_VERSION:
                raise ValueError(f"{path}: sample schema {obj.get('schema')} != {SCHEMA_VERSION}")
            yield Sample.from_json(obj)


def load_samples(path: str | Path) -> list[Sample]:
    return list(iter_samples(path))
