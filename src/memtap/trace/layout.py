"""Numpy mirrors of include/memtap/trace.h, plus the decoded record layout.

Every size, offset and constant here is checked against the C header by tests/test_layout.py, so the
reader can view raw chunk payloads directly with ``np.frombuffer`` instead of parsing them field by field.
"""

from __future__ import annotations

import numpy as np

# --- file header -----------------------------------------------------------------------------------
FILE_MAGIC = b"MEMTAPv1"
FORMAT_VERSION = 2  # 2: DATA events carry the fetches before them (count > 1); version 1 reads alike
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
CHUNK_COUNTS = 5
CHUNK_INSN_PADDRS = 6  # physical addresses of instructions flagged INSN_PADDR (QEMU >= 10.1)
CHUNK_TYPE_NAMES = {CHUNK_INFO: "INFO", CHUNK_INSNS: "INSNS", CHUNK_EVENTS: "EVENTS", CHUNK_END: "END",
                    CHUNK_COUNTS: "COUNTS", CHUNK_INSN_PADDRS: "INSN_PADDRS"}

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
INSN_BLOCK = 0x02
INSN_ATOMIC = 0x04
INSN_EXCLUSIVE = 0x08
INSN_CMO = 0x10
INSN_PHYS = 0x20
INSN_PADDR = 0x40  # the physical address differs from vaddr and is in an INSN_PADDRS chunk

# Cache-maintenance operations (INSN.cmo = op | granularity << 4 | level << 6).
CMO_CLEAN = 1
CMO_INVALIDATE = 2
CMO_FLUSH = 3
CMO_ZERO = 4
CMO_PREFETCH_READ = 5
CMO_PREFETCH_WRITE = 6
CMO_PREFETCH_INSN = 7
CMO_LOCK = 8
CMO_UNLOCK = 9
CMO_ICACHE_INVALIDATE = 10
CMO_OP_NAMES = {CMO_CLEAN: "clean", CMO_INVALIDATE: "invalidate", CMO_FLUSH: "flush", CMO_ZERO: "zero",
                CMO_PREFETCH_READ: "prefetch-read", CMO_PREFETCH_WRITE: "prefetch-write",
                CMO_PREFETCH_INSN: "prefetch-insn", CMO_LOCK: "lock", CMO_UNLOCK: "unlock",
                CMO_ICACHE_INVALIDATE: "icache-invalidate"}
CMO_LINE = 0
CMO_SET_WAY = 1
CMO_WHOLE = 2
CMO_GRANULARITY_NAMES = {CMO_LINE: "line", CMO_SET_WAY: "set-way", CMO_WHOLE: "whole"}

INSN = np.dtype(
    {
        "names": ["vaddr", "id", "size", "priv", "flags", "cmo"],
        "formats": ["<u8", "<u4", "u1", "u1", "u1", "u1"],
        "offsets": [0, 8, 12, 13, 14, 15],
        "itemsize": 16,
    }
)

INSN_PADDR_ROW = np.dtype(
    {"names": ["id", "reserved", "paddr"], "formats": ["<u4", "<u4", "<u8"], "offsets": [0, 4, 8], "itemsize": 16}
)

# Counts mode: per (instruction, vCPU) increments since the previous COUNTS chunk.
COUNT = np.dtype(
    {
        "names": ["insn", "vcpu", "reserved", "executed", "loads", "stores"],
        "formats": ["<u4", "<u2", "<u2", "<u8", "<u8", "<u8"],
        "offsets": [0, 4, 6, 8, 16, 24],
        "itemsize": 32,
    }
)

# --- raw events -------------------------------------------------------------------------------------
EV_EXEC = 1
EV_DATA = 2
EV_MARK = 3
EV_CMO = 4
EV_EXCEPTION = 5
EVENT_KIND_NAMES = {EV_EXEC: "exec", EV_DATA: "data", EV_MARK: "mark"}

EVF_SIZE_MASK = 0x07
EVF_STORE = 0x08
EVF_IO = 0x10
EVF_PADDR = 0x20
EVF_SIGNED = 0x40
EVF_BIG_ENDIAN = 0x80
EVF_CMO_ADDR = 0x01  # CMO events: vaddr holds the computed address
EVF_CMO_LEVEL = 0x06  # CMO events: cache level from the set/way register (bits 2:1)
EVF_EXC_FROM = 0x01  # EXCEPTION events: vaddr holds the PC the trap came from
EVF_EXC_CAUSE = 0x02  # EXCEPTION events: paddr holds the cause
EVF_EXC_INTERRUPT = 0x04  # EXCEPTION events: an interrupt

