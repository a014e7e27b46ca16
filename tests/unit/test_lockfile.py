"""requirements.lock: complete, hashed, consistent with pyproject's ranges and with this venv."""

import re
import stat
import tomllib
from importlib import metadata

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement

from zcbench.core.paths import ROOT
from zcbench.devtools import lockfile


def lock_entries(text: str) -> list[tuple[str, str, str, list[str]]]:
    """(name, version, marker, hashes) of each requirement in a hashed requirements file."""
    entries = []
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?\n", block)
        if head:
            entries.append((lockfile.normalize(head.group(1)), head.group(2), (head.group(3) or "").strip(),
                            re.findall(r"--hash=sha256:([0-9a-f]{64})", block)))
    return entries


@pytest.fixture(scope="module")
def entries():
    return lock_entries(lockfile.LOCK.read_text())


def project_requirements() -> list[Requirement]:
    data = tomllib.loads(lockfile.PYPROJECT.read_text())
    names = [*data["project"]["dependencies"], *data["build-system"]["requires"]]
    for extra in data["project"]["optional-dependencies"].values():
        names += extra
    return [Requirement(r) for r in names]


def applies(marker: str) -> bool:
    return not marker or Marker(marker).evaluate()


def test_every_locked_package_is_pinned_with_hashes(entries):
    assert len(entries) > 20
    for name, version, _, hashes in entries:
        assert hashes, f"{name}=={version} has no hash"


def test_every_requirement_of_pyproject_is_locked_within_its_range(entries):
    for requirement in project_requirements():
        name = lockfile.normalize(requirement.name)
        versions = [v for n, v, marker, _ in entries if n == name and applies(marker)]
        assert len(versions) == 1, f"{name}: {versions} pinned for this Python"
        assert requirement.specifier.contains(versions[0], prereleases=True), (name, versions[0])


def test_the_lock_holds_the_installer_and_the_build_backend(entries):
    names = {n for n, *_ in entries}
    assert {"pip", "setuptools", "uv"} <= names


def test_this_environment_is_installed_from_the_lock(entries):
    """bootstrap.sh installs exactly the lock: what this venv has is what the lock pins."""
    for name, version, marker, _ in entries:
        if not applies(marker):
            continue
        assert metadata.version(name) == version, f"{name}: installed {metadata.version(name)}, locked {version}"


def test_bootstrap_installs_from_the_lock_only():
    script = (ROOT / "bootstrap.sh").read_text()
    # both installers (uv, and pip where uv cannot) take exactly the lock, hash-checked ...
    installers = dict(re.findall(r"local (pip|uv)=\((.*)\)", script))
    assert set(installers) == {"pip", "uv"} and all("--no-deps" in args for args in installers.values())
    for name in installers:
        assert re.search(rf'"\${{{name}\[@\]}}" --require-hashes -r requirements\.lock', script)
        # ... and the project itself goes in without resolving (and so without upgrading) anything
        assert re.search(rf'"\${{{name}\[@\]}}" --no-build-isolation -e \.', script)
    assert ".[test]" not in script


def test_minimum_python_comes_from_requires_python(tmp_path):
    assert lockfile.minimum_python() == "3.11"
    other = tmp_path / "pyproject.toml"
    other.write_text('[project]\nrequires-python = "~=3.12"\n')
    with pytest.raises(lockfile.LockError, match="no lower bound"):
        lockfile.minimum_python(other)


def fake_uv(tmp_path, body: str):
    script = tmp_path / "uv"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_refresh_runs_a_universal_hashed_compile_and_replaces_the_lock(tmp_path, monkeypatch):
    args_file = tmp_path / "args"
    # writes the output file uv was asked for, and records its arguments and inputs
    uv = fake_uv(tmp_path, f'echo "$@" > {args_file}\ncat build-requirements.in >> {args_file}\n'
                           'while [ "$1" != --output-file ]; do shift; done\necho "pinned==1.0" > "$2"\n')
    monkeypatch.setattr(lockfile, "uv_executable", lambda: uv)
    lock = tmp_path / "requirements.lock"
    lock.write_text("old==0.1\n")
    assert lockfile.refresh_lock(lock=lock) == lock
    assert lock.read_text() == "pinned==1.0\n"
    recorded = args_file.read_text()
    for flag in ("--universal", "--generate-hashes", "--all-extras", "--python-version 3.11", "pyproject.toml"):
        assert flag in recorded
    assert "--upgrade" not in recorded
    assert "setuptools>=68" in recorded and "\npip\n" in recorded


def test_a_failed_compile_is_one_line_and_keeps_the_old_lock(tmp_path, monkeypatch):
    uv = fake_uv(tmp_path, 'echo "resolving..." >&2\necho "error: no solution for foo>=99" >&2\nexit 1\n')
    monkeypatch.setattr(lockfile, "uv_executable", lambda: uv)
    lock = tmp_path / "requirements.lock"
    lock.write_text("old==0.1\n")
    with pytest.raises(lockfile.LockError) as info:
        lockfile.refresh_lock(upgrade=True, lock=lock)
    assert str(info.value) == "uv pip compile failed: error: no solution for foo>=99"
    assert lock.read_text() == "old==0.1\n"


def test_locked_pins_reads_marker_split_versions(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("numpy==2.4.6 ; python_full_version < '3.12' \\\n    --hash=sha256:" + "a" * 64 + "\n"
                    "numpy==2.5.5 ; python_full_version >= '3.12' \\\n    --hash=sha256:" + "b" * 64 + "\n"
                    "PyYAML==6.0.4 \\\n    --hash=sha256:" + "c" * 64 + "\n    # via zcbench\n")
    assert lockfile.locked_pins(lock) == {"numpy": ["2.4.6", "2.5.5"], "pyyaml": ["6.0.4"]}
