"""A run's summary.json, report.md, report.html and plots/, rendered from its stored samples.

    render_run(run_dir) -> summary

reads manifest.json (tolerating missing keys: they show as "unknown") and samples.jsonl,
computes the summary (zcbench.analyze.summary), counts how each comparison's blocks went
(present.blocks), draws the plots (present.plots) and writes every file atomically; report.html
is report.md's own text with the plots inline (present.page), so both say the same. The
same call re-renders a stored run (`invoke report -r RUN`); nothing here measures anything.

The report leads with ratios and verdicts measured side by side in one run: absolute req/s on
shared machines drift by tens of percent between runs, ratios of interleaved arms much less.
"""

from __future__ import annotations

from pathlib import Path

from zcbench.analyze import memlock, metrics, runstats, stats
from zcbench.analyze import summary as summary_mod
from zcbench.analyze.runstats import GroupSummary
from zcbench.analyze.summary import Summary
from zcbench.analyze.sweep import COPIED_LIMIT
from zcbench.core import arms, fmt, rundir
from zcbench.core.fmt import markdown_table
from zcbench.core.rundir import PLOTS, REPORT, REPORT_HTML, SAMPLES, SUMMARY
from zcbench.core.samples import LOADGEN_BOUND_SHARE, RATE_SUSTAINED_SHARE
from zcbench.present import page, plots
from zcbench.present.blocks import BlockTally, TallyKey, tally_blocks
from zcbench.present.environment import _container_mode, _host, _path_kind, environment_lines
from zcbench.present.labels import (VERDICT_ORDER, blocks_went, delta_label,
                                    mde_text, ratio_label, verdict_word)
from zcbench.present.labels import where_text as _where

LOADGEN_MARK = "†"
#: report.html shows the answer first: the glance, then the plots (report.md keeps its order).
HTML_LEAD = ("At a glance", "Plots")


def render_run(run_dir: Path) -> Summary:
    """Write summary.json, report.md, report.html and plots/*.png of a run directory; return the
    summary. report.html is report.md's text with the plots inline (present.page)."""
    run_dir = rundir.resolve_run_dir(run_dir)
    manifest = rundir.read_manifest(run_dir)
    samples = rundir.load_samples(run_dir)
    summary = summary_mod.build_summary(manifest, samples)
    tallies = tally_blocks(summary, samples)
    drawn = plots.render_plots(summary, samples, tallies, run_dir / PLOTS)
    summary.plots = [f"{PLOTS}/{plot.png}" for plot in drawn]
    rundir.write_json(run_dir / SUMMARY, summary.to_json())
    markdown = render_markdown(summary, manifest, tallies)
    rundir.write_text(run_dir, REPORT, markdown)
    rundir.write_text(run_dir, REPORT_HTML, page.render_page(
        markdown, {f"{PLOTS}/{plot.png}": plot.svg for plot in drawn}, lead=HTML_LEAD, folded=(SAMPLES_TITLE,)))
    return summary


# --- labels (the shared ones are present.labels') -----------------------------------------


def cell_text(group: GroupSummary | None) -> str:
    """'112K req/s, 0.90ms' (means over the repetitions; latency = wrk's mean latency)."""
    if group is None:
        return "not measured"
    return f"{fmt.rate(group.mean('requests_per_s'))} req/s, {fmt.micros(group.mean('latency_mean_us'))}"


def conns_text(group: GroupSummary | None, conns: int, repeat_planned: int | None, *others) -> str:
    """Conns, marked when a group of the row was loadgen-bound or short of repetitions."""
    groups = [g for g in (group, *others) if g]
    text = str(conns)
    if any(g.loadgen_bound_reps for g in groups):
        text += f" {LOADGEN_MARK}"
    if repeat_planned and any(g.reps < repeat_planned for g in groups):
        text += f" ({min(g.reps for g in groups)}/{repeat_planned} reps)"
    return text


def responses_text(group: GroupSummary) -> str:
    if group.server_responses is None:
        return fmt.MISSING
    unexplained = group.responses_unexplained
    mark = f" ⚠ {unexplained:+,} unexplained" if unexplained else ""
    return f"{fmt.count(group.server_responses)} / {fmt.count(group.wrk_requests)}{mark}"


