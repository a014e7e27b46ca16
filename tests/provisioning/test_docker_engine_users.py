"""The docker role lets the inventory's SSH login use the engine (build and bench reach a
remote engine over ssh:// as that login): it joins the engine's socket group, once."""

from __future__ import annotations

import grp
import subprocess
import uuid

import pytest
from provisioning_helpers import changed_tasks

pytestmark = pytest.mark.provisioning


@pytest.fixture
def login_and_group():
    """A throwaway login and group (not this machine's docker group), removed afterwards."""
    suffix = uuid.uuid4().hex[:6]
    user, group = f"zcbu{suffix}", f"zcbg{suffix}"
    subprocess.run(["groupadd", group], check=True)
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user], check=True)
    try:
        yield user, group
    finally:
        subprocess.run(["userdel", user], check=False)
        subprocess.run(["groupdel", group], check=False)


def engine_users_play(users: list[str], group: str) -> dict:
    return {
        "name": "docker role's engine users",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{
            "name": "Run the docker role's engine-users tasks",
            "ansible.builtin.include_role": {"name": "docker", "tasks_from": "engine_users"},
            "vars": {"docker_engine_users": users, "docker_engine_group": group},
        }],
    }


def test_the_login_joins_the_engines_group_once(run_play, login_and_group):
    user, group = login_and_group
    first = run_play(engine_users_play([user], group))
    assert first.ok, first.failures
    assert first.changed == 1 and user in grp.getgrnam(group).gr_mem
    second = run_play(engine_users_play([user], group))
    assert second.ok and second.changed == 0, changed_tasks(second)


def test_a_local_or_root_login_joins_nothing(run_play, login_and_group):
    _, group = login_and_group
    # the role's own default: the inventory's ansible_user over SSH, nobody for a local connection
    play = engine_users_play([], group)
    del play["tasks"][0]["vars"]["docker_engine_users"]
    done = run_play(play)
    assert done.ok and done.changed == 0 and grp.getgrnam(group).gr_mem == []