WIDE = 0xFFFF  # an escaped 16-bit difference column entry (trace.h MEMTAP_WIDE)

EVENT = np.dtype(
    {
        "names": ["vaddr", "paddr", "icount", "pos", "insn", "kind", "flags", "count", "value", "value_hi"],
        "formats": ["<u8", "<u8", "<u8", "<u8", "<u4", "u1", "u1", "<u2", "<u8", "<u8"],
        "offsets": [0, 8, 16, 24, 32, 36, 37, 38, 40, 48],
        "itemsize": 56,
    }
)

# --- decoded records (trace.h struct memtap_record) ------------------------------------------------
KIND_FETCH = 0
KIND_LOAD = 1
KIND_STORE = 2
KIND_MARKER = 3
KIND_CMO = 4
KIND_EXCEPTION = 5
KIND_FETCH_RUN = 6  # live ring only: `size` consecutive fetches in one record (trace.h, docs/ring.md)
RUN_MAX = 32  # fetches in a run at most; their sizes are 4-bit fields of value (0..15) and value_hi (16..31)
# Live ring only, without values: a load / store that also carries the `fetches` fetches ending with its
# instruction (their sizes in value, the first one's physical address in value_hi with RF_RUN_PADDR).
KIND_RUN_LOAD = 7
KIND_RUN_STORE = 8
FUSED_MAX = 16  # fetches a run load / store carries at most
KIND_NAMES = ("fetch", "load", "store", "marker", "cmo", "exception")
KIND_CODES = {name: code for code, name in enumerate(KIND_NAMES)}

RF_IO = 0x01  # MMIO access
RF_PADDR = 0x02  # paddr is valid
RF_SIGNED = 0x04  # sign-extended load
RF_BIG_ENDIAN = 0x08
RF_ATOMIC = 0x10  # by an atomic read-modify-write instruction
RF_EXCLUSIVE = 0x20  # by a load-linked / store-conditional instruction
RF_NOADDR = 0x40  # cmo: its address could not be computed (whole-cache operations have none by nature)
RF_VALUE = 0x80  # load/store: value (and value_hi) hold the value moved (--values); exception: value is the cause
RF_RUN_PADDR = 0x40  # run load/store records: value_hi is the first fetch's physical address
RF_INTERRUPT = 0x10  # exception records: an interrupt (asynchronous), not an exception

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
        ("fetches", "<u2"),  # run load/store records (live ring): the fetches carried; else 0
        ("value_hi", "<u8"),  # the high 8 bytes of a 16-byte access's value (--values)
    ]
)


# --- live ring (trace.h, docs/ring.md) ----------------------------------------------------------------------
RING_MAGIC = b"MEMTAPRG"
RING_VERSION = 2
RING_MAX_CONSUMERS = 16
RING_F_LOSSY = 0x1
RING_F_FILE = 0x2
RING_F_FETCH_RUNS = 0x4  # the ring carries fetch runs and, without values, run loads/stores (the default)
RING_ON_FETCH = 0x1
RING_ON_LOAD = 0x2
RING_ON_STORE = 0x4
RING_RUNNING = 1
RING_ENDED = 2
RING_SLOT_FREE = 0
RING_SLOT_CLAIMING = 1
RING_SLOT_ATTACHING = 2
RING_SLOT_ATTACHED = 3
RING_SLOT_LEAVING = 4
RING_SLOT_DETACHED = 5
RING_DETACH_GONE = 1
RING_DETACH_SILENT = 2
RING_DETACH_MALFORMED = 3
RING_CMD_START = 1
RING_CMD_STOP = 2
RING_CMD_MARK = 3
RING_OK = 0
RING_ERR_COMMAND = 1
RING_ERR_BUDGET = 2
RING_ERR_OFF = 3
RING_ERR_BUSY = 4

# The ring structs pad explicitly, so their fields simply follow each other.

