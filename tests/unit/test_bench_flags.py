"""Flags that say what they do: `--threads 0` and nginx with zero-copy arms are refused in one
line before anything starts, and `invoke --help bench` shows every option's default."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from zcbench.core.paths import ROOT
from zcbench.measure.config import Config, ConfigError

INVOKE = Path(sys.executable).with_name("invoke")


def make(**kwargs):
    kwargs.setdefault("online_cpus", {0, 1, 2})
    kwargs.setdefault("seed", 1)
    kwargs.setdefault("nofile", 20000)
    return Config.from_args(**kwargs)


def one_line_error(**kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        make(**kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.parametrize("zero", ["0", 0, " 0"])
def test_threads_zero_is_refused_naming_the_default(zero):
    message = one_line_error(threads=zero, loadgen_cpus="1-2")
    assert message.startswith("--threads 0:") and "one per loadgen CPU (2 here)" in message


def test_threads_left_out_is_one_per_loadgen_cpu():
    assert make(threads=None, loadgen_cpus="1-2").threads == 2
    assert make(threads="", loadgen_cpus="1").threads == 1
    assert make(threads="3", loadgen_cpus="1").threads == 3


@pytest.mark.parametrize("mode", ["zc", "zc-fixed", "all"])
def test_nginx_alone_with_zero_copy_arms_is_refused(mode):
    message = one_line_error(server="nginx", mode=mode)
    assert message.startswith(f"--server nginx --mode {mode}: nginx has no zero-copy arm")


@pytest.mark.parametrize("mode", [None, "", "regular"])
def test_nginx_alone_without_a_zero_copy_mode_runs_nginx(mode):
    assert make(server="nginx", mode=mode).arms_to_run == (("nginx", "nginx"),)


def test_mode_left_out_is_the_default_for_zcbench_and_both():
    assert make(mode=None).arms == ("regular", "zc")
    assert make(server="both", mode="zc-fixed").arms_to_run == (
        ("zcbench", "regular"), ("zcbench", "zc-fixed"), ("nginx", "nginx"))


def run_invoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(INVOKE), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, start", [
    (("--threads", "0"), "zcbench: --threads 0: wrk needs at least 1 thread"),
    (("--server", "nginx", "--mode", "zc-fixed"), "zcbench: --server nginx --mode zc-fixed: nginx has no"),
])
def test_the_bench_task_refuses_in_one_line_before_anything_starts(tmp_path, args, start):
    proc = run_invoke("bench", "--out", str(tmp_path), *args)
    assert proc.returncode == 2
    assert proc.stderr.startswith(start) and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stdout == "" and list(tmp_path.iterdir()) == []  # no run directory: nothing ran


def help_options(text: str) -> dict[str, str]:
    """--option -> its help text (continuation lines joined) from `invoke --help TASK`."""
    options, current = {}, None
    for line in text.split("Options:", 1)[1].splitlines():
        match = re.match(r"^\s+(?:-\w, )?(--[\w-]+)(?:=\w+)?\s*(.*)$", line)
        if match:
            current = match.group(1)
            options[current] = match.group(2)
        elif current and line.strip():
            options[current] += " " + line.strip()
    return options


def test_every_bench_option_shows_its_default():
    proc = run_invoke("--help", "bench")
    assert proc.returncode == 0, proc.stderr
    options = help_options(proc.stdout)
    assert {"--mode", "--threads", "--quiet", "--drop-ipc-lock", "--server", "--conns"} <= set(options)
    missing = [name for name, text in options.items() if not re.search(r"\[[^]]+\]\s*$", text)]
    assert missing == [], f"options without a [default] in invoke --help bench: {missing}"
    assert "[one per loadgen CPU]" in options["--threads"]
    assert options["--mode"].endswith("[zc]")


def test_bench_and_calibrate_pace_by_default_and_the_sweep_does_not():
    """The bench and its calibration run at equal offered load (where the calibration finds 5%
    here); the sweep's crossover is in throughput. `--rate off` / `--rate auto` choose either way."""
    for task, shown in (("bench", "[auto]"), ("calibrate", "[auto]"),
                        ("sweep", "[off: the crossover is in throughput]")):
        proc = run_invoke("--help", task)
        assert proc.returncode == 0, proc.stderr
        assert help_options(proc.stdout)["--rate"].endswith(shown), (task, help_options(proc.stdout)["--rate"])
    from zcbench.measure.config import DEFAULT_RATE, RATE_OFF, Config

    assert Config.from_args(online_cpus={0, 1}, rate=DEFAULT_RATE).rate_auto
    off = Config.from_args(online_cpus={0, 1}, rate=RATE_OFF)
    assert off.rate is None and not off.rate_auto and off.rate_for(100, 88) is None
