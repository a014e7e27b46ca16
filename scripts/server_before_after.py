"""Two native zcb-server builds side by side: server CPU per request under wrk (issue 11 item 3).

Each cell starts one build pinned to --server-cpu, runs the host's wrk pinned to --loadgen-cpu
(taskset) against 127.0.0.1, and reads the server's CPU time from /proc before and after.
Cells (build x mode x arm) are shuffled inside each round, so drift hits both builds alike.
Modes: plain keep-alive (loadgen/report.lua) and pipelined (loadgen/pipeline.lua -- DEPTH).

    git archive BASE server | tar -x -C /tmp/before && make -C /tmp/before/server
    .venv/bin/python scripts/server_before_after.py --before /tmp/before/server/build/zcb-server \\
        --after server/build/zcb-server --rounds 5 --duration 5 --arms regular,zc
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
from pathlib import Path

from zcbench.core.paths import ROOT

SCRIPTS = {"plain": ROOT / "loadgen" / "report.lua", "pipelined": ROOT / "loadgen" / "pipeline.lua"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def cell(binary: str, mode: str, arm: str, args) -> dict:
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--cpus", str(args.server_cpu), "--send", arm,
                               "--idle-timeout", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        banner = server.stderr.readline().decode()
        if "listening on" not in banner:
            raise RuntimeError(f"{binary} did not start: {banner}")
        extra = ["--", str(args.depth)] if mode == "pipelined" else []
        before = cpu_seconds(server.pid)
        wrk = subprocess.run(["taskset", "-c", str(args.loadgen_cpu), "wrk", "-t1", f"-c{args.conns}",
                              f"-d{args.duration}s", "--timeout", "5s", "-s", str(SCRIPTS[mode]),
                              f"http://127.0.0.1:{port}/", *extra],
                             capture_output=True, text=True, timeout=args.duration + 60)
        used = cpu_seconds(server.pid) - before
    finally:
        server.terminate()
        final, _ = server.communicate(timeout=10)
    result = json.loads([line for line in wrk.stdout.splitlines() if line.startswith("{")][-1])
    totals = json.loads(final.decode())["totals"]
    return {"mode": mode, "arm": arm, "rps": result["requests_per_s"],
            "cpu_us_per_req": 1e6 * used / max(result["requests"], 1),
            "sends_per_response": (totals["sends_regular"] + totals["sends_zc"]) / max(totals["responses"], 1),
            "errors": sum(result["errors"].values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--conns", type=int, default=100)
    parser.add_argument("--depth", type=int, default=16, help="pipelined requests per write")
    parser.add_argument("--arms", default="regular", help="comma-separated send arms")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--loadgen-cpu", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    builds = {"before": args.before, "after": args.after}
    rng = random.Random(args.seed)
    cells = []
    for round_no in range(args.rounds):
        order = [(b, m, a) for b in builds for m in SCRIPTS for a in args.arms.split(",")]
        rng.shuffle(order)
        for build, mode, arm in order:
            c = {"round": round_no, "build": build, **cell(builds[build], mode, arm, args)}
            cells.append(c)
            print(json.dumps(c), flush=True)
    print(f"seed {args.seed}; conns {args.conns}; depth {args.depth}; server CPU {args.server_cpu}; "
          f"wrk CPU {args.loadgen_cpu}; {args.rounds} rounds of {args.duration} s")
    for mode in SCRIPTS:
        for arm in args.arms.split(","):
            for build in builds:
                got = [c for c in cells if (c["build"], c["mode"], c["arm"]) == (build, mode, arm)]
                us = [c["cpu_us_per_req"] for c in got]
                print(f"{mode:9} {arm:8} {build:6} CPU/request median {statistics.median(us):.2f} µs "
                      f"[{min(us):.2f}-{max(us):.2f}], req/s median {statistics.median(c['rps'] for c in got):,.0f}, "
                      f"sends/response {statistics.median(c['sends_per_response'] for c in got):.3f}, "
                      f"wrk errors {sum(c['errors'] for c in got)}")


if __name__ == "__main__":
    main()
