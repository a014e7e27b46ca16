"""invoke tasks: parse and validate arguments, call one function of the zcbench package, print.

Run `invoke --list` (or `zcbench --list`) for the tasks and `invoke --help TASK` for each one's
options. Each task imports the package modules it runs inside its body: importing them all here
would make every `--list` and `--help` load docker, scipy, matplotlib and ansible (1.8 s measured
on the 2-vCPU VM, against 0.2 s).
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from invoke import Collection, Task, task

from zcbench.core import arms
from zcbench.core.paths import ROOT
from zcbench.measure import calibrate as CALIBRATION_DEFAULTS
from zcbench.measure import config as config_defaults
from zcbench.measure import loadgen


def _fail(message: str, code: int = 2) -> None:
    """One clear line on stderr and a non-zero exit (invoke would print a traceback)."""
    print(f"zcbench: {message}", file=sys.stderr)
    raise SystemExit(code)


# --- native server --------------------------------------------------------------------------


@task(help={"asan": "also build the AddressSanitizer + UBSan binary", "fuzz": "also build the libFuzzer target"})
def server(c, asan=False, fuzz=False):
    """Build the native io_uring HTTP server (server/build/zcb-server)."""
    targets = ["all"] + (["asan"] if asan else []) + (["fuzz"] if fuzz else [])
    c.run(f"make -C {ROOT / 'server'} {' '.join(targets)}")


# --- images and the benchmark ----------------------------------------------------------------


@task(help={"base_image": "use this image (e.g. from your registry) instead of the base made here (mmdebstrap)",
            "only": "comma-separated subset of server,loadgen,nginx",
            "inventory": "also put the images on this inventory's remote hosts (each gets what its group needs)",
            "rootfs": "only make the base's rootfs tarball (mmdebstrap; no Docker engine needed) [off]"})
def build(c, base_image="", only="", inventory="", rootfs=False):
    """Build the container images (base via mmdebstrap + docker import); only what changed."""
    from zcbench.host import inventory as hosts
    from zcbench.host.engines import EngineUnreachable
    from zcbench.measure import containers, host_images, images

    if rootfs:
        try:
            print(images.build_rootfs(log=lambda line: print(line, flush=True)))
        except images.ImageError as exc:
            _fail(str(exc))
        return

    names = [n.strip() for n in only.split(",") if n.strip()] or list(images.BUILT_IMAGES)
    unknown = sorted(set(names) - set(images.BUILT_IMAGES))
    if unknown:
        _fail(f"--only: unknown image(s) {', '.join(unknown)}; known: {', '.join(images.BUILT_IMAGES)}")
    try:
        inv = hosts.load_inventory(inventory) if inventory else None
    except hosts.InventoryError as exc:
        _fail(str(exc))
    try:
        client = containers.docker_client()
        results = images.ensure_images(client, names, base_image=base_image or None)
    except (containers.DockerUnavailable, images.ImageError) as exc:
        _fail(str(exc))
    for r in results:
        state = "built" if r.built else "up to date"
        print(f"{r.tag:28} {state:10} {r.seconds:6.1f} s  {r.image_id[7:19]}  inputs {r.input_hash}")
    if inv is not None:
        try:
            host_images.distribute(inv, names, local=client, log=lambda line: print(line, flush=True))
        except EngineUnreachable as exc:  # a host's engine out of reach, or an image it refused
            _fail(str(exc), code=1)


def _run_to_results(run):
    """Run a bench or sweep, print its run directory and return it; every way it can end badly
    gets one line and its own exit status (the run itself already removed its containers)."""
    from zcbench.measure import bench as bench_mod

    try:
        run_dir = run()
    except bench_mod.USER_ERRORS as exc:  # bad input, no engine, missing images: nothing ran
        _fail(str(exc))
    except bench_mod.RUN_ERRORS as exc:
        _fail(f"run failed (containers removed, run marked incomplete): {exc}", code=1)
    except KeyboardInterrupt:
        _fail("interrupted: containers removed, run marked incomplete", code=130)
    print(run_dir)
    return run_dir


_B = config_defaults  # every default of a run's options, defined once (measure.config)


#: Help of the options bench and sweep share (one text each; the sweep overrides a few).
RUN_HELP = {
    "mode": f"{arms.modes_help()} (an arm always runs beside the baseline it is judged against) "
            f"[{_B.DEFAULT_MODE}]",
    "loadgen": f"load generator: {'|'.join(loadgen.GENERATORS)} [{_B.DEFAULT_LOADGEN}]",
    "server": f"zcbench|nginx|both [{_B.DEFAULT_SERVER}]",
    "conns": f"comma-separated connection counts [{','.join(map(str, _B.DEFAULT_CONNS))}]",
    "duration": f"measured seconds per cell [{_B.DEFAULT_DURATION_S}]",
    "warmup": f"warmup seconds per cell [{_B.DEFAULT_WARMUP_S}]",
    "repeat": f"blocks: each runs every cell once, its arms back to back; arms are compared per block [{_B.DEFAULT_REPEAT}]",
    "response_size": f"response bytes incl. headers (88, 4k, ...; a list runs each) [{_B.DEFAULT_RESPONSE_SIZE}]",
    "zc_max_inflight": f"per-worker cap on in-flight zero-copy sends, 0 = none [{_B.DEFAULT_ZC_MAX_INFLIGHT}]",
    "zc_min_bytes": "the adaptive arm's threshold: zero-copy from this response size up (16k...), or "
                    "`crossover`: the one the latest sweep on this host and images found [the server's: 10k]",
    "drop_ipc_lock": "server drops CAP_IPC_LOCK so ZC sends are charged to memlock [off]",
    "memlock": f"server memlock limit (bytes, 8m, unlimited) [{_B.DEFAULT_MEMLOCK}]",
    "nofile": f"nofile limit of both containers [min({_B.MAX_NOFILE}, host hard limit)]",
    "server_cpus": f"CPU list of the server [{_B.PROVISIONED_CPUS_HELP}]",
    "loadgen_cpus": f"CPU list of wrk, disjoint from the server's [{_B.PROVISIONED_CPUS_HELP}]",
    "threads": "wrk threads, at least 1 [one per loadgen CPU]", "port": f"server port [{_B.DEFAULT_PORT}]",
    "path": f"loopback|veth (veth: wrk in its own netns across a veth + bridge) [{_B.DEFAULT_PATH}]",
    "rate": "requests/s wrk offers every arm of a cell (paced); auto = 70% of the slower arm's "
            "saturation, measured by a short pilot; 30%,50%,90% = every cell at each share of it (latency "
            f"against load); off = as fast as wrk can [{_B.DEFAULT_RATE}]",
    "out": "results root directory [results/]", "quiet": "no progress bar, print only the run directory [off]",
    "seed": "shuffle seed [random, recorded]", "label": f"suffix of the run directory name [{_B.DEFAULT_LABEL}]",
    "inventory": "hosts file: the server on its `server` host, wrk on every `loadgen` host, together; "
                 "other hosts over SSH; see docs/two-hosts.md [off: this machine alone]",
}

#: Task-argument defaults of those options (what `--from` treats as "not given").
RUN_DEFAULTS = dict(
    mode="", server=_B.DEFAULT_SERVER, conns=",".join(map(str, _B.DEFAULT_CONNS)),
    duration=str(_B.DEFAULT_DURATION_S), warmup=str(_B.DEFAULT_WARMUP_S), repeat=str(_B.DEFAULT_REPEAT),
    response_size=str(_B.DEFAULT_RESPONSE_SIZE), zc_max_inflight=str(_B.DEFAULT_ZC_MAX_INFLIGHT), zc_min_bytes="",
    drop_ipc_lock=False, memlock=str(_B.DEFAULT_MEMLOCK), nofile="", server_cpus=_B.DEFAULT_SERVER_CPUS,
    loadgen_cpus=_B.DEFAULT_LOADGEN_CPUS, threads="", port=str(_B.DEFAULT_PORT), path=_B.DEFAULT_PATH,
    rate=_B.DEFAULT_RATE, out=str(_B.DEFAULT_OUT), quiet=False, seed="", label=_B.DEFAULT_LABEL, inventory="",
    loadgen=_B.DEFAULT_LOADGEN,
)


def _config_args(options: dict) -> dict:
    """Config.from_args keywords from the task's options ("" = not given)."""
    return {name: (value if value != "" else None) for name, value in options.items()}


