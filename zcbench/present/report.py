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

from collections.abc import Callable
from pathlib import Path

from zcbench.analyze import independence, memlock, metrics, runstats, stats
from zcbench.analyze import summary as summary_mod
from zcbench.analyze.runstats import GroupSummary
from zcbench.analyze.summary import Summary
from zcbench.analyze.sweep import COPIED_LIMIT, NONINFERIORITY_MARGIN, crossover_metric
from zcbench.core import arms, fmt, rundir
from zcbench.core.fmt import markdown_table
from zcbench.core.rundir import PLOTS, REPORT, REPORT_HTML, SAMPLES, SUMMARY
from zcbench.core.samples import LOADGEN_BOUND_SHARE, RATE_SUSTAINED_SHARE
from zcbench.present import page, plots
from zcbench.present.latency_load import latency_load_lines
from zcbench.present.environment import _container_mode, _host, _path_kind, environment_lines
from zcbench.present.labels import (VERDICT_ORDER, blocks_went, conns_text, delta_label, is_latency, mde_text,
                                    ratio_label, verdict_word)
from zcbench.present.labels import where_text as _where

LOADGEN_MARK = "†"
#: report.html shows the answer first: the glance, then the plots (report.md keeps its order).
HTML_LEAD = ("At a glance", "Plots")


def render_run(run_dir: Path) -> Summary:
    """Write summary.json, report.md, report.html and plots/*.png of a run directory; return the
    summary. report.html is report.md's text with the plots inline (present.page)."""
    return render_run_pages(run_dir)[0]


def render_run_pages(run_dir: Path) -> tuple[Summary, Callable[[], None]]:
    """render_run, and a function that writes report.md and report.html again from the manifest
    as it is then (the bench's final timing, rendering included), the summary and plots kept."""
    run_dir = rundir.resolve_run_dir(run_dir)
    manifest = rundir.read_manifest(run_dir)
    samples = rundir.load_samples(run_dir)
    summary = summary_mod.build_summary(manifest, samples)
    drawn = plots.render_plots(summary, samples, run_dir / PLOTS)
    summary.plots = [f"{PLOTS}/{plot.png}" for plot in drawn]
    rundir.write_json(run_dir / SUMMARY, summary.to_json())

    def write_pages(manifest: dict) -> None:
        markdown = render_markdown(summary, manifest)
        rundir.write_text(run_dir, REPORT, markdown)
        rundir.write_text(run_dir, REPORT_HTML, page.render_page(
            markdown, {f"{PLOTS}/{plot.png}": plot.svg for plot in drawn}, lead=HTML_LEAD, folded=(SAMPLES_TITLE,)))

    write_pages(manifest)
    return summary, lambda: write_pages(rundir.read_manifest(run_dir))


# --- labels (the shared ones are present.labels') -----------------------------------------


def cell_text(group: GroupSummary | None) -> str:
    """'112K req/s, 0.90ms' (means over the repetitions; latency = wrk's mean latency)."""
    if group is None:
        return "not measured"
    return f"{fmt.rate(group.mean('requests_per_s'))} req/s, {fmt.micros(group.mean('latency_mean_us'))}"


def marked_conns_text(summary: Summary, conns: int, load: float | None, group: GroupSummary | None,
                      *others) -> str:
    """Conns (and load), marked when a group of the row was loadgen-bound or short of repetitions."""
    groups = [g for g in (group, *others) if g]
    repeat_planned = summary.repeat_planned
    text = conns_text(summary, conns, load)
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
    rows = [[g.arm, conns_text(summary, g.conns, g.load), fmt.size(g.response_size), indexes_text(g.sample_indexes)]
            for g in summary.groups]
    return [f"## {SAMPLES_TITLE}", "",
            f"Every number above is computed from these lines of `{SAMPLES}` (their `cell.index`); "
            f"`{SUMMARY}` lists them for each number too.", "",
            *markdown_table(["Arm", "Conns", "Size", "Samples"], rows), ""]


# --- sections --------------------------------------------------------------------------------


