"""The cpu_isolation role renders its GRUB drop-in into a throwaway root and validates CPU sets."""

from __future__ import annotations

import pytest
from provisioning_helpers import changed_tasks, task_named

pytestmark = pytest.mark.provisioning

DROPIN = "etc/default/grub.d/60-zcbench-cpu-isolation.cfg"
EXPECTED_LINE = ('GRUB_CMDLINE_LINUX="${GRUB_CMDLINE_LINUX} isolcpus=managed_irq,domain,1 '
                 'nohz_full=1 rcu_nocbs=1 irqaffinity=0"')


def isolation_play(root, tmp_path, *, server="0", loadgen="1", housekeeping="0", state="present") -> dict:
    return {
        "name": "cpu_isolation role into a throwaway root",
        "hosts": "localhost",
        "gather_facts": False,
        "roles": [{
            "role": "cpu_isolation",
            "vars": {
                "cpu_isolation_state": state,
                "cpu_isolation_root": str(root),
                "cpu_isolation_server_cpus": server,
                "cpu_isolation_loadgen_cpus": loadgen,
                "cpu_isolation_housekeeping_cpus": housekeeping,
                "cpu_isolation_originals_dir": str(tmp_path / "originals"),
            },
        }],
    }


def test_renders_the_grub_dropin_and_requires_a_reboot(grub_root, tmp_path, run_play):
    first = run_play(isolation_play(grub_root, tmp_path))
    assert first.ok, first.failures
    dropin = (grub_root / DROPIN).read_text()
    assert EXPECTED_LINE in dropin.splitlines()
    assert first.reboot_required  # this kernel was not booted with the isolation
    assert task_named(first, "Write the kernel command line drop-in").status == "changed"
    # a throwaway root gets no update-grub, no reboot and none of the host's runtime settings
    assert not any("Update GRUB" in t.task and t.status == "changed" for t in first.tasks)
    assert not any(t.task.endswith("Set the cpufreq governor") for t in first.tasks)

    second = run_play(isolation_play(grub_root, tmp_path))
    assert second.ok and second.changed == 0, changed_tasks(second)

    reverted = run_play(isolation_play(grub_root, tmp_path, state="absent"))
    assert reverted.ok
    assert not (grub_root / DROPIN).exists()


def test_without_grub_it_reports_not_managed_and_carries_on(tmp_path, run_play):
    root = tmp_path / "bare"
    root.mkdir()
    result = run_play(isolation_play(root, tmp_path))
    assert result.ok and result.changed == 0, changed_tasks(result)
    report = task_named(result, "Report that the kernel command line is not managed")
    assert "not managed: no GRUB" in report.message
    assert "isolcpus=managed_irq,domain,1" in report.message
    assert not result.reboot_required
    assert not (root / DROPIN).exists()


def test_a_cpu_that_is_not_present_fails_with_one_clear_reason(grub_root, tmp_path, run_play):
    result = run_play(isolation_play(grub_root, tmp_path, server="0-4095"))
    assert not result.ok
    failure = result.failures[0]
    assert failure.task == "cpu_isolation : Check the CPU sets against the CPUs present"
    assert "server_cpus='0-4095' names CPUs" in failure.message and "are present" in failure.message
    assert not (grub_root / DROPIN).exists()


def test_reboot_is_only_for_the_host_root_even_when_asked(grub_root, tmp_path, run_play):
    result = run_play(isolation_play(grub_root, tmp_path), reboot=True)
    assert result.ok, result.failures
    assert result.reboot_required
    assert task_named(result, "Reboot into the isolated CPUs").status == "skipped"
