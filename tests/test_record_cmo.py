"""Cache-maintenance, prefetch, atomic and exclusive instructions: exact records on every architecture.

The `cmo` guest runs each instruction once at a known label on the 64-byte-aligned `cmo_line`; what each
instruction means (operation, granularity, level, effective address) is written out here from the ISA manuals,
independently of the plugin's decoder.
"""

from __future__ import annotations

import pytest
from guestlib import guest, memtap, qemu_command, symbols

import memtap as mt
from memtap.trace import layout as L

CLEAN, INVAL, FLUSH, ZERO = L.CMO_CLEAN, L.CMO_INVALIDATE, L.CMO_FLUSH, L.CMO_ZERO
PF_R, PF_W, PF_I, IC = L.CMO_PREFETCH_READ, L.CMO_PREFETCH_WRITE, L.CMO_PREFETCH_INSN, L.CMO_ICACHE_INVALIDATE
LINE, SETWAY, WHOLE = L.CMO_LINE, L.CMO_SET_WAY, L.CMO_WHOLE
A, X = L.RF_ATOMIC, L.RF_EXCLUSIVE

# label -> expected records after its fetch: ("cmo", op, granularity, level, offset from cmo_line or None)
#                                            or (kind, offset, size, flags)
EXPECTED = {   # arm-thumb runs the arm program assembled as Thumb-2: the same records
    "riscv64": [
        ("cmo_clean", [("cmo", CLEAN, LINE, 0, 0)]),
        ("cmo_flush", [("cmo", FLUSH, LINE, 0, 0)]),
        ("cmo_inval", [("cmo", INVAL, LINE, 0, 0)]),
        # cbo.zero: QEMU zeroes the 64-byte block with byte stores that it reports as accesses
        ("cmo_zero", [("cmo", ZERO, LINE, 0, 0)] + [("store", i, 1, 0) for i in range(64)]),
        ("cmo_prefetch_r", [("cmo", PF_R, LINE, 0, 64)]),
        ("cmo_prefetch_w", [("cmo", PF_W, LINE, 0, 128)]),
        ("cmo_prefetch_i", [("cmo", PF_I, LINE, 0, 0)]),
        ("cmo_fence_i", [("cmo", IC, WHOLE, 0, None)]),
        ("cmo_amoadd", [("load", 0, 4, A), ("store", 0, 4, A)]),
        ("cmo_lr", [("load", 0, 4, X)]),
        ("cmo_sc", [("load", 0, 4, X), ("store", 0, 4, X)]),   # QEMU's compare-and-swap: a load, then the store
        ("cmo_sc_fail", []),                                       # no reservation: no access at all
    ],
    "aarch64": [
        ("cmo_civac", [("cmo", FLUSH, LINE, 0, 0)]),
        ("cmo_cvac", [("cmo", CLEAN, LINE, 0, 0)]),
        ("cmo_ivac", [("cmo", INVAL, LINE, 0, 0)]),
        ("cmo_zva", [("cmo", ZERO, LINE, 0, 0)]),       # QEMU zeroes the block without reporting accesses
        ("cmo_cisw", [("cmo", FLUSH, SETWAY, 2, "setway")]),
        ("cmo_ic_ivau", [("cmo", IC, LINE, 0, 0)]),
        ("cmo_ic_iallu", [("cmo", IC, WHOLE, 0, None)]),
        ("cmo_prfm_ld", [("cmo", PF_R, LINE, 2, 64)]),
        ("cmo_prfm_st", [("cmo", PF_W, LINE, 1, 128)]),
        ("cmo_prfm_uxtw", []),                            # not decoded: a plain instruction, counted (below)
        ("cmo_ldxr", [("load", 0, 4, X)]),
        ("cmo_stxr", [("load", 0, 4, X), ("store", 0, 4, X)]),
        ("cmo_ldadd", [("load", 0, 4, A), ("store", 0, 4, A)]),
    ],
    "arm": [
        ("cmo_dccimvac", [("cmo", FLUSH, LINE, 0, 0)]),
        ("cmo_dccmvac", [("cmo", CLEAN, LINE, 0, 0)]),
        ("cmo_dcimvac", [("cmo", INVAL, LINE, 0, 0)]),
        ("cmo_dccisw", [("cmo", FLUSH, SETWAY, 2, "setway")]),
        ("cmo_icimvau", [("cmo", IC, LINE, 0, 0)]),
        ("cmo_iciallu", [("cmo", IC, WHOLE, 0, None)]),
        ("cmo_pld", [("cmo", PF_R, LINE, 0, 64)]),
        ("cmo_pldw", [("cmo", PF_W, LINE, 0, 128)]),
        ("cmo_ldrex", [("load", 0, 4, X)]),
        ("cmo_strex", [("load", 0, 4, X), ("store", 0, 4, X)]),
    ],
    # QEMU's PowerPC model checks access rights with a real access: dcbf and dcbst load a byte, dcbi loads and
    # stores one, icbi loads a word; dcbz stores its 32-byte e500 line as four doublewords. They are recorded.
    "ppc": [
        ("cmo_dcbf", [("cmo", FLUSH, LINE, 0, 0), ("load", 0, 1, 0)]),
        ("cmo_dcbst", [("cmo", CLEAN, LINE, 0, 0), ("load", 0, 1, 0)]),
        ("cmo_dcbi", [("cmo", INVAL, LINE, 0, 0), ("load", 0, 1, 0), ("store", 0, 1, 0)]),
        ("cmo_dcbz", [("cmo", ZERO, LINE, 0, 64)] + [("store", 64 + 8 * i, 8, 0) for i in range(4)]),
        ("cmo_dcbt", [("cmo", PF_R, LINE, 0, 64)]),
        ("cmo_dcbtst", [("cmo", PF_W, LINE, 0, 0)]),
        ("cmo_icbi", [("cmo", IC, LINE, 0, 0), ("load", 0, 4, 0)]),
        ("cmo_dcbtls", [("cmo", L.CMO_LOCK, LINE, 2, 64)]),
        ("cmo_dcblc", [("cmo", L.CMO_UNLOCK, LINE, 1, 64)]),
        ("cmo_lwarx", [("load", 0, 4, X)]),
        ("cmo_stwcx", [("load", 0, 4, X), ("store", 0, 4, X)]),
    ],
    "x86_64": [
        ("cmo_clflush", [("cmo", FLUSH, LINE, 0, 0)]),
        ("cmo_clflushopt", [("cmo", FLUSH, LINE, 0, 64)]),
        ("cmo_clwb", [("cmo", CLEAN, LINE, 0, 64)]),
        ("cmo_prefetcht0", [("cmo", PF_R, LINE, 1, 0)]),
        ("cmo_prefetcht2", [("cmo", PF_R, LINE, 3, 64)]),
        ("cmo_prefetchnta", [("cmo", PF_R, LINE, 0, 128)]),
        ("cmo_prefetchw", [("cmo", PF_W, LINE, 0, 0)]),
        ("cmo_wbinvd", [("cmo", FLUSH, WHOLE, 0, None)]),
        ("cmo_lock_add", [("load", 0, 4, A), ("store", 0, 4, A)]),
        ("cmo_xchg", [("load", 8, 4, A), ("store", 8, 4, A)]),
        ("cmo_cmpxchg", [("load", 16, 4, 0), ("store", 16, 4, 0)]),   # without lock: not atomic
    ],
}


