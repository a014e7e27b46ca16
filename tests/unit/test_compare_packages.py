"""`invoke compare` names the package versions that differ between two runs: the key Debian
packages of each image, a count of the others, and the Python packages."""

import json
import shutil
from pathlib import Path

from zcbench.analyze import compare
from zcbench.present import compare as compare_report

RUNS = Path(__file__).resolve().parent.parent / "fixtures" / "runs"

SERVER_A = {"libc6": "2.36-9+deb12u9", "linux-libc-dev": "6.1.119-1", "liburing-dev": "2.3-3",
            "gcc": "4:12.2.0-3", "make": "4.3-4.1"}
LOADGEN_A = {"libc6": "2.36-9+deb12u9", "wrk": "4.1.0-4", "libluajit-5.1-2": "2.1.0+git1"}


def make_run(tmp_path: Path, name: str, server: dict, loadgen: dict, python: dict | None) -> Path:
    run = Path(shutil.copytree(RUNS / "study-loopback", tmp_path / name))
    (run / "images").mkdir()
    for image, packages in (("server", server), ("loadgen", loadgen)):
        (run / "images" / f"{image}.packages.txt").write_text(
            "".join(f"{k}={v}\n" for k, v in sorted(packages.items())))
    record = json.loads((run / "manifest.json").read_text())
    if python is None:
        record.pop("python_packages", None)
    else:
        record["python_packages"] = {"python": "3.11.7", "packages": python, "not_as_locked": []}
    (run / "manifest.json").write_text(json.dumps(record))
    return run


def changes_between(a: Path, b: Path) -> dict:
    return compare.package_changes(a, json.loads((a / "manifest.json").read_text()),
                                   b, json.loads((b / "manifest.json").read_text()))


def test_differing_versions_are_named_per_image_and_package(tmp_path):
    a = make_run(tmp_path, "a", SERVER_A, LOADGEN_A, {"numpy": "2.4.6", "rich": "15.0.0"})
    b = make_run(tmp_path, "b", {**SERVER_A, "linux-libc-dev": "6.1.123-1", "make": "4.3-5"},
                 {**LOADGEN_A, "wrk": "4.2.0-1"}, {"numpy": "2.5.5", "rich": "15.0.0"})
    changes = changes_between(a, b)
    assert [(c["where"], c["package"], c["a"], c["b"]) for c in changes["key"]] == [
        ("image loadgen", "wrk", "4.1.0-4", "4.2.0-1"),
        ("image server", "linux-libc-dev", "6.1.119-1", "6.1.123-1")]
    assert changes["other_images"] == [{"where": "image server", "packages": ["make"]}]
    assert [(c["package"], c["a"], c["b"]) for c in changes["python"]] == [("numpy", "2.4.6", "2.5.5")]
    text = "\n".join(compare_report.render_package_changes(changes))
    assert "| image server | linux-libc-dev | 6.1.119-1 | 6.1.123-1 |" in text
    assert "| Python | numpy | 2.4.6 | 2.5.5 |" in text
    assert "image server: 1 other Debian package(s) differ (make)" in text
    assert "libc6" not in text  # the same in both runs


def test_a_package_present_in_one_run_only_counts_as_a_change(tmp_path):
    a = make_run(tmp_path, "a", SERVER_A, LOADGEN_A, {})
    b = make_run(tmp_path, "b", {k: v for k, v in SERVER_A.items() if k != "liburing-dev"}, LOADGEN_A, {})
    rows = changes_between(a, b)["key"]
    assert [(r["package"], r["a"], r["b"]) for r in rows] == [("liburing-dev", "2.3-3", None)]


def test_same_versions_say_so(tmp_path):
    a = make_run(tmp_path, "a", SERVER_A, LOADGEN_A, {"numpy": "2.4.6"})
    b = make_run(tmp_path, "b", SERVER_A, LOADGEN_A, {"numpy": "2.4.6"})
    lines = compare_report.render_package_changes(changes_between(a, b))
    assert lines[0] == "## Package versions"
    assert "The same package versions in both runs (images and Python)." in lines


def test_runs_that_recorded_nothing_are_named(tmp_path):
    a = Path(shutil.copytree(RUNS / "study-loopback", tmp_path / "a"))  # made before the records
    b = make_run(tmp_path, "b", SERVER_A, LOADGEN_A, None)
    changes = changes_between(a, b)
    assert changes["key"] == [] and changes["python"] == []
    assert changes["unrecorded"] == ["run A: image package lists", "run A: Python packages",
                                     "run B: Python packages"]
    text = "\n".join(compare_report.render_package_changes(changes))
    assert "The same package versions" not in text and "not recorded in run A: image package lists" in text


def test_key_packages_from_the_manifest_when_the_lists_are_gone(tmp_path):
    a = make_run(tmp_path, "a", SERVER_A, LOADGEN_A, {})
    b = make_run(tmp_path, "b", SERVER_A, LOADGEN_A, {})
    shutil.rmtree(b / "images")
    record = json.loads((b / "manifest.json").read_text())
    record["image_contents"] = {"server": {"key_packages": {**SERVER_A, "libc6": "2.36-10"}}}
    (b / "manifest.json").write_text(json.dumps(record))
    rows = changes_between(a, b)["key"]
    assert [(r["where"], r["package"], r["b"]) for r in rows] == [("image server", "libc6", "2.36-10")]


def test_the_compare_report_carries_the_section(tmp_path):
    a = make_run(tmp_path, "a", SERVER_A, LOADGEN_A, {"rich": "14.0.0"})
    b = make_run(tmp_path, "b", SERVER_A, LOADGEN_A, {"rich": "15.0.0"})
    text = compare_report.render_compare(compare.compare_runs(a, b))
    section = text.split("## Package versions", 1)[1]
    assert "| Python | rich | 14.0.0 | 15.0.0 |" in section.split("\n## ", 1)[0]
