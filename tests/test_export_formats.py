"""memtap export to other tools' formats, on real recordings of guests whose accesses and calls are known.

The `seq` guests make an exact sequence of accesses (test_record_exact.expected_seq, derived from the ELF alone);
each simulator format written from their traces is decoded by tests/formats_readers.py (written from the
formats' documentation) and compared with that sequence. The `cover` guest's calls are known (main calls
sum_squares 3 times, each calling square 5 times; print.c's helpers call mt_putc once per character); its
uftrace directory is read by Debian's real uftrace and its Chrome JSON checked against a schema of the format.
"""

from __future__ import annotations

import json
import lzma
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
from elftools.elf.elffile import ELFFile
from formats_readers import (
    LACKEY_LINE,
    TRACE_EVENT_SCHEMA,
    champsim_branch_type,
    gem5_messages,
    message,
    read_champsim,
    read_dinero,
    read_dramsim3,
    read_lackey,
    read_ramulator,
    read_simpleo3,
    read_uftrace_dat,
)
from guestlib import ARCHES, guest, instructions, memtap, record, symbols
from test_record_exact import expected_seq

import memtap as memtap_pkg
from memtap.trace import layout as L

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "src" / "memtap" / "export" / "gem5_packet.proto"


@pytest.fixture(scope="module")
def seq_traces(tmp_path_factory):
    out = {}
    for arch in ARCHES:
        path = tmp_path_factory.mktemp(f"seq-{arch}") / "seq.trace"
        proc = record(path, arch, "seq", "--start-on-marker")
        assert proc.returncode == 0, proc.stderr
        out[arch] = path
    return out


@pytest.fixture(scope="module")
def cover_traces(tmp_path_factory):
    out = {}
    for arch in ARCHES:
        path = tmp_path_factory.mktemp(f"cover-{arch}") / "cover.trace"
        proc = record(path, arch, "cover")
        assert proc.returncode == 0, proc.stderr
        out[arch] = path
    return out


def export(trace: Path, fmt: str, out: Path | str, *options: str) -> subprocess.CompletedProcess:
    proc = memtap("export", str(trace), "--format", fmt, "-o", str(out), *options)
    assert proc.returncode == 0, proc.stderr
    return proc


def text_of(trace: Path, fmt: str, *options: str) -> tuple[str, str]:
    proc = export(trace, fmt, "-", *options)
    return proc.stdout, proc.stderr


MARKER_DROPPED = "memtap: {}: dropped 1 marker records (the format has no markers)\n"


# --- text simulator formats on seq ---------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHES)
def test_lackey_dinero_ramulator_lines_are_the_guests_accesses(seq_traces, arch):
    expected = expected_seq(arch)
    accesses = [r for r in expected if r[0] != "marker"]
    out, err = text_of(seq_traces[arch], "lackey")
    assert read_lackey(out) == [({"fetch": "I", "load": "L", "store": "S"}[k], va, size)
                                for k, _, va, size, _ in accesses]
    assert err == MARKER_DROPPED.format("lackey")
    out, err = text_of(seq_traces[arch], "dinero")
    assert read_dinero(out) == [({"fetch": "i", "load": "r", "store": "w"}[k], va, size)
                                for k, _, va, size, _ in accesses]
    assert err == MARKER_DROPPED.format("dinero")
    out, err = text_of(seq_traces[arch], "ramulator")
    assert read_ramulator(out) == [("ST" if k == "store" else "LD", va) for k, _, va, _, _ in accesses]
    assert err == MARKER_DROPPED.format("ramulator")


def test_selection_options_choose_the_records_like_view(seq_traces):
    """--range, --kinds and --addr select records for the export formats as they do for view."""
    arch = "riscv64"
    expected = expected_seq(arch)
    buf = symbols(guest(arch, "seq"))["mt_buf"]
    label = {"fetch": "i", "load": "r", "store": "w"}
    out, _ = text_of(seq_traces[arch], "dinero", "--range", "3:12")
    assert read_dinero(out) == [(label[k], va, size) for k, _, va, size, _ in expected[3:12] if k != "marker"]
    out, err = text_of(seq_traces[arch], "dinero", "--kinds", "store")
    assert read_dinero(out) == [("w", va, size) for k, _, va, size, _ in expected if k == "store"] and err == ""
    out, _ = text_of(seq_traces[arch], "dinero", "--addr", f"{buf + 2:#x}:{buf + 8:#x}")
    assert read_dinero(out) == [(label[k], va, size) for k, _, va, size, _ in expected
                                if k != "marker" and buf + 2 <= va < buf + 8]