def _zc_arms(summary: Summary) -> list[str]:
    return [a for a in summary.arms if a in arms.zero_copy_arms()]


def _judged_arms(summary: Summary) -> list[str]:
    """The arms judged against a baseline, in report order."""
    return [a for a in summary.arms if summary.comparisons_of(a)]


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
        *_timing_lines(manifest),
        *_independence_lines(summary),
        *primary_lines(summary),
        *_threads_warning(config),
        f"Raw samples: `{SAMPLES}` in this directory (one JSON object per measured cell, "
        f"`cell.index` = its position in the run). `{SUMMARY}` lists, for every number below, the "
        "sample indexes it was computed from.",
        "",
    ]
    return lines


def _timing_lines(manifest: dict) -> list[str]:
    """How much of the bench's time went into measuring (the manifest's timing)."""
    timing = manifest.get("timing") or {}
    if timing.get("measured_share") is None:
        return []
    since = {"command": "the command's start", "run": "the run's start"}.get(timing.get("started"), "its start")
    pilot = f", its rate pilot's {timing['pilot_s']:.0f} s included" if timing.get("pilot_s") else ""
    return [f"**Measured {fmt.percent(timing['measured_share'])} of the wall time**: {timing['measured_s']:.0f} s "
            f"inside the measured windows of {timing['wall_s']:.0f} s from {since} to this report{pilot}.", ""]


def _independence_lines(summary: Summary) -> list[str]:
    """Whether the per-block ratios of the primary metric look independent (analyze.independence)."""
    check = summary.independence
    if check is None or not check.cells:
        return []
    judged = [c for c in check.cells if c.p_autocorrelation_holm is not None]
    if not judged:
        return [f"**Blocks independent?** not checked: too few blocks (the check needs "
                f"{independence.MIN_BLOCKS} per cell).", ""]
    failed = [c for c in judged if c.verdict != independence.INDEPENDENT]
    tests = (f"Ljung–Box over lags 1–{judged[0].lags} and Kendall's trend on the per-block log ratios of "
             f"CPU/request, Holm over {2 * len(judged)} tests")
    if not failed:
        low = min(min(c.p_autocorrelation_holm, c.p_trend_holm) for c in judged)
        return [f"**Blocks independent?** yes ({tests}; lowest adjusted p {fmt.pvalue(low)}).", ""]
    where = "; ".join(f"{c.arm} at {_where(summary, c.conns, c.response_size, c.load)} "
                      f"(autocorrelation p {fmt.pvalue(c.p_autocorrelation_holm)}, "
                      f"trend p {fmt.pvalue(c.p_trend_holm)})" for c in failed)
    return [f"**⚠ Blocks not independent**: {where} ({tests}). The paired test assumes independent "
            "blocks: there its intervals may be too narrow.", ""]


def primary_lines(summary: Summary) -> list[str]:
    """What the run is judged on, declared before any test (analyze.metrics.metric_plan)."""
    plan = summary.plan
    label = metrics.METRICS[plan.primary].label
    judged = _family_size(summary, metrics.PRIMARY)
    lines = [f"**Primary metric: {label}**, one Holm family across the "
             f"{judged} comparison{'s' if judged != 1 else ''} that judge{'' if judged != 1 else 's'} it. "
             "Secondary, in a family "
             "of their own: " + ", ".join(metrics.METRICS[m].label for m in plan.secondary) + "."]
    if plan.checks:
        lines.append("Checked, never a verdict on an arm: " + ", ".join(metrics.METRICS[m].label for m in plan.checks)
                     + " (the assumption behind server CPU per wrk CPU), and whether every block held its "
                       "offered rate (throughput is fixed by the pacing: not tested).")
    return [" ".join(lines), ""]


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




def _zc_note(comparison) -> str:
    """A zero-copy verdict carries how much zero-copy it holds: '26% zero-copy sends: mostly
    regular sends (in-flight cap)'."""
    share = fmt.percent(comparison.zc_send_share)
    return (f"{share} zero-copy sends: {runstats.MOSTLY_REGULAR}" if comparison.mostly_regular
            else f"{share} zero-copy sends")


