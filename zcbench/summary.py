"""A run's summary: everything report.md, summary.json and the plots show, computed from the
stored samples and the manifest (nothing here renders or measures).

    build_summary(manifest, samples) -> summary

is stats.summarize (groups, paired comparisons, Holm, MDE) plus the run's identity and, when the
run has several response sizes, the sweep section: the per-size rows and, per zc arm and
connection count, the crossover -- where zero-copy send starts to pay on this host.
"""

from __future__ import annotations

from zcbench import __version__, fmt, stats
from zcbench.samples import LOADGEN_BOUND_SHARE, SAMPLES_FILE

ZC_ARMS = ("zc", "zc-fixed")

NOT_MEASURABLE_COPIED = "not measurable on this path: every send was copied"
NOT_MEASURABLE_NO_ZC = "not measurable: no SEND_ZC notification was counted"
NONE_IN_RANGE = "none in range"



def build_summary(manifest: dict, samples: list[dict]) -> dict:
    """stats.summarize plus the run's identity and, for several sizes, the sweep section."""
    summary = {
        "zcbench_version": __version__,
        "run_id": manifest.get("run_id", fmt.UNKNOWN),
        "label": manifest.get("label", (manifest.get("config") or {}).get("label", fmt.UNKNOWN)),
        "complete": bool(manifest.get("complete", False)),
        "incomplete_reason": manifest.get("incomplete_reason"),
        "samples_file": SAMPLES_FILE,
        "repeat_planned": (manifest.get("config") or {}).get("repeat"),
        "statistics": {"test": "paired t-test on per-block log ratios (two-sided)",
                       "ratio": "geometric mean of the per-block ratios arm / baseline",
                       "multiplicity": "Holm over every comparison of the report (family-wise error)",
                       "alpha": stats.ALPHA,
                       "interval": "t interval of the mean log ratio at level 1 - alpha * p / p_adjusted "
                                   "(excludes 1 exactly when the adjusted p < alpha); ci95 is unadjusted",
                       "mde": f"smallest change found with {stats.POWER:.0%} power at alpha / family size",
                       "secondary": "p_welch_logs: Welch's t-test on the unpaired logs",
                       "loadgen_bound_share": LOADGEN_BOUND_SHARE},
        **stats.summarize(samples),
    }
    if is_sweep(summary):
        summary["sweep"] = summarize_sweep(summary)
    return summary



# --- reading a summary as a sweep ------------------------------------------------------------


def is_sweep(summary: dict) -> bool:
    return len(summary.get("response_sizes", [])) > 1


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