@pytest.mark.parametrize("arch", ARCHES)
def test_dramsim3_cycles_are_positions_or_instruction_counts(seq_traces, arch):
    expected = expected_seq(arch)
    out, _ = text_of(seq_traces[arch], "dramsim3", "--time", "pos")
    # --start-on-marker: positions count from 0, one per record (the marker included)
    assert read_dramsim3(out) == [(va, "WRITE" if k == "store" else "READ", pos)
                                  for pos, (k, _, va, _, _) in enumerate(expected) if k != "marker"]
    out, _ = text_of(seq_traces[arch], "dramsim3")
    lines = read_dramsim3(out)
    fetches = [i for i, r in enumerate(r for r in expected if r[0] != "marker") if r[0] == "fetch"]
    cycles = [lines[i][2] for i in fetches]
    assert cycles == list(range(cycles[0], cycles[0] + len(fetches)))   # one instruction per cycle
    for i, (k, *_rest) in enumerate(r for r in expected if r[0] != "marker"):
        if k != "fetch":
            assert lines[i][2] == lines[i - 1][2]   # an access has its instruction's count


@pytest.mark.parametrize("arch", ARCHES)
def test_gem5_packets_decode_to_the_guests_accesses(seq_traces, arch, tmp_path):
    out = tmp_path / "seq.gem5"
    proc = export(seq_traces[arch], "gem5", out, "--time", "pos")
    assert proc.stderr == MARKER_DROPPED.format("gem5")
    msgs = gem5_messages(out.read_bytes())
    header = message(msgs[0])
    assert header[1] == [f"memtap {seq_traces[arch]}".encode()] and header[3] == [10**12]
    expected = expected_seq(arch)
    want = [{1: [pos * 1000], 2: [4 if k == "store" else 1], 3: [va], 4: [size], 7: [pc],
             **({5: [0x100]} if k == "fetch" else {})}
            for pos, (k, pc, va, size, _) in enumerate(expected) if k != "marker"]
    assert [message(m) for m in msgs[1:]] == want


@pytest.mark.skipif(shutil.which("protoc") is None, reason="protobuf-compiler (protoc) is not installed")
def test_gem5_trace_parses_with_protoc(seq_traces, tmp_path):
    """Debian's protoc decodes the whole file with the repository's schema: the delimited messages become the
    fields of one wrapper message (a field tag in front of each length prefix)."""
    arch = "riscv64"
    out = tmp_path / "seq.gem5"
    export(seq_traces[arch], "gem5", out, "--time", "pos")
    msgs = gem5_messages(out.read_bytes())
    wrapped = b"".join((b"\x0a" if i == 0 else b"\x12") + _varint(len(m)) + m for i, m in enumerate(msgs))
    (tmp_path / "wrapper.proto").write_text(
        'syntax = "proto2";\nimport "gem5_packet.proto";\npackage memtap_test;\n'
        "message Trace { optional ProtoMessage.PacketHeader header = 1; repeated ProtoMessage.Packet packet = 2; }\n")
    proc = subprocess.run(["protoc", f"-I{PROTO.parent}", f"-I{tmp_path}", "--decode=memtap_test.Trace",
                           str(tmp_path / "wrapper.proto")], input=wrapped, capture_output=True, check=True)
    text = proc.stdout.decode()
    assert f'obj_id: "memtap {seq_traces[arch]}"' in text and "tick_freq: 1000000000000" in text
    expected = [r for r in enumerate(expected_seq(arch)) if r[1][0] != "marker"]
    packets = re.findall(r"packet \{\n(.*?)\n\}", text, re.S)
    got = [dict(line.strip().split(": ") for line in p.splitlines()) for p in packets]
    assert got == [{"tick": str(pos * 1000), "cmd": "4" if k == "store" else "1", "addr": str(va), "size": str(size),
                    **({"flags": "256"} if k == "fetch" else {}), "pc": str(pc)}
                   for pos, (k, pc, va, size, _) in expected]


def _varint(x: int) -> bytes:
    out = bytearray()
    while x >= 0x80:
        out.append(x & 0x7F | 0x80)
        x >>= 7
    out.append(x)
    return bytes(out)


