"""`--values`: each load and store carries the value it moved, exactly (QEMU's plugin API gives it from 9.2)."""

from __future__ import annotations

import pytest
from guestlib import ARCHES, guest, record, symbols

import memtap
from memtap.trace.layout import KIND_NAMES

PATTERN = 0x0807060504030201   # what every arch's `seq` stores, then loads back


@pytest.mark.parametrize("arch", ARCHES)
def test_seq_values(tmp_path, arch):
    buf = symbols(guest(arch, "seq"))["mt_buf"]
    path = tmp_path / "seq.trace"
    proc = record(path, arch, "seq", "--values", "--start-on-marker")
    assert proc.returncode == 0, proc.stderr
    trace = memtap.open(path)
    assert trace.info["values"] is True
    got = [(KIND_NAMES[r["kind"]], int(r["vaddr"]), int(r["size"]), int(r["value"]))
           for r in trace.records(kinds="load,store")]
    want = []
    for kind in ("store", "load"):
        for size, off in ((1, 0), (2, 2), (4, 4), (8, 8)):
            want.append((kind, buf + off, size, PATTERN & ((1 << (8 * size)) - 1)))
    assert got == want


def test_values_off_by_default(tmp_path):
    path = tmp_path / "seq.trace"
    assert record(path, "riscv64", "seq", "--start-on-marker").returncode == 0
    trace = memtap.open(path)
    assert trace.info["values"] is False
    assert int(trace.records(kinds="load,store")["value"].max()) == 0


def test_sixteen_byte_values(tmp_path):
    """AArch64 `str q0` / `ldr q1`: one 16-byte access each, both halves of the value kept."""
    elf = guest("aarch64", "wide")
    sym = symbols(elf)
    path = tmp_path / "wide.trace"
    proc = record(path, "aarch64", "wide", "--values", "--start-on-marker")
    assert proc.returncode == 0, proc.stderr
    recs = memtap.open(path).records(kinds="load,store")
    got = [(KIND_NAMES[r["kind"]], int(r["pc"]), int(r["vaddr"]), int(r["size"]), int(r["value"]),
            int(r["value_hi"])) for r in recs]
    lo, hi = 0x1122334455667788, 0x99AABBCCDDEEFF00
    assert got == [("store", sym["wide_store"], sym["wide_buf"], 16, lo, hi),
                   ("load", sym["wide_load"], sym["wide_buf"], 16, lo, hi)]
