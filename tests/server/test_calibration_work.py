"""--calibration-work: a known CPU cost per response, recorded, off by default."""

from __future__ import annotations

import os
import time

import pytest

from .conftest import connect, expected_response, get, recv_exactly

pytestmark = pytest.mark.server

RESPONSES = 200
SIZE = 88


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _serve(server) -> tuple[float, float]:
    """CPU seconds the server spent answering RESPONSES requests one at a time (one send each,
    so one in 16 is timed), byte-exact, and the wall seconds they took."""
    sock = connect(server.port)
    before, began = _cpu_seconds(server.proc.pid), time.monotonic()
    for _ in range(RESPONSES):
        sock.sendall(get())
        assert recv_exactly(sock, SIZE) == expected_response(SIZE)
    spent, wall = _cpu_seconds(server.proc.pid) - before, time.monotonic() - began
    sock.close()
    return spent, wall


def test_calibration_work_adds_cpu_per_response_and_is_recorded(start_server):
    plain = start_server("--response-size", str(SIZE))
    plain_cpu, _ = _serve(plain)
    plain_final = plain.stop()
    assert plain_final["config"]["calibration_work"] == 0  # off unless asked for
    assert plain_final["totals"]["calibration_work_ns"] == plain_final["totals"]["calibration_work_timed"] == 0

    # ~1-5 ms of loop per response: 200 responses cost far more than the clock tick's 10 ms.
    worked = start_server("--response-size", str(SIZE), "--calibration-work", "2000000")
    worked_cpu, worked_wall = _serve(worked)
    final = worked.stop()
    assert final["config"]["calibration_work"] == 2000000
    assert final["totals"]["responses"] == RESPONSES
    assert worked_cpu > plain_cpu + 0.1
    # the server timed its loop in one send of 16 (13 of the 200): per response, that is the CPU
    # the work added (the process's tick-granular clock is coarse, hence the wide bounds). Its
    # clock is the monotonic one, which runs on while the worker waits for a CPU: on a machine as
    # busy as a fresh one's test run (the images build beside these tests) a single timed send of
    # 200 pipelined responses read 1.13 s for 0.67 s of CPU. What the timed sends' mean cannot
    # exceed by much is the wall time the responses took; the bench's server has its CPU to itself.
    totals = final["totals"]
    assert totals["calibration_work_timed"] >= RESPONSES // 16 // 2  # most timed calls kept
    loop_s = totals["calibration_work_ns"] / totals["calibration_work_timed"] * RESPONSES / 1e9
    assert 0.5 * (worked_cpu - plain_cpu) < loop_s < 1.5 * worked_wall + 0.02


@pytest.mark.parametrize("bad", ["-1", "x", "16777217"])
def test_calibration_work_rejects_bad_values_with_one_line(server_binary, bad):
    import subprocess

    proc = subprocess.run([str(server_binary), "--calibration-work", bad], capture_output=True,
                          text=True, timeout=10)
    assert proc.returncode == 2
    assert "--calibration-work" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def _loop_ns_per_iteration(start_server, iterations: int) -> float:
    server = start_server("--response-size", str(SIZE), "--calibration-work", str(iterations))
    sock = connect(server.port)
    for _ in range(800):  # one request at a time: one response per send, as a paced bench has
        sock.sendall(get())
        assert recv_exactly(sock, SIZE) == expected_response(SIZE)
    sock.close()
    totals = server.stop()["totals"]
    assert totals["calibration_work_timed"] >= 800 // 16 * 0.5  # most timed calls were not preempted
    return totals["calibration_work_ns"] / totals["calibration_work_timed"] / iterations


# The release build only: it is the one the bench's image runs, and ASan's instrumentation adds a
# fixed cost per call of its own (under load here it read 100 iterations as 1.7x 1500's per iteration).
@pytest.mark.parametrize("server_binary", ["release"], indirect=True)
def test_the_loops_measured_time_is_proportional_to_its_iterations(start_server):
    """The calibration reads a dose's true cost from this timing: a fixed cost per timed call (a
    clock that enters the kernel made 100 iterations read as 440 ns, 1500 as 2800) would make
    small doses look several times larger than they are."""
    small, large = _loop_ns_per_iteration(start_server, 100), _loop_ns_per_iteration(start_server, 1500)
    assert 0.6 < small / large < 1.6
