"""The plots (present.plots and its plot_* modules) and the labels they share with the reports:
what each plot holds, that no line joins cells run at different offered rates, log axes where
values span more than a decade, a title and a legend on every one, and the block tallies."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from sample_factory import make_sample

from zcbench.analyze import latency, metrics, runstats, stats
from zcbench.analyze import summary as summary_mod
from zcbench.core import rundir
from zcbench.present import labels, plot_axes, plot_blocks, plot_forest, plot_latency, plot_sweep, plots, report

RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"


def fixture_run(name: str):
    manifest = json.loads((RUNS / name / rundir.MANIFEST).read_text())
    samples = rundir.load_samples(RUNS / name)
    return summary_mod.build_summary(manifest, samples), samples


@pytest.fixture(scope="module")
def runs():
    return {name: fixture_run(name) for name in ("study-loopback", "paced", "sweep-win", "sweep-copied")}


# --- axes ------------------------------------------------------------------------------------


def test_ratio_axis_keeps_one_and_cuts_runaway_intervals():
    tight = [SimpleNamespace(ratio=1.2, ci=[1.1, 1.3])]
    low, high, clipped = plot_axes.ratio_limits(tight)
    assert low < 1.0 and 1.3 < high < 1.4 and not clipped
    wild = [SimpleNamespace(ratio=0.76, ci=[0.001, 480.0])]
    low, high, clipped = plot_axes.ratio_limits(wild)
    assert clipped and low > 0.3 and high < 2.5


@pytest.mark.parametrize("low, high", [(0.85, 1.2), (0.5, 1.9), (0.2, 5.0)])
def test_ratio_ticks_hold_one_and_keep_their_labels_apart(low, high):
    ticks = plot_axes.ratio_ticks(low, high)
    assert 1.0 in ticks and all(low <= t <= high for t in ticks) and len(ticks) >= 3
    gaps = [math.log(b / a) for a, b in zip(ticks, ticks[1:])]
    assert min(gaps) >= math.log(high / low) * plot_axes.RATIO_TICK_GAP


def test_a_value_axis_turns_logarithmic_past_a_decade():
    fig = plot_axes.new_figure(4, 3)
    narrow, wide = fig.subplots(1, 2)
    plot_axes.value_axis(narrow, [2.0, 9.0])
    plot_axes.value_axis(wide, [2.0, 22_000.0])
    assert narrow.get_yscale() == "linear" and narrow.get_ylim()[0] == 0
    assert wide.get_yscale() == "log"


def test_svg_for_a_page_has_no_prologue_and_its_ids_are_its_own():
    fig = plot_axes.new_figure(3, 2)
    fig.subplots().plot([1, 2], [3, 4])
    svg = plot_axes.to_svg(fig, "one")
    assert svg.startswith("<svg") and "<?xml" not in svg and "DOCTYPE" not in svg
    ids = re.findall(r'\bid="([^"]+)"', svg)
    assert ids and all(i.startswith("one-") for i in ids)
    assert 'url(#one-' in svg or 'href="#one-' in svg  # references follow their ids


# --- which metric leads ----------------------------------------------------------------------


def test_the_primary_metric_leads_and_a_fixed_rate_is_not_shown(runs):
    paced, _ = runs["paced"]
    assert labels.primary_metric(paced) == "cpu_us_per_request"
    shown = labels.shown_metrics(paced)
    assert shown[0] == "cpu_us_per_request" and "requests_per_s" not in shown and "cpu_per_loadgen_cpu" in shown
    bound, _ = runs["study-loopback"]  # wrk saturated at 100 conns: its throughput is wrk's
    assert labels.shown_metrics(bound)[0] == "cpu_us_per_request"
    sweep, _ = runs["sweep-win"]  # unpaced: the primary metric is declared up front all the same
    assert labels.shown_metrics(sweep)[0] == "cpu_us_per_request" and "requests_per_s" in labels.shown_metrics(sweep)


# --- blocks that went each way --------------------------------------------------------------


def test_block_counts_are_the_pairs_each_verdict_was_tested_on(runs):
    summary, samples = runs["study-loopback"]
    by_cell = {(s.cell.arm, s.cell.conns, s.cell.rep): s for s in samples}
    extract = metrics.METRICS["cpu_us_per_request"].extract
    higher = sum(extract(by_cell[("zc", 4000, rep)]) > extract(by_cell[("regular", 4000, rep)]) for rep in range(10))
    comparison = summary.comparison("zc", 4000, 88).metrics["cpu_us_per_request"]
    assert (comparison.blocks_higher, comparison.n_pairs) == (higher, 10)
    assert comparison.verdict == stats.WORSE and labels.blocks_went(comparison) == ("worse", higher, 10)
    assert labels.blocks_phrase(comparison) == f"worse in {higher} of 10 blocks"


def test_a_short_block_is_not_counted_where_its_comparison_left_it_out(tmp_path):
    samples = []
    for rep in range(4):
        for arm, cpu in (("regular", 10.0), ("zc", 11.0 if rep else 9.0)):
            samples.append(make_sample(arm, rep, index=2 * rep + (arm == "zc"), requests=1000, requests_per_s=100.0,
                                       cpu_us_per_request=cpu, server_cpu_s=0.01, offered_rate=100,
                                       achieved_rate=100.0 if rep != 3 else 50.0, rate_sustained=rep != 3))
    summary = runstats.summarize(samples)
    cpu = summary.comparison("zc", 100, 88).metrics["cpu_us_per_request"]
    assert (cpu.blocks_higher, cpu.blocks_lower, cpu.n_pairs) == (2, 1, 3)  # block 3 fell short: not a pair


def test_no_difference_says_which_way_the_blocks_leaned():
    c = SimpleNamespace(verdict=stats.NO_DIFFERENCE, ratio=0.99, higher_is_better=False, n_pairs=10,
                        blocks_better=6, blocks_worse=4)
    assert labels.blocks_went(c) == ("better", 6, 10)
    assert labels.blocks_went(SimpleNamespace(verdict=stats.NO_DIFFERENCE, ratio=1.0, higher_is_better=False,
                                              n_pairs=10, blocks_better=5, blocks_worse=5)) is None


# --- the plots -------------------------------------------------------------------------------


def titled_with_a_legend(fig) -> bool:
    titles = [fig._suptitle.get_text() if fig._suptitle else ""] + [ax.get_title() for ax in fig.axes]
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return any(titles) and bool(legends)


def test_the_forest_has_a_row_per_cell_and_metric_the_primary_first(runs):
    summary, samples = runs["study-loopback"]
    rows = plot_forest.forest_rows(summary)
    headers = [r.label for r in rows if r.comparison is None]
    assert headers == [labels.metric_label(m) for m in labels.shown_metrics(summary)]
    assert len(rows) - len(headers) == len(summary.comparisons) * len(headers)
    assert rows[1].comparison.metric == "cpu_us_per_request"
    banded = [r.comparison for r in rows if r.comparison and plot_forest._mde_band(r.comparison)]
    assert banded and all(c.verdict == stats.NO_DIFFERENCE for c in banded)
    low, high = plot_forest._mde_band(banded[0])
    assert low == pytest.approx(1 / (1 + banded[0].mde)) and high == pytest.approx(1 + banded[0].mde)
    fig = plot_forest.forest_plot(summary)
    assert titled_with_a_legend(fig) and fig.axes[0].get_xscale() == "log"


def test_a_cell_that_did_not_get_its_rate_keeps_its_row_in_words(runs):
    summary, samples = runs["paced"]
    rows = plot_forest.forest_rows(summary)
    # zc held no block at 1000c: its CPU rows have no pair, and say so in words
    short = [r for r in rows if r.comparison and r.comparison.verdict == stats.NO_DATA]
    assert short and all(r.label == "1000c" for r in short)
    assert "no data" in plot_forest._row_text(short[0].comparison)


def test_the_block_plot_has_a_panel_per_cell_and_joins_blocks_only(runs):
    summary, samples = runs["paced"]
    fig = plot_blocks.blocks_plot(summary, samples)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["100c · 60K req/s offered", "1000c · 60K req/s offered"]
    for ax in panels:
        lines = [line for line in ax.get_lines()]
        assert sorted(line.get_label() for line in lines) == ["regular", "zc"]  # one line per arm, per cell
        for line in lines:
            assert list(line.get_xdata()) == list(range(1, 11))  # the blocks of this cell, in run order
    short = [c for c in panels[1].collections if c.get_label() == "fell short of the offered rate"]
    assert short and not [c for c in panels[0].collections if c.get_label() == "fell short of the offered rate"]
    assert "per request" in panels[0].get_ylabel() and titled_with_a_legend(fig)


def test_the_latency_plot_pools_the_percentile_tables_on_a_nines_axis(runs):
    assert plot_latency.nines(90) == pytest.approx(1) and plot_latency.nines(99.9) == pytest.approx(3)
    summary, samples = runs["study-loopback"]
    table = dict(latency.sample_table(samples[0]))
    assert min(table) <= 50 and max(table) == 100  # the whole table; the plot shows p50-p99.99
    headline = make_sample("regular", 0)  # no table: its headline percentiles
    assert [p for p, _ in latency.sample_table(headline)] == [50.0, 75.0, 90.0, 99.0, 99.9, 99.99]
    fig = plot_latency.latency_plot(summary, samples)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and [t.get_text() for t in ax.get_xticklabels()] == [
        "p50", "p90", "p99", "p99.9", "p99.99"]
    pooled = [line for line in ax.get_lines() if line.get_label().endswith("blocks pooled)")]
    assert {line.get_label().split(" ")[0] for line in pooled} == {"regular", "zc", "nginx"}
    # each line is the cell's pooled distribution: at p99 it is summary.json's value
    regular = next(line for line in pooled if line.get_label().startswith("regular"))
    key = next(g.key for g in summary.groups if g.arm == "regular" and g.conns == summary.conns[0])
    at_p99 = list(regular.get_xdata()).index(pytest.approx(plot_latency.nines(99)))
    assert regular.get_ydata()[at_p99] * 1000 == pytest.approx(summary.distribution(key).percentiles[99.0], rel=1e-6)
    assert titled_with_a_legend(fig)


def data_line(ax, label: str):
    """The line through an errorbar series' points (the container holds the label)."""
    [container] = [c for c in ax.containers if c.get_label() == label]
    return container.lines[0]