def glance_line(summary: Summary, arm: str, metric: str) -> str | None:
    """'worse at 4000c (+7.8%, 28 of 30 blocks); no difference at 100c (MDE ±2.9%)'."""
    by_verdict: dict[str, list[str]] = {}
    for comparison in summary.comparisons_of(arm):
        c = comparison.metrics.get(metric)
        if c is None:
            continue
        word = verdict_word(c.verdict)
        where = _where(summary, comparison.conns, comparison.response_size, comparison.load)
        went = blocks_went(c)
        notes = ([f"{fmt.delta(c.delta)}" + (f", in {went[1]} of {went[2]} blocks" if went else "")
                  + (f", MDE {mde_text(c)}" if is_latency(metric) else "")]
                 if word in (stats.BETTER, stats.WORSE)
                 else [f"MDE {mde_text(c)}" + (f"; {went[0]} in {went[1]} of {went[2]} blocks" if went else "")]
                 if word == stats.NO_DIFFERENCE else [])
        if metric == summary.plan.primary and comparison.zc_send_share is not None:
            notes.append(_zc_note(comparison))
        detail = f" ({'; '.join(notes)})" if notes else ""
        by_verdict.setdefault(word, []).append(where + detail)
    if not by_verdict:
        return None
    return "; ".join(f"{word} at {', '.join(by_verdict[word])}" for word in VERDICT_ORDER if word in by_verdict)


def shortfall_text(summary: Summary, comparison) -> str:
    """'zc could not hold 71K req/s in 6 of 30 blocks, regular in 0 (McNemar p 0.031, Holm 0.094):
    worse at holding it'."""
    f = comparison.shortfall
    held = f"{comparison.arm} could not hold {fmt.rate(f.offered_rate)} req/s in {f.arm_short} of {f.blocks} blocks, " \
           f"{comparison.baseline_arm} in {f.baseline_short}"
    verdict = ("no difference" if f.verdict == stats.NO_DIFFERENCE
               else f"{comparison.arm} {'worse' if f.verdict == stats.WORSE else 'better'} at holding it")
    return f"{held} (exact McNemar p {fmt.pvalue(f.p)}, Holm {fmt.pvalue(f.p_adjusted)}): {verdict}"


def held_rate_lines(summary: Summary) -> list[str]:
    """The held-rate check: every block held its rate, or which did not and whether one arm fell
    short more often than the other; and a lower rate where more than a couple fell short."""
    paced = [c for c in summary.comparisons if c.shortfall is not None]
    if not paced:
        return []
    short = [c for c in paced if c.shortfall.verdict != runstats.HELD]
    if not short:
        return [f"- **Held rate** (check): every block held its offered rate, in every cell ({len(paced)} comparisons)."]
    lines = [f"- **Held rate** (check; a verdict of its own, Holm over {len(paced)} cells): "
             + "; ".join(f"{_where(summary, c.conns, c.response_size, c.load)}: {shortfall_text(summary, c)}" for c in short)]
    for c in short:
        if c.shortfall.needs_lower_rate:
            lines.append(f"- ⚠ **{_where(summary, c.conns, c.response_size, c.load)}: "
                         f"{max(c.shortfall.arm_short, c.shortfall.baseline_short)} blocks fell short** of "
                         f"{fmt.rate(c.shortfall.offered_rate)} req/s: this host does not hold that rate there. "
                         f"Rerun that cell lower, e.g. `--rate {c.shortfall.suggested_rate}` (90% of the lowest "
                         "rate a short block reached); a `--from` rerun of a `--rate auto` run takes it.")
    return lines


