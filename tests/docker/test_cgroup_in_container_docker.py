"""zcbench's cgroup CPU lookup run inside a real container (as the issue found it failing):
this interpreter, the checkout and its venv are bind-mounted read-only into the base image."""

from __future__ import annotations

import sys
import sysconfig
import uuid
from pathlib import Path

import pytest

from zcbench.core.paths import ROOT
from zcbench.measure import containers
from zcbench.measure import images

pytestmark = pytest.mark.docker

PROBE = ("import os; from zcbench.measure import cgroups; "
         "path, kind = cgroups.cgroup_cpu_file(os.getpid()); "
         "print(kind, cgroups.read_cpu_seconds((path, kind)) > 0, path)")


def interpreter_mounts() -> dict:
    """Read-only bind mounts that make this Python runnable at the same paths in the container."""
    base = Path(sys.base_prefix)
    if str(base) != "/usr":  # pyenv, /opt, /usr/local: the whole installation
        paths = [base]
    else:  # the distribution's Python: its binary and standard library only, not all of /usr
        paths = [Path(sys._base_executable).resolve(), Path(sysconfig.get_paths()["stdlib"])]
    paths.append(ROOT)
    return {str(p): {"bind": str(p), "mode": "ro"} for p in paths}


def test_cgroup_lookup_works_inside_a_container(docker_client, zcbench_images):
    run_id = f"test-cgroup-{uuid.uuid4().hex[:8]}"
    python = str(Path(sys.executable))  # the venv's python, under ROOT
    try:
        container = docker_client.containers.create(
            images.TAGS["base"], [python, "-c", PROBE], working_dir=str(ROOT), network_mode="none",
            volumes=interpreter_mounts(), environment={"PYTHONDONTWRITEBYTECODE": "1"},
            labels={containers.RUN_LABEL: run_id, containers.ROLE_LABEL: "cgroup-probe"})
        container.start()
        code = container.wait(timeout=120)["StatusCode"]
        output = container.logs().decode(errors="replace").strip()
    finally:
        containers.remove_run_containers(docker_client, run_id)
    assert code == 0, output
    kind, positive, path = output.splitlines()[-1].split(" ", 2)
    assert kind in ("v1", "v2") and positive == "True" and path.startswith("/sys/fs/cgroup")