def test_lackey_line_shapes_match_valgrinds(seq_traces, tmp_path):
    """Every line Debian's valgrind --tool=lackey --trace-mem=yes prints for /bin/true, and every line memtap
    writes, has one of the same shapes."""
    if shutil.which("valgrind") is None:
        pytest.skip("valgrind is not installed")
    log = tmp_path / "lackey.log"
    subprocess.run(["valgrind", "--tool=lackey", "--trace-mem=yes", f"--log-file={log}", "/bin/true"], check=True)
    theirs = [ln for ln in log.read_text().splitlines() if not ln.startswith("==")]
    assert {ln[:2] for ln in theirs} == {"I ", " L", " S", " M"}
    assert all(LACKEY_LINE.match(ln) for ln in theirs)
    ours, _ = text_of(seq_traces["x86_64"], "lackey")
    assert all(LACKEY_LINE.match(ln) for ln in ours.splitlines())


# --- ChampSim ------------------------------------------------------------------------------------------------


def champsim_number(arch: str, name: str) -> int:
    """docs/formats.md's register numbering: each architecture's list in order from 1, skipping ChampSim's
    special numbers 6 (stack pointer), 25 (flags) and 26 (instruction pointer)."""
    order = {
        "x86_64": ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp"] + [f"r{i}" for i in range(8, 16)],
        "aarch64": [f"x{i}" for i in range(31)],
        "riscv64": ["ra", "gp", "tp", "t0", "t1", "t2", "s0", "s1"] + [f"a{i}" for i in range(8)]
        + [f"s{i}" for i in range(2, 12)] + ["t3", "t4", "t5", "t6"],
    }[arch]
    numbers = [n for n in range(1, 200) if n not in (6, 25, 26)]
    return numbers[order.index(name)]


# Per architecture: the seq guest's base, value and loaded registers, loop counter, whether the counter's
# update writes flags, and the registers the marker instruction reads.
SEQ_REGS = {
    "x86_64": ("rdi", "rax", "rdx", "rcx", True, ["rax"]),    # nopl 0x4d4b1234(%rax): its memory operand's base
    "aarch64": ("x0", "x2", "x3", "x1", True, []),           # movz xzr, ...: the zero register
    "riscv64": ("t0", "t2", "t3", "t1", False, ["a7"]),       # slti zero, a7, ...
}


@pytest.mark.parametrize("arch", ARCHES)
def test_champsim_records_are_the_guests_instructions(seq_traces, arch, tmp_path):
    out = tmp_path / "seq.champsim.xz"
    elf = guest(arch, "seq")
    proc = export(seq_traces[arch], "champsim", out, "--elf", str(elf))
    assert proc.stderr == MARKER_DROPPED.format("champsim")
    got = read_champsim(lzma.decompress(out.read_bytes()))
    n = lambda name: champsim_number(arch, name)   # noqa: E731
    base, value, loaded, counter, flags, marker = SEQ_REGS[arch]
    sym = symbols(elf)
    expected = expected_seq(arch)
    want = []
    for k, pc, va, _, _ in expected:
        if k == "fetch":
            want.append({"ip": pc, "is_branch": 0, "taken": 0, "dst_regs": [], "src_regs": [], "dst_mem": [],
                         "src_mem": []})
        elif k == "store":
            want[-1].update(dst_mem=[va], src_regs=sorted([n(base), n(value)]))
        elif k == "load":
            want[-1].update(src_mem=[va], src_regs=[n(base)], dst_regs=[n(loaded)])
    loop = [pc for pc, _ in instructions(arch, elf, sym["seq_loop"], sym["seq_end"])]
    for i, w in enumerate(want):
        if w["ip"] == sym["seq_mark"]:
            w["src_regs"] = sorted(n(r) for r in marker)
        elif w["ip"] == loop[0]:
            w.update(src_regs=[n(counter)], dst_regs=sorted([n(counter)] + ([25] if flags else [])))
        elif w["ip"] == loop[1]:   # the conditional branch: reads IP and flags (or its register), writes IP
            w.update(is_branch=1, src_regs=sorted([26, 25 if flags else n(counter)]), dst_regs=[26],
                     taken=int(i + 1 < len(want)))
    for g in got:
        g["src_regs"].sort()
        g["dst_regs"].sort()
    assert got == want
    assert sum(g["taken"] for g in got) == 9   # the loop branch back, 9 of its 10 times


