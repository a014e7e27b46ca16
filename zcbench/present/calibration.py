"""calibration.md: `invoke calibrate`'s verdicts in a table (analyze.calibration judges them)."""

from __future__ import annotations

from pathlib import Path

from zcbench.analyze import metrics, stats
from zcbench.analyze.calibration import METRIC, MIN_PILOT_EFFECT
from zcbench.core import fmt


def _label(result: dict) -> str:
    return metrics.METRICS[result.get("metric", METRIC)].label


def render_markdown(result: dict, run_dir: Path) -> str:
    verdict = "PASSED" if result["passed"] else "FAILED"
    lines = [
        f"# zcbench calibration: {verdict}", "",
        f"Run `{run_dir.name}` ({result['blocks']} blocks; Holm over {result['family_size']} comparisons). "
        "Every number comes from `samples.jsonl` here; `report.md` has the full tables.", "",
        "| Check | Expected | Measured | Verdict |", "|---|---|---|---|",
        f"| A/A: regular vs regular, every metric | no difference | {_label(result)} "
        f"{fmt.delta(result['aa_cpu_effect'])} (MDE ±{fmt.percent(result['aa_mde'], 1)}) | "
        f"{result['aa_verdict']} |",
        f"| A/A′: regular + injected work, {_label(result)} | worse, "
        f"{fmt.delta(result['expected_effect'])} | {fmt.delta(result['injected_effect'])} "
        f"[{fmt.interval(result['injected_ci'])}], p Holm {fmt.pvalue(result['injected_p_adjusted'])} "
        f"(MDE ±{fmt.percent(result['mde'], 1)}) | {result['injected_verdict']} |",
        "",
        f"Injected work: {result['sizing']['work']} loop iterations per response, sized by a pilot in "
        f"the same conditions ({result['sizing']['pilot_blocks']} blocks of regular against "
        f"{result['sizing']['pilot_work']} iterations: {_label(result['sizing'])} ×"
        f"{fmt.number(result['sizing']['pilot_ratio'], 3)}, about "
        f"{fmt.number((result['sizing']['cpu_us_per_iteration'] or 0) * 1000, 3)} ns per iteration on "
        f"{fmt.number(result['sizing']['plain_cpu_us_per_request'])} µs CPU per plain request).",
        "",
    ]
    pilots = result["sizing"].get("pilots", [])
    if len(pilots) > 1:
        tried = ", ".join(f"{p['work']} iterations "
                          + (f"×{fmt.number(p['ratio'], 3)}" if p["ratio"] is not None else "(fell short)")
                          for p in pilots)
        lines += [f"Pilots tried, the work doubled while its effect stayed below "
                  f"{fmt.percent(MIN_PILOT_EFFECT, 0)}: {tried}.", ""]
    if not result["passed"]:
        lines += ["With this plan on this host, a change of this size can pass unseen: "
                  "quiet the machine (`invoke doctor`), isolate CPUs (`invoke provision`), or use more "
                  "blocks (`--repeat`).", ""]
    failed = {k: v for k, v in result["aa_verdicts"].items() if v != stats.NO_DIFFERENCE}
    if failed:
        lines += ["A/A false alarms: " + ", ".join(f"{k} ({v})" for k, v in failed.items()), ""]
    return "\n".join(lines)
