"""`invoke calibrate`: does the bench's statistics see what it should, and only that, on this host?

Two checks, run with the bench's own machinery (plan, containers, samples, stats, report):

- A/A: a second plain regular arm (samples.AA_ARM) against regular. Every verdict must be
  "no difference"; a "better" or "worse" there is a false alarm the host's noise produced.
- A/A': a regular arm whose server spends a known extra amount of CPU per response
  (samples.WORK_ARM, the server's --calibration-work) against regular. Its CPU/request must come
  out "worse", and the effect is reported as measured, next to what was aimed at.

The amount of work is sized on this host by a short pilot run in the calibration's own
conditions (its cell, and with --rate its offered rate, chosen once before the pilot): regular
against regular with a large, fixed amount of work. The pilot's paired ratio in the judged
metric gives the effect of one loop iteration, from which the calibration picks the iterations
that add about TARGET_EFFECT. (Sizing at saturation and judging at a paced rate under-injects:
a plain response costs more CPU at a lower rate, where fewer requests share each batch.) Both
arms of the calibration run in every block beside regular, so the family of comparisons (and
the Holm adjustment) is that of a two-arm bench.

The run directory is an ordinary bench run (report.md, summary.json, samples.jsonl) plus
calibration.json and calibration.md. This module sizes and judges from samples; jobs.calibrate
runs the pilots and the calibration, present.calibration writes calibration.md.
"""

from __future__ import annotations

import math
import statistics
from typing import Callable, Iterable

from zcbench.analyze import metrics, runstats, stats
from zcbench.analyze.runstats import BASELINE_ARM, ArmComparison, RunStats
from zcbench.core import fmt
from zcbench.core.arms import AA_ARM, WORK_ARM
from zcbench.core.rundir import CALIBRATION_SCHEMA
from zcbench.core.samples import Sample

TARGET_EFFECT = 0.05  # extra CPU per request the injected work aims at
#: Iterations per response in the pilot: an effect of tens of percent, easy to measure in a few
#: blocks, yet light enough for the server to keep up with a paced rate.
PILOT_WORK = 1500
#: A pilot whose work added less than this is measured again with twice the work, up to
#: PILOT_ATTEMPTS pilots: three blocks on a busy host can bury a small effect (a CI run saw
#: x0.894 for the 1500 iterations that add 20-35% on a quiet run), and a small ratio sizes poorly.
MIN_PILOT_EFFECT = 0.10
PILOT_ATTEMPTS = 3
METRIC = "cpu_us_per_request"  # the unpaced verdict's metric
#: At equal offered load the verdict is on the server's CPU against wrk's: on this kind of shared
#: VM it halves the spread of CPU/request (see metrics._cpu_per_loadgen_cpu and the README).
PACED_METRIC = "cpu_per_loadgen_cpu"


class CalibrationError(RuntimeError):
    """The pilot could not size the injected work (e.g. no CPU accounting)."""


def judged_metric(compared: Iterable[str]) -> str:
    """The metric the injected cost is sized and judged in, among a run's compared metrics: the
    paced one when the run was paced."""
    return PACED_METRIC if PACED_METRIC in compared else METRIC


def _arm(samples: list[Sample], arm: str) -> list[Sample]:
    return [s for s in samples if s.cell.arm == arm]


def pilot_ratio(pilot_samples: list[Sample]) -> tuple[str, float, int]:
    """(metric, the work arm's mean paired ratio to regular in it, blocks paired) of a pilot."""
    metric = judged_metric(metrics.compared_metrics(pilot_samples))
    pairs = runstats.paired_values(_arm(pilot_samples, BASELINE_ARM), _arm(pilot_samples, WORK_ARM), metric)
    if not pairs and any(s.rate_sustained is False for s in pilot_samples):
        raise CalibrationError("every block of the pilot fell short of the offered rate "
                               "(the injected work is more than the server can add at this rate)")
    if not pairs:
        raise CalibrationError("the pilot measured no server CPU per request (no cgroup CPU accounting?)")
    return metric, math.exp(statistics.fmean(stats.log_ratios(pairs))), len(pairs)


