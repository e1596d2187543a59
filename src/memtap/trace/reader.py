"""Read memtap trace files: chunk index, checksums, vectorized event expansion, filters and orderings.

Opening a trace walks the chunk headers only (seeking over payloads), so it is cheap even for large files and
tells at once whether the file is complete. Iterating decodes one chunk at a time: memory stays bounded by the
batch size, the chunk index and the instruction table, never by the number of records.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import zstandard

from memtap.errors import TraceError, UserError
from memtap.trace import layout as L

DEFAULT_BATCH_SIZE = 1 << 16

Order = Literal["file", "pos"]

# 32-bit QEMU targets: only used to pick a sensible column width when printing addresses.
_TARGETS_32BIT = frozenset(
    {"i386", "arm", "riscv32", "mips", "mipsel", "ppc", "sparc", "m68k", "microblaze", "microblazeel",
     "or1k", "xtensa", "xtensaeb", "hppa", "sh4", "sh4eb", "avr", "rx", "tricore"}
)


@dataclass(frozen=True)
class Chunk:
    """One chunk header and where it sits in the file (for messages and random access)."""

    index: int
    offset: int
    type: int
    vcpu: int
    codec: int
    crc32: int
    stored_len: int
    raw_len: int
    count: int
    seq: int

    @property
    def type_name(self) -> str:
        return L.CHUNK_TYPE_NAMES.get(self.type, str(self.type))


@dataclass
class ScanResult:
    """What ``Trace.scan`` found: enough to tell a user whether a freshly recorded trace is sound."""

    chunks: int = 0
    chunks_by_type: dict[str, int] = field(default_factory=dict)
    insns: int = 0
    events: int = 0
    events_by_vcpu: dict[int, int] = field(default_factory=dict)
    stored_bytes: int = 0
    raw_bytes: int = 0
    file_bytes: int = 0
    truncated: bool = False
    end: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (vCPU keys as strings)."""
        d = dict(self.__dict__)
        d["events_by_vcpu"] = {str(k): v for k, v in self.events_by_vcpu.items()}
        return d


def parse_kinds(kinds: Iterable[str | int] | str | None) -> frozenset[int] | None:
    """Accept kind names ('fetch', 'load', 'store', 'marker'), codes, or a comma-separated string."""
    if kinds is None:
        return None
    if isinstance(kinds, str):
        kinds = [k for k in kinds.split(",") if k.strip()]
    codes = set()
    for k in kinds:
        if isinstance(k, str):
            name = k.strip().lower()
            if name not in L.KIND_CODES:
                raise UserError(f"unknown record kind {k!r} (choose from {', '.join(L.KIND_NAMES)})")
            codes.add(L.KIND_CODES[name])
        else:
            if not 0 <= int(k) < len(L.KIND_NAMES):
                raise UserError(f"unknown record kind code {k!r}")
            codes.add(int(k))
    return frozenset(codes)


def _range(r: tuple[int | None, int | None] | None) -> tuple[int, int | None] | None:
    """Normalise an optional half-open [lo, hi) range; a None end means unbounded."""
    if r is None:
        return None
    lo, hi = r
    lo = 0 if lo is None else int(lo)
    hi = None if hi is None or int(hi) >= 1 << 64 else int(hi)
    if lo < 0 or (hi is not None and hi < 0):
        raise UserError("ranges cannot be negative")
    return (lo, hi)


def _in_range(x: np.ndarray, r: tuple[int, int | None]) -> np.ndarray:
    """Vectorized lo <= x < hi on uint64 columns (hi None = no upper bound)."""
    m = x >= np.uint64(r[0])
    if r[1] is not None:
        m &= x < np.uint64(r[1])
    return m


@dataclass(frozen=True)
class _Filter:
    kinds: frozenset[int] | None
    vcpus: frozenset[int] | None
    addr: tuple[int, int | None] | None
    pos: tuple[int, int | None] | None
    chunks: tuple[int, int | None] | None = None


def open_trace(path: str | os.PathLike[str]) -> Trace:
    """Open a trace file; raises TraceError if it is not a memtap trace or its chunk headers are damaged."""
    return Trace(path)


