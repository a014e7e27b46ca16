"""What is measured per sample, and which of it a run is judged on.

METRICS is the registry: each metric has a name, a label and unit for reports, its good
direction, how to read it from a sample, and whether it compares only blocks in which both arms
held the offered rate (the CPU metrics: their premise is equal load) or every block (latency and
throughput: a block where an arm could not keep up is exactly what they must show).

metric_plan(samples) declares, before any test, what a run is judged on:

    primary    server CPU per request: the cost of an arm, which the arm cannot move except by
               costing more or less. One Holm family of its own, across cells.
    secondary  the rest of what an arm may change: latency, and throughput when wrk went as fast
               as it could; at equal offered load server CPU per wrk CPU (which cancels the shared
               machine's momentary speed, but only if the arm leaves wrk's cost alone). A second
               Holm family, labelled secondary.
    checks     assumptions, tested but never a verdict on the arm: at equal load, wrk's own CPU
               per request (if the arm moved it, server CPU per wrk CPU is demoted).

At equal offered load throughput is fixed by the pacing: it is not tested; whether every block
held its rate is a check of its own (runstats.Shortfall).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from zcbench.core.samples import Sample


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    unit: str
    higher_is_better: bool
    extract: Callable[[Sample], float | None]
    #: compared only over blocks where both arms held the offered rate (equal load is its premise)
    held_blocks_only: bool = False


def _throughput(sample: Sample) -> float | None:
    """Requests per second; paced, over the paced window (Sample.achieved_rate): wrk's whole
    duration includes opening its connections, when nothing is offered yet."""
    if sample.offered_rate and sample.achieved_rate is not None:
        return sample.achieved_rate
    return sample.requests_per_s


def _gbit_per_s(sample: Sample) -> float | None:
    # Response bytes on the wire per second: the sample's own size times its request rate.
    rps, size = _throughput(sample), sample.cell.response_size
    return None if rps is None else rps * size * 8 / 1e9


def _cpu_us_per_kib(sample: Sample) -> float | None:
    cpu, size = sample.cpu_us_per_request, sample.cell.response_size
    return None if cpu is None or not size else cpu * 1024 / size


def _cpu_per_loadgen_cpu(sample: Sample) -> float | None:
    """Server CPU over wrk's CPU in the same window, at equal offered load only (a paced cell).
    There wrk does the same requests for every arm, so the ratio cancels what moves both (on a
    shared host, the machine's momentary speed: measured here, the two move together and the
    server's CPU for identical work varies ±12 % from one cell to the next) and keeps what the
    arm changes in the server. It assumes the arm leaves wrk's own cost alone; the CPU/request
    beside it shows the server's side unnormalized."""
    if not sample.offered_rate:
        return None
    server, loadgen = sample.server_cpu_s, sample.loadgen_cpu_s
    return server / loadgen if server and loadgen else None


def _loadgen_cpu_us_per_request(sample: Sample) -> float | None:
    """wrk's CPU per request: the assumption behind server CPU per wrk CPU is that an arm leaves
    it alone (measured here: zc moved it by +3.75 % at 100 connections)."""
    cpu, requests = sample.loadgen_cpu_s, sample.requests
    return cpu * 1e6 / requests if cpu and requests else None


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("requests_per_s", "throughput", "req/s", True, _throughput),
        Metric("gbit_per_s", "goodput", "Gbit/s", True, _gbit_per_s),
        Metric("latency_mean_us", "mean latency", "µs", False, lambda s: s.latency_us.mean),
        Metric("latency_p99_us", "p99 latency", "µs", False, lambda s: s.latency_us.p99),
        Metric("cpu_us_per_request", "server CPU per request", "µs", False, lambda s: s.cpu_us_per_request,
               held_blocks_only=True),
        Metric("cpu_us_per_kib", "server CPU per KiB sent", "µs", False, _cpu_us_per_kib, held_blocks_only=True),
        Metric("cpu_per_loadgen_cpu", "server CPU per wrk CPU", "×", False, _cpu_per_loadgen_cpu,
               held_blocks_only=True),
        Metric("loadgen_cpu_us_per_request", "wrk CPU per request", "µs", False, _loadgen_cpu_us_per_request,
               held_blocks_only=True),
    )
}

PRIMARY, SECONDARY, CHECK = "primary", "secondary", "check"
PRIMARY_METRIC = "cpu_us_per_request"
#: The metrics compare lists for each cell of two runs (absolute values, B against A).
COMPARED_METRICS = ("requests_per_s", "latency_mean_us", "latency_p99_us", "cpu_us_per_request")


@dataclass(frozen=True)
class MetricPlan:
    """What a run is judged on, declared before any test (the module docstring says why)."""
    primary: str
    secondary: tuple[str, ...]
    checks: tuple[str, ...]
    paced: bool

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.primary, *self.secondary, *self.checks)

    def family(self, metric: str) -> str:
        return PRIMARY if metric == self.primary else CHECK if metric in self.checks else SECONDARY

    def to_json(self) -> dict:
        return {"primary": self.primary, "secondary": list(self.secondary), "checks": list(self.checks),
                "paced": self.paced,
                "not_tested": ["requests_per_s: fixed by the pacing; held rate checked per block"]
                if self.paced else []}


PACED_PLAN = MetricPlan(PRIMARY_METRIC, ("cpu_per_loadgen_cpu", "latency_mean_us", "latency_p99_us"),
                        ("loadgen_cpu_us_per_request",), paced=True)
UNPACED_PLAN = MetricPlan(PRIMARY_METRIC, ("requests_per_s", "latency_mean_us", "latency_p99_us"), (),
                          paced=False)


def metric_plan(samples: list[Sample]) -> MetricPlan:
    """A paced run's plan, or an unpaced one's (one plan for the whole run: one set of families)."""
    return PACED_PLAN if any(s.offered_rate for s in samples) else UNPACED_PLAN



def metric_values(samples: list[Sample], metric: str) -> list[float]:
    """The metric's value in each sample that has it (None = not measured, e.g. no cgroup CPU)."""
    extract = METRICS[metric].extract
    values = (extract(s) for s in samples)
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]
