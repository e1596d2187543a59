"""Exports the field reads: the Parquet file's layout (pyarrow.parquet's metadata APIs), exact rows of the `seq`
guest in Parquet and CSV, the Arrow stream queried by DuckDB and Polars, and Hive-partitioned datasets read back by
DuckDB and Dask, each compared with what `memtap stats` says of the same trace; memtap's Parquet encodings read
back by pyarrow, DuckDB and Polars."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from guestlib import memtap, record
from test_record_exact import expected_seq
from tracegen import simple_trace

import memtap as mt
from memtap.analysis.summary import compute_stats
from memtap.cli.main import main
from memtap.export.partition import export_partitioned
from memtap.export.tabular import export_csv, export_parquet
from memtap.trace import layout as L

duckdb = pytest.importorskip("duckdb")

COLUMNS = ["pos", "icount", "vcpu", "kind", "vaddr", "paddr", "size", "pc", "priv", "io", "value", "value_hi",
           "atomic", "exclusive"]


@pytest.fixture
def simple(tmp_path: Path) -> Path:
    path = tmp_path / "simple.memtap"
    simple_trace(path, codec=L.CODEC_ZSTD)
    return path


@pytest.fixture(scope="module")
def seq(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("seq") / "seq.trace"
    proc = record(path, "riscv64", "seq", "--start-on-marker")
    assert proc.returncode == 0, proc.stderr
    return path


@pytest.fixture(scope="module")
def smp(tmp_path_factory) -> Path:
    """Four vCPUs, 64-record chunks: many EVENTS chunks, interleaved in the file."""
    path = tmp_path_factory.mktemp("smp") / "smp.trace"
    proc = record(path, "riscv64", "smp", "--start-on-marker", "--buffer-events", "64", smp=4)
    assert proc.returncode == 0, proc.stderr
    return path


def stats_by_vcpu_kind(path: Path) -> dict[tuple[int, str], int]:
    s = compute_stats(mt.open(path))
    return {(int(v), k): c for v, d in s["by_vcpu"].items() for k, c in d.items() if k in L.KIND_NAMES and c}


# --- the Parquet file's layout ------------------------------------------------------------------------------


def test_parquet_schema_encodings_statistics_and_metadata(simple: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.parquet"
    assert export_parquet(mt.open(simple), out, row_group_size=4, kinds=["fetch", "load", "marker"],
                          order="pos") == 8
    f = pq.ParquetFile(out)
    schema = f.schema_arrow
    assert schema.names == COLUMNS
    assert [str(t) for t in schema.types] == [
        "uint64", "uint64", "uint16", "dictionary<values=string, indices=int8, ordered=0>", "uint64", "uint64",
        "uint8", "uint64", "dictionary<values=string, indices=int8, ordered=0>", "bool", "uint64", "uint64", "bool",
        "bool"]
    md = f.metadata
    assert (md.num_rows, md.num_row_groups) == (8, 2)
    assert [md.row_group(i).num_rows for i in range(2)] == [4, 4]
    logical = {md.schema.column(i).name: str(md.schema.column(i).logical_type) for i in range(md.num_columns)}
    assert logical["pos"] == logical["vaddr"] == "Int(bitWidth=64, isSigned=false)"
    assert logical["vcpu"] == "Int(bitWidth=16, isSigned=false)" and logical["kind"] == "String"
    for g in range(2):
        cols = {md.row_group(g).column(i).path_in_schema: md.row_group(g).column(i) for i in range(md.num_columns)}
        assert {c.compression for c in cols.values()} == {"ZSTD"}
        for name in ("kind", "priv", "size"):
            assert cols[name].has_dictionary_page and "RLE_DICTIONARY" in cols[name].encodings, name
        for name in ("pos", "icount", "vcpu", "pc"):
            assert cols[name].encodings == ("RLE", "DELTA_BINARY_PACKED"), name
        for name in ("vaddr", "paddr", "value", "value_hi"):
            assert cols[name].encodings == ("RLE", "BYTE_STREAM_SPLIT") and not cols[name].has_dictionary_page
        for name in ("io", "atomic", "exclusive"):
            assert cols[name].encodings == ("PLAIN", "RLE") and not cols[name].has_dictionary_page
        for name in ("pos", "icount", "vcpu", "vaddr", "paddr", "pc"):
            assert cols[name].is_stats_set, name
            # vCPU 1's group has no physical address: nothing to take a min and max of.
            assert cols[name].statistics.has_min_max == (name != "paddr" or g == 0), name
        assert not cols["kind"].is_stats_set and not cols["value"].is_stats_set
    # Rows in pos order without the store at pos 6: group 0 = pos 0..3, group 1 = pos 4, 5, 7, 8.
    stats = [{n: (md.row_group(g).column(COLUMNS.index(n)).statistics.min,
                  md.row_group(g).column(COLUMNS.index(n)).statistics.max) for n in ("pos", "vaddr", "pc", "vcpu")}
             for g in range(2)]
    assert stats == [{"pos": (0, 3), "vaddr": (0x1000, 0x8000), "pc": (0x1000, 0x1006), "vcpu": (0, 0)},
                     {"pos": (4, 8), "vaddr": (0x2000, 0x2008), "pc": (0x2000, 0x2008), "vcpu": (1, 1)}]
    paddr = [md.row_group(g).column(COLUMNS.index("paddr")).statistics for g in range(2)]
    assert (paddr[0].min, paddr[0].max, paddr[0].null_count, paddr[1].null_count) == (0x80008000, 0x80008000, 3, 4)
    kv = {k.decode(): v.decode() for k, v in md.metadata.items() if k.startswith(b"memtap.")}
    trace = mt.open(simple)
    assert {k: json.loads(v) for k, v in kv.items()} == {
        "memtap.version": mt.__version__, "memtap.trace": "simple.memtap", "memtap.meta": trace.meta,
        "memtap.info": trace.info, "memtap.end": {"complete": True, "events": 6},
        "memtap.selection": {"kinds": ["fetch", "load", "marker"], "order": "pos"}}
    table = f.read()
    assert table.column("kind").to_pylist() == ["fetch"] * 3 + ["load", "fetch", "fetch", "fetch", "marker"]
    assert table.column("kind").chunk(0).dictionary.to_pylist() == list(L.KIND_NAMES)


def test_truncated_trace_metadata_says_so(tmp_path: Path) -> None:
    path = tmp_path / "cut.memtap"
    simple_trace(path, end=False)
    out = tmp_path / "x.parquet"
    assert export_parquet(mt.open(path), out) == 9
    kv = pq.ParquetFile(out).metadata.metadata
    assert json.loads(kv[b"memtap.end"]) is None and json.loads(kv[b"memtap.selection"]) == {}


# --- exact rows of a recorded guest ---------------------------------------------------------------------------


def test_seq_guest_parquet_and_csv_rows_are_exact(seq: Path, tmp_path: Path) -> None:
    expected = expected_seq("riscv64")
    pq_out, csv_out = tmp_path / "seq.parquet", tmp_path / "seq.csv"
    for out in (pq_out, csv_out):
        proc = memtap("export", str(seq), "-o", str(out))
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    table = pq.read_table(pq_out)
    rows = table.to_pylist()
    assert table.num_rows == len(expected) == sum(mt.open(seq).end["records"].values())
    assert [(r["kind"], r["pc"], r["vaddr"] or 0, r["size"], r["value"] or 0) for r in rows] == expected
    assert [r["pos"] for r in rows] == list(range(len(expected)))
    # Bare metal, MMU off: physical = virtual everywhere; the marker has neither, and the only value.
    assert all(r["paddr"] == r["vaddr"] for r in rows if r["kind"] != "marker")
    marker = next(r for r in rows if r["kind"] == "marker")
    assert (marker["vaddr"], marker["paddr"], marker["value"]) == (None, None, 0x1234)
    assert {r["priv"] for r in rows} == {"machine"} and {r["vcpu"] for r in rows} == {0}
    assert not any(r["io"] or r["atomic"] or r["exclusive"] or r["value_hi"] is not None for r in rows)
    # CSV: the same rows, addresses in hex, nulls empty.
    lines = csv_out.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    parsed = list(csv.DictReader(io.StringIO(csv_out.read_text())))
    assert len(parsed) == len(rows)
    for r, c in zip(rows, parsed, strict=True):
        assert c["kind"] == r["kind"] and int(c["pos"]) == r["pos"] and int(c["icount"]) == r["icount"]
        assert c["pc"] == hex(r["pc"]) and c["size"] == str(r["size"]) and c["priv"] == "machine"
        assert c["vaddr"] == ("" if r["vaddr"] is None else hex(r["vaddr"]))
        assert c["value"] == ("" if r["value"] is None else str(r["value"]))
        assert (c["io"], c["atomic"], c["exclusive"], c["value_hi"]) == ("false", "false", "false", "")


def test_columns_asked_for(seq: Path) -> None:
    trace = mt.open(seq)
    table = trace.to_arrow(["pc", "kind"], kinds=["load"])
    assert table.schema.names == ["pc", "kind"]
    assert table.column("pc").to_pylist() == [pc for k, pc, *_ in expected_seq("riscv64") if k == "load"]
    with pytest.raises(mt.errors.UserError, match="unknown column 'bogus'"):
        trace.to_arrow(["bogus"])


# --- the Arrow stream --------------------------------------------------------------------------------------------


def test_duckdb_queries_the_arrow_stream_like_stats(smp: Path) -> None:
    trace = mt.open(smp)
    s = compute_stats(trace)
    reader = trace.to_arrow_reader(["kind"])
    assert isinstance(reader, pa.RecordBatchReader)
    got = duckdb.sql("select kind, count(*) from reader group by kind").fetchall()
    assert dict(got) == {k: c for k, c in s["by_kind"].items() if c}
    reader = trace.to_arrow_reader(["vcpu", "kind"])
    got = duckdb.sql("select vcpu, kind, count(*) from reader group by all").fetchall()
    assert {(v, k): c for v, k, c in got} == stats_by_vcpu_kind(smp)
    reader = trace.to_arrow_reader(["kind", "vaddr", "size"], kinds=["load", "store"])
    lines = duckdb.sql("select count(distinct l) from (select vaddr // 64 as l from reader union all "
                       "select (vaddr + size - 1) // 64 from reader)").fetchall()[0][0]
    assert lines == s["footprint"]["lines_64b"] > 0
    reader = trace.to_arrow_reader(["vcpu", "icount"], kinds=["fetch"])
    got = duckdb.sql("select vcpu, max(icount) from reader group by vcpu").fetchall()
    assert {str(v): m for v, m in got} == s["instructions"]["max_icount_by_vcpu"]


def test_polars_reads_the_arrow_stream_like_stats(smp: Path) -> None:
    pl = pytest.importorskip("polars")
    df = pl.from_arrow(mt.open(smp).to_arrow_reader(["vcpu", "kind"]))
    got = df.group_by(["vcpu", "kind"]).len().rows()
    assert {(v, str(k)): c for v, k, c in got} == stats_by_vcpu_kind(smp)
    assert dict(df.schema) == {"vcpu": pl.UInt16, "kind": pl.Categorical}


# --- partitioned datasets ----------------------------------------------------------------------------------------


def test_partition_by_vcpu_read_by_duckdb_and_dask(smp: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    proc = memtap("export", str(smp), "--partition-by", "vcpu", "-o", str(out))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet")) == [
        f"vcpu={v}/part-0.parquet" for v in range(4)]
    assert "vcpu" not in pq.ParquetFile(out / "vcpu=2" / "part-0.parquet").schema_arrow.names
    expected = stats_by_vcpu_kind(smp)
    got = duckdb.sql(f"select vcpu, kind, count(*) from read_parquet('{out}/**/*.parquet', hive_partitioning=true) "
                     "group by all").fetchall()
    assert {(v, k): c for v, k, c in got} == expected
    dd = pytest.importorskip("dask.dataframe")
    df = dd.read_parquet(str(out))
    counts = df.groupby(["vcpu", "kind"], observed=True).size().compute()
    assert {(int(v), str(k)): int(c) for (v, k), c in counts.items()} == expected
    # Each vCPU's records in its program order: pos increases within every file.
    for v in range(4):
        pos = pq.read_table(out / f"vcpu={v}" / "part-0.parquet", columns=["pos"]).column("pos").to_numpy()
        assert np.all(np.diff(pos.astype(np.int64)) > 0)


def test_partition_by_chunk(smp: Path, tmp_path: Path) -> None:
    trace = mt.open(smp)
    events = [c.seq for c in trace.chunks if c.type == L.CHUNK_EVENTS]
    per_chunk = {s: sum(len(c["pos"]) for c in trace.columns(["pos"], chunk_range=(s, s + 1))) for s in events}
    assert len(events) > 20 and sum(per_chunk.values()) == sum(trace.end["records"].values())
    # Files of at least 3000 rows, made of whole chunks in file order.
    groups, current = [], []
    for s in events:
        current.append(s)
        if sum(per_chunk[c] for c in current) >= 3000:
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    out = tmp_path / "ds"
    rows = export_partitioned(trace, out, "chunk", partition_rows=3000, row_group_size=1000)
    assert rows == sum(per_chunk.values())
    assert sorted(p.name for p in out.iterdir()) == sorted(f"chunk={g[0]}" for g in groups)
    for g in groups:
        f = pq.ParquetFile(out / f"chunk={g[0]}" / "part-0.parquet")
        assert json.loads(f.metadata.metadata[b"memtap.chunks"]) == [g[0], g[-1] + 1]
        assert f.metadata.num_rows == sum(per_chunk[c] for c in g)
        assert all(f.metadata.row_group(i).num_rows <= 1000 for i in range(f.metadata.num_row_groups))
    got = duckdb.sql(f"select vcpu, kind, count(*), count(distinct chunk) from "
                     f"read_parquet('{out}/**/*.parquet', hive_partitioning=true) group by all").fetchall()
    assert {(v, k): c for v, k, c, _ in got} == stats_by_vcpu_kind(smp)
    dd = pytest.importorskip("dask.dataframe")
    df = dd.read_parquet(str(out))
    assert int(df["pos"].count().compute()) == rows
    assert sorted(int(c) for c in df["chunk"].unique().compute()) == [g[0] for g in groups]


def test_partition_selection_and_errors(smp: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "stores"
    assert main(["export", str(smp), "--partition-by", "vcpu", "--vcpu", "1", "--vcpu", "3", "--kinds", "store",
                 "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["vcpu=1", "vcpu=3"]
    expected = stats_by_vcpu_kind(smp)
    for v in (1, 3):
        assert pq.ParquetFile(out / f"vcpu={v}" / "part-0.parquet").metadata.num_rows == expected[v, "store"]
    capsys.readouterr()
    for argv, message in (
            (["-o", str(out)], f"memtap: cannot write {out}: directory not empty\n"),
            (["--order", "pos", "-o", str(tmp_path / "n")], "memtap: --partition-by keeps each vCPU's records in "
             "file order; --order pos applies to single files\n"),
            (["--format", "csv", "-o", str(tmp_path / "n")], "memtap: --partition-by writes a Parquet dataset into "
             "a directory; give a directory with -o\n")):
        assert main(["export", str(smp), "--partition-by", "vcpu", *argv]) == 1
        assert capsys.readouterr().err == message
    assert not (tmp_path / "n").exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_csv_to_a_file_object_in_small_batches(simple: Path) -> None:
    buf = io.BytesIO()
    assert export_csv(mt.open(simple), buf, batch_size=2, columns=["pos", "kind", "paddr"]) == 9
    assert buf.getvalue().decode().splitlines() == [
        "pos,kind,paddr", "0,fetch,", "1,fetch,", "2,fetch,", "3,load,0x80008000", "4,fetch,", "5,fetch,",
        "6,store,", "7,fetch,", "8,marker,"]


# --- the writer's encodings against two independent readers ------------------------------------------------------


def _random_columns(n: int, seed: int) -> dict[str, np.ndarray]:
    """Record columns exercising every encoding's edges: 64-bit extremes and wrapping deltas, long runs and short
    ones, nulls in runs and alone, every kind, privilege code and flag bit."""
    rng = np.random.default_rng(seed)
    steps = rng.choice(np.array([1, 1, 1, 2, 1000, 2**40, 2**63 + 5], np.uint64), n)
    big = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    runs = np.repeat(rng.integers(0, 6, n // 50 + 1), 50)[:n].astype(np.uint8)
    return {
        "pos": np.cumsum(steps, dtype=np.uint64), "icount": np.cumsum(steps[::-1], dtype=np.uint64),
        "vcpu": np.where(rng.random(n) < 0.9, 3, rng.integers(0, 65536, n)).astype(np.uint16),
        "kind": np.where(rng.random(n) < 0.5, runs, rng.integers(0, 6, n)).astype(np.uint8),
        "vaddr": np.where(rng.random(n) < 0.5, big, np.uint64(0x80000000) + rng.integers(0, 4096, n, np.uint64)),
        "paddr": big[::-1].copy(),
        "pc": np.where(rng.random(n) < 0.01, big, np.uint64(0x1000) + np.arange(n, dtype=np.uint64)),
        "size": rng.choice(np.array([0, 1, 2, 4, 8, 16], np.uint8), n),
        "priv": rng.choice(np.array([0, 1, 2, 3, 7, 0xFF], np.uint8), n),
        "flags": np.where(rng.random(n) < 0.7, np.uint8(L.RF_PADDR), rng.integers(0, 256, n)).astype(np.uint8),
        "value": rng.integers(0, 2**64, n, dtype=np.uint64), "value_hi": big.copy(),
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_writer_encodings_read_back_by_pyarrow_and_duckdb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          seed: int) -> None:
    from memtap.export import parquet_file
    from memtap.export.parquet import row_groups
    from memtap.trace.arrow import columns_to_arrow

    monkeypatch.setattr(parquet_file, "PAGE_BYTES", 3000)   # many pages per column chunk, some of 375 rows
    n = 30_011
    cols = _random_columns(n, seed)
    out = tmp_path / "r.parquet"
    with open(out, "wb") as f, parquet_file.ParquetFileWriter(f, COLUMNS, {"k": "v"}) as w:
        for group in row_groups([cols], 10_000):
            w.write(group)
    expected = pa.Table.from_batches([columns_to_arrow(cols)])
    got = pq.read_table(out)
    assert got.schema.remove_metadata() == expected.schema
    for name in COLUMNS:
        assert got.column(name).to_pylist() == expected.column(name).to_pylist(), name
    md = pq.ParquetFile(out).metadata
    assert md.num_row_groups == 4 and md.metadata[b"k"] == b"v"
    first = md.row_group(0)
    assert [md.row_group(g).num_rows for g in range(4)] == [7502, 7503, 7503, 7503]   # equal parts of <= 10,000
    for name in ("pos", "vaddr", "pc"):
        values = [v for v in expected.column(name).to_pylist()[: first.num_rows] if v is not None]
        st = first.column(COLUMNS.index(name)).statistics
        assert (st.min, st.max) == (min(values), max(values)), name
    duck = duckdb.sql(f"select * from read_parquet('{out}')").to_arrow_table()
    for name in COLUMNS:
        assert duck.column(name).to_pylist() == expected.column(name).to_pylist(), name
    pl = pytest.importorskip("polars")   # a third reader, with its own decoders
    df = pl.read_parquet(out)
    for name in COLUMNS:
        assert df[name].to_list() == expected.column(name).to_pylist(), name


def test_csv_text_of_random_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The C formatter against Python's formatting of the same Arrow rows, with pieces cut mid-batch."""
    from memtap.export import csv as csv_export
    from memtap.trace.arrow import columns_to_arrow

    monkeypatch.setattr(csv_export, "BUFFER_BYTES", 4096)
    cols = _random_columns(5_003, 3)
    text = b"".join(bytes(p) for p in csv_export.csv_text(cols, COLUMNS)).decode()

    def field(name: str, v: object) -> str:
        if v is None:
            return ""
        if isinstance(v, bool):
            return "true" if v else "false"
        return hex(v) if name in ("vaddr", "paddr", "pc") else str(v)

    rows = columns_to_arrow(cols).to_pylist()
    assert text.splitlines() == [",".join(field(n, r[n]) for n in COLUMNS) for r in rows]



