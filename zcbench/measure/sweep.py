"""The response-size sweep (issue 6): where does zero-copy send start to pay on this host?

A sweep is an ordinary bench run whose matrix has several response sizes (the planner
interleaves them with the arms). This module builds its Config and runs it through the bench:
jobs.sweep runs it through the bench. Reading a run's summary as a sweep (the per-size rows and
the crossover per zero-copy arm) is analyze.sweep's, so `invoke report` renders a sweep without
this module.
"""

from __future__ import annotations

from zcbench.measure.config import Config, parse_size_list

DEFAULT_SIZES = "88,512,1k,4k,16k,64k,256k,1m"
DEFAULT_CONNS = "100"
DEFAULT_MODE = "all"
DEFAULT_LABEL = "sweep"

def parse_sizes(text) -> tuple[int, ...]:
    """'88,512,1k,4k,16k,64k,256k,1m' -> byte counts in ascending order (ConfigError if bad)."""
    return tuple(sorted(parse_size_list(text, "--sizes")))


def sweep_config(*, sizes=DEFAULT_SIZES, conns=DEFAULT_CONNS, mode=DEFAULT_MODE,
                 label=DEFAULT_LABEL, **bench_options) -> Config:
    """The bench Config of a sweep: the bench's own validation, several response sizes."""
    byte_sizes = parse_sizes(sizes)
    return Config.from_args(response_size=",".join(str(s) for s in byte_sizes), conns=conns,
                            mode=mode, label=label, extra={"sweep": {"sizes": list(byte_sizes)}},
                            **bench_options)
