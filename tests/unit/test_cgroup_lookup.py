"""Finding a container's cgroup CPU file on fabricated /proc + cgroup trees: on a host and from
inside a container, cgroup v1 and v2, nested paths, foreign PID namespaces, and the one-line
refusal when the cgroup is out of sight."""

import os

import pytest

from zcbench.measure import cgroups

CID = "4f" * 32  # a 64-hex Docker container id


class Host:
    """A fake /proc (self/mountinfo, PID/cgroup) and cgroup mounts under tmp_path."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.proc = tmp_path / "proc"
        (self.proc / "self").mkdir(parents=True)
        self.lines = []

    def mount(self, kind: str, root: str, where: str, options: str = "rw") -> str:
        mountpoint = self.tmp / where.lstrip("/")
        mountpoint.mkdir(parents=True, exist_ok=True)
        n = len(self.lines) + 30
        self.lines.append(f"{n} 20 0:{n} {root} {mountpoint} rw,nosuid - {kind} {kind} {options}")
        (self.proc / "self" / "mountinfo").write_text(
            "22 1 0:21 / /proc rw - proc proc rw\n" + "\n".join(self.lines) + "\n")
        return str(mountpoint)

    def process(self, pid: int, *cgroup_lines: str) -> None:
        (self.proc / str(pid)).mkdir(exist_ok=True)
        (self.proc / str(pid) / "cgroup").write_text("".join(line + "\n" for line in cgroup_lines))

    def account(self, mountpoint: str, relative: str, name: str, text: str):
        path = os.path.join(mountpoint, relative, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def lookup(self, pid, container_id=None):
        return cgroups.cgroup_cpu_file(pid, container_id, proc=self.proc)


def test_mounts_read_version_controllers_root_and_escapes(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text(
        "33 31 0:30 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
        "40 31 0:40 / /sys/fs/cgroup/with\\040space rw - cgroup2 cgroup2 rw,nsdelegate\n"
        "22 1 0:21 / /proc rw - proc proc rw\n")
    v1, v2 = cgroups.cgroup_mounts(info)
    assert (v1.version, v1.root, v1.mountpoint) == (1, "/docker/abc", "/sys/fs/cgroup/cpu,cpuacct")
    assert {"cpu", "cpuacct"} <= v1.controllers
    assert (v2.version, v2.mountpoint, v2.controllers) == (2, "/sys/fs/cgroup/with space", frozenset())


def test_v1_on_the_host(tmp_path):
    host = Host(tmp_path)
    mp = host.mount("cgroup", "/", "/sys/fs/cgroup/cpu,cpuacct", "rw,cpu,cpuacct")
    host.mount("cgroup", "/", "/sys/fs/cgroup/memory", "rw,memory")
    host.process(4242, "5:memory:/docker/" + CID, "3:cpu,cpuacct:/docker/" + CID, "1:name=systemd:/docker/" + CID)
    expected = host.account(mp, f"docker/{CID}", "cpuacct.usage", "2000000000\n")
    path, kind = host.lookup(4242, CID)
    assert (str(path), kind) == (expected, "v1")
    assert cgroups.read_cpu_seconds((path, kind)) == pytest.approx(2.0)


def test_v1_inside_a_container_paths_are_relative_to_the_mount_root(tmp_path):
    """The failure the issue saw: in a v1 container /proc/self/cgroup says /docker/<self> while
    the cpuacct mount shows that very cgroup at its mount point."""
    host = Host(tmp_path)
    mp = host.mount("cgroup", "/docker/self", "/sys/fs/cgroup/cpuacct", "rw,cpuacct")
    host.process(1, "4:cpuacct:/docker/self")
    host.process(7, "4:cpuacct:/docker/self/worker/inner")  # a nested cgroup of ours
    own = host.account(mp, "", "cpuacct.usage", "5\n")
    nested = host.account(mp, "worker/inner", "cpuacct.usage", "6\n")
    assert host.lookup(1) == (cgroups.Path(own), "v1")
    assert str(host.lookup(7)[0]) == nested


def test_v2_on_a_systemd_host_nested_path(tmp_path):
    host = Host(tmp_path)
    mp = host.mount("cgroup2", "/", "/sys/fs/cgroup")
    relative = f"system.slice/docker-{CID}.scope"
    host.process(99, f"0::/{relative}")
    expected = host.account(mp, relative, "cpu.stat", "usage_usec 1500000\nuser_usec 1\n")
    path, kind = host.lookup(99, CID)
    assert (str(path), kind) == (expected, "v2")
    assert cgroups.read_cpu_seconds((path, kind)) == pytest.approx(1.5)


def test_hybrid_prefers_v1_cpuacct(tmp_path):
    host = Host(tmp_path)
    v1 = host.mount("cgroup", "/", "/sys/fs/cgroup/cpuacct", "rw,cpuacct")
    v2 = host.mount("cgroup2", "/", "/sys/fs/cgroup/unified")
    host.process(5, "4:cpuacct:/docker/" + CID, "0::/docker/" + CID)
    host.account(v2, f"docker/{CID}", "cpu.stat", "usage_usec 1\n")
    expected = host.account(v1, f"docker/{CID}", "cpuacct.usage", "1\n")
    assert host.lookup(5, CID) == (cgroups.Path(expected), "v1")


def test_pid_of_another_pid_namespace_falls_back_to_the_container_id(tmp_path):
    """zcbench in a container: Docker's host PID is a different process here (or none)."""
    host = Host(tmp_path)
    mp = host.mount("cgroup", "/", "/sys/fs/cgroup/cpuacct", "rw,cpuacct")  # host tree bind-mounted
    host.process(4242, "4:cpuacct:/docker/someone-else")  # same number, another process
    host.account(mp, "docker/someone-else", "cpuacct.usage", "1\n")
    expected = host.account(mp, f"docker/{CID}", "cpuacct.usage", "2\n")
    assert str(host.lookup(4242, CID)[0]) == expected
    assert str(host.lookup(31337, CID)[0]) == expected  # no such PID here at all


