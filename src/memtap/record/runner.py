"""Running the user's QEMU command under the memtap plugin.

The file header and metadata are written here, before QEMU starts (so the file says what produced it even if QEMU
dies at once); the plugin appends chunks. Afterwards the trace is checked, so a truncated trace is never reported as
whole.
"""

from __future__ import annotations

import ctypes
import datetime
import json
import os
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from memtap import __version__
from memtap.errors import UserError
from memtap.live.ring import remove_stale
from memtap.record import qemu
from memtap.record.ring_options import RingOptions
from memtap.trace.layout import FILE_MAGIC, FORMAT_VERSION

EVENT_NAMES = ("fetch", "load", "store")
ADDRESS_MODES = ("virtual", "physical", "both")


@dataclass
class RecordOptions:
    """What to trace and where; mirrors the plugin's arguments."""

    out: Path | None
    events: tuple[str, ...] = EVENT_NAMES
    addresses: str = "both"
    start_on_marker: bool = False
    max_insns: int = 0
    vcpus: tuple[int, ...] = ()
    sink: str = "file"
    zstd_level: int = 3
    buffers: int = 0
    buffer_events: int = 0
    counts: bool = False
    values: bool = False
    ring: RingOptions | None = None  # --ring: also publish into a live shared-memory ring

    def check(self) -> None:
        """Counts mode keeps per-instruction counters of the whole run: record-selection options do not apply."""
        if not self.counts:
            return
        clash = [name for name, used in (
            ("--events", self.events != EVENT_NAMES), ("--start-on-marker", self.start_on_marker),
            ("--max-insns", bool(self.max_insns)), ("--vcpus", bool(self.vcpus)),
            ("--sink null", self.sink != "file"), ("--values", self.values), ("--ring", self.ring is not None),
        ) if used]
        if clash:
            raise UserError(f"--counts counts every instruction of the whole run into a file; it cannot be "
                            f"combined with {', '.join(clash)}")
        if self.out is None:
            raise UserError("--counts needs -o TRACE")

    def plugin_args(self) -> dict[str, str]:
        args = {"sink": self.sink, "events": "+".join(self.events), "addr": self.addresses}
        if self.out is not None:
            args["out"] = str(Path(self.out).absolute())  # whatever directory QEMU runs in
            args["append"] = "on"  # the header is already written (write_header)
        if self.counts:
            args["counts"] = "on"
        if self.values:
            args["values"] = "on"
        if self.ring is not None:
            args.update(self.ring.plugin_args())
        if self.start_on_marker:
            args["start_on_marker"] = "on"
        if self.max_insns:
            args["max_insns"] = str(self.max_insns)
        if self.vcpus:
            args["vcpus"] = "+".join(map(str, self.vcpus))
        if self.zstd_level != 3:
            args["zstd"] = str(self.zstd_level)
        if self.buffers:
            args["buffers"] = str(self.buffers)
        if self.buffer_events:
            args["buffer_events"] = str(self.buffer_events)
        return args


@dataclass
class RecordResult:
    """How the run ended: QEMU's status and what the trace holds."""

    returncode: int
    killed_by: int | None
    qemu_command: list[str]
    stopped_by: int | None = None  # a signal memtap itself got (SIGTERM, SIGHUP) and passed on to QEMU


def write_header(path: Path, meta: dict) -> None:
    """Creates the trace with its header; refuses paths that cannot be written, before QEMU starts, and leaves no
    partial file behind (a full disk fails the write after the file was created)."""
    blob = json.dumps(meta, sort_keys=True).encode()
    existed = path.exists()
    try:
        with open(path, "wb") as f:
            f.write(FILE_MAGIC + struct.pack("<II", FORMAT_VERSION, len(blob)) + blob)
    except OSError as exc:
        if not existed and path.is_file():
            path.unlink()
        raise UserError(f"cannot write trace {path}: {exc.strerror}") from None


PR_SET_PDEATHSIG = 1  # prctl(2)