@pytest.mark.parametrize("arch", ARCHES)
def test_champsim_calls_and_returns_as_champsim_infers_them(cover_traces, arch, tmp_path):
    """On cover, ChampSim's own inference from the registers finds sum_squares' 15 calls of square (indirect on
    RISC-V, whose `call` is auipc + jalr through ra), square's 15 returns (each back after its call), and loop
    branches taken as the guest took them."""
    out = tmp_path / "cover.champsim"
    elf = guest(arch, "cover")
    with open(elf, "rb") as f:
        text = ELFFile(f).get_section_by_name(".text")
        code = f"{text['sh_addr']:#x}:{text['sh_addr'] + text['sh_size']:#x}"
    # only the guest's own code (x86's firmware runs millions of instructions before it)
    export(cover_traces[arch], "champsim", out, "--elf", str(elf), "--addr", code)
    recs = read_champsim(out.read_bytes())
    with open(elf, "rb") as f:
        tab = ELFFile(f).get_section_by_name(".symtab")
        extent = {n: (s["st_value"], s["st_value"] + s["st_size"]) for n in ("square", "sum_squares")
                  for s in tab.get_symbol_by_name(n)}
    types = [champsim_branch_type(r) for r in recs]
    inside = lambda i, name: extent[name][0] <= recs[i]["ip"] < extent[name][1]   # noqa: E731
    call = "indirect_call" if arch == "riscv64" else "direct_call"
    calls = [i for i, t in enumerate(types) if t == call and inside(i, "sum_squares")]
    assert len(calls) == 15 and all(recs[i + 1]["ip"] == extent["square"][0] for i in calls)
    returns = [i for i, t in enumerate(types) if t == "return" and inside(i, "square")]
    assert len(returns) == 15
    assert all(recs[r + 1]["ip"] == recs[c]["ip"] + _insn_size(arch, elf, recs[c]["ip"])
               for c, r in zip(calls, returns, strict=True))
    assert all(recs[i]["taken"] == 1 for i in calls + returns)
    # every conditional branch's taken bit says whether the next instruction is not the one after it
    for i, t in enumerate(types[:-1]):
        if t == "conditional":
            after = recs[i]["ip"] + _insn_size(arch, elf, recs[i]["ip"])
            assert recs[i]["taken"] == int(recs[i + 1]["ip"] != after)
    assert not any(t == "not_branch" and r["is_branch"] for t, r in zip(types, recs, strict=True))


def _insn_size(arch: str, elf: Path, addr: int) -> int:
    """Length of the instruction at addr, by capstone from the ELF's bytes."""
    import capstone
    from guestlib import _CAPSTONE

    with open(elf, "rb") as f:
        for seg in ELFFile(f).iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= addr < seg["p_vaddr"] + seg["p_filesz"]:
                data = seg.data()[addr - seg["p_vaddr"]: addr - seg["p_vaddr"] + 16]
    return next(capstone.Cs(*_CAPSTONE[arch]).disasm(data, addr, 1)).size


def test_per_core_formats_write_one_file_per_vcpu(tmp_path):
    """The smp guest: CPU k stores 256 u32 values into its own 1 KiB; champsim writes core{k} for each vCPU, with
    those stores as destination operands, and uftrace a task per vCPU; without {vcpu} the export refuses."""
    arch = "riscv64"
    trace = tmp_path / "smp.trace"
    proc = record(trace, arch, "smp", "--start-on-marker", smp=4)
    assert proc.returncode == 0, proc.stderr
    elf = str(guest(arch, "smp"))
    proc = memtap("export", str(trace), "--format", "champsim", "-o", str(tmp_path / "core.champsim"), "--elf", elf)
    assert proc.returncode == 1 and "put {vcpu} in the output name" in proc.stderr
    export(trace, "champsim", tmp_path / "core{vcpu}.champsim", "--elf", elf)
    region = symbols(guest(arch, "smp"))["mt_smp_region"]
    for k in range(4):
        recs = read_champsim((tmp_path / f"core{k}.champsim").read_bytes())
        stores = [m for r in recs for m in r["dst_mem"] if region <= m < region + 4096]
        assert stores == [region + k * 1024 + 4 * i for i in range(256)]
    d = tmp_path / "uftrace.data"
    export(trace, "uftrace", d, "--elf", elf)
    assert sorted(p.name for p in d.glob("*.dat")) == ["100.dat", "200.dat", "300.dat", "400.dat"]
    assert "taskinfo:tids=100,200,300,400\n" in (d / "info").read_bytes().decode(errors="replace")


