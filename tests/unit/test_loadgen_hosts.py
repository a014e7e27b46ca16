"""A run across an inventory's hosts, without Docker: wrk's figures from several loadgens made
into one cell, the Config an inventory gives, how a remote host is reached and described."""

from __future__ import annotations

import json
import random
import statistics
import subprocess

import pytest
import yaml

from zcbench.measure import bench
from zcbench.host import engines, remote_facts
from zcbench.host import inventory as hosts
from zcbench.measure.config import HOSTS_PATH, Config, ConfigError
from zcbench.core.samples import Cell
from zcbench.measure.loadgen.base import ERROR_KINDS, HEADLINE_PERCENTILES, LoadRun, combine_results, split_evenly

SYSTEM_PYTHON = "/usr/bin/python3"  # what a remote host runs the facts with (Ansible needs it there too)
CELL = Cell(index=0, server="zcbench", arm="regular", conns=100, response_size=88, rep=0)


def wrk_result(latencies: list[float], duration_us: int, errors: int = 0) -> dict:
    """A report.lua object computed from raw latencies, the way wrk would summarize them."""
    ordered = sorted(latencies)

    def pct(p):
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    return {"zcbench_wrk": 1, "requests": len(ordered), "duration_us": duration_us,
            "bytes": 88 * len(ordered), "requests_per_s": len(ordered) / (duration_us / 1e6),
            "errors": {kind: (errors if kind == "read" else 0) for kind in ERROR_KINDS},
            "latency_us": {"mean": statistics.fmean(ordered), "stdev": statistics.pstdev(ordered),
                           "min": ordered[0], "max": ordered[-1],
                           **{f"p{p:g}": pct(p) for p in (50, 75, 90, 99, 99.9, 99.99)}},
            "percentiles_us": [[p, pct(p)] for p in (50, 90, 99)]}


def test_split_evenly_keeps_the_total_and_differs_by_at_most_one():
    for total in (1, 7, 100, 4001):
        for parts in (1, 2, 3, 7):
            shares = split_evenly(total, parts)
            assert sum(shares) == total and len(shares) == parts
            assert max(shares) - min(shares) <= 1


def test_combined_mean_and_stdev_are_those_of_all_requests_together():
    rng = random.Random(7)
    a = [rng.gauss(300, 40) for _ in range(3000)]
    b = [rng.gauss(900, 150) for _ in range(1000)]  # a slower, smaller loadgen
    combined = combine_results([wrk_result(a, 2_000_000, errors=2), wrk_result(b, 2_010_000, errors=1)])
    assert combined["requests"] == 4000
    assert combined["bytes"] == 88 * 4000
    assert combined["errors"]["read"] == 3
    assert combined["latency_us"]["mean"] == pytest.approx(statistics.fmean(a + b))
    assert combined["latency_us"]["stdev"] == pytest.approx(statistics.pstdev(a + b))
    assert combined["latency_us"]["min"] == min(a + b) and combined["latency_us"]["max"] == max(a + b)
    assert combined["duration_us"] == 2_010_000
    # percentiles: the highest of the two, never below the true combined one, and said so
    everything = sorted(a + b)
    for key in HEADLINE_PERCENTILES:
        assert combined["latency_us"][key] == max(wrk_result(a, 1, 0)["latency_us"][key],
                                                  wrk_result(b, 1, 0)["latency_us"][key])
    assert combined["latency_us"]["p50"] >= everything[len(everything) // 2]
    assert "upper bound" in combined["percentiles_combined"]
    assert combined["combined_from"] == 2


def test_one_loadgen_is_left_as_it_is():
    result = wrk_result([100.0, 200.0], 1_000_000)
    assert combine_results([result]) is result


def run(result, cpu_s, wall_s, threads=1) -> LoadRun:
    return LoadRun(result, cpu_s, wall_s, ("wrk", "-t", str(threads), "-c", "50", "http://x/"), threads)


def test_a_sample_of_two_loadgens_sums_their_rates_and_is_bound_by_the_busiest():
    fast = wrk_result([100.0] * 60000, 2_000_000)
    slow = wrk_result([300.0] * 20000, 1_000_000)
    s = bench.build_sample(CELL, started_at="a", finished_at="b",
                           measured=[run(fast, 0.5, 2.0), run(slow, 1.95, 2.0)],
                           server_counters=None, server_cpu_s=1.0, loadgen_cores=1,
                           loadgen_names=["lg1", "lg2"])
    assert s.requests == 80000
    assert s.requests_per_s == pytest.approx(30000 + 20000)  # each over its own clock
    assert [part.host for part in s.loadgens] == ["lg1", "lg2"]
    assert s.loadgens[1].cpu_share == pytest.approx(0.975)
    assert s.loadgen_cpu_share == pytest.approx(0.975) and s.loadgen_bound
    assert s.loadgen_cpu_s == pytest.approx(2.45)
    assert s.cpu_us_per_request == pytest.approx(1e6 / 80000)
    json.dumps(s.to_json())


def test_the_cores_of_a_loadgen_are_its_threads_at_most():
    result = wrk_result([100.0] * 1000, 1_000_000)
    s = bench.build_sample(CELL, started_at="a", finished_at="b", measured=[run(result, 0.98, 1.0, threads=1)],
                           server_counters=None, server_cpu_s=1.0, loadgen_cores=4)
    assert s.loadgen_cpu_share == pytest.approx(0.98)  # one thread: one core, not four


# --- the Config an inventory gives -----------------------------------------------------------


def write_inventory(tmp_path, server: dict, loadgens: dict, name="hosts.yml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"all": {"children": {"server": {"hosts": server},
                                                         "loadgen": {"hosts": loadgens}}}}))
    return path


