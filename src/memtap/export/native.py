"""ctypes binding of the exporters' core (core.c, and csv.c and parquet.c for the CSV and Parquet exports; built
by setup.py into libexport.so).

Per-record work (formatting text lines, encoding protobuf packets, filling ChampSim records, following calls and
returns) runs there on whole batches of columns; Python only chooses the columns and writes the bytes.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from memtap._native import Library, ptr
from memtap.errors import MemtapError

# enum mx_drop, in order
DROPS = ("marker", "exception", "cmo", "no_paddr", "wide_addr", "zero_addr", "memops", "orphan")
# branch classes of struct mx_pcmap's info (MX_INFO_CLASS)
NOT_BRANCH, COND, JUMP, JUMP_INDIRECT, CALL, CALL_INDIRECT, RETURN, BRANCH_OTHER = range(8)

# ChampSim's input_instr, 64 bytes, which mx_champsim fills
CHAMPSIM_INSTR = np.dtype([("ip", "<u8"), ("is_branch", "u1"), ("branch_taken", "u1"),
                           ("destination_registers", "u1", (2,)), ("source_registers", "u1", (4,)),
                           ("destination_memory", "<u8", (2,)), ("source_memory", "<u8", (4,))])
# struct mx_record: the offsets of the layout.RECORD fields mx_records writes
RECORD_OFFSETS = {"vaddr": 16, "paddr": 24, "pc": 32, "value": 40, "vcpu": 48, "kind": 50, "size": 51, "flags": 53}
CALL_EVENT = np.dtype([("time", "<u8"), ("addr", "<u8"), ("func", "<i4"), ("depth", "<u2"), ("type", "u1"),
                       ("reserved", "u1")])


class Cols(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_void_p), ("time", ctypes.c_void_p), ("pc", ctypes.c_void_p),
                ("value", ctypes.c_void_p), ("kind", ctypes.c_void_p), ("size", ctypes.c_void_p),
                ("flags", ctypes.c_void_p), ("vcpu", ctypes.c_void_p), ("n", ctypes.c_uint64),
                ("physical", ctypes.c_int32), ("addr_bits", ctypes.c_uint32)]


class LackeyState(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint64), ("time", ctypes.c_uint64), ("pc", ctypes.c_uint64),
                ("size", ctypes.c_uint32), ("vcpu", ctypes.c_uint32), ("pending", ctypes.c_int32),
                ("reserved", ctypes.c_int32)]


class ChampsimState(ctypes.Structure):
    _fields_ = [("cur", ctypes.c_uint8 * 64), ("next_pc", ctypes.c_uint64), ("pending", ctypes.c_int32),
                ("nsrc", ctypes.c_int32), ("ndst", ctypes.c_int32)]


_P, _SZ, _U64 = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint64
_COLS = ctypes.POINTER(Cols)
SIGNATURES = {
    "mx_csv": (_SZ, [_P, ctypes.c_int, _SZ, _SZ, _P, _SZ, ctypes.POINTER(_SZ)]),   # csv.c
    "mx_pq_bound": (_SZ, [_P, _SZ]),                                               # parquet.c
    "mx_pq_encode": (_SZ, [_P, _SZ, _P, _SZ, _P, _SZ, _P]),
    "mx_lackey": (_SZ, [_COLS, ctypes.POINTER(LackeyState), ctypes.c_int, _P, _P]),
    "mx_dinero": (_SZ, [_COLS, ctypes.c_uint32, _P, _P]),
    "mx_dramsim3": (_SZ, [_COLS, _P, _P]),
    "mx_ramulator": (_SZ, [_COLS, _P, _P]),
    "mx_gem5": (_SZ, [_COLS, _U64, _P, _P]),
    "mx_records": (None, [_COLS, _P, _P, _P]),
    "mx_pcmap_new": (_P, []),
    "mx_pcmap_free": (None, [_P]),
    "mx_pcmap_put": (ctypes.c_int, [_P, _U64, _U64, ctypes.c_int32]),
    "mx_pcmap_find": (_SZ, [_P, _P, _P, _SZ, _P, _P]),
    "mx_champsim": (_SZ, [_COLS, _P, _P, ctypes.POINTER(ChampsimState), ctypes.c_int, _P, _P]),
    "mx_calls_new": (_P, []),
    "mx_calls_free": (None, [_P]),
    "mx_calls_depth": (_U64, [_P]),
    "mx_calls": (_SZ, [_COLS, _P, _P, _P, _P, _SZ]),
    "mx_calls_close": (_SZ, [_P, _U64, _P, _SZ]),
    "mx_chrome_calls": (_SZ, [_P, _SZ, _P, _P, ctypes.c_uint32, ctypes.c_uint32, _P]),
}

# The loaded core (lib()); a MemtapError when it was not built or layout.RECORD moved a field mx_records writes.
lib = Library(Path(__file__).with_name("libexport.so"), "the exporters' core", SIGNATURES, RECORD_OFFSETS)


class Batch:
    """One batch of columns as the core reads them; keeps the arrays alive while the core runs."""

    def __init__(self, cols: dict[str, np.ndarray], addr: str = "vaddr", time: str = "icount",
                 addr_bits: int = 64) -> None:
        self.cols = cols
        self.n = len(next(iter(cols.values())))
        self.c = Cols(addr=ptr(cols.get(addr)), time=ptr(cols.get(time)), pc=ptr(cols.get("pc")),
                      value=ptr(cols.get("value")), kind=ptr(cols.get("kind")), size=ptr(cols.get("size")),
                      flags=ptr(cols.get("flags")), vcpu=ptr(cols.get("vcpu")), n=self.n,
                      physical=int(addr == "paddr"), addr_bits=addr_bits)

    @property
    def ref(self) -> ctypes._Pointer:
        return ctypes.byref(self.c)

    def records(self, buf: np.ndarray) -> np.ndarray:
        """The batch as layout.RECORD records with the fields the cache simulator reads, in buf (at least n long:
        reusing it spares the pages of a fresh array)."""
        out = buf[: self.n]
        lib().mx_records(self.ref, self.cols["vaddr"].ctypes.data, self.cols["paddr"].ctypes.data, out.ctypes.data)
        return out


class PcMap:
    """Instruction address -> (ChampSim registers and branch class, function starting there), filled on demand
    by a describe(pcs) callback that returns (info, func) arrays for addresses not seen before."""

    def __init__(self, describe) -> None:
        self._lib = lib()
        self._describe = describe
        self.handle = self._lib.mx_pcmap_new()
        if not self.handle:
            raise MemtapError("out of memory for the instruction table")

    def find(self, pcs: np.ndarray, kind: np.ndarray | None = None) -> np.ndarray:
        """Slot of each pc in the table (describing the new ones first); with ``kind``, of the fetch records'
        only (-1 for the others)."""
        pcs = np.ascontiguousarray(pcs, np.uint64)
        kind = None if kind is None else np.ascontiguousarray(kind, np.uint8)   # alive until the calls return
        kinds = ptr(kind)
        idx = np.empty(len(pcs), np.int64)
        missing = np.empty(len(pcs), np.uint64)
        n = self._lib.mx_pcmap_find(self.handle, pcs.ctypes.data, kinds, len(pcs), idx.ctypes.data,
                                    missing.ctypes.data)
        if n:
            new = np.unique(missing[:n])
            info, func = self._describe(new)
            for pc, i, f in zip(new.tolist(), info.tolist(), func.tolist(), strict=True):
                if self._lib.mx_pcmap_put(self.handle, pc, i, f):
                    raise MemtapError("out of memory for the instruction table")
            self._lib.mx_pcmap_find(self.handle, pcs.ctypes.data, kinds, len(pcs), idx.ctypes.data,
                                    missing.ctypes.data)
        return idx

    def close(self) -> None:
        if self.handle:
            self._lib.mx_pcmap_free(self.handle)
            self.handle = None

    def __del__(self) -> None:
        self.close()