def normaliser_lines(summary: Summary) -> list[str]:
    """The assumption check of server CPU per wrk CPU: did the arm move wrk's own CPU per request?"""
    checked = [c for c in summary.comparisons if "loadgen_cpu_us_per_request" in c.metrics]
    if not checked:
        return []
    moved = [c for c in checked if c.normaliser_moved]
    if not moved:
        measured = [c for c in checked if c.metrics["loadgen_cpu_us_per_request"].delta is not None]
        largest = max(measured, key=lambda c: abs(c.metrics["loadgen_cpu_us_per_request"].delta), default=None)
        detail = (f" (the largest change: {largest.arm} at {_where(summary, largest.conns, largest.response_size, largest.load)} "
                  f"{fmt.delta(largest.metrics['loadgen_cpu_us_per_request'].delta)}, within its noise)"
                  if largest else "")
        return [f"- **wrk CPU per request** (check behind server CPU per wrk CPU): no arm moved it{detail}."]
    return ["- ⚠ **Server CPU per wrk CPU is demoted** where the arm moved wrk's own CPU per request, "
            "which that ratio assumes it leaves alone: "
            + "; ".join(f"{c.arm} at {_where(summary, c.conns, c.response_size, c.load)} "
                        f"{fmt.delta(c.metrics['loadgen_cpu_us_per_request'].delta)} "
                        f"[{fmt.interval(c.metrics['loadgen_cpu_us_per_request'].ci)}]" for c in moved)
            + ". Read server CPU per request there."]


def glance_lines(summary: Summary, manifest: dict | None = None) -> list[str]:
    """Per arm: the primary metric's verdicts first, then the secondary ones; then the checks
    and the flags that matter."""
    lines = ["## At a glance", ""]
    bound = [g for g in summary.groups if g.loadgen_bound_reps]
    plan = summary.plan
    paced = [g for g in summary.groups if g.offered_rate]
    if paced:
        lines.append(f"- **At equal offered load** ({_rates_text(paced)}): every arm of a cell was offered "
                     "the same request rate, so CPU per request and latency compare the arms' cost.")
    elif bound:  # throughput measured wrk there: the server's own cost is what to read
        lines.append(f"- **Read CPU per request first**: wrk was the bottleneck in {len(bound)} of "
                     f"{len(summary.groups)} cells, so throughput there is wrk's. To make the server "
                     "the bottleneck: give wrk more CPUs (`--loadgen-cpus`), or run the loadgen on a "
                     "second host; or compare at equal load with `--rate auto`.")
    for arm in _judged_arms(summary):
        base = summary.comparisons_of(arm)[0].baseline_arm
        for metric in (plan.primary, *plan.secondary):
            text = glance_line(summary, arm, metric)
            if text:
                role = "primary" if metric == plan.primary else "secondary"
                demoted = (" — demoted, see the check below"
                           if metric == "cpu_per_loadgen_cpu" and any(c.normaliser_moved for c in summary.comparisons_of(arm))
                           else "")
                lines.append(f"- **{arm} vs {base}, {metrics.METRICS[metric].label}** ({role}): {text}{demoted}")
    lines += held_rate_lines(summary)
    lines += normaliser_lines(summary)
    copied = [g for g in summary.groups if g.copied_share is not None]
    if copied:
        low, high = min(g.copied_share for g in copied), max(g.copied_share for g in copied)
        span = fmt.percent(low) if low == high else f"{fmt.percent(low)}–{fmt.percent(high)}"
        note = " (the kernel copied every one: no zero-copy happened on this path)" if low >= 1 else ""
        lines.append(f"- **Copied share** of ZC sends: {span}{note}")
    if bound:
        cells = ", ".join(f"{g.arm} at {_where(summary, g.conns, g.response_size, g.load)}" for g in bound)
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
    """The study's table for one zc arm against regular (a Size column when several sizes). At
    equal offered load throughput is fixed by the pacing: the table shows whether every block
    held it, and the primary metric's delta, instead of a throughput delta."""
    several = len(summary.response_sizes) > 1
    paced = summary.plan.paced
    header = (["Size"] if several else []) + ["Conns", "Regular Send", arms.title(arm),
                                              "Held rate (blocks)" if paced else "Throughput Delta",
                                              "CPU/request Delta" if paced else "Latency Delta"]
    if paced:
        header.append("Latency Delta")
    rows = []
    for conns, size, load in summary.cells():
        base = summary.group(arms.BASELINE, conns, size, load)
        group = summary.group(arm, conns, size, load)
        if base is None and group is None:
            continue
        comparison = summary.comparison(arm, conns, size, load)
        metrics_ = comparison.metrics if comparison else {}
        row = ([fmt.size(size)] if several else []) + [marked_conns_text(summary, conns, load, group, base),
                                                       cell_text(base), cell_text(group)]
        if paced:
            f = comparison.shortfall if comparison else None
            row += [f"{f.blocks - f.arm_short}/{f.blocks} vs {f.blocks - f.baseline_short}/{f.blocks}" if f
                    else fmt.MISSING, delta_label(metrics_.get(summary.plan.primary))]
        else:
            row.append(delta_label(metrics_.get("requests_per_s")))
        row.append(delta_label(metrics_.get("latency_mean_us")))
        rows.append(row)
    title = f"## {arm} vs regular" + ("" if several else f" — {fmt.size(summary.response_sizes[0])} responses")
    paced_note = ("Every arm of a cell was offered the same rate: the held-rate column says in how many "
                  "blocks each arm (this arm vs regular) got it. " if paced else "")
    return [title, "",
            "Means over the repetitions; latency is wrk's mean latency. " + paced_note
            + "Each delta is the arm against regular paired by repetition (geometric mean of the "
            "per-repetition ratios), **bold** when significant after Holm's adjustment within its family; "
            "otherwise \"no difference\" with the smallest change this run could have seen (MDE). "
            f"{LOADGEN_MARK} = loadgen-bound.", "",
            *markdown_table(header, rows), ""]


