"""`python -m zcbench`: the `zcbench` command."""

from zcbench.cli import main

main()
