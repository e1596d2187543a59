#!/usr/bin/env bash
# The README's second command: set up a fresh machine, install memtap with its test dependencies, build a newer
# QEMU, the Linux guests' kernels and every example guest, then run the linters and the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh test
# A QEMU >= 10.2 for the tests of its plugin API additions; with the variable set, they fail if it is missing.
MEMTAP_NEWER_QEMU="$(bash scripts/build-newer-qemu.sh | tail -n 1)"
export MEMTAP_NEWER_QEMU
# Kernels for the Linux guests (guest/linux/); with the variable set, their tests fail if one is missing.
bash scripts/build-linux.sh
export MEMTAP_LINUX=1
.venv/bin/python guest/build.py
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
