"""`invoke calibrate`: does the bench's statistics see what it should, and only that, on this host?

One calibration run holds, in every block and at every connection count of the plan, regular
and beside it:

- an A/A arm: a second plain regular arm (arms.AA_ARM). Every verdict on it must be "no
  difference"; a "better" or "worse" there is a false alarm the host's noise produced;
- a dose ladder: regular arms whose server spends a known extra amount of CPU per response
  (arms.dose_arm(i), the server's --calibration-work), aimed at DOSES (+2.5 %, +5 %, +10 % by
  default). The server times the loop it ran (its calibration_work_ns counter), so each dose's
  true effect in each block is measured, not aimed: the loop's CPU per request over the
  baseline's in the same block.

It passes when the A/A says "no difference" everywhere, every dose's interval covers that dose's
measured true effect, and every dose whose true effect is at or above the run's MDE is found
("worse"). All of it is judged on the primary metric (server CPU per request) with the bench's
own families; a dose below the MDE may pass unseen, and the report says which.

The work is sized by a short pilot in the calibration's own conditions (its first cell and, with
--rate, its offered rate): regular against PILOT_WORK iterations. The loop's measured nanoseconds
per iteration and the plain CPU per request give the iterations for each dose. (A server that
does not time its loop is sized from the pilot's paired ratio instead, pooled over every pilot
block.) The rate pilot of a paced calibration runs the pilot's work arm too, so the offered rate
leaves room for the heaviest dose.

`--runs K` repeats the calibration run K times on one sizing and rate: the false-positive rate of
the A/A and the power of each dose, each with its exact interval, and a uniformity test of the
A/A's p-values (under no effect they are uniform).

This module sizes and judges from samples; jobs.calibrate runs the pilots and the calibration,
present.calibration writes calibration.md.
"""

from __future__ import annotations

import math
import statistics
from typing import Callable

from zcbench.analyze import metrics, runstats, stats
from zcbench.analyze.metrics import PRIMARY_METRIC
from zcbench.analyze.runstats import BASELINE_ARM, ArmComparison, RunStats
from zcbench.core import arms
from zcbench.core.arms import AA_ARM, WORK_ARM
from zcbench.core.rundir import CALIBRATION_SCHEMA
from zcbench.core.samples import Sample

#: The dose ladder: extra CPU per request each dose aims at (the true one is measured); the
#: task's default (measure.calibrate.DEFAULT_DOSES) is the same.
DOSES = (0.025, 0.05, 0.10)
TARGET_EFFECT = 0.05  # the one dose of calibrations before the ladder (calibration.json's old keys)
#: Iterations per response in the pilot: an effect of tens of percent, easy to measure in a few
#: blocks, yet light enough for the server to keep up with a paced rate.
PILOT_WORK = 1500
#: The counters the server keeps of the loop's time (zcb_stats.h): nanoseconds, over the
#: responses whose loop it timed (one send in 16, preempted calls left out: server/src/work.c).
WORK_COUNTER = "calibration_work_ns"
TIMED_COUNTER = "calibration_work_timed"
METRIC = PRIMARY_METRIC  # what the calibration judges: the bench's primary metric


class CalibrationError(RuntimeError):
    """The pilot could not size the injected work (e.g. no CPU accounting)."""


def _arm(samples: list[Sample], arm: str) -> list[Sample]:
    return [s for s in samples if s.cell.arm == arm]


# --- sizing -----------------------------------------------------------------------------------


def loop_ns_per_iteration(work_samples: list[Sample], iterations: int) -> float | None:
    """What one iteration of the server's loop took, from its own timing of the loop (None from a
    server that does not time it)."""
    ns = sum((s.server_counters or {}).get(WORK_COUNTER) or 0 for s in work_samples)
    timed = sum((s.server_counters or {}).get(TIMED_COUNTER) or 0 for s in work_samples)
    return ns / (timed * iterations) if ns and timed and iterations else None


def pooled_effect_per_iteration(pilots: list[tuple[int, list[Sample]]]) -> tuple[float, int]:
    """The relative CPU cost of one iteration, from every block of every pilot at once: the
    least-squares slope through the origin of (ratio - 1) against the iterations. Pooling keeps
    no pilot for its noise (choosing the pilot that moved enough would keep the upward draws and
    under-inject)."""
    points = []
    for work, samples in pilots:
        pairs = runstats.paired_values(_arm(samples, BASELINE_ARM), _arm(samples, WORK_ARM), METRIC)
        points += [(work, arm / base - 1) for _, base, arm in pairs]
    if not points:
        raise CalibrationError("the pilot measured no server CPU per request in any block that held its "
                               "rate (no cgroup CPU accounting, or the rate is more than the host holds)")
    slope = sum(w * effect for w, effect in points) / sum(w * w for w, _ in points)
    return slope, len(points)


