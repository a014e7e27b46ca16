"""`invoke doctor`'s table and exit code for known host states (facts from a fixture)."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from zcbench.devtools.schemas import problems
from zcbench.host import doctor

pytestmark = pytest.mark.provisioning

FIXTURE = Path(__file__).parent / "fixtures" / "host_facts_tuned.json"

# What the playbook would apply on that host (the shape of provision.desired_settings()).
DESIRED = {
    "nic_interface": "eth1",
    "nic_features": {"generic-receive-offload": False},
    "nic_coalesce": {"rx-usecs": 0},
    "nic_ring": {},
    "nic_channels": {},
    "cpu_isolation_server_cpus": "0",
    "cpu_isolation_loadgen_cpus": "1",
    "cpu_isolation_housekeeping_cpus": "0",
    "cpu_isolation_governor": "performance",
    "cpu_isolation_irqbalance": "ban",
    "memlock_limit_bytes": 8388608,
    "memlock_nofile": 1048576,
    "sysctl_settings": {"net.core.somaxconn": 65535, "net.core.netdev_max_backlog": 250000,
                        "net.ipv4.ip_local_port_range": "1024 65535"},
}


@pytest.fixture
def facts() -> dict:
    return json.loads(FIXTURE.read_text())


def rows_by_setting(facts: dict) -> dict[str, doctor.Row]:
    return {f"{r.area} {r.setting}": r for r in doctor.doctor_rows(facts, DESIRED)}


def test_known_state_rows(facts):
    rows = rows_by_setting(facts)
    assert rows["docker engine"].status == doctor.OK and "20.10.24" in rows["docker engine"].actual
    assert rows["io_uring SEND_ZC opcode"].status == doctor.OK
    assert rows["cpu cmdline isolcpus"].status == doctor.OK
    assert rows["cpu cmdline isolcpus"].desired == "managed_irq,domain,1"
    assert rows["cpu isolated CPUs (sysfs)"].status == doctor.OK
    assert rows["cpu governor policy0"].status == doctor.OK
    assert rows["cpu governor policy1"].status == doctor.DIFFERS
    assert rows["sysctl net.core.somaxconn"].status == doctor.OK
    assert rows["sysctl net.core.netdev_max_backlog"].status == doctor.DIFFERS
    assert rows["sysctl net.ipv4.ip_local_port_range"].status == doctor.OK
    assert rows["limits nofile (this shell)"].status == doctor.DIFFERS
    assert rows["limits memlock (containers, daemon.json)"].status == doctor.OK
    assert rows["nic features generic-receive-offload"].status == doctor.OK  # YAML false == off
    assert rows["nic coalesce rx-usecs"].status == doctor.DIFFERS
    assert rows["nic IRQ 120 affinity"].status == doctor.OK
    assert rows["nic IRQ 121 affinity"].status == doctor.DIFFERS


def test_table_output_and_ready_verdict(facts):
    console = Console(record=True, width=200, color_system=None)
    code = doctor.run(facts=facts, desired=DESIRED, console=console)
    text = console.export_text()
    assert code == 0
    assert "zcbench doctor: desired vs actual" in text
    assert "net.core.netdev_max_backlog" in text and "250000" in text and "1000" in text
    assert "ready to bench here; 5 tunable(s) differ" in text


@pytest.mark.parametrize("broken, missing", [
    (lambda f: f.update(docker=None, errors={"docker": "connection refused"}), "docker engine"),
    (lambda f: f["io_uring"].update(usable=False, error="io_uring_setup: Operation not permitted"), "io_uring usable"),
    (lambda f: f["io_uring"].update(send_zc=False), "io_uring SEND_ZC opcode"),
    (lambda f: f.update(io_uring_disabled=2), "io_uring kernel.io_uring_disabled"),
])
def test_missing_bench_requirement_exits_non_zero(facts, broken, missing):
    facts = copy.deepcopy(facts)
    broken(facts)
    console = Console(record=True, width=200, color_system=None)
    assert doctor.run(facts=facts, desired=DESIRED, console=console) == 1
    assert f"the bench cannot run here: missing {missing}" in console.export_text()


def test_host_without_grub_or_cpufreq_reports_not_managed(facts):
    facts = copy.deepcopy(facts)
    facts.update(grub_installed=False, cmdline_isolation={k: None for k in facts["cmdline_isolation"]},
                 isolated_cpus="", governors=None, errors={"governors": "no cpufreq on this host"})
    rows = rows_by_setting(facts)
    assert rows["cpu cmdline isolcpus"].status == doctor.NA
    assert rows["cpu isolated CPUs (sysfs)"].status == doctor.NA
    assert rows["cpu cpufreq governor"].status == doctor.NA
    assert rows["cpu cpufreq governor"].note == "no cpufreq on this host"
    assert doctor.exit_code(list(rows.values())) == 0


def test_reboot_required_row_follows_the_roles_decision(facts):
    rows = {r.setting: r for r in doctor.reboot_rows(facts, DESIRED, own_grub_params=set())}
    assert rows["reboot required"].status == doctor.OK  # booted with exactly the wanted isolation
    shrunk = dict(DESIRED, cpu_isolation_loadgen_cpus="")  # nothing isolated any more
    row = doctor.reboot_rows(facts, shrunk, own_grub_params=set())[0]
    assert (row.actual, row.status) == ("yes", doctor.DIFFERS)
    assert "still carries isolcpus=managed_irq,domain,1" in row.note
    # the same parameters set by the host's own GRUB configuration are not zcbench's to remove
    own = set(facts["kernel_cmdline"].split())
    assert doctor.reboot_rows(facts, shrunk, own_grub_params=own)[0].status == doctor.OK
    no_grub = doctor.reboot_rows(dict(facts, grub_installed=False), shrunk)[0]
    assert no_grub.status == doctor.NA


def test_runtime_only_settings_say_provision_reapplies_them(facts):
    rows = rows_by_setting(facts)
    for setting in ("cpu governor policy0", "nic coalesce rx-usecs", "nic IRQ 120 affinity"):
        assert rows[setting].note == doctor.RUNTIME_NOTE


def two_hosts(tmp_path: Path):
    """This machine serving, a loadgen host over SSH."""
    import yaml

    from zcbench.host import inventory as hosts

    path = tmp_path / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {
        "server": {"hosts": {"localhost": {"ansible_connection": "local"}}},
        "loadgen": {"hosts": {"lg": {"ansible_host": "10.9.0.2"}}}}}}))
    return hosts.load_inventory(path)


def without_io_uring(facts: dict) -> dict:
    broken = copy.deepcopy(facts)
    broken["io_uring"].update(usable=False, error="No module named 'zcbench'")
    return broken


def test_an_inventory_gets_one_table_per_host_each_judged_for_its_part(facts, tmp_path):
    """A loadgen host needs no io_uring (wrk does not use it); the server host does."""
    inventory, no_uring = two_hosts(tmp_path), without_io_uring(facts)

    def run_with(server_facts):
        console = Console(record=True, width=200, color_system=None)
        code = doctor.run_inventory(inventory, console,
                                    facts_of=lambda host: server_facts if host.name == "localhost" else no_uring)
        return code, console.export_text()

    code, text = run_with(facts)
    assert code == 0
    assert "## localhost (server; this machine)" in text and "## lg (loadgen; over SSH: 10.9.0.2)" in text
    assert "ready to bench on lg" in text and "ready to bench on localhost" in text
    code, text = run_with(no_uring)
    assert code == 1
    assert "the bench cannot run on localhost: missing io_uring usable" in text


def test_a_server_host_over_ssh_is_not_failed_for_an_io_uring_probe_that_cannot_run_there(facts):
    remote = copy.deepcopy(facts)
    remote["io_uring"] = {"not_probed": "not probed over SSH: the bench's server container shows it"}
    rows = {f"{r.area} {r.setting}": r for r in doctor.doctor_rows(remote, DESIRED, ("server",))}
    assert rows["io_uring usable"].status == doctor.INFO
    assert doctor.exit_code(list(rows.values())) == 0
    remote["io_uring_disabled"] = 2  # what can be read over SSH still counts
    rows = doctor.doctor_rows(remote, DESIRED, ("server",))
    assert doctor.exit_code(rows) == 1


def test_json_has_the_rows_and_verdict_of_the_table_and_follows_its_schema(facts):
    out = io.StringIO()
    assert doctor.run_json(facts=facts, desired=DESIRED, out=out) == 0
    report = json.loads(out.getvalue())
    assert problems("doctor", report) == []
    [host] = report["hosts"]
    assert report["exit_code"] == 0 and host["ready"] and host["differs"] == 5 and host["missing"] == []
    table = {(r.area, r.setting): r.status for r in doctor.doctor_rows(facts, DESIRED)}
    assert {(r["area"], r["setting"]): r["status"] for r in host["rows"]} == table
    broken = copy.deepcopy(facts)
    broken.update(docker=None, errors={"docker": "connection refused"})
    out = io.StringIO()
    assert doctor.run_json(facts=broken, desired=DESIRED, out=out) == 1
    report = json.loads(out.getvalue())
    assert problems("doctor", report) == [] and report["exit_code"] == 1
    assert report["hosts"][0]["missing"] == ["docker engine"] and not report["hosts"][0]["ready"]
    # the schema can fail: a status the table never prints
    report["hosts"][0]["rows"][0]["status"] = "fine"
    assert problems("doctor", report)


def test_json_of_an_inventory_is_one_object_with_a_host_each(facts, tmp_path):
    out = io.StringIO()
    no_uring = without_io_uring(facts)
    code = doctor.run_inventory(two_hosts(tmp_path), facts_of=lambda host: no_uring, as_json=True, out=out)
    report = json.loads(out.getvalue())  # nothing but the object: no per-host headings
    assert problems("doctor", report) == []
    assert code == report["exit_code"] == 1
    assert [(h["where"], h["groups"], h["ready"]) for h in report["hosts"]] == [
        ("localhost", ["server"], False), ("lg", ["loadgen"], True)]