class _LongFlagsAndInventory(Task):
    """Long options only (a matrix's flags read better spelled out), except `-i INVENTORY`, the
    flag every inventory-taking task shares."""

    def arg_opts(self, name, default, taken_names):
        opts = super().arg_opts(name, default, taken_names)
        if name == "inventory" and "i" not in taken_names:
            opts["names"].append("i")
        return opts


@task(klass=_LongFlagsAndInventory, auto_shortflags=False, help=RUN_HELP | {
    "from": "rerun the matrix, seed and cell order of RUN/manifest.json into a new run; options "
            "given that differ from their defaults override it (recorded) [off]"})
def bench(c, mode=RUN_DEFAULTS["mode"], server=RUN_DEFAULTS["server"], conns=RUN_DEFAULTS["conns"],
          duration=RUN_DEFAULTS["duration"], warmup=RUN_DEFAULTS["warmup"], repeat=RUN_DEFAULTS["repeat"],
          response_size=RUN_DEFAULTS["response_size"], zc_max_inflight=RUN_DEFAULTS["zc_max_inflight"],
          zc_min_bytes="",
          drop_ipc_lock=False, memlock=RUN_DEFAULTS["memlock"], nofile="", server_cpus=RUN_DEFAULTS["server_cpus"],
          loadgen_cpus=RUN_DEFAULTS["loadgen_cpus"], threads="", port=RUN_DEFAULTS["port"],
          path=RUN_DEFAULTS["path"], rate=RUN_DEFAULTS["rate"], out=RUN_DEFAULTS["out"], quiet=False, seed="",
          label=RUN_DEFAULTS["label"], from_="", inventory="", loadgen=RUN_DEFAULTS["loadgen"]):
    """Run the A/B benchmark (regular send vs SEND_ZC) and write results/<UTC time>-<label>/."""
    started = time.monotonic()  # the run's timing counts from here: the imports below included
    from zcbench import jobs
    from zcbench.measure.config import Config, rerun_config

    options = {name: value for name, value in locals().items() if name in RUN_DEFAULTS}

    def make_config():
        if from_:
            given = {k: v for k, v in options.items() if v != RUN_DEFAULTS[k]}
            return rerun_config(from_, _config_args(given))
        return Config.from_args(**_config_args(options))

    _run_to_results(lambda: jobs.bench(make_config(), started=started))


