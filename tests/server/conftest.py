"""Fixtures that run the native server directly (no Docker): both the release and the
AddressSanitizer + UBSan builds, and clients that talk to it."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from zcbench.core import arms
from zcbench.core.paths import ROOT
from zcbench.measure import counters

SERVER_DIR = ROOT / "server"
BUILDS = {"release": SERVER_DIR / "build" / "zcb-server", "asan": SERVER_DIR / "build" / "zcb-server-asan"}
ARMS = tuple(arm.name for arm in arms.server_modes())  # every send mode of zcb_modes.h
ADAPTIVE_MIN_BYTES = 10240  # the server's default --zc-min-bytes
BODY_ALPHABET = b"0123456789abcdefghijklmnopqrstuvwxyz"
WRK_SCRIPT = ROOT / "loadgen" / "report.lua"
WRK_PIPELINE_SCRIPT = ROOT / "loadgen" / "pipeline.lua"

pytestmark = pytest.mark.server


def expected_response(size: int, close: bool = False, keep_alive: bool = False) -> bytes:
    """The 200 response the server documents: exactly `size` bytes, body[i] = ALPHABET[i % 36].

    Where no Content-Length fits exactly (its digit count changes with the body's length), one
    space of optional white space after "Content-Length:" pads the head by a byte."""
    extra = b"Connection: close\r\n" if close else b"Connection: keep-alive\r\n" if keep_alive else b""
    for pad in (b"", b" "):
        for digits in range(1, 21):
            head_len = (len(b"HTTP/1.1 200 OK\r\nContent-Length: \r\nContent-Type: text/plain\r\n\r\n")
                        + len(pad) + digits + len(extra))
            body_len = size - head_len
            if body_len >= 0 and len(str(body_len)) == digits:
                head = b"HTTP/1.1 200 OK\r\nContent-Length: %s%d\r\nContent-Type: text/plain\r\n%s\r\n" % (
                    pad, body_len, extra)
                body = (BODY_ALPHABET * (body_len // 36 + 1))[:body_len]
                return head + body
    raise ValueError(f"no response of {size} bytes")


def head_of(response: bytes) -> bytes:
    return response[: response.index(b"\r\n\r\n") + 4]


def sends(totals: dict) -> int:
    """Every send, whatever its path: regular, zero-copy, or a splice chain."""
    return totals["sends_regular"] + totals["sends_zc"] + totals["splices"]


def sends_zero_copy(arm: str, size: int, min_bytes: int = ADAPTIVE_MIN_BYTES) -> bool:
    """Whether this arm's responses of `size` bytes go by a zero-copy send of the user's pages
    (splice sends from the page cache; adaptive only from min_bytes up)."""
    mode = arms.get(arm)
    return mode.copied_share_applies and (arm != "adaptive" or size >= min_bytes)


@pytest.fixture(scope="session")
def built_servers() -> dict[str, Path]:
    """Build both binaries once per session (make is a no-op when they are current)."""
    subprocess.run(["make", "-s", "-C", str(SERVER_DIR), "all", "asan"], check=True)
    return BUILDS


@pytest.fixture(params=list(BUILDS), scope="session")
def server_binary(request, built_servers) -> Path:
    return built_servers[request.param]


class RunningServer:
    """One server process on an ephemeral port, stopped with SIGTERM like a container is."""

    def __init__(self, binary: Path, args: list[str], stats_file: Path, memlock: int | None = None,
                 nofile: int | None = None, uid: int | None = None, optmem_max: int | None = None):
        self.stats_file = stats_file
        self.final: dict | None = None
        # optmem_max: the server runs in a network namespace of its own (loopback up) whose
        # net.core.optmem_max is this (per namespace since Linux 6.x): the host's stays as it is.
        # Its clients join it through client_prefix.
        netns = [] if optmem_max is None else [
            "unshare", "-n", "sh", "-c",
            f'ip link set lo up && echo {optmem_max} > /proc/sys/net/core/optmem_max && exec "$0" "$@"']
        env = dict(os.environ, ASAN_OPTIONS="abort_on_error=0:detect_leaks=1", UBSAN_OPTIONS="print_stacktrace=1")

        def limits():
            if memlock is not None:
                resource.setrlimit(resource.RLIMIT_MEMLOCK, (memlock, memlock))
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
            else:
                soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
            if uid is not None:  # after the limits: an unprivileged uid could not raise them
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)

        self.proc = subprocess.Popen(
            [*netns, str(binary), "--port", "0", "--stats-file", str(stats_file), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, preexec_fn=limits,
        )
        self.banner = self.proc.stderr.readline().decode()
        if "listening on" not in self.banner:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {self.banner}{self.proc.stderr.read().decode()}")
        self.port = int(self.banner.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
        self.client_prefix = [] if optmem_max is None else ["nsenter", f"--net=/proc/{self.proc.pid}/ns/net"]

    def counters(self) -> dict[str, int]:
        return counters.read_stats_file(self.stats_file)["totals"]

    def wait_counters(self, predicate, timeout: float = 5.0) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while True:
            totals = self.counters()
            if predicate(totals) or time.monotonic() > deadline:
                return totals
            time.sleep(0.02)

    def stop(self, timeout: float = 5.0) -> dict:
        """SIGTERM; returns the final JSON. Fails on a non-zero exit or a sanitizer report."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=timeout)
        self.stop_seconds = time.monotonic() - started
        self.stderr = err.decode()
        assert "Sanitizer" not in self.stderr and "runtime error" not in self.stderr, self.stderr
        assert self.proc.returncode == 0, f"exit {self.proc.returncode}: {self.stderr}"
        self.final = counters.parse_final_json(out.decode())
        return self.final

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def start_server(server_binary, tmp_path):
    """start_server(*args, memlock=None, nofile=None, uid=None) -> RunningServer; every server is
    stopped at teardown. memlock / nofile set both the soft and the hard limit of the server
    process; uid runs it as that user (memlock is charged per user: a uid of its own keeps other
    processes' charges out of a test that counts ENOMEM)."""

    def start(*args: str, memlock: int | None = None, nofile: int | None = None, uid: int | None = None,
              binary: Path | None = None, optmem_max: int | None = None) -> RunningServer:
        stats_dir = tmp_path
        if uid is not None:
            # pytest's tmp_path is private to root: give the other uid a directory it can write
            stats_dir = Path(tempfile.mkdtemp(prefix="zcb-test-"))
            stats_dir.chmod(0o777)
            shared_dirs.append(stats_dir)
        server = RunningServer(binary or server_binary, list(args), stats_dir / f"stats{len(started)}", memlock,
                               nofile, uid, optmem_max)
        started.append(server)
        return server

    started: list[RunningServer] = []
    shared_dirs: list[Path] = []
    yield start
    for server in started:
        server.kill()
    for directory in shared_dirs:
        shutil.rmtree(directory, ignore_errors=True)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_until_close(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def get(path: str = "/", extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n".encode()


def run_wrk(port: int, conns: int, seconds: int, threads: int = 1, script: Path = WRK_SCRIPT,
            script_args: tuple[str, ...] = (), prefix: list[str] = ()) -> dict:
    """Real wrk against the server; returns the JSON object its loadgen/ script prints. prefix:
    run it so (e.g. a RunningServer's client_prefix, to join its network namespace)."""
    proc = subprocess.run(
        [*prefix, "wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--timeout", "5s", "-s", str(script),
         f"http://127.0.0.1:{port}/", *(["--", *script_args] if script_args else [])],
        capture_output=True, text=True, timeout=seconds + 60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON from {WRK_SCRIPT.name}: {proc.stdout}"
    return json.loads(lines[-1])
