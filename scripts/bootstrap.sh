#!/usr/bin/env bash
# Everything a fresh Debian 12/13 machine needs before memtap runs: system packages (QEMU >= 10, clang/lld for the
# example guests, libzstd), a virtualenv in .venv, and memtap installed into it with pip (which compiles the
# plugin). Usage: scripts/bootstrap.sh [EXTRAS], e.g. `scripts/bootstrap.sh test`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-system.sh
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
spec="."
if [ -n "${1:-}" ]; then spec=".[$1]"; fi
.venv/bin/python -m pip install -q "$spec"
