"""A run directory: its layout, how each file is written and read, and their schema versions.

    results/<UTC stamp>-<label>/
        manifest.json           what ran, where and how (measure.manifest builds it); written
                                with "complete": false at the start, rewritten at the end
        samples.jsonl           one measured cell per line, appended as each one finishes
        summary.json            every number of the report (analyze.summary)
        report.md, report.html  the report (present), plots/ its figures
        calibration.json/.md    `invoke calibrate` only
        images/NAME.packages.txt  the Debian packages of each image the run used
    results/latest -> the newest run

Every JSON file written here carries "schema": its version in SCHEMAS, and the JSON Schema that
describes it lives in zcbench/schemas/ (SCHEMA_NAMES names it; the tests validate every file
written against it with zcbench.devtools.schemas). A file without "schema" is from before
versions (version 0) and reads as such. Readers take every older version (samples are migrated
by core.samples) and refuse a newer one, or a version that is no number, in one line. The JSON
written is strict (RFC 8259): a value that is no finite number (an MDE too large to compute) is
written as null. Nothing else in zcbench opens these files by name.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from zcbench.core.atomic import write_atomic
from zcbench.core.samples import SAMPLES_SCHEMA, Sample

MANIFEST = "manifest.json"
SAMPLES = "samples.jsonl"
SUMMARY = "summary.json"
REPORT = "report.md"
REPORT_HTML = "report.html"
PLOTS = "plots"
CALIBRATION_JSON = "calibration.json"
CALIBRATION_MD = "calibration.md"
IMAGES = "images"  # the package lists of the run's images
PACKAGES_SUFFIX = ".packages.txt"
LATEST = "latest"
#: The packages whose versions a run's images are summarized by (the manifest's image_contents
#: key_packages; compare lists their changes one by one).
KEY_PACKAGES = ("wrk", "nginx-light", "libc6", "linux-libc-dev", "liburing-dev", "gcc")

#: The schema version of each file this module writes (files from before versions had none:
#: version 0, read as such).
MANIFEST_SCHEMA = 1
SUMMARY_SCHEMA = 1
CALIBRATION_SCHEMA = 2  # 2: the A/A and the dose ladder at every connection count
SCHEMAS = {MANIFEST: MANIFEST_SCHEMA, SAMPLES: SAMPLES_SCHEMA, SUMMARY: SUMMARY_SCHEMA,
           CALIBRATION_JSON: CALIBRATION_SCHEMA}
#: Each file's JSON Schema: zcbench/schemas/NAME.schema.json (zcbench.schemas.load(NAME)).
SCHEMA_NAMES = {MANIFEST: "manifest", SAMPLES: "sample", SUMMARY: "summary", CALIBRATION_JSON: "calibration"}


class RunDirError(RuntimeError):
    """A run directory cannot be read (missing, not a run, unreadable or newer file); one line."""


# --- making one -------------------------------------------------------------------------------


def new_run_dir(out: Path, label: str) -> tuple[str, Path]:
    """A fresh directory under `out` named by the UTC time and the label; (run id, path)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run_id, n = f"{stamp}-{label}", 1
    while (out / run_id).exists():
        n += 1
        run_id = f"{stamp}-{label}-{n}"
    (out / run_id).mkdir()
    (out / run_id / SAMPLES).touch()
    return run_id, out / run_id


def point_latest(run_dir: Path) -> None:
    """results/latest -> this run, replaced atomically."""
    link = run_dir.parent / LATEST
    tmp = run_dir.parent / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, link)


def resolve_run_dir(run: str | Path) -> Path:
    """A run directory from a path (results/latest follows its link)."""
    run_dir = Path(run).resolve()
    if not run_dir.is_dir():
        raise RunDirError(f"{run}: no such run directory")
    if not (run_dir / SAMPLES).exists():
        raise RunDirError(f"{run_dir}: no {SAMPLES} (not a zcbench run directory?)")
    return run_dir


# --- JSON files -------------------------------------------------------------------------------


