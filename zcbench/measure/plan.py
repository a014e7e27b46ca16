"""The plan of a run: which cells, in which order.

A cell is (server, arm, conns, response size, load, repetition). Each repetition is a block
holding every (server, arm, conns, size, load) combination once; a comparison is one (conns,
size, load), the load being a share of saturation (--rate 30%,70%) or none. Inside a block, the
arms of one comparison run back to back, in the order of a Williams design: over the blocks each
arm takes each position equally often and, with an even number of arms, follows each other arm
equally often, so neither the first slot nor carry-over from the arm before favours any arm (a
shuffle leaves that to chance: zc ran first in 18, 16 and 10 of 30 blocks of one run). The
comparisons take their turns in a random (seeded) order in each block, so drift over the run
hits every arm alike, and the recorded seed reproduces it all.

Why back to back: the paired test cancels what the two cells of a pair share, and on a shared VM
that is the machine's speed of the moment. In runs that interleaved the comparisons, the pairs
whose cells happened to be neighbours spread least; since they all are, the per-block log ratio
of server CPU per wrk CPU spreads 4.2 % (rms) at 1000 connections instead of 6.1 %, and every
interval narrowed (docs/bench.md has the runs before and after).
"""

from __future__ import annotations

import itertools
import random

from zcbench.core.samples import Cell
from zcbench.measure.config import Config

DESIGN = "williams"
# the arms of a comparison run back to back inside a block (the manifest's plan.pairs)
PAIRS = "adjacent"


def williams_sequences(k: int) -> list[list[int]]:
    """Orders of k items (0..k-1) in which each item takes each position equally often and, for
    even k, precedes each other item equally often: k sequences for even k, 2k for odd k (the
    rows of a cyclic Latin square whose first row is 0, 1, k-1, 2, k-2, ..., and for odd k their
    reverses)."""
    if k < 1:
        return []
    first, low, high = [0], 1, k - 1
    while len(first) < k:
        first.append(low if len(first) % 2 else high)
        if len(first) % 2:
            high -= 1
        else:
            low += 1
    rows = [[(item + shift) % k for item in first] for shift in range(k)]
    return rows + [row[::-1] for row in rows] if k % 2 and k > 1 else rows


def design(config: Config) -> dict:
    """What the manifest records of the order: the design, its sequences, whether the number of
    blocks balances it exactly."""
    sequences = len(williams_sequences(len(config.arms_to_run)))
    return {"design": DESIGN, "pairs": PAIRS, "arms": len(config.arms_to_run), "sequences": sequences,
            "balanced": config.repeat % sequences == 0 if sequences else True}


def plan_cells(config: Config) -> list[Cell]:
    """Every cell of the run in execution order: in each block the comparisons in a seeded random
    order, each comparison's arms back to back in its Williams row."""
    rng = random.Random(config.seed)
    pairs = config.arms_to_run
    rows = williams_sequences(len(pairs))
    comparisons = list(itertools.product(config.conns, config.response_sizes, config.loads))
    # each comparison starts the design at a row of its own, so comparisons do not move in step
    offsets = {comparison: rng.randrange(len(rows)) for comparison in comparisons}
    cells: list[Cell] = []
    for rep in range(config.repeat):
        for conns, size, load in rng.sample(comparisons, len(comparisons)):
            for i in rows[(rep + offsets[(conns, size, load)]) % len(rows)]:
                server, arm = pairs[i]
                cells.append(Cell(len(cells), server, arm, conns, size, rep, load))
    return cells


def measured_seconds(config: Config) -> int:
    """Seconds of measured load the plan holds (the yardstick for the run's overhead)."""
    return len(plan_cells(config)) * config.duration_s
