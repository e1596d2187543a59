"""The Thrift compact protocol, as far as Parquet's page headers and file footer need it (writing only).

A struct is a list of (field id, type, value) triples in increasing field-id order; a None value leaves the field
out. Types: "bool", "byte", "i16", "i32", "i64", "binary", "struct", and "list:T" for lists of T.
"""

from __future__ import annotations

from typing import Any

_TYPES = {"bool": 1, "byte": 3, "i16": 4, "i32": 5, "i64": 6, "binary": 8, "list": 9, "struct": 12}
Struct = list[tuple[int, str, Any]]


def _varint(out: bytearray, v: int) -> None:
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _zigzag(out: bytearray, v: int) -> None:
    _varint(out, (v << 1) ^ (v >> 63) if v < 0 else v << 1)


def _value(out: bytearray, kind: str, v: Any) -> None:
    """A value without its field header (as list elements are written)."""
    if kind == "bool":
        out.append(1 if v else 2)
    elif kind == "byte":
        out.append(v & 0xFF)
    elif kind in ("i16", "i32", "i64"):
        _zigzag(out, int(v))
    elif kind == "binary":
        data = v.encode() if isinstance(v, str) else bytes(v)
        _varint(out, len(data))
        out += data
    elif kind == "struct":
        _struct(out, v)
    else:
        elem = kind.split(":", 1)[1]
        code = _TYPES[elem.split(":")[0]]
        if len(v) < 15:
            out.append(len(v) << 4 | code)
        else:
            out.append(0xF0 | code)
            _varint(out, len(v))
        for item in v:
            _value(out, elem, item)


def _struct(out: bytearray, fields: Struct) -> None:
    last = 0
    for fid, kind, v in fields:
        if v is None:
            continue
        code = _TYPES[kind.split(":")[0]]
        if kind == "bool":
            code = 1 if v else 2
        if 0 < fid - last <= 15:
            out.append((fid - last) << 4 | code)
        else:
            out.append(code)
            _zigzag(out, fid)
        last = fid
        if kind != "bool":
            _value(out, kind, v)
    out.append(0)


def encode(fields: Struct) -> bytes:
    """A struct's bytes in the compact protocol."""
    out = bytearray()
    _struct(out, fields)
    return bytes(out)
