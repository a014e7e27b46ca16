"""Samples for unit tests: a zcbench.core.samples.Sample with every field a test does not care about
set to something neutral (no counters, no errors, no CPU)."""

from __future__ import annotations

from zcbench.core.samples import Cell, Errors, Latency, Sample

LATENCY = Latency(mean=1000.0, stdev=100.0, max=5000.0, p50=950.0, p75=1100.0, p90=1500.0, p99=2000.0,
                  p99_9=3000.0, p99_99=4000.0)


def make_sample(arm: str = "regular", rep: int = 0, *, server: str = "zcbench", conns: int = 100,
                response_size: int = 88, index: int | None = None, load: float | None = None, **fields) -> Sample:
    """A sample of `arm` in block `rep` (its cell index = rep unless given); `fields` override."""
    neutral = dict(started_at="a", finished_at="b", duration_s=1.0, loadgen_result={}, requests=0, requests_per_s=None,
                   latency_us=LATENCY, errors=Errors(), server_counters=None, server_cpu_s=None,
                   cpu_us_per_request=None, loadgen_cpu_s=None, loadgen_cpu_share=None, loadgen_bound=None,
                   loadgen_command=[])
    cell = Cell(rep if index is None else index, server, arm, conns, response_size, rep, load)
    return Sample(cell=cell, **neutral | fields)
