"""A container's CPU time: the cgroup file that accounts it, found from this process's view of
the cgroup mounts (on a host, or from inside a container), or, for a container on another host,
read there (EngineCpu). The bench reads it before and after each measured window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


class CgroupError(RuntimeError):
    """No CPU accounting can be found for a container; the message says why in one line."""


@dataclass(frozen=True)
class CgroupMount:
    """One cgroup filesystem mount as /proc/self/mountinfo shows it."""
    version: int  # 1 or 2
    controllers: frozenset[str]  # v1: e.g. {"cpu", "cpuacct"}; v2: empty
    root: str  # the cgroup path shown at the mount point ("/" on a host, "/docker/<id>" in a v1 container)
    mountpoint: str


def _unescape(field: str) -> str:
    """mountinfo octal escapes (\\040 for a space)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def cgroup_mounts(mountinfo: Path = Path("/proc/self/mountinfo")) -> list[CgroupMount]:
    mounts = []
    for line in mountinfo.read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        root, mountpoint = _unescape(fields[3]), _unescape(fields[4])
        if tail[0] == "cgroup2":
            mounts.append(CgroupMount(2, frozenset(), root, mountpoint))
        elif tail[0] == "cgroup":
            mounts.append(CgroupMount(1, frozenset(tail[2].split(",")), root, mountpoint))
    return mounts


def _within(path: str, root: str) -> str | None:
    """`path` relative to `root` when it lies at or under it (cgroup paths, '/'-separated)."""
    if ".." in path.split("/"):  # a cgroup outside this cgroup namespace
        return None
    root = root.rstrip("/")
    if not root:
        return path.lstrip("/")
    if path == root:
        return ""
    return path[len(root) + 1:] if path.startswith(root + "/") else None


def _accounting_mounts(mounts: list[CgroupMount]) -> list[tuple[CgroupMount, str, str]]:
    """(mount, file name, kind) of the mounts that account CPU time: v1 cpuacct before v2
    (on a hybrid host the v2 tree holds no processes of interest)."""
    v1 = [(m, "cpuacct.usage", "v1") for m in mounts if m.version == 1 and "cpuacct" in m.controllers]
    v2 = [(m, "cpu.stat", "v2") for m in mounts if m.version == 2]
    return v1 + v2


def _resolve(entries: list[tuple[str, str, str]], mounts: list[CgroupMount]) -> tuple[Path, str] | None:
    """The accounting file of a /proc/PID/cgroup listing, each path taken relative to the root
    of the mount that shows it (the longest matching root: nested and bind mounts)."""
    for mount, name, kind in _accounting_mounts(mounts):
        for hierarchy, controllers, path in entries:
            wanted = ("cpuacct" in controllers.split(",")) if kind == "v1" else (hierarchy == "0" and not controllers)
            relative = _within(path, mount.root) if wanted else None
            if relative is None:  # another hierarchy, or outside what this mount shows ("/..")
                continue
            candidate = Path(mount.mountpoint, relative, name)
            if candidate.exists():
                return candidate, kind
    return None


#: Where Docker puts a container's cgroup: cgroupfs driver, systemd driver; under any parent.
_CONTAINER_DIRS = ("{id}", "docker-{id}.scope")
_SEARCH_DEPTH = 4


def _find_by_id(container_id: str, mounts: list[CgroupMount]) -> tuple[Path, str] | None:
    """The accounting file of the cgroup directory Docker named after `container_id`."""
    names = {pattern.format(id=container_id) for pattern in _CONTAINER_DIRS}
    for mount, name, kind in _accounting_mounts(mounts):
        level = [Path(mount.mountpoint)]
        for _ in range(_SEARCH_DEPTH):
            below = []
            for directory in level:
                try:
                    children = [c for c in directory.iterdir() if c.is_dir()]
                except OSError:
                    continue
                for child in children:
                    if child.name in names and (child / name).exists():
                        return child / name, kind
                below += children
            level = below
    return None


