"""Container helpers that need no engine: capabilities, server command, nginx sizing."""

import os

import pytest

from zcbench.measure import containers
from zcbench.measure import cgroups
from zcbench.measure import nginx


def test_bounding_capabilities_from_capbnd(tmp_path):
    status = tmp_path / "status"
    # This VM's mask: everything up to CHECKPOINT_RESTORE except SYS_RESOURCE (bit 24).
    status.write_text("Name:\tx\nCapBnd:\t000001fffeffffff\n")
    caps = containers.bounding_capabilities(str(status))
    assert "SYS_RESOURCE" not in caps
    assert {"IPC_LOCK", "SYS_ADMIN", "NET_ADMIN", "CHECKPOINT_RESTORE"} <= set(caps)
    assert len(caps) == len(containers.CAPABILITIES) - 1


def test_server_command_follows_the_cli():
    spec = containers.ServerSpec(send="zc", cpus=(0, 2), port=9000, response_size=4096,
                                 zc_max_inflight=0, drop_ipc_lock=True)
    cmd = spec.command()
    assert cmd[cmd.index("--send") + 1] == "zc"
    assert cmd[cmd.index("--cpus") + 1] == "0,2"
    assert cmd[cmd.index("--zc-max-inflight") + 1] == "0"
    assert cmd[cmd.index("--response-size") + 1] == "4096"
    assert cmd[cmd.index("--stats-file") + 1].startswith(containers.STATS_MOUNT)
    assert "--drop-ipc-lock" in cmd
    assert "--drop-ipc-lock" not in containers.ServerSpec().command()


@pytest.mark.parametrize("size", [140, 141, 1000, 1024, 65536, 1 << 20])
def test_nginx_total_matches_when_possible(size):
    body = nginx.nginx_body_length(size)
    assert nginx.nginx_header_length(body) + body == size


def test_nginx_cannot_go_below_its_headers():
    # 88 B is smaller than nginx's own head: the body is empty and the manifest says so.
    assert nginx.nginx_body_length(88) == 0


def test_nginx_answers_small_bodies_from_memory(tmp_path):
    info = nginx.write_nginx_config(tmp_path, port=9001, bind="127.0.0.1", response_size=1024, nofile=20000)
    conf = (tmp_path / "nginx.conf").read_text()
    assert "listen 127.0.0.1:9001" in conf and "worker_processes 1;" in conf and "${" not in conf
    expected_body = nginx.body_bytes(info["body_bytes"]).decode()
    assert f'return 200 "{expected_body}";' in conf and expected_body.startswith("0123456789abcdef")
    assert info["response_size"] == 1024 and info["answers"] == "memory"
    assert not (tmp_path / "www" / "body").exists()  # nothing is read from disk
    assert "access_log off;" in conf and "keepalive_requests 4294967295;" in conf


def test_nginx_serves_long_bodies_with_sendfile_and_a_stale_file_goes(tmp_path):
    info = nginx.write_nginx_config(tmp_path, port=9001, bind="127.0.0.1", response_size=65536, nofile=20000)
    conf = (tmp_path / "nginx.conf").read_text()
    body = (tmp_path / "www" / "body").read_bytes()
    assert len(body) == info["body_bytes"] and info["response_size"] == 65536 and info["answers"] == "sendfile"
    assert body[:40] == b"0123456789abcdefghijklmnopqrstuvwxyz0123"
    assert "try_files /body" in conf and "sendfile on;" in conf and "return 200" not in conf
    nginx.write_nginx_config(tmp_path, port=9001, bind="127.0.0.1", response_size=4096, nofile=20000)
    assert not (tmp_path / "www" / "body").exists()


def test_nginx_switches_to_a_file_exactly_past_the_return_limit():
    sizes = range(3900, 4300)
    in_memory = [size for size in sizes if nginx.nginx_answers_from_memory(size)]
    assert nginx.nginx_body_length(max(in_memory)) <= nginx.NGINX_RETURN_BODY_MAX
    assert nginx.nginx_body_length(max(in_memory) + 1) > nginx.NGINX_RETURN_BODY_MAX
    assert in_memory == list(range(3900, max(in_memory) + 1))  # one switch, no flapping


