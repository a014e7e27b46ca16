"""Output stays readable without a terminal: `invoke doctor | cat` is one Markdown row per
setting (a terminal-width table folded cells into "net.core.som / axconn" lines)."""

import io
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from zcbench.core.paths import ROOT
from zcbench.host import doctor
from zcbench.core import fmt

INVOKE = Path(sys.executable).with_name("invoke")


def table_rows(text: str) -> list[list[str]]:
    """Cells of each Markdown table line ('\\|' inside a cell is not a separator)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.replace("\\|", "\0").strip().strip("|").split("|")]
            rows.append([c.replace("\0", "|") for c in cells])
    return rows


def test_invoke_doctor_piped_is_one_markdown_row_per_setting():
    proc = subprocess.run(f"{INVOKE} doctor | cat", shell=True, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines[0] == f"# {doctor.TITLE}", proc.stdout + proc.stderr
    rows = table_rows(proc.stdout)
    header, rows = rows[0], rows[2:]
    assert header == list(doctor.COLUMNS)
    assert len(rows) >= 10 and all(len(row) == len(header) for row in rows)
    # every line is a heading, a table row or the verdict: nothing folded onto a line of its own
    assert all(line.startswith(("#", "|", "doctor: ")) for line in lines), proc.stdout
    assert sum(line.startswith("doctor: ") for line in lines) == 1
    settings = {row[1] for row in rows}
    assert "net.core.somaxconn" in settings or "engine" in settings  # whole names, one cell each
    assert all(row[4] in (doctor.OK, doctor.DIFFERS, doctor.NA, doctor.INFO, doctor.MISSING) for row in rows)
    assert "\x1b[" not in proc.stdout  # no colour codes in a pipe


def long_rows():
    note = "a note far wider than any eighty-column terminal would leave room for in its cell " * 2
    return [doctor.Row("sysctl", "net.core.somaxconn", "65535", "4096", doctor.DIFFERS, note.strip()),
            doctor.Row("nic", "features a|b", "on", "off", doctor.DIFFERS)]


def test_render_without_a_terminal_is_full_width_markdown():
    out = io.StringIO()
    doctor.render(long_rows(), Console(file=out, width=80))
    rows = table_rows(out.getvalue())
    assert rows[2][:2] == ["sysctl", "net.core.somaxconn"] and len(rows[2][5]) > 80
    assert rows[3][1] == "features a|b"  # escaped, still one cell
    assert len(out.getvalue().splitlines()) == 7  # title, blank, header, rule, two rows, blank


def test_render_on_a_terminal_keeps_the_rich_table():
    out = io.StringIO()
    doctor.render(long_rows(), Console(file=out, width=80, force_terminal=True, color_system=None))
    text = out.getvalue()
    assert "┃" in text or "│" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_markdown_table_keeps_every_row_on_one_line():
    lines = fmt.markdown_table(["a", "b"], [["x|y", "two\nlines"], ["", None]])
    assert lines == ["| a | b |", "|---|---|", "| x\\|y | two lines |", "|  | None |"]


def test_invoke_compare_piped_keeps_every_table_row_whole():
    runs = ROOT / "tests" / "fixtures" / "runs"
    proc = subprocess.run(f"{INVOKE} compare {runs / 'study-loopback'} {runs / 'incomplete'} | cat", shell=True,
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    tables, current = [], None
    for line in proc.stdout.splitlines():
        if line.startswith("|"):
            if current is None:
                current = []
                tables.append(current)
            current.append(line)
        else:
            current = None
    assert len(tables) >= 2
    for table in tables:  # one line per row: every row has the header's number of cells
        widths = {len(row) for row in table_rows("\n".join(table))}
        assert len(widths) == 1, table
    assert "## Package versions" in proc.stdout and "\x1b[" not in proc.stdout