@task(auto_shortflags=False, help={
    "conns": f"connection counts calibrated [the bench's: {','.join(map(str, _B.DEFAULT_CONNS))}]",
    "duration": f"measured seconds per cell [{_B.DEFAULT_DURATION_S}]",
    "warmup": f"warmup seconds per cell [{_B.DEFAULT_WARMUP_S}]",
    "repeat": "blocks (each runs regular, the A/A arm and every dose at every connection count) "
              f"[{CALIBRATION_DEFAULTS.DEFAULT_REPEAT}]",
    "doses": "injected CPU per request the doses aim at, percent "
             f"[{','.join(f'{d * 100:g}' for d in CALIBRATION_DEFAULTS.DEFAULT_DOSES)}]",
    "runs": "repeat the whole calibration K times on one sizing: false-positive rate and power [1]",
    "stall": "the latency check's stall, STALL_MS/PERIOD_MS: the known tail it must measure "
             f"[{CALIBRATION_DEFAULTS.DEFAULT_STALL}]",
    "only": "run one half: cpu (the A/A and the dose ladder) or latency (the stall check) [both]",
    "server_cpus": f"CPU list of the server [{_B.PROVISIONED_CPUS_HELP}]",
    "loadgen_cpus": f"CPU list of wrk, disjoint from the server's [{_B.PROVISIONED_CPUS_HELP}]",
    "threads": "wrk threads [one per loadgen CPU]", "port": f"server port [{_B.DEFAULT_PORT}]",
    "rate": RUN_HELP["rate"],
    "out": "results root directory [results/]", "quiet": "no progress bar, print only the run directory [off]",
    "seed": "shuffle seed [random, recorded]", "label": "suffix of the run directory name [calibrate]",
    "json": "print calibration.json's object on stdout; progress and the run directory go to stderr [off]",
})
def calibrate(c, conns=",".join(map(str, _B.DEFAULT_CONNS)), duration=str(_B.DEFAULT_DURATION_S),
              warmup=str(_B.DEFAULT_WARMUP_S), repeat=str(CALIBRATION_DEFAULTS.DEFAULT_REPEAT),
              server_cpus=_B.DEFAULT_SERVER_CPUS, loadgen_cpus=_B.DEFAULT_LOADGEN_CPUS, threads="",
              port=str(_B.DEFAULT_PORT), rate=_B.DEFAULT_RATE, out=str(_B.DEFAULT_OUT), quiet=False, seed="",
              label="calibrate", doses="", runs="1", stall=CALIBRATION_DEFAULTS.DEFAULT_STALL, only="",
              json_=False):
    """Check the bench's verdicts on this host: an A/A must say no difference, a dose ladder of known CPU must be found, a known stall must show in the tail."""
    from zcbench import jobs
    from zcbench.analyze import calibration as cal
    from zcbench.measure.config import Config, ConfigError, parse_int

    try:
        dose_list = CALIBRATION_DEFAULTS.parse_doses(doses) if doses else CALIBRATION_DEFAULTS.DEFAULT_DOSES
        run_count = parse_int(runs, "--runs", 1, 100)
        stall_schedule = CALIBRATION_DEFAULTS.parse_stall(stall, float(parse_int(duration, "--duration", 1)))
        parts = CALIBRATION_DEFAULTS.parse_only(only)
        config = Config.from_args(
            mode="regular", conns=conns, duration=duration, warmup=warmup, repeat=repeat,
            server_cpus=server_cpus, loadgen_cpus=loadgen_cpus, threads=threads or None, port=port,
            rate=rate or None, out=out, quiet=quiet, seed=seed or None, label=label)
        CALIBRATION_DEFAULTS.check_latency_plan(config, parts)
    except ConfigError as exc:
        _fail(str(exc))

    def run():
        try:
            return jobs.calibrate(config, runs=run_count, doses=dose_list, stall=stall_schedule, parts=parts)
        except cal.CalibrationError as exc:
            _fail(f"calibration could not size its injected work: {exc}", code=1)

    if json_:  # stdout carries the JSON alone: everything the run prints goes to stderr
        from zcbench.core import rundir

        with contextlib.redirect_stdout(sys.stderr):
            run_dir = _run_to_results(run)
        print(rundir.json_text(rundir.read_json(run_dir / rundir.CALIBRATION_JSON)), end="")
        return
    _run_to_results(run)
    if not quiet:
        print("see calibration.md in that directory")


