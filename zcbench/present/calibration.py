"""calibration.md: `invoke calibrate`'s verdicts in tables (analyze.calibration judges them)."""

from __future__ import annotations

from pathlib import Path

from zcbench.analyze import metrics, stats
from zcbench.analyze.calibration import METRIC
from zcbench.core import fmt
from zcbench.core.fmt import markdown_table
from zcbench.core.samples import load_text


def _where(entry: dict) -> str:
    return f"{entry['conns']}c"


def _estimate(entry: dict) -> str:
    if entry["estimate"] is None:
        return fmt.MISSING
    ci = f" [{fmt.interval(entry['ci'])}]" if entry.get("ci") else ""
    return f"{fmt.delta(entry['estimate'])}{ci}"


def aa_rows(result: dict) -> list[list[str]]:
    return [[_where(a), _estimate(a), fmt.pvalue(a["p_adjusted"]), fmt.mde(a["mde"]),
             ", ".join(f"{metrics.METRICS[name].label}: {verdict}" for name, verdict in a["verdicts"].items()),
             "pass" if a["passed"] else f"**FAIL: {a['reason']}**"] for a in result["aa"]]


def dose_rows(result: dict) -> list[list[str]]:
    return [[_where(d), fmt.delta(d["aimed"]), fmt.delta(d["true_effect"]), _estimate(d),
             fmt.pvalue(d["p_adjusted"]), fmt.mde(d["mde"]), d["verdict"],
             f"pass ({d['reason']})" if d["passed"] else f"**FAIL: {d['reason']}**"] for d in result["doses"]]


def repeated_lines(repeated: dict | None) -> list[str]:
    if not repeated:
        return []
    fp_ci = repeated["false_positive_ci"]
    lines = [f"## {repeated['runs']} runs together", "",
             f"- A/A false positives: {repeated['false_positives']} of {repeated['aa_tested']} "
             f"({fmt.percent(repeated['false_positive_rate'], 1)}, 95% CI {fmt.percent(fp_ci[0], 1)}–"
             f"{fmt.percent(fp_ci[1], 1)}); the family-wise target is {fmt.percent(stats.ALPHA, 0)} or less.",
             f"- A/A p-values against uniform (Kolmogorov–Smirnov): p {fmt.pvalue(repeated['aa_uniformity_p'])}.",
             f"- Runs passed: {repeated['passed_runs']} of {repeated['runs']}.", ""]
    rows = [[fmt.delta(p["aimed"]), fmt.delta(p["true_effect_median"]), f"{p['found']} of {p['tried']}",
             f"{fmt.percent(p['power'], 0)} [{fmt.percent(p['ci'][0], 0)}–{fmt.percent(p['ci'][1], 0)}]",
             f"{p['covered']} of {p['tried']}"] for p in repeated["power"]]
    return lines + markdown_table(["Dose aimed", "True effect (median)", "Found", "Power [95% CI]",
                                   "Interval covered the truth"], rows) + [""]


def latency_rows(check: dict) -> list[list[str]]:
    rows = []
    for cell in check["cells"]:
        load = load_text(cell["load"]) if cell["load"] is not None else fmt.MISSING
        row = [f"{cell['conns']}c", load, fmt.rate(cell["offered_rate"]), fmt.percent(cell["utilisation"])]
        for name in check["checked"]:
            ci = cell.get(f"measured_{name}_ci_ms")
            span = f" [{fmt.number(ci[0])}–{fmt.number(ci[1])}]" if ci else ""
            row += [fmt.number(cell[f"expected_{name}_ms"]), f"{fmt.number(cell[f'measured_{name}_ms'])}{span}",
                    fmt.delta(cell[f"ratio_{name}"] - 1) if cell[f"ratio_{name}"] is not None else fmt.MISSING]
        row.append(fmt.percent(cell.get("loadgen_busy")))
        row.append("pass" if cell["passed"] else
                   "untrusted: wrk's own queue" if cell.get("status") == "generator-bound" else
                   "**FAIL: do not trust latency here**")
        rows.append(row)
    return rows


