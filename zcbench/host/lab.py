"""`invoke lab`: a second host on this machine, for trying the two-host flow and for its tests
(DESIGN.md "A second host on one machine").

The lab host is a network namespace joined to this machine by a veth pair, with an sshd and a
Docker engine of its own (own data-root, exec-root and socket) whose host network is that
namespace, and a non-root login user with passwordless sudo. Its filesystem is this machine's;
what differs is the network. `up` writes an inventory: this machine serves, the lab host
generates load.

Every name `up` makes is recorded in a JSON state file before it is made, so `down` (also from
another process, also after a killed `up`) removes exactly that and nothing else. The daemons
run in sessions of their own and outlive the process that started them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import random
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import yaml

from zcbench.core.atomic import write_atomic
from zcbench.core.signals import sigterm_raises
from zcbench.host.inventory import role_defaults

#: tmpfs: gone at reboot, like the namespace and the daemons it describes.
DEFAULT_STATE_DIR = Path("/run/zcbench-lab")
#: Overrides the state directory of `invoke lab` (the tests' labs never touch a user's).
STATE_DIR_ENV = "ZCBENCH_LAB_DIR"
STATE_FILE = "lab.json"
INVENTORY_FILE = "hosts.yml"
KEY_FILE = "id_ed25519"
SSH_CONFIG_DIR = Path("/etc/ssh/ssh_config.d")  # bookworm's /etc/ssh/ssh_config Includes it
SUDOERS_DIR = Path("/etc/sudoers.d")
SSHD = "/usr/sbin/sshd"
DOCKERD = "/usr/sbin/dockerd"
NAMING_LOCK = Path("/run/zcbench-lab-naming.lock")
UP_TOOLS = ("sshd", "sudo", "nsenter", "dockerd", "ssh", "ssh-keygen", "ip", "useradd")
# no ControlPersist master left behind, no known_hosts entry written
SSH_ARGS = "-o ControlMaster=no -o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no"


class LabError(RuntimeError):
    """The lab could not be made or removed; the message is one line for the user."""


class LabUnavailable(LabError):
    """This machine cannot hold a lab (not root, tools missing); nothing was made."""


@dataclass(frozen=True)
class Lab:
    state_dir: Path
    netns: str
    veth: str  # the lab's end of the veth pair (inside the namespace)
    host_veth: str  # this machine's end
    address: str  # the lab's end, where its sshd listens
    host_address: str  # this machine's end
    user: str  # non-root login with passwordless sudo
    key: Path
    inventory: Path
    # short: containerd's sockets live under the exec-root, and a socket path has 108 bytes
    run_dir: Path
    data_root: Path
    sudoers: Path
    ssh_config: Path  # lets plain `ssh` (and so the Docker SDK's ssh://) reach the lab as `user`
    sshd_pid: int | None = None
    dockerd_pid: int | None = None
    complete: bool = False  # every part made and recorded

    @property
    def docker_socket(self) -> str:
        return str(self.run_dir / "docker.sock")

    def docker_url_here(self) -> str:
        """This machine's way into the lab's engine (without SSH)."""
        return f"unix://{self.docker_socket}"

    def run(self, *command: str) -> str:
        """A command inside the namespace (network only; same filesystem)."""
        return subprocess.run(["nsenter", f"--net=/run/netns/{self.netns}", *command],
                              check=True, capture_output=True, text=True).stdout


# --- the state file ------------------------------------------------------------------------


def state_dir_from_env() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)


def load(state_dir: Path = DEFAULT_STATE_DIR) -> Lab | None:
    """The lab recorded in state_dir, complete or not; None when there is none."""
    path = Path(state_dir) / STATE_FILE
    if not path.exists():
        return None
    try:
        fields = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LabError(f"lab state {path} unreadable ({exc}); remove the lab's parts by hand") from exc
    paths = {"state_dir", "key", "inventory", "run_dir", "data_root", "sudoers", "ssh_config"}
    return Lab(**{k: Path(v) if k in paths else v for k, v in fields.items()})


def _save(lab: Lab) -> Lab:
    write_atomic(lab.state_dir / STATE_FILE,
                 json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in asdict(lab).items()}, indent=2))
    return lab


# --- checks --------------------------------------------------------------------------------


def missing_tools() -> list[str]:
    search = f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/bin:/sbin:/bin"
    return [tool for tool in UP_TOOLS if shutil.which(tool, path=search) is None]


def check_can_run(making: bool) -> None:
    """Raise LabUnavailable before anything is made when this machine cannot hold a lab."""
    if os.geteuid() != 0:
        raise LabUnavailable("invoke lab needs root: it makes a network namespace, a user and daemons")
    missing = missing_tools() if making else []
    if missing:
        raise LabUnavailable(f"invoke lab --up needs {', '.join(missing)} "
                             "(apt-get install openssh-server openssh-client sudo util-linux iproute2 docker.io)")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""  # gone, or a zombie (nothing here reaps orphans of a finished `invoke`)


def _processes(lab: Lab) -> list[int]:
    """The lab's daemons and their children: every process naming a file in its run dir
    (dockerd's --exec-root, containerd's config, the shims, sshd's -f). Never the main engine."""
    marker = f"{lab.run_dir}/"
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and int(entry.name) != os.getpid() and marker in _cmdline(int(entry.name))]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _alive(pid: int | None, lab: Lab) -> bool:
    return pid is not None and f"{lab.run_dir}/" in _cmdline(pid)