def indexes_text(indexes: list[int]) -> str:
    return ",".join(str(i) for i in indexes)


SAMPLES_TITLE = "Samples per cell"


def samples_lines(summary: Summary) -> list[str]:
    """Which samples each cell's numbers come from (their `cell.index`), apart from the tables
    they would make unreadable (report.html folds this section away)."""
    rows = [[g.arm, str(g.conns), fmt.size(g.response_size), indexes_text(g.sample_indexes)] for g in summary.groups]
    return [f"## {SAMPLES_TITLE}", "",
            f"Every number above is computed from these lines of `{SAMPLES}` (their `cell.index`); "
            f"`{SUMMARY}` lists them for each number too.", "",
            *markdown_table(["Arm", "Conns", "Size", "Samples"], rows), ""]


# --- sections --------------------------------------------------------------------------------


def _zc_arms(summary: Summary) -> list[str]:
    return [a for a in summary.arms if a in arms.zero_copy_arms()]


def headline_lines(summary: Summary, manifest: dict) -> list[str]:
    lines = [f"# zcbench report: {summary.run_id}", ""]
    if not summary.complete:
        reason = summary.incomplete_reason or "no reason recorded"
        if reason == "running":  # the bench writes this until the run ends, however it ends
            reason = "the run was still going when this was rendered, or died without cleaning up"
        lines += [f"> **⚠ INCOMPLETE RUN** — {reason}. The numbers below cover only the "
                  f"{summary.samples_count} samples recorded; cells short of "
                  "their planned repetitions say so.", ""]
    config = manifest.get("config") or {}
    lines += [
        f"**{summary.label}** · {summary.samples_count} samples · "
        f"{config.get('repeat', fmt.UNKNOWN)} repetitions per cell of {config.get('duration_s', '?')} s · "
        f"path {_path_kind(manifest)} · kernel {_host(manifest).get('kernel_release', fmt.UNKNOWN)} · "
        f"server container {_container_mode(manifest)}",
        "",
        *_threads_warning(config),
        f"Raw samples: `{SAMPLES}` in this directory (one JSON object per measured cell, "
        f"`cell.index` = its position in the run). `{SUMMARY}` lists, for every number below, the "
        "sample indexes it was computed from.",
        "",
    ]
    return lines


def _threads_warning(config: dict) -> list[str]:
    """wrk with fewer threads than loadgen CPUs leaves cores idle: say so, it limits the load."""
    threads, cpus = config.get("threads"), config.get("loadgen_cpus") or []
    if not threads or threads >= len(cpus):
        return []
    return [f"> ⚠ wrk ran {threads} thread(s) on {len(cpus)} loadgen CPUs: the load it could offer "
            f"was {threads} core(s)' worth; loadgen-bound is judged against those {threads}.", ""]


def _rates_text(groups: list[GroupSummary]) -> str:
    rates = sorted({g.offered_rate for g in groups})
    return (f"{fmt.rate(rates[0])} req/s" if len(rates) == 1
            else f"{fmt.rate(rates[0])}–{fmt.rate(rates[-1])} req/s depending on the cell")


def glance_line(summary: Summary, arm: str, metric: str,
                tallies: dict[TallyKey, BlockTally] | None = None) -> str | None:
    """'worse at 4000c (-7.8%, in 27 of 30 blocks); no difference at 100c (MDE ±2.9%; better in
    16 of 30 blocks)': with tallies, how many blocks went each verdict's way."""
    by_verdict: dict[str, list[str]] = {}
    for size in summary.response_sizes:
        for conns in summary.conns:
            comparison = summary.comparison(arm, conns, size)
            if comparison is None:
                continue
            c = comparison.metrics[metric]
            word = verdict_word(c.verdict)
            where = _where(summary, conns, size)
            went = blocks_went(c, (tallies or {}).get((arm, conns, size, metric)))
            detail = ""
            if word in (stats.BETTER, stats.WORSE):
                detail = f" ({fmt.delta(c.delta)}" + (f", in {went[1]} of {went[2]} blocks" if went else "") + ")"
            elif word == stats.NO_DIFFERENCE:
                detail = f" (MDE {mde_text(c)}" + (f"; {went[0]} in {went[1]} of {went[2]} blocks" if went else "") + ")"
            by_verdict.setdefault(word, []).append(where + detail)
    if not by_verdict:
        return None
    return "; ".join(f"{word} at {', '.join(by_verdict[word])}" for word in VERDICT_ORDER if word in by_verdict)