def cmo_command(arch: str) -> list[str]:
    """The guest's QEMU command on a CPU that has every instruction the program uses."""
    cmd = qemu_command(arch, guest(arch, "cmo"))
    if arch == "aarch64":
        return ["max" if c == "cortex-a57" else c for c in cmd]
    if arch == "x86_64":
        return [*cmd, "-cpu", "max"]
    return cmd


@pytest.mark.parametrize("arch", [*sorted(EXPECTED), "arm-thumb"])
def test_cmo_and_atomic_records(tmp_path, arch):
    sym = symbols(guest(arch, "cmo"))
    line = sym["cmo_line"]
    path = tmp_path / "cmo.trace"
    proc = memtap("record", "-o", str(path), "--start-on-marker", "--", *cmo_command(arch))
    assert proc.returncode == 0, proc.stderr
    trace = mt.open(path)
    recs = trace.records()
    got = []
    for r in recs:
        kind = L.KIND_NAMES[r["kind"]]
        if kind == "fetch":
            got.append(("fetch", int(r["pc"])))
        elif kind == "cmo":
            v = int(r["value"])
            addr = None if (v >> 4) & 3 == WHOLE else int(r["vaddr"])
            got.append(("cmo", int(r["pc"]), v & 15, (v >> 4) & 3, v >> 6, addr, int(r["flags"])))
        else:
            got.append((kind, int(r["pc"]), int(r["vaddr"]), int(r["size"]),
                        int(r["flags"]) & (L.RF_ATOMIC | L.RF_EXCLUSIVE)))
    want = []
    for label, after in EXPECTED["arm" if arch == "arm-thumb" else arch]:
        pc = sym[label] & ~1 if arch == "arm-thumb" else sym[label]   # Thumb symbols have bit 0 set
        want.append(("fetch", pc))
        for e in after:
            if e[0] == "cmo":
                _, op, gran, level, off = e
                addr = None if off is None else 2 if off == "setway" else line + off
                want.append(("cmo", pc, op, gran, level, addr, 0))
            else:
                kind, off, size, flags = e
                want.append((kind, pc, line + off, size, flags))
    assert got == want
    # The one instruction memtap could not take apart is counted, in the whole run (boot code included).
    assert trace.end["undecoded_insns"] == (1 if arch == "aarch64" else 0)