def _port_open(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=1):
        return True
    return False


def _engine_answers(socket_path: str) -> bool:
    """GET /_ping on the engine's socket (no Docker client needed)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(socket_path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(64)
            return reply.startswith(b"HTTP/1.") and b" 200 " in reply
    except OSError:
        return False


def _user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


def healthy(lab: Lab) -> bool:
    """Every part of a complete lab is there and its daemons answer."""
    files = (lab.key, lab.inventory, lab.sudoers, lab.ssh_config)
    return (lab.complete and Path(f"/run/netns/{lab.netns}").exists()
            and Path(f"/sys/class/net/{lab.host_veth}").exists() and _user_exists(lab.user)
            and all(path.exists() for path in files)
            and _alive(lab.sshd_pid, lab) and _alive(lab.dockerd_pid, lab)
            and _port_open(lab.address, 22) and _engine_answers(lab.docker_socket))


# --- up ------------------------------------------------------------------------------------


def _run(*command: str) -> str:
    """A command whose failure is one line naming it."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise LabError(f"{' '.join(command[:3])}: {last}")
    return done.stdout


def _free_tag() -> str:
    """Six hex digits no namespace, link, user or directory of this machine uses yet."""
    for _ in range(20):
        tag = secrets.token_hex(3)
        if not any((Path(f"/run/netns/zcblab-{tag}").exists(), Path(f"/sys/class/net/zcbh{tag}").exists(),
                    _user_exists(f"zcblab{tag}"), Path(f"/run/zcblab-{tag}").exists(),
                    Path(f"/var/lib/zcblab-{tag}").exists())):
            return tag
    raise LabError("no free lab name found")


def _free_subnet() -> int:
    """A third octet for 10.213.N.0/30 that no link of this machine uses."""
    used = _run("ip", "-4", "-o", "addr")
    for _ in range(50):
        octet = random.randrange(256)
        if f"10.213.{octet}." not in used:
            return octet
    raise LabError("no free 10.213.N.0/30 subnet")


def _new_lab(state_dir: Path) -> Lab:
    """The names of a new lab; nothing made yet."""
    tag, octet = _free_tag(), _free_subnet()
    state_dir = Path(state_dir).resolve()
    return Lab(state_dir=state_dir, netns=f"zcblab-{tag}", veth=f"zcbl{tag}", host_veth=f"zcbh{tag}",
               address=f"10.213.{octet}.2", host_address=f"10.213.{octet}.1", user=f"zcblab{tag}",
               key=state_dir / KEY_FILE, inventory=state_dir / INVENTORY_FILE,
               run_dir=Path(f"/run/zcblab-{tag}"), data_root=Path(f"/var/lib/zcblab-{tag}"),
               sudoers=SUDOERS_DIR / f"zcblab{tag}", ssh_config=SSH_CONFIG_DIR / f"zcbench-lab-{tag}.conf")


def _make_network(lab: Lab) -> None:
    _run("ip", "netns", "add", lab.netns)
    _run("ip", "link", "add", lab.host_veth, "type", "veth", "peer", "name", lab.veth)
    _run("ip", "link", "set", lab.veth, "netns", lab.netns)
    _run("ip", "addr", "add", f"{lab.host_address}/30", "dev", lab.host_veth)
    _run("ip", "link", "set", lab.host_veth, "up")
    _run("ip", "-n", lab.netns, "addr", "add", f"{lab.address}/30", "dev", lab.veth)
    _run("ip", "-n", lab.netns, "link", "set", lab.veth, "up")
    _run("ip", "-n", lab.netns, "link", "set", "lo", "up")