def glance_lines(summary: Summary, manifest: dict | None = None,
                 tallies: dict[TallyKey, BlockTally] | None = None) -> list[str]:
    """Per arm: where the verdicts say it won, lost, or was noise; then the flags that matter."""
    lines = ["## At a glance", ""]
    bound = [g for g in summary.groups if g.loadgen_bound_reps]
    metrics = (("requests_per_s", "throughput"), ("latency_mean_us", "mean latency"),
               ("cpu_us_per_request", "CPU/request"))
    paced = [g for g in summary.groups if g.offered_rate]
    if paced:  # equal offered load: throughput is the rate asked for; cost and latency are the news
        metrics = (("cpu_per_loadgen_cpu", "server CPU per wrk CPU"), ("cpu_us_per_request", "CPU/request"),
                   ("latency_p99_us", "p99 latency"), ("latency_mean_us", "mean latency"))
        unsustained = [c for c in summary.comparisons if c.rate_unsustained]
        left_out = sum(len(c.short_blocks) for c in summary.comparisons if not c.rate_unsustained)
        lines.append(f"- **At equal offered load** ({_rates_text(paced)}): every arm of a cell was offered "
                     "the same request rate, so CPU/request and latency compare the arms' cost; "
                     "server CPU per wrk CPU (wrk did the same work for every arm) cancels what moves "
                     "both, such as a shared machine's momentary speed."
                     + (f" ⚠ {len(unsustained)} comparison(s) fell short of it in too many blocks "
                        "and are not compared." if unsustained else "")
                     + (f" {left_out} block(s) where an arm fell short are left out of their comparison."
                        if left_out else ""))
    elif bound:  # throughput measured wrk there: lead with what the server's own cost says
        metrics = (("cpu_us_per_request", "CPU/request"), ("latency_p99_us", "p99 latency"),
                   ("requests_per_s", "throughput"))
        lines.append(f"- **Read CPU/request first**: wrk was the bottleneck in {len(bound)} of "
                     f"{len(summary.groups)} cells, so throughput there is wrk's. To make the server "
                     "the bottleneck: give wrk more CPUs (`--loadgen-cpus`), or run the loadgen on a "
                     "second host; or compare at equal load with `--rate auto`.")
    for arm in [a for a in summary.arms if a != "regular"]:
        for metric, name in metrics:
            text = glance_line(summary, arm, metric, tallies)
            if text:
                lines.append(f"- **{arm} vs regular, {name}**: {text}")
    copied = [g for g in summary.groups if g.copied_share is not None]
    if copied:
        low, high = min(g.copied_share for g in copied), max(g.copied_share for g in copied)
        span = fmt.percent(low) if low == high else f"{fmt.percent(low)}–{fmt.percent(high)}"
        note = " (the kernel copied every one: no zero-copy happened on this path)" if low >= 1 else ""
        lines.append(f"- **Copied share** of ZC sends: {span}{note}")
    if bound:
        cells = ", ".join(f"{g.arm} at {_where(summary, g.conns, g.response_size)}" for g in bound)
        lines.append(f"- **{LOADGEN_MARK} Loadgen-bound** (wrk's cores ≥ {fmt.percent(LOADGEN_BOUND_SHARE)} "
                     f"busy): {cells} — there the numbers measure wrk, not the server")
    enomem = sum((g.counters or {}).get("zc_enomem", 0) for g in summary.groups)
    if any(g.counters for g in summary.groups):
        lines.append(f"- **SEND_ZC -ENOMEM**: {fmt.count(enomem)} in total")
    if (memlock_line := memlock.glance_line(summary, manifest or {})) is not None:
        lines.append(memlock_line)
    if summary.sweep:
        for c in summary.sweep.crossovers:
            lines.append(f"- **Crossover, {c.arm} at {c.conns} conns**: {c.text}")
    return lines + [""]


