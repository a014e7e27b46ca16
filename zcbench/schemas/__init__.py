"""The JSON Schemas of what zcbench writes: the files of a run directory (core.rundir names
their versions and which schema each follows) and the JSON that `--json` prints (compare,
doctor). Package data: an installed zcbench carries them.

    load(name) -> dict      zcbench/schemas/NAME.schema.json
    names() -> list[str]    every schema this package holds

Validation is the tests' (zcbench.devtools.schemas, with jsonschema); nothing here needs more
than the standard library.
"""

from __future__ import annotations

import json
from importlib import resources

SUFFIX = ".schema.json"


def names() -> list[str]:
    return sorted(entry.name.removesuffix(SUFFIX) for entry in resources.files(__package__).iterdir()
                  if entry.name.endswith(SUFFIX))


def load(name: str) -> dict:
    """One schema by name ('sample', 'summary', ...); KeyError naming the known ones."""
    path = resources.files(__package__).joinpath(name + SUFFIX)
    if not path.is_file():
        raise KeyError(f"no schema {name!r}; known: {', '.join(names())}")
    return json.loads(path.read_text(encoding="utf-8"))


def version(name: str) -> int:
    """The version a schema describes: the constant its "schema" property holds."""
    return load(name)["properties"]["schema"]["const"]
