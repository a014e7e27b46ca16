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
      "server_counters": {...},        # zcbench.counters delta over the measured window (totals)
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
      "achieved_rate": 59950.2,        # requests_per_s, when paced
      "rate_sustained": true           # achieved >= RATE_SUSTAINED_SHARE * offered (null: unpaced)
    }
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
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


def append_sample(path: str | Path, sample: dict) -> None:
    """Append one sample as a line and make it durable before the next cell starts."""
    line = json.dumps({"schema": SCHEMA_VERSION, **sample}, sort_keys=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def iter_samples(path: str | Path) -> Iterator[dict]:
    """Every complete sample of a samples.jsonl; a torn last line (crash mid-write) is skipped."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            sample = json.loads(line)
            if sample.get("schema") != SCHEMA_VERSION:
                raise ValueError(f"{path}: sample schema {sample.get('schema')} != {SCHEMA_VERSION}")
            yield sample


def load_samples(path: str | Path) -> list[dict]:
    return list(iter_samples(path))
