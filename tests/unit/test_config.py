"""Config validation: every bad input gives ConfigError with one line naming the option."""

import pytest

from zcbench.core import arms as arm_registry
from zcbench.measure import config as cfg
from zcbench.measure.config import Config, ConfigError

TWO_CPUS = {0, 1}


def make(**kwargs):
    kwargs.setdefault("online_cpus", TWO_CPUS)
    kwargs.setdefault("seed", 1)
    kwargs.setdefault("nofile", 20000)
    return Config.from_args(**kwargs)


def test_defaults_reproduce_the_study_matrix():
    config = make()
    assert config.arms == ("regular", "zc")
    assert config.conns == (100, 1000, 4000)
    assert config.response_sizes == (88,)
    assert config.servers == ("zcbench",)
    assert config.server_cpus == (0,) and config.loadgen_cpus == (1,)
    assert config.threads == 1  # one wrk thread per loadgen CPU
    assert config.zc_max_inflight == 256 and config.memlock == 8 * 1024 * 1024


@pytest.mark.parametrize("mode, arms", [
    ("regular", ("regular",)), ("zc", ("regular", "zc")), ("zc-fixed", ("regular", "zc-fixed")),
    ("all", tuple(arm.name for arm in arm_registry.server_modes())),  # every send mode of zcb_modes.h
])
def test_a_zc_arm_always_runs_beside_regular(mode, arms):
    assert make(mode=mode).arms == arms


def test_server_both_adds_nginx_as_its_own_arm():
    config = make(server="both", mode="zc")
    assert config.arms_to_run == (("zcbench", "regular"), ("zcbench", "zc"), ("nginx", "nginx"))
    assert make(server="nginx").arms_to_run == (("nginx", "nginx"),)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"mode": "fast"}, "unknown --mode 'fast'"),
    ({"server": "apache"}, "unknown --server"),
    ({"path": "wifi"}, "unknown --path"),
    ({"conns": "abc"}, "--conns 'abc' is not a whole number"),
    ({"conns": "100,,4000"}, "--conns"),
    ({"conns": "0"}, "--conns 0 must be at least 1"),
    ({"conns": "100,100"}, "repeats"),
    ({"duration": "0"}, "--duration 0 must be at least 1"),
    ({"duration": "-3"}, "--duration -3 must be at least 1"),
    ({"duration": "1.5"}, "--duration '1.5' is not a whole number"),
    ({"warmup": "-1"}, "--warmup -1 must be at least 0"),
    ({"repeat": "0"}, "--repeat 0 must be at least 1"),
    ({"response_size": "big"}, "--response-size 'big' is not a size"),
    ({"zc_max_inflight": "-1"}, "--zc-max-inflight -1"),
    ({"server_cpus": "7"}, "CPU 7 does not exist"),
    ({"server_cpus": "x"}, "is not a CPU list"),
    ({"server_cpus": "1-0"}, "runs backwards"),
    ({"server_cpus": "0", "loadgen_cpus": "0"}, "overlap"),
    ({"server_cpus": "0-1", "loadgen_cpus": "1"}, "overlap"),
    ({"threads": "200", "conns": "100"}, "--threads 200 exceeds the smallest --conns 100"),
    ({"label": "a/b"}, "--label"),
    ({"port": "80"}, "--port 80 must be at least 1024"),
    ({"nofile": "100", "conns": "4000"}, "--nofile 100 must be at least"),
    ({"memlock": "lots"}, "--memlock"),
])
def test_bad_input_is_one_clear_line(kwargs, fragment):
    with pytest.raises(ConfigError) as info:
        make(**kwargs)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize("text, expected", [
    ("88", (88,)), ("4k", (4096,)), ("1m", (1048576,)), ("64KiB", (65536,)),
    ("88,512,1k", (88, 512, 1024)), ([88, "16k"], (88, 16384)),
])
def test_response_sizes_accept_suffixes_and_lists(text, expected):
    assert make(response_size=text).response_sizes == expected


def test_cpu_lists_and_ranges():
    config = make(server_cpus="0-1,3", loadgen_cpus="2,4-5", online_cpus=set(range(8)))
    assert config.server_cpus == (0, 1, 3)
    assert config.loadgen_cpus == (2, 4, 5)
    assert config.threads == 3


def test_memlock_unlimited_and_seed_recorded():
    assert make(memlock="unlimited").memlock == -1
    assert make(memlock="8m").memlock == 8 * 1024 * 1024
    assert make(seed=None).seed >= 0
    assert make(seed="42").seed == 42


def test_to_json_is_plain():
    import json

    data = json.loads(json.dumps(make().to_json()))
    assert data["conns"] == [100, 1000, 4000]
    assert data["out"].endswith("results")


def test_default_nofile_never_exceeds_the_host_hard_limit():
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert cfg.default_nofile() <= min(cfg.MAX_NOFILE, hard)
