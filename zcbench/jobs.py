"""One function per task that measures or reads runs: each runs the measure layer, then hands
its run directory to analyze and present. tasks.py validates arguments and calls one of these.

    bench(config)        the rate pilot (--rate auto), the bench, its report
    sweep(config)        the bench across response sizes (a Config from measure.sweep)
    calibrate(config)    pilots sizing the injected work, the calibration run, its verdicts
    report(run)          re-render a stored run (summary.json, report.md, report.html, plots)
    compare(run_a, run_b)  Markdown or JSON; compare.html too when asked
"""

from __future__ import annotations

from pathlib import Path

from zcbench.analyze import calibration, runstats
from zcbench.analyze import compare as compare_runs
from zcbench.core import rundir
from zcbench.core.atomic import write_atomic
from zcbench.core.rundir import CALIBRATION_JSON, CALIBRATION_MD, REPORT, REPORT_HTML
from zcbench.core.samples import Sample
from zcbench.measure import bench as bench_run
from zcbench.measure import calibrate as calibration_plan
from zcbench.measure.config import Config, ConfigError
from zcbench.present import calibration as calibration_report
from zcbench.present import compare as compare_report
from zcbench.present import report as run_report


def bench(config: Config, log=print) -> Path:
    """`invoke bench`: the rate pilot first when --rate auto, then the run and its report."""
    return bench_run.run(config, log, render=run_report.render_run)


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


def report(run: str | Path, as_json: bool = False) -> str:
    """`invoke report`: summary.json, report.md, report.html and plots of a stored run, again.
    What to print: the paths of report.md and report.html, or (as_json) summary.json's object."""
    run_dir = rundir.resolve_run_dir(run)
    summary = run_report.render_run(run_dir)
    if as_json:
        return rundir.json_text(summary.to_json())
    return f"{run_dir / REPORT}\n{run_dir / REPORT_HTML}"


def compare(run_a: str | Path, run_b: str | Path, as_json: bool = False, html_path: str | Path | None = None) -> str:
    """`invoke compare`: what changed between two runs, as Markdown (or as_json, JSON); with
    html_path, also that page (compare.html) written there."""
    result = compare_runs.compare_runs(run_a, run_b)
    if html_path:
        write_atomic(Path(html_path), compare_report.render_compare_html(result))
    return rundir.json_text(compare_report.compare_json(result)) if as_json else compare_report.render_compare(result)
