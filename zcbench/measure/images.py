"""The project's container images, built without any container registry.

base     the rootfs of measure.rootfs (mmdebstrap, minbase) -> `docker import`
server   multi-stage: builder (gcc, make, liburing-dev) runs `make -C server`; final stage holds
         only the static binary
loadgen  wrk from Debian + loadgen/
nginx    nginx-light from Debian (the reference server; configured per run by containers.py)

Every image carries the project label and a content hash of its inputs (files, build args,
the parent image id). A build whose hash matches the existing image is skipped, so a no-op
`invoke build` takes seconds. The build context is assembled here from an explicit file list,
so the hash and the context are the same bytes.
"""

from __future__ import annotations

import io
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import docker
import docker.errors

from zcbench.core.paths import ROOT
from zcbench.measure.rootfs import (IMAGES_DIR, SUITE, AptSource, ImageError, Log, base_inputs, build_rootfs,
                                    debian_sources, exclusive, input_hash)

LABEL_PROJECT = "zcbench.project"
LABEL_HASH = "zcbench.input-hash"
PROJECT = "zcbench"

#: Every image's Debian packages, one `name=version` a line, written by its Dockerfile at build
#: time (the server's is its builder's: what the binary was compiled and linked with).
PACKAGES_FILE = "/etc/zcbench/packages.txt"
#: Where and when the base rootfs came from, written by mkrootfs.sh (KEY=value lines).
DEBOOTSTRAP_FILE = "etc/zcbench/debootstrap.env"
#: debootstrap.env keys -> labels; the base carries them and every image built on it copies them.
DEBIAN_LABELS = {
    "DEBIAN_SUITE": "zcbench.debian.suite",
    "DEBIAN_MIRROR": "zcbench.debian.mirror",
    "DEBOOTSTRAP_DATE": "zcbench.debian.debootstrap-date",
    "DEBIAN_RELEASE_DATE": "zcbench.debian.release-date",
}

#: The one place image names are defined.
TAGS = {
    "base": f"zcbench/base:{SUITE}",
    "server": "zcbench/server:latest",
    "loadgen": "zcbench/loadgen:latest",
    "nginx": "zcbench/nginx:latest",
}
BUILT_IMAGES = ("server", "loadgen", "nginx")

#: Files of each image's build context besides its Dockerfile, as (source dir, glob) pairs;
#: paths inside the context keep their path relative to the repository root.
CONTEXT_FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "server": (("server", "Makefile"), ("server/src", "**/*"), ("server/include", "**/*")),
    "loadgen": (("loadgen", "**/*"),),
}

@dataclass(frozen=True)
class BuildResult:
    name: str
    tag: str
    image_id: str
    input_hash: str
    built: bool  # False: the existing image already had this input hash
    seconds: float


def mirror_hosts(sources: Iterable[AptSource]) -> dict[str, str]:
    """Host name -> address of each mirror, as the host resolves it (build containers get
    these as extra hosts: the host may resolve them through /etc/hosts, which they lack)."""
    hosts = {}
    for s in sources:
        name = urlparse(s.uri).hostname
        if not name or name in hosts:
            continue
        try:
            hosts[name] = socket.getaddrinfo(name, None, socket.AF_INET)[0][4][0]
        except OSError:
            continue
    return hosts


# --- hashing and build contexts -------------------------------------------------------------


def _context_files(name: str) -> dict[str, bytes]:
    """Context path -> content for image `name` (Dockerfile included)."""
    files = {"Dockerfile": (IMAGES_DIR / name / "Dockerfile").read_bytes()}
    for directory, pattern in CONTEXT_FILES.get(name, ()):
        base = ROOT / directory
        for path in sorted(base.glob(pattern)):
            if path.is_file() and "__pycache__" not in path.parts:
                files[str(path.relative_to(ROOT))] = path.read_bytes()
    return files


