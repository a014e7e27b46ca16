"""daemon.json is merged into, never replaced, and a revert gives back the very same bytes."""

from __future__ import annotations

import json
import os

import pytest
from provisioning_helpers import changed_tasks, task_named

from zcbench.host.provision import load_playbook_code

pytestmark = pytest.mark.provisioning

# a host's own daemon.json, formatted as no serializer would write it
HOSTS_OWN = ('{"data-root": "/srv/docker",\t"storage-driver": "overlay2",\n'
             ' "log-driver": "journald", "registry-mirrors": ["https://mirror.example"],\n'
             ' "default-ulimits": {"core": {"Name": "core", "Soft": 0, "Hard": 0}}}')
MERGE_TASK = "Merge the container defaults into daemon.json"


@pytest.fixture(scope="module")
def daemon_json():
    return load_playbook_code("roles/docker/library/zcbench_daemon_json.py")


def test_merge_keeps_every_key_it_does_not_set(daemon_json):
    current = json.loads(HOSTS_OWN)
    result = daemon_json.merged(current, {"memlock": "8388608", "nofile": 1024}, {"live-restore": True})
    assert result["data-root"] == "/srv/docker" and result["registry-mirrors"] == ["https://mirror.example"]
    assert result["default-ulimits"]["core"] == {"Name": "core", "Soft": 0, "Hard": 0}
    assert result["default-ulimits"]["memlock"] == {"Name": "memlock", "Soft": 8388608, "Hard": 8388608}
    assert result["live-restore"] is True
    assert current == json.loads(HOSTS_OWN)  # the input is not modified


@pytest.mark.parametrize("text", ["[1, 2]", "{not json"])
def test_a_daemon_json_that_is_no_object_is_an_error(daemon_json, tmp_path, text):
    path = tmp_path / "daemon.json"
    path.write_text(text)
    with pytest.raises(daemon_json.DaemonJsonError, match="daemon.json"):
        daemon_json.read_settings(str(path))


def test_an_empty_or_missing_file_is_an_empty_object(daemon_json, tmp_path):
    assert daemon_json.read_settings(str(tmp_path / "none.json")) == ({}, None)
    (tmp_path / "empty.json").write_text("\n")
    assert daemon_json.read_settings(str(tmp_path / "empty.json")) == ({}, "\n")


def daemon_json_play(tmp_path, tasks_from: str) -> dict:
    return {
        "name": f"docker role's {tasks_from} on a throwaway daemon.json",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{
            "name": "Run the docker role's daemon.json tasks",
            "ansible.builtin.include_role": {"name": "docker", "tasks_from": tasks_from},
            "vars": {
                "docker_daemon_json": str(tmp_path / "etc" / "daemon.json"),
                "docker_originals_dir": str(tmp_path / "originals"),
                "docker_manage_engine": False,  # never restart this machine's engine
                "docker_memlock_bytes": 65536,
                "docker_nofile": 1024,
            },
        }],
    }


@pytest.mark.parametrize("original", [HOSTS_OWN, None], ids=["hosts-own-file", "no-file"])
def test_apply_merges_is_idempotent_and_revert_restores_byte_for_byte(tmp_path, run_play, original):
    path = tmp_path / "etc" / "daemon.json"
    path.parent.mkdir()
    if original is not None:
        path.write_text(original)
        os.chmod(path, 0o600)

    first = run_play(daemon_json_play(tmp_path, "daemon_json"))
    assert first.ok, first.failures
    assert task_named(first, MERGE_TASK).status == "changed"
    written = json.loads(path.read_text())
    assert written["default-ulimits"]["nofile"] == {"Name": "nofile", "Soft": 1024, "Hard": 1024}
    if original is not None:
        assert {k: written[k] for k in ("data-root", "storage-driver", "log-driver", "registry-mirrors")} == {
            k: v for k, v in json.loads(HOSTS_OWN).items() if k != "default-ulimits"}
        assert written["default-ulimits"]["core"]["Name"] == "core"

    second = run_play(daemon_json_play(tmp_path, "daemon_json"))
    assert second.ok and second.changed == 0, changed_tasks(second)

    reverted = run_play(daemon_json_play(tmp_path, "revert"))
    assert reverted.ok, reverted.failures
    if original is None:
        assert not path.exists()
    else:
        assert path.read_bytes() == original.encode()
        assert os.stat(path).st_mode & 0o777 == 0o600


def test_an_unreadable_daemon_json_fails_in_one_line_and_stays(tmp_path, run_play):
    path = tmp_path / "etc" / "daemon.json"
    path.parent.mkdir()
    path.write_text("{broken")
    result = run_play(daemon_json_play(tmp_path, "daemon_json"))
    assert not result.ok
    assert result.failures[0].task.endswith(MERGE_TASK)
    assert "is not valid JSON" in result.failures[0].message
    assert path.read_text() == "{broken"
