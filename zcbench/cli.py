"""The `zcbench` command (and `python -m zcbench`): invoke's own program over zcbench.tasks, so
`zcbench bench --repeat 10` is `invoke bench --repeat 10` without a checkout's tasks.py."""

from invoke import Program

from zcbench import __version__
from zcbench.tasks import namespace

program = Program(name="zcbench", binary="zcbench", version=__version__, namespace=namespace)


def main() -> None:
    program.run()
