"""Marker instructions executed a million times, some with out-of-range operations, cannot break the trace."""

from __future__ import annotations

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile
from guestlib import ARCHES, guest, record

import memtap
from memtap.trace import layout as L

PASSES = 1_000_000
BAD_CONTROL = {   # the out-of-range control markers of guest/programs/markers.c
    "x86_64": bytes([0x0F, 0x1F, 0x80, 0x77, 0x00, 0x54, 0x4D]),
    "i386": bytes([0x0F, 0x1F, 0x80, 0x77, 0x00, 0x54, 0x4D]),
    "aarch64": (0xD2A9ABFF).to_bytes(4, "little"),
    "riscv64": (0x4DF02013).to_bytes(4, "little"),
    "riscv32": (0x4DF02013).to_bytes(4, "little"),
}


def text_address_of(elf, pattern: bytes) -> int:
    with open(elf, "rb") as f:
        text = ELFFile(f).get_section_by_name(".text")
        data = text.data()
        at = data.find(pattern)
        assert at >= 0 and data.find(pattern, at + 1) < 0, "the pattern must occur exactly once"
        return text["sh_addr"] + at


@pytest.mark.parametrize("arch", [a for a in ARCHES if a in BAD_CONTROL])
def test_marker_storm(tmp_path, arch):
    path = tmp_path / "markers.trace"
    proc = record(path, arch, "markers", "--start-on-marker")
    assert proc.returncode == 0, proc.stderr
    trace = memtap.open(path)
    assert trace.complete
    bad = text_address_of(guest(arch, "markers"), BAD_CONTROL[arch])
    marks = trace.records(kinds="marker")
    assert len(marks) == PASSES and set(marks["value"].tolist()) == {7}
    fetches = trace.records(kinds="fetch")
    assert int(np.count_nonzero(fetches["pc"] == bad)) == PASSES   # an ordinary instruction, traced each pass
    per_pass = len(fetches) // PASSES
    assert len(fetches) - per_pass * PASSES < per_pass   # the same instructions every pass, plus the lead-in
    assert np.all(np.diff(marks["icount"].astype(np.int64)) == np.diff(marks["icount"].astype(np.int64))[0])
    table = trace.insn_table()
    assert not np.any(table["flags"][table["vaddr"] == bad] & L.INSN_MARKER)
    assert trace.end["undecoded_insns"] == 0
