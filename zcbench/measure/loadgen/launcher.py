"""Commands run by a loadgen container's own main process (loadgen/launcher.sh) instead of
`docker exec`: on this machine a `docker exec` took 45-90 ms before wrk started, varying from
one run to the next, and every scheduled window's lead had to cover its worst; the launcher
starts wrk in about a millisecond. The two talk through a directory of this host mounted into
the container: a command file and a FIFO of requests one way, a FIFO of exit statuses back.
A loadgen container on another host keeps `docker exec` (its directory is not here).
"""

from __future__ import annotations

import errno
import itertools
import os
import select
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

MOUNT = "/run/zcb-loadgen"  # where the container sees the directory
SCRIPT_IN_IMAGE = "/loadgen/launcher.sh"
REQUESTS, DONE = "requests", "done"
#: How often a waiting run checks that its container still lives (a removed container's launcher
#: never answers).
ALIVE_CHECK_S = 1.0
#: How long a container just started may take to open the requests FIFO.
START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Window:
    """How a generator that schedules windows agrees its measuring window with the bench (paths
    as its container sees them): once its connections are open it says so on the FIFO `ready`,
    one line a thread, and waits for the file `go` to hold "START_MS END_MS" on the host's
    CLOCK_MONOTONIC (Docker makes no time namespace: the bench's time.monotonic()); it offers
    its load from START_MS, nothing from END_MS on, then ends (measure.windows)."""
    ready: str
    go: str


class LauncherError(RuntimeError):
    """The launcher is not running or did not answer in time."""


class Launcher:
    """The host side of one loadgen container's launcher."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        for fifo in (REQUESTS, DONE):
            os.mkfifo(self.directory / fifo, 0o600)
        # read-write: opening never blocks, and the launcher's writes always find a reader
        self.done_fd = os.open(self.directory / DONE, os.O_RDWR | os.O_NONBLOCK)
        self.pending = b""
        self.names = (f"r{n}" for n in itertools.count())

    def command(self) -> list[str]:
        """The container's command."""
        return ["sh", SCRIPT_IN_IMAGE, MOUNT]

    def mount(self) -> dict:
        return {str(self.directory): {"bind": MOUNT, "mode": "rw"}}

    def run(self, argv: list[str], timeout_s: float, alive=lambda: True) -> tuple[int, str, str]:
        """Run `argv` in the container; (exit status, stdout, stderr). `alive()` says whether
        the container still runs (checked while waiting)."""
        name = next(self.names)
        (self.directory / f"{name}.cmd").write_text(shlex.join(argv))  # read after the request below
        deadline = time.monotonic() + timeout_s
        fd = self._open_requests(min(deadline, time.monotonic() + START_TIMEOUT_S), alive)
        try:
            os.write(fd, f"{name}\n".encode())
        finally:
            os.close(fd)
        status = self._wait(name, deadline, alive)
        out, err = (self.directory / f"{name}.{kind}" for kind in ("out", "err"))
        try:
            return status, out.read_text(errors="replace"), err.read_text(errors="replace")
        finally:
            for path in (out, err, self.directory / f"{name}.cmd"):
                path.unlink(missing_ok=True)

    def _open_requests(self, deadline: float, alive) -> int:
        """The requests FIFO for writing, once the launcher reads it (a container just started
        may not have opened it yet: ENXIO until then)."""
        while True:
            try:
                return os.open(self.directory / REQUESTS, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO or time.monotonic() > deadline or not alive():
                    raise LauncherError(f"the loadgen container's launcher is not running ({exc.strerror})") from None
            time.sleep(0.01)

    def _wait(self, name: str, deadline: float, alive) -> int:
        while True:
            while b"\n" in self.pending:
                line, self.pending = self.pending.split(b"\n", 1)
                done, _, status = line.decode().partition(" ")
                if done == name:
                    return int(status)
            left = deadline - time.monotonic()
            if left <= 0:
                raise LauncherError(f"the loadgen container's launcher did not finish {name} in time")
            readable, _, _ = select.select([self.done_fd], [], [], min(left, ALIVE_CHECK_S))
            if readable:
                self.pending += os.read(self.done_fd, 4096)
            elif not alive():
                raise LauncherError("the loadgen container stopped while a run was going")

    def close(self) -> None:
        os.close(self.done_fd)
        shutil.rmtree(self.directory, ignore_errors=True)


class Handshake:
    """One scheduled window agreed with a generator through the launcher's directory
    (loadgen.base.Window): a FIFO its threads say they are ready on, and a file the bench writes
    the window into."""

    def __init__(self, launcher: Launcher, name: str):
        self.ready_fifo = launcher.directory / f"{name}.ready"
        self.go_file = launcher.directory / f"{name}.go"
        os.mkfifo(self.ready_fifo, 0o600)
        # read-write: the threads' opens never block, and their lines wait here until read
        self.fd = os.open(self.ready_fifo, os.O_RDWR | os.O_NONBLOCK)
        self.window = Window(ready=f"{MOUNT}/{self.ready_fifo.name}", go=f"{MOUNT}/{self.go_file.name}")

    def wait_ready(self, threads: int, timeout_s: float, alive=lambda: True) -> float:
        """Wait until `threads` threads said they are ready; when the last one did (monotonic)."""
        deadline, lines = time.monotonic() + timeout_s, b""
        while lines.count(b"\n") < threads:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LauncherError(f"the generator's threads were not ready in {timeout_s:.0f} s")
            readable, _, _ = select.select([self.fd], [], [], min(left, ALIVE_CHECK_S))
            if readable:
                lines += os.read(self.fd, 4096)
            elif not alive():
                raise LauncherError("the loadgen container stopped before its generator was ready")
        return time.monotonic()

    def go(self, start_s: float, end_s: float) -> None:
        """The window, in one rename (a thread never reads half of it)."""
        staging = self.go_file.with_suffix(".staging")
        staging.write_text(f"{start_s * 1e3:.3f} {end_s * 1e3:.3f}\n")
        os.replace(staging, self.go_file)

    def close(self) -> None:
        os.close(self.fd)
        for path in (self.ready_fifo, self.go_file):
            path.unlink(missing_ok=True)
