"""A second host on this machine for the provisioning tests: a network namespace joined by a veth
pair, with its own sshd and a non-root login user that has passwordless sudo (DESIGN.md "A second
host on one machine"). Its filesystem is this machine's: tests must point every file a role
writes into a temporary directory; what differs per host is the network (sysctls net.*, links).

Everything made here is removed when the context ends, also when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class LabHost:
    netns: str
    address: str  # the namespace's end of the veth pair, where its sshd listens
    host_address: str  # this machine's end
    user: str
    key: Path
    inventory: Path  # server and loadgen: the lab host, reached over SSH as `user`

    def run(self, *command: str) -> str:
        """A command inside the namespace (network only; same filesystem)."""
        return subprocess.run(["nsenter", f"--net=/run/netns/{self.netns}", *command],
                              check=True, capture_output=True, text=True).stdout


def missing_tools() -> list[str]:
    return [tool for tool in (SSHD, "/usr/bin/sudo", "/usr/bin/ssh-keygen", "/usr/bin/nsenter")
            if not os.access(tool, os.X_OK)]


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True)


def _free_subnet() -> int:
    """A third octet for 10.213.N.0/30 that no link of this machine uses."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    for _ in range(50):
        octet = random.randrange(256)
        if f"10.213.{octet}." not in used:
            return octet
    raise RuntimeError("no free 10.213.N.0/30 subnet")


def _wait_for_port(netns: str, address: str, port: int, sshd: subprocess.Popen, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sshd.poll() is not None:
            raise RuntimeError(f"sshd exited with {sshd.returncode}: {sshd.stderr.read() if sshd.stderr else ''}")
        with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"sshd in {netns} not listening on {address}:{port} after {timeout}s")


@contextlib.contextmanager
def lab_host(tmp_path: Path, **inventory_vars):
    """Yield a LabHost; inventory_vars are added to its inventory entry."""
    tag = uuid.uuid4().hex[:6]
    netns, veth_host, veth_lab = f"zcblab-{tag}", f"zcbh{tag}", f"zcbl{tag}"
    user = f"zcblab{tag}"
    octet = _free_subnet()
    host_address, lab_address = f"10.213.{octet}.1", f"10.213.{octet}.2"
    state = tmp_path / "lab"
    state.mkdir()
    sudoers = Path(f"/etc/sudoers.d/{user}")
    sshd = None
    user_made = False
    try:
        _run("ip", "netns", "add", netns)
        _run("ip", "link", "add", veth_host, "type", "veth", "peer", "name", veth_lab)
        _run("ip", "link", "set", veth_lab, "netns", netns)
        _run("ip", "addr", "add", f"{host_address}/30", "dev", veth_host)
        _run("ip", "link", "set", veth_host, "up")
        _run("ip", "-n", netns, "addr", "add", f"{lab_address}/30", "dev", veth_lab)
        _run("ip", "-n", netns, "link", "set", veth_lab, "up")
        _run("ip", "-n", netns, "link", "set", "lo", "up")

        # sshd reads authorized_keys as the user, who cannot enter pytest's 0700 tmp dirs:
        # the home is the usual /home/USER, removed with the user
        _run("useradd", "--create-home", "--shell", "/bin/bash", user)
        home = Path(pwd.getpwnam(user).pw_dir)
        user_made = True
        # useradd leaves the account locked ("!"), and sshd refuses locked accounts even for keys
        _run("usermod", "--password", "*", user)
        sudoers.write_text(f"{user} ALL=(ALL) NOPASSWD: ALL\n")
        sudoers.chmod(0o440)
        key = state / "id_ed25519"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(state / "host_key"))
        (home / ".ssh").mkdir(mode=0o700)
        shutil.copy(f"{key}.pub", home / ".ssh" / "authorized_keys")
        uid = pwd.getpwnam(user).pw_uid
        for path in (home, home / ".ssh", home / ".ssh" / "authorized_keys"):
            os.chown(path, uid, uid)
        config = state / "sshd_config"
        config.write_text(
            f"ListenAddress {lab_address}:22\nHostKey {state / 'host_key'}\nPidFile {state / 'sshd.pid'}\n"
            f"AuthorizedKeysFile .ssh/authorized_keys\nPasswordAuthentication no\nUsePAM no\n"
            f"StrictModes no\nAllowUsers {user} root\nPermitRootLogin prohibit-password\n"
            "Subsystem sftp /usr/lib/openssh/sftp-server\n")
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory
        sshd = subprocess.Popen(["nsenter", f"--net=/run/netns/{netns}", SSHD, "-D", "-e", "-f", str(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        _wait_for_port(netns, lab_address, 22, sshd)

        inventory = state / "hosts.yml"
        lab_vars = {
            "ansible_host": lab_address, "ansible_user": user, "ansible_ssh_private_key_file": str(key),
            "ansible_python_interpreter": "/usr/bin/python3",
            # no ControlPersist master left behind, no known_hosts entry written
            "ansible_ssh_args": "-o ControlMaster=no -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no",
            **inventory_vars,
        }
        inventory.write_text(yaml.safe_dump({"all": {"children": {
            "server": {"hosts": {"lab": lab_vars}}, "loadgen": {"hosts": {"lab": None}}}}}))
        yield LabHost(netns, lab_address, host_address, user, key, inventory)
    finally:
        if sshd is not None and sshd.poll() is None:
            os.killpg(sshd.pid, signal.SIGTERM)  # its session: the listener and any login children
            try:
                sshd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(sshd.pid, signal.SIGKILL)
                sshd.wait()
        if user_made:
            # processes of this throwaway user are this lab's logins; any left would block userdel
            pids = subprocess.run(["pgrep", "-u", user], capture_output=True, text=True).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["userdel", "--remove", user], check=False, capture_output=True)
        sudoers.unlink(missing_ok=True)
        subprocess.run(["ip", "netns", "del", netns], check=False, capture_output=True)
        subprocess.run(["ip", "link", "del", veth_host], check=False, capture_output=True)
