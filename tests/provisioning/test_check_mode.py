"""After `invoke provision`, the whole playbook in check mode against localhost changes nothing."""

from __future__ import annotations

import pytest
from provisioning_helpers import changed_tasks

from zcbench.host import provision

pytestmark = pytest.mark.provisioning


def test_full_playbook_in_check_mode_changes_nothing_on_a_provisioned_host():
    result = provision.run_playbook(check=True)
    assert result.ok, result.failures
    assert any(t.task.startswith("docker : ") for t in result.tasks), "the docker role did not run"
    assert result.changed == 0, (
        f"check mode would change {changed_tasks(result)}: this host is not provisioned "
        "(run `invoke provision` first, as bootstrap.sh test does) or a role is not idempotent"
    )
