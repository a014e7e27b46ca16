#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine: install what zcbench needs, then run it.
#   ./bootstrap.sh run    provision the host, build the images, run the default bench, render the report
#   ./bootstrap.sh test   provision the host (Docker engine included), run the whole test suite
#   ./bootstrap.sh deps   only install the build tools and the Python environment
set -euo pipefail

# Prerequisites, checked before anything is installed; each unmet one stops the script with one
# line on stderr. Where each fact is read can be overridden (tests/unit/test_bootstrap.py stubs
# them): ZCBENCH_OS_RELEASE (file), ZCBENCH_KERNEL_RELEASE, ZCBENCH_PYTHON (interpreter),
# ZCBENCH_UID, ZCBENCH_IO_URING_DISABLED (file), ZCBENCH_CPUS.
check_prerequisites() {
    local here os_release kernel python uid disabled_file cpus
    here="$(dirname "$(readlink -f "$0")")"
    os_release="${ZCBENCH_OS_RELEASE:-/etc/os-release}"
    kernel="${ZCBENCH_KERNEL_RELEASE:-$(uname -r)}"
    python="${ZCBENCH_PYTHON:-python3}"
    uid="${ZCBENCH_UID:-$(id -u)}"
    disabled_file="${ZCBENCH_IO_URING_DISABLED:-/proc/sys/kernel/io_uring_disabled}"
    cpus="${ZCBENCH_CPUS:-$(getconf _NPROCESSORS_ONLN)}"
    unmet() { echo "bootstrap: $*" >&2; exit 1; }

    local id="" like="" version=""
    if [ -r "$os_release" ]; then
        id=$(. "$os_release" && echo "${ID:-}")
        like=$(. "$os_release" && echo "${ID_LIKE:-}")
        version=$(. "$os_release" && echo "${VERSION_ID:-}")
    fi
    case " $id $like " in
        *" debian "* | *" ubuntu "*) ;;
        *) unmet "needs Debian or Ubuntu (it installs with apt); this is '${id:-unknown}' ($os_release)" ;;
    esac
    if [ "$uid" -ne 0 ] && ! command -v sudo >/dev/null; then
        unmet "needs root: run it as root, or install sudo"
    fi

    # SEND_ZC came with Linux 6.0, IORING_SEND_ZC_REPORT_USAGE (the copied share) with 6.2.
    local major minor
    major=$(echo "$kernel" | sed -n 's/^\([0-9]*\)\.\([0-9]*\).*/\1/p')
    minor=$(echo "$kernel" | sed -n 's/^\([0-9]*\)\.\([0-9]*\).*/\2/p')
    [ -n "$major" ] && [ -n "$minor" ] || unmet "cannot read the kernel version from '$kernel'"
    if [ "$major" -lt 6 ]; then
        unmet "kernel $kernel lacks io_uring zero-copy send (IORING_OP_SEND_ZC needs Linux >= 6.0)"
    fi
    if [ "$major" -eq 6 ] && [ "$minor" -lt 2 ]; then
        echo "bootstrap: kernel $kernel < 6.2: zero-copy sends run, but whether the kernel copied them (the copied share) stays unknown" >&2
    fi
    if [ "$(cat "$disabled_file" 2>/dev/null || echo 0)" = 2 ]; then
        unmet "io_uring is disabled on this kernel (kernel.io_uring_disabled = 2)"
    fi
    if [ "$cpus" -lt 2 ]; then  # the server and wrk each get a core of their own
        unmet "needs at least 2 CPUs (the server and wrk run on different cores); this machine has $cpus"
    fi

    # The oldest Python zcbench runs on: pyproject.toml's requires-python. Without a python3,
    # apt installs the release's own: 3.11 from Debian 12 and Ubuntu 23.04 on.
    local needed have
    needed=$(sed -n 's/^requires-python = ">=\([0-9.]*\)".*/\1/p' "$here/pyproject.toml")
    if command -v "$python" >/dev/null; then
        have=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        if [ "$(printf '%s\n%s\n' "$needed" "$have" | sort -V | head -n1)" != "$needed" ]; then
            unmet "Python $have is older than $needed, the oldest zcbench runs on"
        fi
    elif ! { [ "$id" = debian ] && [ "${version%%.*}" -ge 12 ]; } 2>/dev/null \
         && ! { [ "$id" = ubuntu ] && [ "$(echo "$version" | tr -d .)" -ge 2304 ]; } 2>/dev/null; then
        unmet "no $python here, and this release's ($id $version) is older than $needed"
    fi
}

check_prerequisites

if [ "$(id -u)" -ne 0 ]; then
    exec sudo -E "$0" "$@"
fi
cd "$(dirname "$(readlink -f "$0")")"

# What every step needs: Python and its venv, mmdebstrap for the base image, git for the
# manifest's commit, iproute2 for the veth path, python3-apt for Ansible's apt module (run by
# `invoke provision` with the system Python). Nothing is compiled on the host for a bench: the
# server is built inside its image, cffi binds in ABI mode, and every locked Python package is a
# wheel. The Docker engine, ethtool and the host tuning are installed by `invoke provision`.
APT_PACKAGES=(
    python3 python3-venv iproute2 mmdebstrap git ca-certificates python3-apt
)
# What only the test suite needs; `run` leaves them out (on a minimal Debian 12 root, `run`'s
# install took 12.4 s, 15.1 s with the build tools, wrk and curl it no longer takes, `test`'s 35 s).
TEST_APT_PACKAGES=(
    build-essential liburing-dev wrk curl  # the native server built and run here, under load
    clang  # the ASan/UBSan build and the parser's fuzz target
    nghttp2-client
    openssh-server sudo  # tests/lab: a second host on this machine, reached over SSH with become
    chromium  # the tests open report.html in it, headless (tests/headless_chromium.py)
)

