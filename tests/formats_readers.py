"""Readers of the trace formats memtap exports, written from each format's own documentation (not from memtap's
writers), so the tests can decode what memtap wrote and compare it with what the guest did."""

from __future__ import annotations

import re
import struct

# --- Valgrind lackey: "I  addr,size" (column 0) and " L|S|M addr,size" (column 1), hex addresses of >= 8 digits
LACKEY_LINE = re.compile(r"^(?:I |  ?[LSM]) [0-9a-f]{8,},[0-9]+$")


def read_lackey(text: str) -> list[tuple[str, int, int]]:
    out = []
    for line in text.splitlines():
        assert re.fullmatch(r"I  [0-9a-f]{8,},\d+| [LSM] [0-9a-f]{8,},\d+", line), line
        addr, size = line[3:].split(",")
        out.append((line[:2].strip(), int(addr, 16), int(size)))
    return out


# --- Dinero IV extended din: "<label> <hex address> <hex size>", labels r w i m c v
def read_dinero(text: str) -> list[tuple[str, int, int]]:
    out = []
    for line in text.splitlines():
        label, addr, size = line.split()
        assert label in "rwimcv" and len(label) == 1, line
        out.append((label, int(addr, 16), int(size, 16)))
    return out


# --- DRAMsim3: "<hex addr> <op> <decimal cycle>", op WRITE or READ
def read_dramsim3(text: str) -> list[tuple[int, str, int]]:
    out = []
    for line in text.splitlines():
        addr, op, cycle = line.split()
        assert op in ("READ", "WRITE") and addr.startswith("0x"), line
        out.append((int(addr, 16), op, int(cycle)))
    return out


# --- Ramulator 2 LoadStoreTrace: "LD|ST <addr>", 0x hex or decimal
def read_ramulator(text: str) -> list[tuple[str, int]]:
    out = []
    for line in text.splitlines():
        op, addr = line.split()
        assert op in ("LD", "ST"), line
        out.append((op, int(addr, 16) if addr.lower().startswith("0x") else int(addr)))
    return out


# --- Ramulator 2 SimpleO3: "<bubbles> <load addr> [<writeback addr>]", decimal
def read_simpleo3(text: str) -> list[tuple[int, int, int | None]]:
    out = []
    for line in text.splitlines():
        tokens = line.split(" ")
        assert len(tokens) in (2, 3), line
        out.append((int(tokens[0]), int(tokens[1]), int(tokens[2]) if len(tokens) == 3 else None))
    return out


# --- protobuf wire format (varints and length-delimited fields), for gem5's packet traces
def varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def message(data: bytes) -> dict[int, list[int | bytes]]:
    """field number -> values (varints as ints, length-delimited as bytes)."""
    fields: dict[int, list[int | bytes]] = {}
    i = 0
    while i < len(data):
        key, i = varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(data, i)
        elif wire == 2:
            n, i = varint(data, i)
            value, i = data[i:i + n], i + n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def gem5_messages(data: bytes) -> list[bytes]:
    """The varint-delimited messages after the 'gem5' magic (gem5's protoio)."""
    assert data[:4] == b"gem5"
    out, i = [], 4
    while i < len(data):
        n, i = varint(data, i)
        out.append(data[i:i + n])
        i += n
    return out


# --- ChampSim input_instr: u64 ip; u8 is_branch, branch_taken; u8 dst_regs[2], src_regs[4]; u64 dst_mem[2],
# src_mem[4]
CHAMPSIM = struct.Struct("<QBB2B4B2Q4Q")


def read_champsim(data: bytes) -> list[dict]:
    assert len(data) % 64 == 0 and CHAMPSIM.size == 64
    out = []
    for off in range(0, len(data), 64):
        v = CHAMPSIM.unpack_from(data, off)
        out.append({"ip": v[0], "is_branch": v[1], "taken": v[2], "dst_regs": [r for r in v[3:5] if r],
                    "src_regs": [r for r in v[5:9] if r], "dst_mem": [m for m in v[9:11] if m],
                    "src_mem": [m for m in v[11:15] if m]})
    return out


# --- uftrace record: u64 time; u64 {type:2, more:1, magic:3, depth:10, addr:48}
def read_uftrace_dat(data: bytes) -> list[tuple[int, int, int, int]]:
    out = []
    for off in range(0, len(data), 16):
        t, word = struct.unpack_from("<QQ", data, off)
        assert (word >> 3) & 7 == 5, "uftrace record magic"
        out.append((t, word & 3, (word >> 6) & 0x3FF, word >> 16))
    return out


# --- Chrome trace-event format (the Trace Event Format document): the JSON object form. tid is optional here:
# uftrace's own `dump --chrome` gives only pid.
TRACE_EVENT_SCHEMA = {
    "type": "object",
    "required": ["traceEvents"],
    "properties": {
        "displayTimeUnit": {"enum": ["ms", "ns"]},
        "traceEvents": {"type": "array", "items": {"$ref": "#/definitions/event"}},
    },
    "definitions": {
        "event": {
            "type": "object",
            "required": ["ph", "pid"],
            "properties": {
                "name": {"type": "string"},
                "cat": {"type": "string"},
                "ph": {"enum": ["B", "E", "X", "i", "I", "C", "M", "b", "e", "n", "s", "t", "f", "P", "O", "N",
                                "D", "R", "c"]},
                "ts": {"type": "number", "minimum": 0},
                "dur": {"type": "number", "minimum": 0},
                "pid": {"type": "integer"},
                "tid": {"type": "integer"},
                "s": {"enum": ["g", "p", "t"]},
                "args": {"type": "object"},
            },
            "allOf": [
                {"if": {"properties": {"ph": {"enum": ["B", "E", "X", "i", "I", "C"]}}},
                 "then": {"required": ["ts"]}},
                {"if": {"properties": {"ph": {"const": "X"}}}, "then": {"required": ["dur"]}},
                {"if": {"properties": {"ph": {"const": "C"}}},
                 "then": {"required": ["name", "args"],
                          "properties": {"args": {"additionalProperties": {"type": "number"}}}}},
                {"if": {"properties": {"ph": {"const": "M"}}},
                 "then": {"required": ["name", "args"],
                          "properties": {"name": {"enum": ["process_name", "thread_name", "process_sort_index",
                                                           "thread_sort_index", "process_labels"]}}}},
            ],
        },
    },
}


def champsim_branch_type(rec: dict) -> str:
    """The branch type ChampSim infers from a record's registers (ChampSim's inc/instruction.h, ooo_model_instr's
    constructor): special registers 6 (stack pointer), 25 (flags), 26 (instruction pointer)."""
    sp, flags, ip = 6, 25, 26
    src, dst = rec["src_regs"], rec["dst_regs"]
    writes_sp, writes_ip = sp in dst, ip in dst
    reads_sp, reads_flags, reads_ip = sp in src, flags in src, ip in src
    reads_other = any(r not in (sp, flags, ip) for r in src)
    if not reads_sp and not reads_flags and writes_ip and not reads_other:
        return "direct_jump"
    if not reads_sp and not reads_ip and not reads_flags and writes_ip and reads_other:
        return "indirect"
    if not reads_sp and reads_ip and not writes_sp and writes_ip and (reads_flags or reads_other):
        return "conditional"
    if reads_sp and reads_ip and writes_sp and writes_ip and not reads_flags and not reads_other:
        return "direct_call"
    if reads_sp and reads_ip and writes_sp and writes_ip and not reads_flags and reads_other:
        return "indirect_call"
    if reads_sp and not reads_ip and writes_sp and writes_ip:
        return "return"
    if writes_ip:
        return "other"
    return "not_branch"
