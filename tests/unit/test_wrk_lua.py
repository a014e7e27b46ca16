"""loadgen/report.lua run for real: wrk against a tiny local HTTP server prints one JSON line
that zcbench.measure.loadgen.wrk parses; and the parser on recorded output."""

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from zcbench.measure.loadgen import wrk
from zcbench.measure.loadgen.base import LoadgenError, achieved_rate, paced_window_s
from zcbench.measure.loadgen.launcher import Handshake, Window

RECORDED = (
    "Running 1s test @ http://127.0.0.1:1/\n  1 threads and 2 connections\n"
    "  Latency   100.00us  10.00us   1.00ms   90.00%\n"
    '{"zcbench_wrk":1,"requests":1000,"duration_us":1000000,"bytes":88000,"requests_per_s":1000,'
    '"errors":{"connect":0,"read":0,"write":0,"timeout":0,"status":0},'
    '"latency_us":{"mean":100.5,"stdev":10,"min":50,"max":1000,"p50":99,"p75":105,"p90":110,'
    '"p99":150,"p99.9":400,"p99.99":900},"percentiles_us":[[50,99],[99,150],[100,1000]]}\n'
)


def test_parse_recorded_output():
    obj = wrk.parse_wrk_json(RECORDED)
    assert obj["requests"] == 1000
    assert obj["latency_us"]["p99.9"] == 400
    assert obj["percentiles_us"][-1] == [100, 1000]


def test_parse_rejects_output_without_json():
    with pytest.raises(LoadgenError, match="no zcbench JSON line"):
        wrk.parse_wrk_json("Running 1s test\nRequests/sec: 10\n")


def test_parse_rejects_json_missing_fields():
    broken = RECORDED.replace('"p99.99":900', '"p99_99":900')
    with pytest.raises(LoadgenError, match=r"latency_us\.p99\.99"):
        wrk.parse_wrk_json(broken)


def test_command_line():
    cmd = wrk.wrk_command("http://127.0.0.1:8088/", conns=100, threads=2, duration_s=3, timeout_s=5)
    assert cmd[:2] == ["wrk", "--latency"]
    assert cmd[cmd.index("-c") + 1] == "100" and cmd[cmd.index("-t") + 1] == "2"
    assert cmd[cmd.index("-d") + 1] == "3s" and cmd[cmd.index("-s") + 1] == wrk.SCRIPT_IN_IMAGE


BODY = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    status = 200
    delay_s = 0.0
    # headers and body go out in two writes: without TCP_NODELAY, Nagle and delayed ACKs
    # hold every response ~40 ms and the server manages ~90 requests/s
    disable_nagle_algorithm = True

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self.delay_s:
            time.sleep(self.delay_s)
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


def serve(status, delay_s=0.0):
    handler = type("H", (Handler,), {"status": status, "delay_s": delay_s})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def run_real_wrk(port):
    import subprocess

    cmd = wrk.wrk_command(f"http://127.0.0.1:{port}/", conns=4, threads=1, duration_s=1, timeout_s=2,
                          script=str(wrk.SCRIPT_ON_HOST))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    json_lines = [line for line in proc.stdout.splitlines() if line.startswith('{"zcbench_wrk"')]
    assert len(json_lines) == 1, proc.stdout  # done() prints exactly one JSON line
    json.loads(json_lines[0])
    return wrk.parse_wrk_json(proc.stdout)


needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (bootstrap.sh installs it)")