# --- reports, comparison, sweep -------------------------------------------------------------


# invoke cannot make a positional argument optional (one with a default never takes a value),
# so the run is `--run DIR` / `-r DIR`, defaulting to the latest run.
@task(help={"run": "run directory [results/latest]",
            "json": "print the summary (summary.json's object) instead of the report's paths [off]"})
def report(c, run="results/latest", json_=False):
    """Re-render report.md, report.html, summary.json and plots/ of a run (-r DIR) from its stored samples."""
    from zcbench import jobs
    from zcbench.core.rundir import RunDirError

    try:
        print(jobs.report(run, as_json=json_), end="\n" if not json_ else "")
    except RunDirError as exc:
        _fail(str(exc))


def _margin(value: str, option: str) -> float:
    """A margin in percent (e.g. 3 or 2.5), as a fraction; one line and exit 2 when it is none."""
    try:
        margin = float(value) / 100
    except ValueError:
        _fail(f"{option} {value!r} is not a number of percent")
    if not 0 < margin < 1:
        _fail(f"{option} {value}: give a margin between 0 and 100 percent")
    return margin


@task(positional=["run_a", "run_b"], auto_shortflags=False, help={
    "run_a": "the earlier run directory", "run_b": "the later one",
    "margin_cpu": "percent an arm/regular CPU ratio may move and still agree [3]",
    "margin_throughput": "percent for throughput ratios [3]",
    "margin_latency": "percent for mean latency ratios [10]", "margin_p99": "percent for p99 ratios [25]",
    "json": "JSON on stdout instead of Markdown [off]",
    "html": "also write the comparison as one HTML page to this file [off]"})
