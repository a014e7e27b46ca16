"""ENOMEM-free zero-copy send under the in-flight cap, in the real containers (issue 5).

The server runs in its image, privileged (or the capability fallback this host needs), host
network, pinned, with an explicit memlock ulimit; wrk runs in the loadgen image on the other
CPU. Both are started with testcontainers, waited for by its wait strategy and removed by its
context managers; Ryuk, its reaper, stays off (it is an image pulled from a registry, and none
can be reached here), so the run label is the backstop the module cleans up by.

Why --drop-ipc-lock: io_uring charges a SEND_ZC's pages to RLIMIT_MEMLOCK only when the ring's
creator lacks CAP_IPC_LOCK, and a privileged container has it. The server drops it before
creating its rings, so the study's ENOMEM can happen (and be prevented) in a container.

The count cap bounds sends, not locked memory: a 1 MiB SEND_ZC is charged about 258 pages. The
server's memlock page budget (--zc-page-budget, auto by default) bounds the pages; the size sweep
below shows it free of ENOMEM at 88 B, 64 KiB and 1 MiB beside its control without the budget.
Cells that count ENOMEM run the server as uid 65534: memlock is charged per user, and root's
account is shared with everything else running as root on this machine. The tests about the
count cap pass --zc-page-budget 0 so that they test the cap alone.

SENDMSG_ZC is charged like SEND_ZC (its total length): the cap/ENOMEM pair runs for both arms.

"Nothing lost" is checked as far as wrk can tell: no socket error, timeout or non-2xx; the
server answered every request it parsed; and the server's responses exceed wrk's count only by
the requests in flight when wrk stopped its clock (at most one per connection, no pipelining).
"""

from __future__ import annotations

import contextlib
import os
import resource
import uuid
import warnings
from dataclasses import dataclass

import pytest
from docker_helpers import free_port

pytestmark = pytest.mark.docker