def test_chrome_shows_exceptions(tmp_path):
    """The riscv64 priv guest's ecall from user mode: one exception event on vCPU 0's track, from the ecall to the
    handler, cause 8."""
    trace = tmp_path / "priv.trace"
    proc = record(trace, "riscv64", "priv", "--start-on-marker")
    assert proc.returncode == 0, proc.stderr
    out, _ = text_of(trace, "chrome")
    sym = symbols(guest("riscv64", "priv"))
    got = [e for e in json.loads(out)["traceEvents"] if e["ph"] == "i"]
    assert [(e["name"], e["tid"], e["args"]) for e in got] == [
        ("exception", 1, {"handler": f"{sym['priv_handler']:#x}", "from": f"{sym['user_ecall']:#x}", "cause": "0x8"})]


# --- uftrace and Chrome on cover ------------------------------------------------------------------------------

MAIN_TREE = (["main"] + (["sum_squares"] + ["square"] * 5) * 3 + ["mt_puts"] + ["mt_putc"] * 13
             + ["mt_put_dec"] + ["mt_putc"] * 2 + ["mt_puts", "mt_putc"])
MAIN_DEPTHS = ([0] + ([1] + [2] * 5) * 3 + [1] + [2] * 13 + [1] + [2] * 2 + [1, 2])


def function_instructions(arch: str, name: str) -> int:
    """Instructions of a straight-line function (square: no branch), from its ELF symbol's extent."""
    elf = guest(arch, "cover")
    with open(elf, "rb") as f:
        sym = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name(name)[0]
    return len(instructions(arch, elf, sym["st_value"], sym["st_value"] + sym["st_size"]))