def equal_load_lines(summary: Summary) -> list[str]:
    """--rate: per cell and arm, the rate offered and achieved and the blocks that fell short,
    then the primary metric (with its all-blocks estimate), server CPU per wrk CPU and its
    assumption check, and p99."""
    groups = [g for g in summary.groups if g.offered_rate]
    if not groups:
        return []
    rows = []
    for group in groups:
        comparison = summary.comparison(*group.key.where)
        metrics_ = comparison.metrics if comparison else {}
        is_base = comparison is None
        short = group.rate_unsustained_reps
        all_blocks = comparison.all_blocks.get("cpu_us_per_request") if comparison else None
        rows.append([
            group.arm, conns_text(summary, group.conns, group.load), fmt.size(group.response_size),
            fmt.rate(group.offered_rate),
            fmt.rate(group.achieved_rate) + (f" ⚠ {short}/{group.reps} short" if short else ""),
            fmt.number(group.mean("cpu_us_per_request")),
            "baseline" if is_base else delta_label(metrics_.get("cpu_us_per_request")),
            "" if is_base or all_blocks is None else fmt.delta(all_blocks.delta),
            fmt.number(group.mean("cpu_per_loadgen_cpu"), 3),
            "baseline" if is_base else delta_label(metrics_.get("cpu_per_loadgen_cpu")),
            "" if is_base else delta_label(metrics_.get("loadgen_cpu_us_per_request")),
            fmt.micros(group.mean("latency_p99_us")),
            "baseline" if is_base else delta_label(metrics_.get("latency_p99_us")),
            "" if is_base or comparison.zc_send_share is None else _zc_note(comparison),
        ])
    return ["## At equal offered load", "",
            "wrk paced every arm of a cell to the same request rate (`loadgen/paced.lua`). Achieved = "
            "mean of the repetitions, each over its paced window (from wrk's first paced request, once "
            f"its connections were open, until it stopped); ⚠ counts repetitions below "
            f"{fmt.percent(RATE_SUSTAINED_SHARE)} of the offered rate. The CPU metrics compare the blocks "
            "in which both arms held the rate (equal load is their premise); \"all blocks\" is the same "
            "estimate with the short ones, for comparison. Latency compares every block. Deltas are paired "
            "by block, Holm-adjusted within their family (CPU per request: primary; the rest: secondary; "
            "wrk CPU per request: a check). CPU ÷ wrk = the server's CPU time over wrk's in the same "
            "window: it cancels a shared machine's momentary speed, if the arm leaves wrk's cost alone, "
            "which the check column tests.", "",
            *markdown_table(["Arm", "Conns", "Size", "Offered", "Achieved", "CPU µs/req (primary)", "Delta",
                             "Delta, all blocks", "CPU ÷ wrk", "Delta", "wrk CPU/req (check)", "p99", "p99 Delta",
                             "Zero-copy"],
                            rows), ""]


