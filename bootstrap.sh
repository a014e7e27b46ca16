#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine: install what zcbench needs, then run it.
#   ./bootstrap.sh run    provision the host, build the images, run the default bench, render the report
#   ./bootstrap.sh test   provision the host (Docker engine included), run the whole test suite
#   ./bootstrap.sh deps   only install the build tools and the Python environment
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    exec sudo -E "$0" "$@"
fi
cd "$(dirname "$(readlink -f "$0")")"

# Build and test tools for the native server (the Docker engine, ethtool and the host
# tuning are installed by `invoke provision`, i.e. by the Ansible roles, not here).
APT_PACKAGES=(
    build-essential liburing-dev clang curl wrk nghttp2-client
    python3 python3-venv python3-dev libffi-dev iproute2 debootstrap git ca-certificates
    python3-apt  # Ansible's apt module (run by `invoke provision`) imports it from the system Python
    openssh-server sudo  # tests/lab: a second host on this machine, reached over SSH with become
)

install_apt_packages() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
    # libFuzzer's runtime ships in a package named after clang's major version.
    local major
    major=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n1)
    apt-get install -y -qq --no-install-recommends "libclang-rt-${major}-dev" >/dev/null 2>&1 \
        || apt-get install -y -qq --no-install-recommends "libclang-common-${major}-dev" >/dev/null
}

install_python_env() {
    [ -x .venv/bin/python ] || python3 -m venv .venv
    # Exactly the pinned, hash-checked packages of requirements.lock (pip and the build backend
    # included; `invoke lock` refreshes it), then zcbench itself without re-resolving anything.
    .venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps \
        -r requirements.lock
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
    .venv/bin/python -m pip check >/dev/null || {
        .venv/bin/python -m pip check >&2
        echo "bootstrap: .venv does not match requirements.lock (delete .venv and rerun)" >&2
        exit 1
    }
}

install_apt_packages
install_python_env

case "${1:-deps}" in
    run)  exec .venv/bin/invoke provision build bench report ;;
    test) exec .venv/bin/invoke provision test ;;
    deps) echo "bootstrap: dependencies installed; activate with: source .venv/bin/activate" ;;
    *)    echo "bootstrap: unknown step '$1' (expected run, test or deps)" >&2; exit 2 ;;
esac