def uftrace(*args: str) -> str:
    proc = subprocess.run(["uftrace", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def uftrace_dirs(cover_traces, tmp_path_factory):
    if shutil.which("uftrace") is None:
        pytest.skip("uftrace is not installed (scripts/setup-system.sh installs it)")
    out = {}
    for arch in ARCHES:
        d = tmp_path_factory.mktemp(f"uftrace-{arch}") / "uftrace.data"
        export(cover_traces[arch], "uftrace", d, "--elf", str(guest(arch, "cover")))
        out[arch] = d
    return out


@pytest.mark.parametrize("arch", ARCHES)
def test_uftrace_replay_shows_the_call_tree(uftrace_dirs, arch):
    lines = uftrace("replay", "-d", str(uftrace_dirs[arch])).splitlines()
    assert lines[0].split() == ["#", "DURATION", "TID", "FUNCTION"]
    calls = []
    for line in lines[1:]:
        duration, rest = line.split("[", 1)
        tid, body = rest.split("|", 1)
        assert tid.strip(" ]") == "100"
        m = re.fullmatch(r"( *)(\w+)\(\)(?: \{|;)", body[1:])
        if m:
            calls.append((len(m.group(1)) // 2, m.group(2), duration.strip()))
    start = next(i for i, c in enumerate(calls) if c[1] == "main")
    main = calls[start:start + len(MAIN_TREE)]
    base = main[0][0]
    assert [c[1] for c in main] == MAIN_TREE
    assert [c[0] - base for c in main] == MAIN_DEPTHS
    assert "never_called" not in {c[1] for c in calls}
    # times are instruction counts: square runs its straight-line body, entry to return, in as many "ns"
    n = function_instructions(arch, "square")
    assert {c[2] for c in main if c[1] == "square"} == {f"{n / 1000:.3f} us"}


@pytest.mark.parametrize("arch", ARCHES)
def test_uftrace_report_graph_and_dump(uftrace_dirs, arch):
    d = str(uftrace_dirs[arch])
    rows = {}
    for line in uftrace("report", "-d", d).splitlines()[2:]:
        fields = line.split()
        rows[fields[-1]] = int(fields[-2])
    assert {k: rows[k] for k in ("main", "sum_squares", "square", "mt_puts", "mt_put_dec", "mt_putc")} == {
        "main": 1, "sum_squares": 3, "square": 15, "mt_puts": 2, "mt_put_dec": 1, "mt_putc": 16}
    graph = uftrace("graph", "-d", d, "main")
    tree = graph.split("FUNCTION CALL GRAPH")[1]
    assert [(int(n), name) for n, name in re.findall(r"\((\d+)\) (\w+)", tree)] == [
        (1, "main"), (3, "sum_squares"), (15, "square"), (2, "mt_puts"), (14, "mt_putc"), (1, "mt_put_dec"),
        (2, "mt_putc")]
    dump = json.loads(uftrace("dump", "--chrome", "-d", d))
    jsonschema.validate(dump, TRACE_EVENT_SCHEMA)
    names = [e["name"] for e in dump["traceEvents"] if e["ph"] == "B"]
    assert names.count("square") == 15 and names.count("sum_squares") == 3 and names.count("main") == 1


def test_uftrace_records_and_files(uftrace_dirs):
    d = uftrace_dirs["riscv64"]
    assert sorted(p.name for p in d.iterdir()) == ["100.dat", "info", "sid-0.map", "task.txt"]
    assert (d / "info").read_bytes()[:16] == b"Ftrace!\0\x04\x00\x00\x00\x28\x00\x01\x02"
    assert (d / "task.txt").read_text() == 'SESS timestamp=0.0 pid=100 sid=0 exename="cpu0"\n' \
                                           "TASK timestamp=0.0 tid=100 pid=100\n"
    recs = read_uftrace_dat((d / "100.dat").read_bytes())
    sym = symbols(guest("riscv64", "cover"))
    square = [r for r in recs if r[3] == sym["square"]]
    assert [r[1] for r in square] == [0, 1] * 15
    assert {r[2] for r in square} == {2}   # main 0, sum_squares 1, square 2
    assert all(b[0] - a[0] == function_instructions("riscv64", "square") for a, b in zip(square[::2], square[1::2],
                                                                                      strict=True))


@pytest.mark.parametrize("arch", ARCHES)
def test_chrome_json_has_spans_counters_and_schema(cover_traces, arch, tmp_path):
    out = tmp_path / "cover.json"
    export(cover_traces[arch], "chrome", out, "--elf", str(guest(arch, "cover")), "--interval", "1000")
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, TRACE_EVENT_SCHEMA)
    ev = doc["traceEvents"]
    assert {e.get("tid") for e in ev if e["ph"] != "C" and e["name"] != "process_name"} == {1}
    assert [e for e in ev if e["ph"] == "M" and e["name"] == "thread_name"] == [
        {"name": "thread_name", "ph": "M", "pid": 1, "tid": 1, "args": {"name": "vCPU 0"}}]
    spans = [e for e in ev if e["ph"] in "BE"]
    stack, durations, names = [], [], []
    for e in spans:
        if e["ph"] == "B":
            stack.append(e)
            names.append(e["name"])
        else:
            begin = stack.pop()
            assert begin["name"] == e["name"]
            if e["name"] == "square":
                durations.append(round((e["ts"] - begin["ts"]) * 1000))
    assert not stack
    start = names.index("main")
    assert names[start:start + len(MAIN_TREE)] == MAIN_TREE
    assert durations == [function_instructions(arch, "square")] * 15
    # the counters add up to the trace's accesses
    counters = [e["args"] for e in ev if e["ph"] == "C"]
    totals = {k: sum(c[k] for c in counters) for k in ("fetch", "load", "store")}
    end = memtap_pkg.open(cover_traces[arch]).end["records"]
    assert totals == {k: end[k] for k in ("fetch", "load", "store")}


@pytest.mark.parametrize("arch", ARCHES)
def test_chrome_markers_and_counters_on_seq(seq_traces, arch):
    out, err = text_of(seq_traces[arch], "chrome", "--time", "pos", "--interval", "10")
    assert err == "memtap: chrome: no --elf: no function spans (markers, exceptions and counters only)\n"
    ev = json.loads(out)["traceEvents"]
    expected = expected_seq(arch)
    mark_pos = next(i for i, r in enumerate(expected) if r[0] == "marker")
    assert [e for e in ev if e["ph"] == "i"] == [
        {"name": "MEMTAP_MARK(0x1234)", "ph": "i", "s": "t", "pid": 1, "tid": 1, "ts": mark_pos / 1000,
         "args": {"pc": f"{symbols(guest(arch, 'seq'))['seq_mark']:#x}"}}]
    want = []
    for b in range(0, len(expected), 10):
        window = [r[0] for r in expected[b:b + 10]]
        want.append({"ts": b / 1000, "args": {k: window.count(k) for k in ("fetch", "load", "store")}})
    zero = {"fetch": 0, "load": 0, "store": 0}
    want.append({"ts": (len(want)) * 10 / 1000, "args": zero})   # the counter drops to 0 after the last interval
    assert [{"ts": e["ts"], "args": e["args"]} for e in ev if e["ph"] == "C"] == want


# --- Ramulator SimpleO3 from the cache simulator --------------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHES)
def test_ramulator_o3_lines_are_the_cold_misses(seq_traces, arch):
    """With the zen4 hierarchy nothing of seq is evicted: each 64-byte line's first touch misses every level,
    and the instructions between two such touches that reach no memory are the bubbles."""
    out, err = text_of(seq_traces[arch], "ramulator-o3")
    assert err == ""
    want, seen, last, icount = [], set(), None, -1
    for k, _pc, va, _, _ in expected_seq(arch):
        if k == "marker":
            continue
        icount += k == "fetch"
        line = va & ~63
        if line not in seen:
            seen.add(line)
            want.append((0 if last is None else max(0, icount - last - 1), line, None))
            last = icount
    assert read_simpleo3(out) == want


# --- what a format cannot hold ------------------------------------------------------------------------------------


def synthetic(path: Path) -> Path:
    """One vCPU: a load of 0x10 then a store to it by one instruction (lackey's M), a load from address 0, a store
    above 2^63, a cache-line flush, a prefetch and a marker."""
    from tracegen import Insn, TraceWriter, cmo_ev, data_ev, exec_ev, mark_ev

    with TraceWriter(path) as w:
        w.info()
        w.insns([Insn(0x1000), Insn(0x1004), Insn(0x1008), Insn(0x100C, flags=L.INSN_CMO, cmo=L.CMO_FLUSH),
                 Insn(0x1010, flags=L.INSN_CMO, cmo=L.CMO_PREFETCH_READ), Insn(0x1014, flags=L.INSN_MARKER)])
        w.events(0, [exec_ev(0, 1, pos=0, icount=1), data_ev(0, 0x10, pos=1, icount=1, size=4),
                     data_ev(0, 0x10, pos=2, icount=1, size=4, store=True),
                     exec_ev(1, 1, pos=3, icount=2), data_ev(1, 0, pos=4, icount=2),
                     exec_ev(2, 1, pos=5, icount=3), data_ev(2, 0x8000000000001000, pos=6, icount=3, store=True),
                     exec_ev(3, 1, pos=7, icount=4), cmo_ev(3, 0x2040, pos=8, icount=4),
                     exec_ev(4, 1, pos=9, icount=5), cmo_ev(4, 0x3000, pos=10, icount=5),
                     exec_ev(5, 1, pos=11, icount=6), mark_ev(5, 7, pos=12, icount=6)])
        w.end()
    return path


def test_what_formats_cannot_hold_is_counted_once(tmp_path):
    trace = synthetic(tmp_path / "syn.trace")
    out, err = text_of(trace, "lackey")
    assert read_lackey(out) == [("I", 0x1000, 4), ("M", 0x10, 4), ("I", 0x1004, 4), ("L", 0, 8), ("I", 0x1008, 4),
                                ("S", 0x8000000000001000, 8), ("I", 0x100C, 4), ("I", 0x1010, 4), ("I", 0x1014, 4)]
    assert err == ("memtap: lackey: dropped 1 marker records (the format has no markers)\n"
                   "memtap: lackey: dropped 2 cache operations the format has no label for\n")
    assert text_of(trace, "lackey", "--time", "pos")[0] == out   # one instruction is one icount, whatever --time
    out, err = text_of(trace, "dinero", "--line", "32")
    assert read_dinero(out) == [("i", 0x1000, 4), ("r", 0x10, 4), ("w", 0x10, 4), ("i", 0x1004, 4), ("r", 0, 8),
                                ("i", 0x1008, 4), ("w", 0x8000000000001000, 8), ("i", 0x100C, 4),
                                ("c", 0x2040, 0x20), ("v", 0x2040, 0x20), ("i", 0x1010, 4), ("i", 0x1014, 4)]
    assert "memtap: dinero: dropped 1 cache operations Dinero has no label for" in err
    out, err = text_of(trace, "ramulator")
    assert ("ST", 0x8000000000001000) not in read_ramulator(out)
    assert ("LD", 0x3000) in read_ramulator(out)   # a prefetch is a read of memory
    assert "memtap: ramulator: dropped 1 records at addresses of 2^63 and above" in err
    path = tmp_path / "syn.champsim"
    proc = export(trace, "champsim", path, "--elf", str(guest("riscv64", "seq")))
    recs = read_champsim(path.read_bytes())
    assert [(r["ip"], r["src_mem"], r["dst_mem"]) for r in recs] == [
        (0x1000, [0x10], [0x10]), (0x1004, [], []), (0x1008, [], [0x8000000000001000]), (0x100C, [], []),
        (0x1010, [0x3000], []), (0x1014, [], [])]
    assert "memtap: champsim: dropped 1 memory operands at address 0 (0 means an empty slot in the format)" \
        in proc.stderr
    assert "6 instruction addresses are outside the code of the ELF files" in proc.stderr


def test_an_empty_selection_writes_empty_outputs(seq_traces, tmp_path):
    trace, elf = seq_traces["riscv64"], str(guest("riscv64", "seq"))
    for fmt, name in (("champsim", "e.champsim"), ("ramulator-o3", "e.o3"), ("lackey", "e.lackey"),
                      ("gem5", "e.gem5")):
        export(trace, fmt, tmp_path / name, "--range", "1000:", "--elf", elf)
        assert (tmp_path / name).read_bytes() == (gem5_header(trace) if fmt == "gem5" else b""), fmt


def gem5_header(trace: Path) -> bytes:
    """The magic and the PacketHeader a gem5 trace of no packets has: obj_id, ver 0, tick_freq 10^12."""
    name = f"memtap {trace}".encode()
    body = b"\x0a" + _varint(len(name)) + name + b"\x10\x00\x18" + _varint(10**12)
    return b"gem5" + _varint(len(body)) + body


def test_physical_addresses_drop_records_without_one(seq_traces):
    """x86_64's seq runs with paging on, and QEMU 10.0 gives fetches no physical address: all 29 are dropped."""
    out, err = text_of(seq_traces["x86_64"], "ramulator", "--address", "physical")
    assert read_ramulator(out) == [("ST" if k == "store" else "LD", va) for k, _, va, _, _ in expected_seq("x86_64")
                                   if k in ("load", "store")]
    assert "memtap: ramulator: dropped 29 records without a physical address (--address physical)" in err


def test_bad_requests_are_one_line_errors(seq_traces, tmp_path):
    trace = str(seq_traces["riscv64"])
    for args, error in [
        (["--format", "champsim", "-o", str(tmp_path / "x")], "give the guest's ELF file(s) with --elf"),
        (["--format", "uftrace", "-o", "-", "--elf", str(guest("riscv64", "seq"))], "uftrace writes a directory"),
        (["--format", "champsim", "-o", str(tmp_path / "x"), "--kinds", "load", "--elf", "x"],
         "champsim needs fetch records: add fetch to --kinds"),
        (["--format", "lackey", "-o", str(tmp_path / "x"), "--line", "48"], "--line 48: must be a power of two"),
    ]:
        proc = memtap("export", trace, *args)
        assert proc.returncode == 1 and proc.stderr.startswith("memtap: ") and error in proc.stderr, proc.stderr
        assert len(proc.stderr.splitlines()) == 1


# --- from the live ring ---------------------------------------------------------------------------------------------


def test_exports_from_a_live_ring_equal_the_files(tmp_path):
    """Two exports attached to a recording's ring (it waits for both) write what the same exports of its trace
    file write."""
    import sys

    from ringlib import Recording, ring_name, wait_for_ring

    name, trace, elf = ring_name(), tmp_path / "cover.trace", str(guest("riscv64", "cover"))
    rec = Recording(name, "riscv64", "cover", "--ring-wait", "2", trace=trace)
    wait_for_ring(name)
    live = {fmt: subprocess.Popen([sys.executable, "-m", "memtap.cli.main", "export", "--ring", name, "--arch",
                                   "riscv64", "--format", fmt, "-o", str(tmp_path / f"live.{fmt}"), "--elf", elf],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for fmt in ("lackey", "uftrace")}
    assert rec.wait() == 0, rec.stderr
    for fmt, proc in live.items():
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        export(trace, fmt, tmp_path / f"file.{fmt}", "--elf", elf, "--order", "file")
    assert (tmp_path / "live.lackey").read_text() == (tmp_path / "file.lackey").read_text()
    for part in ("100.dat", "task.txt", "sid-0.map", "info"):
        assert (tmp_path / "live.uftrace" / part).read_bytes() == (tmp_path / "file.uftrace" / part).read_bytes()
    recs = read_uftrace_dat((tmp_path / "live.uftrace" / "100.dat").read_bytes())
    assert [r[1] for r in recs if r[3] == symbols(guest("riscv64", "cover"))["square"]] == [0, 1] * 15