def test_the_sweep_marks_its_crossovers_and_never_joins_different_offered_rates():
    summary, _ = fixture_run("sweep-win")  # its own: the test changes its rates
    fig = plot_sweep.sweep_ratio_plot(summary)
    ax = fig.axes[0]
    marked = {line.get_label() for line in ax.get_lines() if line.get_label().startswith("crossover")}
    assert marked == {"crossover zc: 16 KiB", "crossover zc-fixed: 4 KiB"} and titled_with_a_legend(fig)
    assert data_line(ax, "zc / regular").get_linewidth() > 0
    for group in summary.groups:  # the same sweep, each size at its own rate
        group.offered_rate = 1000 * (1 + summary.response_sizes.index(group.response_size))
    assert not plot_sweep.same_rate(summary, "zc", 100, summary.response_sizes)
    ax = plot_sweep.sweep_ratio_plot(summary).axes[0]
    assert data_line(ax, "zc / regular").get_linewidth() == 0  # its points alone


def test_render_writes_each_plot_as_png_and_svg_and_removes_dropped_ones(tmp_path):
    run_dir = Path(shutil.copytree(RUNS / "sweep-copied", tmp_path / "run"))
    for old in plots.DROPPED:  # what an earlier zcbench drew there
        (run_dir / rundir.PLOTS).mkdir(exist_ok=True)
        (run_dir / rundir.PLOTS / old).write_bytes(b"old")
    summary = report.render_run(run_dir)
    assert summary.plots == [f"plots/{name}" for name in ("forest.png", "blocks.png", "latency.png", "sweep_ratio.png")]
    assert sorted(p.name for p in (run_dir / rundir.PLOTS).iterdir()) == sorted(Path(p).name for p in summary.plots)
    html = (run_dir / rundir.REPORT_HTML).read_text()
    assert html.count("<svg") == len(summary.plots)
    assert "not measurable on this path" in html  # the copied sweep's note is drawn into its figure


def test_a_summary_that_declares_its_primary_metric_is_followed(runs):
    summary, _ = fixture_run("sweep-win")
    summary.plan = SimpleNamespace(primary="latency_p99_us")  # as a metric plan names it
    assert labels.primary_metric(summary) == "latency_p99_us" == labels.shown_metrics(summary)[0]
