"""nginx reference vs zcb-server (regular send), side by side in one run (issue 10 item 3).

Same server CPUs, wrk on the loadgen CPUs, cells shuffled inside each round so drift hits both
servers alike; plain keep-alive (loadgen/report.lua) and pipelined (loadgen/pipeline.lua).
Prints per round the nginx/zcbench ratios of throughput and of server CPU per request, and
their medians. `invoke bench --server both` covers the plain case with its statistics; this
script exists because the bench has no pipelined mode.

    .venv/bin/python scripts/nginx_side_by_side.py --rounds 5 --duration 5 --size 88
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from zcbench.measure import containers
from zcbench.measure import images
from zcbench.measure.config import default_nofile
from zcbench.measure.loadgen.wrk import parse_wrk_json, wrk_command

MEMLOCK = 8 << 20
SCRIPTS = {"plain": ["/loadgen/report.lua"], "pipelined": ["/loadgen/pipeline.lua"]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wrk(loadgen, url: str, *, mode: str, conns: int, duration_s: int, depth: int) -> tuple[dict, float]:
    command = wrk_command(url, conns=conns, threads=1, duration_s=duration_s, timeout_s=5, script=SCRIPTS[mode][0])
    if mode == "pipelined":
        command += ["--", str(depth)]
    cpu_before = loadgen.cpu_seconds()
    code, (out, err) = loadgen.container.exec_run(command, demux=True)
    if code != 0:
        raise RuntimeError(f"wrk exited {code}: {(err or out or b'').decode()[-300:]}")
    return parse_wrk_json(out.decode()), loadgen.cpu_seconds() - cpu_before


def cell(client, privilege, run_id, loadgen, work: Path, *, server: str, mode: str, args) -> dict:
    port = free_port()  # a fresh free port per cell: SO_REUSEPORT would share a busy one silently
    conf_dir = work / f"{server}-{mode}-{time.monotonic_ns()}"
    conf_dir.mkdir()
    if server == "nginx":
        running = containers.start_nginx(client, images.TAGS["nginx"], cpus=args.server_cpus, port=port,
                                         bind="127.0.0.1", response_size=args.size, memlock=MEMLOCK,
                                         nofile=args.nofile, run_id=run_id, conf_dir=conf_dir)
    else:
        spec = containers.ServerSpec(send="regular", cpus=tuple(args.server_cpus), port=port,
                                     response_size=args.size, memlock=MEMLOCK, nofile=args.nofile)
        running = containers.start_server(client, images.TAGS["server"], spec, run_id=run_id,
                                          privilege=privilege, stats_dir=conf_dir)
    url = f"http://127.0.0.1:{port}/"
    try:
        wrk(loadgen, url, mode=mode, conns=args.conns, duration_s=1, depth=args.depth)  # warmup
        cpu_before = running.cpu_seconds()
        result, loadgen_cpu = wrk(loadgen, url, mode=mode, conns=args.conns, duration_s=args.duration,
                                  depth=args.depth)
        server_cpu = running.cpu_seconds() - cpu_before
    finally:
        containers.stop_container(running)
    errors = sum(result["errors"].values())
    seconds = result["duration_us"] / 1e6
    return {"server": server, "mode": mode, "rps": result["requests_per_s"], "errors": errors,
            "server_cpu_us_per_req": 1e6 * server_cpu / max(result["requests"], 1),
            "server_cpu_share": server_cpu / seconds, "loadgen_cpu_share": loadgen_cpu / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--size", type=int, default=88)
    parser.add_argument("--conns", type=int, default=100)
    parser.add_argument("--depth", type=int, default=16, help="pipelined requests per write")
    parser.add_argument("--server-cpus", type=lambda s: [int(c) for c in s.split(",")], default=[0])
    parser.add_argument("--loadgen-cpus", type=lambda s: [int(c) for c in s.split(",")], default=[1])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="JSON lines of every cell")
    args = parser.parse_args()
    args.nofile = min(default_nofile(), 65536)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    client = containers.docker_client()
    images.require_images(client, ["server", "loadgen", "nginx"])
    run_id = f"nginx-side-by-side-{uuid.uuid4().hex[:8]}"
    cells = []
    try:
        privilege = containers.privilege_options(client, images.TAGS["loadgen"], run_id)
        loadgen = containers.start_loadgen(client, images.TAGS["loadgen"], cpus=args.loadgen_cpus,
                                           nofile=args.nofile, run_id=run_id)
        with tempfile.TemporaryDirectory(prefix="zcb-side-") as tmp:
            for round_no in range(args.rounds):
                order = [(s, m) for s in ("zcbench", "nginx") for m in ("plain", "pipelined")]
                rng.shuffle(order)
                for server, mode in order:
                    c = {"round": round_no, **cell(client, privilege, run_id, loadgen, Path(tmp),
                                                    server=server, mode=mode, args=args)}
                    cells.append(c)
                    print(json.dumps(c), flush=True)
    finally:
        containers.remove_run_containers(client, run_id)
    if args.out:
        args.out.write_text("".join(json.dumps(c) + "\n" for c in cells))
    print(f"seed {seed}; size {args.size} B; conns {args.conns}; server CPUs {args.server_cpus}; "
          f"loadgen CPUs {args.loadgen_cpus}; {args.rounds} rounds of {args.duration} s")
    for mode in ("plain", "pipelined"):
        by = {(c["round"], c["server"]): c for c in cells if c["mode"] == mode}
        for key, label in (("rps", "throughput"), ("server_cpu_us_per_req", "server CPU/request")):
            ratios = [by[(r, "nginx")][key] / by[(r, "zcbench")][key] for r in range(args.rounds)]
            zcb = [by[(r, "zcbench")][key] for r in range(args.rounds)]
            ngx = [by[(r, "nginx")][key] for r in range(args.rounds)]
            print(f"{mode:9} {label:18} nginx/zcbench median {statistics.median(ratios):.3f} "
                  f"(rounds {min(ratios):.3f}-{max(ratios):.3f}); zcbench {statistics.median(zcb):.4g}, "
                  f"nginx {statistics.median(ngx):.4g}")


if __name__ == "__main__":
    main()