install_apt_packages() {  # $1: the step (run installs APT_PACKAGES only)
    local packages=("${APT_PACKAGES[@]}")
    [ "$1" = run ] || packages+=("${TEST_APT_PACKAGES[@]}")
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    [ "$1" != run ] || return 0
    # libFuzzer's runtime ships in a package named after clang's major version.
    local major
    major=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n1)
    apt-get install -y -qq --no-install-recommends "libclang-rt-${major}-dev" >/dev/null 2>&1 \
        || apt-get install -y -qq --no-install-recommends "libclang-common-${major}-dev" >/dev/null
}

# One package's entry of requirements.lock (its pin and hashes): a requirements file of its own.
locked_entry() {  # $1: the package's name as the lock spells it
    awk -v name="$1" 'index($0, name "==") == 1 {on = 1} on && /^ *#/ {exit} on {print}' requirements.lock
}

install_python_env() {
    [ -x .venv/bin/python ] || python3 -m venv .venv
    # Exactly the pinned, hash-checked packages of requirements.lock (pip and the build backend
    # included; `invoke lock` refreshes it), then zcbench itself without re-resolving anything.
    # uv, pinned in the same lock, installs the 70 wheels in about 1 s where pip takes 12 (it
    # fetches them one after another); uv reads no pip.conf, so it takes PyPI (or $UV_INDEX_URL)
    # and the system's trust store (where a TLS-intercepting proxy's CA lives). Where uv cannot,
    # pip installs it all, as before. Neither compiles the packages' files up front: Python does,
    # when a module is first imported (compiling everything took 9 s of pip's 26 and bought
    # nothing measurable).
    local pip=(.venv/bin/python -m pip install -q --disable-pip-version-check --no-compile --no-deps)
    local uv=(.venv/bin/uv pip install -q --python .venv/bin/python --native-tls --no-deps)
    if ! { "${pip[@]}" --require-hashes -r <(locked_entry uv) \
           && "${uv[@]}" --require-hashes -r requirements.lock \
           && "${uv[@]}" --no-build-isolation -e .; }; then
        echo "bootstrap: uv could not install requirements.lock; pip installs it" >&2
        "${pip[@]}" --require-hashes -r requirements.lock
        "${pip[@]}" --no-build-isolation -e .
    fi
    .venv/bin/python -m pip check >/dev/null || {
        .venv/bin/python -m pip check >&2
        echo "bootstrap: .venv does not match requirements.lock (delete .venv and rerun)" >&2
        exit 1
    }
}

# The base image's rootfs (mmdebstrap, 10-15 s from the mirror) needs neither the Python
# environment nor the Docker engine (measure.rootfs is standard library only): it is made with the
# system's Python while both are installed, and not waited for. The image build that follows
# (`invoke build`, or the test suite's, beside its first tests) waits for it if it is still being
# made (one rootfs at a time per machine) and then only imports it. Its output is kept in a
# file that goes when it succeeds; if it fails, that build makes the rootfs again and says why.
start_making_the_rootfs() {
    local log
    log=$(mktemp --suffix=.zcbench-rootfs.log)
    (python3 -m zcbench.measure.rootfs >"$log" 2>&1 && rm -f "$log") &
}

case "${1:-deps}" in  # a step it does not know stops it before it installs anything
    run | test | deps) ;;
    *)    echo "bootstrap: unknown step '$1' (expected run, test or deps)" >&2; exit 2 ;;
esac

install_apt_packages "${1:-deps}"
[ "${1:-deps}" = deps ] || start_making_the_rootfs
install_python_env

# `run`: the Docker engine first, then the images the default bench runs (not nginx, the reference
# peer: `invoke build` makes it when asked) built beside the rest of the host's tuning, which no
# build needs (the NIC role changes only the settings asked for). On a machine without the engine,
# provisioning took 26.5 s (installing the engine 10 s of it) and the images 14 s after it.
provision_and_build() {
    .venv/bin/invoke provision --tags docker || exit 1
    local rest build
    rest=$(.venv/bin/python -c 'from zcbench.host.inventory import ROLES
print(",".join(role for role in ROLES if role != "docker"))')
    .venv/bin/invoke build --only server,loadgen &
    build=$!
    # a background job ignores Ctrl-C: stop the build with the script, however it ends
    trap 'status=$?; kill "$build" 2>/dev/null; wait "$build" 2>/dev/null || true; exit "$status"' EXIT
    trap 'exit 130' INT TERM
    .venv/bin/invoke provision --tags "$rest" || exit 1
    wait "$build" || exit 1
    trap - EXIT INT TERM
}

case "${1:-deps}" in
    run)  # then the bench, which renders its report and prints where it is
        provision_and_build
        exec .venv/bin/invoke bench ;;
    test)  # the suite builds the images beside its first tests (zcbench.devtools.testing)
        .venv/bin/invoke provision || exit 1
        exec .venv/bin/invoke test ;;
    deps) echo "bootstrap: dependencies installed; activate with: source .venv/bin/activate" ;;
esac