def study_table_lines(summary: Summary, arm: str) -> list[str]:
    """The study's table for one zc arm against regular (a Size column when several sizes)."""
    several = len(summary.response_sizes) > 1
    header = (["Size"] if several else []) + ["Conns", "Regular Send", arms.title(arm),
                                              "Throughput Delta", "Latency Delta"]
    rows = []
    for size in summary.response_sizes:
        for conns in summary.conns:
            base = summary.group("regular", conns, size)
            group = summary.group(arm, conns, size)
            if base is None and group is None:
                continue
            comparison = summary.comparison(arm, conns, size)
            metrics = comparison.metrics if comparison else {}
            rows.append(([fmt.size(size)] if several else []) + [
                conns_text(group, conns, summary.repeat_planned, base),
                cell_text(base), cell_text(group),
                delta_label(metrics.get("requests_per_s")), delta_label(metrics.get("latency_mean_us"))])
    title = f"## {arm} vs regular" + ("" if several else f" — {fmt.size(summary.response_sizes[0])} responses")
    return [title, "",
            "Means over the repetitions; latency is wrk's mean latency. Each delta is the arm against "
            "regular paired by repetition (geometric mean of the per-repetition ratios), **bold** when "
            "significant after Holm's adjustment over the whole report; otherwise \"no difference\" with "
            f"the smallest change this run could have seen (MDE). {LOADGEN_MARK} = loadgen-bound.", "",
            *markdown_table(header, rows), ""]


def equal_load_lines(summary: Summary) -> list[str]:
    """--rate: per cell and arm, the rate offered and achieved, then cost and latency."""
    groups = [g for g in summary.groups if g.offered_rate]
    if not groups:
        return []
    rows = []
    for group in groups:
        comparison = summary.comparison(*group.key.where)
        metrics = comparison.metrics if comparison else {}
        is_base = group.arm == runstats.BASELINE_ARM
        short = group.rate_unsustained_reps
        rows.append([
            group.arm, str(group.conns), fmt.size(group.response_size),
            fmt.rate(group.offered_rate),
            fmt.rate(group.achieved_rate) + (f" ⚠ {short}/{group.reps} short" if short else ""),
            fmt.number(group.mean("cpu_per_loadgen_cpu"), 3),
            "baseline" if is_base else delta_label(metrics.get("cpu_per_loadgen_cpu")),
            fmt.number(group.mean("cpu_us_per_request")),
            "baseline" if is_base else delta_label(metrics.get("cpu_us_per_request")),
            fmt.micros(group.mean("latency_p99_us")),
            "baseline" if is_base else delta_label(metrics.get("latency_p99_us")),
        ])
    return ["## At equal offered load", "",
            "wrk paced every arm of a cell to the same request rate (`loadgen/paced.lua`). Achieved = "
            "mean of the repetitions, each over its paced window (from wrk's first paced request, once "
            f"its connections were open, until it stopped); ⚠ marks repetitions below {fmt.percent(RATE_SUSTAINED_SHARE)} of the "
            "offered rate: a block in which either arm fell short is left out of the cell's comparison, "
            f"and a cell with more than {fmt.percent(runstats.MAX_SHORT_BLOCK_SHARE)} such blocks is not "
            "compared. Deltas are paired by block, Holm-adjusted. "
            "CPU ÷ wrk = the server's CPU time over wrk's in the same window: wrk did the same work "
            "for every arm, so what slows both (a shared machine's momentary speed) cancels.", "",
            *markdown_table(["Arm", "Conns", "Size", "Offered", "Achieved", "CPU ÷ wrk", "Delta",
                             "CPU µs/req", "CPU Delta", "p99", "p99 Delta"], rows), ""]


