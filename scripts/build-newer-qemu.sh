#!/usr/bin/env bash
# Build a QEMU >= 10.2 (plugin API 5 with translate_vaddr, and discontinuity callbacks) from Debian's own source
# package of a newer suite, for the tests of those features: Debian 12 and 13 ship only QEMU 10.0. It takes the
# newest 10.2.x the mirror serves from unstable or trixie-backports (MEMTAP_NEWER_QEMU_SERIES, else any newer), and
# builds only the system emulators the tests use (MEMTAP_NEWER_QEMU_TARGETS: x86_64 riscv64 aarch64), TCG with
# plugins and little else, into a prefix outside the git tree: ~/.cache/memtap/qemu-<version> (MEMTAP_CACHE
# replaces ~/.cache/memtap), and ~/.cache/memtap/qemu-newer links to it. The source comes through a private apt
# configuration in a scratch directory, so the machine's apt set-up is not changed; apt checks the files against
# the suite's signed index, and dpkg-source against the .dsc's checksums. The mirror is the machine's own
# (scripts/debian-mirror.sh). Idempotent: does nothing when the prefix already holds every emulator. Prints the
# bin directory last. Run as root (or with sudo) after scripts/setup-system.sh.
set -euo pipefail

cache="${MEMTAP_CACHE:-$HOME/.cache/memtap}"
targets="${MEMTAP_NEWER_QEMU_TARGETS:-x86_64 riscv64 aarch64}"
suites="unstable trixie-backports"
minimum="10.2"
series="${MEMTAP_NEWER_QEMU_SERIES:-10.2}"   # the series the tests were written against

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

have_all() {
    local t
    for t in $targets; do [ -x "$1/bin/qemu-system-$t" ] || return 1; done
}

if [ -L "$cache/qemu-newer" ] && have_all "$cache/qemu-newer"; then
    echo "$cache/qemu-newer/bin"
    exit 0
fi

. /etc/os-release
codename="${VERSION_CODENAME:-}"
. "$(dirname "$0")/debian-mirror.sh"
mirror="$(debian_mirror | head -n 1)"
if [ -z "$mirror" ]; then
    echo "build-newer-qemu: cannot find the Debian mirror in /etc/apt/sources.list*" >&2
    exit 1
fi

# Build dependencies. Meson >= 1.5 comes from bookworm-backports on Debian 12 (set up by setup-system.sh).
apt_target=()
if [ "$codename" = "bookworm" ]; then apt_target=(-t bookworm-backports); fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -qq --no-install-recommends "${apt_target[@]}" \
    meson ninja-build flex bison pkg-config dpkg-dev xz-utils libglib2.0-dev libfdt-dev zlib1g-dev >/dev/null

work="$cache/build-newer-qemu"
mkdir -p "$work/apt/lists/partial" "$work/apt/cache" "$work/apt/parts" "$work/src"
for suite in $suites; do
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main"
done >"$work/apt/sources.list"
apt_private=(-o Dir::Etc::SourceList="$work/apt/sources.list" -o Dir::Etc::SourceParts="$work/apt/parts"
             -o Dir::State::Lists="$work/apt/lists" -o Dir::Cache="$work/apt/cache"
             -o Dir::Etc::Parts="$work/apt/parts" -o APT::Sandbox::User=root)
apt-get "${apt_private[@]}" update -qq

# The newest source version of the tested series ($series), else the newest >= $minimum, whose files the mirror
# still serves (an index can list a version the pool has already dropped).
mapfile -t versions < <(apt-cache "${apt_private[@]}" showsrc qemu \
    | awk '/^Package: /{p=$2} /^Version: /{if (p=="qemu") print $2}' | sort -u | while read -r v; do
        if dpkg --compare-versions "$v" ge "1:$minimum"; then
            case "$v" in "1:$series".*) echo "0 $v" ;; *) echo "1 $v" ;; esac
        fi
    done | sort -k1,1 -k2,2rV | cut -d' ' -f2)
cd "$work/src"
version=""
for v in "${versions[@]}"; do
    if apt-get "${apt_private[@]}" source --download-only -qq "qemu=$v" >/dev/null 2>&1; then version="$v"; break; fi
done
if [ -z "$version" ]; then
    echo "build-newer-qemu: no QEMU >= $minimum source package can be downloaded from $mirror ($suites)" >&2
    exit 1
fi
upstream="${version#*:}"
upstream="${upstream%%+*}"
upstream="${upstream%%-*}"
prefix="$cache/qemu-$upstream"
if ! have_all "$prefix"; then
    rm -rf "qemu-$upstream"
    # The distribution's python3, meson and ninja, not ones a user put first in PATH (meson must see the former).
    export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
    # It checks the files' checksums; the .dsc's signature it cannot check without debian-keyring (apt already
    # checked the files against the signed index), hence its warning in the log.
    log="$work/build.log"
    if ! dpkg-source -x "qemu_${version#*:}.dsc" "qemu-$upstream" >"$log" 2>&1; then
        cat "$log" >&2
        exit 1
    fi
    target_list="$(for t in $targets; do printf '%s-softmmu,' "$t"; done)"
    mkdir -p "qemu-$upstream/build"
    cd "qemu-$upstream/build"
    # The firmware (SeaBIOS, option ROMs) is the one the distribution's QEMU installed; the +ds source has none.
    if ! { ../configure --prefix="$prefix" --target-list="${target_list%,}" --python=/usr/bin/python3 \
               --without-default-features --enable-tcg --enable-plugins --enable-fdt=system \
               --disable-docs --disable-debug-info --disable-download --disable-install-blobs \
               --firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu &&
           make -j"$(nproc)" && make install; } >>"$log" 2>&1; then
        tail -n 30 "$log" >&2
        echo "build-newer-qemu: building QEMU $upstream failed; the whole log is $log" >&2
        exit 1
    fi
    cd "$work/src"
    rm -rf "qemu-$upstream"
fi
ln -sfn "$prefix" "$cache/qemu-newer"
echo "$cache/qemu-newer/bin"   # the same path on the first run and on later ones (tests compare it)
