"""CLI tests for view, stats and export, through the real ``memtap`` dispatcher (memtap.cli.main)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from tracegen import Insn, TraceWriter, data_ev, exec_ev, simple_trace

from memtap.cli.main import main
from memtap.errors import TraceError, UserError
from memtap.export.csv import csv_text
from memtap.export.tabular import export_csv, export_parquet, export_partitioned
from memtap.trace import layout as L
from memtap.trace.reader import open_trace

SRC = Path(__file__).resolve().parents[1] / "src"

VIEW_SIMPLE = [
    "pos=0          vcpu=0   icount=1          fetch  va=0x1000             pa=-                  size=4   "
    "pc=0x1000             priv=machine",
    "pos=1          vcpu=0   icount=2          fetch  va=0x1004             pa=-                  size=2   "
    "pc=0x1004             priv=machine",
    "pos=2          vcpu=0   icount=3          fetch  va=0x1006             pa=-                  size=4   "
    "pc=0x1006             priv=machine",
    "pos=3          vcpu=0   icount=2          load   va=0x8000             pa=0x80008000         size=8   "
    "pc=0x1004             priv=machine",
    "pos=4          vcpu=1   icount=10         fetch  va=0x2000             pa=-                  size=4   "
    "pc=0x2000             priv=user",
    "pos=5          vcpu=1   icount=11         fetch  va=0x2004             pa=-                  size=4   "
    "pc=0x2004             priv=user",
    "pos=6          vcpu=1   icount=11         store  va=0x9004             pa=-                  size=4   "
    "pc=0x2004             priv=user       io",
    "pos=7          vcpu=1   icount=12         fetch  va=0x2008             pa=-                  size=4   "
    "pc=0x2008             priv=user",
    "pos=8          vcpu=1   icount=12         marker va=-                  pa=-                  size=0   "
    "pc=0x2008             priv=user       value=0x2a",
]

CSV_SIMPLE = [
    "pos,icount,vcpu,kind,vaddr,paddr,size,pc,priv,io,value,value_hi,atomic,exclusive",
    "0,1,0,fetch,0x1000,,4,0x1000,machine,false,,,false,false",
    "1,2,0,fetch,0x1004,,2,0x1004,machine,false,,,false,false",
    "2,3,0,fetch,0x1006,,4,0x1006,machine,false,,,false,false",
    "3,2,0,load,0x8000,0x80008000,8,0x1004,machine,false,,,false,false",
    "4,10,1,fetch,0x2000,,4,0x2000,user,false,,,false,false",
    "5,11,1,fetch,0x2004,,4,0x2004,user,false,,,false,false",
    "6,11,1,store,0x9004,,4,0x2004,user,true,,,false,false",
    "7,12,1,fetch,0x2008,,4,0x2008,user,false,,,false,false",
    "8,12,1,marker,,,0,0x2008,user,false,42,,false,false",
]


@pytest.fixture
def simple(tmp_path: Path) -> Path:
    path = tmp_path / "simple.memtap"
    simple_trace(path, codec=L.CODEC_ZSTD)
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


# --- view -----------------------------------------------------------------------------------------------


def test_view_all(simple: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_cli(capsys, "view", simple)
    assert rc == 0 and err == ""
    assert out.splitlines() == VIEW_SIMPLE


def test_view_options(simple: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, "view", simple, "--head", "2")[1].splitlines() == VIEW_SIMPLE[:2]
    assert run_cli(capsys, "view", simple, "--head", "0")[1] == ""
    assert run_cli(capsys, "view", simple, "--range", "3:7")[1].splitlines() == VIEW_SIMPLE[3:7]
    assert run_cli(capsys, "view", simple, "--range", "7:")[1].splitlines() == VIEW_SIMPLE[7:]
    assert run_cli(capsys, "view", simple, "--kinds", "load,store")[1].splitlines() == [VIEW_SIMPLE[3],
                                                                                        VIEW_SIMPLE[6]]
    assert run_cli(capsys, "view", simple, "--kinds", "marker", "--kinds", "load")[1].splitlines() == [
        VIEW_SIMPLE[3], VIEW_SIMPLE[8]]
    assert run_cli(capsys, "view", simple, "--vcpu", "1", "--head", "2")[1].splitlines() == VIEW_SIMPLE[4:6]
    assert run_cli(capsys, "view", simple, "--addr", "0x8000:0x9000")[1].splitlines() == [VIEW_SIMPLE[3]]
    assert run_cli(capsys, "view", simple, "--order", "file")[1].splitlines() == VIEW_SIMPLE


@pytest.mark.parametrize("argv, message", [
    (["--range", "5"], "memtap: --range: expected LO:HI"),
    (["--range", "x:3"], "memtap: --range: 'x' is not a number"),
    (["--range", "9:3"], "memtap: --range: '9:3' ends before it starts"),
    (["--kinds", "jump"], "memtap: unknown record kind 'jump'"),
    (["--head", "-1"], "memtap: --head: N must be >= 0"),
])
def test_view_bad_options(simple: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    rc, out, err = run_cli(capsys, "view", simple, *argv)
    assert rc == 1 and out == ""
    assert err.startswith(message) and err.count("\n") == 1


def test_view_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"ELF\0" * 10)
    rc, out, err = run_cli(capsys, "view", bad)
    assert rc == 1 and err == f"memtap: {bad}: not a memtap trace (bad magic)\n"
    path = tmp_path / "crc.memtap"
    with TraceWriter(path) as w:
        w.info()
        w.insns([Insn(0x1000)])
        off = w.events(0, [exec_ev(0, 1, pos=0, icount=1)], bad_crc=True)
    rc, out, err = run_cli(capsys, "view", path)
    assert rc == 1
    assert f"chunk 2 at byte offset {off}: crc32 mismatch" in err and err.count("\n") == 2  # + truncated warning


def test_view_truncated_warns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.memtap"
    simple_trace(path, end=False)
    rc, out, err = run_cli(capsys, "view", path)
    assert rc == 0 and out.splitlines() == VIEW_SIMPLE
    assert "truncated" in err


def _big_trace(path: Path, n: int = 200_000) -> None:
    with TraceWriter(path) as w:
        w.info()
        w.insns([Insn(0x1000 + 4 * i) for i in range(16)])
        for c in range(n // 1000):
            w.events(0, [data_ev(0, 0x8000 + 8 * i, pos=c * 1000 + i, icount=1) for i in range(1000)])
        w.end()


def test_view_closed_pipe(tmp_path: Path) -> None:
    path = tmp_path / "big.memtap"
    _big_trace(path)
    code = "import sys; from memtap.cli.main import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(f"{sys.executable} -c '{code}' view {path} | head -n 1; exit ${{PIPESTATUS[0]}}",
                          shell=True, executable="/bin/bash", capture_output=True, text=True, env=env)
    assert proc.stdout.startswith("pos=0 ")
    assert proc.stdout.count("\n") == 1
    assert proc.stderr == ""
    assert proc.returncode == 0


# --- stats ----------------------------------------------------------------------------------------------


def test_stats_json(simple: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_cli(capsys, "stats", simple, "--json")
    assert rc == 0
    s = json.loads(out)
    assert s["records"] == 9 and s["complete"] and not s["truncated"]
    assert s["target"] == "riscv64" and s["smp_vcpus"] == 2
    assert s["by_kind"] == {"fetch": 6, "load": 1, "store": 1, "marker": 1, "cmo": 0, "exception": 0}
    assert s["by_vcpu"]["0"] == {"records": 4, "fetch": 3, "load": 1, "store": 0, "marker": 0, "cmo": 0,
                                 "exception": 0, "max_icount": 3}
    assert s["by_vcpu"]["1"]["max_icount"] == 12
    assert s["by_size"] == {"4": 1, "8": 1}
    assert s["by_priv"] == {"user": 5, "machine": 4}
    assert s["instructions"] == {"fetch_records": 6, "max_icount_by_vcpu": {"0": 3, "1": 12}}
    fp = s["footprint"]
    assert (fp["data_accesses"], fp["io_accesses"], fp["accesses_with_paddr"]) == (2, 1, 1)
    assert (fp["lines_64b"], fp["pages_4k"], fp["physical_pages_4k"]) == (2, 2, 1)
    assert (fp["vaddr_min"], fp["vaddr_max"]) == (0x8000, 0x9004)
    assert s["markers"]["count"] == 1 and s["markers"]["by_value"] == {"42": 1}


def test_stats_footprint_straddles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "fp.memtap"
    with TraceWriter(path) as w:
        w.info()
        w.insns([Insn(0x100)])
        w.events(0, [data_ev(0, 0x1000 - 4, pos=0, icount=1, size=8),  # lines 0x3f,0x40; pages 0,1
                     data_ev(0, 0x1008, pos=1, icount=1, size=8),  # line 0x40, page 1
                     data_ev(0, 0x5000, pos=2, icount=1, size=1)])  # line 0x140, page 5
    s = json.loads(run_cli(capsys, "stats", path, "--json")[1])
    assert s["truncated"] is True
    assert s["footprint"]["lines_64b"] == 3 and s["footprint"]["pages_4k"] == 3


def test_stats_text(simple: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(capsys, "stats", simple)
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == f"trace       {simple}"
    assert "status      complete" in lines
    assert "records     9  (pos 0..8)" in lines
    assert ["fetch", "6"] in [ln.split() for ln in lines]
    assert ["exception", "0"] in [ln.split() for ln in lines]
    assert any(ln.split() == ["distinct", "64", "B", "lines", "2"] for ln in lines)
    assert all(ln == ln.rstrip() for ln in lines)


# --- export ---------------------------------------------------------------------------------------------


def test_csv_number_formats() -> None:
    """The C formatter's edges: no leading zeros in hex (one digit for 0), the widest values, nulls empty."""
    vals = np.array([0, 1, 0xF, 0x10, 0xFFFFFFFFFFFFFFFF, 0x80001008, 5], np.uint64)
    flags = np.array([2, 3, 3, 3, 3, 3, 1], np.uint8)   # RF_PADDR 2, RF_IO 1
    cols = {"pos": vals, "vaddr": vals, "paddr": vals, "flags": flags,
            "kind": np.array([1, 2, 2, 2, 2, 2, 0], np.uint8), "value": np.zeros(7, np.uint64)}
    text = b"".join(bytes(p) for p in csv_text(cols, ["pos", "paddr", "kind", "io"])).decode()
    assert text.splitlines() == ["0,0x0,load,false", "1,0x1,store,true", "15,0xf,store,true",
                                 "16,0x10,store,true", "18446744073709551615,0xffffffffffffffff,store,true",
                                 "2147487752,0x80001008,store,true", "5,,fetch,false"]   # io: loads and stores


