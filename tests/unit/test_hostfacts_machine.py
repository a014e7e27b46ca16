"""The manifest's machine and tool facts (issue 10 item 5), each parsed from fabricated input:
every test here fails if its parser or the collector's null-plus-reason path breaks."""

from __future__ import annotations

import subprocess

import pytest

from zcbench.host import facts as hostfacts
from zcbench.host.facts import FactUnavailable
from zcbench.present.environment import host_rows

# --- tools ------------------------------------------------------------------------------------


def test_wrk_version_from_its_banner(monkeypatch):
    banner = "wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer\nUsage: wrk <options> <url>\n"
    monkeypatch.setattr(hostfacts, "_tool_output", lambda *argv: banner)
    assert hostfacts.collect_wrk_version() == "debian/4.1.0-3+b2"
    assert hostfacts.parse_wrk_version("wrk 4.2.0 [kqueue] Copyright") == "4.2.0"
    with pytest.raises(FactUnavailable, match="unrecognised"):
        hostfacts.parse_wrk_version("Usage: wrk <options> <url>")


def test_missing_tool_is_a_reason_not_a_crash(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(FactUnavailable, match="wrk not installed"):
        hostfacts.collect_wrk_version()
    facts = hostfacts.collect_host_facts("lo")
    assert facts["wrk_version"] is None and facts["errors"]["wrk_version"] == "wrk not installed on this host"


def test_liburing_version_from_its_header(tmp_path):
    header = tmp_path / "io_uring_version.h"
    header.write_text("#ifndef LIBURING_VERSION_H\n#define IO_URING_VERSION_MAJOR 2\n"
                      "#define IO_URING_VERSION_MINOR 9\n#endif\n")
    assert hostfacts.collect_liburing_version(header) == {"version": "2.9", "source": str(header)}
    header.write_text("#define IO_URING_VERSION_MAJOR 2\n")
    with pytest.raises(FactUnavailable):
        hostfacts.collect_liburing_version(header)


def test_liburing_version_from_pkg_config_without_a_header(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(hostfacts, "_run", lambda *argv, **kw: calls.append(argv) or "2.3\n")
    got = hostfacts.collect_liburing_version(tmp_path / "absent.h")
    assert got == {"version": "2.3", "source": "pkg-config liburing"}
    assert calls == [("pkg-config", "--modversion", "liburing")]
    monkeypatch.setattr(hostfacts, "_run", lambda *argv, **kw: "Package liburing was not found\n")
    with pytest.raises(FactUnavailable, match="pkg-config says"):
        hostfacts.collect_liburing_version(tmp_path / "absent.h")


def test_compiler_versions_first_lines_and_absent_ones(monkeypatch):
    outputs = {"cc": "cc (Debian 12.2.0-14+deb12u1) 12.2.0\nCopyright (C) 2022\n",
               "gcc": "gcc (Debian 12.2.0-14+deb12u1) 12.2.0\n"}

    def fake(tool, *args):
        if tool not in outputs:
            raise FactUnavailable(f"{tool} not installed on this host")
        return outputs[tool]

    monkeypatch.setattr(hostfacts, "_tool_output", fake)
    assert hostfacts.collect_compiler_versions() == {
        "cc": "cc (Debian 12.2.0-14+deb12u1) 12.2.0", "gcc": "gcc (Debian 12.2.0-14+deb12u1) 12.2.0", "clang": None}
    outputs.clear()
    with pytest.raises(FactUnavailable, match="no C compiler"):
        hostfacts.collect_compiler_versions()
    with pytest.raises(FactUnavailable):
        hostfacts.parse_compiler_version("command not found")


# --- machine ----------------------------------------------------------------------------------


def test_smt_from_sysfs(tmp_path):
    (tmp_path / "smt").mkdir()
    (tmp_path / "smt" / "active").write_text("1\n")
    (tmp_path / "smt" / "control").write_text("on\n")
    assert hostfacts.collect_smt(tmp_path) == {"active": True, "control": "on"}
    (tmp_path / "smt" / "active").write_text("0\n")
    (tmp_path / "smt" / "control").write_text("notsupported\n")
    assert hostfacts.collect_smt(tmp_path) == {"active": False, "control": "notsupported"}
    (tmp_path / "smt" / "active").write_text("maybe\n")
    with pytest.raises(FactUnavailable):
        hostfacts.collect_smt(tmp_path)
    with pytest.raises(FactUnavailable, match="CONFIG_HOTPLUG_SMT"):
        hostfacts.collect_smt(tmp_path / "nowhere")


def test_numa_nodes_in_numeric_order(tmp_path):
    for node, cpus in (("node0", "0-3"), ("node1", "4-7"), ("node10", "8")):
        (tmp_path / node).mkdir()
        (tmp_path / node / "cpulist").write_text(cpus + "\n")
    (tmp_path / "online").write_text("0-1,10\n")  # not a node directory
    got = hostfacts.collect_numa_nodes(tmp_path)
    assert got == {"count": 3, "cpus": {"node0": "0-3", "node1": "4-7", "node10": "8"}}
    assert list(got["cpus"]) == ["node0", "node1", "node10"]
    with pytest.raises(FactUnavailable, match="CONFIG_NUMA"):
        hostfacts.collect_numa_nodes(tmp_path / "none")


def test_memory_in_bytes_from_meminfo(monkeypatch):
    meminfo = ("MemTotal:       24684084 kB\nMemFree:        1 kB\nMemAvailable:   24033580 kB\n"
               "SwapTotal:             0 kB\nHugePages_Total:       4\nHugepagesize:       2048 kB\n")
    monkeypatch.setattr(hostfacts, "_read", lambda path: meminfo)
    assert hostfacts.collect_memory() == {
        "total_bytes": 24684084 * 1024, "available_bytes": 24033580 * 1024, "swap_total_bytes": 0,
        "hugepages_total": 4, "hugepage_size_bytes": 2048 * 1024}
    with pytest.raises(FactUnavailable, match="MemTotal"):
        hostfacts.parse_meminfo("MemFree: 1 kB\n")


def _fake_detect_virt(answers):
    def run(argv, **kwargs):
        if argv[0] != "systemd-detect-virt":
            raise AssertionError(argv)
        if answers is None:
            raise FileNotFoundError(argv[0])
        answer = answers[argv[1]]
        return subprocess.CompletedProcess(argv, 0 if answer != "none" else 1, answer + "\n", "")
    return run


def test_virtualization_from_three_witnesses(monkeypatch, tmp_path):
    cpuinfo = "processor\t: 0\nflags\t\t: fpu vme sse2 hypervisor avx2\n\nprocessor\t: 1\nflags\t\t: fpu\n"
    monkeypatch.setattr(hostfacts, "_safe_read",
                        lambda path: cpuinfo if str(path) == "/proc/cpuinfo" else (tmp_path / "type").read_text().strip())
    monkeypatch.setattr(hostfacts.subprocess, "run", _fake_detect_virt({"--vm": "kvm", "--container": "none"}))
    (tmp_path / "type").write_text("xen\n")
    got = hostfacts.collect_virtualization(tmp_path)
    assert got == {"virtualized": True, "systemd_detect_virt_vm": "kvm", "systemd_detect_virt_container": "none",
                   "sys_hypervisor_type": "xen", "cpuinfo_hypervisor_flag": True}


def test_bare_metal_and_no_witness_at_all(monkeypatch, tmp_path):
    monkeypatch.setattr(hostfacts.subprocess, "run", _fake_detect_virt({"--vm": "none", "--container": "none"}))
    monkeypatch.setattr(hostfacts, "_safe_read", lambda path: "flags\t: fpu vme sse2\n")
    got = hostfacts.collect_virtualization(tmp_path / "no-hypervisor")
    assert got["virtualized"] is False and got["cpuinfo_hypervisor_flag"] is False
    assert got["sys_hypervisor_type"] is None
    monkeypatch.setattr(hostfacts.subprocess, "run", _fake_detect_virt(None))  # not installed
    monkeypatch.setattr(hostfacts, "_safe_read", lambda path: "processor : 0\n")  # no flags line
    with pytest.raises(FactUnavailable, match="no systemd-detect-virt"):
        hostfacts.collect_virtualization(tmp_path / "no-hypervisor")


def test_load_average_from_proc(monkeypatch):
    monkeypatch.setattr(hostfacts, "_read", lambda path: "1.57 0.60 0.22 6/113 10285")
    assert hostfacts.collect_load_average() == {"1m": 1.57, "5m": 0.60, "15m": 0.22, "runnable": 6, "threads": 113}
    with pytest.raises(FactUnavailable):
        hostfacts.parse_loadavg("1.57 0.60")


# --- loopback ---------------------------------------------------------------------------------


def test_loopback_offloads_from_ethtool(monkeypatch):
    text = ("Features for lo:\nrx-checksumming: on [fixed]\ntcp-segmentation-offload: on\n"
            "\ttx-tcp-segmentation: on\ngeneric-receive-offload: off\n")
    calls = []
    monkeypatch.setattr(hostfacts, "_run", lambda *argv, **kw: calls.append(argv) or text)
    assert hostfacts.collect_loopback_offloads() == {
        "rx-checksumming": "on [fixed]", "tcp-segmentation-offload": "on", "tx-tcp-segmentation": "on",
        "generic-receive-offload": "off"}
    assert calls == [("ethtool", "-k", "lo")]


def test_loopback_offloads_without_ethtool_is_null_with_reason(monkeypatch):
    def missing(*argv, **kw):
        raise FileNotFoundError(argv[0])

    monkeypatch.setattr(hostfacts, "_run", missing)
    with pytest.raises(FactUnavailable, match="ethtool not installed"):
        hostfacts.collect_loopback_offloads()
    facts = hostfacts.collect_host_facts("lo")
    assert facts["loopback_offloads"] is None and "ethtool not installed" in facts["errors"]["loopback_offloads"]


def test_loopback_gso_limits_from_ip_link(monkeypatch):
    text = ("1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\n    link/loopback 00:00:00:00:00:00"
            " promiscuity 0 numtxqueues 1 gso_max_size 65536 gso_max_segs 65535 tso_max_size 524280"
            " tso_max_segs 65535 gro_max_size 65536 \n")
    monkeypatch.setattr(hostfacts, "_run", lambda *argv, **kw: text)
    assert hostfacts.collect_loopback_gso_limits() == {
        "gso_max_size": 65536, "gso_max_segs": 65535, "tso_max_size": 524280, "tso_max_segs": 65535,
        "gro_max_size": 65536}
    with pytest.raises(FactUnavailable):
        hostfacts.parse_link_gso_limits("1: lo: <LOOPBACK> mtu 65536\n")


# --- the report's rows ------------------------------------------------------------------------


def test_report_rows_render_values_and_reasons():
    host = {"smt": {"active": False, "control": "notsupported"}, "numa_nodes": {"count": 2, "cpus": {}},
            "memory": {"total_bytes": 8 * 1024 ** 3, "available_bytes": 6 * 1024 ** 3},
            "virtualization": {"systemd_detect_virt_vm": "kvm", "cpuinfo_hypervisor_flag": True},
            "load_average": {"1m": 1.5, "5m": 0.25, "15m": 0.125},
            "wrk_version": "4.1.0", "liburing_version": {"version": "2.3"}, "compiler_versions": {"cc": "cc 12.2.0"},
            "loopback_offloads": None, "errors": {"loopback_offloads": "ethtool not installed"}}
    rows = dict(host_rows(host))
    assert rows["SMT / NUMA nodes"] == "off (notsupported) / 2"
    assert rows["Memory"] == "8.0 GiB, 6.0 GiB available"
    assert rows["Virtualization"] == "systemd_detect_virt_vm kvm, cpuinfo_hypervisor_flag True"
    assert rows["Load average at start (1/5/15 min)"] == "1.50 0.25 0.12"
    assert rows["wrk / liburing / cc"] == "4.1.0 / 2.3 / cc 12.2.0"
    assert rows["Loopback offloads"] == "unknown (ethtool not installed)"
    # an old manifest without these facts still renders
    assert dict(host_rows({}))["Memory"] == "unknown"
