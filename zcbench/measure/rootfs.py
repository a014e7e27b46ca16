"""The base image's rootfs: Debian's minbase (mmdebstrap, or debootstrap) from the host's configured
mirror into a tarball cached under .cache/images by its inputs, which measure.images then `docker import`s.

It needs no Docker engine and nothing outside the standard library, so bootstrap.sh starts it
with the system's Python right after the Debian packages, while the Python environment is made
and the host provisioned:

    python3 -m zcbench.measure.rootfs     (prints the tarball's path; what `invoke build --rootfs` does)
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from zcbench.core.paths import ROOT, WORK

SUITE = "bookworm"
FALLBACK_MIRROR = "http://deb.debian.org/debian"
IMAGES_DIR = ROOT / "images"
CACHE_DIR = WORK / ".cache" / "images"

Log = Callable[[str], None]


class ImageError(RuntimeError):
    """An image could not be built or is missing; the message says which and why."""


#: One rootfs made at a time on this machine (build_rootfs).
ROOTFS_LOCK = Path(tempfile.gettempdir()) / "zcbench-rootfs.lock"


@contextmanager
def exclusive(path: Path):
    """This machine's lock at `path`, held for the block."""
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# --- host apt sources -----------------------------------------------------------------------


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]


def _parse_deb822(text: str) -> list[AptSource]:
    sources = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            sources.append(AptSource(uri, tuple(fields.get("suites", "").split()),
                                     tuple(fields.get("components", "main").split())))
    return sources


def _parse_one_line(text: str) -> list[AptSource]:
    sources = []
    for line in text.splitlines():
        line = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(line) >= 3 and line[0] == "deb":
            sources.append(AptSource(line[1], (line[2],), tuple(line[3:]) or ("main",)))
    return sources


def host_apt_sources(etc_apt: Path = Path("/etc/apt")) -> list[AptSource]:
    """The host's enabled `deb` sources (one-line .list and deb822 .sources files)."""
    files = [etc_apt / "sources.list"] + sorted((etc_apt / "sources.list.d").glob("*"))
    sources: list[AptSource] = []
    for path in files:
        if not path.is_file():
            continue
        if path.suffix == ".sources":
            sources += _parse_deb822(path.read_text())
        elif path.suffix == ".list":
            sources += _parse_one_line(path.read_text())
    return sources


def debian_sources(suite: str = SUITE, etc_apt: Path = Path("/etc/apt")) -> tuple[str, list[AptSource]]:
    """(the rootfs's mirror, sources of `suite` and its -updates/-security pockets) from the host.

    Falls back to deb.debian.org when the host has no source for the suite (e.g. not Debian).
    """
    pockets = [
        AptSource(s.uri, tuple(x for x in s.suites if x == suite or x.startswith(suite + "-")),
                  s.components)
        for s in host_apt_sources(etc_apt)
    ]
    pockets = [s for s in pockets if s.suites]
    mirror = next((s.uri for s in pockets if suite in s.suites), None)
    if mirror is None:
        return FALLBACK_MIRROR, [AptSource(FALLBACK_MIRROR, (suite,), ("main",))]
    return mirror, pockets


def sources_list_text(sources: Iterable[AptSource]) -> str:
    return "".join(f"deb {s.uri} {suite} {' '.join(s.components)}\n" for s in sources for suite in s.suites)


# --- the rootfs ---------------------------------------------------------------------------------


def input_hash(files: dict[str, bytes], extra: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for key in sorted(files):
        digest.update(key.encode() + b"\0" + hashlib.sha256(files[key]).digest())
    for key in sorted(extra):
        digest.update(f"{key}={extra[key]}\n".encode())
    return digest.hexdigest()[:16]


def base_inputs(suite: str = SUITE) -> tuple[str, str, str]:
    """(input hash, mirror, sources.list text) of the base image."""
    mirror, sources = debian_sources(suite)
    sources_text = sources_list_text(sources)
    recipe = (IMAGES_DIR / "base" / "mkrootfs.sh").read_bytes()
    digest = input_hash({"mkrootfs.sh": recipe}, {"suite": suite, "mirror": mirror, "sources": sources_text})
    return digest, mirror, sources_text


def build_rootfs(log: Log = print, suite: str = SUITE) -> Path:
    """The base's rootfs tarball (mmdebstrap, cached under .cache/ by its inputs): needs no
    Docker engine, so a fresh machine can make it while it is being provisioned. One rootfs made
    at a time per machine: a build that needs the rootfs while bootstrap.sh is still making it in
    the background waits for it, then finds it made."""
    digest, mirror, sources_text = base_inputs(suite)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tarball = CACHE_DIR / f"base-{suite}-{digest}.tar"
    if tarball.exists():
        return tarball
    if os.geteuid() != 0:
        raise ImageError("building the base image runs mmdebstrap (or debootstrap) and needs root")
    with exclusive(ROOTFS_LOCK):
        if tarball.exists():  # made meanwhile by the build this one waited for
            return tarball
        _make_rootfs(tarball, digest, suite, mirror, sources_text, log)
    return tarball


def _make_rootfs(tarball: Path, digest: str, suite: str, mirror: str, sources_text: str, log: Log) -> None:
    sources_file = CACHE_DIR / f"sources-{digest}.list"
    sources_file.write_text(sources_text)
    log(f"base: the minbase rootfs of {suite} from {mirror} (mmdebstrap: about 15 s; debootstrap: 30 s)")
    # into a name of its own first: a killed mkrootfs.sh never leaves a tarball that looks made
    partial = tarball.with_name(f".{tarball.name}.{os.getpid()}")
    proc = subprocess.run(
        [str(IMAGES_DIR / "base" / "mkrootfs.sh"), suite, mirror, str(sources_file), str(partial)],
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise ImageError(f"making the rootfs failed: {' | '.join(proc.stderr.strip().splitlines()[-3:])}")
    os.replace(partial, tarball)
    for stale in CACHE_DIR.glob(f"base-{suite}-*.tar"):  # rootfs of older inputs
        if stale != tarball:
            stale.unlink()


def main() -> int:
    try:
        print(build_rootfs(log=lambda line: print(line, file=sys.stderr, flush=True)))
    except ImageError as exc:
        print(f"zcbench: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
