"""What `invoke calibrate` runs: the pilot that sizes the injected work, and the calibration run
itself (regular, the A/A arm and the injected-work arm in every block). analyze.calibration
sizes and judges from their samples; jobs.calibrate puts the two together.
"""

from __future__ import annotations

import dataclasses

from zcbench.core.arms import AA_ARM, BASELINE, WORK_ARM
from zcbench.measure.config import Config

PILOT_REPEAT = 3
PILOT_DURATION_S = 3
BASELINE_ARM = BASELINE


def calibration_config(config: Config, work: int) -> Config:
    """The bench config with the two calibration arms beside regular and `work` per response."""
    return dataclasses.replace(config, arms=(BASELINE_ARM, AA_ARM, WORK_ARM), calibration_work=work,
                               servers=("zcbench",))


def pilot_config(config: Config, work: int) -> Config:
    """Regular against a large fixed work, in the calibration's own conditions (its cell and, with
    --rate, its offered rate): a plain response's CPU depends on the load (batching), so the work
    that adds 5% at saturation adds less at a paced rate."""
    return dataclasses.replace(config, arms=(BASELINE_ARM, WORK_ARM), calibration_work=work,
                               servers=("zcbench",), repeat=PILOT_REPEAT, duration_s=PILOT_DURATION_S,
                               conns=config.conns[:1], response_sizes=config.response_sizes[:1],
                               label=f"{config.label}-pilot", quiet=True)