def test_export_csv_file(simple: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.csv"
    rc, stdout, err = run_cli(capsys, "export", simple, "--format", "csv", "-o", out)
    assert rc == 0 and stdout == "" and err == ""
    assert out.read_text().splitlines() == CSV_SIMPLE
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows[3]["paddr"] == "0x80008000" and rows[0]["paddr"] == ""


def test_export_csv_stdout_and_filters(simple: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(capsys, "export", simple, "-o", "-", "--kinds", "store,load")
    assert rc == 0
    assert out.splitlines() == [CSV_SIMPLE[0], CSV_SIMPLE[4], CSV_SIMPLE[7]]


def test_export_csv_streams_in_batches(simple: Path) -> None:
    buf = io.BytesIO()
    assert export_csv(open_trace(simple), buf, batch_size=2) == 9
    assert buf.getvalue().decode().splitlines() == CSV_SIMPLE


def test_export_parquet(simple: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.parquet"
    rc, _, err = run_cli(capsys, "export", simple, "-o", out)  # format from the suffix
    assert rc == 0 and err == ""
    tab = pq.read_table(out)
    assert tab.column_names == ["pos", "icount", "vcpu", "kind", "vaddr", "paddr", "size", "pc", "priv", "io",
                                "value", "value_hi", "atomic", "exclusive"]
    assert tab.to_pydict() == open_trace(simple).to_arrow().to_pydict()
    assert tab.column("paddr").to_pylist()[3] == 0x80008000
    duckdb = pytest.importorskip("duckdb")
    con = duckdb.connect()
    got = con.execute(f"SELECT kind, count(*), min(vaddr), count(paddr) FROM read_parquet('{out}') "
                      "GROUP BY kind ORDER BY kind").fetchall()
    assert got == [("fetch", 6, 0x1000, 0), ("load", 1, 0x8000, 1), ("marker", 1, None, 0),
                   ("store", 1, 0x9004, 0)]


def test_export_parquet_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "big.memtap"
    _big_trace(path, n=5000)
    out = tmp_path / "big.parquet"
    assert export_parquet(open_trace(path), out, row_group_size=2000) == 5000
    f = pq.ParquetFile(out)
    # Chunks of 1000 records: each is a row group as it comes (at least half of 2000, at most 2000).
    assert [f.metadata.row_group(g).num_rows for g in range(f.metadata.num_row_groups)] == [1000] * 5
    assert f.read().column("pos").to_pylist() == list(range(5000))


def test_export_errors(simple: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run_cli(capsys, "export", simple, "--format", "parquet", "-o", "-")
    assert rc == 1 and err == "memtap: parquet cannot be written to stdout; give a file name with -o\n"
    rc, _, err = run_cli(capsys, "export", simple, "-o", tmp_path / "nodir" / "x.csv")
    assert rc == 1 and err == f"memtap: cannot write {tmp_path / 'nodir' / 'x.csv'}: directory " \
                              f"{tmp_path / 'nodir'} does not exist\n"
    rc, _, err = run_cli(capsys, "export", simple, "-o", tmp_path / "x.txt")
    assert rc == 1 and "use --format csv or --format parquet" in err
    rc, _, err = run_cli(capsys, "export", simple, "-o", tmp_path, "--format", "csv")
    assert rc == 1 and err == f"memtap: cannot write {tmp_path}: is a directory\n"
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        rc, _, err = run_cli(capsys, "export", simple, "-o", ro / "x.csv")
        assert rc == 1 and err.startswith(f"memtap: cannot write {ro / 'x.csv'}: Permission denied")
    with pytest.raises(UserError):
        export_parquet(open_trace(simple), "-")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "vcpu", "chunk"])   # vcpu, chunk: partitioned datasets
def test_failed_export_leaves_nothing(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "corrupt.memtap"
    with TraceWriter(path) as w:
        w.info()
        w.insns([Insn(0x1000)])
        w.events(0, [exec_ev(0, 1, pos=0, icount=1)])
        w.events(0, [exec_ev(0, 1, pos=1, icount=2)], bad_crc=True)
        w.end()
    out = tmp_path / "out" / f"x.{fmt}"
    out.parent.mkdir()
    with pytest.raises(TraceError, match="crc32 mismatch"):
        if fmt in ("vcpu", "chunk"):
            export_partitioned(open_trace(path), out, fmt, order="file")
        else:
            (export_csv if fmt == "csv" else export_parquet)(open_trace(path), out, order="file")
    assert list(out.parent.iterdir()) == []
