"""invoke's entry point in a checkout: the tasks live in zcbench.tasks (also the `zcbench`
command of an installed package)."""

from zcbench.tasks import namespace as ns  # noqa: F401 - invoke looks for `ns`
