"""Validating what zcbench writes against its JSON Schemas (zcbench/schemas), for the tests.

    problems(name, data) -> list[str]     one line per violation ('groups/0/arm: ...'); [] = valid
    run_dir_problems(run_dir) -> list[str] every JSON file of a run directory, each against the
                                          schema core.rundir names for it (samples line by line)
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator

from zcbench import schemas
from zcbench.core import rundir


@lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    schema = schemas.load(name)
    Draft202012Validator.check_schema(schema)  # a broken schema would pass everything
    return Draft202012Validator(schema)


def problems(name: str, data) -> list[str]:
    """Every way `data` breaks schema `name`, one line each (where, then what)."""
    return [f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in sorted(validator(name).iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))]


def run_dir_problems(run_dir: Path) -> list[str]:
    """Every JSON file of a run directory that has one, validated; each line names its file."""
    found = []
    for file_name, schema_name in rundir.SCHEMA_NAMES.items():
        path = Path(run_dir) / file_name
        if not path.exists():
            continue
        if file_name == rundir.SAMPLES:
            documents = [(f"{file_name}:{n}", json.loads(line))
                         for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
        else:
            documents = [(file_name, json.loads(path.read_text()))]
        found += [f"{where}: {problem}" for where, data in documents for problem in problems(schema_name, data)]
    return found