STUDY_CONNS = (1000, 4000)
MEMLOCK = 8 << 20
# Containers may not exceed the daemon's own hard limit without CAP_SYS_RESOURCE; this process
# shares the daemon's limits when both were started the same way (provisioning does).
NOFILE = min(1 << 20, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
DURATION_S = 1  # ENOMEM (or the cap, the budget) shows within milliseconds of the first sends
DEFAULT_CAP = 256
SERVER_UID = 65534
# Response-size sweep of the budget: connections enough to overrun 8 MiB without it.
BUDGET_SWEEP = {88: 4000, 64 << 10: 500, 1 << 20: 500}


@dataclass
class Env:
    client: object
    run_id: str
    privilege: object
    server_cpus: tuple[int, ...]
    loadgen_cpus: tuple[int, ...]


@dataclass
class Cell:
    wrk: dict
    totals: dict
    memlock: int


@pytest.fixture(scope="module")
def env():
    from testcontainers.core.config import testcontainers_config

    from zcbench.measure import containers
    from zcbench.measure import images

    testcontainers_config.ryuk_disabled = True
    client = containers.docker_client()
    images.ensure_images(client, names=("server", "loadgen"))
    run_id = f"pytest-enomem-{uuid.uuid4().hex[:8]}"
    privilege = containers.privilege_options(client, images.TAGS["server"], run_id)
    cpus = sorted(os.sched_getaffinity(0))
    server_cpus, loadgen_cpus = (cpus[:1], cpus[1:2]) if len(cpus) > 1 else (cpus, cpus)
    yield Env(client, run_id, privilege, tuple(server_cpus), tuple(loadgen_cpus))
    containers.remove_run_containers(client, run_id)
    assert containers.run_containers(client, run_id) == []


@contextlib.contextmanager
def started(server):
    """The server container started by testcontainers and waited for ("listening on") by its
    wait strategy; stopped and removed on leaving. If it exits instead, the test fails with the
    server's own words (testcontainers' error omits the container's output)."""
    try:
        server.start()
    except RuntimeError as exc:
        wrapped = server.get_wrapped_container()
        logs = wrapped.logs().decode(errors="replace").strip() if wrapped else ""
        server.stop()
        pytest.fail(f"the server container did not start: {logs or exc}")
    try:
        yield server
    finally:
        server.stop()


def wrk_then_server_totals(loadgen, server, duration_s: int) -> tuple[dict, dict]:
    """Wait for the wrk container, then stop the server (docker stop = SIGTERM: it drains, prints
    its totals, exits 0): wrk's JSON and the server's final JSON."""
    from zcbench.measure import counters
    from zcbench.measure.loadgen import wrk

    wrapped = loadgen.get_wrapped_container()
    assert wrapped.wait(timeout=duration_s + 60)["StatusCode"] == 0, wrapped.logs().decode()
    wrk_result = wrk.parse_wrk_json(wrapped.logs(stdout=True, stderr=False).decode())
    server_container = server.get_wrapped_container()
    server_container.stop(timeout=10)
    assert server_container.wait(timeout=20)["StatusCode"] == 0, server_container.logs().decode()
    return wrk_result, counters.parse_final_json(server_container.logs(stdout=True, stderr=False).decode())


def run_cell(env: Env, tmp_path, *, send: str, cap: int, conns: int, memlock: int = MEMLOCK,
             drop_ipc_lock: bool = True, size: int = 88, budget: str = "0") -> Cell:
    """One server container + one wrk container; returns wrk's JSON and the server's totals.
    With drop_ipc_lock the server runs as SERVER_UID (no capabilities, a memlock account of its
    own); budget is --zc-page-budget ("0": none, the count cap alone)."""
    from docker.types import Ulimit
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    from zcbench.measure import containers
    from zcbench.measure import images

    port = free_port()
    spec = containers.ServerSpec(send=send, cpus=env.server_cpus, port=port, zc_max_inflight=cap,
                                 drop_ipc_lock=drop_ipc_lock, memlock=memlock, nofile=NOFILE, response_size=size)
    labels = {containers.RUN_LABEL: env.run_id}
    stats_dir = tmp_path / f"{send}-{cap}-{conns}-{memlock}-{size}-{budget}"
    stats_dir.mkdir()
    stats_dir.chmod(0o777)  # written by SERVER_UID
    user = {"user": f"{SERVER_UID}:{SERVER_UID}"} if drop_ipc_lock else {}
    server = (
        DockerContainer(images.TAGS["server"])
        .with_command([*spec.command(), "--zc-page-budget", budget])
        .with_volume_mapping(str(stats_dir), containers.STATS_MOUNT, "rw")
        .waiting_for(LogMessageWaitStrategy("listening on").with_startup_timeout(20))
        .with_kwargs(network_mode="host", cpuset_cpus=",".join(map(str, env.server_cpus)),
                     ulimits=[Ulimit(name="memlock", soft=memlock, hard=memlock),
                              Ulimit(name="nofile", soft=NOFILE, hard=NOFILE)],
                     labels={**labels, containers.ROLE_LABEL: "server"}, **env.privilege.kwargs, **user)
    )
    loadgen = (
        DockerContainer(images.TAGS["loadgen"])
        .with_command(["wrk", "-t1", f"-c{conns}", f"-d{DURATION_S}s", "--timeout", "5s",
                       "-s", "/loadgen/report.lua", f"http://127.0.0.1:{port}/"])
        .with_kwargs(network_mode="host", cpuset_cpus=",".join(map(str, env.loadgen_cpus)),
                     ulimits=[Ulimit(name="nofile", soft=NOFILE, hard=NOFILE)],
                     labels={**labels, containers.ROLE_LABEL: "loadgen"})
    )
    # testcontainers' own cleanup: leaving each `with` stops and removes its container
    with started(server), loadgen:
        wrk_result, final = wrk_then_server_totals(loadgen, server, DURATION_S)
    t = final["totals"]
    print(f"\n[{send} size={size} cap={cap} budget={budget} conns={conns} memlock={memlock >> 20}MiB "
          f"drop_ipc_lock={drop_ipc_lock}] zc_enomem={t['zc_enomem']} fallback_cap={t['fallback_cap']} "
          f"fallback_budget={t['fallback_budget']} fallback_enomem={t['fallback_enomem']} "
          f"zc_pages_peak={t['zc_pages_peak']} zc_page_budget={t['zc_page_budget']} "
          f"sends_zc={t['sends_zc']} responses={t['responses']} wrk_requests={wrk_result['requests']} "
          f"zc_inflight_peak={t['zc_inflight_peak']} container={env.privilege.mode}")
    return Cell(wrk_result, t, memlock)


def assert_nothing_lost(cell: Cell, conns: int) -> None:
    wrk, totals = cell.wrk, cell.totals
    assert wrk["errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0, "status": 0}
    assert wrk["requests"] > conns
    assert totals["conns_accepted"] >= conns
    # every request parsed was answered, or its client left first (wrk's exit: one per connection)
    assert totals["requests"] == totals["responses"] + totals["responses_dropped"]
    assert totals["responses_dropped"] <= conns
    # wrk closes its connections when its clock stops, large responses still on their way: at
    # most one failed send per connection (it is closed then); ENOMEM is counted apart
    assert totals["send_errors"] <= conns
    assert 0 <= totals["responses"] - wrk["requests"] <= conns
    assert (totals["sends_zc"] + totals["fallback_cap"] + totals["fallback_budget"]
            == totals["responses"] + totals["partial_sends"] - totals["responses_coalesced"] + totals["send_errors"])
    assert totals["zc_notifs"] == totals["sends_zc"]


_controls: dict[tuple[str, int], Cell] = {}
CAPPED_ARMS = ("zc", "sendmsg-zc")


def uncapped_control(env: Env, tmp_path, conns: int, send: str = "zc") -> Cell:
    """The arm without a cap at the study's load; if 8 MiB of memlock is not exhausted on this
    host, halve it until it is (and say so), so the capped test beside it can never pass vacuously."""
    if (send, conns) not in _controls:
        memlock = MEMLOCK
        while True:
            cell = run_cell(env, tmp_path, send=send, cap=0, conns=conns, memlock=memlock)
            if cell.totals["zc_enomem"] > 0 or memlock <= (2 << 20):
                break
            memlock //= 2
            warnings.warn(f"no ENOMEM at {conns} connections: memlock lowered to {memlock >> 20} MiB")
        _controls[(send, conns)] = cell
    return _controls[(send, conns)]


@pytest.mark.parametrize("send", CAPPED_ARMS)
@pytest.mark.parametrize("conns", STUDY_CONNS)
def test_without_cap_zc_gets_enomem_and_still_answers_everything(env, tmp_path, conns, send):
    """The negative control: the same load without a cap does hit -ENOMEM; the fallback resends."""
    cell = uncapped_control(env, tmp_path, conns, send)
    assert cell.totals["zc_enomem"] > 0
    assert 0 < cell.totals["fallback_enomem"] <= cell.totals["zc_enomem"]
    assert_nothing_lost(cell, conns)


@pytest.mark.parametrize("send", CAPPED_ARMS)
@pytest.mark.parametrize("conns", STUDY_CONNS)
def test_default_cap_keeps_zc_free_of_enomem(env, tmp_path, conns, send):
    memlock = uncapped_control(env, tmp_path, conns, send).memlock  # the load that provoked ENOMEM
    cell = run_cell(env, tmp_path, send=send, cap=DEFAULT_CAP, conns=conns, memlock=memlock)
    assert cell.totals["zc_enomem"] == 0
    assert cell.totals["fallback_cap"] > 0  # the cap was reached, so the load was there
    assert cell.totals["zc_inflight_peak"] <= DEFAULT_CAP
    assert_nothing_lost(cell, conns)


@pytest.mark.parametrize("conns", STUDY_CONNS)
def test_zc_fixed_without_cap_has_no_enomem(env, tmp_path, conns):
    """A registered buffer is charged to memlock once, at registration, never per send."""
    cell = run_cell(env, tmp_path, send="zc-fixed", cap=0, conns=conns)
    assert cell.totals["zc_enomem"] == 0
    assert cell.totals["zc_inflight_peak"] > 0
    assert_nothing_lost(cell, conns)


@pytest.mark.parametrize("size", list(BUDGET_SWEEP))
def test_memlock_budget_keeps_zc_free_of_enomem_at_every_size(env, tmp_path, size):
    """The budget alone (no count cap) against its control (no budget), same load and memlock."""
    conns = BUDGET_SWEEP[size]
    cell = run_cell(env, tmp_path, send="zc", cap=0, conns=conns, size=size, budget="auto")
    assert cell.totals["zc_enomem"] == 0
    assert 0 < cell.totals["zc_page_budget"] < MEMLOCK // 4096
    assert cell.totals["fallback_budget"] > 0  # the budget was reached: the load was there
    assert cell.totals["zc_pages_peak"] <= cell.totals["zc_page_budget"]
    assert_nothing_lost(cell, conns)
    control = run_cell(env, tmp_path, send="zc", cap=0, conns=conns, size=size, budget="0")
    assert control.totals["zc_enomem"] > 0
    assert_nothing_lost(control, conns)


def test_privileged_without_dropping_ipc_lock_has_no_enomem(env, tmp_path):
    """Privileged (or the capability fallback) keeps CAP_IPC_LOCK, and io_uring never charges
    memlock to a ring whose creator holds CAP_IPC_LOCK: no ENOMEM even without a cap."""
    cell = run_cell(env, tmp_path, send="zc", cap=0, conns=max(STUDY_CONNS), drop_ipc_lock=False)
    assert cell.totals["zc_enomem"] == 0
    assert cell.totals["zc_inflight_peak"] > 1024  # more in flight than 8 MiB would allow if charged
    assert_nothing_lost(cell, max(STUDY_CONNS))