def statistics_lines(summary: Summary) -> list[str]:
    header = ["Arm", "Conns", "Size", "Reps", "req/s median [min–max]", "Throughput ratio [CI]",
              "p / p Holm", "MDE", "p99", "p99 Delta", "CPU µs/req", "CPU Delta"]
    rows = []
    for group in summary.groups:
        comparison = summary.comparison(*group.key.where)
        metrics = comparison.metrics if comparison else {}
        rps = group.metrics["requests_per_s"]
        throughput = metrics.get("requests_per_s")
        rows.append([
            group.arm, conns_text(group, group.conns, summary.repeat_planned),
            fmt.size(group.response_size), str(group.reps),
            f"{fmt.rate(rps.median)} [{fmt.rate(rps.min)}–{fmt.rate(rps.max)}]"
            if rps.n else fmt.MISSING,
            ratio_label(throughput.ratio, throughput.ci) if throughput
            else "baseline" if group.arm == "regular" else fmt.MISSING,
            f"{fmt.pvalue(throughput.p)} / {fmt.pvalue(throughput.p_adjusted)}"
            if throughput else fmt.MISSING,
            mde_text(throughput) if throughput else fmt.MISSING,
            fmt.micros(group.mean("latency_p99_us")), delta_label(metrics.get("latency_p99_us")),
            fmt.number(group.mean("cpu_us_per_request")), delta_label(metrics.get("cpu_us_per_request")),
        ])
    return ["## Statistics per cell", "",
            "Ratio = geometric mean of arm / regular per repetition, same conns and size; CI at the "
            "level Holm's adjustment tested it (it excludes 1 exactly when the verdict is significant). "
            "p = paired t-test on the log ratios, p Holm = adjusted over every comparison of this report. "
            "MDE = smallest change detectable with 80% power. CPU = server container CPU time per "
            f"request (cgroup). Each cell's samples are listed under \"{SAMPLES_TITLE}\".", "",
            *markdown_table(header, rows), ""]


def counters_lines(summary: Summary) -> list[str]:
    header = ["Arm", "Conns", "Size", "ZC share of sends", "Copied share", "ENOMEM",
              "Fallback cap / budget / ENOMEM", "In-flight peak", "wrk CPU (bound reps)", "wrk errors (non-2xx)",
              "Server responses / wrk requests"]
    rows = []
    for group in summary.groups:
        counters = group.counters or {}
        bound = group.loadgen_bound_reps
        rows.append([
            group.arm, str(group.conns), fmt.size(group.response_size),
            fmt.percent(group.zc_send_share, 1), fmt.percent(group.copied_share, 1),
            fmt.count(counters.get("zc_enomem")),
            " / ".join(fmt.count(counters.get(name)) for name in memlock.FALLBACK_CAUSES)
            if counters else fmt.MISSING,
            fmt.count(group.zc_inflight_peak),
            f"{fmt.percent(group.loadgen_cpu_share_max)} ({bound}/{group.reps}"
            f"{' ' + LOADGEN_MARK if bound else ''})",
            f"{fmt.count(group.errors.total)} ({fmt.count(group.errors.status)})",
            responses_text(group),
        ])
    return ["## Server counters and checks", "",
            "Summed over the repetitions. Copied share = `zc_copied / zc_notifs` (notifications the "
            "kernel flagged IORING_NOTIF_USAGE_ZC_COPIED). Fallbacks are regular sends issued at the "
            "in-flight cap, at the memlock page budget or after -ENOMEM. wrk CPU = highest share of wrk's cores busy in a "
            "repetition. The server may count up to one response per connection more than wrk "
            "(in flight when wrk stopped) plus wrk's errors; ⚠ marks responses beyond that, or missing.", "",
            *markdown_table(header, rows), ""]


def nginx_lines(summary: Summary) -> list[str]:
    rows = []
    for size in summary.response_sizes:
        for conns in summary.conns:
            group = summary.group("nginx", conns, size)
            if group is None:
                continue
            base = summary.group("regular", conns, size)
            comparison = summary.comparison("nginx", conns, size)
            throughput = comparison.metrics["requests_per_s"] if comparison else None
            rows.append([str(conns), fmt.size(size), cell_text(group), cell_text(base),
                         ratio_label(throughput.ratio, throughput.ci) if throughput else fmt.MISSING,
                         delta_label(throughput)])
    if not rows:
        return []
    return ["## nginx reference", "",
            "nginx from Debian answering the same response bytes, measured interleaved with the "
            "zcbench arms.", "",
            *markdown_table(["Conns", "Size", "nginx", "zcbench regular", "nginx / regular [95% CI]",
                     "Throughput Delta"], rows), ""]


