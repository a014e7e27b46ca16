"""A bounded libFuzzer run of the request parser (the longer run is reported in the notes)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from zcbench.core.paths import ROOT

pytestmark = pytest.mark.server

SERVER = ROOT / "server"


def test_request_parser_survives_fuzzing(tmp_path):
    subprocess.run(["make", "-s", "-C", str(SERVER), "fuzz"], check=True)
    corpus = tmp_path / "corpus"
    shutil.copytree(SERVER / "fuzz" / "corpus", corpus)
    proc = subprocess.run(
        [str(SERVER / "build" / "fuzz-http"), "-max_total_time=20", "-max_len=1024", "-timeout=5", str(corpus)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done " in proc.stderr
