"""zcbench.host.provision's handling of arguments and ansible-runner events (no Ansible run)."""

from __future__ import annotations

import json
import shlex

import pytest

from zcbench.host import provision

pytestmark = pytest.mark.provisioning


def test_check_mode_always_adds_diff_and_a_normal_run_passes_no_check():
    assert provision.build_cmdline(check=True, tags=[], extravars={}) == "--check --diff"
    assert provision.build_cmdline(check=False, tags=[], extravars={}) == ""


def test_tags_and_extra_vars_survive_shell_splitting():
    line = provision.build_cmdline(check=False, tags=["sysctl", "nic"], extravars={"zcbench_state": "absent"})
    args = shlex.split(line)
    assert args[:2] == ["--tags", "sysctl,nic"]
    assert json.loads(args[args.index("--extra-vars") + 1]) == {"zcbench_state": "absent"}


def test_a_mistyped_inventory_is_an_error_not_a_host_name(tmp_path):
    with pytest.raises(provision.ProvisionError, match="does not exist"):
        provision.validate_inventory(tmp_path / "hosts.ym")
    assert provision.validate_inventory(None) == provision.DEFAULT_INVENTORY.resolve()


def test_unknown_tags_are_rejected():
    with pytest.raises(provision.ProvisionError, match="unknown tag"):
        provision.validate_tags(["sysctl", "dockr"])


def _event(name: str, res: dict, **data) -> dict:
    return {"event": name, "event_data": {"task": "Write daemon.json", "role": "docker", "host": "h1",
                                          "res": res, **data}}


def test_events_become_task_lines():
    changed = provision.task_result(_event("runner_on_ok", {"changed": True}))
    assert (changed.task, changed.host, changed.status) == ("docker : Write daemon.json", "h1", "changed")
    assert provision.task_result(_event("runner_on_ok", {"changed": False})).status == "ok"
    assert provision.task_result(_event("runner_on_skipped", {})).status == "skipped"
    failed = provision.task_result(_event("runner_on_failed", {"msg": "boom", "stderr": "x\nlast line"}))
    assert failed.status == "failed" and failed.message == "boom; last line"
    ignored = provision.task_result(_event("runner_on_failed", {"msg": "meh"}, ignore_errors=True))
    assert ignored.status == "ignored"
    assert provision.task_result({"event": "playbook_on_start", "event_data": {}}) is None
    line = provision.format_task(failed)
    assert line.split() [:2] == ["failed", "h1"] and line.endswith("— boom; last line")


def test_debug_messages_and_warnings_are_shown():
    debug = provision.task_result(_event("runner_on_ok", {"msg": "not managed: no GRUB", "_ansible_verbose_always": True}))
    assert debug.message == "not managed: no GRUB"
    warned = provision.task_result(_event("runner_on_ok", {"warnings": ["fixed feature"]}))
    assert warned.message == "warning: fixed feature"


def test_reboot_required_is_read_from_the_exported_fact():
    event = _event("runner_on_ok", {"ansible_facts": {"cpu_isolation_reboot_required": True}})
    assert provision._reboot_required(event)
    assert not provision._reboot_required(_event("runner_on_ok", {}))


def test_desired_settings_merge_role_defaults_and_the_default_inventory():
    desired = provision.desired_settings()
    assert desired["cpu_isolation_server_cpus"] == "0"  # the cpu_isolation role default
    assert desired["cpu_isolation_loadgen_cpus"] == "1"
    assert desired["docker_memlock_bytes"] == desired["memlock_limit_bytes"]  # resolved reference
    assert "net.core.somaxconn" in desired["sysctl_settings"]


def test_a_failure_outside_any_task_shows_ansibles_error_and_keeps_the_artifacts(run_play):
    import shutil

    result = run_play({"name": "broken", "hosts": "localhost", "gather_facts": False,
                       "tasks": [{"name": "a module that does not exist", "zcbench_no_such_module": {}}]})
    try:
        assert not result.ok and not result.failures
        assert "zcbench_no_such_module" in result.error
        assert result.error.splitlines()[0].startswith(("[ERROR]", "ERROR!"))
        assert result.artifacts and (provision.Path(result.artifacts) / "artifacts").is_dir()
    finally:
        if result.artifacts:
            shutil.rmtree(result.artifacts, ignore_errors=True)


def test_a_successful_run_leaves_no_runner_directory(run_play):
    result = run_play({"name": "fine", "hosts": "localhost", "gather_facts": False,
                       "tasks": [{"name": "nothing", "ansible.builtin.debug": {"msg": "hi"}}]})
    assert result.ok and result.artifacts is None


def test_ansible_error_is_the_block_from_its_error_line():
    stdout = "PLAY [x]\n[ERROR]: couldn't resolve module/action 'bogus'\nOrigin: play.yml:3:7\n"
    assert provision.ansible_error(stdout) == "[ERROR]: couldn't resolve module/action 'bogus'\nOrigin: play.yml:3:7"
    assert provision.ansible_error("a\nb") == "a\nb"


def test_reboot_lines_say_who_reboots_whom():
    result = provision.ProvisionResult(0, "successful", 1.0, reboot_required=True,
                                       reboot_reasons={"localhost": "lacks nohz_full=1", "lg1": "lacks nohz_full=1"},
                                       reboot_by_hand=["localhost"])
    asked = provision.reboot_lines(result, rebooting=True)
    assert asked == ["lg1: rebooted (lacks nohz_full=1)",
                     "localhost: Ansible runs on this machine, so it cannot reboot it: reboot it by hand (lacks nohz_full=1)"]
    assert "`invoke provision --reboot` reboots it" in provision.reboot_lines(result, rebooting=False)[0]
    assert provision.reboot_lines(result, rebooting=False, reverted=True)[0].endswith("reboot it by hand")