def size_doses(pilots: list[tuple[int, list[Sample]]], doses: tuple[float, ...] = DOSES) -> dict:
    """Iterations per response for each dose, from the pilots (work, samples): by the loop's own
    timing when the server keeps it, else by the pooled paired ratio."""
    plain = metrics.metric_values([s for _, samples in pilots for s in _arm(samples, BASELINE_ARM)], METRIC)
    if not plain:
        raise CalibrationError("the pilot measured no server CPU per request (no cgroup CPU accounting?)")
    plain_us = statistics.fmean(plain)
    work, samples = pilots[-1]
    ns_per_iteration = loop_ns_per_iteration(_arm(samples, WORK_ARM), work)
    if ns_per_iteration:
        effect_per_iteration, blocks, how = ns_per_iteration / 1000 / plain_us, len(_arm(samples, WORK_ARM)), "loop timing"
    else:
        effect_per_iteration, blocks = pooled_effect_per_iteration(pilots)
        how = "paired ratio, pooled"
    if effect_per_iteration <= 0:
        raise CalibrationError(f"the pilot's injected work cost nothing measurable ({effect_per_iteration:.3g} "
                               "per iteration)")
    iterations = [max(1, round(dose / effect_per_iteration)) for dose in doses]
    return {"pilot_work": work, "metric": METRIC, "sized_by": how, "pilot_blocks": blocks,
            "plain_cpu_us_per_request": plain_us, "ns_per_iteration": ns_per_iteration,
            "cpu_us_per_iteration": effect_per_iteration * plain_us,
            "doses": [{"arm": arms.dose_arm(i + 1).name, "aimed": dose, "work": n,
                       "expected_effect": n * effect_per_iteration}
                      for i, (dose, n) in enumerate(zip(doses, iterations))],
            # calibration.json before the ladder named one dose
            "work": iterations[min(range(len(doses)), key=lambda i: abs(doses[i] - TARGET_EFFECT))],
            "expected_effect": min(doses, key=lambda d: abs(d - TARGET_EFFECT))}


def measure_work(run_pilot: Callable[[int], tuple[str, list[Sample]]], doses: tuple[float, ...] = DOSES,
                 log=print) -> dict:
    """The sizing from one pilot run by `run_pilot(work)` (its run directory and samples)."""
    run, samples = run_pilot(PILOT_WORK)
    sizing = size_doses([(PILOT_WORK, samples)], doses)
    log(f"calibrate: one loop iteration adds {sizing['cpu_us_per_iteration'] * 1000:.3g} ns to "
        f"{sizing['plain_cpu_us_per_request']:.3g} µs per request ({sizing['sized_by']}); doses "
        + ", ".join(f"{d['aimed']:+.1%} -> {d['work']} iterations" for d in sizing["doses"]))
    return sizing | {"pilot_run": run, "pilots": [{"work": PILOT_WORK, "run": run}]}


# --- true effects and verdicts ------------------------------------------------------------------


def true_effect(samples: list[Sample], dose: str, conns: int, size: int) -> float | None:
    """A dose's measured effect in one cell: per block, 1 + the loop's time per response (as
    the server timed it) over the baseline's CPU per request in the same block; their geometric
    mean, minus one. Only blocks in which both held the offered rate, as the primary metric's own
    pairs."""
    def cell(arm):
        return {s.cell.rep: s for s in samples
                if s.cell.arm == arm and s.cell.conns == conns and s.cell.response_size == size
                and s.rate_sustained is not False}
    base, work = cell(BASELINE_ARM), cell(dose)
    logs = []
    for block in sorted(set(base) & set(work)):
        counters = work[block].server_counters or {}
        ns, timed = counters.get(WORK_COUNTER), counters.get(TIMED_COUNTER)
        cpu = base[block].cpu_us_per_request
        if ns is None or not timed or not cpu:
            continue
        logs.append(math.log1p(ns / 1000 / timed / cpu))
    return math.expm1(statistics.fmean(logs)) if logs else None


#: Why a comparison of a calibration was not tested: the paired test needs two blocks in which
#: both arms held the offered rate (an A/A with one such block "found no difference" and passed).
UNTESTED = "no data: fewer than two blocks in which both held the offered rate"


def _covers(ci: list[float] | None, effect: float | None) -> bool:
    return bool(ci) and effect is not None and ci[0] <= 1 + effect <= ci[1]


def judge_dose(comparison: ArmComparison, samples: list[Sample], aimed: float) -> dict:
    """One dose in one cell: its estimate and interval on the primary metric against its measured
    true effect; whether the interval covers it, and whether it was found when it had to be."""
    primary = comparison.metrics[METRIC]
    truth = true_effect(samples, comparison.arm, comparison.conns, comparison.response_size)
    must_find = truth is not None and primary.mde is not None and truth >= primary.mde
    found = primary.verdict == stats.WORSE
    covered = _covers(primary.ci, truth)
    reason = (UNTESTED if primary.verdict in (stats.NO_DATA, stats.TOO_FEW)
              else "the interval misses the true effect" if not covered
              else "not found, though above the MDE" if must_find and not found
              else "found" if found else "below the MDE: need not be found")
    return {"arm": comparison.arm, "conns": comparison.conns, "response_size": comparison.response_size,
            "aimed": aimed, "true_effect": truth, "estimate": primary.delta, "ci": primary.ci,
            "ci_level": primary.ci_level, "p": primary.p, "p_adjusted": primary.p_adjusted,
            "verdict": primary.verdict, "mde": primary.mde, "found": found, "must_find": must_find,
            "covered": covered, "passed": covered and (found or not must_find), "reason": reason,
            "blocks": primary.n_pairs}