def sweep_lines(summary: Summary) -> list[str]:
    section = summary.sweep
    if not section:
        return []
    lines = ["## Response-size sweep", "", "### Crossover", "",
             "The smallest response size at which the arm's throughput is significantly better than "
             f"regular (Holm-adjusted), where its own copied share is below {fmt.percent(COPIED_LIMIT)}, "
             "and from which no larger size is significantly worse.", ""]
    lines += [f"- **{c.arm}** at {c.conns} conns: {c.text}" for c in section.crossovers]
    lines.append("")
    for conns in summary.conns:
        rows = []
        for row in (r for r in section.rows if r.conns == conns):
            is_base = row.arm == "regular"
            rows.append([
                fmt.size(row.response_size), row.arm + (f" {LOADGEN_MARK}" if row.loadgen_bound_reps else ""),
                fmt.rate(row.requests_per_s), fmt.gbit(row.gbit_per_s),
                "baseline" if is_base else ratio_label(row.ratio, row.ratio_ci),
                "" if is_base else (row.verdict or fmt.MISSING),
                fmt.number(row.cpu_us_per_request), fmt.number(row.cpu_us_per_kib, 3),
                fmt.micros(row.latency_p99_us), fmt.percent(row.copied_share, 1),
            ])
        lines += [f"### Per size, {conns} conns", "",
                  *markdown_table(["Size", "Arm", "req/s", "Gbit/s", "ZC/regular [CI]", "Verdict",
                           "CPU µs/req", "CPU µs/KiB", "p99", "Copied"], rows), ""]
    return lines


def plot_lines(summary: Summary) -> list[str]:
    if not summary.plots:
        return []
    lines = ["## Plots", ""]
    for path in summary.plots:
        lines += [f"![{Path(path).stem}]({path})", ""]
    return lines


def _family_size(summary: Summary) -> int:
    sizes = [m.family_size for c in summary.comparisons for m in c.metrics.values()]
    return max([s for s in sizes if s] or [0])


def _metric_count(summary: Summary) -> int:
    return max((len(c.metrics) for c in summary.comparisons), default=len(metrics.COMPARED_METRICS))


def method_lines(summary: Summary) -> list[str]:
    return [
        "## Method", "",
        "- Arms run interleaved in a shuffled order per repetition (seed above), so drift hits every arm alike.",
        "- A repetition is a block holding every arm; an arm is compared with regular on the per-block "
        "log ratios (paired t-test, two-sided). The ratio shown is their geometric mean.",
        f"- Multiplicity: Holm's step-down over all {_family_size(summary)} comparisons of this report "
        f"(arms × cells × {_metric_count(summary)} metrics) keeps the family-wise error below "
        f"{stats.ALPHA}; both the raw and the adjusted p are in the statistics table.",
        "- Each ratio's interval is taken at the level its adjusted test used, so a verdict is "
        "significant exactly when the interval excludes 1.0; `summary.json` also keeps the unadjusted 95% interval "
        "and Welch's test on the unpaired logs.",
        f"- \"No difference\" comes with the minimum detectable effect: the smallest change this run "
        f"would have found with {stats.POWER:.0%} power, from its spread and number of blocks, at "
        f"{stats.ALPHA} / family size.",
        "- Calibrate the host first (`invoke calibrate`): an A/A must say no difference and a known "
        "injected CPU cost must be found.",
        f"- {LOADGEN_MARK} loadgen-bound: wrk's cores were at least "
        f"{fmt.percent(LOADGEN_BOUND_SHARE)} busy in a repetition; that cell measured wrk, not the server.",
        "- Re-render from the stored samples with `invoke report -r <this directory>`; compare two runs "
        "with `invoke compare RUN_A RUN_B`.",
        "",
    ]


def render_markdown(summary: Summary, manifest: dict, tallies: dict[TallyKey, BlockTally] | None = None) -> str:
    lines = headline_lines(summary, manifest)
    if not summary.groups:
        lines += ["No sample was recorded.", ""]
    else:
        lines += glance_lines(summary, manifest, tallies)
        lines += equal_load_lines(summary)
        for arm in _zc_arms(summary):
            lines += study_table_lines(summary, arm)
        lines += sweep_lines(summary)
        lines += nginx_lines(summary)
        lines += statistics_lines(summary)
        lines += counters_lines(summary)
        lines += plot_lines(summary)
        lines += samples_lines(summary)
    lines += environment_lines(manifest)
    lines += method_lines(summary)
    return "\n".join(lines)
