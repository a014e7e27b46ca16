"""The native server's counters, read through cffi from the header the server is built with.

server/include/zcb_stats.h is the only definition of the layout. This module extracts the
ZCB_COUNTERS X-macro entries and the `struct zcb_stats_header` declaration from that file,
hands them to cffi, and maps the server's --stats-file onto those structs. It also parses the
JSON object the server prints on SIGTERM.
"""

from __future__ import annotations

import mmap
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cffi

from zcbench.core.jsonline import last_json_object
from zcbench.core.paths import ROOT

STATS_HEADER = ROOT / "server" / "include" / "zcb_stats.h"

_COUNTER_LINE = re.compile(r'^\s*X\((\w+),\s*(count|gauge|peak),\s*"([^"]*)"\)')
_DEFINE_INT = re.compile(r"^#define\s+(ZCB_\w+)\s+(0x[0-9a-fA-F]+|\d+)u?\b", re.M)
_HEADER_STRUCT = re.compile(r"struct zcb_stats_header \{.*?\};", re.S)


class StatsError(RuntimeError):
    """The stats file is missing, not a zcbench stats file, or of another layout version."""


@dataclass(frozen=True)
class CounterField:
    name: str
    kind: str  # "count" (only grows), "gauge" (level now) or "peak" (highest level seen)
    doc: str


@dataclass(frozen=True)
class _Layout:
    ffi: cffi.FFI
    fields: tuple[CounterField, ...]
    constants: dict[str, int]


@lru_cache(maxsize=None)
def _layout(header: Path = STATS_HEADER) -> _Layout:
    text = header.read_text()
    fields = tuple(
        CounterField(*m.groups()) for line in text.splitlines() if (m := _COUNTER_LINE.match(line))
    )
    if not fields:
        raise StatsError(f"{header}: no ZCB_COUNTERS entries found")
    struct = _HEADER_STRUCT.search(text)
    if struct is None:
        raise StatsError(f"{header}: struct zcb_stats_header not found")
    constants = {name: int(value, 0) for name, value in _DEFINE_INT.findall(text)}
    ffi = cffi.FFI()
    body = "".join(f"uint64_t {f.name};" for f in fields)
    ffi.cdef(f"struct zcb_counters {{ {body} }};\n{struct.group(0)}")
    return _Layout(ffi, fields, constants)


def counter_fields() -> tuple[CounterField, ...]:
    """Every counter the server keeps, in header order, with its kind and description."""
    return _layout().fields


def _sum_workers(workers: list[dict[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for field in counter_fields():
        values = [w[field.name] for w in workers]
        # Counts and gauges add up; workers peak at different moments, so the peak of the whole
        # is the highest worker's (their sum was never reached). The server's JSON does the same.
        totals[field.name] = max(values, default=0) if field.kind == "peak" else sum(values)
    return totals


def read_stats_buffer(buf: bytes | bytearray | memoryview | mmap.mmap) -> dict:
    """Decode a stats-file image: {"pid", "nworkers", "started_ns", "zc_copies_reported", "workers": [...],
    "totals": {...}}."""
    layout = _layout()
    ffi, consts = layout.ffi, layout.constants
    header_size = ffi.sizeof("struct zcb_stats_header")
    if len(buf) < header_size:
        raise StatsError("stats file shorter than its header (server not started yet?)")
    header = ffi.from_buffer("struct zcb_stats_header *", buf)
    if header.magic != consts["ZCB_STATS_MAGIC"]:
        raise StatsError(f"not a zcbench stats file (magic {header.magic:#x})")
    if header.version != consts["ZCB_STATS_VERSION"] or header.ncounters != len(layout.fields):
        raise StatsError(
            f"stats layout v{header.version} with {header.ncounters} counters; this reader expects "
            f"v{consts['ZCB_STATS_VERSION']} with {len(layout.fields)}: rebuild the server image"
        )
    stride = header.worker_stride
    if len(buf) < header_size + header.nworkers * stride:
        raise StatsError("stats file shorter than its worker blocks")
    workers = []
    for i in range(header.nworkers):
        block = ffi.cast("struct zcb_counters *", ffi.cast("char *", header) + header_size + i * stride)
        workers.append({f.name: int(getattr(block, f.name)) for f in layout.fields})
    return {
        "pid": int(header.pid),
        "nworkers": int(header.nworkers),
        "started_ns": int(header.started_ns),
        # False: zc_copied means nothing (regular arm, kernel before 6.2, --no-zc-report-usage)
        "zc_copies_reported": bool(header.flags & consts["ZCB_STATS_FLAG_ZC_USAGE_REPORTED"]),
        "workers": workers,
        "totals": _sum_workers(workers),
    }


def read_stats_file(path: str | Path) -> dict:
    """Snapshot the live counters of a running (or finished) server from its --stats-file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError as exc:
        raise StatsError(f"stats file {path} does not exist (is the server running?)") from exc
    return read_stats_buffer(bytearray(data))


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """Counter changes between two snapshots of totals; gauges and peaks keep their later value."""
    kinds = {f.name: f.kind for f in counter_fields()}
    return {
        name: (value - before.get(name, 0)) if kinds.get(name) == "count" else value
        for name, value in after.items()
    }


def parse_final_json(text: str) -> dict:
    """Parse the JSON object the server prints on stdout when it stops (SIGTERM/SIGINT).

    The object has "totals" and "workers" with every counter, plus "config". Extra lines
    around it (e.g. the startup line) are ignored; the last line that parses as an object wins.
    """
    obj = last_json_object(text, lambda o: "totals" in o)
    if obj is not None:
        missing = [f.name for f in counter_fields() if f.name not in obj["totals"]]
        if missing:
            raise StatsError(f"final JSON lacks counters {missing}")
        return obj
    raise StatsError("no final JSON object in the server's output")
