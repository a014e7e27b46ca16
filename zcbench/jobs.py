"""One function per task that measures or reads runs: each runs the measure layer, then hands
its run directory to analyze and present. tasks.py validates arguments and calls one of these.

    bench(config)        the rate pilot (--rate auto), the bench, its report
    sweep(config)        the bench across response sizes (a Config from measure.sweep)
    calibrate(config)    pilots sizing the injected work, the calibration run, its verdicts
    report(run)          re-render a stored run
    compare(run_a, run_b)
"""

from __future__ import annotations

from pathlib import Path

from zcbench.analyze import calibration, runstats
from zcbench.analyze import compare as compare_runs
from zcbench.core import rundir
from zcbench.core.rundir import CALIBRATION_JSON, CALIBRATION_MD, REPORT
from zcbench.core.samples import Sample
from zcbench.measure import bench as bench_run
from zcbench.measure import calibrate as calibration_plan
from zcbench.measure.config import Config, ConfigError
from zcbench.present import calibration as calibration_report
from zcbench.present import compare as compare_report
from zcbench.present import report as run_report


def bench(config: Config, log=print, started: float | None = None) -> Path:
    """`invoke bench`: the rate pilot first when --rate auto, then the run and its report.
    `started`: when the command began (monotonic), for the run's timing."""
    return bench_run.run(config, log, render=render_with_timing, started=started)


def render_with_timing(run_dir: Path):
    """The run's report, and how to write its text again once the manifest holds the run's
    final timing (the report's own rendering included)."""
    summary = run_report.render_run(run_dir)
    return lambda: run_report.rewrite_markdown(run_dir, summary)


def sweep(config: Config, log=print) -> Path:
    """`invoke sweep`: the sweep's matrix through the bench (its report reads it as a sweep)."""
    return bench(config, log)


def calibrate(config: Config, log=print) -> Path:
    """`invoke calibrate`: pilots size the injected work, then regular, the A/A arm and the
    injected arm run in every block; calibration.json and calibration.md join the run's files."""
    if config.calibration_work or set(config.arms) - {runstats.BASELINE_ARM}:
        raise ConfigError("calibrate runs its own arms: leave --mode at regular")
    if config.rate_auto and not config.cell_rates:  # one rate, chosen before sizing, for both runs
        config = bench_run.with_auto_rates(config, log)

    def run_pilot(work: int) -> tuple[str, list[Sample]]:
        pilot_dir = bench_run.run_bench(calibration_plan.pilot_config(config, work), log=log,
                                        render=run_report.render_run)
        return str(pilot_dir), rundir.load_samples(pilot_dir)

    sizing = calibration.measure_work(run_pilot, log if not config.quiet else lambda line: None)
    run_dir = bench(calibration_plan.calibration_config(config, sizing["work"]), log)
    result = calibration.judge(runstats.summarize(rundir.load_samples(run_dir)), sizing)
    rundir.write_json(run_dir / CALIBRATION_JSON, result)
    rundir.write_text(run_dir, CALIBRATION_MD, calibration_report.render_markdown(result, run_dir))
    return run_dir


def report(run: str | Path) -> Path:
    """`invoke report`: summary.json, report.md and plots of a stored run, again; report.md's path."""
    run_dir = rundir.resolve_run_dir(run)
    run_report.render_run(run_dir)
    return run_dir / REPORT


def compare(run_a: str | Path, run_b: str | Path) -> str:
    """`invoke compare`: what changed between two runs, as Markdown."""
    return compare_report.render_compare(compare_runs.compare_runs(run_a, run_b))
