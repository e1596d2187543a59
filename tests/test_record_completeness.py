"""Completeness, in the spirit of QEMU's own mem test plugin: every access to a region is traced, nothing else is.

The `region` guest makes a known sequence of accesses to the 4 KiB `mt_region`: 512 u64 stores, 1024 u32 loads,
256 u8 stores to every 16th byte, then 512 u64 loads. The trace must hold exactly these, in this order (on 32-bit
arches without 8-byte integer accesses, each u64 access is exactly its two u32 halves, in either order).
"""

from __future__ import annotations

import numpy as np
import pytest
from guestlib import ALL_ARCHES, guest, record, symbols

import memtap
from memtap.trace.layout import KIND_NAMES

# 32-bit arches without an 8-byte integer access: the compiler splits each volatile u64 access into two u32
# accesses, in an order of its choosing (i386 stores the high half first, riscv32 the low half).
SPLIT_U64 = {"i386", "riscv32", "ppc"}


def u64_access(kind: str, addr: int, split: bool) -> list[tuple[str, int, int]]:
    return [(kind, addr, 4), (kind, addr + 4, 4)] if split else [(kind, addr, 8)]


def expected(region: int, split: bool = False) -> list[tuple[str, int, int]]:
    return (
        [a for i in range(512) for a in u64_access("store", region + 8 * i, split)]
        + [("load", region + 4 * i, 4) for i in range(1024)]
        + [("store", region + 16 * i, 1) for i in range(256)]
        + [a for i in range(512) for a in u64_access("load", region + 8 * i, split)]
    )


def halves_in_address_order(got: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """The two u32 halves of each split u64 access (the first and the last 1024 records) in address order."""
    def pairs(part):
        return [r for i in range(0, len(part), 2) for r in sorted(part[i : i + 2], key=lambda r: r[1])]

    return pairs(got[:1024]) + got[1024:-1024] + pairs(got[-1024:])


@pytest.mark.parametrize("arch", ALL_ARCHES)
def test_region_every_access_and_nothing_else(tmp_path, arch):
    region = symbols(guest(arch, "region"))["mt_region"]
    trace_path = tmp_path / "region.trace"
    proc = record(trace_path, arch, "region", "--start-on-marker", "--events", "load,store")
    assert proc.returncode == 0, proc.stderr
    trace = memtap.open(trace_path)
    recs = trace.records()
    inside = recs[(recs["vaddr"] >= region) & (recs["vaddr"] < region + 4096)]
    columns = zip(inside["kind"], inside["vaddr"], inside["size"], strict=True)
    got = [(KIND_NAMES[k], int(a), int(s)) for k, a, s in columns]
    split = arch in SPLIT_U64
    assert (halves_in_address_order(got) if split else got) == expected(region, split)
    # The END totals agree with what the file holds: nothing dropped between plugin and file.
    kinds, counts = np.unique(recs["kind"], return_counts=True)
    assert {KIND_NAMES[k]: int(c) for k, c in zip(kinds, counts, strict=True)} == {
        k: v for k, v in trace.end["records"].items() if v
    }
