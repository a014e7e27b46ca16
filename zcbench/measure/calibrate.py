"""What `invoke calibrate` runs: the rate pilot (with --rate auto), the pilot that sizes the
injected work, the calibration run itself (regular, the A/A arm and the dose ladder in every
block, at every connection count of the plan), and the latency check (regular beside a server
that stalls on a known schedule, at two loads). analyze.calibration and
analyze.latency_calibration judge from their samples; jobs.calibrate puts them together.
"""

from __future__ import annotations

import dataclasses

from zcbench.core.arms import AA_ARM, BASELINE, MAX_DOSES, STALL_ARM, WORK_ARM
from zcbench.measure.config import Config, ConfigError

PILOT_REPEAT = 3
PILOT_DURATION_S = 3
BASELINE_ARM = BASELINE
#: Blocks of a calibration run: each holds regular, the A/A arm and every dose at every
#: connection count of the plan (15 cells at the bench's three counts and three doses).
DEFAULT_REPEAT = 12
#: The dose ladder: extra CPU per request each dose aims at (the true one is measured).
DEFAULT_DOSES = (0.025, 0.05, 0.10)


def parse_doses(text: str) -> tuple[float, ...]:
    """'2.5,5,10' (percent) -> (0.025, 0.05, 0.10); ConfigError in one line when it is no ladder."""
    try:
        doses = tuple(float(item) / 100 for item in str(text).split(","))
    except ValueError:
        raise ConfigError(f"--doses {text!r}: give percents, e.g. 2.5,5,10") from None
    if not 1 <= len(doses) <= MAX_DOSES or any(not 0 < d < 1 for d in doses) or len(set(doses)) != len(doses):
        raise ConfigError(f"--doses {text!r}: 1 to {MAX_DOSES} different percents between 0 and 100")
    return tuple(sorted(doses))


def calibration_config(config: Config, doses: dict[str, int]) -> Config:
    """The bench config with the A/A arm and the dose arms (arm -> iterations per response)
    beside regular."""
    return dataclasses.replace(config, arms=(BASELINE_ARM, AA_ARM, *doses), calibration_work=dict(doses),
                               servers=("zcbench",))


def pilot_config(config: Config, work: int) -> Config:
    """Regular against a large fixed work, in the calibration's own conditions (its first cell and,
    with --rate, its offered rate): a plain response's CPU depends on the load (batching), so the
    work that adds 5% at saturation adds less at a paced rate."""
    return dataclasses.replace(config, arms=(BASELINE_ARM, WORK_ARM), calibration_work={WORK_ARM: work},
                               servers=("zcbench",), repeat=PILOT_REPEAT, duration_s=PILOT_DURATION_S,
                               conns=config.conns[:1], response_sizes=config.response_sizes[:1],
                               label=f"{config.label}-pilot", quiet=True)


def rate_pilot_config(config: Config, work: int) -> Config:
    """What --rate auto measures saturation with in a calibration: regular beside the pilot's
    work arm, at every cell of the plan. The offered rate (a share of the slower arm's) then
    leaves room for the heaviest thing the calibration runs; a rate chosen on plain regular did
    not, and the sizing pilot fell short in every block on a busy machine."""
    return dataclasses.replace(config, arms=(BASELINE_ARM, WORK_ARM), calibration_work={WORK_ARM: work},
                               servers=("zcbench",))


# --- the latency check --------------------------------------------------------------------------

#: The latency check's stall: S ms every P ms. 20/500 puts p99 and p99.9 inside the stall (4 % of
#: requests meet one) and a 2 s window holds exactly four periods.
DEFAULT_STALL = "20/500"
#: Blocks of the latency check: each holds regular and the stalling arm at both loads and every
#: connection count. A cell's tail pools every block's requests.
LATENCY_REPEAT = 6
#: The lower of the check's two loads (the other is the plan's highest).
LOW_LOAD = 0.3


def parse_stall(text: str, duration_s: float) -> tuple[int, int]:
    """'20/500' -> (20, 500): a stall of S ms every P ms, 0 < S < P, with P dividing the cell's
    window (so every window holds the same share of stalls); ConfigError in one line otherwise."""
    try:
        stall, period = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise ConfigError(f"--stall {text!r}: give STALL_MS/PERIOD_MS, e.g. {DEFAULT_STALL}") from None
    if not 0 < stall < period <= 60_000:
        raise ConfigError(f"--stall {text}: the stall must be shorter than its period (at most 60000 ms)")
    if round(duration_s * 1000) % period:
        raise ConfigError(f"--stall {text}: the period must divide the {duration_s:g} s window, so every window "
                          "holds the same share of stalls")
    return stall, period


def latency_loads(config: Config) -> tuple[float, ...]:
    """The check's two loads: LOW_LOAD and the plan's highest (half of it when that is lower)."""
    high = max(config.rate_shares)
    return (LOW_LOAD, high) if high > LOW_LOAD else (round(high / 2, 6), high)


def latency_config(config: Config, stall: tuple[int, int], cell_rates: dict[str, int] | None = None) -> Config:
    """Regular beside the stalling arm at the plan's connection counts: at two loads with shares
    of saturation (cell_rates: the rate pilot's rates for them), at the plan's rate otherwise."""
    loads = latency_loads(config) if config.rate_auto else ()
    return dataclasses.replace(
        config, arms=(BASELINE_ARM, STALL_ARM), calibration_work={},
        calibration_stall={STALL_ARM: "/".join(map(str, stall))}, servers=("zcbench",), repeat=LATENCY_REPEAT, rate_shares=loads or config.rate_shares,
        cell_rates=cell_rates if cell_rates is not None else config.cell_rates, label=f"{config.label}-latency")


#: The halves of a calibration (`invoke calibrate --only`).
PARTS = ("cpu", "latency")


def parse_only(text: str) -> tuple[str, ...]:
    """--only: '' (both halves), 'cpu' or 'latency'."""
    if not text:
        return PARTS
    if text not in PARTS:
        raise ConfigError(f"--only {text!r}: give cpu or latency (or leave it out for both)")
    return (text,)


def check_latency_plan(config: Config, parts: tuple[str, ...]) -> None:
    """The latency check needs a paced rate: its expected tail assumes a steady stream."""
    if "latency" in parts and config.rate is None and not config.rate_auto:
        if parts == ("latency",):
            raise ConfigError("--only latency --rate off: the latency check needs a paced rate (auto, shares or "
                              "a number): its expected tail assumes a steady stream of requests")