def judge_aa(comparison: ArmComparison) -> dict:
    """The A/A in one cell: every metric must say "no difference"."""
    primary = comparison.metrics[METRIC]
    verdicts = {name: m.verdict for name, m in comparison.metrics.items() if m.family != "check"}
    alarms = [name for name, v in verdicts.items() if v in (stats.BETTER, stats.WORSE)]
    untested = primary.verdict in (stats.NO_DATA, stats.TOO_FEW)
    reason = ("false alarm: " + ", ".join(metrics.METRICS[name].label for name in alarms) if alarms
              else UNTESTED if untested else "no difference")
    return {"conns": comparison.conns, "response_size": comparison.response_size, "estimate": primary.delta,
            "ci": primary.ci, "p": primary.p, "p_adjusted": primary.p_adjusted, "mde": primary.mde,
            "verdict": primary.verdict, "verdicts": verdicts, "reason": reason,
            "passed": not alarms and not untested}


def judge(summary: RunStats, samples: list[Sample], sizing: dict) -> dict:
    """calibration.json's content from a calibration run's summary and samples."""
    aimed = {dose["arm"]: dose["aimed"] for dose in sizing["doses"]}
    aa = [judge_aa(c) for c in summary.comparisons_of(AA_ARM)]
    doses = [judge_dose(c, samples, aimed[c.arm]) for arm in aimed for c in summary.comparisons_of(arm)]
    passed = bool(aa) and bool(doses) and all(a["passed"] for a in aa) and all(d["passed"] for d in doses)
    primary = [c.metrics[METRIC] for c in summary.comparisons if METRIC in c.metrics]
    mdes = {f"{c.conns}c/{c.response_size}B": c.metrics[METRIC].mde for c in summary.comparisons_of(AA_ARM)}
    reference = next((d for d in doses if d["aimed"] == sizing["expected_effect"]), doses[0] if doses else None)
    first_aa = aa[0] if aa else None
    return {
        "schema": CALIBRATION_SCHEMA,
        "passed": passed,
        "metric": METRIC,
        "aa": aa,
        "doses": doses,
        "mde": mdes,
        "blocks": max((m.n_pairs for m in primary), default=None),
        "family_size": max((m.family_size for m in primary), default=None),
        "sizing": sizing,
        # the keys of calibrations before the dose ladder (one dose, the one nearest +5 %)
        "aa_verdict": (stats.NO_DIFFERENCE if aa and all(a["passed"] for a in aa)
                       else "false alarm" if any(v in (stats.BETTER, stats.WORSE) for a in aa for v in a["verdicts"].values())
                       else "untested"),
        "aa_verdicts": {f"{a['conns']}c/{a['response_size']}B {name}": v for a in aa for name, v in a["verdicts"].items()},
        "aa_cpu_effect": first_aa["estimate"] if first_aa else None,
        "aa_mde": first_aa["mde"] if first_aa else None,
        "injected_verdict": reference["verdict"] if reference else stats.NO_DATA,
        "injected_effect": reference["estimate"] if reference else None,
        "injected_ci": reference["ci"] if reference else None,
        "injected_p": reference["p"] if reference else None,
        "injected_p_adjusted": reference["p_adjusted"] if reference else None,
        "expected_effect": sizing["expected_effect"],
    }


def repeated(results: list[dict]) -> dict:
    """What K calibration runs on one sizing say together: the A/A's false-positive rate, each
    dose's power, each with its exact 95 % interval, and whether the A/A p-values look uniform."""
    aa = [a for r in results for a in r["aa"]]
    alarms = sum(a["verdict"] in (stats.BETTER, stats.WORSE) for a in aa)
    power = []
    for aimed in sorted({d["aimed"] for r in results for d in r["doses"]}):
        tried = [d for r in results for d in r["doses"] if d["aimed"] == aimed]
        found = sum(d["found"] for d in tried)
        truths = [d["true_effect"] for d in tried if d["true_effect"] is not None]
        power.append({"aimed": aimed, "true_effect_median": statistics.median(truths) if truths else None,
                      "found": found, "tried": len(tried), "power": found / len(tried) if tried else None,
                      "ci": stats.clopper_pearson(found, len(tried)),
                      "covered": sum(d["covered"] for d in tried)})
    p_values = [a["p"] for a in aa if a["p"] is not None]
    return {"runs": len(results), "passed_runs": sum(r["passed"] for r in results),
            "false_positives": alarms, "aa_tested": len(aa),
            "false_positive_rate": alarms / len(aa) if aa else None,
            "false_positive_ci": stats.clopper_pearson(alarms, len(aa)),
            "power": power, "aa_p_values": p_values, "aa_uniformity_p": stats.uniformity_p(p_values)}
