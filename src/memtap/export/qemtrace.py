"""Records printed the way QEMTrace's text mode printed them, so its users can compare traces line by line.

QEMTrace (a QEMU 3.1 fork) printed one line per access: an event prefix and LD/ST, then virtual and physical
address, core, a timestamp and one-letter fields (read/write, instruction/data, privilege, event, granularity,
size, coherency, cache level, cache-inhibited, write-through, exclusive). memtap keeps that layout; where it knows
something QEMTrace did not, or the reverse, docs/recording.md says what is printed instead (the `Time` column is
the vCPU's instruction count; memtap has no host timestamps).
"""

from __future__ import annotations

import numpy as np

from memtap.trace import layout as L

# memtap cache operation -> (line prefix, QEMTrace event letter)
_EVENT = {
    L.CMO_CLEAN: ("FL", "F"),
    L.CMO_INVALIDATE: ("INV", "I"),
    L.CMO_FLUSH: ("FL/INV", "B"),
    L.CMO_ZERO: ("D", "D"),
    L.CMO_PREFETCH_READ: ("P", "P"),
    L.CMO_PREFETCH_WRITE: ("P", "P"),
    L.CMO_PREFETCH_INSN: ("P", "P"),
    L.CMO_LOCK: ("L", "L"),
    L.CMO_UNLOCK: ("U", "U"),
    L.CMO_ICACHE_INVALIDATE: ("INV", "I"),
}
_GRANULARITY = {L.CMO_LINE: "L", L.CMO_SET_WAY: "S", L.CMO_WHOLE: "G"}
_SIZE = {1: "B", 2: "H", 4: "W", 8: "D", 16: "Q"}


def format_line(rec: np.void, width: int = 8) -> str:
    """One record as a QEMTrace text line; markers and exceptions, which QEMTrace did not have, become comment
    lines."""
    kind, flags = int(rec["kind"]), int(rec["flags"])
    if kind == L.KIND_MARKER:
        return f"# marker {int(rec['value']):#x} | Core {int(rec['vcpu'])} | Time {int(rec['icount'])}"
    if kind == L.KIND_EXCEPTION:   # QEMTrace had none: a comment line, like markers
        what = "interrupt" if flags & L.RF_INTERRUPT else "exception"
        cause = f"{int(rec['value']):#x}" if flags & L.RF_VALUE else "?"
        src = "?" if flags & L.RF_NOADDR else f"0x{int(rec['vaddr']):0{width}x}"
        return (f"# {what} cause {cause} from {src} to 0x{int(rec['pc']):0{width}x} | Core {int(rec['vcpu'])} | "
                f"Time {int(rec['icount'])}")
    store = kind == L.KIND_STORE or (kind == L.KIND_CMO and int(rec["value"]) & 15 == L.CMO_ZERO)
    insn = kind == L.KIND_FETCH or (kind == L.KIND_CMO and int(rec["value"]) & 15
                                    in (L.CMO_ICACHE_INVALIDATE, L.CMO_PREFETCH_INSN))
    level = "1"
    if kind == L.KIND_CMO:
        value = int(rec["value"])
        prefix, event = _EVENT.get(value & 15, ("D", "A"))
        granularity = _GRANULARITY.get((value >> 4) & 3, "L")
        level = "A" if granularity == "G" else str((value >> 6) & 3 or 1)
    else:
        prefix, event, granularity = ("I" if insn else "D"), "A", "L"
    va = int(rec["vaddr"])
    pa = int(rec["paddr"]) if flags & L.RF_PADDR else 0
    exclusive = kind in (L.KIND_LOAD, L.KIND_STORE) and flags & (L.RF_EXCLUSIVE | L.RF_ATOMIC)
    return (f"{prefix} {'ST' if store else 'LD'} | V 0x{va:0{width}x} | P 0x{pa:0{width}x} | "
            f"Core {int(rec['vcpu'])} | Time {int(rec['icount'])} | RW: {'W' if store else 'R'} | "
            f"ID: {'I' if insn else 'D'} | PL: {'U' if int(rec['priv']) == L.PRIV_USER else 'K'} | E: {event} | "
            f"G: {granularity} | S: {_SIZE.get(int(rec['size']), 'B')} | CR: N | CL: {level} | "
            f"CI: {'Y' if flags & L.RF_IO else 'N'} | WT: D | EX: {'Y' if exclusive else 'N'}")


def format_records(rec: np.ndarray, addr_bits: int = 64) -> list[str]:
    """QEMTrace lines for a batch of records (addresses padded to 8 hex digits, 16 for 64-bit guests)."""
    width = 8 if addr_bits <= 32 else 16
    return [format_line(r, width) for r in rec]