def cgroup_cpu_file(pid: int, container_id: str | None = None, proc: Path = Path("/proc")) -> tuple[Path, str]:
    """(file, kind) holding the CPU time of the cgroup of `pid`: cgroup v1 cpuacct.usage (ns)
    or cgroup v2 cpu.stat (usage_usec).

    Works on a host and when zcbench itself runs in a container: paths are taken relative to
    each cgroup mount's root (a v1 container sees its own cgroup "/docker/<id>" mounted at
    /sys/fs/cgroup/cpuacct). `pid` is a host PID (Docker's State.Pid); in another PID
    namespace that number is someone else or no one, so with `container_id` the PID's cgroup
    must name the container, else the cgroup directory named after the id is looked up.
    ContainerError in one line when the cgroup is out of this process's sight."""
    mounts = cgroup_mounts(proc / "self" / "mountinfo")
    if not _accounting_mounts(mounts):
        raise CgroupError("no cgroup CPU accounting mounted here (no cgroup2, no cgroup v1 cpuacct "
                             "in /proc/self/mountinfo)")
    try:
        text = (proc / str(pid) / "cgroup").read_text()
    except OSError:
        text = ""
    entries = [tuple(line.split(":", 2)) for line in text.splitlines() if line.count(":") >= 2]
    if container_id and not any(container_id in path for _, _, path in entries):
        entries = []  # the PID is not that container's process in this PID namespace
    found = (_resolve(entries, mounts) if entries else None) or (
        _find_by_id(container_id, mounts) if container_id else None)
    if found:
        return found
    whose = f"container {container_id[:12]}" if container_id else f"pid {pid}"
    raise CgroupError(
        f"no cgroup CPU accounting file for {whose}: its cgroup is outside the cgroup tree this "
        "process sees (in a container, run zcbench with the host's: --cgroupns=host --pid=host "
        "-v /sys/fs/cgroup:/sys/fs/cgroup:ro)")


def read_cpu_seconds(cpu_file: tuple[Path, str]) -> float:
    path, kind = cpu_file
    text = path.read_text()
    if kind == "v1":
        return int(text) / 1e9
    usage = next(line.split()[1] for line in text.splitlines() if line.startswith("usage_usec"))
    return int(usage) / 1e6


def engine_cpu_seconds(container) -> float:
    """CPU seconds of a container as its engine accounts them (the same cgroup counter), through
    the API: for a container on another host, whose cgroup files this process cannot read."""
    stats = container.stats(stream=False, one_shot=True)
    return int(stats["cpu_stats"]["cpu_usage"]["total_usage"]) / 1e9


#: Where a container sees its own CPU time: cgroup v2 in its own namespace, then v1's controllers.
IN_CONTAINER_CPU_FILES = ("/sys/fs/cgroup/cpu.stat", "/sys/fs/cgroup/cpuacct/cpuacct.usage",
                          "/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage")
#: How far the engine's reading may stray outside the two in-container readings around it.
PROBE_TOLERANCE_S = 0.002


def parse_cpu_text(text: str) -> float | None:
    """CPU seconds from a cgroup CPU file's text: v2's cpu.stat, or v1's cpuacct.usage (ns)."""
    match = re.search(r"^usage_usec (\d+)", text, re.MULTILINE)
    if match:
        return int(match.group(1)) / 1e6
    text = text.strip()
    return int(text) / 1e9 if text.isdigit() else None


def exec_cpu_seconds(container, path: str) -> float | None:
    """The CPU file at `path` as the container sees it, read by `cat` there (None: no such file,
    or no `cat`: the server's image holds its binary alone)."""
    try:
        code, output = container.exec_run(["cat", path])
    except Exception:  # noqa: BLE001 - the engine refused the exec: nothing to run it with
        return None
    return parse_cpu_text((output or b"").decode(errors="replace")) if code == 0 else None


@dataclass
class EngineCpu:
    """A container's CPU time on another host. The engine's stats API answers in about 5 ms, but
    a second call within a second of the last waits for its collector's next tick (up to 1 s,
    measured), and a bench cell reads twice, back to back with the next cell's first reading. A
    `cat` of the container's own CPU file through `docker exec` takes about 50 ms. It is used
    where it reads what the engine reads (probed once: the API's reading lies between two of the
    file's), else the API. The exec's `cat` is charged to the container: under a millisecond."""
    container: object
    path: str | None  # the in-container file, or None: the engine's API

    @classmethod
    def probe(cls, container) -> EngineCpu:
        for path in IN_CONTAINER_CPU_FILES:
            before = exec_cpu_seconds(container, path)
            if before is None:
                continue
            through_api = engine_cpu_seconds(container)
            after = exec_cpu_seconds(container, path)
            if after is not None and before - PROBE_TOLERANCE_S <= through_api <= after + PROBE_TOLERANCE_S:
                return cls(container, path)
            break  # the container's file is not its own (the host's cgroup root): the API
        return cls(container, None)

    def read(self) -> float:
        if self.path is not None:
            seconds = exec_cpu_seconds(self.container, self.path)
            if seconds is not None:
                return seconds
        return engine_cpu_seconds(self.container)