@needs_wrk
def test_report_lua_done_prints_complete_json():
    server = serve(200)
    try:
        obj = run_real_wrk(server.server_address[1])
    finally:
        server.shutdown()
    assert obj["requests"] > 0
    assert 0.5e6 < obj["duration_us"] < 5e6
    assert obj["errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0}
    assert abs(obj["requests_per_s"] - obj["requests"] / (obj["duration_us"] / 1e6)) < 1
    # wrk counts every byte read: at least the body of each completed response.
    assert obj["bytes"] >= obj["requests"] * len(BODY)
    lat = obj["latency_us"]
    headline = [lat[k] for k in ("p50", "p75", "p90", "p99", "p99.9", "p99.99")]
    assert headline == sorted(headline)
    assert 0 < lat["min"] <= lat["p50"] <= lat["max"] and lat["mean"] > 0 and lat["stdev"] >= 0
    table = obj["percentiles_us"]
    assert [p for p, _ in table] == sorted(p for p, _ in table) and table[-1][0] == 100
    assert [v for _, v in table] == sorted(v for _, v in table)
    assert table[-1][1] == lat["max"]
    assert obj["paced"] is None  # only paced.lua reports its schedule


@needs_wrk
def test_report_lua_counts_non_2xx_as_status_errors():
    server = serve(404)
    try:
        obj = run_real_wrk(server.server_address[1])
    finally:
        server.shutdown()
    assert obj["requests"] > 0
    assert obj["errors"]["status"] == obj["requests"]


def test_command_line_paced():
    cmd = wrk.wrk_command("http://127.0.0.1:8088/", conns=100, threads=2, duration_s=3, timeout_s=5, rate=5000)
    assert cmd[cmd.index("-s") + 1] == wrk.PACED_SCRIPT_IN_IMAGE
    assert cmd[-3:] == ["--", "5000", "2"]  # total rate and threads: each thread paces its share


def run_paced_wrk(port, rate, threads, seconds=2):
    import subprocess

    script = str(wrk.SCRIPT_ON_HOST.with_name("paced.lua"))
    cmd = wrk.wrk_command(f"http://127.0.0.1:{port}/", conns=8, threads=threads, duration_s=seconds,
                          timeout_s=2, rate=rate, script=script)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return wrk.parse_wrk_json(proc.stdout)


@needs_wrk
@pytest.mark.parametrize("rate, threads", [(200, 1), (400, 2)])
def test_paced_lua_offers_the_rate_it_is_given(rate, threads):
    server = serve(200)
    try:
        free = run_real_wrk(server.server_address[1])["requests_per_s"]
        paced = run_paced_wrk(server.server_address[1], rate, threads)
    finally:
        server.shutdown()
    assert free > 2 * rate  # the server could go faster: the pacing is what holds wrk back
    assert paced["requests_per_s"] == pytest.approx(rate, rel=0.1)
    assert paced["errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0}
    schedule = paced["paced"]
    assert schedule["threads"] == threads
    assert schedule["lapsed_slots"] <= 0.1 * rate * 2  # only a stall of this machine lapses any
    assert 0 <= schedule["ramp_ms_mean"] <= schedule["ramp_ms_max"] < 1000
    # every completed request took a slot; idle connections hold one more each when wrk stops
    assert paced["requests"] <= schedule["slots"] <= paced["requests"] + 8 + threads
    assert 1.0 < paced_window_s(paced) <= paced["duration_us"] / 1e6
    assert achieved_rate(paced) == pytest.approx(rate, rel=0.1)


@needs_wrk
def test_paced_lua_counts_the_slots_it_lets_lapse_when_the_server_holds_every_connection():
    server = serve(200, delay_s=0.3)  # 8 connections x ~3 responses/s: far below 400/s
    try:
        paced = run_paced_wrk(server.server_address[1], 400, 1)
    finally:
        server.shutdown()
    assert paced["paced"]["lapsed_slots"] > 400  # most of 2 s worth of slots could not be taken
    assert paced["paced"]["window_ms_mean"] > 1500  # the schedule ran; the server held it back
    assert achieved_rate(paced) < 0.2 * 400


@needs_wrk
def test_paced_lua_refuses_a_missing_rate():
    import subprocess

    server = serve(200)
    try:
        cmd = ["wrk", "-t1", "-c2", "-d1s", "-s", str(wrk.SCRIPT_ON_HOST.with_name("paced.lua")),
               f"http://127.0.0.1:{server.server_address[1]}/"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    finally:
        server.shutdown()
    assert "paced.lua needs -- RATE THREADS" in proc.stdout + proc.stderr


def test_command_line_with_a_scheduled_window():
    window = Window(ready="/run/zcb-loadgen/w3.ready", go="/run/zcb-loadgen/w3.go")
    cmd = wrk.wrk_command("http://127.0.0.1:8088/", conns=100, threads=2, duration_s=32, timeout_s=5, rate=5000,
                          window=window)
    assert cmd[-6:] == ["--", "5000", "2", "100", "/run/zcb-loadgen/w3.ready", "/run/zcb-loadgen/w3.go"]
    with pytest.raises(ValueError, match="needs a rate"):
        wrk.wrk_command("http://127.0.0.1:8088/", conns=100, threads=2, duration_s=3, timeout_s=5, window=window)


class Arrivals(Handler):
    """Records when (monotonic) each request arrived."""
    seen: list = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.seen.append(time.monotonic())
        super().do_GET()


@needs_wrk
@pytest.mark.parametrize("threads", [1, 2])
def test_paced_lua_holds_wrk_to_the_window_the_bench_hands_it(tmp_path, threads):
    """The handshake of a scheduled window, with the host's wrk: the threads say they are ready
    once their connections are open, nothing is sent before the window's start or after its end,
    and wrk stops right after it (its -d, 20 s, is only a backstop)."""
    import subprocess

    handler = type("A", (Arrivals,), {"seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()

    class Directory:
        directory = tmp_path

    handshake = Handshake(Directory, "w0")
    window = Window(ready=str(handshake.ready_fifo), go=str(handshake.go_file))  # the host's paths
    rate, conns = 400, 8
    cmd = wrk.wrk_command(f"http://127.0.0.1:{server.server_address[1]}/", conns=conns, threads=threads,
                          duration_s=20, timeout_s=2, rate=rate, window=window,
                          script=str(wrk.SCRIPT_ON_HOST.with_name("paced.lua")))
    try:
        launched = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = handshake.wait_ready(threads, timeout_s=10)
        time.sleep(0.2)  # nothing may be sent while the window is not known
        assert handler.seen == []
        start = time.monotonic() + 0.01
        handshake.go(start, start + 1.0)
        stdout, stderr = proc.communicate(timeout=15)
        ended = time.monotonic()
    finally:
        handshake.close()
        server.shutdown()
    assert proc.returncode == 0, stderr
    result = wrk.parse_wrk_json(stdout)
    assert launched < ready < start
    assert min(handler.seen) >= start and max(handler.seen) < start + 1.0 + 0.05
    assert result["requests"] == len(handler.seen) == pytest.approx(rate, abs=threads + 1)
    paced = result["paced"]
    assert paced["window_ms_mean"] == pytest.approx(1000.0) and paced["parked"] == conns
    assert paced["window_start_ms"] == pytest.approx(start * 1e3, abs=0.01)
    assert achieved_rate(result) == pytest.approx(rate, rel=0.02)
    assert ended - (start + 1.0) < 5  # stopped by the window, not by -d
