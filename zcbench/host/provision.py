"""Run the provisioning playbook through ansible-runner and turn its events into one line per task.

ansible-runner pitfalls handled here (DESIGN.md "Ansible facts"): the command line is passed
in full on every run and each run gets a fresh private_data_dir (with suppress_env_files), so
a `--check` never leaks into the next run; the event handler returns True, or runner would
drop the events; the inventory is read and checked first (zcbench.host.inventory), because a mistyped
path would silently become a host name and an inventory without a `server` host would match
nothing and report success. When ansible-playbook fails outside any task (a parse error, a bad
inventory), its own error is passed on and the runner's artifacts are kept for reading.
"""

from __future__ import annotations

import importlib.util
import difflib
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import ansible_runner

from zcbench.host import inventory as hosts
from zcbench.host.inventory import DEFAULT_INVENTORY, PLAYBOOKS, ROLES, desired_settings, role_defaults  # noqa: F401


def load_playbook_code(relative: str):
    """A Python file of the playbooks (a module's helpers, a module_utils file) as a module, so
    the Python side runs the very code the roles run instead of a copy of it."""
    path = PLAYBOOKS / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PLAYBOOK = PLAYBOOKS / "provision.yml"
ANSIBLE_CONFIG = PLAYBOOKS / "ansible.cfg"

# runner event -> status word of the task line
_STATUS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "failed",
    "runner_on_skipped": "skipped",
    "runner_on_unreachable": "unreachable",
}


class ProvisionError(ValueError):
    """Bad input to provisioning (a missing inventory, an unknown tag)."""


@dataclass
class TaskResult:
    task: str
    host: str
    status: str  # ok | changed | skipped | failed | unreachable | ignored
    message: str = ""
    diff: str = ""


@dataclass
class ProvisionResult:
    rc: int
    status: str  # ansible-runner's: successful | failed | timeout | canceled
    elapsed_s: float
    tasks: list[TaskResult] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    reboot_required: bool = False
    # host -> why it needs a reboot (kernel command line not what the playbook wants)
    reboot_reasons: dict = field(default_factory=dict)
    # hosts Ansible runs on (local connection): never rebooted by the play, only told
    reboot_by_hand: list = field(default_factory=list)
    # ansible-playbook's own error lines when it failed outside any task
    error: str = ""
    # the runner's private_data_dir, kept when the run failed (None once removed)
    artifacts: str | None = None

    @property
    def changed(self) -> int:
        return sum(self.stats.get("changed", {}).values())

    @property
    def failures(self) -> list[TaskResult]:
        return [t for t in self.tasks if t.status in ("failed", "unreachable")]

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.failures


def validate_inventory(inventory: str | os.PathLike | None) -> Path:
    """The inventory's path, once it is known to hold a server host and a loadgen host."""
    try:
        return hosts.load_inventory(inventory).path
    except hosts.InventoryError as exc:
        raise ProvisionError(str(exc)) from None


def validate_tags(tags: Iterable[str]) -> list[str]:
    tags = [t.strip() for t in tags if t.strip()]
    unknown = sorted(set(tags) - set(ROLES))
    if unknown:
        raise ProvisionError(f"unknown tag(s) {', '.join(unknown)}; known: {', '.join(ROLES)}")
    return tags


def build_cmdline(*, check: bool, tags: list[str], extravars: dict) -> str:
    """ansible-playbook options; the whole set every time (runner would reuse a stored one)."""
    args = ["--check", "--diff"] if check else []
    if tags:
        args += ["--tags", ",".join(tags)]
    if extravars:
        args += ["--extra-vars", json.dumps(extravars, sort_keys=True)]
    return shlex.join(args)


def _task_name(event_data: dict) -> str:
    task = event_data.get("task", "?")
    role = event_data.get("role")
    return f"{role} : {task}" if role else task


def _message(res: dict, status: str) -> str:
    """What a task line shows after its status: a debug message, a failure's reason, warnings."""
    parts = []
    if status in ("failed", "unreachable", "ignored"):
        parts.append(str(res.get("msg") or "").strip())
        stderr = str(res.get("stderr") or res.get("module_stderr") or "").strip()
        if stderr:
            parts.append(stderr.splitlines()[-1])
    else:  # a debug task's message, or each one of a debug loop's
        for item in [res, *(res.get("results") or [])]:
            if item.get("_ansible_verbose_always") and "msg" in item:
                parts.append(str(item["msg"]))
    parts += [f"warning: {w}" for w in res.get("warnings") or []]
    return "; ".join(" ".join(p.split()) for p in parts if p)


def _diff_text(res: dict) -> str:
    diffs = res.get("diff") or []
    lines: list[str] = []
    for diff in diffs if isinstance(diffs, list) else [diffs]:
        before, after = diff.get("before"), diff.get("after")
        if isinstance(before, str) and isinstance(after, str) and before != after:
            lines += difflib.unified_diff(
                before.splitlines(), after.splitlines(),
                diff.get("before_header", "before"), diff.get("after_header", "after"), lineterm="", n=0,
            )
    return "\n".join(lines)


