"""When a reboot is required, and who is told to reboot by hand (never this machine by its own play)."""

from __future__ import annotations

import pytest
from provisioning_helpers import task_named
from test_cpu_isolation_role import DROPIN, isolation_play

from zcbench.host import provision
from zcbench.host.provision import load_playbook_code

pytestmark = pytest.mark.provisioning

MANAGED = ["isolcpus", "nohz_full", "rcu_nocbs", "irqaffinity"]
WANTED = ["isolcpus=managed_irq,domain,1", "nohz_full=1", "rcu_nocbs=1", "irqaffinity=0"]


@pytest.fixture(scope="module")
def kernel_cmdline():
    return load_playbook_code("roles/cpu_isolation/library/zcbench_kernel_cmdline.py")


def test_the_running_kernel_matching_needs_no_reboot(kernel_cmdline):
    decision = kernel_cmdline.decide(WANTED, ["ro", "quiet", *WANTED], MANAGED, set())
    assert decision == {"reboot_required": False, "missing": [], "stale": [], "reason": ""}


def test_missing_parameters_need_a_reboot(kernel_cmdline):
    decision = kernel_cmdline.decide(WANTED, ["ro", "nohz_full=1"], MANAGED, set())
    assert decision["reboot_required"] and "nohz_full=1" not in decision["missing"]
    assert decision["reason"].startswith("the running kernel lacks isolcpus=managed_irq,domain,1")


def test_parameters_no_longer_wanted_need_a_reboot(kernel_cmdline):
    # the CPU sets shrank from 1-3 to 1: the running kernel still isolates 2 and 3
    running = ["ro", "isolcpus=managed_irq,domain,1-3", "nohz_full=1-3", "quiet"]
    decision = kernel_cmdline.decide(WANTED, running, MANAGED, set())
    assert decision["stale"] == ["isolcpus=managed_irq,domain,1-3", "nohz_full=1-3"]
    assert "still carries isolcpus=managed_irq,domain,1-3 nohz_full=1-3" in decision["reason"]
    # after a revert nothing is wanted: whatever zcbench set is stale
    assert kernel_cmdline.decide([], WANTED, MANAGED, set())["stale"] == WANTED


def test_the_hosts_own_grub_parameters_are_never_stale(kernel_cmdline, tmp_path):
    grub = tmp_path / "grub"
    grub.write_text('GRUB_CMDLINE_LINUX_DEFAULT="quiet isolcpus=7"\nGRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX nohz_full=7"\n')
    (tmp_path / "grub.d").mkdir()
    (tmp_path / "grub.d" / "60-zcbench-cpu-isolation.cfg").write_text('GRUB_CMDLINE_LINUX="isolcpus=1"\n')
    (tmp_path / "grub.d" / "10-mine.cfg").write_text("GRUB_CMDLINE_LINUX='rcu_nocbs=7'\n")
    own = kernel_cmdline.own_grub_words(str(grub), str(tmp_path / "grub.d" / "60-zcbench-cpu-isolation.cfg"))
    assert own == {"quiet", "isolcpus=7", "nohz_full=7", "rcu_nocbs=7"}
    running = ["isolcpus=7", "nohz_full=7", "rcu_nocbs=7", "isolcpus=1"]
    assert kernel_cmdline.decide([], running, MANAGED, own)["stale"] == ["isolcpus=1"]


def with_cmdline(play: dict, path) -> dict:
    play["roles"][0]["vars"]["cpu_isolation_running_cmdline"] = str(path)
    return play


def test_role_after_a_revert_still_requires_a_reboot_while_the_kernel_carries_the_isolation(
        grub_root, tmp_path, run_play):
    booted = tmp_path / "cmdline"
    booted.write_text("ro " + " ".join(WANTED) + "\n")  # booted with what the playbook sets
    applied = run_play(with_cmdline(isolation_play(grub_root, tmp_path), booted))
    assert applied.ok and not applied.reboot_required, applied.failures
    assert (grub_root / DROPIN).exists()

    reverted = run_play(with_cmdline(isolation_play(grub_root, tmp_path, state="absent"), booted))
    assert reverted.ok, reverted.failures
    assert not (grub_root / DROPIN).exists()
    assert reverted.reboot_required
    assert "still carries isolcpus=managed_irq,domain,1" in reverted.reboot_reasons["localhost"]
    # localhost is reached with a local connection: told to reboot by hand, in one line
    assert reverted.reboot_by_hand == ["localhost"]
    lines = provision.reboot_lines(reverted, rebooting=False)
    assert len(lines) == 1 and "reboot it by hand" in lines[0]

    booted.write_text("ro quiet\n")  # after that reboot
    again = run_play(with_cmdline(isolation_play(grub_root, tmp_path, state="absent"), booted))
    assert again.ok and not again.reboot_required


def test_role_with_shrunk_cpu_sets_requires_a_reboot_and_never_reboots_this_machine(grub_root, tmp_path, run_play):
    booted = tmp_path / "cmdline"
    booted.write_text("ro isolcpus=managed_irq,domain,1-3 nohz_full=1-3 rcu_nocbs=1-3 irqaffinity=0\n")
    result = run_play(with_cmdline(isolation_play(grub_root, tmp_path), booted), reboot=True)
    assert result.ok, result.failures
    assert result.reboot_required and "no longer sets" in result.reboot_reasons["localhost"]
    assert task_named(result, "Reboot into the isolated CPUs").status == "skipped"
    assert "reboot it by hand" in task_named(result, "Report that a reboot is required").message
