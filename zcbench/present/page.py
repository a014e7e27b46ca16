"""A Markdown report as one self-contained HTML page: report.html beside report.md, compare.html.

    render_page(markdown, figures, lead=(), folded=()) -> str

The page is the Markdown's own text (markdown-it, raw HTML escaped), so it says exactly what the
.md says, number for number. What the page adds is presentation only:

- every image the Markdown names is replaced by its figure as inline SVG (`figures`: image path
  -> <svg> text): the page opens from disk and loads nothing;
- sections (## headings) named in `lead` come first, in that order (the answer, then the plots);
  those in `folded` sit behind a <details> (the lists of sample indexes);
- verdicts are coloured as in the plots (present.labels), every table is sortable by a click on
  its header (a few lines of inline script), wide tables scroll sideways;
- a Content-Security-Policy forbids every request: a stray reference fails loudly in a browser
  instead of silently reaching the network.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re

from markdown_it import MarkdownIt

from zcbench import __version__
from zcbench.analyze import stats
from zcbench.present import labels

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")

SORT_SCRIPT = """\
(function () {
  var UNITS = {K: 1e3, M: 1e6, ms: 1e3, "\\u00b5s": 1, KiB: 1024, MiB: 1048576, B: 1};
  function key(text) {
    var m = text.trim().match(/^([+\\-\\u2212]?[0-9][0-9,]*\\.?[0-9]*)\\s*(KiB|MiB|ms|\\u00b5s|K|M|B)?/);
    if (!m) return null;
    return parseFloat(m[1].replace(/,/g, "").replace("\\u2212", "-")) * (UNITS[m[2]] || 1);
  }
  document.querySelectorAll("table.sortable th").forEach(function (th) {
    th.tabIndex = 0;
    th.title = "sort by this column";
    function sort() {
      var table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].textContent, y = b.cells[col].textContent, kx = key(x), ky = key(y);
        var order = (kx !== null && ky !== null) ? kx - ky : x.localeCompare(y);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
  });
})();
"""

STYLE = """\
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1d; margin: 0 auto;
       max-width: 1280px; padding: 1.2em 2em 3em; }
h1 { font-size: 1.5em; margin-bottom: .3em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.8em; }
code { background: #f3f3f3; padding: 0 .25em; border-radius: 3px; }
blockquote { margin: 1em 0; padding: .5em 1em; background: #fff4e0; border-left: 4px solid #e69f00; }
.table-wrap { overflow-x: auto; margin: .8em 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #d6d6d6; padding: .25em .55em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; position: sticky; top: 0; cursor: pointer; white-space: nowrap; }
th[aria-sort=ascending]::after { content: " \\25B2"; } th[aria-sort=descending]::after { content: " \\25BC"; }
tbody tr:nth-child(even) { background: #fafafa; }
figure.plot { margin: 1em 0 2em; } figure.plot svg { max-width: 100%; height: auto; }
details { margin: 1em 0; } summary { cursor: pointer; font-weight: 600; }
p.missing { color: #a00000; font-weight: 600; }
footer { margin-top: 3em; color: #777; font-size: 12px; }
"""

#: Headings of the sections kept apart from the rest when the page is reordered.
_SECTION = re.compile(r"^## (.+)$")
_IMAGE = re.compile(r'<p><img src="([^"]*)" alt="([^"]*)" /></p>')
_VERDICT = re.compile(r"<strong>([^<]*?\b(" + "|".join((stats.WORSE, stats.BETTER)) + r"))</strong>")
_GLANCE_VERDICT = re.compile(r"(?<![\w-])(" + "|".join(re.escape(w) for w in labels.VERDICT_ORDER) + r") at\b")


def split_sections(markdown: str) -> tuple[str, list[tuple[str, str]]]:
    """(text before the first ## heading, [(heading, the section's text with its heading)])."""
    preamble, sections, fenced = [], [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else _SECTION.match(line)
        if match:
            sections.append((match.group(1).strip(), [line]))
        elif sections:
            sections[-1][1].append(line)
        else:
            preamble.append(line)
    return "\n".join(preamble), [(title, "\n".join(lines)) for title, lines in sections]


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "section"


def _figure(figures: dict[str, str], match: re.Match) -> str:
    src, alt = html.unescape(match.group(1)), match.group(2)
    svg = figures.get(src)
    if svg is None:  # never a reference to a file: the page must load nothing
        return f'<p class="missing">plot not rendered: {html.escape(src)}</p>'
    return f'<figure class="plot" id="plot-{_slug(alt)}">{svg}</figure>'


def markdown_html(text: str, figures: dict[str, str]) -> str:
    """One piece of Markdown as HTML: figures inline, verdicts coloured, tables sortable."""
    body = _MARKDOWN.render(text)
    body = _IMAGE.sub(lambda m: _figure(figures, m), body)
    body = _VERDICT.sub(lambda m: f'<strong class="verdict {m.group(2)}">{m.group(1)}</strong>', body)
    body = body.replace("<table>", '<div class="table-wrap"><table class="sortable">').replace("</table>", "</table></div>")
    return body


def _section_html(title: str, text: str, figures: dict[str, str], folded: bool) -> str:
    body = markdown_html(text, figures)
    if title == "At a glance":  # the verdict words of the glance in their colours
        body = _GLANCE_VERDICT.sub(lambda m: f'<span class="verdict {_slug(m.group(1))}">{m.group(1)}</span> at', body)
    if folded:
        heading, _, rest = body.partition("\n")
        body = f"{heading}\n<details><summary>show</summary>\n{rest}</details>\n"
    return f'<section id="{_slug(title)}">\n{body}</section>\n'


def _verdict_css() -> str:
    colors = {_slug(word): labels.verdict_color(word) for word in labels.VERDICT_ORDER}
    return "".join(f".verdict.{name} {{ color: {color}; }}\n" for name, color in colors.items())


def _title(preamble: str) -> str:
    heading = next((line[2:] for line in preamble.splitlines() if line.startswith("# ")), "zcbench")
    return html.escape(heading.strip())


def render_page(markdown: str, figures: dict[str, str] | None = None, lead: tuple[str, ...] = (),
                folded: tuple[str, ...] = ()) -> str:
    """The whole page: head (policy, style), the Markdown's sections (lead first), the script."""
    figures = figures or {}
    preamble, sections = split_sections(markdown)
    ordered = ([s for name in lead for s in sections if s[0] == name]
               + [s for s in sections if s[0] not in lead])
    # The policy allows exactly this script: its hash covers every byte between the tags.
    script_hash = base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode()).digest()).decode()
    policy = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{script_hash}'; img-src data:"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_title(preamble)}</title>",
        f"<style>\n{STYLE}{_verdict_css()}</style>",
        "</head>",
        "<body>",
        f"<header>\n{markdown_html(preamble, figures)}</header>",
        "<main>",
        *(_section_html(title, text, figures, title in folded) for title, text in ordered),
        "</main>",
        f"<footer>zcbench {html.escape(__version__)}: the same text as the Markdown beside this page, "
        "with its plots inline; sort a table by clicking its header.</footer>",
        f"<script>{SORT_SCRIPT}</script>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)
