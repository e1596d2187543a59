"""Completeness, in the spirit of QEMU's own mem test plugin: every access to a region is traced, nothing else is.

The `region` guest makes a known sequence of accesses to the 4 KiB `mt_region`: 512 u64 stores, 1024 u32 loads,
256 u8 stores to every 16th byte, then 512 u64 loads. The trace must hold exactly these, in this order.
"""

from __future__ import annotations

import numpy as np
import pytest
from guestlib import ARCHES, guest, record, symbols

import memtap
from memtap.layout import KIND_NAMES


def expected(region: int) -> list[tuple[str, int, int]]:
    return (
        [("store", region + 8 * i, 8) for i in range(512)]
        + [("load", region + 4 * i, 4) for i in range(1024)]
        + [("store", region + 16 * i, 1) for i in range(256)]
        + [("load", region + 8 * i, 8) for i in range(512)]
    )


@pytest.mark.parametrize("arch", ARCHES)
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
    assert got == expected(region)
    # The END totals agree with what the file holds: nothing dropped between plugin and file.
    kinds, counts = np.unique(recs["kind"], return_counts=True)
    assert {KIND_NAMES[k]: int(c) for k, c in zip(kinds, counts, strict=True)} == {
        k: v for k, v in trace.end["records"].items() if v
    }
