"""Numpy mirrors of include/memtap/trace.h, plus the decoded record layout.

Every size, offset and constant here is checked against the C header by tests/test_layout.py, so the
reader can view raw chunk payloads directly with ``np.frombuffer`` instead of parsing them field by field.
"""

from __future__ import annotations

import numpy as np

# --- file header -----------------------------------------------------------------------------------
FILE_MAGIC = b"MEMTAPv1"
FORMAT_VERSION = 1
CHUNK_MAGIC = 0x4B43544D  # "MTCK" little-endian

FILE_HEADER = np.dtype(
    {
        "names": ["magic", "version", "meta_len"],
        "formats": ["S8", "<u4", "<u4"],
        "offsets": [0, 8, 12],
        "itemsize": 16,
    }
)

# --- chunks -----------------------------------------------------------------------------------------
CHUNK_INFO = 1
CHUNK_INSNS = 2
CHUNK_EVENTS = 3
CHUNK_END = 4
CHUNK_TYPE_NAMES = {CHUNK_INFO: "INFO", CHUNK_INSNS: "INSNS", CHUNK_EVENTS: "EVENTS", CHUNK_END: "END"}

CODEC_RAW = 0
CODEC_ZSTD = 1
CODEC_NAMES = {CODEC_RAW: "raw", CODEC_ZSTD: "zstd"}

CHUNK_HEADER = np.dtype(
    {
        "names": ["magic", "type", "vcpu", "codec", "crc32", "stored_len", "raw_len", "count", "seq"],
        "formats": ["<u4", "<u2", "<u2", "<u4", "<u4", "<u8", "<u8", "<u8", "<u8"],
        "offsets": [0, 4, 6, 8, 12, 16, 24, 32, 40],
        "itemsize": 48,
    }
)

# --- privilege levels -------------------------------------------------------------------------------
PRIV_USER = 0
PRIV_SUPERVISOR = 1
PRIV_HYPERVISOR = 2
PRIV_MACHINE = 3
PRIV_UNKNOWN = 0xFF
PRIV_NAMES = {
    PRIV_USER: "user",
    PRIV_SUPERVISOR: "supervisor",
    PRIV_HYPERVISOR: "hypervisor",
    PRIV_MACHINE: "machine",
    PRIV_UNKNOWN: "unknown",
}

# --- instruction table ------------------------------------------------------------------------------
INSN_MARKER = 0x01

INSN = np.dtype(
    {
        "names": ["vaddr", "id", "size", "priv", "flags", "reserved"],
        "formats": ["<u8", "<u4", "u1", "u1", "u1", "u1"],
        "offsets": [0, 8, 12, 13, 14, 15],
        "itemsize": 16,
    }
)

# --- raw events -------------------------------------------------------------------------------------
EV_EXEC = 1
EV_DATA = 2
EV_MARK = 3
EVENT_KIND_NAMES = {EV_EXEC: "exec", EV_DATA: "data", EV_MARK: "mark"}

EVF_SIZE_MASK = 0x07
EVF_STORE = 0x08
EVF_IO = 0x10
EVF_PADDR = 0x20
EVF_SIGNED = 0x40
EVF_BIG_ENDIAN = 0x80

WIDE = 0xFFFF  # an escaped 16-bit difference column entry (trace.h MEMTAP_WIDE)

EVENT = np.dtype(
    {
        "names": ["vaddr", "paddr", "icount", "pos", "insn", "kind", "flags", "count"],
        "formats": ["<u8", "<u8", "<u8", "<u8", "<u4", "u1", "u1", "<u2"],
        "offsets": [0, 8, 16, 24, 32, 36, 37, 38],
        "itemsize": 40,
    }
)

# --- decoded records (Python side only) -------------------------------------------------------------
KIND_FETCH = 0
KIND_LOAD = 1
KIND_STORE = 2
KIND_MARKER = 3
KIND_NAMES = ("fetch", "load", "store", "marker")
KIND_CODES = {name: code for code, name in enumerate(KIND_NAMES)}

RF_IO = 0x01  # MMIO access
RF_PADDR = 0x02  # paddr is valid
RF_SIGNED = 0x04  # sign-extended load
RF_BIG_ENDIAN = 0x08

