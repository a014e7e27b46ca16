"""Commands run by a loadgen container's own main process (loadgen/launcher.sh) instead of
`docker exec`: on this machine a `docker exec` took 45-90 ms before wrk started, varying from
one run to the next, and every scheduled window's lead had to cover its worst; the launcher
starts wrk in about a millisecond. The two talk through a directory of this host mounted into
the container: a command file and a FIFO of requests one way, a FIFO of exit statuses back.
A loadgen container on another host keeps `docker exec` (its directory is not here).
"""

from __future__ import annotations

import itertools
import os
import select
import shlex
import shutil
import time
from pathlib import Path

MOUNT = "/run/zcb-loadgen"  # where the container sees the directory
SCRIPT_IN_IMAGE = "/loadgen/launcher.sh"
REQUESTS, DONE = "requests", "done"
#: How often a waiting run checks that its container still lives (a removed container's launcher
#: never answers).
ALIVE_CHECK_S = 1.0


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
        try:
            fd = os.open(self.directory / REQUESTS, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:  # ENXIO: nobody reads the FIFO
            raise LauncherError(f"the loadgen container's launcher is not running ({exc.strerror})") from None
        try:
            os.write(fd, f"{name}\n".encode())
        finally:
            os.close(fd)
        status = self._wait(name, time.monotonic() + timeout_s, alive)
        out, err = (self.directory / f"{name}.{kind}" for kind in ("out", "err"))
        try:
            return status, out.read_text(errors="replace"), err.read_text(errors="replace")
        finally:
            for path in (out, err, self.directory / f"{name}.cmd"):
                path.unlink(missing_ok=True)

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