def test_io_atomic_exclusive_are_loads_and_stores_alone(tmp_path: Path) -> None:
    """An exception's RF_INTERRUPT shares RF_ATOMIC's bit: exports must not call an interrupt atomic."""
    from memtap.export import csv as csv_export
    from memtap.export.parquet_file import ParquetFileWriter

    n = 4
    cols = {"kind": np.array([L.KIND_LOAD, L.KIND_EXCEPTION, L.KIND_STORE, L.KIND_CMO], np.uint8),
            "flags": np.array([L.RF_ATOMIC | L.RF_EXCLUSIVE, L.RF_INTERRUPT | L.RF_NOADDR, L.RF_IO,
                               L.RF_IO | L.RF_ATOMIC | L.RF_EXCLUSIVE], np.uint8),
            "pos": np.arange(n, dtype=np.uint64), "value": np.zeros(n, np.uint64)}
    names = ["pos", "kind", "io", "atomic", "exclusive"]
    text = b"".join(bytes(p) for p in csv_export.csv_text(cols, names)).decode()
    assert text.splitlines() == ["0,load,false,true,true", "1,exception,false,false,false",
                                 "2,store,true,false,false", "3,cmo,false,false,false"]
    out = tmp_path / "f.parquet"
    with open(out, "wb") as f, ParquetFileWriter(f, names, {}) as w:
        w.write(cols)
    got = pq.read_table(out).to_pydict()
    assert (got["io"], got["atomic"], got["exclusive"]) == (
        [False, False, True, False], [True, False, False, False], [True, False, False, False])


def test_row_groups_gather_small_batches_and_cut_large_ones() -> None:
    from memtap.export.parquet import row_groups

    sizes, start, batches = [1, 1, 5, 9, 1], 0, []
    for n in sizes:
        batches.append({"pos": np.arange(start, start + n, dtype=np.uint64)})
        start += n
    groups = list(row_groups(batches, 4))
    assert [len(g["pos"]) for g in groups] == [2, 2, 3, 3, 3, 3, 1]
    assert np.concatenate([g["pos"] for g in groups]).tolist() == list(range(17))
    assert groups[3]["pos"].base is not None   # a part of a large batch is a view of it, not a copy
