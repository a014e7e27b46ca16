"""How numbers read in reports: one place for sizes, rates, times, shares and deltas."""

from __future__ import annotations

UNKNOWN = "unknown"
MISSING = "–"


def size(nbytes: int | None) -> str:
    """88 -> '88 B', 4096 -> '4 KiB', 1048576 -> '1 MiB', 1536 -> '1.5 KiB'."""
    if nbytes is None:
        return MISSING
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            value = nbytes / scale
            return f"{value:g} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{nbytes} B"


def rate(per_s: float | None) -> str:
    """Requests per second the way the study wrote them: 112K, 1.2M, 950."""
    if per_s is None:
        return MISSING
    if per_s >= 1e6:
        return f"{per_s / 1e6:.2f}M"
    if per_s >= 1e4:
        return f"{per_s / 1e3:.0f}K"
    if per_s >= 1e3:
        return f"{per_s / 1e3:.1f}K"
    return f"{per_s:.0f}"


def micros(us: float | None) -> str:
    """A latency given in microseconds, in milliseconds like the study ('0.90ms', '10.74ms');
    below 0.1 ms in microseconds ('45µs')."""
    if us is None:
        return MISSING
    if us >= 100:
        ms = us / 1000
        return f"{ms:.2f}ms" if ms < 100 else f"{ms:.0f}ms"
    return f"{us:.0f}µs" if us >= 10 else f"{us:.1f}µs"


def number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return MISSING
    return f"{value:.{digits}f}"


def count(value: int | None) -> str:
    return MISSING if value is None else f"{value:,}"


def percent(share: float | None, digits: int = 0) -> str:
    """A share of a whole (0.37 -> '37%')."""
    if share is None:
        return MISSING
    return f"{share * 100:.{digits}f}%"


#: Above this, an MDE says only that the run could not see any plausible change (too few
#: blocks, or blocks disagreeing wildly): its digits would be noise.
MDE_SHOWN_MAX = 1.0


def mde(value: float | None) -> str:
    """'±4.1%': the smallest change a run could have seen (80 % power); '>±100%' past that."""
    if value is None:
        return MISSING
    return f">±{percent(MDE_SHOWN_MAX)}" if value > MDE_SHOWN_MAX else f"±{percent(value, 1)}"


def delta(change: float | None) -> str:
    """A relative change with its sign (0.07 -> '+7.0%', -0.004 -> '-0.4%')."""
    if change is None:
        return MISSING
    pct = change * 100
    return f"{pct:+.1f}%" if abs(pct) < 10 else f"{pct:+.0f}%"


def ratio(value: float | None) -> str:
    return MISSING if value is None else f"{value:.3f}"


def interval(bounds: list[float] | None, digits: int = 3) -> str:
    """'1.007–1.133'; an end beyond 10 loses its decimals ('0.001–480'): the width is the news."""
    if not bounds:
        return MISSING
    return "–".join(f"{end:.0f}" if abs(end) >= 10 else f"{end:.{digits}f}" for end in bounds)


def gbit(value: float | None) -> str:
    if value is None:
        return MISSING
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"


def pvalue(p: float | None) -> str:
    """'0.031', '<0.001', '1' -- enough digits to compare with 0.05."""
    if p is None:
        return MISSING
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}".rstrip("0").rstrip(".") if p < 1 else "1"


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table, one line per row whatever its width: readable piped, in a CI log or
    a file (a terminal-width table wraps its cells when there is no terminal). A '|' inside
    a cell is escaped and a line break becomes a space, so every row stays one line."""
    def cell(value) -> str:
        return " ".join(str(value).split()).replace("|", "\\|")

    return ["| " + " | ".join(cell(h) for h in header) + " |",
            "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)]
