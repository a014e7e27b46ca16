"""The playbook's own Ansible modules, run the way Ansible runs them (args file, JSON out)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from zcbench.host.provision import PLAYBOOKS

pytestmark = pytest.mark.provisioning

MODULE_UTILS = PLAYBOOKS / "module_utils"
ORIGINAL = PLAYBOOKS / "library" / "zcbench_original.py"
TUNABLE = PLAYBOOKS / "library" / "zcbench_tunable.py"
DAEMON = PLAYBOOKS / "roles" / "docker" / "library" / "zcbench_background_daemon.py"
CPUSET = PLAYBOOKS / "roles" / "cpu_isolation" / "library" / "zcbench_cpuset.py"


def run_module(module: Path, tmp_path: Path, check: bool = False, **args) -> dict:
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check}}))
    # Ansible ships playbooks/module_utils inside the module; run directly, the module finds it
    # the same way through ansible.module_utils' package path.
    runner = ("import runpy, sys, ansible.module_utils as mu; mu.__path__.append(sys.argv[1]); "
              "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", runner, str(MODULE_UTILS), str(module), str(args_file)],
                          capture_output=True, text=True, timeout=60)
    assert done.stdout, done.stderr
    return json.loads(done.stdout)


# --- zcbench_original -----------------------------------------------------------------------


def test_original_of_a_new_file_is_its_absence(tmp_path):
    target, store = tmp_path / "60-zcbench.conf", str(tmp_path / "store")
    assert run_module(ORIGINAL, tmp_path, check=True, path=str(target), store=store)["changed"]
    assert not Path(store).exists()  # check mode records nothing
    first = run_module(ORIGINAL, tmp_path, path=str(target), store=store)
    assert first["changed"] and first["existed"] is False
    target.write_text("provisioned\n")
    assert not run_module(ORIGINAL, tmp_path, path=str(target), store=store)["changed"]  # recorded once
    assert run_module(ORIGINAL, tmp_path, path=str(target), state="restored", store=store)["changed"]
    assert not target.exists()
    assert not run_module(ORIGINAL, tmp_path, path=str(target), state="restored", store=store)["changed"]


def test_original_content_and_mode_come_back(tmp_path):
    target, store = tmp_path / "daemon.json", str(tmp_path / "store")
    target.write_text('{"debug": true}\n')
    target.chmod(0o600)
    assert run_module(ORIGINAL, tmp_path, path=str(target), store=store)["existed"] is True
    target.write_text("{}\n")
    target.chmod(0o644)
    run_module(ORIGINAL, tmp_path, path=str(target), state="restored", store=store)
    assert target.read_text() == '{"debug": true}\n'
    assert target.stat().st_mode & 0o777 == 0o600
    assert list(Path(store).iterdir()) == []


# --- zcbench_tunable ------------------------------------------------------------------------


def test_tunable_sets_records_and_restores(tmp_path):
    knob, store = tmp_path / "ip_local_port_range", str(tmp_path / "runtime.json")
    knob.write_text("32768\t60999\n")
    values = {str(knob): "1024 65535"}
    check = run_module(TUNABLE, tmp_path, check=True, values=values, store=store)
    assert check["changed"] and knob.read_text() == "32768\t60999\n"
    first = run_module(TUNABLE, tmp_path, values=values, store=store)
    assert first["changed"] and first["changed_values"] == {str(knob): ["32768 60999", "1024 65535"]}
    assert knob.read_text() == "1024 65535\n"
    assert not run_module(TUNABLE, tmp_path, values=values, store=store)["changed"]
    assert run_module(TUNABLE, tmp_path, state="restored", store=store)["changed"]
    assert knob.read_text().split() == ["32768", "60999"]
    assert not Path(store).exists()


def test_tunable_refused_write_fails_unless_best_effort(tmp_path):
    read_only = "/proc/sys/kernel/osrelease"  # the kernel refuses any write
    store = str(tmp_path / "runtime.json")
    strict = run_module(TUNABLE, tmp_path, values={read_only: "x"}, store=store)
    assert strict.get("failed") and read_only in strict["msg"]
    lenient = run_module(TUNABLE, tmp_path, values={read_only: "x"}, store=store, best_effort=True)
    assert not lenient.get("failed") and not lenient["changed"] and read_only in lenient["refused"]


# --- zcbench_cpuset -------------------------------------------------------------------------


def test_cpuset_derives_the_isolation_parameters(tmp_path):
    present = tmp_path / "present"
    present.write_text("0-7\n")
    result = run_module(CPUSET, tmp_path, server_cpus="2-5", loadgen_cpus="6,7", housekeeping_cpus="0-1",
                        present_file=str(present))
    assert result["isolated_list"] == "2-7"
    assert result["kernel_params"] == ["isolcpus=managed_irq,domain,2-7", "nohz_full=2-7",
                                       "rcu_nocbs=2-7", "irqaffinity=0-1"]
    empty = run_module(CPUSET, tmp_path, housekeeping_cpus="", present_file=str(present))
    assert empty["failed"] and "housekeeping_cpus is empty" in empty["msg"]
    garbage = run_module(CPUSET, tmp_path, server_cpus="3-1", housekeeping_cpus="0", present_file=str(present))
    assert garbage["failed"] and "bad CPU range" in garbage["msg"]


# --- zcbench_background_daemon (a fake dockerd: pidfile + unix socket answering /_ping) ------

FAKE_DAEMON = textwrap.dedent("""
    import os, socket, sys
    open("/proc/self/comm", "w").write("zcbfaked")
    pidfile, sock_path = sys.argv[1], sys.argv[2]
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    server = socket.socket(socket.AF_UNIX)
    server.bind(sock_path)
    server.listen()
    open(pidfile, "w").write(str(os.getpid()))
    while True:
        conn, _ = server.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nOK")
        conn.close()
