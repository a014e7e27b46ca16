"""Small assertions helpers shared by the provisioning tests."""

from __future__ import annotations

from zcbench.host import provision


def changed_tasks(result: provision.ProvisionResult) -> list[str]:
    return [t.task for t in result.tasks if t.status == "changed"]


def task_named(result: provision.ProvisionResult, suffix: str) -> provision.TaskResult:
    matches = [t for t in result.tasks if t.task.endswith(suffix)]
    assert matches, f"no task ending in {suffix!r} among {[t.task for t in result.tasks]}"
    return matches[-1]
