#!/usr/bin/env bash
# Install what memtap needs from Debian: QEMU >= 10.0 system emulators that load plugins, the compilers that build
# the plugin and the example guests, libzstd, lcov's genhtml and valgrind's cg_annotate (tests of coverage and
# profile files), chromium (tests open memtap report's page in it, headless), uftrace and protobuf-compiler
# (tests of the uftrace and gem5 exports). On Debian 12 QEMU 10 comes from bookworm-backports, whose mirror is
# derived from the machine's own apt sources (no registry host is written here). Idempotent; run as root.
set -euo pipefail

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

. /etc/os-release
codename="${VERSION_CODENAME:-}"

. "$(dirname "$0")/debian-mirror.sh"

packages=(qemu-system-x86 qemu-system-arm qemu-system-misc qemu-system-ppc
          clang lld llvm libzstd-dev zlib1g-dev gcc python3 python3-venv python3-dev
          lcov valgrind chromium uftrace protobuf-compiler)
apt_target=()

if [ "$codename" = "bookworm" ]; then
    mirror="$(debian_mirror | head -n 1)"
    if [ -z "$mirror" ]; then
        echo "setup-system: cannot find the Debian mirror in /etc/apt/sources.list*" >&2
        exit 1
    fi
    list=/etc/apt/sources.list.d/memtap-bookworm-backports.list
    line="deb $mirror bookworm-backports main"
    if ! grep -qsF "$line" "$list"; then
        echo "$line" | $SUDO tee "$list" >/dev/null
    fi
    apt_target=(-t bookworm-backports)
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${apt_target[@]}" "${packages[@]}" >/dev/null
qemu-system-x86_64 --version | head -n 1