def latency_lines(check: dict | None) -> list[str]:
    """The latency check: the stalling server's tail against the tail its schedule must give."""
    if not check:
        return []
    header = ["Conns", "Load", "Offered req/s", "Server busy"]
    for name in check["checked"]:
        header += [f"{name} expected (ms)", f"{name} measured (ms) [95% CI]", "off by"]
    header.append("wrk busy")
    lines = ["## Latency: a server that stalls on a known schedule", "",
             f"The stalling server stops answering for {check['stall_ms']} ms every {check['period_ms']} ms; "
             "a request arriving in a stall waits for its end and for the backlog before it, so the tail "
             "it must add follows from the schedule and the server's measured busy share "
             "(analyze.latency.expected_quantile), plus the plain server's median latency in the same cell. "
             f"A cell passes when p99 and p99.9 (pooled over the blocks) are within ±{fmt.percent(check['tolerance'])} "
             f"of that. A miss where wrk was {fmt.percent(check.get('loadgen_headroom_share', 0.85))} busy or more is "
             "wrk's own queue (after each stall the backlog's responses arrive in a burst and a generator "
             "without headroom reads the last of them late): those latencies are untrusted, a limit of the "
             "host, not of the method; any other miss fails the check. "
             f"Run: `{check.get('run_dir', '')}`.", "",
             *markdown_table(header + ["Check"], latency_rows(check)), ""]
    if check["untrusted"]:
        lines += ["The load generator's latency missed the known tail at "
                  + ", ".join(f"{u['conns']} connections" + (f", {load_text(u['load'])} load" if u["load"] else "")
                              + (" (wrk near its limit)" if u.get("why") == "generator-bound" else "")
                              for u in check["untrusted"])
                  + ": do not trust latency numbers measured there (tail percentiles, latency verdicts) on this "
                  "host. The bench's report marks latencies measured with wrk that busy (‡); more CPU for wrk "
                  "(`--loadgen-cpus`, or wrk on a second host: docs/two-hosts.md) gives it the headroom.", ""]
    return lines


def cpu_lines(result: dict, run_dir: Path) -> list[str]:
    sizing = result["sizing"]
    label = metrics.METRICS[result.get("metric", METRIC)].label
    lines = [
        f"Run `{run_dir.name}`: {result['blocks']} blocks; judged on {label} (the bench's primary metric), "
        f"Holm over the {result['family_size']} primary comparisons. Every number comes from `samples.jsonl` "
        "here; `report.md` has the full tables.", "",
        "It passes when the A/A says no difference, every dose's interval covers that dose's true effect "
        "(the loop's own measured time per request over the baseline's CPU per request, block by block), "
        "and every dose at or above the run's MDE is found.", "",
        "## A/A: regular against regular", "",
        *markdown_table(["Conns", f"{label} [CI]", "p Holm", "MDE", "Every metric", "Check"], aa_rows(result)), "",
        "## Dose ladder: regular plus a known CPU cost", "",
        *markdown_table(["Conns", "Aimed", "True (measured)", "Estimate [CI at the Holm level]", "p Holm", "MDE",
                         "Verdict", "Check"], dose_rows(result)), "",
        f"Sized by a pilot in the same conditions ({sizing['sized_by']}): one loop iteration adds "
        f"{fmt.number((sizing['cpu_us_per_iteration'] or 0) * 1000, 3)} ns to "
        f"{fmt.number(sizing['plain_cpu_us_per_request'])} µs of CPU per plain request; doses "
        + ", ".join(f"{fmt.delta(d['aimed'])} = {d['work']} iterations" for d in sizing["doses"]) + ".", "",
    ]
    lines += repeated_lines(result.get("repeated"))
    if not result.get("cpu_passed", result["passed"]):
        lines += ["With this plan on this host, a change of this size can pass unseen or be seen where "
                  "there is none: quiet the machine (`invoke doctor`), isolate CPUs (`invoke provision`), or "
                  "use more blocks (`--repeat`).", ""]
    return lines


def render_markdown(result: dict, run_dir: Path) -> str:
    verdict = "PASSED" if result["passed"] else "FAILED"
    lines = [f"# zcbench calibration: {verdict}", ""]
    if "aa" in result:
        lines += cpu_lines(result, run_dir)
    lines += latency_lines(result.get("latency"))
    return "\n".join(lines)
