"""The README fits a screen and every path it names is in the repository; the docs' relative
links resolve; a wrk example targets the port its server listens on; .gitignore keeps no file
that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from zcbench.core.paths import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MAX_LINES = 160
#: A bare name counts as a file name when it ends in one of these.
FILE_SUFFIXES = ("md", "sh", "py", "yml", "yaml", "json", "lua", "png", "html", "toml", "lock", "h", "c", "txt")
_BARE_FILE = re.compile(r"^[\w.-]+\.(" + "|".join(FILE_SUFFIXES) + r")$")


def named_paths(text: str) -> list[str]:
    """What a Markdown text names as a path: link targets, and words in code spans and code
    blocks that have a '/' or a file suffix (not commands, options, URLs or placeholders)."""
    names = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    code = re.findall(r"`([^`\n]+)`", text) + re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    for words in code:
        for word in re.split(r"[\s()\[\],;:]+", words):
            if "://" in word or word.startswith("-") or not word or "<" in word:
                continue
            if any(part.isupper() for part in word.split("/")):  # a placeholder: RUN/manifest.json
                continue
            if "/" in word or _BARE_FILE.match(word):
                names.append(word)
    return names


def exists(name: str, base: Path) -> bool:
    """A path relative to `base` (globs allowed); a bare file name anywhere in the repository."""
    if name.startswith(("/", "~")):
        return False
    if "/" not in name.rstrip("/"):
        return bool(list(base.glob(name))) or bool(list(ROOT.glob(f"*/**/{name}")))
    return bool(list(base.glob(name.rstrip("/").removeprefix("./"))))


def test_the_readme_fits_a_screen():
    assert len(README.read_text().splitlines()) <= MAX_LINES


def test_every_path_the_readme_names_is_in_the_repository():
    text = README.read_text()
    names = named_paths(text)
    assert "docs/statistics.md" in names and "results/reference/plots/forest.png" in names  # the scan sees them
    outside = [n for n in names if n.startswith(("/", "~")) or ".." in Path(n).parts]
    assert outside == [], "the README names paths outside the repository"
    assert "shared/" not in text and "study/" not in text
    missing = [n for n in names if not exists(n, ROOT)]
    assert missing == []


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_the_docs_relative_links_resolve(doc):
    links = [t for t in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()) if "://" not in t]
    assert [link for link in links if not (doc.parent / link).exists()] == []


def server_default_port() -> int:
    return int(re.search(r"\.port = (\d+)", (ROOT / "server" / "src" / "main.c").read_text()).group(1))


@pytest.mark.parametrize("doc", [README, *DOCS], ids=["README.md", *(d.name for d in DOCS)])
def test_a_wrk_example_targets_the_port_its_server_listens_on(doc):
    """A reader runs wrk against a zcb-server started by hand: its port is the server's default
    unless the example's block starts it with --port (the bench's own port, 8088, is the
    containers' business)."""
    for block in re.findall(r"```[a-z]*\n(.*?)```", doc.read_text(), re.S):
        given = re.search(r"zcb-server[^\n]*--port[ =](\d+)", block)
        port = int(given.group(1)) if given else server_default_port()
        targets = [int(p) for p in re.findall(r"wrk [^\n]*http://(?:127\.0\.0\.1|localhost):(\d+)", block)]
        assert all(t == port for t in targets), (doc.name, targets, port)


def test_the_port_check_sees_the_old_readme_mistake(tmp_path):
    """The negative control: the example the README used to carry."""
    old = "```sh\nwrk -t1 -c100 -d10s -s loadgen/pipeline.lua http://127.0.0.1:8088/ -- 16\n```\n"
    (tmp_path / "old.md").write_text(old)
    with pytest.raises(AssertionError):
        test_a_wrk_example_targets_the_port_its_server_listens_on(tmp_path / "old.md")


def test_gitignore_keeps_only_files_that_exist():
    kept = [line[1:].strip("/") for line in (ROOT / ".gitignore").read_text().splitlines() if line.startswith("!")]
    assert [path for path in kept if not (ROOT / path).exists()] == []
