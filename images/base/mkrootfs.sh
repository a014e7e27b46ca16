#!/bin/sh
# Build the zcbench base root filesystem (Debian's minbase) and pack it as a tarball for
# `docker import` (no container registry is needed or used).
#   mkrootfs.sh SUITE MIRROR SOURCES_FILE OUT_TAR
# SOURCES_FILE is the apt sources list the image keeps (derived from the host's mirrors by
# zcbench/images.py), so later `apt-get install` in the Dockerfiles uses the same mirror.
set -eu
suite=$1 mirror=$2 sources=$3 out=$4

work=$(mktemp -d "${out}.work.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

# mmdebstrap (apt fetches in parallel and unpacks once) made this rootfs in 10-15 s where
# debootstrap took 23-29 s, and the rootfs is what a fresh machine's first image build waits for.
# With the merged-/usr hook its package set is debootstrap's minbase exactly (without it, usrmerge
# pulls perl in). debootstrap stays the fallback for a host set up before mmdebstrap was needed.
# The apt lists are kept until the Release date below is read.
hooks=/usr/share/mmdebstrap/hooks
if command -v mmdebstrap >/dev/null; then
    set -- --variant=minbase --skip=cleanup/apt/lists
    [ ! -d "$hooks/merged-usr" ] || set -- "$@" --hook-dir="$hooks/merged-usr"
    mmdebstrap "$@" "$suite" "$rootfs" "$mirror" >"$work/rootfs.log" 2>&1
else
    debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$work/rootfs.log" 2>&1
fi || {
    tail -n 30 "$work/rootfs.log" >&2
    exit 1
}

# Where and when this rootfs came from (images.py turns it into labels of every image): the
# archive's Release date pins down which package versions a suite name meant that day.
release=$(ls "$rootfs"/var/lib/apt/lists/*_dists_"${suite}"_*Release 2>/dev/null | head -n1)
mkdir -p "$rootfs/etc/zcbench"
cat >"$rootfs/etc/zcbench/debootstrap.env" <<EOF
DEBIAN_SUITE=$suite
DEBIAN_MIRROR=$mirror
DEBOOTSTRAP_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
DEBIAN_RELEASE_DATE=$(sed -n 's/^Date: //p' "${release:-/dev/null}" | head -n1)
EOF

rm -f "$rootfs/etc/apt/sources.list"
cp "$sources" "$rootfs/etc/apt/sources.list.d/zcbench.list"
# Image builds never need the docs, the package caches or recommended packages.
cat >"$rootfs/etc/apt/apt.conf.d/90zcbench" <<'CONF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Acquire::Check-Valid-Until "false";
CONF
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/tmp/* \
    "$rootfs"/var/log/*.log "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
# Container runtimes provide these; a stale copy from the build host must not leak in.
: >"$rootfs/etc/resolv.conf"
: >"$rootfs/etc/hostname"

tar --numeric-owner --xattrs -C "$rootfs" -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$out"
