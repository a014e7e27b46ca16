"""The host facts collector: complete, JSON-ready, and never raising."""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import pytest

from zcbench.host import facts as hostfacts

pytestmark = pytest.mark.provisioning

EXPECTED_FACTS = {
    "kernel_release", "kernel_cmdline", "cmdline_isolation", "cpu_model", "cpu_count", "cpus_online",
    "isolated_cpus", "nohz_full_cpus", "governors", "irqbalance", "systemd_pid1", "grub_installed",
    "memlock_limit", "nofile_limit", "sysctls", "io_uring_disabled", "interface", "docker",
    "docker_default_ulimits", "io_uring", "errors", "load_average", "wrk_version", "liburing_version",
    "compiler_versions", "smt", "numa_nodes", "memory", "virtualization", "loopback_offloads", "loopback_gso_limits",
}


def test_collects_every_fact_as_json():
    facts = hostfacts.collect_host_facts("lo")
    assert set(facts) == EXPECTED_FACTS
    json.dumps(facts)
    assert facts["kernel_release"] == os.uname().release
    assert facts["kernel_cmdline"] == Path("/proc/cmdline").read_text().strip()
    assert facts["cpu_count"] == os.cpu_count()
    assert facts["interface"]["name"] == "lo" and facts["interface"]["driver"] == "loopback"
    assert facts["io_uring"]["usable"] is True
    # every null fact says why
    for name, value in facts.items():
        if value is None:
            assert facts["errors"].get(name), f"{name} is null without a reason"


def test_sysctls_are_the_ones_provisioning_manages_read_from_proc():
    from zcbench.host.provision import role_defaults

    facts = hostfacts.collect_sysctls()
    assert set(facts) == set(role_defaults("sysctl")["sysctl_settings"])
    somaxconn = Path("/proc/sys/net/core/somaxconn").read_text().strip()
    assert facts["net.core.somaxconn"] == somaxconn
    assert "\t" not in facts["net.ipv4.ip_local_port_range"]


def test_limits_match_this_process():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hostfacts.collect_nofile_limit() == {"soft": soft, "hard": hard}


def test_a_failing_collector_becomes_null_with_its_reason(monkeypatch):
    def broken():
        raise PermissionError("no access")

    monkeypatch.setattr(hostfacts, "collect_cpu_model", broken)
    facts = hostfacts.collect_host_facts("lo")
    assert facts["cpu_model"] is None
    assert facts["errors"]["cpu_model"] == "PermissionError: no access"
    assert facts["kernel_release"]  # the others are still there


def test_a_missing_interface_is_recorded_not_raised():
    facts = hostfacts.collect_host_facts("zcbnosuchif0")
    assert facts["interface"] is None
    assert facts["errors"]["interface"] == "no interface zcbnosuchif0"


def test_unreachable_docker_is_recorded_quickly(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")
    started = time.monotonic()
    facts = hostfacts.collect_host_facts("lo")
    assert time.monotonic() - started < 10
    assert facts["docker"] is None
    assert "errors" in facts and facts["errors"]["docker"]


def test_cmdline_isolation_parameters_are_parsed(monkeypatch):
    cmdline = "root=/dev/vda isolcpus=managed_irq,domain,2-3 nohz_full=2-3 quiet"
    monkeypatch.setattr(hostfacts, "_read", lambda path: cmdline)
    assert hostfacts.collect_cmdline_isolation() == {
        "isolcpus": "managed_irq,domain,2-3", "nohz_full": "2-3", "rcu_nocbs": None, "irqaffinity": None,
    }


def test_ethtool_parsers_read_real_output_shapes():
    features = hostfacts._parse_ethtool_features(
        "Features for eth0:\nrx-checksumming: on [fixed]\n\ttx-checksum-ipv4: off [fixed]\n"
        "generic-receive-offload: on\n")
    assert features == {"rx-checksumming": "on [fixed]", "tx-checksum-ipv4": "off [fixed]",
                        "generic-receive-offload": "on"}
    channels = hostfacts._ethtool_text().parse_current_section(
        "Channel parameters for va:\nPre-set maximums:\nRX:\t\t2\nTX:\t\t2\n"
        "Current hardware settings:\nRX:\t\t1\nTX:\t\t1\nOther:\t\tn/a\nCombined:\tn/a\n")
    assert channels == {"rx": "1", "tx": "1", "other": "n/a", "combined": "n/a"}
    coalesce = hostfacts._ethtool_text().parse_coalesce(
        "Coalesce parameters for eth0:\nAdaptive RX: off  TX: n/a\nrx-usecs: 0\nrx-frames: 1\ntx-usecs-irq: n/a\n")
    assert coalesce == {"adaptive-rx": "off", "adaptive-tx": "n/a", "rx-usecs": "0", "rx-frames": "1"}
