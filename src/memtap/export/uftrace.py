"""A uftrace data directory of function entries and exits per vCPU, laid out as QEMU's contrib uftrace plugin
writes it, which ``uftrace replay``, ``report``, ``graph``, ``info`` and ``dump`` read:

* ``info``: the 40-byte header (magic ``Ftrace!``, version 4, little-endian, 64-bit, feature and info masks,
  maximum stack depth) and the ``key:value`` lines those masks announce;
* ``task.txt``: a session and a task per vCPU, task id (vCPU + 1) * 100 as QEMU's plugin numbers them;
* ``sid-0.map``: the code ranges of the ELF files (uftrace names functions from the ELF file at that path) and
  a ``[stack]`` at the top of the address space, so that no guest address looks like a kernel one to uftrace;
* ``<tid>.dat``: 16-byte records {u64 time; u64 type:2 more:1 magic:3 (5) depth:10 address:48}, type 0 entry
  and 1 exit, the address the function's first instruction.

Times are the records' ``--time`` (one instruction or one position is one nanosecond to uftrace).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np

from memtap.errors import UserError
from memtap.export.calls import CallTracker
from memtap.export.stream import Options, Source, Warn

NAME = "uftrace"
SUMMARY = "uftrace data directory of function entries and exits per vCPU"
MAGIC = b"Ftrace!\0"
# The header QEMU's plugin writes: version 4, header size 40, little endian, 64-bit, features PLTHOOK,
# TASK_SESSION, SYM_REL_ADDR, MAX_STACK, AUTO_ARGS and 0x1000, every info section but one, max stack 1024.
HEADER = struct.pack("<8sIHBBQQH6x", MAGIC, 4, 40, 1, 2, 0x1263, 0x7BFF, 1024)
RECORD = np.dtype([("time", "<u8"), ("data", "<u8")])
RECORD_MAGIC = 5
TID_SCALE = 100


def tid(vcpu: int) -> int:
    return (vcpu + 1) * TID_SCALE


def info_text(tids: list[int]) -> str:
    """The info sections the header's info mask announces, with what a guest recording can say."""
    lines = ["exename:", "build_id:0000000000000000000000000000000000000000", "exit_status:", "cmdline:",
             "cpuinfo:lines=2", "cpuinfo:nr_cpus=", "cpuinfo:desc=", "meminfo:", "osinfo:lines=3", "osinfo:kernel=",
             "osinfo:hostname=", "osinfo:distro=", "taskinfo:lines=2", f"taskinfo:nr_tid={len(tids)}",
             "taskinfo:tids=" + ",".join(map(str, tids)), "usageinfo:lines=6", "usageinfo:systime=",
             "usageinfo:usrtime=", "usageinfo:ctxsw=", "usageinfo:maxrss=", "usageinfo:pagefault=",
             "usageinfo:iops=", "loadinfo:", "record_date:", "elapsed_time:", "pattern_type:regex",
             "uftrace_version:", "utc_offset:"]
    return "".join(f"{line}\n" for line in lines)


def map_text(ranges: list[tuple[int, int, Path]]) -> str:
    """sid-0.map: each ELF file's code (page-aligned) and the fake stack QEMU's plugin puts at the top."""
    out = []
    for lo, hi, path in sorted(ranges):
        lo &= ~0xFFF
        hi = (hi + 0xFFF) & ~0xFFF
        out.append(f"{lo:012x}-{hi:012x} r-xp 00000000 00:00 0 {path}\n")
    out.append("ffffffffffff-ffffffffffff rw-p 00000000 00:00 0 [stack]\n")
    return "".join(out)


def records(ev: np.ndarray) -> np.ndarray:
    """Call events as uftrace records."""
    out = np.empty(len(ev), RECORD)
    out["time"] = ev["time"]
    addr = ev["addr"] & np.uint64((1 << 48) - 1)
    out["data"] = (ev["type"].astype(np.uint64) | np.uint64(RECORD_MAGIC << 3)
                   | (np.minimum(ev["depth"], 1023).astype(np.uint64) << np.uint64(6)) | (addr << np.uint64(16)))
    return out


@contextlib.contextmanager
def data_directory(out: str):
    """A temporary directory beside ``out`` that replaces it when complete (an earlier uftrace data directory
    only: anything else at that path is refused)."""
    path = Path(out)
    if path.exists():
        if not path.is_dir() or (any(path.iterdir()) and not (path / "info").is_file()):
            raise UserError(f"cannot write {out}: exists and is not a uftrace data directory")
    parent = path.parent
    if not parent.is_dir():
        raise UserError(f"cannot write {out}: directory {parent} does not exist")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write(source: Source, out: str, opts: Options, warn: Warn) -> int:
    """Write the directory; returns the entry and exit records written."""
    if out == "-":
        raise UserError("uftrace writes a directory: give its name with -o (e.g. -o uftrace.data)")
    tracker = CallTracker(NAME, source, opts, warn)
    written = 0
    with data_directory(out) as tmp, contextlib.ExitStack() as stack:
        files = {}
        for vcpu, ev, _ in tracker.events():
            if vcpu not in files:
                files[vcpu] = stack.enter_context(open(tmp / f"{tid(vcpu)}.dat", "wb"))
            files[vcpu].write(records(ev).tobytes())
            written += len(ev)
        stack.close()
        tids = [tid(v) for v in sorted(files)]
        (tmp / "info").write_bytes(HEADER + info_text(tids).encode())
        (tmp / "task.txt").write_text("".join(
            f'SESS timestamp=0.0 pid={t} sid=0 exename="cpu{t // TID_SCALE - 1}"\n'
            f"TASK timestamp=0.0 tid={t} pid={t}\n" for t in tids))
        ranges = [(lo, hi, image.spec.path.resolve()) for image in tracker.decoder.symbols.images
                  for lo, hi in [(min(r[0] for r in image.exec_ranges), max(r[1] for r in image.exec_ranges))]
                  if image.exec_ranges]
        (tmp / "sid-0.map").write_text(map_text(ranges))
    tracker.finish("they are in no function uftrace can name")
    return written