def size_work(pilot_samples: list[Sample], pilot_work: int = PILOT_WORK,
              target: float = TARGET_EFFECT) -> dict:
    """Iterations per response that add `target` to the judged metric, from a pilot of
    `pilot_work` iterations: the work arm's paired ratio to regular, which grows linearly with the
    iterations (a fixed CPU cost per response on top of a plain one)."""
    metric, ratio, blocks = pilot_ratio(pilot_samples)
    effect_per_iteration = (ratio - 1) / pilot_work
    if effect_per_iteration <= 0:
        raise CalibrationError(f"the pilot's injected work cost nothing measurable "
                               f"({metrics.METRICS[metric].label} ratio {fmt.number(ratio, 3)})")
    work = max(1, round(target / effect_per_iteration))
    plain = metrics.metric_values(_arm(pilot_samples, BASELINE_ARM), METRIC)
    plain_us = statistics.fmean(plain) if plain else None
    return {"pilot_work": pilot_work, "metric": metric, "pilot_ratio": ratio, "pilot_blocks": blocks,
            "plain_cpu_us_per_request": plain_us,
            "cpu_us_per_iteration": effect_per_iteration * plain_us if plain_us else None,
            "work": work, "expected_effect": work * effect_per_iteration}


def measure_work(run_pilot: Callable[[int], tuple[str, list[Sample]]], log=print) -> dict:
    """Sizing from pilots run by `run_pilot(work)` (its run directory and samples), doubling the
    work while a pilot's effect stays below MIN_PILOT_EFFECT; the last pilot sizes whatever it
    measured. The sizing keeps every pilot tried."""
    work, tried, usable = PILOT_WORK, [], None
    for attempt in range(1, PILOT_ATTEMPTS + 1):
        run, pilot_samples = run_pilot(work)
        try:
            metric, ratio, _ = pilot_ratio(pilot_samples)
        except CalibrationError as exc:
            if usable is None:
                raise
            # more work than the server keeps up with (paced): the last pilot that measured sizes
            tried.append({"work": work, "ratio": None, "run": run, "failed": str(exc)})
            log(f"calibrate: {work} iterations per response: {exc}; sizing from {usable[0]}")
            return size_work(usable[2], usable[0]) | {"pilot_run": usable[1], "pilots": tried}
        tried.append({"work": work, "ratio": ratio, "run": run})
        if ratio - 1 >= MIN_PILOT_EFFECT or attempt == PILOT_ATTEMPTS:
            return size_work(pilot_samples, work) | {"pilot_run": run, "pilots": tried}
        usable = (work, run, pilot_samples)
        log(f"calibrate: {work} iterations per response moved {metrics.METRICS[metric].label} by only "
            f"{fmt.delta(ratio - 1)} in the pilot; measuring again with {2 * work}")
        work *= 2
    raise AssertionError("unreachable")


def _comparisons_of(summary: RunStats, arm: str) -> list[ArmComparison]:
    return [c for c in summary.comparisons if c.arm == arm]


def judge(summary: RunStats, sizing: dict) -> dict:
    """calibration.json's content from a calibration run's summary."""
    aa = _comparisons_of(summary, AA_ARM)
    work = _comparisons_of(summary, WORK_ARM)
    metric_name = judged_metric({m for c in summary.comparisons for m in c.metrics})
    aa_verdicts = {f"{c.conns}c/{c.response_size}B {metric}": m.verdict
                   for c in aa for metric, m in c.metrics.items()}
    injected = [c.metrics[metric_name] for c in work]
    aa_cpu = aa[0].metrics[metric_name] if aa else None
    aa_ok = bool(aa_verdicts) and all(v == stats.NO_DIFFERENCE for v in aa_verdicts.values())
    injected_found = bool(injected) and all(m.verdict == stats.WORSE for m in injected)
    first = injected[0] if injected else None
    return {
        "schema": CALIBRATION_SCHEMA,
        "passed": aa_ok and injected_found,
        "metric": metric_name,
        "aa_verdict": stats.NO_DIFFERENCE if aa_ok else "false alarm",
        "aa_verdicts": aa_verdicts,
        "aa_cpu_effect": aa_cpu.delta if aa_cpu else None,
        "aa_mde": aa_cpu.mde if aa_cpu else None,
        "injected_verdict": first.verdict if first else stats.NO_DATA,
        "injected_effect": first.delta if first else None,
        "injected_ci": first.ci if first else None,
        "injected_p": first.p if first else None, "injected_p_adjusted": first.p_adjusted if first else None,
        "expected_effect": sizing["expected_effect"],
        "mde": first.mde if first else None,
        "blocks": first.n_pairs if first else None,
        "family_size": first.family_size if first else None,
        "sizing": sizing,
    }
