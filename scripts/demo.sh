#!/usr/bin/env bash
# The README's first command: set up a fresh machine, build the bundled example guest (a bare-metal RISC-V program
# that computes a CRC32 between MEMTAP_START and MEMTAP_STOP markers), record it, and print the trace's statistics.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap.sh
.venv/bin/python guest/build.py --arch riscv64 --program demo >/dev/null
mkdir -p out
.venv/bin/memtap record -o out/demo.trace -- \
    qemu-system-riscv64 -M virt -bios none -m 128M -nographic -no-reboot -kernel guest/build/riscv64/demo.elf
.venv/bin/memtap stats out/demo.trace