def test_v2_container_id_found_under_a_nested_parent(tmp_path):
    host = Host(tmp_path)
    mp = host.mount("cgroup2", "/", "/sys/fs/cgroup")
    expected = host.account(mp, f"kubepods.slice/pod1/docker-{CID}.scope", "cpu.stat", "usage_usec 3\n")
    assert str(host.lookup(12, CID)[0]) == expected


def test_cgroup_outside_this_cgroup_namespace_is_refused_in_one_line(tmp_path):
    """v2 container with a private cgroup namespace: a sibling container's cgroup reads
    /../docker-<id>.scope and no mount here shows it."""
    host = Host(tmp_path)
    mp = host.mount("cgroup2", "/", "/sys/fs/cgroup")
    host.account(mp, "", "cpu.stat", "usage_usec 9\n")  # our own cgroup: must not be taken
    host.process(4242, f"0::/../docker-{CID}.scope")
    with pytest.raises(cgroups.CgroupError) as info:
        host.lookup(4242, CID)
    message = str(info.value)
    assert "\n" not in message and CID[:12] in message and "--cgroupns=host" in message


def test_no_cgroup_accounting_mounted(tmp_path):
    host = Host(tmp_path)
    host.mount("cgroup", "/", "/sys/fs/cgroup/memory", "rw,memory")
    host.process(1, "3:memory:/")
    with pytest.raises(cgroups.CgroupError, match="no cgroup CPU accounting mounted here"):
        host.lookup(1)


def test_cgroup_cpu_file_of_this_process():
    """Whatever this test runs in (host, v1 or v2 container): its own cgroup is in sight."""
    path, kind = cgroups.cgroup_cpu_file(os.getpid())
    assert kind in ("v1", "v2") and path.exists()
    assert cgroups.read_cpu_seconds((path, kind)) > 0


class FakeRemoteContainer:
    """A container on another host: its CPU file through `docker exec cat`, its engine's stats API."""

    def __init__(self, files: dict[str, list[str]], api_ns: int):
        self.files = {path: iter(texts) for path, texts in files.items()}
        self.api_ns, self.execs, self.api_calls = api_ns, [], 0

    def exec_run(self, argv):
        self.execs.append(argv)
        texts = self.files.get(argv[1])
        return (0, next(texts).encode()) if texts else (1, b"cat: no such file")

    def stats(self, stream, one_shot):
        self.api_calls += 1
        return {"cpu_stats": {"cpu_usage": {"total_usage": self.api_ns}}}


def test_cpu_files_as_a_container_sees_them_are_parsed():
    assert cgroups.parse_cpu_text("usage_usec 1500000\nuser_usec 1000000\n") == 1.5
    assert cgroups.parse_cpu_text("2500000000\n") == 2.5
    assert cgroups.parse_cpu_text("") is None and cgroups.parse_cpu_text("garbage") is None


def test_a_remote_containers_own_cpu_file_is_used_once_it_reads_what_the_engine_reads():
    v2 = "/sys/fs/cgroup/cpu.stat"
    container = FakeRemoteContainer({v2: ["usage_usec 1000000\n", "usage_usec 1001000\n", "usage_usec 3000000\n"]},
                                    api_ns=1_000_500_000)
    cpu = cgroups.EngineCpu.probe(container)
    assert cpu.path == v2 and container.api_calls == 1
    assert cpu.read() == 3.0 and container.api_calls == 1  # read by exec from then on


def test_a_cpu_file_that_is_not_the_containers_own_leaves_the_engines_api():
    # cgroup v2 with the host's namespace: the container sees the host's root, far above its own
    v2 = "/sys/fs/cgroup/cpu.stat"
    container = FakeRemoteContainer({v2: ["usage_usec 900000000\n", "usage_usec 900100000\n"]}, api_ns=2_000_000_000)
    cpu = cgroups.EngineCpu.probe(container)
    assert cpu.path is None and cpu.read() == 2.0 and container.api_calls == 2
    # no file at all (the server's image has no `cat`): the API too
    bare = FakeRemoteContainer({}, api_ns=7_000_000_000)
    assert cgroups.EngineCpu.probe(bare).read() == 7.0
    assert [argv[1] for argv in bare.execs] == list(cgroups.IN_CONTAINER_CPU_FILES)
