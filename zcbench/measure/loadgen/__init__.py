"""measure.loadgen: the load generators, one implementation per generator behind one interface
(base.LoadGenerator). The bench asks this registry for the one `--loadgen` names and never
imports a generator itself; adding one is a module here plus one register() line below (or a
register() call of its own, as the tests' fake generator does).
"""

from __future__ import annotations

from zcbench.measure.loadgen.base import LoadGenerator, LoadgenError, LoadRun  # noqa: F401 - the interface
from zcbench.measure.loadgen.wrk import Wrk

DEFAULT = "wrk"
GENERATORS: dict[str, LoadGenerator] = {}


def register(generator: LoadGenerator) -> LoadGenerator:
    if not generator.name or generator.name in GENERATORS:
        raise ValueError(f"load generator {generator.name!r}: no name, or already registered")
    GENERATORS[generator.name] = generator
    return generator


def unregister(name: str) -> None:
    GENERATORS.pop(name, None)


def get(name: str) -> LoadGenerator:
    try:
        return GENERATORS[name]
    except KeyError:
        raise KeyError(f"unknown load generator {name!r}; known: {', '.join(GENERATORS)}") from None


register(Wrk())