RECORD = np.dtype(
    [
        ("pos", "<u8"),
        ("icount", "<u8"),
        ("vaddr", "<u8"),
        ("paddr", "<u8"),
        ("pc", "<u8"),
        ("value", "<u8"),
        ("vcpu", "<u2"),
        ("kind", "u1"),
        ("size", "u1"),
        ("priv", "u1"),
        ("flags", "u1"),
    ]
)


def priv_name(priv: int) -> str:
    """Name a privilege level; codes the header does not define read as 'unknown' rather than failing."""
    return PRIV_NAMES.get(int(priv), "unknown")


# --- EVENTS chunk payload: columns (see trace.h) ------------------------------------------------------------

# Bytes per event in the fixed columns: kind u8, flags u8, count u16, insn u32, icount_d u16, pos_d u16.
EVENT_COLUMNS_FIXED = 1 + 1 + 2 + 4 + 2 + 2
# The most an event can take: the fixed columns, vaddr and paddr, and both differences escaped.
EVENT_COLUMNS_MAX = EVENT_COLUMNS_FIXED + 8 * 4


def columns_to_events(payload: bytes, n: int) -> np.ndarray:
    """Rebuild EVENT rows from a chunk's columns; raises ValueError when the payload does not fit n events."""
    if len(payload) < n * EVENT_COLUMNS_FIXED:
        raise ValueError(f"payload of {len(payload)} bytes is too short for {n} events")
    buf = memoryview(payload)
    ev = np.empty(n, EVENT)
    off = 0
    for name, dt in (("kind", "u1"), ("flags", "u1"), ("count", "<u2"), ("insn", "<u4")):
        col = np.frombuffer(buf, dt, n, off)
        ev[name] = col
        off += col.nbytes
    diffs = {}
    for name in ("icount", "pos"):
        diffs[name] = np.frombuffer(buf, "<u2", n, off).astype(np.uint64)
        off += 2 * n
    addressed = ev["kind"] != EV_EXEC
    m = int(addressed.sum())
    escaped = {name: d == WIDE for name, d in diffs.items()}
    wi, wp = int(escaped["icount"].sum()), int(escaped["pos"].sum())
    if len(payload) != off + 16 * m + 8 * (wi + wp):
        raise ValueError(f"payload of {len(payload)} bytes does not match {n} events with {m} addresses "
                         f"and {wi + wp} wide differences")
    vaddr = np.frombuffer(buf, "<u8", m, off)
    paddr = np.frombuffer(buf, "<u8", m, off + 8 * m) + vaddr  # stored as paddr - vaddr, wrapping
    off += 16 * m
    for name, count in (("icount", wi), ("pos", wp)):
        diffs[name][escaped[name]] = np.frombuffer(buf, "<u8", count, off)
        off += 8 * count
    # Differences are to the last record of the previous event (an EXEC run covers count records), modulo
    # 2**64: cumsum in uint64 wraps the same way the writer subtracted.
    span = np.zeros(n, np.uint64)
    span[1:] = np.where(ev["kind"][:-1] == EV_EXEC, ev["count"][:-1].astype(np.uint64) - np.uint64(1), 0)
    for name in ("icount", "pos"):
        ev[name] = np.cumsum(diffs[name] + span, dtype=np.uint64)
    ev["vaddr"] = 0
    ev["paddr"] = 0
    ev["vaddr"][addressed] = vaddr
    ev["paddr"][addressed] = paddr
    return ev


def events_to_columns(ev: np.ndarray) -> bytes:
    """The inverse of columns_to_events: what the plugin's sink writes (used by tests and tools)."""
    ev = np.asarray(ev, EVENT)
    addressed = ev["kind"] != EV_EXEC
    span = np.where(ev["kind"] == EV_EXEC, ev["count"].astype(np.uint64) - np.uint64(1), 0).astype(np.uint64)
    narrow, wide = [], []
    for name in ("icount", "pos"):
        col = ev[name].astype(np.uint64)
        last = np.concatenate([np.zeros(1, np.uint64), col[:-1] + span[:-1]])
        d = col - last
        narrow.append(np.minimum(d, WIDE).astype("<u2"))
        wide.append(d[d >= WIDE])
    vaddr = ev["vaddr"][addressed].astype(np.uint64)
    parts = [ev["kind"], ev["flags"], ev["count"], ev["insn"], *narrow, vaddr,
             ev["paddr"][addressed].astype(np.uint64) - vaddr, *wide]
    return b"".join(np.ascontiguousarray(p).tobytes() for p in parts)
