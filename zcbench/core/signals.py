"""SIGTERM as an exception, and cleanup that a second signal cannot cut short: a run or a lab
killed by `kill` or a CI timeout still removes what it made."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from contextlib import contextmanager


@contextmanager
def sigterm_raises(exception: Callable[[int], BaseException]):
    """Inside the block SIGTERM raises exception(signum), as Ctrl-C raises KeyboardInterrupt.
    Signals belong to the main thread: elsewhere the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise exception(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def signals_deferred():
    """SIGINT and SIGTERM ignored inside the block (cleanup runs to its end)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