def statistics_lines(summary: Summary) -> list[str]:
    """Every test of the run, one row per comparison and metric, with its family."""
    rows = []
    for comparison in summary.comparisons:
        for name, c in comparison.metrics.items():
            rows.append([
                comparison.arm, conns_text(summary, comparison.conns, comparison.load),
                fmt.size(comparison.response_size), metrics.METRICS[name].label, c.family, str(c.n_pairs),
                ratio_label(c.ratio, c.ci), f"{fmt.pvalue(c.p)} / {fmt.pvalue(c.p_adjusted)}",
                mde_text(c), f"{c.blocks_higher} / {c.blocks_lower}", verdict_word(c.verdict),
            ])
        if comparison.shortfall is not None:
            f = comparison.shortfall
            rows.append([comparison.arm, conns_text(summary, comparison.conns, comparison.load),
                         fmt.size(comparison.response_size), "blocks short of the rate", f.family, str(f.blocks),
                         f"{f.arm_short} vs {f.baseline_short}", f"{fmt.pvalue(f.p)} / {fmt.pvalue(f.p_adjusted)}",
                         fmt.MISSING, f"{f.only_arm} / {f.only_baseline} alone", f.verdict])
    return ["## Statistics per comparison", "",
            "One row per arm, cell and metric. Ratio = geometric mean of arm / baseline per block; CI at "
            "the level Holm's adjustment tested it within the family (it excludes 1 exactly when the "
            "verdict is significant). p = paired t-test on the log ratios; p Holm = adjusted within the "
            "family. MDE = smallest change detectable with 80% power at alpha / family size. Blocks = "
            "blocks in which the arm was above / below its baseline. The shortfall row: blocks in which "
            "each arm fell short of the rate (arm vs baseline), and those in which only one did, tested "
            f"by an exact McNemar test. `{SUMMARY}` has the sample indexes of every row.", "",
            *markdown_table(["Arm", "Conns", "Size", "Metric", "Family", "Blocks", "Ratio [CI]", "p / p Holm",
                             "MDE", "Blocks above / below", "Verdict"], rows), ""]


