"""The playbook parses and passes ansible-lint's production profile."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from zcbench.host.provision import ANSIBLE_CONFIG, PLAYBOOK, PLAYBOOKS

pytestmark = pytest.mark.provisioning

VENV_BIN = Path(sys.executable).parent


def _env() -> dict:
    return {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_CONFIG), "PATH": f"{VENV_BIN}:{os.environ['PATH']}",
            "ANSIBLE_NOCOLOR": "1", "NO_COLOR": "1"}


def test_playbook_syntax_check():
    done = subprocess.run(
        [VENV_BIN / "ansible-playbook", "--syntax-check", str(PLAYBOOK)],
        cwd=PLAYBOOKS, env=_env(), capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ansible_lint_production_profile():
    done = subprocess.run(
        [VENV_BIN / "ansible-lint", "--offline", "--nocolor"],
        cwd=PLAYBOOKS, env=_env(), capture_output=True, text=True, timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Profile 'production' was required, and it passed" in output, output
