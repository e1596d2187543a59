#!/usr/bin/env bash
# Build the Linux test guests' kernels (x86_64, aarch64, riscv64) and fetch busybox, once, outside the git tree.
# Installs Debian's newest linux-source-X.Y the machine's apt offers, the cross compilers with their static glibc
# (gcc-aarch64-linux-gnu, gcc-riscv64-linux-gnu, libc6-dev-*-cross) and the kernel's build tools; downloads
# Debian's busybox-static for amd64, arm64 and riscv64 (from the release's own suite, or trixie on Debian 12,
# where riscv64 is no official architecture) through a private apt configuration in a scratch directory, so the
# machine's apt set-up is not changed (apt checks the .debs against the suite's signed index); then runs
# `guest/linux/build.py kernels`, which builds each kernel into ~/.cache/memtap/linux-<version>-<arch>
# (MEMTAP_CACHE replaces ~/.cache/memtap) unless one built from the same source, compiler and config fragments
# is there. Idempotent. Run as root (or with sudo); MEMTAP_LINUX_ARCHES limits the arches.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${MEMTAP_CACHE:-$HOME/.cache/memtap}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

. /etc/os-release
codename="${VERSION_CODENAME:-}"
. scripts/debian-mirror.sh

newest_source() {
    apt-cache search --names-only '^linux-source-[0-9.]+$' | awk '{print $1}' | sort -V | tail -n 1
}
source_pkg="$(newest_source)"
if [ -z "$source_pkg" ]; then
    $SUDO apt-get update -qq
    source_pkg="$(newest_source)"
fi
if [ -z "$source_pkg" ]; then
    echo "build-linux: apt offers no linux-source-X.Y package" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -qq --no-install-recommends "$source_pkg" \
    gcc libc6-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-riscv64-linux-gnu libc6-dev-riscv64-cross \
    make bc flex bison libelf-dev xz-utils python3 >/dev/null

# busybox-static for the three arches into $cache/busybox/<debian arch>/busybox (with its VERSION beside it).
bb_arches="amd64 arm64 riscv64"
have_busybox() {
    local a
    for a in $bb_arches; do [ -x "$cache/busybox/$a/busybox" ] || return 1; done
}
if ! have_busybox; then
    suite="$codename"
    if [ "$codename" = "bookworm" ]; then suite="trixie"; fi
    mirror="$(debian_mirror | head -n 1)"
    if [ -z "$mirror" ]; then
        echo "build-linux: cannot find the Debian mirror in /etc/apt/sources.list*" >&2
        exit 1
    fi
    work="$cache/busybox-apt"
    rm -rf "$work"
    mkdir -p "$work/lists/partial" "$work/cache" "$work/parts" "$work/debs"
    : >"$work/status"
    echo "deb [arch=${bb_arches// /,} signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" \
        >"$work/sources.list"
    apt_private=(-o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts="$work/parts"
                 -o Dir::Etc::Parts="$work/parts" -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache"
                 -o Dir::State::status="$work/status" -o APT::Architecture="$(dpkg --print-architecture)"
                 -o APT::Architectures="${bb_arches// /,}" -o Acquire::Languages=none -o APT::Sandbox::User=root)
    apt-get "${apt_private[@]}" update -qq
    (cd "$work/debs" && apt-get "${apt_private[@]}" download -qq $(printf 'busybox-static:%s ' $bb_arches))
    for a in $bb_arches; do
        deb="$(ls "$work"/debs/busybox-static_*_"$a".deb)"
        rm -rf "$work/x" "$cache/busybox/$a"
        dpkg-deb -x "$deb" "$work/x"
        mkdir -p "$cache/busybox/$a"
        install -m 0755 "$(find "$work/x" -path '*bin/busybox' -type f | head -n 1)" "$cache/busybox/$a/busybox"
        dpkg-deb -f "$deb" Version >"$cache/busybox/$a/VERSION"
    done
    rm -rf "$work"
fi

arches=()
for a in ${MEMTAP_LINUX_ARCHES:-}; do arches+=(--arch "$a"); done
nice python3 guest/linux/build.py "${arches[@]}" kernels