HERE = {"localhost": {"ansible_connection": "local", "zcbench_server_address": "10.9.0.1",
                      "nic_interface": "eth1", "cpu_isolation_server_cpus": "1"}}
REMOTE = {"lg": {"ansible_host": "10.9.0.2", "ansible_user": "bench", "cpu_isolation_loadgen_cpus": "3"}}


def test_an_inventory_puts_the_server_on_its_address_and_cpus_from_the_hosts(tmp_path):
    config = Config.from_args(inventory=str(write_inventory(tmp_path, HERE, REMOTE)), online_cpus={0, 1})
    assert config.path == HOSTS_PATH and config.bind == "10.9.0.1"
    assert config.server_cpus == (1,)
    assert config.loadgen_cpus == (3,)  # the remote host's own CPU, not checked against this one's
    assert config.inventory == str((tmp_path / "hosts.yml").resolve())
    assert Config.from_args(**_rerun_args(config), online_cpus={0, 1}) == config


def test_an_inventory_whose_wrk_could_not_reach_the_server_is_refused_with_one_line(tmp_path):
    on_loopback = {k: v for k, v in HERE["localhost"].items() if k != "zcbench_server_address"}
    with pytest.raises(ConfigError, match="wrk on lg cannot reach the server at 127.0.0.1; "
                                          "set zcbench_server_address on localhost"):
        Config.from_args(inventory=str(write_inventory(tmp_path, {"localhost": on_loopback}, REMOTE)),
                         online_cpus={0, 1})
    no_nic = {k: v for k, v in HERE["localhost"].items() if k != "nic_interface"}
    with pytest.raises(ConfigError, match="set nic_interface on localhost to the NIC the traffic from lg"):
        Config.from_args(inventory=str(write_inventory(tmp_path, {"localhost": no_nic}, REMOTE, "nonic.yml")),
                         online_cpus={0, 1})
    for address in ("0.0.0.0", "[::1]", "127.0.1.1"):
        with pytest.raises(ConfigError, match="cannot reach the server"):
            server = HERE["localhost"] | {"zcbench_server_address": address}
            Config.from_args(inventory=str(write_inventory(tmp_path, {"localhost": server}, REMOTE, "any.yml")),
                             online_cpus={0, 1})
    # one host in both groups: loopback is its bench link, nothing to set
    alone = {"localhost": {"ansible_connection": "local"}}
    config = Config.from_args(inventory=str(write_inventory(tmp_path, alone, alone, "one.yml")), online_cpus={0, 1})
    assert config.bind == "127.0.0.1"


def _rerun_args(config):
    from zcbench.measure.config import args_of_config

    return args_of_config(json.loads(json.dumps(config.to_json())))


def test_a_server_over_ssh_gets_its_cpus_checked_there_not_here(tmp_path):
    remote_server = write_inventory(tmp_path, {"srv": {"ansible_host": "10.9.0.1", "cpu_isolation_server_cpus": "6",
                                                       "nic_interface": "eth1"}},
                                    {"localhost": {"ansible_connection": "local"}}, "remote.yml")
    config = Config.from_args(inventory=str(remote_server), online_cpus={0, 1})
    assert config.bind == "10.9.0.1" and config.server_cpus == (6,) and config.loadgen_cpus == (1,)
    # wrk here: its CPUs are this machine's
    with pytest.raises(ConfigError, match="--loadgen-cpus '5'"):
        Config.from_args(inventory=str(remote_server), loadgen_cpus="5", online_cpus={0, 1})
    # two hosts: the same CPU numbers on each are no overlap
    assert Config.from_args(inventory=str(remote_server), server_cpus="1", online_cpus={0, 1}).server_cpus == (1,)
    assert hosts.load_inventory(remote_server).path_description() == "two hosts over eth1: server on srv, wrk on localhost"


