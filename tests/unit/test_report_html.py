"""report.html: written beside report.md by the same render, the same numbers, the plots inline,
nothing loaded from anywhere; and in headless Chromium, no console error, no request leaving the
file, every plot drawn (the negative controls show the check can fail)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import headless_chromium

from zcbench.core import rundir
from zcbench.present import page, report

RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"
NAMES = ("study-loopback", "paced", "sweep-win", "incomplete")


@pytest.fixture(scope="module")
def rendered(rendered_runs):
    """{name: (run_dir, summary, report.md text, report.html text)} of fixture runs."""
    result = {}
    for name in NAMES:
        run_dir, summary = rendered_runs[name]
        result[name] = (run_dir, summary, (run_dir / rundir.REPORT).read_text(),
                        (run_dir / rundir.REPORT_HTML).read_text())
    return result


class Tables(HTMLParser):
    """Every table's rows as text, every list item's text, every reference to another resource."""

    def __init__(self):
        super().__init__()
        self.tables, self.items, self.references, self.headings = [], [], [], []
        self._cell = self._item = self._heading = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href", "xlink:href", "action", "data"):
            if attrs.get(name) and not attrs[name].startswith("#"):
                self.references.append(attrs[name])
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "li":
            self._item = []
        elif tag == "h2":
            self._heading = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "li":
            self.items.append(" ".join("".join(self._item).split()))
            self._item = None
        elif tag == "h2":
            self.headings.append("".join(self._heading).strip())
            self._heading = None

    def handle_data(self, data):
        for part in (self._cell, self._item, self._heading):
            if part is not None:
                part.append(data)


def parse(text: str) -> Tables:
    parser = Tables()
    parser.feed(text)
    return parser


def markdown_plain(text: str) -> str:
    return text.replace("**", "").replace("`", "").replace("\\|", "|").strip()


def markdown_tables(text: str) -> list[list[list[str]]]:
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            if current is None:
                current = []
                tables.append(current)
            if not re.fullmatch(r"\|(---\|)+", line):
                cells = re.split(r"(?<!\\)\|", line.strip()[1:-1])
                current.append([markdown_plain(c) for c in cells])
        else:
            current = None
    return tables


@pytest.mark.parametrize("name", NAMES)
def test_the_html_holds_the_same_tables_and_glance_as_the_markdown(rendered, name):
    _, _, markdown, html = rendered[name]
    parsed = parse(html)
    assert sorted(map(str, parsed.tables)) == sorted(map(str, markdown_tables(markdown)))
    glance = markdown[markdown.index("## At a glance"):].split("\n## ")[0] if "## At a glance" in markdown else ""
    for line in (line for line in glance.splitlines() if line.startswith("- ")):
        assert " ".join(markdown_plain(line[2:]).split()) in parsed.items


@pytest.mark.parametrize("name", NAMES)
def test_the_page_is_one_file_plots_inline_nothing_referenced(rendered, name):
    _, summary, _, html = rendered[name]
    parsed = parse(html)
    assert parsed.references == []
    assert html.count('<figure class="plot"') == len(summary.plots) > 0 and "p class=\"missing\"" not in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))  # several SVGs on one page share no id


def test_the_answer_comes_first_and_the_sample_lists_are_folded(rendered):
    _, summary, markdown, html = rendered["study-loopback"]
    headings = parse(html).headings
    assert headings[:2] == ["At a glance", "Plots"] and report.SAMPLES_TITLE in headings
    section = html[html.index('<section id="samples-per-cell">'):]
    assert section.index("<details>") < section.index("<table")
    # the sample indexes left the tables of report.md for their own section
    before, samples_section = markdown.split(f"## {report.SAMPLES_TITLE}")
    assert all("Samples" not in table[0] for table in markdown_tables(before))
    assert markdown_tables(samples_section)[0][0] == ["Arm", "Conns", "Size", "Samples"]
    group = summary.group("zc", 4000, 88)
    assert f"| zc | 4000 | 88 B | {','.join(map(str, group.sample_indexes))} |" in markdown


def test_verdicts_carry_their_colour_class(rendered):
    html = rendered["study-loopback"][3]
    assert '<strong class="verdict worse">' in html  # a significant delta in a table
    assert '<span class="verdict no-difference">no difference</span> at' in html  # the glance


def test_markdown_cannot_inject_markup_into_the_page():
    html = page.render_page("# run <script>alert(1)</script>\n\n## At a glance\n\n- <img src=x onerror=alert(1)>\n")
    assert "<script>alert" not in html and "<img" not in html and "&lt;script&gt;" in html


def test_a_missing_plot_is_said_on_the_page_never_fetched():
    html = page.render_page("# r\n\n## Plots\n\n![forest](plots/forest.png)\n", {})
    assert 'class="missing"' in html and "<img" not in html


# --- in a browser ----------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_report_html_opens_in_headless_chromium_without_an_error_or_a_request(rendered, tmp_path):
    run_dir, summary, _, _ = rendered["paced"]
    seen = headless_chromium.open_page(run_dir / rundir.REPORT_HTML)
    assert seen.problems() == []
    assert seen.title == f"zcbench report: {summary.run_id}" and seen.first_heading == "At a glance"
    assert seen.figures == len(summary.plots) and seen.tables >= 4 and seen.details == 1
    assert seen.sort_click == "ascending"  # the inline script ran under the page's policy
    assert seen.screenshot[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(120)
def test_the_browser_check_catches_errors_requests_and_a_blocked_script(rendered, tmp_path):
    """The negative controls: the same checks on pages that break each rule."""
    broken = tmp_path / "broken.html"
    broken.write_text('<!doctype html><html><head><meta charset="utf-8"><title>b</title></head><body>'
                      '<img src="https://example.invalid/x.png"><script>console.error("boom")</script></body></html>')
    seen = headless_chromium.open_page(broken)
    problems = "\n".join(seen.problems())
    assert "console error: boom" in problems and "request leaving the file: https://example.invalid/x.png" in problems
    assert "image did not load" in problems
    # report.html whose script no longer matches the hash its policy allows: blocked, and said so
    html = (rendered["paced"][0] / rundir.REPORT_HTML).read_text()
    tampered = tmp_path / "tampered.html"
    tampered.write_text(html.replace("var UNITS", "var  UNITS"))
    seen = headless_chromium.open_page(tampered)
    assert any("Content Security Policy" in p for p in seen.problems()) and seen.sort_click == "not sorted"
