"""The nginx reference is a fair one (issue 10 item 3): nginx, started the way the bench starts
it, answers with zcb-server's status line, Content-Type and body bytes at the same total size
(except where nginx's own head is longer than the response), from memory, and keeps one
connection alive over far more requests than nginx's default keepalive_requests (1000).

The client is a plain socket reading HTTP/1.1 by Content-Length: it shares no code with either
server or with wrk.
"""

from __future__ import annotations

import os
import resource
import socket
from pathlib import Path

import pytest
from docker_helpers import free_ports

from zcbench.measure import containers
from zcbench.measure import nginx as nginx_config
from zcbench.measure import images

pytestmark = pytest.mark.docker

NOFILE = min(4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
MEMLOCK = 8 << 20
# 4143 B: the largest response whose body (4000 B) nginx still takes as a `return` string.
LONGEST_RETURN_SIZE = 4143
SIZES = (88, 4096, LONGEST_RETURN_SIZE, 65536)
NGINX_ONLY_HEADERS = {"server", "date", "connection"}
KEEPALIVE_REQUESTS = 3000  # three times nginx's default keepalive_requests
PIPELINE_BATCH = 100
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class Reader:
    """HTTP/1.1 responses off one socket, each returned with its exact bytes."""

    def __init__(self, sock: socket.socket):
        self.sock, self.buffer = sock, b""

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buffer += chunk

    def response(self) -> tuple[bytes, str, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head_end = self.buffer.index(b"\r\n\r\n") + 4
        status, *lines = self.buffer[:head_end - 4].decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers["content-length"])
        while len(self.buffer) < head_end + length:
            self._fill()
        raw, self.buffer = self.buffer[:head_end + length], self.buffer[head_end + length:]
        return raw, status, headers, raw[head_end:]


def fetch_one(port: int) -> tuple[bytes, str, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(REQUEST)
        return Reader(sock).response()


@pytest.fixture(scope="module")
def server_cpus():
    return tuple(sorted(os.sched_getaffinity(0))[:1])


def start_zcbench(docker_client, privilege, run_id, tmp_path, port, size, cpus):
    spec = containers.ServerSpec(send="regular", cpus=cpus, port=port, response_size=size,
                                 memlock=MEMLOCK, nofile=NOFILE)
    return containers.start_server(docker_client, images.TAGS["server"], spec, run_id=run_id,
                                   privilege=privilege, stats_dir=tmp_path / "zcb")


def start_nginx(docker_client, run_id, tmp_path, port, size, cpus):
    conf_dir = tmp_path / f"nginx-{port}"
    conf_dir.mkdir()
    return containers.start_nginx(docker_client, images.TAGS["nginx"], cpus=cpus, port=port, bind="127.0.0.1",
                                  response_size=size, memlock=MEMLOCK, nofile=NOFILE, run_id=run_id,
                                  conf_dir=conf_dir)


@pytest.mark.parametrize("size", SIZES)
def test_nginx_answers_zcbench_bytes_at_the_same_size(docker_client, zcbench_images, privilege, run_id,
                                                      tmp_path, server_cpus, size):
    zcb_port, nginx_port = free_ports(2)
    zcb = start_zcbench(docker_client, privilege, run_id, tmp_path, zcb_port, size, server_cpus)
    nginx = start_nginx(docker_client, run_id, tmp_path, nginx_port, size, server_cpus)
    try:
        zcb_raw, zcb_status, zcb_headers, zcb_body = fetch_one(zcb_port)
        raw, status, headers, body = fetch_one(nginx_port)
    finally:
        containers.stop_container(nginx)
        containers.stop_container(zcb)
    info = nginx_config.nginx_reference_info(size)
    assert len(zcb_raw) == size
    assert len(raw) == info["response_size"]
    if size >= 4096:
        assert len(raw) == len(zcb_raw)  # room for nginx's longer head: the same bytes on the wire
    else:
        assert len(raw) > size and body == b""  # nginx's own head is longer than 88 B: the closest it gets
    assert status == zcb_status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == zcb_headers["content-type"] == "text/plain"
    assert set(headers) == set(zcb_headers) | NGINX_ONLY_HEADERS  # no Last-Modified, ETag, Accept-Ranges
    assert headers["connection"] == "keep-alive"
    assert body == zcb_body[:len(body)] and len(body) == info["body_bytes"]
    assert info["answers"] == ("sendfile" if size == 65536 else "memory")


def test_nginx_keeps_one_connection_alive_over_thousands_of_requests(docker_client, zcbench_images, run_id,
                                                                     tmp_path, server_cpus):
    [port] = free_ports(1)
    nginx = start_nginx(docker_client, run_id, tmp_path, port, 4096, server_cpus)
    answered = 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            reader = Reader(sock)
            for _ in range(KEEPALIVE_REQUESTS // PIPELINE_BATCH):
                sock.sendall(REQUEST * PIPELINE_BATCH)  # pipelined, as loadgen/pipeline.lua does
                for _ in range(PIPELINE_BATCH):
                    raw, status, headers, _ = reader.response()
                    assert status == "HTTP/1.1 200 OK" and headers["connection"] == "keep-alive"
                    assert len(raw) == 4096
                    answered += 1
    finally:
        containers.stop_container(nginx)
    assert answered == KEEPALIVE_REQUESTS


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to show one worker per CPU")
def test_nginx_runs_one_worker_pinned_to_each_server_cpu(docker_client, zcbench_images, run_id, tmp_path):
    cpus = tuple(sorted(os.sched_getaffinity(0))[:2])
    [port] = free_ports(1)
    nginx = start_nginx(docker_client, run_id, tmp_path, port, 88, cpus)
    try:
        nginx.container.reload()
        master = nginx.container.attrs["State"]["Pid"]  # seen from the host's /proc
        workers = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        allowed = sorted(_status_field(pid, "Cpus_allowed_list") for pid in workers)
    finally:
        containers.stop_container(nginx)
    assert allowed == sorted(str(cpu) for cpu in cpus)


def _status_field(pid: str, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split()[-1]
    raise AssertionError(f"no {name} in /proc/{pid}/status")
