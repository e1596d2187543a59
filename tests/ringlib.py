"""Test helpers for the live ring: a recording in the background, consumers in threads, and file-side digests.

Ring and file records are compared byte for byte (the reader zeroes the `fetches` field, as expansion does), either
whole or, for runs of millions of records, through sha256 digests of the record bytes.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from guestlib import ROOT, guest, qemu_command

import memtap
from memtap.live import ring
from memtap.live import runs as ring_runs
from memtap.trace import layout


def ring_name() -> str:
    return f"memtap-test-{secrets.token_hex(6)}"


class Recording:
    """`memtap record [-o trace] --ring NAME ...` running in the background; stderr lines are timestamped."""

    def __init__(self, name: str, arch: str, program: str, *options: str, trace: Path | None = None,
                 smp: int = 1, qemu: str | None = None) -> None:
        self.name, self.trace = name, trace
        out = ["-o", str(trace)] if trace is not None else []
        cmd = [sys.executable, "-m", "memtap.cli.main", "record", *out, "--ring", name, *options, "--",
               *qemu_command(arch, guest(arch, program), smp, qemu=qemu)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    @property
    def stderr(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def wait(self, timeout: float = 120) -> int:
        rc = self.proc.wait(timeout)
        self._reader.join(10)
        self.proc.stdout.close()
        return rc

    def wait_for_line(self, text: str, timeout: float = 120) -> float:
        """The time the first stderr line containing text was read (the timeout is a failsafe against a hang, not
        a bound the test asserts)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, line in list(self.lines):
                if text in line:
                    return t
            time.sleep(0.005)
        raise AssertionError(f"no stderr line with {text!r}:\n{self.stderr}")


class Collector(threading.Thread):
    """A consumer in a thread: keeps copies of its batches (or only a digest), optionally slowly."""

    def __init__(self, name: str, keep: bool = True, delay: float = 0.0,
                 on_batch: Callable[[int], None] | None = None) -> None:
        super().__init__(daemon=True)
        self.consumer = ring.connect(name, timeout=30, expand=False)  # expanded here, to keep the raw sizes
        self.keep, self.delay, self.on_batch = keep, delay, on_batch
        self.batches: list[np.ndarray] = []
        self.firsts: list[int] = []  # stream index of each batch's first record
        self.raw_counts: list[int] = []  # ring records (fetch runs unexpanded) in each batch
        self.raw: list[np.ndarray] = []  # with keep: the batches as the ring carried them
        self.counts: list[int] = []  # records in each batch, expanded
        self.digest = hashlib.sha256()
        self.count = 0
        self.kinds = np.zeros(len(layout.KIND_NAMES), np.int64)
        self.error: BaseException | None = None
        self.lost = -1
        self.start()

    def run(self) -> None:
        c = self.consumer
        try:
            n = 0
            while (raw := c.next_batch()) is not None:
                self.raw_counts.append(len(raw))
                batch = ring_runs.expand(raw)
                self.counts.append(len(batch))
                self.firsts.append(c.first_record)
                self.digest.update(batch.tobytes())
                self.count += len(batch)
                self.kinds += np.bincount(batch["kind"], minlength=len(layout.KIND_NAMES))
                if self.keep:
                    self.batches.append(batch.copy())
                    self.raw.append(raw.copy())
                n += 1
                if self.on_batch:
                    self.on_batch(n)
                if self.delay:
                    time.sleep(self.delay)
        except BaseException as exc:  # reported by finish()
            self.error = exc
        finally:
            self.lost = c.lost
            c.close()

    def finish(self, timeout: float = 120) -> Collector:
        self.join(timeout)
        assert not self.is_alive(), "consumer did not see the end of the stream"
        assert self.error is None, repr(self.error)
        return self

    def records(self) -> np.ndarray:
        return np.concatenate(self.batches) if self.batches else np.empty(0, layout.RECORD)


def file_digest(trace: Path, skip: int = 0) -> tuple[str, int, int | None]:
    """sha256 of the file's records (file order) from record index `skip`, their count, and the first one's pos."""
    h = hashlib.sha256()
    n = seen = 0
    first_pos = None
    for b in memtap.open(trace).batches():
        if seen + len(b) > skip:
            part = b[max(skip - seen, 0):]
            if first_pos is None:
                first_pos = int(part["pos"][0])
            h.update(part.tobytes())
            n += len(part)
        seen += len(b)
    return h.hexdigest(), n, first_pos


def wait_for_ring(name: str, timeout: float = 30) -> None:
    """Until the plugin has published the ring: its magic is written last, after the object is sized and set up."""
    deadline = time.monotonic() + timeout
    path = Path(ring.shm_path(name))
    while True:
        try:
            with open(path, "rb") as f:
                if f.read(len(layout.RING_MAGIC)) == layout.RING_MAGIC:
                    return
        except FileNotFoundError:
            pass
        assert time.monotonic() < deadline, f"ring {name} never appeared"
        time.sleep(0.01)


def build_c(tmp_path_factory: pytest.TempPathFactory, source: Path) -> str:
    """A ring client built as a user would, with warnings as errors."""
    cc = shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    exe = tmp_path_factory.mktemp("c") / source.stem
    subprocess.run([cc, "-Wall", "-Wextra", "-Werror", "-O2", "-pthread", "-I", str(ROOT / "include"),
                    str(source), "-o", str(exe)], check=True)
    return str(exe)


@pytest.fixture(scope="module")
def ring_count(tmp_path_factory: pytest.TempPathFactory) -> str:
    """examples/ring_count.c, the example co-simulator."""
    return build_c(tmp_path_factory, ROOT / "examples" / "ring_count.c")


@pytest.fixture(scope="module")
def ring_dump(tmp_path_factory: pytest.TempPathFactory) -> str:
    """tests/c/ring_dump.c: every record, runs expanded by ring_client.h, as raw bytes on stdout."""
    return build_c(tmp_path_factory, ROOT / "tests" / "c" / "ring_dump.c")


@pytest.fixture
def fake_ring() -> Callable[..., str]:
    """Makes /dev/shm objects that look like a ring but differ in one header field; removed afterwards."""
    made: list[str] = []

    def make(**fields: int) -> str:
        name = ring_name()
        h = np.zeros(1, layout.RING_HEADER)
        h["magic"], h["version"], h["header_size"] = layout.RING_MAGIC, layout.RING_VERSION, 512
        h["record_size"] = layout.RECORD.itemsize
        h["nbuffers"], h["buffer_records"], h["max_consumers"] = 1, 1, layout.RING_MAX_CONSUMERS
        h["consumers_offset"], h["buffers_offset"], h["records_offset"] = 512, 512 + 16 * 64, 4096
        h["segment_size"], h["producer_pid"], h["state"] = 8192, os.getpid(), layout.RING_RUNNING
        for key, value in fields.items():
            h[key] = value
        path = ring.shm_path(name)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        os.write(fd, h.tobytes() + bytes(8192 - 512))
        os.close(fd)
        made.append(path)
        return name

    yield make
    for path in made:
        os.unlink(path)
