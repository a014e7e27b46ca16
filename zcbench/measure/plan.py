"""The plan of a run: which cells, in which order.

A cell is (server, arm, conns, response size, repetition). Each repetition is a block holding
every (server, arm, conns, size) combination once, shuffled with a seeded RNG: arms are
interleaved, so drift over the run (thermal, noisy neighbours) hits every arm alike, and the
recorded seed reproduces the order.
"""

from __future__ import annotations

import itertools
import random

from zcbench.measure.config import Config
from zcbench.core.samples import Cell


def plan_cells(config: Config) -> list[Cell]:
    """Every cell of the run in execution order (shuffled per repetition with config.seed)."""
    rng = random.Random(config.seed)
    combos = list(itertools.product(config.arms_to_run, config.conns, config.response_sizes))
    cells: list[Cell] = []
    for rep in range(config.repeat):
        block = combos[:]
        rng.shuffle(block)
        for (server, arm), conns, size in block:
            cells.append(Cell(len(cells), server, arm, conns, size, rep))
    return cells


def measured_seconds(config: Config) -> int:
    """Seconds of measured load the plan holds (the yardstick for the run's overhead)."""
    return len(plan_cells(config)) * config.duration_s