def task_result(event: dict) -> TaskResult | None:
    """One task line from one runner event; None for events that are not a task's outcome."""
    status = _STATUS.get(event.get("event", ""))
    if status is None:
        return None
    data = event.get("event_data", {})
    res = data.get("res") or {}
    if status == "ok" and res.get("changed"):
        status = "changed"
    if status == "failed" and data.get("ignore_errors"):
        status = "ignored"
    return TaskResult(_task_name(data), data.get("host", "?"), status, _message(res, status), _diff_text(res))


def _facts(event: dict) -> dict:
    return ((event.get("event_data") or {}).get("res") or {}).get("ansible_facts") or {}


def _reboot_required(event: dict) -> bool:
    return str(_facts(event).get("cpu_isolation_reboot_required", "")).lower() == "true"


def ansible_error(stdout: str) -> str:
    """ansible-playbook's own error block ("[ERROR]: ..." or "ERROR! ..." and what follows it)."""
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(("[ERROR]", "ERROR!")):
            return "\n".join(lines[index:]).strip()
    return "\n".join(lines[-10:]).strip()


def format_task(result: TaskResult) -> str:
    line = f"{result.status:>11}  {result.host}  {result.task}"
    return f"{line} — {result.message}" if result.message else line


def run_playbook(
    *,
    playbook: Path = PLAYBOOK,
    inventory: str | os.PathLike | None = None,
    check: bool = False,
    revert: bool = False,
    reboot: bool = False,
    tags: Iterable[str] = (),
    extravars: dict | None = None,
    verbose: bool = False,
    on_task: Callable[[TaskResult], None] | None = None,
) -> ProvisionResult:
    """Run `playbook` once; report each task through `on_task` as it finishes."""
    inventory_path = validate_inventory(inventory)
    extravars = dict(extravars or {})
    if revert:
        extravars["zcbench_state"] = "absent"
    if reboot:
        extravars["cpu_isolation_reboot"] = True
    cmdline = build_cmdline(check=check, tags=validate_tags(tags), extravars=extravars)
    tasks: list[TaskResult] = []
    reboot_required = False
    reasons: dict[str, str] = {}
    by_hand: list[str] = []

    def handle(event: dict) -> bool:
        nonlocal reboot_required
        if _reboot_required(event):
            reboot_required = True
            host = (event.get("event_data") or {}).get("host", "?")
            reasons[host] = str(_facts(event).get("cpu_isolation_reboot_reason", ""))
        if str(_facts(event).get("cpu_isolation_reboot_by_hand", "")).lower() == "true":
            by_hand.append((event.get("event_data") or {}).get("host", "?"))
        result = task_result(event)
        if result is not None:
            tasks.append(result)
            if on_task:
                on_task(result)
        return True  # False (or None) would make runner discard the event

    venv_bin = str(Path(sys.executable).parent)
    envvars = {
        "ANSIBLE_CONFIG": str(ANSIBLE_CONFIG),
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "ANSIBLE_NOCOLOR": "1",
    }
    started = time.monotonic()
    # a fresh directory per run (so no --check leaks into the next); kept when the run fails
    private_data_dir = tempfile.mkdtemp(prefix="zcbench-runner-")
    runner = ansible_runner.run(
        private_data_dir=private_data_dir,
        project_dir=str(Path(playbook).parent),
        playbook=str(playbook),
        inventory=str(inventory_path),
        cmdline=cmdline,
        envvars=envvars,
        event_handler=handle,
        suppress_env_files=True,
        quiet=not verbose,
    )
    result = ProvisionResult(runner.rc, runner.status, time.monotonic() - started, tasks, runner.stats or {},
                             reboot_required, reasons, sorted(set(by_hand)), artifacts=private_data_dir)
    if result.rc != 0 and not result.failures:
        result.error = ansible_error(runner.stdout.read() if runner.stdout else "")
    if result.ok:
        shutil.rmtree(private_data_dir, ignore_errors=True)
        result.artifacts = None
    return result


def recap(result: ProvisionResult) -> str:
    counts = {key: sum(result.stats.get(key, {}).values()) for key in ("ok", "changed", "skipped", "failures", "dark")}
    line = (
        f"recap: {result.status} in {result.elapsed_s:.1f}s — ok={counts['ok']} changed={counts['changed']} "
        f"skipped={counts['skipped']} failed={counts['failures']} unreachable={counts['dark']}"
    )
    return line + ("; reboot required for the CPU isolation" if result.reboot_required else "")


def reboot_lines(result: ProvisionResult, rebooting: bool, reverted: bool = False) -> list[str]:
    """One line per host that needs a reboot: why, and whether the play rebooted it."""
    lines = []
    for host, reason in sorted(result.reboot_reasons.items()):
        if host in result.reboot_by_hand:
            lines.append(f"{host}: Ansible runs on this machine, so it cannot reboot it: reboot it by hand ({reason})")
        elif rebooting:
            lines.append(f"{host}: rebooted ({reason})")
        elif reverted:  # a revert never reboots
            lines.append(f"{host}: reboot required ({reason}); reboot it by hand")
        else:
            lines.append(f"{host}: reboot required ({reason}); `invoke provision --reboot` reboots it")
    return lines
