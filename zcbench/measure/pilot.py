"""--rate auto: the rates a short saturated pilot implies.

The pilot runs every cell of the plan (PILOT_REPEAT blocks of PILOT_DURATION_S) with wrk as fast
as the server lets it, through the paced generator, and each cell is then offered
AUTO_RATE_SHARE of its slower arm's (median) saturated rate. `invoke bench` runs the pilot on the same
containers as the run that follows it (bench.run); its samples are a run directory of their
own inside the run's (rundir.RATE_PILOT), so the rates trace to them.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

from zcbench.core.samples import Sample, load_text
from zcbench.measure.config import AUTO_RATE_SHARE, Config, rate_key

#: Two blocks of 1 s, each arm's median: on this shared VM a cell's saturated rate swings by half
#: from one moment to the next (the noise is per cell, not per second), so what steadies the rate
#: is the number of draws, not their length. Measured here, three pilots each: 1 block of 1 s chose
#: 20K-64K req/s at 100 connections; the 2 blocks of 3 s the bench had before, 43K-51K, in 40 s;
#: 2 blocks of 1 s take 14 s (docs/bench.md, "How fast the bench is"). With more blocks the
#: median keeps one slow moment from dragging the rate down.
PILOT_DURATION_S = 1
PILOT_REPEAT = 2
#: The pilot runs wrk through paced.lua too, with a rate no server reaches: pacing costs wrk CPU
#: (a timer per request), so saturation must be measured with the generator the run will use.
PILOT_UNREACHABLE_RATE = 100_000_000


def pilot_config(config: Config) -> Config:
    """The run's plan, saturated, in PILOT_REPEAT blocks of PILOT_DURATION_S, without warmup."""
    return replace(config, rate_auto=False, rate_shares=(), rate=PILOT_UNREACHABLE_RATE, repeat=PILOT_REPEAT,
                   duration_s=PILOT_DURATION_S, warmup_s=0, label=f"{config.label}-rate-pilot", quiet=True)


def saturated_rates(pilot_samples: list[Sample]) -> dict[tuple[int, int], float]:
    """Per (conns, size), the slowest arm's median saturated rate in the pilot."""
    per_arm: dict[tuple[int, int], dict[str, list[float]]] = {}
    for sample in pilot_samples:
        cell, rps = sample.cell, sample.achieved_rate or sample.requests_per_s
        if rps:
            per_arm.setdefault((cell.conns, cell.response_size), {}).setdefault(cell.arm, []).append(rps)
    return {cell: min(statistics.median(v) for v in arms.values()) for cell, arms in per_arm.items()}


def auto_rates(pilot_samples: list[Sample], shares: tuple[float, ...] = (AUTO_RATE_SHARE,)) -> dict[str, int]:
    """Per cell and share (rate_key), that share of the slowest arm's median saturated rate."""
    return {rate_key(conns, size, share): max(1, round(share * rate))
            for (conns, size), rate in saturated_rates(pilot_samples).items() for share in shares}


def with_rates(config: Config, rates: dict[str, int], pilot_dir) -> Config:
    """The run's config with the pilot's rates, and where they came from."""
    return replace(config, cell_rates=rates,
                   extra=config.extra | {"rate_pilot_run": str(pilot_dir), "rate_shares": list(config.rate_shares)})


def rates_at(cell_rates: dict[str, int], shares: tuple[float, ...]) -> dict[str, int]:
    """Rates at other shares of the same saturation, from rates a pilot chose ("c/s@70%" -> R
    gives "c/s@30%" -> R * 30 / 70): the saturation each was a share of is known."""
    saturation: dict[str, float] = {}
    for key, rate in cell_rates.items():
        cell, _, share = key.partition("@")
        if share.endswith("%"):
            saturation.setdefault(cell, rate / (float(share[:-1]) / 100))
    return {f"{cell}@{load_text(share)}": max(1, round(share * rate)) for cell, rate in saturation.items()
            for share in shares}
