"""bootstrap.sh checks its prerequisites before it installs anything: an unmet one stops it with
one line on stderr. Every fact is read from a place the test overrides (ZCBENCH_* variables), and
the installers on PATH are stubs that leave a mark, so "nothing was installed" is checked, not
assumed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from zcbench.core.paths import ROOT

#: The tools bootstrap.sh's checks use; a PATH of only these (and the stubs) has no real
#: apt-get or sudo on it.
TOOLS = ("bash", "sed", "sort", "head", "cat", "tr", "uname", "id", "readlink", "dirname", "printf", "env")
INSTALLED = 97  # the stub apt-get's exit status: reaching it means every check passed
ELEVATED = 98  # the stub sudo's: not root here, the checks passed and it re-ran itself with sudo


@pytest.fixture
def stubs(tmp_path):
    """A PATH with the tools, an apt-get that marks and fails, and a fake Python per version."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    mark = tmp_path / "apt-get-ran"
    (bin_dir / "apt-get").write_text(f"#!/bin/sh\n: > {mark}\nexit {INSTALLED}\n")
    (bin_dir / "apt-get").chmod(0o755)
    return tmp_path, bin_dir, mark


def fake_python(tmp_path: Path, version: str) -> Path:
    path = tmp_path / f"python{version}"
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


def os_release(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "os-release"
    path.write_text(text)
    return path


DEBIAN_12 = 'ID=debian\nVERSION_ID="12"\n'


def bootstrap(stubs, *, kernel="6.18.0", python="3.11", release=DEBIAN_12, uid="0", io_uring_disabled="0",
              cpus="2", with_sudo=True, step="deps") -> subprocess.CompletedProcess:
    tmp_path, bin_dir, _ = stubs
    if with_sudo:
        (bin_dir / "sudo").write_text(f"#!/bin/sh\nexit {ELEVATED}\n")
        (bin_dir / "sudo").chmod(0o755)
    disabled = tmp_path / "io_uring_disabled"
    disabled.write_text(io_uring_disabled + "\n")
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path),
           "ZCBENCH_OS_RELEASE": str(os_release(tmp_path, release)), "ZCBENCH_KERNEL_RELEASE": kernel,
           "ZCBENCH_PYTHON": str(fake_python(tmp_path, python)) if python else str(tmp_path / "no-python"),
           "ZCBENCH_UID": uid, "ZCBENCH_IO_URING_DISABLED": str(disabled), "ZCBENCH_CPUS": cpus}
    return subprocess.run([str(bin_dir / "bash"), str(ROOT / "bootstrap.sh"), step], env=env,
                          capture_output=True, text=True, timeout=60)


def stopped_with_one_line(proc, mark: Path, *words: str) -> None:
    lines = proc.stderr.splitlines()
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("bootstrap: "), proc.stderr
    assert all(word in lines[0] for word in words), lines[0]
    assert not mark.exists(), "it installed something before stopping"


def went_on(proc, mark: Path) -> bool:
    """Past the checks: it installed (as root) or re-ran itself with sudo (not root)."""
    return (proc.returncode == INSTALLED and mark.exists()) or proc.returncode == ELEVATED


def test_a_machine_that_meets_every_prerequisite_goes_on_to_install(stubs):
    proc = bootstrap(stubs)
    assert went_on(proc, stubs[2]), (proc.returncode, proc.stderr)
    assert "bootstrap:" not in proc.stderr


def test_a_python_older_than_requires_python_stops_before_installing(stubs):
    stopped_with_one_line(bootstrap(stubs, python="3.10"), stubs[2], "Python 3.10", "3.11")


def test_a_kernel_without_send_zc_stops_before_installing(stubs):
    stopped_with_one_line(bootstrap(stubs, kernel="5.15.0-91-generic"), stubs[2], "5.15.0-91-generic", "6.0")


def test_a_kernel_before_6_2_is_told_the_copied_share_stays_unknown_and_goes_on(stubs):
    proc = bootstrap(stubs, kernel="6.1.0-13-amd64")
    assert went_on(proc, stubs[2]), (proc.returncode, proc.stderr)
    assert len(proc.stderr.splitlines()) == 1 and "copied share" in proc.stderr