def counters_lines(summary: Summary) -> list[str]:
    header = ["Arm", "Conns", "Size", "ZC share of sends", "Copied share", "ENOMEM / ENOBUFS",
              memlock.FALLBACK_HEADER, "In-flight peak", "wrk CPU (bound reps)", "wrk errors (non-2xx)",
              "Server responses / wrk requests"]
    rows = []
    for group in summary.groups:
        counters = group.counters or {}
        bound = group.loadgen_bound_reps
        rows.append([
            group.arm, conns_text(summary, group.conns, group.load), fmt.size(group.response_size),
            fmt.percent(group.zc_send_share, 1), fmt.percent(group.copied_share, 1),
            f"{fmt.count(counters.get('zc_enomem'))} / {fmt.count(counters.get('zc_enobufs'))}"
            if counters else fmt.MISSING,
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
            "kernel flagged copied: IORING_NOTIF_USAGE_ZC_COPIED, or SO_EE_CODE_ZEROCOPY_COPIED for "
            "MSG_ZEROCOPY). Fallbacks are regular sends issued at the in-flight cap, at the memlock page "
            "budget, at the MSG_ZEROCOPY optmem budget, or to resend after -ENOMEM / -ENOBUFS. wrk CPU = highest share of wrk's cores busy in a "
            "repetition. The server may count up to one response per connection more than wrk "
            "(in flight when wrk stopped) plus wrk's errors; ⚠ marks responses beyond that, or missing.", "",
            *markdown_table(header, rows), ""]


def nginx_lines(summary: Summary) -> list[str]:
    rows = []
    for conns, size, load in summary.cells():
        group = summary.group("nginx", conns, size, load)
        if group is None:
            continue
        base = summary.group("regular", conns, size, load)
        comparison = summary.comparison("nginx", conns, size, load)
        throughput = comparison.metrics["requests_per_s"] if comparison else None
        rows.append([conns_text(summary, conns, load), fmt.size(size), cell_text(group), cell_text(base),
                     ratio_label(throughput.ratio, throughput.ci) if throughput else fmt.MISSING,
                     delta_label(throughput)])
    if not rows:
        return []
    return ["## nginx reference", "",
            "nginx from Debian answering the same response bytes, measured interleaved with the "
            "zcbench arms.", "",
            *markdown_table(["Conns", "Size", "nginx", "zcbench regular", "nginx / regular [95% CI]",
                     "Throughput Delta"], rows), ""]


PAGE_CACHE = "n/a: page cache (no user pages)"
NO_ZC_SENDS = "n/a: no zero-copy send (all regular)"


def copy_cell(group: GroupSummary | None) -> str:
    """A path's copied share at one size: the share the kernel copied, or why none applies."""
    if group is None:
        return fmt.MISSING
    if arms.known(group.arm) and not arms.get(group.arm).copied_share_applies:
        return PAGE_CACHE
    if group.copied_share is not None:
        return fmt.percent(group.copied_share, 1)
    # the adaptive path below --zc-min-bytes (or a zero-copy path always at its cap) sent nothing
    # zero-copy: there was nothing for the kernel to copy or not
    if group.counters and not group.counters.get("sends_zc"):
        return NO_ZC_SENDS
    return "unknown (no notification)"


def copy_lines(summary: Summary, manifest: dict) -> list[str]:
    """Which zero-copy path avoided the copy on this host: each path's copied share per size, the
    share of its sends that went zero-copy, and its primary verdict; the modes this kernel lacks."""
    paths = _zc_arms(summary)
    skipped = ((manifest.get("config") or {}).get("extra") or {}).get("modes_skipped") or {}
    if not paths and not skipped:
        return []
    rows = []
    for arm in paths:
        for conns, size, load in summary.cells():
            group = summary.group(arm, conns, size, load)
            comparison = summary.comparison(arm, conns, size, load)
            if group is not None:
                primary = comparison.metrics.get(summary.plan.primary) if comparison else None
                rows.append([arms.title(arm), fmt.size(size), conns_text(summary, conns, load), copy_cell(group),
                             fmt.percent(group.zc_send_share, 1) if arms.get(arm).user_pages else
                             f"{fmt.count((group.counters or {}).get('splices'))} splices",
                             delta_label(primary)])
    lines = ["## Which path avoided the copy on this host", "",
             "Copied share: of a path's zero-copy sends, those the kernel copied after all (a send to a "
             "socket of this machine is always copied: loopback, veth, a bridge). A splice of the page "
             "cache carries no user pages, so there is nothing to copy and the share does not apply; "
             "its cost is the CPU column (io_uring runs each splice in a kernel worker). nginx answers "
             "bodies over 4000 B from a file with sendfile, the splice path's natural peer "
             "(`--server both`).", ""]
    if rows:
        lines += [*markdown_table(["Path", "Size", "Conns", "Copied share", "Sent zero-copy",
                                   f"{metrics.METRICS[summary.plan.primary].label} vs regular"], rows), ""]
    lines += [f"- Not run on this host: **{mode}**: {why}" for mode, why in skipped.items()]
    return lines + ([""] if skipped else [])


def sweep_lines(summary: Summary) -> list[str]:
    section = summary.sweep
    if not section:
        return []
    judged = metrics.METRICS[crossover_metric(summary)].label
    lines = ["## Response-size sweep", "", "### Crossover", "",
             f"The smallest response size at which the arm's {judged} is significantly better than "
             f"regular (Holm-adjusted), where its own copied share is below {fmt.percent(COPIED_LIMIT)}, "
             "where wrk was not the bottleneck, and from which every larger size is non-inferior: its "
             f"ratio's one-sided 95% bound within {fmt.percent(NONINFERIORITY_MARGIN, 0)} of 1 (no significant "
             "\"worse\" is not enough). At equal offered load throughput is fixed, so the crossover is "
             "judged on server CPU per request.", ""]
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
                  *markdown_table(["Size", "Arm", "req/s", "Gbit/s", f"{judged} ratio [CI]", "Verdict",
                           "CPU µs/req", "CPU µs/KiB", "p99", "Copied"], rows), ""]
    return lines