def compare(c, run_a, run_b, margin_cpu="3", margin_throughput="3", margin_latency="10", margin_p99="25",
            json_=False, html=""):
    """What changed between two runs: each arm/regular ratio agrees, differs or is inconclusive (TOST)."""
    from zcbench import jobs
    from zcbench.core.rundir import RunDirError

    cpu = _margin(margin_cpu, "--margin-cpu")
    margins = {"cpu_us_per_request": cpu, "cpu_per_loadgen_cpu": cpu, "loadgen_cpu_us_per_request": cpu,
               "requests_per_s": _margin(margin_throughput, "--margin-throughput"),
               "latency_mean_us": _margin(margin_latency, "--margin-latency"),
               "latency_p99_us": _margin(margin_p99, "--margin-p99")}
    if html and not Path(html).parent.is_dir():
        _fail(f"--html {html}: no directory {Path(html).parent}")
    try:
        print(jobs.compare(run_a, run_b, margins, as_json=json_, html_path=html or None), end="" if json_ else "\n")
    except RunDirError as exc:
        _fail(str(exc))


SWEEP_SIZES = "88,512,1k,4k,16k,64k,256k,1m"


@task(klass=_LongFlagsAndInventory, auto_shortflags=False,
      help=RUN_HELP | {
    "sizes": "comma-separated response sizes (88, 512, 1k, 4k, ... 1m) [88,512,1k,4k,16k,64k,256k,1m]",
    "response_size": "the same as --sizes (one of the two)",
    "conns": "comma-separated connection counts [100]", "mode": f"{arms.modes_help()} [all]",
    "label": "suffix of the run directory name [sweep]",
    "rate": RUN_HELP["rate"].replace(f"[{_B.DEFAULT_RATE}]", f"[{_B.DEFAULT_SWEEP_RATE}: the crossover is in throughput]")})
def sweep(c, sizes=SWEEP_SIZES, conns="100", mode="all", server=RUN_DEFAULTS["server"],
          duration=RUN_DEFAULTS["duration"], warmup=RUN_DEFAULTS["warmup"], repeat=RUN_DEFAULTS["repeat"],
          zc_max_inflight=RUN_DEFAULTS["zc_max_inflight"], drop_ipc_lock=False, memlock=RUN_DEFAULTS["memlock"],
          nofile="", server_cpus=RUN_DEFAULTS["server_cpus"], loadgen_cpus=RUN_DEFAULTS["loadgen_cpus"],
          threads="", port=RUN_DEFAULTS["port"], path=RUN_DEFAULTS["path"], rate=_B.DEFAULT_SWEEP_RATE, out=RUN_DEFAULTS["out"],
          quiet=False, seed="", label="sweep", inventory="", loadgen=RUN_DEFAULTS["loadgen"], response_size="",
          zc_min_bytes=""):
    """Response-size sweep: where does zero-copy send start to pay, per send path? (the bench across sizes)."""
    from zcbench import jobs
    from zcbench.measure import sweep as sweep_mod

    if response_size and sizes != SWEEP_SIZES and response_size != sizes:
        _fail(f"--sizes {sizes} and --response-size {response_size}: give one of them")
    sizes = response_size or sizes
    options = {name: value for name, value in locals().items()
               if (name in RUN_DEFAULTS and name != "response_size") or name == "sizes"}
    run_dir = _run_to_results(lambda: jobs.sweep(sweep_mod.sweep_config(**_config_args(options))))
    if not quiet:
        print(jobs.sweep_recommendation(run_dir))


# --- host provisioning ----------------------------------------------------------------------