def _make_user(lab: Lab) -> None:
    """A login with the lab key and passwordless sudo (the playbook becomes root through it)."""
    # sshd reads authorized_keys as the user, who cannot enter a 0700 state dir (pytest's tmp
    # dirs): the home is the usual /home/USER, removed with the user
    _run("useradd", "--create-home", "--shell", "/bin/bash", lab.user)
    # useradd leaves the account locked ("!"), and sshd refuses locked accounts even for keys
    _run("usermod", "--password", "*", lab.user)
    lab.sudoers.write_text(f"{lab.user} ALL=(ALL) NOPASSWD: ALL\n")
    lab.sudoers.chmod(0o440)
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "zcbench-lab", "-f", str(lab.key))
    entry = pwd.getpwnam(lab.user)
    ssh_dir = Path(entry.pw_dir) / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    shutil.copy(f"{lab.key}.pub", ssh_dir / "authorized_keys")
    for path in (ssh_dir, ssh_dir / "authorized_keys"):
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _start_daemon(lab: Lab, name: str, command: list[str]) -> subprocess.Popen:
    """A daemon with the namespace as its network, in a session of its own (it outlives this
    process; `down` kills its process group). nsenter, not `ip netns exec`: that remounts /sys
    and dockerd then fails on cgroup v1. Output to a log: never to our caller's pipes."""
    with open(lab.run_dir / f"{name}.log", "w") as log:
        return subprocess.Popen(["nsenter", f"--net=/run/netns/{lab.netns}", *command], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _log_tail(lab: Lab, name: str) -> str:
    lines = (lab.run_dir / f"{name}.log").read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "(empty log)"


def _wait_until(ready, process: subprocess.Popen, lab: Lab, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LabError(f"lab {name} exited with {process.returncode}: {_log_tail(lab, name)}")
        if ready():
            return
        time.sleep(0.2)
    raise LabError(f"lab {name} not ready after {timeout:.0f} s: {_log_tail(lab, name)}")


def _start_engine(lab: Lab) -> Lab:
    """The lab's dockerd: own data-root, exec-root, pidfile and socket; no bridge, no
    iptables (this machine's rules stay the main engine's). The socket belongs to the user's
    group so its logins can use it."""
    (lab.run_dir / "daemon.json").write_text("{}\n")  # not this machine's /etc/docker/daemon.json
    engine = _start_daemon(lab, "dockerd", [
        DOCKERD, "--config-file", str(lab.run_dir / "daemon.json"), "--data-root", str(lab.data_root),
        "--exec-root", str(lab.run_dir / "exec"), "--pidfile", str(lab.run_dir / "docker.pid"),
        "--host", lab.docker_url_here(), "--bridge", "none", "--iptables=false", "--ip-masq=false",
        "--group", lab.user])
    lab = _save(replace(lab, dockerd_pid=engine.pid))
    _wait_until(lambda: _engine_answers(lab.docker_socket), engine, lab, "dockerd", 60)
    return lab


def _start_sshd(lab: Lab) -> Lab:
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(lab.run_dir / "host_key"))
    config = lab.run_dir / "sshd_config"
    config.write_text(
        f"ListenAddress {lab.address}:22\nHostKey {lab.run_dir / 'host_key'}\nPidFile {lab.run_dir / 'sshd.pid'}\n"
        "AuthorizedKeysFile .ssh/authorized_keys\nPasswordAuthentication no\nUsePAM no\n"
        f"StrictModes no\nAllowUsers {lab.user}\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
        # the Docker SDK's ssh:// runs `docker system dial-stdio` there: it must find the lab's engine
        f"SetEnv DOCKER_HOST={lab.docker_url_here()}\n")
    os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege-separation directory (shared)
    sshd = _start_daemon(lab, "sshd", [SSHD, "-D", "-e", "-f", str(config)])
    lab = _save(replace(lab, sshd_pid=sshd.pid))
    _wait_until(lambda: _port_open(lab.address, 22), sshd, lab, "sshd", 15)
    return lab


def _write_ssh_config(lab: Lab) -> None:
    """Plain `ssh USER@ADDRESS` as root: the Docker SDK runs `ssh -l USER -- HOST` (no -i)."""
    lab.ssh_config.write_text(
        f"# zcbench lab host ({lab.state_dir}); `invoke lab --down` removes this file\n"
        f"Host {lab.address}\n  User {lab.user}\n  IdentityFile {lab.key}\n  IdentitiesOnly yes\n"
        "  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n")


def lab_host_vars(lab: Lab) -> dict:
    """The lab host's inventory variables (the names zcbench/hosts.py documents)."""
    return {"ansible_host": lab.address, "ansible_user": lab.user, "ansible_ssh_private_key_file": str(lab.key),
            "ansible_python_interpreter": "/usr/bin/python3", "ansible_ssh_args": SSH_ARGS,
            "nic_interface": lab.veth}


#: sysctls a network namespace has of its own; netdev_max_backlog and optmem_max exist only in
#: the initial one, so a lab host cannot be given them.
PER_NAMESPACE_SYSCTLS = ("net.ipv4.", "net.core.somaxconn")


def provisioned_dir(lab: Lab) -> Path:
    """Where `invoke provision` writes the lab host's files (removed by `down`)."""
    return lab.state_dir / "provisioned"


def lab_provisioning_vars(lab: Lab) -> dict:
    """What `invoke provision` needs to tune the lab host without touching this machine: the lab
    shares its filesystem, so every file a role writes for the lab lives in the lab's state
    dir (the lab engine's own daemon.json included, and the lab's engine is `invoke lab`'s to
    run); only its network settings are its own."""
    files = provisioned_dir(lab)
    return {
        "sysctl_settings": {name: value for name, value in role_defaults("sysctl")["sysctl_settings"].items()
                            if name.startswith(PER_NAMESPACE_SYSCTLS)},
        "sysctl_file": str(files / "sysctl.conf"),
        "memlock_limits_file": str(files / "limits.conf"),
        "memlock_systemd_file": str(files / "systemd-limits.conf"),
        "docker_daemon_json": str(lab.run_dir / "daemon.json"),
        "docker_manage_engine": False,
        "cpu_isolation_root": str(files / "root"),
        "cpu_isolation_update_grub": False,
        "cpu_isolation_irqbalance_defaults": str(files / "irqbalance"),
        **{f"{role}_originals_dir": str(files / "originals")
           for role in ("sysctl", "memlock", "docker", "cpu_isolation", "nic")},
    }


def study_inventory(lab: Lab) -> dict:
    """The study's topology: this machine serves on its veth end, the lab host runs wrk."""
    here = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "zcbench_server_address": lab.host_address, "nic_interface": lab.host_veth}
    return {"all": {"children": {"server": {"hosts": {"localhost": here}},
                                 "loadgen": {"hosts": {"lab": lab_host_vars(lab) | lab_provisioning_vars(lab)}}}}}


