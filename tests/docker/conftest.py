"""Docker test fixtures: the project's images (built or reused, never pulled), a client, a
run id whose containers are removed afterwards, and a one-call server + wrk helper.

Ryuk (testcontainers' reaper) would pull an image: it is disabled (tests/conftest.py) and
cleanup goes by the `zcbench.run` label instead.
"""

from __future__ import annotations

import os
import uuid

import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from docker_helpers import free_port  # noqa: E402

from zcbench.measure import containers
from zcbench.measure import images  # noqa: E402


def pytest_collection_modifyitems(items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def docker_client():
    try:
        return containers.docker_client()
    except containers.DockerUnavailable as exc:
        pytest.fail(f"{exc} (Docker tests need the engine: `invoke provision`)")


@pytest.fixture(scope="session")
def zcbench_images(docker_client):
    """Build whatever image is missing or stale (debootstrap on a fresh machine: minutes)."""
    results = images.ensure_images(docker_client, log=lambda line: print(line, flush=True))
    return {r.name: r.image_id for r in results}


@pytest.fixture
def run_id(docker_client):
    """A label value for this test's containers; whatever carries it is removed afterwards."""
    rid = f"test-{uuid.uuid4().hex[:10]}"
    yield rid
    containers.remove_run_containers(docker_client, rid)


@pytest.fixture(scope="session")
def privilege(docker_client, zcbench_images):
    """--privileged, or this host's fallback (found once per session)."""
    rid = f"test-probe-{uuid.uuid4().hex[:6]}"
    try:
        return containers.privilege_options(docker_client, images.TAGS["loadgen"], rid)
    finally:
        containers.remove_run_containers(docker_client, rid)


@pytest.fixture
def port():
    return free_port()
