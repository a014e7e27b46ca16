"""Planning: every combination once per repetition, interleaved, seeded shuffle."""

from collections import Counter

from zcbench.core import arms
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


def test_nginx_cells_and_measured_seconds():
    cfg = config(server="both", mode="zc", conns="100", repeat=2, duration=5)
    cells = plan_cells(cfg)
    assert Counter(c.server for c in cells) == {"zcbench": 4, "nginx": 2}
    assert measured_seconds(cfg) == 6 * 5
