"""Coverage, profiles and view --elf on real recordings of the `cover` guest (guest/programs/cover.c).

The guest's behaviour is known: main runs 3 rounds of sum_squares(5), which calls square 5 times per call;
never_called is never called. Expected counts follow from that; source lines are found by the `@name` comments
in cover.c; function ranges and instructions come from the ELF (pyelftools, capstone); file:line of addresses
from llvm-addr2line. The real genhtml and cg_annotate read what memtap writes.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from elftools.elf.elffile import ELFFile
from guestlib import ARCHES, ROOT, disassembly, guest, instructions, memtap, record

import memtap as mt
from memtap.analysis.symbols import ElfSpec, Symbols, parse_elf_spec

SOURCE = ROOT / "guest" / "programs" / "cover.c"
# Executions of each marked line and calls of each function, from what the program does.
EXPECTED_LINES = {"square-body": 15, "loop-head": 18, "loop-body": 15, "rounds": 4, "call-sum": 3, "branch": 1,
                  "never-call": 0, "never-body": 0, "store": 1}
EXPECTED_CALLS = {"square": 15, "sum_squares": 3, "main": 1, "never_called": 0}
DECLARATIONS = {"square": "static uint32_t square(", "never_called": "static void never_called(",
                "sum_squares": "static uint32_t sum_squares(", "main": "int main(void)"}


def line_of(text: str) -> int:
    """The 1-based line of cover.c that contains text (a marker comment or a declaration)."""
    found = [n for n, line in enumerate(SOURCE.read_text().splitlines(), 1) if text in line]
    assert len(found) == 1, text
    return found[0]


def marker(name: str) -> int:
    return line_of(f"/* @{name} */")


@cache
def function_range(elf: Path, name: str) -> tuple[int, int]:
    with open(elf, "rb") as f:
        (sym,) = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)
        return sym["st_value"], sym["st_value"] + sym["st_size"]


@pytest.fixture(scope="module")
def traces(tmp_path_factory) -> dict[str, Path]:
    """A full recording of the cover guest per architecture."""
    out = {}
    for arch in ARCHES:
        path = tmp_path_factory.mktemp(arch) / "cover.trace"
        proc = record(path, arch, "cover")
        assert proc.returncode == 0, proc.stderr
        out[arch] = path
    return out


def run(*args: object) -> subprocess.CompletedProcess:
    return memtap(*(str(a) for a in args))


def parse_lcov(text: str) -> dict[str, dict]:
    """{source path: {"DA": {line: count}, "FN": {name: line}, "FNDA": {name: count}, "LF": n, ...}}."""
    files: dict[str, dict] = {}
    cur: dict = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "SF":
            cur = files[value] = {"DA": {}, "FN": {}, "FNDA": {}}
        elif key == "DA":
            n, c = value.split(",")
            cur["DA"][int(n)] = int(c)
        elif key == "FN":
            n, name = value.split(",")
            cur["FN"][name] = int(n)
        elif key == "FNDA":
            c, name = value.split(",")
            cur["FNDA"][name] = int(c)
        elif key in ("LF", "LH", "FNF", "FNH"):
            cur[key] = int(value)
    return files


def lcov_of(tmp_path: Path, *args: object) -> tuple[dict[str, dict], str]:
    out = tmp_path / "cov.info"
    proc = run("coverage", *args, "-o", out)
    assert proc.returncode == 0, proc.stderr
    return parse_lcov(out.read_text()), proc.stderr


# --- coverage ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHES)
def test_lcov_counts_are_exact(traces, tmp_path, arch):
    elf = guest(arch, "cover")
    files, _ = lcov_of(tmp_path, traces[arch], "--elf", elf)
    cov = files[str(SOURCE)]
    for name, count in EXPECTED_LINES.items():
        assert cov["DA"][marker(name)] == count, name
    assert cov["FNDA"] == EXPECTED_CALLS
    for name, line in cov["FN"].items():  # a function starts at its declaration or the line after
        assert line_of(DECLARATIONS[name]) <= line <= line_of(DECLARATIONS[name]) + 2, name
    # Only lines that hold code have DA records; comments, blank lines and lone braces of callees do not.
    source = SOURCE.read_text().splitlines()
    for line in cov["DA"]:
        text = source[line - 1].split("/*")[0].strip()
        assert text and not text.startswith(("#", "*", "static volatile")), (line, source[line - 1])
    assert cov["LF"] == len(cov["DA"]) and cov["LH"] == sum(c > 0 for c in cov["DA"].values())
    assert (cov["FNF"], cov["FNH"]) == (4, 3)


def test_genhtml_reads_the_lcov_file(traces, tmp_path):
    info = tmp_path / "cov.info"
    proc = run("coverage", traces["riscv64"], "--elf", guest("riscv64", "cover"), "--format", "lcov", "-o", info)
    assert proc.returncode == 0, proc.stderr
    html = subprocess.run(["genhtml", "-q", "-o", tmp_path / "html", info], capture_output=True, text=True)
    assert html.returncode == 0, html.stderr
    page = (tmp_path / "html" / "index.html").read_text()
    assert "programs" in page and "cover.c" in (tmp_path / "html" / "programs" / "index.html").read_text()


def test_gcov_text_listing(traces, tmp_path):
    out = tmp_path / "cover.gcov"
    proc = run("coverage", traces["aarch64"], "--elf", guest("aarch64", "cover"), "--format", "gcov-text", "-o", out)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    start = text.index(f"        -:    0:Source:{SOURCE}\n")
    section = text[start:].split("\n        -:    0:Source:")[0].splitlines()
    assert section[1] == "        -:    0:Runs:1"
    source = SOURCE.read_text().splitlines()
    listed = {int(line[10:15]): line for line in section[2:] if not line.startswith("function")}
    assert sorted(listed) == list(range(1, len(source) + 1))
    for name, count in EXPECTED_LINES.items():
        n = marker(name)
        assert listed[n] == f"{count if count else '#####':>9}:{n:>5}:{source[n - 1]}"
    assert listed[1] == f"        -:    1:{source[0]}"
    assert "function square called 15" in section and "function never_called called 0" in section


def test_several_traces_add_up(traces, tmp_path):
    again = tmp_path / "again.trace"
    assert record(again, "riscv64", "cover").returncode == 0
    elf = guest("riscv64", "cover")
    files, err = lcov_of(tmp_path, traces["riscv64"], again, "--elf", elf)
    cov = files[str(SOURCE)]
    for name, count in EXPECTED_LINES.items():
        assert cov["DA"][marker(name)] == 2 * count, name
    assert cov["FNDA"] == {name: 2 * c for name, c in EXPECTED_CALLS.items()}
    assert "coverage of 2 trace(s)" in err


# --- profiles ---------------------------------------------------------------------------------------------


def records_in(trace: Path, lo: int, hi: int) -> dict[str, int]:
    """Fetch, load and store records whose pc lies in [lo, hi), straight from the trace."""
    rec = mt.open(trace).records()
    rec = rec[(rec["pc"] >= lo) & (rec["pc"] < hi)]
    return {k: int((rec["kind"] == i).sum()) for i, k in enumerate(("fetch", "load", "store"))}


@pytest.mark.parametrize("arch", ARCHES)
def test_cachegrind_file_read_by_cg_annotate(traces, tmp_path, arch):
    elf = guest(arch, "cover")
    out = tmp_path / "cachegrind.out"
    proc = run("profile", traces[arch], "--elf", elf, "--cachegrind", out)
    assert proc.returncode == 0, proc.stderr
    ann = subprocess.run(["cg_annotate", "--threshold=0", out], capture_output=True, text=True)
    assert ann.returncode == 0, ann.stderr
    totals = re.search(r"^([\d,]+) \(100\.0%\) +([\d,]+) \(100\.0%\) +([\d,]+) \(100\.0%\) +PROGRAM TOTALS",
                       ann.stdout, re.M)
    assert totals, ann.stdout
    recorded = mt.open(traces[arch]).end["records"]
    assert [int(t.replace(",", "")) for t in totals.groups()] == [recorded[k] for k in ("fetch", "load", "store")]
    # square has no branch: each of its instructions ran 15 times; its accesses are the trace's.
    lo, hi = function_range(elf, "square")
    size = len(instructions(arch, elf, lo, hi))
    (row,) = [line for line in ann.stdout.splitlines() if line.endswith(f"  {SOURCE}:square")]
    got = [int(v.replace(",", "")) for v in re.sub(r"\([^)]*\)", "", row).split()[:3]]
    mine = records_in(traces[arch], lo, hi)
    assert got == [15 * size, mine["load"], mine["store"]] and mine["fetch"] == 15 * size


def test_profile_table_sorted(traces):
    arch = "riscv64"
    elf = guest(arch, "cover")
    proc = run("profile", traces[arch], "--elf", elf, "--top", "0")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["Ir", "Dr", "Dw", "Ir%", "function", "source"]
    recorded = mt.open(traces[arch]).end["records"]
    assert lines[1].split()[:3] == [f"{recorded[k]:,}" for k in ("fetch", "load", "store")]
    rows = {r.split()[4]: r.split() for r in lines[2:]}
    ir = [int(r.split()[0].replace(",", "")) for r in lines[2:]]
    assert ir == sorted(ir, reverse=True) and sum(ir) == recorded["fetch"]
    lo, hi = function_range(elf, "square")
    assert rows["square"][0] == str(15 * len(instructions(arch, elf, lo, hi)))
    assert rows["square"][5] == f"cover.c:{rows['square'][5].split(':')[1]}"
    by_line = run("profile", traces[arch], "--elf", elf, "--by", "line", "--top", "3").stdout.splitlines()
    assert by_line[0].split() == ["Ir", "Dr", "Dw", "Ir%", "source", "function"]
    assert len(by_line) == 2 + 3 + 1 and by_line[-1].endswith("more rows; --top N shows more)")


# --- view --elf -------------------------------------------------------------------------------------------


def addr2line(elf: Path, pcs: list[int]) -> dict[int, tuple[str, str]]:
    """{pc: (function, 'file:line')} from llvm-addr2line (an independent DWARF reader)."""
    tool = shutil.which("llvm-addr2line") or "addr2line"
    out = subprocess.run([tool, "-f", "-e", elf, *(hex(p) for p in pcs)], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    return {pc: (out[2 * i], Path(out[2 * i + 1].split(" ")[0]).name) for i, pc in enumerate(pcs)}


@pytest.mark.parametrize("arch", ARCHES)
def test_view_shows_function_line_and_instruction(traces, arch):
    elf = guest(arch, "cover")
    lo, hi = function_range(elf, "sum_squares")
    proc = run("view", traces[arch], "--elf", elf, "--kinds", "fetch", "--addr", f"{lo:#x}:{hi:#x}")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    pcs = [int(re.search(r" pc=(0x[0-9a-f]+)", line).group(1), 16) for line in lines]
    code = {addr: text for addr, _, text in disassembly(arch, elf, lo, hi)}
    # Every instruction of sum_squares runs (no branch in it is skipped), as often as the trace says.
    assert set(pcs) == set(code) and len(pcs) == records_in(traces[arch], lo, hi)["fetch"]
    where = addr2line(elf, sorted(code))
    for line, pc in zip(lines, pcs, strict=True):
        fn, src = where[pc]
        assert fn == "sum_squares"
        shown = "?" if src.endswith(":0") else src  # line 0: compiler-made code of no source line
        assert line.endswith(f" fn=sum_squares+{pc - lo:#x} src={shown} | {code[pc]}"), line


# --- bad input: what can be known is still reported -------------------------------------------------------


def objcopy(tmp_path: Path, name: str, *how: str) -> Path:
    out = tmp_path / f"{name}.elf"
    tool = shutil.which("llvm-objcopy") or "objcopy"
    subprocess.run([tool, *how, guest("riscv64", "cover"), out], check=True)
    return out


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("memtap: warning: ")]


def test_elf_of_another_architecture_is_ignored(traces, tmp_path):
    wrong = guest("aarch64", "cover")
    files, err = lcov_of(tmp_path, traces["riscv64"], "--elf", wrong, "--elf", guest("riscv64", "cover"))
    assert f"memtap: warning: {wrong}: ELF for aarch64, but the trace is from a riscv64 guest: ignoring it" in err
    assert files[str(SOURCE)]["FNDA"] == EXPECTED_CALLS  # the right ELF still counts
    proc = run("profile", traces["riscv64"], "--elf", wrong)
    assert proc.returncode == 0 and f"{wrong}: ELF for aarch64" in proc.stderr
    total = mt.open(traces["riscv64"]).end["records"]["fetch"]
    assert proc.stdout.splitlines()[2].split() == [f"{total:,}", *proc.stdout.splitlines()[1].split()[1:3],
                                                    "100.0%", "???", "?"]


def test_stripped_elf_still_gives_totals_and_instructions(traces, tmp_path):
    elf = objcopy(tmp_path, "stripped", "--strip-all")
    proc = run("profile", traces["riscv64"], "--elf", elf, "--top", "0")
    assert proc.returncode == 0, proc.stderr
    assert warnings(proc.stderr)[:2] == [
        f"memtap: warning: {elf} has no symbol table (stripped): its addresses resolve to no function",
        f"memtap: warning: {elf} has no DWARF line table (build it with -g): no source lines"]
    rows = proc.stdout.splitlines()
    assert len(rows) == 3 and rows[2].split()[3:] == ["100.0%", "???", "?"]
    lo, hi = function_range(guest("riscv64", "cover"), "square")
    view = run("view", traces["riscv64"], "--elf", elf, "--kinds", "fetch", "--addr", f"{lo:#x}:{lo + 1:#x}")
    first = disassembly("riscv64", guest("riscv64", "cover"), lo, hi)[0][2]
    assert view.returncode == 0 and view.stdout.splitlines()[0].endswith(f" fn=??? src=? | {first}")


def test_no_symbol_table_keeps_lines(traces, tmp_path):
    elf = objcopy(tmp_path, "nosym", "--remove-section=.symtab")
    files, err = lcov_of(tmp_path, traces["riscv64"], "--elf", elf)
    assert f"memtap: warning: {elf} has no symbol table (stripped): its addresses resolve to no function" in err
    cov = files[str(SOURCE)]
    assert {name: cov["DA"][marker(name)] for name in EXPECTED_LINES} == EXPECTED_LINES
    assert cov["FNF"] == 0 and cov["FN"] == {}


def test_no_dwarf_keeps_functions(traces, tmp_path):
    elf = objcopy(tmp_path, "nodebug", "--strip-debug")
    out = tmp_path / "cover.gcov"
    proc = run("coverage", traces["riscv64"], "--elf", elf, "--format", "gcov-text", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert f"memtap: warning: {elf} has no DWARF line table (build it with -g): no source lines" in proc.stderr
    lines = out.read_text().splitlines()
    assert lines[:2] == ["        -:    0:Source:???", "        -:    0:Runs:1"]
    assert {f"function {n} called {c}" for n, c in EXPECTED_CALLS.items()} <= set(lines[2:])
    lcov = run("coverage", traces["riscv64"], "--elf", elf)
    assert lcov.returncode == 0 and lcov.stdout == "TN:\n"
    assert "functions have no source line (no DWARF for them): the lcov report leaves them out" in lcov.stderr


def test_addresses_outside_every_symbol_are_counted_once(traces, tmp_path):
    """QEMU's riscv64 reset vector (below the ELF's .text) runs first: its addresses belong to no symbol."""
    elf = guest("riscv64", "cover")
    with open(elf, "rb") as f:
        text = ELFFile(f).get_section_by_name(".text")
        lo, hi = text["sh_addr"], text["sh_addr"] + text["sh_size"]
    rec = mt.open(traces["riscv64"]).records(kinds="fetch,load,store")
    pcs = np.unique(rec["pc"])
    outside = pcs[(pcs < lo) | (pcs >= hi)]
    _, err = lcov_of(tmp_path, traces["riscv64"], "--elf", elf)
    assert warnings(err) == [f"memtap: warning: {len(outside)} of {len(pcs)} instruction addresses are outside "
                             f"every symbol of {elf} (lowest {int(outside.min()):#x}); they are reported as ???"]


def test_trace_without_fetches(tmp_path):
    trace = tmp_path / "data.trace"
    assert record(trace, "riscv64", "cover", "--events", "load,store").returncode == 0
    elf = guest("riscv64", "cover")
    proc = run("coverage", trace, "--elf", elf)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == (f"memtap: {trace} has no instruction fetch records (recorded with --events load,store): "
                           "coverage needs them; record with --events fetch (or the default)\n")
    prof = run("profile", trace, "--elf", elf)
    recorded = mt.open(trace).end["records"]
    assert prof.returncode == 0 and prof.stdout.splitlines()[1].split()[:3] == [
        "0", f"{recorded['load']:,}", f"{recorded['store']:,}"]


def test_unusable_elf_is_a_one_line_error(traces, tmp_path):
    for bad, why in ((SOURCE, "not a readable ELF file"), (tmp_path / "none.elf", "no such ELF file")):
        proc = run("coverage", traces["riscv64"], "--elf", bad)
        assert proc.returncode == 1 and proc.stderr.startswith(f"memtap: {bad}: {why}")
        assert proc.stderr.count("\n") == 1


def test_missing_source_lists_counts_without_text(traces, tmp_path):
    """The same program built with its DWARF paths moved to /nonexistent: counts stay, the text cannot."""
    elf = relocated_sources(tmp_path)
    out = tmp_path / "cover.gcov"
    proc = run("coverage", traces["riscv64"], "--elf", elf, "--format", "gcov-text", "-o", out)
    assert proc.returncode == 0, proc.stderr
    moved = f"/nonexistent/{SOURCE.relative_to(ROOT)}"
    assert f"memtap: warning: source file {moved} not found: its counts are listed without the text" in proc.stderr
    text = out.read_text()
    section = text[text.index(f"        -:    0:Source:{moved}\n"):].splitlines()
    for name, count in EXPECTED_LINES.items():
        assert f"{count if count else '#####':>9}:{marker(name):>5}:" in section


def relocated_sources(tmp_path: Path) -> Path:
    """cover.elf for riscv64 rebuilt with -fdebug-prefix-map (its code is byte for byte the same)."""
    from guestlib import builder

    compiles, links = builder()._plan_arch("riscv64", ["cover"], force=True)
    (_, obj, cmd, _), = [c for c in compiles if c[0] == SOURCE]
    new_obj, elf = tmp_path / "cover.o", tmp_path / "cover.elf"
    subprocess.run([str(a) for a in cmd[:-3]] + [f"-fdebug-prefix-map={ROOT}=/nonexistent", "-c", SOURCE, "-o",
                                                  new_obj], check=True)
    (_, old_elf, _, link, _, _), = links
    subprocess.run([str(new_obj if a == obj else elf if a == old_elf else a) for a in link], check=True)
    with open(elf, "rb") as a, open(old_elf, "rb") as b:
        assert ELFFile(a).get_section_by_name(".text").data() == ELFFile(b).get_section_by_name(".text").data()
    return elf


def test_load_offset_shifts_every_lookup():
    elf = guest("riscv64", "cover")
    lo, hi = function_range(elf, "square")
    plain = Symbols([ElfSpec(elf)], "riscv64")
    moved = Symbols([parse_elf_spec(f"{elf}@0x10000")], "riscv64")
    pcs = np.array([a for a, _, _ in disassembly("riscv64", elf, lo, hi)], np.uint64)
    names = [plain.functions[i].name for i in plain.function_index(pcs)]
    assert names == [moved.functions[i].name for i in moved.function_index(pcs + np.uint64(0x10000))]
    assert names == ["square"] * len(pcs)
    assert all((a == b).all() for a, b in zip(plain.locate(pcs), moved.locate(pcs + np.uint64(0x10000)),
                                              strict=True))
    assert moved.disassemble(lo + 0x10000) == plain.disassemble(lo) == disassembly("riscv64", elf, lo, hi)[0][2]
    assert (moved.function_index(pcs) < 0).all()
    assert parse_elf_spec("dir@x/a.elf") == ElfSpec(Path("dir@x/a.elf"))
    assert parse_elf_spec("a.elf@-0x20") == ElfSpec(Path("a.elf"), -0x20)


def test_cache_misses_per_line(traces, tmp_path):
    """zen4's 32 KiB L1I and L3 dwarf the guest's code: every instruction line misses exactly once, cold."""
    from memtap.analysis import cachesim

    arch = "riscv64"
    out = tmp_path / "cachegrind.out"
    proc = run("profile", traces[arch], "--elf", guest(arch, "cover"), "--cache", "zen4", "--cachegrind", out)
    assert proc.returncode == 0, proc.stderr
    ann = subprocess.run(["cg_annotate", "--threshold=0", out], capture_output=True, text=True)
    assert ann.returncode == 0, ann.stderr
    assert ann.stdout.count("I1mr") >= 2 and "DLmw" in ann.stdout
    summary = out.read_text().splitlines()[-1].split()[1:]
    config = cachesim.preset("zen4")
    res = cachesim.simulate(mt.open(traces[arch]).batches(order="pos"), config)
    l1d, l1i, last = res.level("L1D"), res.level("L1I"), res.level(res.levels[-1])
    recorded = mt.open(traces[arch]).end["records"]
    assert [int(v) for v in summary] == [
        recorded["fetch"], recorded["load"], recorded["store"], l1i["fetch"]["misses"], l1d["load"]["misses"],
        l1d["store"]["misses"], last["fetch"]["misses"], last["load"]["misses"], last["store"]["misses"]]
    fetch = mt.open(traces[arch]).records(kinds="fetch")
    line = config.level("L1I").line
    first, final = fetch["pc"] // line, (fetch["pc"] + fetch["size"] - 1) // line
    assert int(summary[3]) == int(summary[6]) == len(np.union1d(first, final))


@pytest.mark.parametrize("arch", ARCHES)
def test_counting_mode_gives_the_same_coverage(traces, tmp_path, arch):
    """`memtap record --counts` (inline counters, no records) yields the exact lcov counts of the full trace."""
    elf = guest(arch, "cover")
    counted = tmp_path / "counts.trace"
    proc = record(counted, arch, "cover", "--counts")
    assert proc.returncode == 0, proc.stderr
    from_counts, _ = lcov_of(tmp_path, counted, "--elf", elf)
    cov = from_counts[str(SOURCE)]
    for name, count in EXPECTED_LINES.items():
        assert cov["DA"][marker(name)] == count, name
    assert cov["FNDA"] == EXPECTED_CALLS
    from_records, _ = lcov_of(tmp_path, traces[arch], "--elf", elf)
    assert from_counts[str(SOURCE)] == from_records[str(SOURCE)]
