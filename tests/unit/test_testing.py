"""zcbench.devtools.testing: what `invoke test` runs."""

from pathlib import Path

from zcbench.devtools import testing


def pytest_args(fast: bool) -> list[str]:
    command = testing.pytest_command(Path("/tmp/junit.xml"), fast=fast, keyword="", verbose=False)
    return command[command.index("pytest") + 1:]  # after `python -m pytest`


def test_fast_leaves_out_the_docker_and_the_lab_tests():
    fast = pytest_args(fast=True)
    assert fast[fast.index("-m") + 1] == "not docker and not lab"
    assert "-m" not in pytest_args(fast=False)
