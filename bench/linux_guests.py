"""Wall time of the Linux test guests (guest/linux/): boot, run one program, power off, under plain QEMU and under
`memtap record` with the options tests/test_linux_guests.py uses, per arch and program. Prints a Markdown table.

    .venv/bin/python bench/linux_guests.py [--arch ARCH ...] [--program NAME ...] [--reps N]

Needs the kernels scripts/build-linux.sh built. The median of --reps runs (default 1) is reported, with the load
average at the start, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The options each program is recorded with in tests/test_linux_guests.py.
RECORD_OPTIONS = {
    "falseshare": ["--start-on-marker", "--events", "store"],
    "syscalls": ["--start-on-marker", "--events", "fetch"],
    "twoproc": ["--start-on-marker", "--events", "store", "--values"],
    "sysheavy": ["--start-on-marker", "--events", "fetch"],
}


def _linux_build():
    spec = importlib.util.spec_from_file_location("linux_build", ROOT / "guest" / "linux" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _timed(cmd: list[str]) -> float:
    start = time.monotonic()
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    took = time.monotonic() - start
    if r.returncode != 0 or "exited with status 0" not in r.stdout:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return took


def main() -> int:
    lb = _linux_build()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", action="append", choices=lb.ARCHES)
    ap.add_argument("--program", action="append", choices=lb.PROGRAMS)
    ap.add_argument("--reps", type=int, default=1)
    opts = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| arch | program | plain QEMU (s) | memtap record (s) | record options |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        trace = str(Path(tmp) / "run.trace")
        for arch in opts.arch or lb.ARCHES:
            for name in opts.program or lb.PROGRAMS:
                cmd = lb.qemu_command(arch, name, build=False)
                options = RECORD_OPTIONS.get(name, ["--start-on-marker"])
                record = [sys.executable, "-m", "memtap.cli.main", "record", "-o", trace, *options, "--", *cmd]
                plain = statistics.median(_timed(cmd) for _ in range(opts.reps))
                traced = statistics.median(_timed(record) for _ in range(opts.reps))
                print(f"| {arch} | {name} | {plain:.1f} | {traced:.1f} | `{' '.join(options)}` |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
