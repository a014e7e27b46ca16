"""One function per task that measures or reads runs: each runs the measure layer, then hands
its run directory to analyze and present. tasks.py validates arguments and calls one of these.

    bench(config)        the rate pilot (--rate auto), the bench, its report
    sweep(config)        the bench across response sizes (a Config from measure.sweep)
    calibrate(config)    the latency check, pilots sizing the injected work, the calibration
                         runs, their verdicts
    report(run)          re-render a stored run (summary.json, report.md, report.html, plots)
    compare(run_a, run_b)  Markdown or JSON; compare.html too when asked
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from zcbench.analyze import calibration, latency_calibration, runstats
from zcbench.analyze import compare as compare_runs
from zcbench.core import rundir
from zcbench.core.atomic import write_atomic
from zcbench.core.rundir import CALIBRATION_JSON, CALIBRATION_MD, REPORT, REPORT_HTML
from zcbench.core.samples import Sample
from zcbench.measure import bench as bench_run
from zcbench.measure import calibrate as calibration_plan
from zcbench.measure import pilot as bench_pilot
from zcbench.host import facts, uring
from zcbench.measure import containers, images
from zcbench.measure import sweep as measure_sweep
from zcbench.measure.config import Config, ConfigError, supported_modes
from zcbench.present import calibration as calibration_report
from zcbench.present import compare as compare_report
from zcbench.present import report as run_report


def prepared(config: Config) -> Config:
    """What a run settles before anything starts: without the send modes this kernel lacks
    (--mode all skips them, a mode asked for by name is refused), and with the threshold the
    latest sweep on this host and images recommends for --zc-min-bytes crossover."""
    if not config.inventory:  # another host's kernel is probed by its own server (one line if it lacks a mode)
        config = supported_modes(config, uring.probe().get("modes") or {})
    if config.zc_min_bytes_crossover:
        image_ids = images.require_images(containers.docker_client(), ["server", "loadgen"])
        found = measure_sweep.latest_crossover(Path(config.out), facts.collect_kernel_release(),
                                               {images.TAGS[name]: image_id for name, image_id in image_ids.items()})
        config = replace(config, zc_min_bytes=found["size"], extra=config.extra | {"zc_min_bytes_from": found})
    return config


def bench(config: Config, log=print, started: float | None = None) -> Path:
    """`invoke bench`: the rate pilot first when --rate auto, then the run and its report.
    `started`: when the command began (monotonic), for the run's timing."""
    return bench_run.run(prepared(config), log, render=render_with_timing, started=started)


def render_with_timing(run_dir: Path):
    """The run's report, and how to write its text again once the manifest holds the run's
    final timing (the report's own rendering included)."""
    return run_report.render_run_pages(run_dir)[1]


def sweep(config: Config, log=print) -> Path:
    """`invoke sweep`: the sweep's matrix through the bench (its report reads it as a sweep)."""
    return bench(config, log)


def sweep_recommendation(run_dir: Path) -> str:
    """The line `invoke sweep` ends with: the --zc-min-bytes this host's sweep recommends."""
    found = measure_sweep.recommended(run_dir)
    if found is None:
        return (f"no --zc-min-bytes to recommend: {measure_sweep.ADAPTIVE_FOLLOWS} did not pay at any size of "
                "this sweep (its report says why)")
    return (f"recommended --zc-min-bytes {found['size']} for this host ({found['arm']} pays from there at "
            f"{found['conns']} conns); `invoke bench --mode adaptive --zc-min-bytes crossover` takes it")


