"""msg-zerocopy's control pair in the real containers: its notifications are charged to each
socket's option memory, and past net.core.optmem_max a MSG_ZEROCOPY sendmsg fails with ENOBUFS.
Without its optmem budget the error appears under load; with it (auto: the namespace's
optmem_max) the count is 0; both resend regular, so nothing is lost.

optmem_max is a per-network-namespace sysctl on this kernel, so the server container gets a
namespace of its own (network "none": loopback only) with a small optmem_max set by Docker
(`sysctls`), and wrk joins that namespace (network "container:<server>"): the host's setting is
never touched. The server keeps CAP_IPC_LOCK (privileged, or the capability fallback), so memlock
plays no part and every ENOBUFS is optmem's. Containers are started and removed by testcontainers
(test_zc_enomem's `started`), and the run label's cleanup (conftest's `run_id`) is the backstop.
"""

from __future__ import annotations

import os

import pytest
from test_zc_enomem import NOFILE, started, wrk_then_server_totals

pytestmark = pytest.mark.docker

OPTMEM = 4096  # four notifications of the 832 bytes measured on this kernel
CONNS, DEPTH, DURATION_S = 200, 16, 1
PORT = 8088  # the server's own network namespace: no other listener there


def cpus() -> tuple[str, str]:
    """The server on one CPU, wrk on another (both on the only one of a 1-CPU machine)."""
    online = sorted(os.sched_getaffinity(0))
    return str(online[0]), str(online[1] if len(online) > 1 else online[0])


def run_cell(privilege, run_id: str, tmp_path, budget: str) -> tuple[dict, dict]:
    from docker.types import Ulimit
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    from zcbench.measure import containers, images

    server_cpu, loadgen_cpu = cpus()
    spec = containers.ServerSpec(send="msg-zerocopy", cpus=(int(server_cpu),), port=PORT, zc_max_inflight=0,
                                 nofile=NOFILE, response_size=64 << 10)
    labels = {containers.RUN_LABEL: run_id}
    stats_dir = tmp_path / f"optmem-{budget}"
    stats_dir.mkdir()
    server = (
        DockerContainer(images.TAGS["server"])
        .with_command([*spec.command(), "--zc-optmem-budget", budget])
        .with_volume_mapping(str(stats_dir), containers.STATS_MOUNT, "rw")
        .waiting_for(LogMessageWaitStrategy("listening on").with_startup_timeout(20))
        .with_kwargs(network_mode="none", sysctls={"net.core.optmem_max": str(OPTMEM)},
                     cpuset_cpus=server_cpu, ulimits=[Ulimit(name="nofile", soft=NOFILE, hard=NOFILE)],
                     labels={**labels, containers.ROLE_LABEL: "server"}, **privilege.kwargs)
    )
    with started(server):
        server_container = server.get_wrapped_container()
        loadgen = (
            DockerContainer(images.TAGS["loadgen"])
            .with_command(["wrk", "-t1", f"-c{CONNS}", f"-d{DURATION_S}s", "--timeout", "5s",
                           "-s", "/loadgen/pipeline.lua", f"http://127.0.0.1:{PORT}/", "--", str(DEPTH)])
            .with_kwargs(network_mode=f"container:{server_container.id}",
                         cpuset_cpus=loadgen_cpu,
                         ulimits=[Ulimit(name="nofile", soft=NOFILE, hard=NOFILE)],
                         labels={**labels, containers.ROLE_LABEL: "loadgen"})
        )
        with loadgen:
            wrk_result, final = wrk_then_server_totals(loadgen, server, DURATION_S)
    t = final["totals"]
    print(f"\n[msg-zerocopy optmem_max={OPTMEM} budget={budget} conns={CONNS} depth={DEPTH}] "
          f"zc_enobufs={t['zc_enobufs']} fallback_enobufs={t['fallback_enobufs']} "
          f"fallback_optmem={t['fallback_optmem']} sends_zc={t['sends_zc']} zc_notifs={t['zc_notifs']} "
          f"responses={t['responses']} wrk_requests={wrk_result['requests']} container={privilege.mode}")
    return wrk_result, final


def assert_nothing_lost(wrk_result: dict, final: dict) -> None:
    totals = final["totals"]
    assert wrk_result["errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0}
    assert wrk_result["requests"] > CONNS
    assert totals["requests"] == totals["responses"] + totals["responses_dropped"]
    assert 0 <= totals["responses"] - wrk_result["requests"] <= CONNS * DEPTH
    assert totals["send_errors"] <= CONNS  # wrk closes its connections with sends on their way
    assert totals["zc_inflight"] == 0 and final["shutdown"]["zc_notifications_missing"] == 0
    assert totals["zc_notifs"] + totals["zc_enobufs"] <= totals["sends_zc"]


def test_without_optmem_budget_msg_zerocopy_gets_enobufs_and_still_answers_everything(privilege, run_id, tmp_path):
    wrk_result, final = run_cell(privilege, run_id, tmp_path, "0")
    totals = final["totals"]
    assert totals["zc_enobufs"] > 0
    assert 0 < totals["fallback_enobufs"] <= totals["zc_enobufs"]
    assert totals["fallback_optmem"] == 0
    assert_nothing_lost(wrk_result, final)


def test_optmem_budget_keeps_msg_zerocopy_free_of_enobufs(privilege, run_id, tmp_path):
    wrk_result, final = run_cell(privilege, run_id, tmp_path, "auto")
    totals = final["totals"]
    assert final["optmem"]["sends_per_socket"] == OPTMEM // 1024  # auto read the namespace's optmem_max
    assert totals["zc_enobufs"] == 0
    assert totals["fallback_optmem"] > 0  # the budget was reached: the load was there
    assert totals["zc_notifs"] > 0
    assert_nothing_lost(wrk_result, final)
