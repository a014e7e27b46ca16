"""The response-size sweep (issue 6): where does zero-copy send start to pay on this host?

A sweep is an ordinary bench run whose matrix has several response sizes (the planner
interleaves them with the arms). This module builds its Config, runs it through the bench,
and reads a run's summary as a sweep: the per-size table, and the crossover per zc arm:

    the smallest size at which the arm's throughput is significantly better than regular after
    Holm's adjustment over the whole sweep, where the arm's own copied share is below
    COPIED_LIMIT, and from which no larger size is significantly worse; or "none in range";
    or, when every size was copied, "not measurable on this path: every send was copied".
"""

from __future__ import annotations

from pathlib import Path

from zcbench import fmt, stats
from zcbench.config import Config, parse_size_list

DEFAULT_SIZES = "88,512,1k,4k,16k,64k,256k,1m"
DEFAULT_CONNS = "100"
DEFAULT_MODE = "all"
DEFAULT_LABEL = "sweep"
ZC_ARMS = ("zc", "zc-fixed")

NOT_MEASURABLE_COPIED = "not measurable on this path: every send was copied"
NOT_MEASURABLE_NO_ZC = "not measurable: no SEND_ZC notification was counted"
NONE_IN_RANGE = "none in range"


def parse_sizes(text) -> tuple[int, ...]:
    """'88,512,1k,4k,16k,64k,256k,1m' -> byte counts in ascending order (ConfigError if bad)."""
    return tuple(sorted(parse_size_list(text, "--sizes")))


def sweep_config(*, sizes=DEFAULT_SIZES, conns=DEFAULT_CONNS, mode=DEFAULT_MODE,
                 label=DEFAULT_LABEL, **bench_options) -> Config:
    """The bench Config of a sweep: the bench's own validation, several response sizes."""
    byte_sizes = parse_sizes(sizes)
    return Config.from_args(response_size=",".join(str(s) for s in byte_sizes), conns=conns,
                            mode=mode, label=label, extra={"sweep": {"sizes": list(byte_sizes)}},
                            **bench_options)


def run_sweep(config: Config) -> Path:
    """Run the sweep's matrix through the bench (which renders the report); the run directory."""
    from zcbench import bench  # needs Docker: imported only when a sweep really runs

    return bench.run_bench(config)


def is_sweep(summary: dict) -> bool:
    return len(summary.get("response_sizes", [])) > 1


# --- reading a summary as a sweep ------------------------------------------------------------


def sweep_rows(summary: dict) -> list[dict]:
    """One row per (conns, size, arm) of zcbench arms: the numbers of the sweep table."""
    rows = []
    for conns in summary["conns"]:
        for size in summary["response_sizes"]:
            for arm in (a for a in summary["arms"] if a in ("regular", *ZC_ARMS)):
                group = stats.find_group(summary, arm, conns, size)
                if group is None:
                    continue
                comparison = stats.find_comparison(summary, arm, conns, size)
                throughput = comparison["metrics"]["requests_per_s"] if comparison else None
                rows.append({
                    "conns": conns,
                    "response_size": size,
                    "arm": arm,
                    "reps": group["reps"],
                    "requests_per_s": stats.group_mean(group, "requests_per_s"),
                    "gbit_per_s": stats.group_mean(group, "gbit_per_s"),
                    "ratio": throughput["ratio"] if throughput else None,
                    "ratio_ci": throughput["ci"] if throughput else None,
                    "mde": throughput["mde"] if throughput else None,
                    "verdict": throughput["verdict"] if throughput else None,
                    "cpu_us_per_request": stats.group_mean(group, "cpu_us_per_request"),
                    "cpu_us_per_kib": stats.group_mean(group, "cpu_us_per_kib"),
                    "latency_p99_us": stats.group_mean(group, "latency_p99_us"),
                    "copied_share": group["copied_share"],
                    "loadgen_bound_reps": group["loadgen_bound_reps"],
                    "sample_indexes": group["sample_indexes"],
                })
    return rows


#: A size where at least this share of the arm's SEND_ZC notifications said "copied" cannot be
#: credited with a win: whatever its numbers say, no zero-copy happened there.
COPIED_LIMIT = 0.99


def _copied_share(group: dict | None) -> float | None:
    return None if group is None else group.get("copied_share")


def _every_size_copied(groups: list[dict]) -> bool:
    shares = [_copied_share(g) for g in groups if _copied_share(g) is not None]
    return bool(shares) and all(s >= COPIED_LIMIT for s in shares)


def crossover(summary: dict, arm: str, conns: int) -> dict:
    """Where `arm` starts to pay at `conns`, judged per size on throughput (Holm-adjusted verdicts):

    the smallest size that is significantly better than regular, was really zero-copied there
    (its own copied share below COPIED_LIMIT), and from which no larger size is significantly
    worse. Otherwise why there is none."""
    sizes = [s for s in summary["response_sizes"] if stats.find_comparison(summary, arm, conns, s)]
    groups = [stats.find_group(summary, arm, conns, s) for s in sizes]
    verdicts = [stats.find_comparison(summary, arm, conns, s)["metrics"]["requests_per_s"] for s in sizes]
    result = {"arm": arm, "conns": conns, "size": None, "ratio": None, "ratio_ci": None,
              "copied_share": None, "sizes_tested": sizes}
    if not any((g.get("counters") or {}).get("zc_notifs") for g in groups):
        return result | {"status": "not measurable", "text": NOT_MEASURABLE_NO_ZC}
    if _every_size_copied(groups):
        return result | {"status": "not measurable", "text": NOT_MEASURABLE_COPIED}
    for i, (size, group, throughput) in enumerate(zip(sizes, groups, verdicts)):
        copied = _copied_share(group)
        if throughput["verdict"] != stats.BETTER or copied is None or copied >= COPIED_LIMIT:
            continue
        if any(later["verdict"] == stats.WORSE for later in verdicts[i + 1:]):
            continue
        comparison = stats.find_comparison(summary, arm, conns, size)
        text = (f"{fmt.size(size)} (throughput ×{fmt.ratio(throughput['ratio'])}, "
                f"{fmt.interval(throughput['ci'])} at the Holm-adjusted level; copied share "
                f"{fmt.percent(copied)})")
        if group["loadgen_bound_reps"]:
            text += "; loadgen-bound there, so the win may be wrk's"
        return result | {"status": "crossover", "size": size, "ratio": throughput["ratio"],
                         "ratio_ci": throughput["ci"], "copied_share": copied,
                         "arm_indexes": comparison["arm_indexes"],
                         "baseline_indexes": comparison["baseline_indexes"], "text": text}
    span = f"{fmt.size(sizes[0])}–{fmt.size(sizes[-1])}" if sizes else "no sizes"
    return result | {"status": "none in range", "text": f"{NONE_IN_RANGE} ({span})"}


def summarize_sweep(summary: dict) -> dict:
    """The sweep section of summary.json: the table rows and a crossover per zc arm and conns."""
    arms = [a for a in summary["arms"] if a in ZC_ARMS]
    return {
        "sizes": summary["response_sizes"],
        "rows": sweep_rows(summary),
        "crossovers": [crossover(summary, arm, conns) for conns in summary["conns"] for arm in arms],
    }