class Trace:
    """A memtap trace file.

    Attributes: ``path``, ``meta`` (file metadata JSON), ``info`` (INFO chunk JSON, {} if absent), ``end`` (END
    chunk JSON or None), ``truncated`` (no END chunk: the writer did not finish), ``complete``, ``arch``
    (QEMU target name), ``vcpus`` (vCPU indices that have events), ``version`` (format version).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.meta: dict[str, Any] = {}
        self.info: dict[str, Any] = {}
        self.end: dict[str, Any] | None = None
        self.truncated = False
        self.file_size = 0
        # Instruction table, grown as INSNS chunks are read; ids are dense from 0.
        self._iv = np.zeros(0, np.uint64)
        self._isize = np.zeros(0, np.uint8)
        self._ipriv = np.zeros(0, np.uint8)
        self._iflags = np.zeros(0, np.uint8)
        self._icmo = np.zeros(0, np.uint8)
        self._ipaddr = np.zeros(0, np.uint64)  # from INSN_PADDRS chunks, for ids flagged INSN_PADDR
        self._idef = np.zeros(0, bool)
        self._insn_n = 0
        self._insn_next = 0  # position in self._insns_chunks of the next INSNS chunk to load
        with self._open() as f:
            self._read_index(f)
            info_idx = np.flatnonzero(self._types == L.CHUNK_INFO)
            if len(info_idx):
                self.info = self._read_json(f, int(info_idx[0]))
            if not self.truncated:
                self.end = self._read_json(f, len(self._types) - 1)

    # --- opening and indexing -------------------------------------------------------------------------

    def _open(self) -> BinaryIO:
        try:
            return open(self.path, "rb")
        except FileNotFoundError:
            raise UserError(f"{self.path}: no such file") from None
        except IsADirectoryError:
            raise UserError(f"{self.path}: is a directory, not a trace file") from None
        except OSError as e:
            raise UserError(f"{self.path}: cannot open: {e.strerror}") from None

    def _fail(self, offset: int, what: str, index: int | None = None) -> TraceError:
        where = f"chunk {index} at byte offset {offset}" if index is not None else f"byte offset {offset}"
        return TraceError(f"{self.path}: {where}: {what}")

    def _read_index(self, f: BinaryIO) -> None:
        head = f.read(L.FILE_HEADER.itemsize)
        if len(head) < len(L.FILE_MAGIC) or head[: len(L.FILE_MAGIC)] != L.FILE_MAGIC:
            raise TraceError(f"{self.path}: not a memtap trace (bad magic)")
        if len(head) < L.FILE_HEADER.itemsize:
            raise TraceError(f"{self.path}: truncated inside the file header")
        hdr = np.frombuffer(head, L.FILE_HEADER)[0]
        self.version = int(hdr["version"])
        if not 1 <= self.version <= L.FORMAT_VERSION:  # version 1 is version 2 without fetches in DATA events
            raise TraceError(f"{self.path}: unsupported trace format version {self.version} "
                             f"(this memtap reads versions 1 to {L.FORMAT_VERSION})")
        meta_len = int(hdr["meta_len"])
        raw_meta = f.read(meta_len)
        if len(raw_meta) < meta_len:
            raise TraceError(f"{self.path}: truncated inside the metadata ({len(raw_meta)} of {meta_len} bytes)")
        try:
            self.meta = json.loads(raw_meta.decode("utf-8")) if meta_len else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise self._fail(L.FILE_HEADER.itemsize, f"metadata is not valid JSON ({e})") from None

        self.file_size = size = os.fstat(f.fileno()).st_size
        hsize = L.CHUNK_HEADER.itemsize
        off = self.data_offset = L.FILE_HEADER.itemsize + meta_len
        headers = bytearray()
        offsets: list[int] = []
        ended = False
        while off < size:
            n = len(offsets)
            if ended:
                raise self._fail(off, f"{size - off} unexpected bytes after the END chunk")
            if size - off < hsize:
                break  # partial chunk header: the writer died here
            f.seek(off)
            hb = f.read(hsize)
            h = np.frombuffer(hb, L.CHUNK_HEADER)[0]
            if int(h["magic"]) != L.CHUNK_MAGIC:
                raise self._fail(off, f"bad chunk magic 0x{int(h['magic']):08x}", n)
            ctype, codec, count = int(h["type"]), int(h["codec"]), int(h["count"])
            stored, raw = int(h["stored_len"]), int(h["raw_len"])
            if ctype not in L.CHUNK_TYPE_NAMES:
                raise self._fail(off, f"unknown chunk type {ctype}", n)
            if codec not in L.CODEC_NAMES:
                raise self._fail(off, f"unknown codec {codec}", n)
            if int(h["seq"]) != n:
                raise self._fail(off, f"sequence number {int(h['seq'])}, expected {n}", n)
            if ctype == L.CHUNK_INSNS and raw != count * L.INSN.itemsize:
                raise self._fail(off, f"raw_len {raw} does not match {count} instructions", n)
            if ctype == L.CHUNK_INSN_PADDRS and raw != count * L.INSN_PADDR_ROW.itemsize:
                raise self._fail(off, f"raw_len {raw} does not match {count} instruction addresses", n)
            if ctype == L.CHUNK_COUNTS and raw != count * L.COUNT.itemsize:
                raise self._fail(off, f"raw_len {raw} does not match {count} count rows", n)
            if ctype == L.CHUNK_EVENTS and not (
                    count * L.EVENT_COLUMNS_FIXED <= raw <= count * L.EVENT_COLUMNS_MAX):
                raise self._fail(off, f"raw_len {raw} does not fit {count} events", n)
            if codec == L.CODEC_RAW and stored != raw:
                raise self._fail(off, f"raw chunk with stored_len {stored} != raw_len {raw}", n)
            if off + hsize + stored > size:
                break  # partial payload: the writer died here
            headers += hb
            offsets.append(off)
            ended = ctype == L.CHUNK_END
            off += hsize + stored
        self.truncated = not ended
        self._hdrs = np.frombuffer(bytes(headers), L.CHUNK_HEADER)
        self._offsets = np.array(offsets, dtype=np.uint64)
        self._types = self._hdrs["type"].astype(np.int64)
        self._insns_chunks = np.flatnonzero((self._types == L.CHUNK_INSNS) | (self._types == L.CHUNK_INSN_PADDRS))
        ev = self._types == L.CHUNK_EVENTS
        self.vcpus: tuple[int, ...] = tuple(int(v) for v in np.unique(self._hdrs["vcpu"][ev]))

    def chunk(self, index: int) -> Chunk:
        """The header of chunk ``index`` (file order, from 0)."""
        h = self._hdrs[index]
        return Chunk(index, int(self._offsets[index]), *(int(h[k]) for k in
                     ("type", "vcpu", "codec", "crc32", "stored_len", "raw_len", "count", "seq")))

    @property
    def chunks(self) -> list[Chunk]:
        """All whole chunks, in file order."""
        return [self.chunk(i) for i in range(len(self._hdrs))]

    def _read_payload(self, f: BinaryIO, i: int, decompress: bool = True) -> bytes:
        h = self._hdrs[i]
        off = int(self._offsets[i])
        stored = int(h["stored_len"])
        f.seek(off + L.CHUNK_HEADER.itemsize)
        data = f.read(stored)
        if len(data) != stored:
            raise self._fail(off, "payload shorter than stored_len (file shrank while reading?)", i)
        crc = zlib.crc32(data)
        if crc != int(h["crc32"]):
            raise self._fail(off, f"crc32 mismatch (header 0x{int(h['crc32']):08x}, payload 0x{crc:08x})", i)
        if not decompress:
            return data
        raw = int(h["raw_len"])
        if int(h["codec"]) == L.CODEC_ZSTD:
            try:
                data = zstandard.ZstdDecompressor().decompress(data, max_output_size=max(raw, 1))
            except zstandard.ZstdError as e:
                raise self._fail(off, f"cannot decompress zstd payload ({e})", i) from None
        if len(data) != raw:
            raise self._fail(off, f"payload decompresses to {len(data)} bytes, header says {raw}", i)
        return data

    def _read_json(self, f: BinaryIO, i: int) -> dict[str, Any]:
        data = self._read_payload(f, i)
        try:
            obj = json.loads(data.decode("utf-8")) if data else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise self._fail(int(self._offsets[i]), f"payload is not valid JSON ({e})", i) from None
        if not isinstance(obj, dict):
            raise self._fail(int(self._offsets[i]), "JSON payload is not an object", i)
        return obj

    # --- descriptive properties -----------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        """True when the file ends with an END chunk (the writer finished cleanly)."""
        return not self.truncated

    @property
    def arch(self) -> str | None:
        """QEMU target name from the INFO chunk, e.g. 'riscv64'."""
        return self.info.get("target")

    @property
    def address_bits(self) -> int:
        """Guest address width, for display only (64 unless the target is known to be 32-bit)."""
        return 32 if self.arch in _TARGETS_32BIT else 64

    def __repr__(self) -> str:
        state = "truncated" if self.truncated else "complete"
        return f"<memtap.Trace {str(self.path)!r} arch={self.arch} vcpus={list(self.vcpus)} {state}>"

    def __enter__(self) -> Trace:
        return self

    def __exit__(self, *exc: object) -> None:
        """Nothing to release: file handles live only as long as one iteration."""

    # --- validation without decoding ------------------------------------------------------------------

    def scan(self) -> ScanResult:
        """Check every chunk's checksum (without decompressing or decoding events) and count what is there."""
        res = ScanResult(file_bytes=self.file_size, truncated=self.truncated, end=self.end)
        with self._open() as f:
            for i in range(len(self._hdrs)):
                h = self._hdrs[i]
                self._read_payload(f, i, decompress=False)
                name = L.CHUNK_TYPE_NAMES[int(h["type"])]
                res.chunks += 1
                res.chunks_by_type[name] = res.chunks_by_type.get(name, 0) + 1
                res.stored_bytes += int(h["stored_len"])
                res.raw_bytes += int(h["raw_len"])
                if h["type"] == L.CHUNK_INSNS:
                    res.insns += int(h["count"])
                elif h["type"] == L.CHUNK_EVENTS:
                    v = int(h["vcpu"])
                    res.events += int(h["count"])
                    res.events_by_vcpu[v] = res.events_by_vcpu.get(v, 0) + int(h["count"])
        return res

    # --- instruction table ----------------------------------------------------------------------------

    def _grow_insns(self, need: int) -> None:
        if need > len(self._iv):
            cap = max(need, 2 * len(self._iv), 1024)
            for name in ("_iv", "_isize", "_ipriv", "_iflags", "_icmo", "_ipaddr", "_idef"):
                old = getattr(self, name)
                new = np.zeros(cap, old.dtype)
                new[: len(old)] = old
                setattr(self, name, new)

    def _load_insns(self, f: BinaryIO, before: int) -> None:
        """Load every INSNS and INSN_PADDRS chunk that precedes chunk ``before`` (the table is cached and only
        grows)."""
        while self._insn_next < len(self._insns_chunks) and self._insns_chunks[self._insn_next] < before:
            i = int(self._insns_chunks[self._insn_next])
            paddrs = self._types[i] == L.CHUNK_INSN_PADDRS
            ins = np.frombuffer(self._read_payload(f, i), L.INSN_PADDR_ROW if paddrs else L.INSN)
            if len(ins) != int(self._hdrs[i]["count"]):
                raise self._fail(int(self._offsets[i]), "item count does not match the payload", i)
            ids = ins["id"].astype(np.int64)
            need = int(ids.max()) + 1 if len(ids) else 0
            self._grow_insns(need)
            if paddrs:
                self._ipaddr[ids] = ins["paddr"]
            elif len(ins):
                self._iv[ids] = ins["vaddr"]
                self._isize[ids] = ins["size"]
                self._ipriv[ids] = ins["priv"]
                self._iflags[ids] = ins["flags"]
                self._icmo[ids] = ins["cmo"]
                self._idef[ids] = True
                self._insn_n = max(self._insn_n, need)
            self._insn_next += 1

    def insn_table(self) -> np.ndarray:
        """The whole instruction table (INSN dtype, indexed by id; undefined ids have size 0)."""
        with self._open() as f:
            self._load_insns(f, len(self._hdrs))
        n = self._insn_n
        out = np.zeros(n, L.INSN)
        out["id"] = np.arange(n)
        out["vaddr"], out["size"] = self._iv[:n], self._isize[:n]
        out["priv"], out["flags"], out["cmo"] = self._ipriv[:n], self._iflags[:n], self._icmo[:n]
        return out

    @property
    def counts_mode(self) -> bool:
        """True for a trace recorded with ``memtap record --counts`` (counters, no records)."""
        return self.info.get("mode") == "counts"

    def count_rows(self) -> Iterator[np.ndarray]:
        """Yield each COUNTS chunk's rows (COUNT dtype: increments per instruction id and vCPU), in file order."""
        with self._open() as f:
            for i in np.flatnonzero(self._types == L.CHUNK_COUNTS):
                rows = np.frombuffer(self._read_payload(f, int(i)), L.COUNT)
                if len(rows) != int(self._hdrs[i]["count"]):
                    raise self._fail(int(self._offsets[i]), "item count does not match the payload", int(i))
                yield rows

    # --- decoding -------------------------------------------------------------------------------------

    def _expand(self, ev: np.ndarray, nrec: np.ndarray, vcpu: int, i: int) -> np.ndarray:
        """Turn raw events into records without a Python loop per record (np.repeat expands EXEC runs)."""
        n = int(nrec.sum())
        rec = np.zeros(n, L.RECORD)  # zeroed: `fetches` stays 0, as in the ring's plain records
        if n == 0:
            return rec
        idx = np.repeat(np.arange(len(ev)), nrec)
        starts = np.cumsum(nrec) - nrec
        within = np.arange(n, dtype=np.int64) - np.repeat(starts, nrec)
        k = ev["kind"][idx]
        # Records before the last of their event: an EXEC run's are counted up from its first record; the fetches
        # that a DATA event carries end with its own instruction, so they are counted back from the access.
        exec_run = k == L.EV_EXEC
        back = np.where(exec_run, 0, nrec[idx] - 1 - within)        # records after this one in its event
        step = np.where(exec_run, within, -np.maximum(back - 1, 0))  # insn and icount offset
        pos_step = np.where(exec_run, within, -back)
        ids = ev["insn"][idx].astype(np.int64) + step
        if int(ids.min()) < 0 or int(ids.max()) >= self._insn_n or not self._idef[ids].all():
            bad = ids[(ids < 0) | (ids >= self._insn_n) | ~self._idef[np.clip(ids, 0, max(self._insn_n - 1, 0))]]
            bad_id = int(bad[0]) if len(bad) else int(ids.max())
            raise self._fail(int(self._offsets[i]), f"event references undefined instruction id {bad_id}", i)
        fl = ev["flags"][idx]
        is_exec = exec_run | (back > 0)   # fetch records
        is_data = (k == L.EV_DATA) & (back == 0)
        is_mark = k == L.EV_MARK
        is_cmo = k == L.EV_CMO
        is_exc = k == L.EV_EXCEPTION
        exc_from = is_exc & ((fl & L.EVF_EXC_FROM) != 0)
        exc_cause = is_exc & ((fl & L.EVF_EXC_CAUSE) != 0)
        ivaddr = self._iv[ids]
        evaddr = ev["vaddr"][idx]
        iflags = self._iflags[ids]
        fetch_phys = is_exec & ((iflags & L.INSN_PHYS) != 0)   # fetched untranslated: paddr = vaddr
        fetch_translated = is_exec & ((iflags & L.INSN_PADDR) != 0)   # QEMU translated it: INSN_PADDRS
        fetch_paddr = np.where(fetch_translated, self._ipaddr[ids], ivaddr)
        fetch_phys |= fetch_translated
        paddr_ok = (is_data & ((fl & L.EVF_PADDR) != 0)) | fetch_phys
        cmo_addr = is_cmo & ((fl & L.EVF_CMO_ADDR) != 0)
        cmo = self._icmo[ids]
        level = (fl & L.EVF_CMO_LEVEL) >> 1   # from a set/way register; replaces the encoded level
        cmo = np.where(level > 0, (cmo & 0x3F) | (level << 6), cmo).astype(np.uint64)
        rec["pos"] = ev["pos"][idx] + pos_step.astype(np.uint64)   # wraps like the writer's differences
        rec["icount"] = ev["icount"][idx] + step.astype(np.uint64)
        rec["pc"] = ivaddr
        rec["vaddr"] = np.where(is_exec, ivaddr, np.where(is_data | cmo_addr | exc_from, evaddr, 0))
        rec["paddr"] = np.where(fetch_phys, fetch_paddr, np.where(paddr_ok, ev["paddr"][idx], 0))
        rec["value"] = np.where(is_mark, evaddr, np.where(is_cmo, cmo, np.where(
            is_data, ev["value"][idx], np.where(exc_cause, ev["paddr"][idx], 0))))
        rec["value_hi"] = np.where(is_data, ev["value_hi"][idx], 0)
        rec["vcpu"] = vcpu
        rec["kind"] = np.where(is_exec, L.KIND_FETCH, np.where(is_mark, L.KIND_MARKER, np.where(
            is_cmo, L.KIND_CMO, np.where(is_exc, L.KIND_EXCEPTION, np.where(
                (fl & L.EVF_STORE) != 0, L.KIND_STORE, L.KIND_LOAD)))))
        rec["size"] = np.where(is_exec, self._isize[ids],
                               np.where(is_data, np.left_shift(1, fl & L.EVF_SIZE_MASK), 0))
        rec["priv"] = self._ipriv[ids]
        dflags = ((fl & (L.EVF_IO | L.EVF_SIGNED | L.EVF_BIG_ENDIAN)) >> 4) | (paddr_ok.astype(np.uint8) << 1)
        dflags |= np.where((iflags & L.INSN_ATOMIC) != 0, L.RF_ATOMIC, 0).astype(np.uint8)
        dflags |= np.where((iflags & L.INSN_EXCLUSIVE) != 0, L.RF_EXCLUSIVE, 0).astype(np.uint8)
        if self.info.get("values"):
            dflags |= np.uint8(L.RF_VALUE)
        whole = ((cmo >> 4) & 3) == L.CMO_WHOLE
        cflags = np.where(cmo_addr | whole, 0, L.RF_NOADDR).astype(np.uint8)
        xflags = (np.where(exc_from, 0, L.RF_NOADDR) | np.where(exc_cause, L.RF_VALUE, 0)
                  | np.where((fl & L.EVF_EXC_INTERRUPT) != 0, L.RF_INTERRUPT, 0)).astype(np.uint8)
        rec["flags"] = np.where(is_data, dflags, np.where(is_cmo, cflags, np.where(
            is_exc, xflags, np.where(fetch_phys, L.RF_PADDR, 0))))
        return rec

    def _decode_chunk(self, f: BinaryIO, i: int, flt: _Filter, batch_size: int) -> Iterator[np.ndarray]:
        """Yield the filtered records of EVENTS chunk ``i`` in slices of at most ``batch_size`` records."""
        self._load_insns(f, i)
        off = int(self._offsets[i])
        try:
            ev = L.columns_to_events(self._read_payload(f, i), int(self._hdrs[i]["count"]),
                                     bool(self.info.get("values")))
        except ValueError as exc:
            raise self._fail(off, str(exc), i) from None
        vcpu = int(self._hdrs[i]["vcpu"])
        k = ev["kind"]
        badk = (k < L.EV_EXEC) | (k > L.EV_EXCEPTION)
        if badk.any():
            j = int(np.flatnonzero(badk)[0])
            raise self._fail(off, f"event {j} has unknown kind {int(k[j])}", i)
        nrec = ev["count"].astype(np.int64)
        badc = (nrec == 0) | ((nrec != 1) & (k != L.EV_EXEC) & (k != L.EV_DATA))
        if badc.any():
            j = int(np.flatnonzero(badc)[0])
            raise self._fail(off, f"event {j} has a bad record count {int(nrec[j])}", i)
        fetches = (k == L.EV_EXEC) | ((k == L.EV_DATA) & (nrec > 1))   # events with fetch records
        # Drop whole events that cannot produce a wanted record before expanding them.
        keep = np.ones(len(ev), bool)
        if flt.kinds is not None:
            store = (ev["flags"] & L.EVF_STORE) != 0
            keep &= (fetches & (L.KIND_FETCH in flt.kinds)) | (
                (k == L.EV_MARK) & (L.KIND_MARKER in flt.kinds)) | (
                (k == L.EV_CMO) & (L.KIND_CMO in flt.kinds)) | (
                (k == L.EV_EXCEPTION) & (L.KIND_EXCEPTION in flt.kinds)) | (
                (k == L.EV_DATA) & np.where(store, L.KIND_STORE in flt.kinds, L.KIND_LOAD in flt.kinds))
        if flt.pos is not None:
            lo, hi = flt.pos
            span = nrec.astype(np.uint64) - np.uint64(1)
            first = np.where(k == L.EV_EXEC, ev["pos"], ev["pos"] - span)   # an event's records: first .. first+span
            keep &= first + span >= np.uint64(lo)
            if hi is not None:
                keep &= first < np.uint64(hi)
        if flt.addr is not None:
            keep &= fetches | (((k == L.EV_DATA) | (k == L.EV_CMO)) & _in_range(ev["vaddr"], flt.addr))
        if not keep.all():
            ev, nrec = ev[keep], nrec[keep]
        kind_ok = None
        if flt.kinds is not None:
            kind_ok = np.zeros(256, bool)
            kind_ok[list(flt.kinds)] = True
        cum = np.cumsum(nrec)
        start = 0
        done = 0
        while start < len(ev):
            # An event holds up to 65535 records, so slice events by their cumulative record count.
            end = int(np.searchsorted(cum, done + batch_size, side="right"))
            end = max(end, start + 1)
            rec = self._expand(ev[start:end], nrec[start:end], vcpu, i)
            done = int(cum[end - 1])
            start = end
            sel = None
            if kind_ok is not None:
                sel = kind_ok[rec["kind"]]
            if flt.pos is not None:
                s = _in_range(rec["pos"], flt.pos)
                sel = s if sel is None else sel & s
            if flt.addr is not None:
                s = _in_range(rec["vaddr"], flt.addr) & (rec["kind"] != L.KIND_MARKER)
                sel = s if sel is None else sel & s
            if sel is not None:
                rec = rec[sel]
            for b in range(0, len(rec), batch_size):
                yield rec[b: b + batch_size]

    def _events_chunks(self, flt: _Filter) -> np.ndarray:
        """Indices of the EVENTS chunks the filter's chunk range keeps (chunk index = sequence number)."""
        idx = np.flatnonzero(self._types == L.CHUNK_EVENTS)
        if flt.chunks is not None:
            idx = idx[_in_range(idx.astype(np.uint64), flt.chunks)]
        return idx

    def _vcpu_stream(self, f: BinaryIO, vcpu: int, flt: _Filter, batch_size: int) -> Iterator[np.ndarray]:
        for i in self._events_chunks(flt):
            if int(self._hdrs[i]["vcpu"]) == vcpu:
                yield from self._decode_chunk(f, int(i), flt, batch_size)

    def _merged(self, f: BinaryIO, flt: _Filter, batch_size: int) -> Iterator[np.ndarray]:
        """Streaming k-way merge of the per-vCPU streams into global ``pos`` order.

        Each vCPU's records are already in pos order; the merge emits everything up to the smallest
        "last buffered pos" among vCPUs that still have data coming, so at most one batch per vCPU is held.
        """
        vcpus = [v for v in self.vcpus if flt.vcpus is None or v in flt.vcpus]
        streams = {v: self._vcpu_stream(f, v, flt, batch_size) for v in vcpus}
        bufs: dict[int, np.ndarray] = {}
        live: set[int] = set()

        def refill(v: int) -> None:
            for b in streams[v]:
                if len(b):
                    bufs[v] = b
                    live.add(v)
                    return
            live.discard(v)
            bufs.pop(v, None)

        for v in vcpus:
            refill(v)
        while bufs:
            horizon = min((int(bufs[v]["pos"][-1]) for v in live), default=None)
            taken = []
            for v in list(bufs):
                b = bufs[v]
                cut = len(b) if horizon is None else int(np.searchsorted(b["pos"], np.uint64(horizon), "right"))
                if cut:
                    taken.append(b[:cut])
                    bufs[v] = b[cut:]
            out = np.concatenate(taken) if len(taken) > 1 else taken[0]
            if len(taken) > 1:
                out = out[np.argsort(out["pos"], kind="stable")]
            for s in range(0, len(out), batch_size):
                yield out[s: s + batch_size]
            for v in list(bufs):
                if len(bufs[v]) == 0:
                    if v in live:
                        refill(v)
                    else:
                        del bufs[v]

    # --- public iteration -----------------------------------------------------------------------------

    def batches(
        self,
        kinds: Iterable[str | int] | str | None = None,
        vcpus: Iterable[int] | int | None = None,
        addr_range: tuple[int | None, int | None] | None = None,
        pos_range: tuple[int | None, int | None] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        order: Order = "file",
        chunk_range: tuple[int | None, int | None] | None = None,
    ) -> Iterator[np.ndarray]:
        """Yield RECORD arrays of at most ``batch_size`` records.

        ``order="file"``: chunk by chunk as stored (each vCPU's records in program order, vCPUs interleaved by
        chunk). ``order="pos"``: one global order over all vCPUs (streaming merge). ``addr_range`` and
        ``pos_range`` are half-open [lo, hi) on vaddr and pos; markers have no address, so ``addr_range``
        drops them. ``chunk_range`` = (lo, hi): only EVENTS chunks whose sequence number is in [lo, hi) (the
        partitions of an export). Empty batches are never yielded.
        """
        if batch_size < 1:
            raise UserError("batch_size must be at least 1")
        if self.counts_mode:
            raise UserError(f"{self.path} was recorded with --counts: it holds per-instruction counters, not records "
                            "(use memtap stats, coverage or profile)")
        if isinstance(vcpus, int):
            vcpus = [vcpus]
        flt = _Filter(parse_kinds(kinds), None if vcpus is None else frozenset(int(v) for v in vcpus),
                      _range(addr_range), _range(pos_range), _range(chunk_range))
        if order not in ("file", "pos"):
            raise UserError(f"unknown order {order!r} (choose 'file' or 'pos')")
        with self._open() as f:
            if order == "pos":
                yield from self._merged(f, flt, batch_size)
                return
            for i in self._events_chunks(flt):
                if flt.vcpus is not None and int(self._hdrs[i]["vcpu"]) not in flt.vcpus:
                    continue
                for b in self._decode_chunk(f, int(i), flt, batch_size):
                    if len(b):
                        yield b

    def columns(self, names: Iterable[str] | None = None, **kwargs: Any) -> Iterator[dict[str, np.ndarray]]:
        """Yield the selected records as batches of columns: {name: numpy array}, all of one length, only the
        ``names`` asked for (RECORD field names; default all). Takes ``batches``' selection keywords, with
        ``batch_rows`` for its ``batch_size``."""
        wanted = list(L.RECORD.names if names is None else names)
        unknown = [n for n in wanted if n not in L.RECORD.names]
        if unknown:
            raise UserError(f"unknown record column {unknown[0]!r} (choose from {', '.join(L.RECORD.names)})")
        if "batch_rows" in kwargs:
            kwargs["batch_size"] = kwargs.pop("batch_rows")
        for b in self.batches(**kwargs):
            yield {n: np.ascontiguousarray(b[n]) for n in wanted}

    def records(self, **kwargs: Any) -> np.ndarray:
        """All matching records as one RECORD array (memory grows with the result: filter first)."""
        parts = list(self.batches(**kwargs))
        return np.concatenate(parts) if parts else np.empty(0, L.RECORD)

    def sorted(self, **kwargs: Any) -> np.ndarray:
        """All matching records in global ``pos`` order, as one RECORD array."""
        kwargs["order"] = "pos"
        return self.records(**kwargs)

    def arrow_batches(self, columns: Iterable[str] | None = None, **kwargs: Any) -> Iterator[Any]:
        """The selection as pyarrow RecordBatches of the Arrow ``columns`` asked for (default all; see
        ``memtap.trace.arrow.arrow_schema``), decoding only the record columns they need."""
        from memtap.trace.arrow import arrow_batches

        return arrow_batches(self, columns, **kwargs)

    def to_arrow_reader(self, columns: Iterable[str] | None = None, **kwargs: Any) -> Any:
        """The selection as a streaming pyarrow.RecordBatchReader, for DuckDB, Polars or Arrow to query without an
        intermediate file (``duckdb.sql("select kind, count(*) from reader group by kind")``). Takes ``columns``'
        selection keywords; memory stays at about one batch."""
        from memtap.trace.arrow import record_batch_reader

        return record_batch_reader(self, columns, **kwargs)

    def to_arrow(self, columns: Iterable[str] | None = None, **kwargs: Any) -> Any:
        """All matching records as a pyarrow Table (memory grows with the result: filter first)."""
        return self.to_arrow_reader(columns, **kwargs).read_all()

    def to_pandas(self, **kwargs: Any) -> Any:
        """All matching records as a pandas DataFrame with nullable integer columns (no float rounding)."""
        import pandas as pd
        import pyarrow as pa

        mapping = {pa.uint64(): pd.UInt64Dtype(), pa.uint16(): pd.UInt16Dtype(), pa.uint8(): pd.UInt8Dtype(),
                   pa.bool_(): pd.BooleanDtype(), pa.string(): pd.StringDtype()}
        return self.to_arrow(**kwargs).to_pandas(types_mapper=mapping.get)


# The Arrow form of records lives in memtap.trace.arrow; its names stay importable from here, loaded on first use
# (pyarrow takes a while to import, and most commands never need it).
priv_index = L.priv_index
_ARROW_NAMES = ("ARROW_COLUMNS", "arrow_schema", "records_to_arrow")


def __getattr__(name: str) -> Any:
    if name in _ARROW_NAMES:
        from memtap.trace import arrow

        return getattr(arrow, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
