"""Planning: every combination once per repetition, seeded, balanced order, each comparison's arms back to back."""

from collections import Counter
from itertools import groupby

import dataclasses

import pytest

from zcbench.core import arms
from zcbench.measure import plan
from zcbench.measure.config import Config
from zcbench.measure.plan import measured_seconds, plan_cells


def config(**kwargs):
    kwargs.setdefault("online_cpus", {0, 1})
    kwargs.setdefault("nofile", 20000)
    kwargs.setdefault("seed", 7)
    return Config.from_args(**kwargs)


def test_cells_cover_arm_conns_size_rep():
    cfg = config(mode="all", conns="100,1000", response_size="88,4k", repeat=3)
    cells = plan_cells(cfg)
    assert len(cells) == len(cfg.arms) * 2 * 2 * 3 and len(cfg.arms) == len(arms.modes()["all"])
    combos = Counter((c.arm, c.conns, c.response_size) for c in cells)
    assert set(combos.values()) == {3}
    assert [c.index for c in cells] == list(range(len(cells)))


def test_each_repetition_is_a_complete_block():
    cfg = config(mode="zc", repeat=4)
    cells = plan_cells(cfg)
    block = len(cfg.arms_to_run) * len(cfg.conns)
    for rep in range(4):
        chunk = cells[rep * block:(rep + 1) * block]
        assert {c.rep for c in chunk} == {rep}
        assert len({(c.arm, c.conns) for c in chunk}) == block


def test_same_seed_same_order_other_seed_other_order():
    a = plan_cells(config(mode="all", repeat=3, seed=1))
    b = plan_cells(config(mode="all", repeat=3, seed=1))
    c = plan_cells(config(mode="all", repeat=3, seed=2))
    assert a == b
    assert [x.to_json() for x in a] != [x.to_json() for x in c]


def test_order_is_shuffled_not_all_of_a_then_all_of_b():
    cells = plan_cells(config(mode="all", conns="100,1000,4000", repeat=3, seed=3))
    arms = [c.arm for c in cells]
    # Interleaved: no arm's cells are all contiguous.
    for arm in set(arms):
        positions = [i for i, a in enumerate(arms) if a == arm]
        assert positions[-1] - positions[0] + 1 > len(positions)


@pytest.mark.parametrize("count", [2, 3, 4])
def test_the_arms_of_a_comparison_run_back_to_back(count):
    """The paired test cancels what a pair's cells share; on a shared VM that is the machine's speed
    of the moment, so no other cell runs between them."""
    config = dataclasses.replace(Config.from_args(mode="zc", conns="100,1000,4000", response_size="88,4k", repeat=6,
                                                  seed=5, online_cpus={0, 1}, nofile=20000), arms=ARM_SETS[count])
    cells = plan.plan_cells(config)
    runs = [list(group) for _, group in groupby(cells, key=lambda c: (c.rep, c.conns, c.response_size, c.load))]
    assert len(runs) == 6 * 3 * 2  # one unbroken run of cells per comparison and block
    assert all(sorted(c.arm for c in run) == sorted(ARM_SETS[count]) for run in runs)
    # and the comparisons do not take their turns in one fixed order
    orders = {tuple((run[0].conns, run[0].response_size) for run in runs if run[0].rep == rep) for rep in range(6)}
    assert len(orders) > 1


def test_nginx_cells_and_measured_seconds():
    cfg = config(server="both", mode="zc", conns="100", repeat=2, duration=5)
    cells = plan_cells(cfg)
    assert Counter(c.server for c in cells) == {"zcbench": 4, "nginx": 2}
    assert measured_seconds(cfg) == 6 * 5


@pytest.mark.parametrize("k", [2, 3, 4])
def test_williams_sequences_balance_positions_and_neighbours(k):
    rows = plan.williams_sequences(k)
    assert len(rows) == (k if k % 2 == 0 else 2 * k)
    for position in range(k):  # each item in each position equally often
        assert sorted(row[position] for row in rows) == sorted(list(range(k)) * (len(rows) // k))
    follows = Counter((row[i], row[i + 1]) for row in rows for i in range(k - 1))
    assert len(set(follows.values())) == 1 and len(follows) == k * (k - 1)  # each ordered pair alike


ARM_SETS = {2: ("regular", "zc"), 3: ("regular", "zc", "zc-fixed"), 4: ("regular", "zc", "zc-fixed", "sendmsg-zc")}


@pytest.mark.parametrize("count", [2, 3, 4])
def test_the_plan_is_balanced_within_every_comparison(count):
    sequences = len(plan.williams_sequences(count))
    config = dataclasses.replace(Config.from_args(mode="zc", conns="100,1000", response_size="88,4k", repeat=2 * sequences,
                                                  seed=11, online_cpus={0, 1}, nofile=20000), arms=ARM_SETS[count])
    cells = plan.plan_cells(config)
    assert plan.design(config) == {"design": "williams", "pairs": "adjacent", "arms": count, "sequences": sequences, "balanced": True}
    positions = Counter()
    for (rep, conns, size), members in groupby(sorted(cells, key=lambda c: (c.rep, c.conns, c.response_size, c.index)),
                                               key=lambda c: (c.rep, c.conns, c.response_size)):
        for position, cell in enumerate(members):
            positions[(conns, size, cell.arm, position)] += 1
    # every arm of every comparison in every position the same number of times
    assert set(positions.values()) == {2 * sequences // count}
    assert len(positions) == 2 * 2 * count * count


def test_every_arm_opens_as_many_blocks_as_the_others():
    config = dataclasses.replace(Config.from_args(mode="zc", conns="100", repeat=8, seed=3, online_cpus={0, 1},
                                                  nofile=20000), arms=ARM_SETS[4])
    cells = plan.plan_cells(config)
    firsts = Counter(min((c for c in cells if c.rep == rep), key=lambda c: c.index).arm for rep in range(8))
    assert set(firsts.values()) == {2}  # each of the four arms opens two of the eight blocks