def plot_lines(summary: Summary) -> list[str]:
    if not summary.plots:
        return []
    lines = ["## Plots", ""]
    for path in summary.plots:
        lines += [f"![{Path(path).stem}]({path})", ""]
    return lines


def _family_size(summary: Summary, family: str) -> int:
    return sum(m.p is not None for c in summary.comparisons for m in c.metrics.values() if m.family == family)


def method_lines(summary: Summary) -> list[str]:
    return [
        "## Method", "",
        "- A repetition is a block holding every arm of every cell. Inside a block the arms of a cell run "
        "back to back, in the order of a Williams design (each arm in each position equally often over the "
        "blocks; the manifest's `plan` says whether this run's number of blocks balances it exactly); the "
        "cells take their turns in a random order (seed above), so drift hits every arm alike.",
        "- An arm is compared with its baseline on the per-block log ratios (paired t-test, two-sided). "
        "The ratio shown is their geometric mean.",
        f"- What the run is judged on is declared before any test: the primary metric is one Holm family "
        f"({_family_size(summary, metrics.PRIMARY)} comparisons), the secondary metrics another "
        f"({_family_size(summary, metrics.SECONDARY)}), the checks a third; each keeps its family-wise "
        f"error below {stats.ALPHA}. At equal offered load throughput is fixed by the pacing and is not "
        "tested; whether each arm held the rate is (an exact McNemar test per cell on the blocks where "
        "only one arm fell short, a family of its own).",
        "- CPU metrics compare the blocks in which both arms held the rate, with the all-blocks estimate "
        "beside them; latency never leaves a block out.",
        "- Each ratio's interval is taken at the level its adjusted test used, so a verdict is "
        "significant exactly when the interval excludes 1.0; `summary.json` also keeps the unadjusted 95% interval "
        "and Welch's test on the unpaired logs.",
        f"- \"No difference\" comes with the minimum detectable effect: the smallest change this run "
        f"would have found with {stats.POWER:.0%} power, from its spread and number of blocks, at "
        f"{stats.ALPHA} / family size.",
        "- Calibrate the host first (`invoke calibrate`): an A/A must say no difference, and a ladder of "
        "known injected CPU costs must be found where the run could see them, each interval covering the "
        "cost the server measured.",
        f"- {LOADGEN_MARK} loadgen-bound: wrk's cores were at least "
        f"{fmt.percent(LOADGEN_BOUND_SHARE)} busy in a repetition; that cell measured wrk, not the server.",
        "- Re-render from the stored samples with `invoke report -r <this directory>`; compare two runs "
        "with `invoke compare RUN_A RUN_B` (agree / differ / inconclusive per ratio, by equivalence tests).",
        "",
    ]


def render_markdown(summary: Summary, manifest: dict) -> str:
    lines = headline_lines(summary, manifest)
    if not summary.groups:
        lines += ["No sample was recorded.", ""]
    else:
        lines += glance_lines(summary, manifest)
        lines += equal_load_lines(summary)
        lines += latency_load_lines(summary)
        for arm in _zc_arms(summary):
            lines += study_table_lines(summary, arm)
        lines += copy_lines(summary, manifest)
        lines += sweep_lines(summary)
        lines += nginx_lines(summary)
        lines += statistics_lines(summary)
        lines += counters_lines(summary)
        lines += plot_lines(summary)
        lines += samples_lines(summary)
    lines += environment_lines(manifest)
    lines += method_lines(summary)
    return "\n".join(lines)
