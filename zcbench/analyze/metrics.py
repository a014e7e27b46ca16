"""What is measured per sample: the metric registry. Each metric has a name, a label and unit
for reports, its good direction, and how to read it from a sample.
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


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("requests_per_s", "throughput", "req/s", True, _throughput),
        Metric("gbit_per_s", "goodput", "Gbit/s", True, _gbit_per_s),
        Metric("latency_mean_us", "mean latency", "µs", False, lambda s: s.latency_us.mean),
        Metric("latency_p99_us", "p99 latency", "µs", False, lambda s: s.latency_us.p99),
        Metric("cpu_us_per_request", "server CPU per request", "µs", False, lambda s: s.cpu_us_per_request),
        Metric("cpu_us_per_kib", "server CPU per KiB sent", "µs", False, _cpu_us_per_kib),
        Metric("cpu_per_loadgen_cpu", "server CPU per wrk CPU", "×", False, _cpu_per_loadgen_cpu),
    )
}

#: The metrics an arm is judged on against its baseline.
COMPARED_METRICS = ("requests_per_s", "latency_mean_us", "latency_p99_us", "cpu_us_per_request")
#: ... at equal offered load, also the server's CPU against wrk's (throughput stays: it shows
#: whether an arm kept up with the rate, and the sweep's crossover reads it).
PACED_COMPARED_METRICS = COMPARED_METRICS + ("cpu_per_loadgen_cpu",)


def compared_metrics(samples: list[Sample]) -> tuple[str, ...]:
    """The metrics of a run's comparisons: a paced run's, or the plain ones."""
    return PACED_COMPARED_METRICS if any(s.offered_rate for s in samples) else COMPARED_METRICS



def metric_values(samples: list[Sample], metric: str) -> list[float]:
    """The metric's value in each sample that has it (None = not measured, e.g. no cgroup CPU)."""
    extract = METRICS[metric].extract
    values = (extract(s) for s in samples)
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]
