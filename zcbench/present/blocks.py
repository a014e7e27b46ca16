"""How the blocks of each comparison went: in how many of them the arm's value was higher than
its baseline's, lower, or equal ("zc worse in 27 of 30 blocks" beside a verdict).

    tally_blocks(summary, samples) -> {(arm, conns, size, metric): BlockTally}

The pairs are the ones the comparison was tested on (analyze.runstats.paired_values on the same
groups), so a tally never counts a block its verdict left out. summary.json keeps no per-block
ratio, hence the samples.
"""

from __future__ import annotations

from dataclasses import dataclass

from zcbench.analyze import runstats
from zcbench.analyze.runstats import GroupKey, RunStats
from zcbench.core import arms
from zcbench.core.samples import Sample

#: (arm, conns, response size, metric)
TallyKey = tuple[str, int, int, str]


@dataclass(frozen=True)
class BlockTally:
    """One comparison's paired blocks by the sign of arm - baseline."""
    higher: int
    lower: int
    equal: int

    @property
    def blocks(self) -> int:
        return self.higher + self.lower + self.equal


def tally_pairs(pairs: list[tuple[int, float, float]]) -> BlockTally:
    """(block, baseline value, arm value) pairs counted by which side was larger."""
    return BlockTally(higher=sum(arm > base for _, base, arm in pairs),
                      lower=sum(arm < base for _, base, arm in pairs),
                      equal=sum(arm == base for _, base, arm in pairs))


def tally_blocks(summary: RunStats, samples: list[Sample]) -> dict[TallyKey, BlockTally]:
    """Every comparison of the summary, metric by metric."""
    grouped = runstats.group_samples(samples)
    tallies: dict[TallyKey, BlockTally] = {}
    for comparison in summary.comparisons:
        arm_key = comparison.key
        base_key = GroupKey(arms.ZCBENCH, comparison.baseline_arm, comparison.conns, comparison.response_size)
        if arm_key not in grouped or base_key not in grouped:
            continue
        for metric in comparison.metrics:
            pairs = runstats.paired_values(grouped[base_key], grouped[arm_key], metric)
            tallies[(*arm_key.where, metric)] = tally_pairs(pairs)
    return tallies