@pytest.mark.parametrize("cpus, workers, masks", [((0,), 1, "1"), ((2, 3), 2, "100 1000"), ((1, 0), 2, "10 1")])
def test_nginx_one_pinned_worker_per_server_cpu(cpus, workers, masks):
    conf, _ = nginx.render_nginx_config(port=1, bind="127.0.0.1", response_size=88, nofile=1024, cpus=cpus)
    assert f"worker_processes {workers};" in conf
    assert f"worker_cpu_affinity {masks};" in conf


class FakeContainers:
    """Refuses --privileged like this VM's runc, and capabilities an old daemon does not know."""

    def __init__(self, unknown=("PERFMON", "BPF")):
        self.unknown, self.created = set(unknown), []

    def create(self, image, command, **kwargs):
        import docker.errors

        self.created.append(kwargs)
        for cap in kwargs.get("cap_add") or ():
            if cap in self.unknown:
                raise docker.errors.APIError("400", explanation=f'invalid CapAdd: unknown capability: "CAP_{cap}"')
        return FakeProbe(kwargs)


class FakeProbe:
    def __init__(self, kwargs):
        self.kwargs = kwargs

    def start(self):
        import docker.errors

        if self.kwargs.get("privileged"):
            raise docker.errors.APIError("500", explanation=(
                "failed to create shim task: OCI runtime create failed: runc create failed: unable to "
                "start container process: unable to apply caps: operation not permitted: unknown"))

    def wait(self, timeout=None):
        return {"StatusCode": 0}

    def remove(self, force=False):
        pass


def test_privileged_refused_falls_back_to_known_bounding_caps(monkeypatch):
    monkeypatch.setattr(containers, "bounding_capabilities",
                        lambda: ["CHOWN", "IPC_LOCK", "SYS_ADMIN", "PERFMON", "BPF"])
    client = type("Client", (), {"containers": FakeContainers()})()
    privilege = containers.privilege_options(client, "img", "run")
    assert privilege.mode == "fallback"
    assert privilege.kwargs["cap_add"] == ["CHOWN", "IPC_LOCK", "SYS_ADMIN"]
    assert privilege.kwargs["security_opt"] == ["seccomp=unconfined"]
    assert "unable to apply caps" in privilege.reason and "PERFMON, BPF" in privilege.reason
    assert all(c["labels"][containers.RUN_LABEL] == "run" for c in client.containers.created)


def test_privileged_when_the_daemon_grants_it():
    class Granting(FakeContainers):
        def create(self, image, command, **kwargs):
            probe = super().create(image, command, **kwargs)
            probe.kwargs = {}
            return probe

    client = type("Client", (), {"containers": Granting()})()
    privilege = containers.privilege_options(client, "img", "run")
    assert privilege.mode == "privileged" and privilege.kwargs == {"privileged": True}


def test_cpu_seconds_from_cgroup_v1_and_v2_files(tmp_path):
    v1 = tmp_path / "cpuacct.usage"
    v1.write_text("2500000000\n")
    v2 = tmp_path / "cpu.stat"
    v2.write_text("usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n")
    assert cgroups.read_cpu_seconds((v1, "v1")) == pytest.approx(2.5)
    assert cgroups.read_cpu_seconds((v2, "v2")) == pytest.approx(1.5)


def test_an_owner_is_gone_only_when_it_is_this_hosts_and_of_an_earlier_boot_or_dead():
    from zcbench.measure.containers import owner_gone
    alive = {100}.__contains__
    here = dict(host="bench1", boot="b-now", alive=alive)
    assert owner_gone("bench1/b-now/200", **here)  # this boot, no such process
    assert not owner_gone("bench1/b-now/100", **here)  # still running
    assert owner_gone("bench1/b-old/100", **here)  # a pid of an earlier boot: the machine restarted
    assert not owner_gone("bench2/b-old/200", **here)  # another machine's run sharing the engine
    assert not owner_gone("garbage", **here) and not owner_gone("bench1/b-now/x", **here)


def test_this_process_owns_its_containers_and_is_not_gone():
    from zcbench.measure import containers
    label = containers._labels("r1", "server")[containers.OWNER_LABEL]
    assert label == containers.owner() and label.endswith(f"/{os.getpid()}")
    assert not containers.owner_gone(label)