def _context_tar(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(files):
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(files[path]), 0, 0o644
            tar.addfile(info, io.BytesIO(files[path]))
    buf.seek(0)
    return buf


def _existing(client, tag: str):
    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def _labels(digest: str) -> dict[str, str]:
    return {LABEL_PROJECT: PROJECT, LABEL_HASH: digest}


# --- base image -----------------------------------------------------------------------------


def build_base(client, log: Log = print, suite: str = SUITE) -> BuildResult:
    """The rootfs (build_rootfs) `docker import`ed, unless the base image has its inputs."""
    start = time.monotonic()
    digest, _, _ = base_inputs(suite)
    tag = TAGS["base"]
    image = _existing(client, tag)
    if image is not None and image.labels.get(LABEL_HASH) == digest:
        return BuildResult("base", tag, image.id, digest, False, time.monotonic() - start)
    tarball = build_rootfs(log, suite)
    log(f"base: docker import {tarball.name}")
    labels = {**_labels(digest), **debian_labels(read_debootstrap_env(tarball))}
    changes = [f'LABEL {k}="{v}"' for k, v in labels.items()] + ['CMD ["/bin/bash"]']
    repo, _, version = tag.partition(":")
    # From a file (sent with a Content-Length): the SDK's chunked stream upload is refused by
    # Docker 20.10 ("invalid byte in chunk length").
    client.api.import_image_from_file(str(tarball), repository=repo, tag=version, changes=changes)
    image = client.images.get(tag)
    return BuildResult("base", tag, image.id, digest, True, time.monotonic() - start)


def read_debootstrap_env(tarball: Path) -> dict[str, str]:
    """mkrootfs.sh's record of the rootfs in `tarball` ({} for a rootfs made without one)."""
    with tarfile.open(tarball) as tar:
        for member in tar:
            if member.name.lstrip("./") == DEBOOTSTRAP_FILE:
                return parse_env(tar.extractfile(member).read().decode())
    return {}


def parse_env(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


def debian_labels(env: dict[str, str]) -> dict[str, str]:
    return {label: env[key] for key, label in DEBIAN_LABELS.items() if env.get(key)}


# --- Dockerfile images ----------------------------------------------------------------------


def _run_build(client, name: str, files: dict[str, bytes], buildargs: dict[str, str],
               labels: dict[str, str], extra_hosts: dict[str, str], log: Log) -> str:
    tail: list[str] = []
    stream = client.api.build(
        fileobj=_context_tar(files), custom_context=True, tag=TAGS[name], buildargs=buildargs,
        labels=labels, rm=True, forcerm=True, pull=False, network_mode="host",
        extra_hosts=extra_hosts or None, decode=True,
    )
    image_id = None
    for chunk in stream:
        if "error" in chunk:
            raise ImageError(f"building {name} failed: {chunk['error'].strip()} "
                             f"(last output: {' | '.join(tail[-5:])})")
        if "aux" in chunk and "ID" in chunk["aux"]:
            image_id = chunk["aux"]["ID"]
        for line in chunk.get("stream", "").splitlines():
            if line.strip():
                tail.append(line.strip())
                if line.startswith("Step "):
                    log(f"{name}: {line.strip()}")
    return image_id or client.images.get(TAGS[name]).id


def git_commit(paths: Iterable[str] = ("server", "images/server")) -> str:
    """The checkout's commit (12 hex digits), "-dirty" when `paths` have uncommitted changes;
    "unknown" outside a git checkout. The server image is built with it (what `zcb-server
    --version` reports) but it is not an input of the image hash: a new commit that leaves the
    server's sources alone does not rebuild, and the recorded commit is then the one the same
    sources were built at."""
    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "--short=12", "HEAD")
    if not commit:
        return "unknown"
    return commit + ("-dirty" if git("status", "--porcelain", "--", *paths) else "")


#: Build arguments left out of the input hash (see git_commit).
UNHASHED_BUILDARGS = {"server": lambda: {"GIT_COMMIT": git_commit()}}


def build_image(client, name: str, base_ref: str, base_id: str, mirrors: dict[str, str],
                log: Log = print) -> BuildResult:
    """Build one Dockerfile image on top of `base_ref` unless its input hash is unchanged."""
    start = time.monotonic()
    files = _context_files(name)
    buildargs = {"BASE_IMAGE": base_ref}
    digest = input_hash(files, {**buildargs, "base_id": base_id})
    image = _existing(client, TAGS[name])
    if image is not None and image.labels.get(LABEL_HASH) == digest:
        return BuildResult(name, TAGS[name], image.id, digest, False, time.monotonic() - start)
    log(f"{name}: building {TAGS[name]}")
    # The base's origin labels, given explicitly: a FROM scratch final stage inherits none.
    base_labels = {k: v for k, v in (client.images.get(base_id).labels or {}).items()
                   if k in DEBIAN_LABELS.values()}
    unhashed = UNHASHED_BUILDARGS[name]() if name in UNHASHED_BUILDARGS else {}
    image_id = _run_build(client, name, files, {**buildargs, **unhashed}, {**base_labels, **_labels(digest)},
                          mirrors, log)
    if image is not None and image.id != image_id:
        _remove_replaced(client, image.id, log)
    return BuildResult(name, TAGS[name], image_id, digest, True, time.monotonic() - start)


def _remove_replaced(client, image_id: str, log: Log) -> None:
    """Drop the image a rebuild replaced (now untagged), so rebuilds do not pile up; an image
    a container still uses stays."""
    try:
        client.images.remove(image_id)
        log(f"removed the replaced image {image_id[7:19]}")
    except docker.errors.APIError:
        pass


def _base_reference(client, base_image: str | None, log: Log) -> tuple[str, str, BuildResult | None]:
    """(reference for FROM, its image id, the base build result if we built it)."""
    if base_image:
        image = _existing(client, base_image)
        if image is None:
            # The user named an image from their own registry: fetching it is their choice.
            log(f"base: pulling user-supplied {base_image}")
            image = client.images.pull(base_image)
        return base_image, image.id, None
    result = build_base(client, log)
    return result.tag, result.image_id, result


#: One build at a time on this machine (checkouts share the engine and the tags): the test
#: suite builds beside its first tests (devtools.testing) while the Docker tests' fixture may ask
#: for the same images; the second waits, then finds them up to date.
BUILD_LOCK = Path(tempfile.gettempdir()) / "zcbench-images.lock"
def build_lock():
    return exclusive(BUILD_LOCK)


def ensure_images(client=None, names: Iterable[str] = BUILT_IMAGES, base_image: str | None = None,
                  log: Log = print) -> list[BuildResult]:
    """Build whatever of `names` (and the base) is missing or stale; return one result each."""
    client = client or docker.from_env()
    names = list(names)
    unknown = [n for n in names if n not in BUILT_IMAGES]
    if unknown:
        raise ImageError(f"unknown image(s) {unknown}; known: {', '.join(BUILT_IMAGES)}")
    with build_lock():
        return _ensure_images(client, names, base_image, log)


def _ensure_images(client, names: list[str], base_image: str | None, log: Log) -> list[BuildResult]:
    base_ref, base_id, base_result = _base_reference(client, base_image, log)
    _, sources = debian_sources()
    mirrors = mirror_hosts(sources)
    # Each image needs only the base: the engine builds them side by side (on a fresh machine
    # each one mostly waits for its apt downloads).
    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        built = list(pool.map(lambda name: build_image(client, name, base_ref, base_id, mirrors, log), names))
    return ([base_result] if base_result else []) + built


def image_ids(client) -> dict[str, str | None]:
    """Tag -> id of each project image present now (None when missing), for the manifest."""
    return {name: (img.id if (img := _existing(client, tag)) else None) for name, tag in TAGS.items()}


def require_images(client, names: Iterable[str]) -> dict[str, str]:
    """Name -> id of images a bench needs; ImageError naming `invoke build` when one is missing."""
    found = {}
    for name in names:
        image = _existing(client, TAGS[name])
        if image is None:
            raise ImageError(f"image {TAGS[name]} is missing: run `invoke build` first")
        found[name] = image.id
    return found