def test_inventory_mistakes_are_one_line(tmp_path):
    both = str(write_inventory(tmp_path, HERE, REMOTE))
    with pytest.raises(ConfigError, match="--path veth with an inventory"):
        Config.from_args(inventory=both, path="veth", online_cpus={0, 1})
    with pytest.raises(ConfigError, match="set zcbench_server_address"):
        Config.from_args(inventory=both, bind="10.9.0.7", online_cpus={0, 1})
    two = str(write_inventory(tmp_path, HERE, REMOTE | {"lg2": {"ansible_host": "10.9.0.3"}}, "two.yml"))
    with pytest.raises(ConfigError, match="--threads 2 on each of 2 loadgen hosts exceeds the smallest --conns 3"):
        Config.from_args(inventory=two, threads=2, conns="3,100", online_cpus={0, 1})
    no_server = tmp_path / "none.yml"
    no_server.write_text(yaml.safe_dump({"all": {"children": {"loadgen": {"hosts": REMOTE}}}}))
    with pytest.raises(ConfigError, match="group 'server' must hold exactly one host"):
        Config.from_args(inventory=str(no_server))


def test_a_loadgen_on_this_machine_still_needs_cpus_apart_from_the_server(tmp_path):
    here_twice = write_inventory(tmp_path, {"localhost": {"ansible_connection": "local"}},
                                 {"localhost": None})
    with pytest.raises(ConfigError, match="overlap"):
        Config.from_args(inventory=str(here_twice), server_cpus="0", loadgen_cpus="0", online_cpus={0, 1})


# --- reaching and describing a host ----------------------------------------------------------


def test_ssh_reaches_a_host_the_way_ansible_does(tmp_path):
    inventory = hosts.load_inventory(write_inventory(tmp_path, HERE, {"lg": {
        "ansible_host": "10.9.0.2", "ansible_user": "bench", "ansible_port": 2222,
        "ansible_ssh_private_key_file": "/k/id", "ansible_ssh_args": "-o ControlMaster=no"}}))
    argv = inventory.loadgens[0].ssh_argv("python3", "-")
    assert argv[:3] == ["ssh", "-o", "BatchMode=yes"]
    assert argv[-4:] == ["--", "10.9.0.2", "python3", "-"]
    joined = " ".join(argv)
    for part in ("-o ControlMaster=no", "-i /k/id", "-p 2222", "-l bench"):
        assert part in joined
    assert inventory.path_description() == "two hosts over eth1: server on localhost, wrk on lg"
    # the engine's socket forwarded by the same login, its options before the host
    forward = inventory.loadgens[0].ssh_argv("cat", options=("-L", "/tmp/x.sock:/var/run/docker.sock"))
    assert forward[3:5] == ["-L", "/tmp/x.sock:/var/run/docker.sock"] and forward[-3:] == ["--", "10.9.0.2", "cat"]


def test_the_engine_socket_to_forward_is_the_logins_docker_host_or_the_default():
    assert engines.engine_socket_path("") == "/var/run/docker.sock"
    assert engines.engine_socket_path("unix:///run/zcblab-1/docker.sock") == "/run/zcblab-1/docker.sock"
    with pytest.raises(engines.ForwardUnavailable, match="not a unix socket"):
        engines.engine_socket_path("tcp://10.0.0.2:2375")


def test_the_facts_script_runs_on_a_bare_python_without_zcbench(tmp_path):
    """What a remote host runs: no zcbench, no venv; sysctls and the NIC parsers travel along."""
    done = subprocess.run([SYSTEM_PYTHON, "-I", "-"], input=remote_facts.remote_facts_script("lo"),
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr[-500:]
    facts = json.loads(done.stdout.splitlines()[-1])
    assert facts["kernel_release"]
    assert facts["sysctls"]["net.core.somaxconn"] is not None
    assert facts["interface"]["name"] == "lo"
    assert "sysctls" not in facts["errors"] and "interface" not in facts["errors"]
    assert "No module named 'zcbench'" in facts["errors"]["io_uring"]  # recorded, not fatal


def test_the_report_names_every_other_host_with_its_nic():
    from zcbench.present.environment import environment_rows

    manifest = {"hosts": {"inventory": "/x/hosts.yml", "path": "two hosts over eth1: server on srv, wrk on lg",
                          "srv": {"groups": ["server"], "facts": "the server host: see the manifest's host"},
                          "lg": {"groups": ["loadgen"], "address": "10.9.0.2", "docker": {"engine_version": "26.1"},
                                 "facts": {"kernel_release": "6.1.0", "cpu_model": "Xeon", "cpu_count": 16,
                                           "interface": {"name": "enp1s0", "driver": "ice", "mtu": 9000}}}}}
    rows = dict(map(tuple, environment_rows(manifest)))
    assert rows["Host lg (loadgen)"] == ("10.9.0.2: kernel 6.1.0, Xeon × 16, Docker 26.1, "
                                         "interface enp1s0 (driver ice, mtu 9000)")
    assert not any(name.startswith("Host srv") for name in rows)