def write_inventory(lab: Lab, path: Path, inventory: dict) -> Path:
    header = (f"# A two-host lab on this machine, written by `invoke lab --up` (state in {lab.state_dir}).\n"
              f"# The lab host is network namespace {lab.netns}, reached over SSH at {lab.address}.\n"
              "# `invoke lab --down` removes it and this file.\n")
    write_atomic(Path(path), header + yaml.safe_dump(inventory, sort_keys=False, width=1000))
    return Path(path)


def _check_ssh(lab: Lab) -> None:
    """What the Docker SDK will do: plain ssh as root, then the lab engine through the login."""
    _run("ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", f"{lab.user}@{lab.address}",
         "docker", "version", "--format", "{{.Server.Version}}")


@contextlib.contextmanager
def _naming_lock():
    """Labs made at once (the test suite's two lanes each make theirs) must not pick one subnet:
    a lab is named and its links made under this lock."""
    with open(NAMING_LOCK, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


def _build(lab: Lab) -> Lab:
    """Everything of a named lab whose network exists."""
    _make_user(lab)
    lab.run_dir.mkdir(mode=0o755)
    lab = _start_engine(lab)
    lab = _start_sshd(lab)
    _write_ssh_config(lab)
    write_inventory(lab, lab.inventory, study_inventory(lab))
    _check_ssh(lab)
    return _save(replace(lab, complete=True))


def up(state_dir: Path = DEFAULT_STATE_DIR) -> Lab:
    """Make the lab recorded in state_dir, or return it unchanged when it is up and healthy.
    A broken or half-made one is removed first; a failure midway removes what it made."""
    check_can_run(making=True)
    existing = load(state_dir)
    if existing is not None and healthy(existing):
        return existing
    if existing is not None:
        down(state_dir)
    Path(state_dir).mkdir(mode=0o755, parents=True, exist_ok=True)
    try:
        with sigterm_raises(lambda signum: SystemExit(128 + signum)):
            with _naming_lock():
                lab = _save(_new_lab(state_dir))  # the names first: a killed `up` leaves them for `down`
                _make_network(lab)
            return _build(lab)
    except BaseException as exc:
        try:
            down(state_dir)
        except LabError as cleanup:
            raise LabError(f"{exc}; removing what it made failed too: {cleanup}") from exc
        raise


# --- down ----------------------------------------------------------------------------------


def _signal(pid: int, sig: int) -> None:
    """The daemon's whole session (it leads its process group), else the process alone."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _reap(pids: list[int]) -> None:
    """Our own children (a lab made and removed by one process) would stay zombies."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def _stop_processes(lab: Lab) -> list[str]:
    """SIGTERM the lab's processes (dockerd stops its containers), SIGKILL what is left after
    30 s, then verify none runs."""
    recorded = [pid for pid in (lab.sshd_pid, lab.dockerd_pid) if _alive(pid, lab)]
    found = sorted(set(recorded) | set(_processes(lab)))
    names = {pid: _comm(pid) for pid in found}
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        for pid in _processes(lab):
            _signal(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(found)
            if not _processes(lab):
                return [f"process {pid} ({names[pid]})" for pid in found]
            time.sleep(0.2)
    raise LabError(f"lab processes still running after SIGKILL: {_processes(lab)}")


def _unmount_under(path: Path) -> None:
    """Mounts a stopped engine failed to undo (overlays, netns files) keep the tree busy."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
              if line.split()[1] == str(path) or line.split()[1].startswith(f"{path}/")]
    for mount in sorted(mounts, reverse=True):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)


def _remove_tree(path: Path) -> list[str]:
    if not path.exists():
        return []
    _unmount_under(path)
    shutil.rmtree(path)
    return [str(path)]


def _remove_user(lab: Lab) -> list[str]:
    if not _user_exists(lab.user):
        return []
    # this throwaway user's processes are the lab's logins; any left would block userdel
    for _ in range(20):
        pids = subprocess.run(["pgrep", "-u", lab.user], capture_output=True, text=True).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        if subprocess.run(["userdel", "--remove", lab.user], capture_output=True).returncode in (0, 12):
            break  # 12: the home could not be removed (it was never made): the user is gone
        time.sleep(0.2)
    if _user_exists(lab.user):
        raise LabError(f"user {lab.user} could not be removed (userdel --remove failed)")
    return [f"user {lab.user}"]


def _remove_file(path: Path) -> list[str]:
    if not path.exists():
        return []
    path.unlink()
    return [str(path)]


def _remove_network(lab: Lab) -> list[str]:
    removed = []
    if Path(f"/sys/class/net/{lab.host_veth}").exists():
        _run("ip", "link", "del", lab.host_veth)  # with it the peer, wherever it is
        removed.append(f"veth pair {lab.host_veth}/{lab.veth}")
    if Path(f"/run/netns/{lab.netns}").exists():
        _run("ip", "netns", "del", lab.netns)
        removed.append(f"network namespace {lab.netns}")
    return removed


def down(state_dir: Path = DEFAULT_STATE_DIR) -> list[str]:
    """Remove the lab recorded in state_dir (what exists of it); what was removed, [] for no lab.
    The state file goes last, so a `down` that fails can be run again."""
    check_can_run(making=False)
    lab = load(state_dir)
    if lab is None:
        return []
    removed = _stop_processes(lab)
    removed += (_remove_tree(lab.data_root) + _remove_tree(lab.run_dir) + _remove_tree(provisioned_dir(lab))
                + _remove_user(lab))
    for path in (lab.sudoers, lab.ssh_config, lab.inventory, lab.key, Path(f"{lab.key}.pub")):
        removed += _remove_file(path)
    removed += _remove_network(lab)
    (lab.state_dir / STATE_FILE).unlink()
    with contextlib.suppress(OSError):
        lab.state_dir.rmdir()  # only when empty: never anything of someone else's
    return removed
