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
DOCKERD = "/usr/sbin/dockerd"


@dataclass(frozen=True)
class LabHost:
    netns: str
    address: str  # the namespace's end of the veth pair, where its sshd listens
    host_address: str  # this machine's end
    veth: str  # the namespace's end's name
    user: str
    key: Path
    inventory: Path  # server and loadgen: the lab host, reached over SSH as `user`
    docker_socket: str | None = None  # the lab's own engine (engine=True), also its logins' DOCKER_HOST
    ssh_config: Path | None = None  # for plain ssh (and the Docker SDK's ssh://) to reach it

    def docker_url_here(self) -> str:
        """This machine's way into the lab's engine (without SSH)."""
        return f"unix://{self.docker_socket}"

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


def _start_engine(netns: str, run_dir: Path, data_root: Path, group: str) -> subprocess.Popen:
    """A second dockerd whose host network is the namespace: own data-root, exec-root, pidfile
    and socket; no bridge, no iptables. nsenter (not `ip netns exec`, which remounts /sys and
    makes dockerd fail on cgroup v1). The socket belongs to `group` so the login can use it."""
    (run_dir / "daemon.json").write_text("{}\n")  # not this machine's /etc/docker/daemon.json
    log = open(run_dir / "dockerd.log", "w")
    engine = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{netns}", DOCKERD, "--config-file", str(run_dir / "daemon.json"),
         "--data-root", str(data_root), "--exec-root", str(run_dir / "exec"),
         "--pidfile", str(run_dir / "docker.pid"), "--host", f"unix://{run_dir / 'docker.sock'}",
         "--bridge", "none", "--iptables=false", "--ip-masq=false", "--group", group],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if engine.poll() is not None:
            raise RuntimeError(f"lab dockerd exited: {(run_dir / 'dockerd.log').read_text()[-800:]}")
        done = subprocess.run(["docker", "-H", f"unix://{run_dir / 'docker.sock'}", "version"],
                              capture_output=True, text=True)
        if done.returncode == 0:
            return engine
        time.sleep(0.5)
    raise RuntimeError(f"lab dockerd not answering after 60s: {(run_dir / 'dockerd.log').read_text()[-800:]}")


def _stop(process: subprocess.Popen | None, timeout: float) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)  # its session: the daemon and its children
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def lab_host(tmp_path: Path, engine: bool = False, **inventory_vars):
    """Yield a LabHost; with engine, a Docker engine of its own; inventory_vars are added to
    its inventory entry."""
    tag = uuid.uuid4().hex[:6]
    netns, veth_host, veth_lab = f"zcblab-{tag}", f"zcbh{tag}", f"zcbl{tag}"
    user = f"zcblab{tag}"
    octet = _free_subnet()
    host_address, lab_address = f"10.213.{octet}.1", f"10.213.{octet}.2"
    state = tmp_path / "lab"
    state.mkdir()
    sudoers = Path(f"/etc/sudoers.d/{user}")
    sshd = None
    dockerd = None
    user_made = False
    # short paths: containerd's sockets live under the exec-root (a socket path has 108 bytes)
    run_dir = Path(f"/run/zcblab-{tag}")
    data_root = Path(f"/var/lib/zcblab-{tag}")  # the same filesystem as the main engine's
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
        socket_path = None
        if engine:
            run_dir.mkdir(mode=0o755)
            dockerd = _start_engine(netns, run_dir, data_root, user)
            socket_path = str(run_dir / "docker.sock")
        config = state / "sshd_config"
        config.write_text(
            f"ListenAddress {lab_address}:22\nHostKey {state / 'host_key'}\nPidFile {state / 'sshd.pid'}\n"
            f"AuthorizedKeysFile .ssh/authorized_keys\nPasswordAuthentication no\nUsePAM no\n"
            f"StrictModes no\nAllowUsers {user} root\nPermitRootLogin prohibit-password\n"
            "Subsystem sftp /usr/lib/openssh/sftp-server\n"
            # the Docker SDK's ssh:// runs `docker system dial-stdio` there: it must find this engine
            + (f"SetEnv DOCKER_HOST=unix://{socket_path}\n" if socket_path else ""))
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
        ssh_config = state / "ssh_config"
        ssh_config.write_text(f"Host {lab_address}\n  User {user}\n  IdentityFile {key}\n  IdentitiesOnly yes\n"
                              "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")
        yield LabHost(netns, lab_address, host_address, veth_lab, user, key, inventory, socket_path, ssh_config)
    finally:
        _stop(sshd, 10)  # with it the logins it forked
        _stop(dockerd, 60)
        shutil.rmtree(run_dir, ignore_errors=True)
        if data_root.exists():
            # overlay mounts a stopped engine failed to undo would keep the tree busy
            mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
                      if line.split()[1].startswith(str(data_root))]
            for mount in sorted(mounts, reverse=True):
                subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
            shutil.rmtree(data_root, ignore_errors=True)
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