def _die_with_memtap(memtap_pid: int) -> Callable[[], None]:
    """What the QEMU child runs before exec: the kernel sends it SIGTERM when memtap dies, however memtap dies
    (SIGKILL, the OOM killer), so QEMU never outlives memtap and writes on into the trace; SIGTERM is QEMU's
    orderly shutdown, so the trace still ends with its END chunk."""

    def arm() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != memtap_pid:  # memtap died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return arm


def metadata(command: list[str], emu: qemu.Emulator, options: RecordOptions) -> dict:
    opts = asdict(options)
    opts["out"] = str(options.out) if options.out else None
    return {
        "memtap_version": __version__,
        "qemu_path": emu.path,
        "qemu_version": ".".join(map(str, emu.version or ())),
        "qemu_command": command,
        "start_time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "options": opts,
    }


def hardware_accelerator(command: list[str]) -> str | None:
    """The accelerator other than TCG that the command asks for, if any: plugins see only TCG's code."""
    for i, arg in enumerate(command):
        if arg in ("-enable-kvm", "--enable-kvm"):
            return "kvm"
        value = command[i + 1] if arg in ("-accel", "--accel", "-machine", "-M") and i + 1 < len(command) else ""
        if arg in ("-accel", "--accel"):
            name = value.split(",")[0]
            if name and name != "tcg":
                return name
        for part in value.split(","):
            if part.startswith("accel=") and not part[6:].startswith("tcg"):
                return part[6:].split(":")[0]
    return None


def run(command: list[str], options: RecordOptions) -> RecordResult:
    """Runs QEMU to completion with the plugin; QEMU keeps the terminal (its console stays visible)."""
    if not command:
        raise UserError("no QEMU command given (memtap record -o TRACE -- qemu-system-ARCH ...)")
    options.check()
    if options.ring is not None and options.counts:
        raise UserError("--counts and --ring cannot be combined: counts mode makes no records to publish")
    if "-daemonize" in command or "--daemonize" in command:
        raise UserError("memtap record waits for QEMU and then checks the trace: remove -daemonize")
    accel = hardware_accelerator(command)
    if accel:
        raise UserError(f"the QEMU command asks for {accel}; memtap traces TCG only: remove that accelerator option")
    emu = qemu.require(command[0])
    lib = qemu.plugin_path()
    if options.sink == "file":
        if options.out is None:
            raise UserError("no output file: give -o TRACE")
        write_header(options.out, metadata(command, emu, options))
    full = qemu.with_plugin([emu.path or command[0], *command[1:]], lib, options.plugin_args())
    if options.ring is not None:
        print(options.ring.banner(), file=sys.stderr, flush=True)
    # Ctrl-C reaches QEMU too (same process group, which keeps QEMU's console in the terminal); memtap waits for
    # it to shut down and flush the trace. SIGTERM and SIGHUP (a closed terminal) to memtap are passed on to QEMU
    # as SIGTERM, its orderly shutdown, and memtap still checks the trace afterwards.
    stopped_by: list[int] = []
    proc: subprocess.Popen | None = None

    def pass_on(signum: int, frame: object) -> None:
        stopped_by.append(signum)
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, handler) for sig, handler in (
        (signal.SIGINT, signal.SIG_IGN), (signal.SIGTERM, pass_on), (signal.SIGHUP, pass_on))}
    try:
        proc = subprocess.Popen(full, preexec_fn=_die_with_memtap(os.getpid()))
        if stopped_by:  # a signal came while QEMU was being started
            proc.send_signal(signal.SIGTERM)
        returncode = proc.wait()
    except OSError as exc:
        raise UserError(f"cannot run {full[0]}: {exc.strerror}") from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if options.ring is not None:
            remove_stale(options.ring.name)  # the plugin removes it at exit; a killed QEMU leaves it behind
    killed_by = -returncode if returncode < 0 else None
    return RecordResult(returncode, killed_by, full, stopped_by[0] if stopped_by else None)
