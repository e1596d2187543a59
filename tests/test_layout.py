"""Check memtap/layout.py against include/memtap/trace.h by compiling the header.

The struct fields and constants are discovered by parsing the header, so a field or constant added to the C
side without its Python mirror fails here instead of silently mis-decoding traces.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from memtap.trace import layout

ROOT = Path(__file__).resolve().parents[1]
HEADER = ROOT / "include" / "memtap" / "trace.h"

STRUCTS = {
    "memtap_file_header": layout.FILE_HEADER,
    "memtap_chunk_header": layout.CHUNK_HEADER,
    "memtap_insn": layout.INSN,
    "memtap_insn_paddr": layout.INSN_PADDR_ROW,
    "memtap_count": layout.COUNT,
    "memtap_event": layout.EVENT,
    "memtap_record": layout.RECORD,
    "memtap_ring_header": layout.RING_HEADER,
    "memtap_ring_consumer": layout.RING_CONSUMER,
    "memtap_ring_buffer": layout.RING_BUFFER,
}


def _strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def _parse_header() -> tuple[dict[str, list[str]], list[str], list[str]]:
    """Return struct -> field names, integer constant names, string constant names."""
    text = _strip_comments(HEADER.read_text())
    structs: dict[str, list[str]] = {}
    for name, body in re.findall(r"struct\s+(\w+)\s*\{(.*?)\};", text, flags=re.S):
        fields = []
        for decl in body.split(";"):
            decl = decl.strip()
            if decl:
                fields.append(re.match(r".*?(\w+)\s*(\[\d+\])?$", decl, flags=re.S).group(1))
        structs[name] = fields
    ints, strings = [], []
    for name, value in re.findall(r"^#define[ \t]+(MEMTAP_\w+)[ \t]+(\S+)", text, flags=re.M):
        (strings if value.startswith('"') else ints).append(name)
    for body in re.findall(r"enum\s+\w+\s*\{(.*?)\};", text, flags=re.S):
        ints += re.findall(r"(MEMTAP_\w+)\s*=", body)
    return structs, ints, strings


def _c_program(structs: dict[str, list[str]], ints: list[str], strings: list[str]) -> str:
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <memtap/trace.h>", "int main(void) {"]
    for s, fields in structs.items():
        lines.append(f'printf("sizeof {s} %zu\\n", sizeof(struct {s}));')
        for f in fields:
            lines.append(f'printf("offset {s}.{f} %zu\\n", offsetof(struct {s}, {f}));')
            lines.append(f'printf("size {s}.{f} %zu\\n", sizeof(((struct {s} *)0)->{f}));')
    for c in ints:
        lines.append(f'printf("const {c} %llu\\n", (unsigned long long)({c}));')
    for c in strings:
        lines.append(f'printf("string {c} %s\\n", {c});')
    lines += ["return 0;", "}"]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def c_values(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], tuple]:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler (cc, gcc or clang) on PATH: cannot check layout.py against trace.h")
    parsed = _parse_header()
    tmp = tmp_path_factory.mktemp("layout")
    src = tmp / "layout.c"
    exe = tmp / "layout"
    src.write_text(_c_program(*parsed))
    build = subprocess.run(
        [cc, "-std=c11", "-Wall", "-Werror", "-I", str(ROOT / "include"), "-o", str(exe), str(src)],
        capture_output=True, text=True,
    )
    assert build.returncode == 0, f"compiling the layout probe failed:\n{build.stderr}"
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    values = {}
    for line in out.splitlines():
        what, key, value = line.split(" ", 2)
        values[f"{what} {key}"] = value
    return values, parsed


def test_header_parse_found_everything(c_values: tuple[dict[str, str], tuple]) -> None:
    _, (structs, ints, strings) = c_values
    assert set(structs) == set(STRUCTS)
    assert "MEMTAP_FILE_MAGIC" in strings
    assert {"MEMTAP_CHUNK_EVENTS", "MEMTAP_EVF_PADDR", "MEMTAP_PRIV_UNKNOWN", "MEMTAP_EV_MARK"} <= set(ints)


@pytest.mark.parametrize("struct", sorted(STRUCTS))
def test_struct_layout(c_values: tuple[dict[str, str], tuple], struct: str) -> None:
    values, (structs, _, _) = c_values
    dtype = STRUCTS[struct]
    assert dtype.itemsize == int(values[f"sizeof {struct}"])
    assert list(dtype.names) == structs[struct]
    for field in structs[struct]:
        ftype, offset = dtype.fields[field][:2]
        assert offset == int(values[f"offset {struct}.{field}"]), field
        assert ftype.itemsize == int(values[f"size {struct}.{field}"]), field
        if ftype.kind in "ui":
            assert ftype.byteorder in "<|=" and ftype.kind == "u", field


def test_constants(c_values: tuple[dict[str, str], tuple]) -> None:
    values, (_, ints, strings) = c_values
    for name in ints:
        py_name = name.removeprefix("MEMTAP_")
        assert hasattr(layout, py_name), f"layout.py lacks {py_name}"
        assert getattr(layout, py_name) == int(values[f"const {name}"]), name
    for name in strings:
        py_name = name.removeprefix("MEMTAP_")
        assert getattr(layout, py_name) == values[f"string {name}"].encode(), name


def test_record_dtype() -> None:
    assert layout.RECORD.names == (
        "pos", "icount", "vaddr", "paddr", "pc", "value", "vcpu", "kind", "size", "priv", "flags", "fetches",
        "value_hi"
    )
    assert layout.RECORD.itemsize == 64
    assert layout.RECORD["vcpu"] == np.dtype("<u2")
    assert layout.KIND_NAMES[layout.KIND_STORE] == "store"
    assert [layout.PRIV_NAMES[p] for p in sorted(layout.PRIV_NAMES)] == [
        "user", "supervisor", "hypervisor", "machine", "unknown"
    ]


def test_ring_geometry_fits_cache_lines(c_values: tuple[dict[str, str], tuple]) -> None:
    """Producer-written, consumer-written and status words sit in separate 64-byte lines of the ring header."""
    values, _ = c_values
    lines = {f: int(values[f"offset memtap_ring_header.{f}"]) // 64
             for f in ("write_seq", "release_futex", "status_rate", "ctl_seq", "magic")}
    assert len(set(lines.values())) == len(lines)
    assert int(values["sizeof memtap_ring_consumer"]) == 64
    assert values["string MEMTAP_RING_MAGIC"] == "MEMTAPRG"


def test_documented_names_are_the_stage_modules():
    """memtap.layout, memtap.reader, memtap.ring and memtap.cachesim, the names README and docs/ use, are the very
    modules of the package's stages, not copies."""
    import memtap.analysis.cachesim
    import memtap.cachesim
    import memtap.layout
    import memtap.live.ring
    import memtap.reader
    import memtap.ring
    import memtap.trace.layout
    import memtap.trace.reader

    assert memtap.layout is memtap.trace.layout
    assert memtap.reader is memtap.trace.reader
    assert memtap.ring is memtap.live.ring and callable(memtap.ring.connect)
    assert memtap.cachesim is memtap.analysis.cachesim and callable(memtap.cachesim.simulate)
    assert memtap.open.__doc__ and memtap.trace.open_trace is memtap.trace.reader.open_trace
