"""Command line: every option documented, bad input gets one line and exit status 2."""

from __future__ import annotations

import os
import subprocess

import pytest

pytestmark = pytest.mark.server

OPTIONS = ["--port", "--bind", "--cpus", "--workers", "--send", "--zc-max-inflight", "--response-size",
           "--drop-ipc-lock", "--no-zc-report-usage", "--zc-page-budget", "--stats-file", "--idle-timeout", "--header-timeout", "--max-conns", "--version", "--help",
           "--list-modes", "--zc-min-bytes", "--zc-optmem-budget"]


def run(binary, *args):
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=10)


def test_help_documents_every_option(server_binary):
    proc = run(server_binary, "--help")
    assert proc.returncode == 0
    for option in OPTIONS:
        assert f"  {option} " in proc.stdout, option


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "abc"], ["--port", "70000"], ["--port", "-1"], ["--send", "fast"], ["--workers", "0"],
        ["--cpus", "9999"], ["--cpus", "0,0"], ["--cpus", "x"], ["--response-size", "10"],
        ["--response-size", "2g"], ["--response-size", "87"],
        ["--response-size", "18014398509481985k"], ["--response-size", "17592186044417m"],
        ["--response-size", "65537k"], ["--zc-max-inflight", "-5"], ["--bind", "not-an-address"],
        ["--header-timeout", "x"], ["--zc-page-budget", "lots"], ["--zc-page-budget", "1048576"], ["--frobnicate"], ["--port"], ["extra"],
        ["--send", "adaptive", "--zc-min-bytes", "lots"], ["--send", "msg-zerocopy", "--zc-optmem-budget", "-1"],
    ],
)
def test_bad_input_gets_one_line_and_exit_2(server_binary, args):
    proc = run(server_binary, "--port", "0", *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zcb-server: "), proc.stderr
    assert proc.stdout == ""


def test_cpus_pins_one_worker_per_cpu(start_server):
    cpus = sorted(os.sched_getaffinity(0))[:2]
    server = start_server("--cpus", ",".join(map(str, cpus)))
    assert "pinned" in server.banner
    final = server.stop()
    assert [w["cpu"] for w in final["workers"]] == cpus


def test_stats_file_symlink_is_refused(server_binary, tmp_path):
    """O_NOFOLLOW: a symlink planted at the stats path must not redirect the truncation."""
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / "stats").symlink_to(victim)
    proc = run(server_binary, "--port", "0", "--stats-file", str(tmp_path / "stats"))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--stats-file" in lines[0], proc.stderr
    assert victim.read_text() == "keep me"


def test_version_names_commit_compiler_liburing_and_flags(server_binary, start_server):
    proc = run(server_binary, "--version")
    assert proc.returncode == 0 and proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0] == "zcb-server"
    fields = dict(line.split(": ", 1) for line in lines[1:])
    assert set(fields) == {"commit", "compiler", "liburing", "flags"}
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                          cwd=server_binary.parent)
    if head.returncode == 0:
        # built from this checkout (make rebuilds when the commit changes)
        assert fields["commit"].removesuffix("-dirty") == head.stdout.strip()
    else:
        assert fields["commit"] == "unknown"
    assert fields["compiler"].split()[0] in ("gcc", "clang") and any(ch.isdigit() for ch in fields["compiler"])
    assert fields["liburing"][0].isdigit(), fields["liburing"]
    assert "-Wall" in fields["flags"] and "-Werror" in fields["flags"]
    assert ("-fsanitize=address" in fields["flags"]) == server_binary.name.endswith("-asan")
    # the final JSON carries the same, so a run records what it measured
    final = start_server().stop()
    assert final["build"] == {**fields}