def calibrate(config: Config, runs: int = 1, doses: tuple[float, ...] = calibration.DOSES,
              stall: tuple[int, int] = (20, 500), parts: tuple[str, ...] = calibration_plan.PARTS, log=print) -> Path:
    """`invoke calibrate`: with --rate auto a rate pilot that includes the heaviest work; the
    latency check (regular beside a server stalling on `stall`, at two loads); a pilot sizing the
    dose ladder, then `runs` calibration runs (regular, the A/A arm and the doses in every block at
    every connection count). Each CPU run gets calibration.json/.md with the latency check in it,
    the last one also what the runs say together. The last run's directory."""
    if config.calibration_work or config.calibration_stall or set(config.arms) - {runstats.BASELINE_ARM}:
        raise ConfigError("calibrate runs its own arms: leave --mode at regular")
    if config.rate_auto and not config.cell_rates:  # one rate, leaving room for the pilot's work
        rated = bench_run.with_auto_rates(calibration_plan.rate_pilot_config(config, calibration.PILOT_WORK),
                                          log, render=run_report.render_run)
        config = replace(config, cell_rates=rated.cell_rates, extra=config.extra | {
            key: rated.extra[key] for key in ("rate_pilot_run", "rate_shares")})
    latency = None
    if "latency" in parts and (config.rate or config.rate_auto):
        latency = calibrate_latency(config, stall, log)
    if "cpu" not in parts:
        run_dir = Path(latency["run_dir"])
        result = {"schema": calibration.CALIBRATION_SCHEMA, "passed": latency["passed"], "latency": latency}
        _write_calibration(run_dir, result)
        return run_dir
    return calibrate_cpu(config, runs, doses, latency, log)


def calibrate_latency(config: Config, stall: tuple[int, int], log=print) -> dict:
    """The latency check's run and its verdicts (calibration.json's `latency`)."""
    rates = bench_pilot.rates_at(config.cell_rates, calibration_plan.latency_loads(config)) if config.rate_auto else None
    run_dir = bench(calibration_plan.latency_config(config, stall, rates), log)
    return latency_calibration.judge_latency(rundir.load_samples(run_dir), *stall) | {"run_dir": str(run_dir)}


def calibrate_cpu(config: Config, runs: int, doses: tuple[float, ...], latency: dict | None, log=print) -> Path:
    """The dose ladder's sizing pilot and `runs` calibration runs, judged; the latency check's
    verdicts go into each run's calibration.json too."""
    def run_pilot(work: int) -> tuple[str, list[Sample]]:
        pilot_dir = bench_run.run_bench(calibration_plan.pilot_config(config, work), log=log,
                                        render=run_report.render_run)
        return str(pilot_dir), rundir.load_samples(pilot_dir)

    sizing = calibration.measure_work(run_pilot, doses, log if not config.quiet else lambda line: None)
    plan = calibration_plan.calibration_config(config, {dose["arm"]: dose["work"] for dose in sizing["doses"]})
    results, run_dirs = [], []
    for k in range(runs):
        run_dir = bench(replace(plan, seed=plan.seed + k), log)
        samples = rundir.load_samples(run_dir)
        result = calibration.judge(runstats.summarize(samples), samples, sizing)
        if k == runs - 1 and runs > 1:
            result["repeated"] = calibration.repeated(results + [result]) | {
                "run_dirs": [str(d) for d in run_dirs + [run_dir]]}
        results.append(dict(result))
        if latency is not None:
            result |= {"latency": latency, "cpu_passed": result["passed"],
                       "passed": result["passed"] and latency["passed"]}
        _write_calibration(run_dir, result)
        run_dirs.append(run_dir)
    return run_dirs[-1]


def _write_calibration(run_dir: Path, result: dict) -> None:
    rundir.write_json(run_dir / CALIBRATION_JSON, result)
    rundir.write_text(run_dir, CALIBRATION_MD, calibration_report.render_markdown(result, run_dir))


def report(run: str | Path, as_json: bool = False) -> str:
    """`invoke report`: summary.json, report.md, report.html and plots of a stored run, again.
    What to print: the paths of report.md and report.html, or (as_json) summary.json's object."""
    run_dir = rundir.resolve_run_dir(run)
    summary = run_report.render_run(run_dir)
    if as_json:
        return rundir.json_text(summary.to_json())
    return f"{run_dir / REPORT}\n{run_dir / REPORT_HTML}"


def compare(run_a: str | Path, run_b: str | Path, margins: dict[str, float] | None = None, as_json: bool = False,
            html_path: str | Path | None = None) -> str:
    """`invoke compare`: what changed between two runs, as Markdown (or as_json, JSON); with
    html_path, also that page (compare.html) written there."""
    result = compare_runs.compare_runs(run_a, run_b, margins)
    if html_path:
        write_atomic(Path(html_path), compare_report.render_compare_html(result))
    return rundir.json_text(compare_report.compare_json(result)) if as_json else compare_report.render_compare(result)
