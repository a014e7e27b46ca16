"""What the unit area's modules share: the recorded fixture runs, each copied and rendered once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from zcbench.present import report

RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"


class RenderedRuns:
    """name -> (run_dir, summary): a fixture run copied and rendered the first time a test asks
    for it (rendering one takes seconds; three modules read the same four). Tests only read them:
    a test that changes a run copies it into its own tmp_path."""

    def __init__(self, base: Path):
        self.base = base
        self.done: dict[str, tuple[Path, object]] = {}

    def __getitem__(self, name: str) -> tuple[Path, object]:
        if name not in self.done:
            run_dir = Path(shutil.copytree(RUNS / name, self.base / name))
            self.done[name] = (run_dir, report.render_run(run_dir))
        return self.done[name]


@pytest.fixture(scope="session")
def rendered_runs(tmp_path_factory) -> RenderedRuns:
    return RenderedRuns(tmp_path_factory.mktemp("rendered-runs"))