def test_a_system_other_than_debian_or_ubuntu_stops(stubs):
    stopped_with_one_line(bootstrap(stubs, release='ID=fedora\nVERSION_ID="40"\n'), stubs[2], "Debian or Ubuntu",
                          "fedora")


def test_neither_root_nor_sudo_stops(stubs):
    stopped_with_one_line(bootstrap(stubs, uid="1000", with_sudo=False), stubs[2], "root", "sudo")


def test_disabled_io_uring_stops(stubs):
    stopped_with_one_line(bootstrap(stubs, io_uring_disabled="2"), stubs[2], "io_uring", "disabled")


def test_a_single_cpu_stops(stubs):
    stopped_with_one_line(bootstrap(stubs, cpus="1"), stubs[2], "2 CPUs", "has 1")


def test_without_python_the_release_must_ship_a_new_enough_one(stubs):
    stopped_with_one_line(bootstrap(stubs, python=None, release='ID=debian\nVERSION_ID="11"\n'), stubs[2],
                          "debian 11", "3.11")
    stopped_with_one_line(bootstrap(stubs, python=None, release='ID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\n'),
                          stubs[2], "ubuntu 22.04")


def test_ubuntu_and_its_derivatives_pass_the_system_check(stubs):
    assert went_on(bootstrap(stubs, python=None, release='ID=ubuntu\nID_LIKE=debian\nVERSION_ID="24.04"\n'), stubs[2])
    mint = 'ID=linuxmint\nID_LIKE="ubuntu debian"\nVERSION_ID="22"\n'
    assert went_on(bootstrap(stubs, python="3.12", release=mint), stubs[2])


def installed_by(stubs, step: str) -> set[str]:
    """The packages `bootstrap.sh STEP` asks apt-get to install (a stub that records them, then
    stops the script as the marking stub does)."""
    tmp_path, bin_dir, _ = stubs
    asked = tmp_path / f"asked-{step}"
    (bin_dir / "apt-get").write_text(
        "#!/bin/sh\n"
        '[ "$1" = update ] && exit 0\n'
        f'for arg in "$@"; do echo "$arg"; done > {asked}\n'
        f"exit {INSTALLED}\n")
    proc = bootstrap(stubs, step=step)
    assert proc.returncode == INSTALLED, proc.stderr
    return {line for line in asked.read_text().splitlines() if not line.startswith("-") and line != "install"}


def test_run_installs_what_the_bench_needs_and_test_adds_the_suites_tools(stubs):
    run, test = installed_by(stubs, "run"), installed_by(stubs, "test")
    assert {"mmdebstrap", "python3-venv", "python3-apt", "git"} <= run
    # the suite's own tools (the native server's build tools and wrk, a headless browser for
    # report.html, clang for ASan and the fuzzer, sshd and sudo for the lab host) are not
    # installed for a bench: it builds the server in its image
    only_tests = {"build-essential", "liburing-dev", "wrk", "curl", "chromium", "clang", "openssh-server",
                  "sudo", "nghttp2-client"}
    assert not run & only_tests and test == run | only_tests


def locked_entry(package: str) -> list[str]:
    """bootstrap.sh's locked_entry PACKAGE, run on its own."""
    script = ROOT / "bootstrap.sh"
    function = subprocess.run(["sed", "-n", "/^locked_entry()/,/^}/p", str(script)], capture_output=True,
                              text=True, check=True).stdout
    proc = subprocess.run(["bash", "-c", f'{function}\nlocked_entry "$1"', "-", package], cwd=ROOT,
                          capture_output=True, text=True, check=True)
    return proc.stdout.splitlines()


@pytest.mark.parametrize("package", ["uv", "pip", "wcmatch"])
def test_the_lock_entry_bootstrap_installs_uv_from_is_that_package_with_every_hash(package):
    """uv is installed from its own entry of requirements.lock, hash-checked, before it installs
    the rest: the entry must be that package's pin and all its hashes, and nothing of the next."""
    lock = (ROOT / "requirements.lock").read_text().splitlines()
    start = next(i for i, line in enumerate(lock) if line.startswith(f"{package}=="))
    end = next(i for i in range(start + 1, len(lock)) if not lock[i].startswith("    --hash="))
    entry = locked_entry(package)
    assert entry == lock[start:end] and len(entry) >= 2
    assert entry[-1].startswith("    --hash=") and not entry[-1].endswith("\\")
