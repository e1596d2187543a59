#!/usr/bin/env bash
# The README's first command: set up a fresh machine, build the bundled example guest, record it with memtap,
# and print the trace's statistics.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
.venv/bin/python guest/build.py --arch riscv64 --program demo
mkdir -p out
.venv/bin/memtap record -o out/demo.trace -- \
    $(.venv/bin/python guest/build.py --print-command riscv64 demo)
.venv/bin/memtap stats out/demo.trace