""")


@pytest.fixture
def fake_daemon(tmp_path):
    script = tmp_path / "fake_daemon.py"
    script.write_text(FAKE_DAEMON)
    args = {
        "name": "zcbfaked",
        "command": [sys.executable, str(script), str(tmp_path / "fake.pid"), str(tmp_path / "fake.sock")],
        "pidfile": str(tmp_path / "fake.pid"), "log": str(tmp_path / "log" / "fake.log"),
        "socket": str(tmp_path / "fake.sock"), "ping_path": "/_ping", "timeout": 20,
    }
    yield args
    pid_file = tmp_path / "fake.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "zcbfaked"
    except OSError:
        return False


def test_daemon_started_detached_then_adopted_then_restarted(fake_daemon, tmp_path):
    check = run_module(DAEMON, tmp_path, check=True, **fake_daemon)
    assert check["changed"] and not (tmp_path / "fake.pid").exists()

    started = run_module(DAEMON, tmp_path, **fake_daemon)
    assert started["changed"] and not started["adopted"]
    pid = started["pid"]
    assert alive(pid)  # outlived the module process that started it
    assert os.getsid(pid) == pid  # in its own session: no terminal hang-up reaches it

    adopted = run_module(DAEMON, tmp_path, **fake_daemon)
    assert not adopted["changed"] and adopted["adopted"] and adopted["pid"] == pid

    restarted = run_module(DAEMON, tmp_path, state="restarted", **fake_daemon)
    assert restarted["changed"] and restarted["pid"] != pid
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid) and alive(restarted["pid"])


def test_daemon_that_never_answers_fails_with_its_log(fake_daemon, tmp_path):
    broken = {**fake_daemon, "command": [sys.executable, "-c", "print('cannot bind: address in use')"],
              "timeout": 2}
    result = run_module(DAEMON, tmp_path, **broken)
    assert result["failed"]
    assert "not ready within 2s" in result["msg"] and "cannot bind: address in use" in result["msg"]


# --- zcbench_nic_irqs -----------------------------------------------------------------------

NIC_IRQS = PLAYBOOKS / "roles" / "cpu_isolation" / "library" / "zcbench_nic_irqs.py"


def test_nic_irqs_of_a_virtio_nic_are_its_pci_parents(tmp_path):
    sysfs = tmp_path / "sys"
    pci = sysfs / "devices" / "pci0000:00" / "0000:00:03.0"
    (pci / "virtio2").mkdir(parents=True)
    (pci / "msi_irqs").mkdir()
    for irq in ("39", "37", "38"):
        (pci / "msi_irqs" / irq).write_text("msix\n")
    (sysfs / "class" / "net" / "eth0").mkdir(parents=True)
    (sysfs / "class" / "net" / "eth0" / "device").symlink_to(pci / "virtio2")
    (sysfs / "class" / "net" / "lo").mkdir()
    assert run_module(NIC_IRQS, tmp_path, interface="eth0", sysfs=str(sysfs))["irqs"] == [37, 38, 39]
    loopback = run_module(NIC_IRQS, tmp_path, interface="lo", sysfs=str(sysfs))
    assert loopback["irqs"] == [] and "no device" in loopback["reason"]
    assert run_module(NIC_IRQS, tmp_path, interface="eth9", sysfs=str(sysfs))["reason"] == "no interface eth9"


# --- zcbench_irq_affinity -------------------------------------------------------------------

IRQ_AFFINITY = PLAYBOOKS / "roles" / "cpu_isolation" / "library" / "zcbench_irq_affinity.py"


def fake_irq(root: Path, number: int, name: str, affinity: str) -> None:
    (root / "sys" / "kernel" / "irq" / str(number)).mkdir(parents=True, exist_ok=True)
    (root / "sys" / "kernel" / "irq" / str(number) / "actions").write_text(name + "\n")
    (root / "proc" / "irq" / str(number)).mkdir(parents=True, exist_ok=True)
    (root / "proc" / "irq" / str(number) / "smp_affinity_list").write_text(affinity + "\n")


def affinity(root: Path, number: int) -> str:
    return (root / "proc" / "irq" / str(number) / "smp_affinity_list").read_text().strip()


def test_irq_originals_follow_the_name_when_the_number_changes(tmp_path):
    root = tmp_path / "host"
    fake_irq(root, 24, "virtio0-input.0", "0-3")
    fake_irq(root, 25, "virtio0-output.0", "0-3")
    fake_irq(root, 26, "i8042", "0-3")  # not the NIC's: left alone
    store = tmp_path / "originals" / "irqs.json"
    common = {"store": str(store), "sysfs": str(root / "sys"), "procfs": str(root / "proc")}

    pinned = run_module(IRQ_AFFINITY, tmp_path, irqs=["virtio0-input.0", "virtio0-output.0"], cpus="0", **common)
    assert pinned["changed"] and (affinity(root, 24), affinity(root, 25), affinity(root, 26)) == ("0", "0", "0-3")
    assert json.loads(store.read_text()) == {"virtio0-input.0": "0-3", "virtio0-output.0": "0-3"}
    again = run_module(IRQ_AFFINITY, tmp_path, irqs=["virtio0-input.0", "virtio0-output.0"], cpus="0", **common)
    assert not again["changed"]

    # after a reboot the same queues got other numbers; a number-keyed record would hit IRQ 24/25
    import shutil
    shutil.rmtree(root)
    fake_irq(root, 24, "i8042", "0")
    fake_irq(root, 40, "virtio0-input.0", "0")
    fake_irq(root, 41, "virtio0-output.0", "0")
    restored = run_module(IRQ_AFFINITY, tmp_path, state="restored", **common)
    assert restored["changed"]
    assert (affinity(root, 40), affinity(root, 41), affinity(root, 24)) == ("0-3", "0-3", "0")
    assert not store.exists()


def test_irq_that_is_gone_is_reported_not_failed(tmp_path):
    root = tmp_path / "host"
    fake_irq(root, 30, "eth0-TxRx-0", "1")
    result = run_module(IRQ_AFFINITY, tmp_path, irqs=["eth0-TxRx-0", "eth0-TxRx-9"], cpus="0",
                        store=str(tmp_path / "s.json"), sysfs=str(root / "sys"), procfs=str(root / "proc"))
    assert result["changed"] and result["refused"] == {"eth0-TxRx-9": "no IRQ with this name now"}
    assert "failed" not in result


def test_nic_irqs_come_with_their_action_names(tmp_path):
    sysfs = tmp_path / "sys"
    pci = sysfs / "devices" / "pci0000:00" / "0000:00:03.0"
    (pci / "msi_irqs").mkdir(parents=True)
    for irq, name in ((37, "virtio0-config"), (38, "virtio0-input.0")):
        (pci / "msi_irqs" / str(irq)).write_text("msix\n")
        (sysfs / "kernel" / "irq" / str(irq)).mkdir(parents=True)
        (sysfs / "kernel" / "irq" / str(irq) / "actions").write_text(name + "\n")
    (sysfs / "class" / "net" / "eth0").mkdir(parents=True)
    (sysfs / "class" / "net" / "eth0" / "device").symlink_to(pci)
    result = run_module(NIC_IRQS, tmp_path, interface="eth0", sysfs=str(sysfs))
    assert result["irqs"] == [37, 38] and result["names"] == ["virtio0-config", "virtio0-input.0"]