def finite(data, _inside: frozenset = frozenset()):
    """`data` with every float that is no finite number (inf, nan) as None: strict JSON has no
    Infinity, and a browser's or jq's parser refuses it. A container holding itself is refused
    as json.dumps refuses it (ValueError)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, (dict, list, tuple)):
        if id(data) in _inside:
            raise ValueError("Circular reference detected")
        inside = _inside | {id(data)}
        if isinstance(data, dict):
            return {key: finite(value, inside) for key, value in data.items()}
        return [finite(value, inside) for value in data]
    return data


def json_text(data) -> str:
    return json.dumps(finite(data), indent=2, sort_keys=True, default=str, allow_nan=False) + "\n"


def write_json(path: Path, data: dict) -> None:
    """The JSON of `data` (its producer puts in its "schema"), written so a reader never sees
    half a file."""
    write_atomic(path, json_text(data))


def read_json(path: Path) -> dict:
    """A JSON file of a run directory, checked: not newer than this zcbench reads."""
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: not a JSON object")
    check_version(path, data.get("schema"))
    return data


def check_version(path, version) -> None:
    """A file's "schema" (None: from before versions, read as version 0) is one this zcbench
    reads, or one line says why not."""
    newest = SCHEMAS.get(Path(path).name)
    if newest is None or version is None:
        return
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise RunDirError(f"{path}: schema {version!r} is no version number (this zcbench reads 0 to {newest})")
    if version > newest:
        raise RunDirError(f"{path}: schema {version!r} is newer than this zcbench reads "
                          f"({newest}): update zcbench")


def manifest_fact(manifest: dict, *paths: str):
    """The first of several places a fact may be recorded ('host.kernel_cmdline', 'host.cmdline'):
    manifests from different zcbench versions, or collectors, name things differently."""
    for path in paths:
        value = manifest
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value not in (None, "", {}, []):
            return value
    return None


def write_manifest(run_dir: Path, manifest: dict) -> None:
    write_json(Path(run_dir) / MANIFEST, manifest)


def read_manifest(run_dir: Path) -> dict:
    """manifest.json, or {} when it is missing (a report then says "unknown")."""
    path = Path(run_dir) / MANIFEST
    return read_json(path) if path.exists() else {}


def write_text(run_dir: Path, name: str, text: str) -> Path:
    """One of the run's text files (report.md, calibration.md, ...), atomically."""
    path = Path(run_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)
    return path


# --- samples.jsonl ----------------------------------------------------------------------------


def append_sample(run_dir: Path, sample: Sample) -> None:
    """Append one sample as a line and make it durable before the next cell starts."""
    line = json.dumps(finite(sample.to_json()), sort_keys=True, allow_nan=False)
    with open(Path(run_dir) / SAMPLES, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def iter_samples(path: str | Path) -> Iterator[Sample]:
    """Every complete sample of a samples.jsonl (any version up to this one's, migrated); a torn
    last line (a crash mid-write) is skipped."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            obj = json.loads(line)
            check_version(SAMPLES, obj.get("schema"))
            yield Sample.from_json(obj)


def load_samples(run_dir: str | Path) -> list[Sample]:
    """The samples of a run directory (or of a samples.jsonl named directly)."""
    path = Path(run_dir)
    return list(iter_samples(path / SAMPLES if path.is_dir() else path))


# --- the images' package lists ----------------------------------------------------------------


def parse_packages(text: str) -> dict[str, str]:
    """`name=version` lines -> {name: version}."""
    return dict(line.strip().split("=", 1) for line in text.splitlines() if "=" in line)


def write_package_list(run_dir: Path, image: str, text: str) -> str:
    """An image's package list into the run; its path relative to the run directory."""
    relative = f"{IMAGES}/{image}{PACKAGES_SUFFIX}"
    write_text(run_dir, relative, text)
    return relative


def read_package_lists(run_dir: Path) -> dict[str, dict[str, str]]:
    """Image name -> {package: version} from a run directory's copied lists."""
    folder = Path(run_dir) / IMAGES
    return {path.name.removesuffix(PACKAGES_SUFFIX): parse_packages(path.read_text())
            for path in sorted(folder.glob(f"*{PACKAGES_SUFFIX}"))}