def test_cmo_view_and_stats(tmp_path):
    path = tmp_path / "cmo.trace"
    assert memtap("record", "-o", str(path), "--start-on-marker", "--", *cmo_command("aarch64")).returncode == 0
    view = memtap("view", str(path), "--kind", "cmo")
    lines = view.stdout.splitlines()
    assert len(lines) == 9
    assert lines[4].split()[-1] == "flush/set-way/L2" and "va=0x2 " in lines[4]
    assert lines[6].split()[-1] == "icache-invalidate/whole" and "va=- " in lines[6]
    stats = memtap("stats", "--json", str(path))
    assert '"cmo": 9' in stats.stdout


def test_qemtrace_style(tmp_path):
    """`memtap view --style qemtrace` prints QEMTrace's text-mode fields for fetches, accesses and cache events."""
    sym = symbols(guest("riscv64", "cmo"))
    line = sym["cmo_line"]
    path = tmp_path / "cmo.trace"
    assert memtap("record", "-o", str(path), "--start-on-marker", "--", *cmo_command("riscv64")).returncode == 0
    out = memtap("view", "--style", "qemtrace", str(path)).stdout.splitlines()
    icount = int(mt.open(path).records()["icount"][0])

    def q(prefix, rw, va, pa, t, idd, e, g, s, cl="1", ex="N"):
        return (f"{prefix} {'ST' if rw == 'W' else 'LD'} | V 0x{va:016x} | P 0x{pa:016x} | Core 0 | Time {t} | "
                f"RW: {rw} | ID: {idd} | PL: K | E: {e} | G: {g} | S: {s} | CR: N | CL: {cl} | CI: N | WT: D | "
                f"EX: {ex}")

    pc = sym["cmo_clean"]
    assert out[0] == q("I", "R", pc, pc, icount, "I", "A", "L", "W")            # fetch, MMU off: P = V
    assert out[1] == q("FL", "R", line, 0, icount, "D", "F", "L", "B")          # cbo.clean
    assert out[3] == q("FL/INV", "R", line, 0, icount + 1, "D", "B", "L", "B")  # cbo.flush
    assert out[5] == q("INV", "R", line, 0, icount + 2, "D", "I", "L", "B")     # cbo.inval
    assert out[7] == q("D", "W", line, 0, icount + 3, "D", "D", "L", "B")       # cbo.zero
    amo = out.index(q("I", "R", sym["cmo_amoadd"], sym["cmo_amoadd"], icount + 8, "I", "A", "L", "W"))
    assert out[amo + 1] == q("D", "R", line, line, icount + 8, "D", "A", "L", "W", ex="Y")
    assert out[amo + 2] == q("D", "W", line, line, icount + 8, "D", "A", "L", "W", ex="Y")
