"""The manifest: atomic writes, the complete/incomplete mark, git state, host facts fallback."""

import hashlib
import json

import pytest

from zcbench.core import rundir
from zcbench.measure import manifest


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path):
    path = tmp_path / "manifest.json"
    rundir.write_json(path, {"a": 1})
    rundir.write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    circular = {}
    circular["self"] = circular
    with pytest.raises(ValueError):
        rundir.write_json(path, circular)
    assert json.loads(path.read_text()) == {"a": 2}  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_finish_marks_complete_or_incomplete_with_reason():
    start = {"run_id": "r", "complete": False, "incomplete_reason": "running"}
    done = manifest.finish_manifest(start, complete=True, reason=None, timing={"wall_s": 1})
    assert done["complete"] is True and done["incomplete_reason"] is None and done["finished_at"]
    cut = manifest.finish_manifest(start, complete=False, reason="interrupted after 1 of 6 cells",
                                   timing={"wall_s": 1})
    assert cut["complete"] is False and cut["incomplete_reason"].startswith("interrupted")
    assert start["incomplete_reason"] == "running"  # the input is not modified


def test_git_state_of_this_checkout():
    state = manifest.git_state()
    assert state["commit"] is None or len(state["commit"]) == 40
    assert state["dirty"] in (True, False, None)


def test_git_state_outside_a_repository(tmp_path):
    assert manifest.git_state(tmp_path) == {"commit": None, "dirty": None}


def test_host_facts_come_from_the_doctor_collector():
    import os

    facts = manifest.host_facts("lo")
    assert facts["kernel_release"] == os.uname().release and facts["cpu_count"] >= 1
    assert facts["interface"]["name"] == "lo"
    assert facts["io_uring"]["usable"] is True  # the SEND_ZC support the manifest must record


def test_python_packages_are_the_installed_runtime_closure_as_locked():
    from importlib import metadata

    record = manifest.python_packages()
    packages = record["packages"]
    # zcbench's own requirements and theirs (docker -> requests -> urllib3), not the test extras
    assert {"invoke", "docker", "requests", "urllib3", "rich", "scipy", "numpy", "cffi"} <= set(packages)
    assert "pytest" not in packages and "uv" not in packages
    assert all(packages[name] == metadata.version(name) for name in packages)
    assert record["not_as_locked"] == []  # bootstrap.sh installed this venv from requirements.lock


def test_manifest_records_the_rendered_nginx_config():
    from zcbench.measure import nginx
    from zcbench.measure.config import Config
    from zcbench.measure.manifest import _reference

    from zcbench.measure.plan import plan_cells
    from zcbench.measure.servers import server_ports

    config = Config(servers=("zcbench", "nginx"), response_sizes=(88, 65536), port=9123, server_cpus=(1,), nofile=4096)
    cells = plan_cells(config)
    ref = _reference(config, cells, "127.0.0.1")
    small, large = ref["by_response_size"]["88"], ref["by_response_size"]["65536"]
    # each size's nginx listens on its own port of the run's (measure.servers)
    port = {key.response_size: p for key, p in server_ports(config, cells).items() if key.server == "nginx"}
    assert port[88] != port[65536] and 9123 < port[88] < 9123 + 6
    assert f"listen 127.0.0.1:{port[88]} reuseport" in small["nginx_conf"] and "worker_cpu_affinity 10;" in small["nginx_conf"]
    assert 'return 200 "";' in small["nginx_conf"] and small["body_file_sha256"] is None
    assert small["response_size"] == 140  # nginx's own head is longer than 88 B
    body = nginx.body_bytes(large["body_bytes"])
    assert large["body_file_sha256"] == hashlib.sha256(body).hexdigest() and large["response_size"] == 65536
    assert _reference(Config(servers=("zcbench",)), [], "127.0.0.1") is None
