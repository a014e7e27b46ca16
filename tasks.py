"""invoke tasks: parse and validate arguments, call one function of the zcbench package, print.

Run `invoke --list` for the tasks and `invoke --help TASK` for each one's options.
"""

from __future__ import annotations

import sys

from invoke import task


def _fail(message: str, code: int = 2) -> None:
    """One clear line on stderr and a non-zero exit (invoke would print a traceback)."""
    print(f"zcbench: {message}", file=sys.stderr)
    raise SystemExit(code)


# --- native server --------------------------------------------------------------------------


@task(help={"asan": "also build the AddressSanitizer + UBSan binary", "fuzz": "also build the libFuzzer target"})
def server(c, asan=False, fuzz=False):
    """Build the native io_uring HTTP server (server/build/zcb-server)."""
    targets = ["all"] + (["asan"] if asan else []) + (["fuzz"] if fuzz else [])
    c.run(f"make -C server {' '.join(targets)}")


# --- tests ----------------------------------------------------------------------------------


@task(help={"fast": "only what needs no Docker engine", "k": "pytest -k expression", "verbose": "pytest -v"})
def test(c, fast=False, k="", verbose=False):
    """Run the whole test suite (unit, server, provisioning, Docker) and print a summary."""
    from zcbench import testing

    sys.exit(testing.run_suite(fast=fast, keyword=k, verbose=verbose))
