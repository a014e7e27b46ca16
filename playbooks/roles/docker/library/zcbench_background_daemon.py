#!/usr/bin/python
"""Run a daemon detached in the background where no service manager does (no systemd as PID 1)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: zcbench_background_daemon
short_description: Start, restart or adopt a detached daemon and wait until its API answers
description:
  - A daemon is running when O(pidfile) names a live process whose command name is O(name);
    such a daemon is adopted, whoever started it.
  - C(state=started) starts it when not running; C(state=restarted) stops a running one
    (SIGTERM, then waits) and starts it again. The new process gets its own session, stdin from
    /dev/null and stdout/stderr appended to O(log), so it outlives the Ansible run.
  - After a start it waits until O(socket) accepts a connection and, with O(ping_path), until
    an HTTP GET on it answers 200 (Docker's /_ping).
options:
  name: {description: Command name of the daemon (/proc/PID/comm)., type: str, required: true}
  command: {description: Command line to start it., type: list, elements: str, required: true}
  pidfile: {description: Pidfile the daemon writes., type: path, required: true}
  log: {description: File that receives the daemon's output., type: path, required: true}
  socket: {description: Unix socket to wait for., type: path}
  ping_path: {description: HTTP path on O(socket) that must answer 200., type: str}
  state: {description: started or restarted., type: str, default: started, choices: [started, restarted]}
  timeout: {description: Seconds to wait for a start or a stop., type: int, default: 60}
"""

EXAMPLES = r"""
- name: Start dockerd without systemd
  zcbench_background_daemon:
    name: dockerd
    command: [/usr/sbin/dockerd]
    pidfile: /var/run/docker.pid
    log: /var/log/zcbench-dockerd.log
    socket: /var/run/docker.sock
    ping_path: /_ping
"""

RETURN = r"""
pid: {description: The daemon's process id afterwards., type: int, returned: success and not check mode}
adopted: {description: True when an already running daemon was kept., type: bool, returned: always}
"""

import os
import signal
import socket as socketlib
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule


# The daemon's environment: a standard PATH, nothing inherited from Ansible or the caller's
# virtualenv, so it runs the same however provisioning was started.
DAEMON_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def running_pid(pidfile: str, name: str) -> int | None:
    try:
        with open(pidfile) as handle:
            pid = int(handle.read().strip())
        with open(f"/proc/{pid}/comm") as handle:
            return pid if handle.read().strip() == name else None
    except (OSError, ValueError):
        return None


def answers(path: str, ping_path: str | None) -> bool:
    try:
        with socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM) as conn:
            conn.settimeout(2)
            conn.connect(path)
            if not ping_path:
                return True
            conn.sendall(f"GET {ping_path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
            return conn.recv(64).split(b"\r\n", 1)[0].split(b" ")[1:2] == [b"200"]
    except (OSError, IndexError):
        return False


def wait_until(predicate, timeout: int) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def stop(pid: int, timeout: int) -> bool:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    return wait_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout)


def start(command: list[str], log: str) -> int:
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "ab") as out, open(os.devnull, "rb") as devnull:
        child = subprocess.Popen(
            command, stdin=devnull, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, cwd="/", env=DAEMON_ENV,
        )
    return child.pid


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "command": {"type": "list", "elements": "str", "required": True},
            "pidfile": {"type": "path", "required": True},
            "log": {"type": "path", "required": True},
            "socket": {"type": "path"},
            "ping_path": {"type": "str"},
            "state": {"type": "str", "default": "started", "choices": ["started", "restarted"]},
            "timeout": {"type": "int", "default": 60},
        },
        supports_check_mode=True,
    )
    params = module.params
    pid = running_pid(params["pidfile"], params["name"])
    if pid and params["state"] == "started":
        module.exit_json(changed=False, pid=pid, adopted=True)
    if module.check_mode:
        module.exit_json(changed=True, adopted=False)
    if pid and not stop(pid, params["timeout"]):
        module.fail_json(msg=f"{params['name']} (pid {pid}) did not exit within {params['timeout']}s of SIGTERM")
    child = start(params["command"], params["log"])

    def ready() -> bool:
        if running_pid(params["pidfile"], params["name"]) is None:
            return False
        return not params["socket"] or answers(params["socket"], params["ping_path"])

    if not wait_until(ready, params["timeout"]):
        with open(params["log"], errors="replace") as handle:
            tail = " | ".join(handle.read().splitlines()[-5:])
        module.fail_json(msg=f"{params['name']} not ready within {params['timeout']}s; last log lines: {tail}")
    module.exit_json(changed=True, pid=running_pid(params["pidfile"], params["name"]) or child, adopted=False)


if __name__ == "__main__":
    main()
