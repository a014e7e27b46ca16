"""zcbench.analyze.memlock: the report's sentence on -ENOMEM and budget fallbacks, from fabricated groups;
and the report's wiring of it (a fixture run whose zc cells are made to hit the limits)."""

import json
import shutil
from pathlib import Path

from zcbench.analyze import memlock
from zcbench.present import report
from zcbench.core.samples import Errors
from zcbench.analyze.runstats import GroupSummary, RunStats

RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"
MIB = 1 << 20


def manifest(drop=True, memlock_bytes=8 * MIB, cpus=(0, 1)):
    return {"config": {"drop_ipc_lock": drop, "memlock": memlock_bytes, "server_cpus": list(cpus)},
            "cpus": {"server": list(cpus)}}


def group(reps=3, arm="zc", conns=1000, size=88, counters=True, **counts):
    base = {"zc_enomem": 0, "fallback_cap": 0, "fallback_budget": 0, "fallback_enomem": 0,
            "zc_pages_peak": 0, "zc_page_budget": 0}
    return GroupSummary(server="zcbench", arm=arm, conns=conns, response_size=size, sample_indexes=list(range(reps)),
                        metrics={}, counters={**base, **counts} if counters else None, zc_inflight_peak=None,
                        copied_share=None, zc_send_share=None, loadgen_bound_reps=0, offered_rate=None, achieved_rate=None,
                        rate_unsustained_reps=0, loadgen_cpu_share_max=None, errors=Errors(), wrk_requests=0,
                        server_responses=None, responses_per_request=None, responses_unexplained=None)


def summary(groups):
    return RunStats(samples_count=0, arms=[], conns=[], response_sizes=[], groups=groups, comparisons=[])


def test_nothing_to_explain_without_enomem_or_budget_fallbacks():
    assert memlock.explain(manifest(), group(fallback_cap=500, zc_page_budget=6000)) is None
    assert memlock.explain(manifest(), group(arm="nginx", counters=False)) is None
    assert memlock.glance_line(summary([group(fallback_cap=9)]), manifest()) is None


def test_enomem_names_the_dropped_capability_the_limit_the_budget_and_the_peak():
    # 2 workers x 3 reps, each worker's budget 1,000 pages: the summed gauge is 6,000
    text = memlock.explain(manifest(), group(zc_enomem=1234, fallback_enomem=1234, fallback_cap=10,
                                             zc_page_budget=6000, zc_pages_peak=2100))
    assert text.startswith("1,234 SEND_ZC -ENOMEM at zc, 1000 conns, 88 B:")
    assert "dropped CAP_IPC_LOCK (--drop-ipc-lock)" in text
    assert "RLIMIT_MEMLOCK 8 MiB shared by the user's 2 worker(s)" in text
    assert "a budget of 1,000 pages per worker" in text and "peak 2,100 pages" in text
    assert "cap / budget / optmem / ENOMEM / ENOBUFS 10 / 0 / 0 / 1,234 / 0" in text
    assert "most fallbacks came from -ENOMEM" in text


def test_budget_fallbacks_are_blamed_on_the_budget():
    text = memlock.explain(manifest(cpus=(0,)), group(reps=2, fallback_budget=900, fallback_cap=30,
                                                      zc_page_budget=3200, zc_pages_peak=1600, size=1 << 20))
    assert "0 SEND_ZC -ENOMEM at zc, 1000 conns, 1 MiB" in text
    assert "a budget of 1,600 pages per worker" in text and "1 worker(s)" in text
    assert "most fallbacks came from the memlock page budget" in text


def test_enomem_with_the_capability_kept_or_no_budget_says_so():
    text = memlock.explain(manifest(drop=False, memlock_bytes=-1), group(zc_enomem=5))
    assert "kept CAP_IPC_LOCK" in text and "RLIMIT_MEMLOCK unlimited" in text
    assert "no page budget" in text and "no fallback was issued" in text
    unknown = memlock.explain({}, group(zc_enomem=5, reps=0))
    assert "is unknown" in unknown and "RLIMIT_MEMLOCK unknown" in unknown and "unknown page budget" in unknown


def test_glance_line_picks_the_worst_cell_and_counts_the_others():
    groups = [group(conns=100, fallback_budget=50), group(conns=4000, zc_enomem=7, fallback_enomem=7),
              group(conns=1000), group(arm="nginx", counters=False)]
    line = memlock.glance_line(summary(groups), manifest())
    assert line.startswith("- **Memlock** (2 cells had -ENOMEM or budget fallbacks; this is the worst): ")
    assert "7 SEND_ZC -ENOMEM at zc, 4000 conns" in line


def test_report_shows_the_budget_column_and_the_memlock_line(tmp_path):
    run_dir = Path(shutil.copytree(RUNS / "study-loopback", tmp_path / "run"))
    record = json.loads((run_dir / "manifest.json").read_text())
    record["config"].update(drop_ipc_lock=True, memlock=8 * MIB)
    (run_dir / "manifest.json").write_text(json.dumps(record))
    lines = []
    for line in (run_dir / "samples.jsonl").read_text().splitlines():
        sample = json.loads(line)
        if sample["cell"]["arm"] == "zc" and sample["cell"]["conns"] == 4000:
            sample["server_counters"].update(fallback_budget=111, zc_enomem=3, fallback_enomem=3,
                                             zc_page_budget=1800, zc_pages_peak=1790)
        lines.append(json.dumps(sample))
    (run_dir / "samples.jsonl").write_text("\n".join(lines) + "\n")
    report.render_run(run_dir)
    text = (run_dir / "report.md").read_text()
    glance = text.split("## At a glance", 1)[1].split("\n## ", 1)[0]
    memlock_lines = [line for line in glance.splitlines() if line.startswith("- **Memlock**")]
    assert len(memlock_lines) == 1
    reps = sum(1 for line in lines if '"arm": "zc"' in line and '"conns": 4000' in line)
    assert f"{3 * reps} SEND_ZC -ENOMEM at zc, 4000 conns" in memlock_lines[0]
    assert "a budget of 1,800 pages per worker" in memlock_lines[0]
    assert f"| {memlock.FALLBACK_HEADER} |" in text and "cap / budget / optmem / ENOMEM / ENOBUFS" in memlock.FALLBACK_HEADER
    row = next(line for line in text.split("## Server counters", 1)[1].splitlines()
               if line.startswith("| zc | 4000 |"))
    assert f" / {111 * reps:,} / – / {3 * reps:,} / – |" in row  # cap / budget / optmem / ENOMEM / ENOBUFS