@task(
    help={
        "check": "check mode with diff: report what would change, change nothing",
        "revert": "restore what provisioning changed (sysctls, limits, daemon.json, GRUB drop-in, NIC)",
        "reboot": "reboot remote hosts whose kernel command line is not what the playbook wants "
                  "(never otherwise; this machine itself is only told to reboot by hand)",
        "inventory": "inventory file or directory: one `server` host, one or more `loadgen` hosts "
                     "(default: playbooks/inventory/hosts.yml, this machine as both; example: "
                     "playbooks/inventory/two-hosts.example.yml)",
        "tags": "comma-separated roles to run: sysctl,memlock,nic,cpu_isolation,docker",
        "verbose": "show Ansible's raw output instead of one line per task",
    },
)
def provision(c, check=False, revert=False, reboot=False, inventory="", tags="", verbose=False):
    """Tune this host (or the inventory's) and install/start the Docker engine, with Ansible."""
    from zcbench.host import provision as prov

    if revert and reboot:
        _fail("--revert and --reboot together: revert first, then reboot by hand if needed")
    try:
        result = prov.run_playbook(
            inventory=inventory or None, check=check, revert=revert, reboot=reboot,
            tags=tags.split(",") if tags else (), verbose=verbose,
            # with -v Ansible's own output already shows every task
            on_task=None if verbose else (
                lambda t: print(prov.format_task(t) + (f"\n{t.diff}" if check and t.diff else ""), flush=True)),
        )
    except prov.ProvisionError as exc:
        _fail(str(exc))
    print(prov.recap(result))
    for line in prov.reboot_lines(result, rebooting=reboot and not check, reverted=revert):
        print(line)
    for failure in result.failures:
        print(f"zcbench: provision failed at '{failure.task}' on {failure.host}: {failure.message}", file=sys.stderr)
    if result.error:
        print(f"zcbench: ansible-playbook failed outside any task:\n{result.error}", file=sys.stderr)
    if result.artifacts:
        print(f"zcbench: ansible-runner's artifacts (events, full output) are kept in {result.artifacts}", file=sys.stderr)
    if not result.ok:
        sys.exit(1)


@task(help={"up": "make the lab (or keep the healthy one) and print its inventory's path",
            "down": "remove the lab and everything it made"})
def lab(c, up=False, down=False):
    """A second host on this machine: network namespace + veth, sshd, its own Docker engine.
    State in /run/zcbench-lab (ZCBENCH_LAB_DIR overrides)."""
    from zcbench.host import lab as lab_mod

    if up == down:
        _fail("invoke lab: give exactly one of --up and --down")
    state_dir = lab_mod.state_dir_from_env()
    try:
        if up:
            inventory = lab_mod.up(state_dir).inventory
            print(inventory)
            print(f"use it: invoke provision -i {inventory}; invoke build -i {inventory}; invoke bench -i {inventory}")
            return
        removed = lab_mod.down(state_dir)
    except lab_mod.LabUnavailable as exc:
        _fail(str(exc))
    except lab_mod.LabError as exc:
        _fail(str(exc), code=1)
    except KeyboardInterrupt:
        _fail("interrupted (an unfinished --up removes what it had made)", code=130)
    for item in removed:
        print(f"removed {item}")
    if not removed:
        print(f"no lab in {state_dir}: nothing removed")


# --- Python dependencies ---------------------------------------------------------------------


@task(help={"upgrade": "move every pin to the newest release pyproject.toml allows [off: keep pins]"})
def lock(c, upgrade=False):
    """Refresh requirements.lock (exact versions + hashes, all extras) from pyproject.toml with uv."""
    from zcbench.devtools import lockfile

    try:
        path = lockfile.refresh_lock(upgrade=upgrade)
    except lockfile.LockError as exc:
        _fail(str(exc))
    print(f"{path.name}: {sum(len(v) for v in lockfile.locked_pins(path).values())} pins; "
          "install with ./bootstrap.sh deps")


@task(help={"inventory": "check every host of this inventory (remote ones over SSH) [this machine]",
            "json": "one JSON object (every host's rows and verdict) instead of the tables [off]"})
def doctor(c, inventory="", json_=False):
    """Show desired vs actual for every tunable; exit 1 when something the bench needs is missing."""
    from zcbench.host import doctor as doc
    from zcbench.host import inventory as hosts

    if not inventory:
        sys.exit(doc.run_json() if json_ else doc.run())
    try:
        inv = hosts.load_inventory(inventory)
    except hosts.InventoryError as exc:
        _fail(str(exc))
    sys.exit(doc.run_inventory(inv, as_json=json_))


# --- tests ----------------------------------------------------------------------------------


@task(help={"fast": "only what needs no Docker engine (neither the docker nor the lab tests)", "k": "pytest -k expression", "verbose": "pytest -v"})
def test(c, fast=False, k="", verbose=False):
    """Run the whole test suite (unit, server, provisioning, Docker) and print a summary."""
    from zcbench.devtools import testing

    sys.exit(testing.run_suite(fast=fast, keyword=k, verbose=verbose))


#: Every task above: invoke's `ns` in the checkout's tasks.py, and the `zcbench` program's.
namespace = Collection.from_module(sys.modules[__name__])
