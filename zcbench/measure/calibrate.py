"""What `invoke calibrate` runs: the rate pilot (with --rate auto), the pilot that sizes the
injected work, and the calibration run itself (regular, the A/A arm and the dose ladder in every
block, at every connection count of the plan). analyze.calibration sizes and judges from their
samples; jobs.calibrate puts them together.
"""

from __future__ import annotations

import dataclasses

from zcbench.core.arms import AA_ARM, BASELINE, MAX_DOSES, WORK_ARM
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