RING_HEADER = np.dtype([
    ("magic", "S8"), ("version", "<u4"), ("header_size", "<u4"), ("record_size", "<u4"), ("nbuffers", "<u4"),
    ("buffer_records", "<u4"), ("max_consumers", "<u4"), ("consumers_offset", "<u8"), ("buffers_offset", "<u8"),
    ("records_offset", "<u8"), ("segment_size", "<u8"), ("flags", "<u4"), ("producer_pid", "<u4"),
    ("heartbeat_ms", "<u4"), ("reserved0", "<u4"), ("pad0", "V48"),
    ("state", "<u4"), ("publish_futex", "<u4"), ("write_seq", "<u8"), ("records_total", "<u8"),
    ("records_published", "<u8"), ("records_dropped", "<u8"), ("buffers_dropped", "<u8"), ("pad1", "V80"),
    ("release_futex", "<u4"), ("producer_waiting", "<u4"), ("pad2", "V56"),
    ("status_time_ns", "<u8"), ("start_time_ns", "<u8"), ("status_records", "<u8", (8,)), ("status_rate", "<u8"),
    ("status_icount", "<u8"), ("trace_on", "<u4"), ("consumers", "<u4"), ("pad3", "V24"),
    ("ctl_seq", "<u4"), ("ctl_cmd", "<u4"), ("ctl_arg", "<u8"), ("ctl_ack", "<u4"), ("ctl_result", "<u4"),
    ("pad4", "V40"),
])

RING_CONSUMER = np.dtype([
    ("state", "<u4"), ("pid", "<u4"), ("heartbeat", "<u4"), ("generation", "<u4"), ("read_seq", "<u8"),
    ("joined_seq", "<u8"), ("joined_record", "<u8"), ("lost", "<u8"), ("detach_reason", "<u4"),
    ("reserved", "<u4"), ("reserved2", "<u8"),
])

RING_BUFFER = np.dtype([
    ("seq", "<u8"), ("first_record", "<u8"), ("dropped_before", "<u8"), ("count", "<u4"), ("reserved", "<u4"),
])


def priv_name(priv: int) -> str:
    """Name a privilege level; codes the header does not define read as 'unknown' rather than failing."""
    return PRIV_NAMES.get(int(priv), "unknown")


# Privilege levels as dense indices (tables, Arrow dictionaries): the defined levels, then 'unknown' for the rest.
PRIV_ORDER = ("user", "supervisor", "hypervisor", "machine", "unknown")
_PRIV_INDEX = np.full(256, len(PRIV_ORDER) - 1, np.int8)
_PRIV_INDEX[: PRIV_MACHINE + 1] = np.arange(PRIV_MACHINE + 1)


def priv_index(priv: np.ndarray) -> np.ndarray:
    """Raw u8 privilege codes as int8 indices into PRIV_ORDER (codes the header does not define: 'unknown')."""
    return _PRIV_INDEX[priv]


# --- EVENTS chunk payload: columns (see trace.h) ------------------------------------------------------------

# Bytes per event in the fixed columns: kind u8, flags u8, count u16, insn u32, icount_d u16, pos_d u16.
EVENT_COLUMNS_FIXED = 1 + 1 + 2 + 4 + 2 + 2
# The most an event can take: the fixed columns, vaddr and paddr, both differences escaped, and a 16-byte value.
EVENT_COLUMNS_MAX = EVENT_COLUMNS_FIXED + 8 * 6


def _wide_values(ev: np.ndarray, addressed: np.ndarray) -> np.ndarray:
    """Which addressed events are 16-byte data events (their value has a high half in value_hi)."""
    a = ev[addressed]
    return (a["kind"] == EV_DATA) & ((a["flags"] & EVF_SIZE_MASK) == 4)


def columns_to_events(payload: bytes, n: int, values: bool = False) -> np.ndarray:
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
    wide_value = _wide_values(ev, addressed) if values else np.zeros(m, bool)
    h = int(wide_value.sum())
    if len(payload) != off + 16 * m + 8 * (wi + wp) + (8 * m + 8 * h if values else 0):
        raise ValueError(f"payload of {len(payload)} bytes does not match {n} events with {m} addresses "
                         f"and {wi + wp} wide differences" + (f" and {h} 16-byte values" if values else ""))
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
    ev["value"] = 0
    ev["value_hi"] = 0
    if values:
        ev["value"][addressed] = np.frombuffer(buf, "<u8", m, off)
        hi = np.zeros(m, np.uint64)
        hi[wide_value] = np.frombuffer(buf, "<u8", h, off + 8 * m)
        ev["value_hi"][addressed] = hi
    return ev
