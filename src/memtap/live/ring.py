"""Live records from a running ``memtap record --ring NAME``: a client of the plugin's shared-memory ring.

``connect(NAME)`` attaches a consumer and yields the records as numpy ``layout.RECORD`` arrays, one record per
access. A ring carries fetches as runs by default (``KIND_FETCH_RUN``, ``KIND_RUN_LOAD``, ``KIND_RUN_STORE``; see
memtap.ring_runs), so such batches are expanded copies; ``connect(NAME, expand=False)`` yields the ring's own
records, views of its buffers (no copy), runs included. A view stays valid until the next batch is requested or
the consumer is closed; then its buffer is handed back to the plugin, which refills it. Keep a view longer only
as ``batch.copy()``.

``open_ring(NAME)`` gives the control channel and status without consuming (what ``memtap ctl`` uses); a consumer
has the same ``start()``, ``stop()``, ``mark(n)`` and ``status()``. Layout and protocol: docs/ring.md, trace.h.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import mmap
import os
import platform
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from memtap.errors import TraceError, UserError
from memtap.live import runs as ring_runs
from memtap.trace import layout as L

SHM_DIR = "/dev/shm"
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,253}")
_SYS_FUTEX = {"x86_64": 202, "aarch64": 98, "riscv64": 98, "i686": 240, "armv7l": 240}.get(platform.machine())
_FUTEX_WAIT, _FUTEX_WAKE = 0, 1
_RESULTS = {
    L.RING_ERR_COMMAND: "the plugin does not know this command",
    L.RING_ERR_BUDGET: "the --max-insns budget is spent; tracing cannot start again",
    L.RING_ERR_OFF: "tracing is off: a marker would not be recorded",
    L.RING_ERR_BUSY: "no traced vCPU entered a block within a second (is the guest halted?); marker not recorded",
}
_DETACH = {
    L.RING_DETACH_GONE: "its process was gone",
    L.RING_DETACH_SILENT: "its heartbeat stopped",
    L.RING_DETACH_MALFORMED: "its slot held invalid values",
}


def shm_path(name: str) -> str:
    """/dev/shm path of a ring name (with or without the leading slash POSIX shm names have)."""
    bare = name[1:] if name.startswith("/") else name
    if not _NAME.fullmatch(bare):
        raise UserError(f"bad ring name {name!r}: use letters, digits, '.', '_' and '-'")
    return os.path.join(SHM_DIR, bare)


def _field(dtype: np.dtype, name: str) -> int:
    return dtype.fields[name][1]


class _Futex:
    """futex(2) on words of a shared mapping, through ctypes; without it, waits fall back to short sleeps."""

    def __init__(self, mm: mmap.mmap) -> None:
        self._anchor = ctypes.c_char.from_buffer(mm) if _SYS_FUTEX else None
        self._base = ctypes.addressof(self._anchor) if self._anchor is not None else 0
        self._libc = ctypes.CDLL(None, use_errno=True) if _SYS_FUTEX else None

    def wait(self, offset: int, seen: int, seconds: float) -> None:
        if self._libc is None:
            time.sleep(min(seconds, 0.001))
            return
        ts = (ctypes.c_long * 2)(int(seconds), int((seconds % 1) * 1e9))
        self._libc.syscall(_SYS_FUTEX, ctypes.c_void_p(self._base + offset), _FUTEX_WAIT, ctypes.c_uint32(seen),
                           ts, None, 0)

    def wake(self, offset: int) -> None:
        if self._libc is not None:
            self._libc.syscall(_SYS_FUTEX, ctypes.c_void_p(self._base + offset), _FUTEX_WAKE, 0x7FFFFFFF,
                               None, None, 0)

    def close(self) -> None:
        self._anchor = None


@dataclass(frozen=True)
class ConsumerStatus:
    """One attached consumer, as the plugin sees it."""

    slot: int
    pid: int
    behind: int  # buffers published but not yet released by it
    lost: int  # records dropped (lossy mode) while it was attached


@dataclass(frozen=True)
class Status:
    """What ``memtap ctl NAME status`` prints."""

    name: str
    producer_pid: int
    running: bool
    tracing: tuple[str, ...]  # event kinds being traced right now
    records: dict[str, int]  # made so far, by kind
    rate: int  # records per second, over the last ~0.1 s
    icount: int
    published: int
    dropped: int
    dropped_buffers: int
    lossy: bool
    nbuffers: int
    buffer_records: int
    consumers: tuple[ConsumerStatus, ...]
    age: float  # seconds since the status was refreshed by the plugin

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["consumers"] = [c.__dict__ for c in self.consumers]
        return d


class Ring:
    """A mapped ring segment: its header, control channel and status (no consumer slot)."""

    def __init__(self, name: str, open_timeout: float = 1.0) -> None:
        self.name = name.lstrip("/")
        self._fd = -1
        path = shm_path(name)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise UserError(f"no ring named {self.name} (is `memtap record --ring {self.name}` running?)") from None
        except PermissionError:
            raise UserError(f"ring {self.name}: permission denied (it belongs to another user)") from None
        try:
            self._mm = self._map(fd, open_timeout)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._u32 = memoryview(self._mm).cast("I")
        self._u64 = memoryview(self._mm).cast("Q")
        self._futex = _Futex(self._mm)
        h = np.frombuffer(self._mm, L.RING_HEADER, 1)[0]
        self.nbuffers, self.buffer_records = int(h["nbuffers"]), int(h["buffer_records"])
        self.producer_pid, self.flags = int(h["producer_pid"]), int(h["flags"])
        self.heartbeat_ms = int(h["heartbeat_ms"])
        self._slots_off, self._descs_off = int(h["consumers_offset"]), int(h["buffers_offset"])
        self._records_off = int(h["records_offset"])
        del h

    def _map(self, fd: int, timeout: float) -> mmap.mmap:
        """Maps the segment once the plugin has finished creating it; checks its format and geometry."""
        deadline = time.monotonic() + timeout
        while True:
            size = os.fstat(fd).st_size
            if size >= L.RING_HEADER.itemsize:
                mm = mmap.mmap(fd, size)
                magic = bytes(mm[:8])
                if magic == L.RING_MAGIC:
                    header = np.frombuffer(mm, L.RING_HEADER, 1)[0].copy()
                    try:
                        self._check(header, size)
                    except TraceError:
                        mm.close()
                        raise
                    return mm
                mm.close()
                if magic != bytes(8):
                    raise TraceError(f"ring {self.name}: not a memtap ring (bad magic {magic!r})")
            if time.monotonic() > deadline:
                raise TraceError(f"ring {self.name}: the shared-memory object was never initialised")
            time.sleep(0.005)

    def _check(self, h: np.void, size: int) -> None:
        if int(h["version"]) != L.RING_VERSION:
            raise TraceError(f"ring {self.name}: format version {int(h['version'])}, but this memtap reads "
                             f"version {L.RING_VERSION}: use the memtap that is recording")
        n, s = int(h["nbuffers"]), int(h["buffer_records"])
        slots_end = L.RING_HEADER.itemsize + L.RING_MAX_CONSUMERS * L.RING_CONSUMER.itemsize
        ok = (int(h["header_size"]) == L.RING_HEADER.itemsize and int(h["record_size"]) == L.RECORD.itemsize
              and int(h["max_consumers"]) == L.RING_MAX_CONSUMERS
              and int(h["consumers_offset"]) == L.RING_HEADER.itemsize and int(h["buffers_offset"]) == slots_end
              and n >= 1 and s >= 1 and int(h["records_offset"]) >= slots_end + n * L.RING_BUFFER.itemsize
              and int(h["records_offset"]) + n * s * L.RECORD.itemsize <= size == int(h["segment_size"]))
        if not ok:
            raise TraceError(f"ring {self.name}: inconsistent header (geometry does not fit the segment)")

    # --- words of the header and slots -------------------------------------------------------------------

    def _get(self, offset: int, wide: bool = False) -> int:
        return self._u64[offset // 8] if wide else self._u32[offset // 4]

    def _set(self, offset: int, value: int, wide: bool = False) -> None:
        if wide:
            self._u64[offset // 8] = value
        else:
            self._u32[offset // 4] = value & 0xFFFFFFFF

    def _hdr(self, name: str) -> int:
        off = _field(L.RING_HEADER, name)
        return self._get(off, L.RING_HEADER.fields[name][0].itemsize == 8)

    def _slot_off(self, slot: int, name: str) -> int:
        return self._slots_off + slot * L.RING_CONSUMER.itemsize + _field(L.RING_CONSUMER, name)

    def _slot(self, slot: int, name: str) -> int:
        return self._get(self._slot_off(slot, name), L.RING_CONSUMER.fields[name][0].itemsize == 8)

    def _set_slot(self, slot: int, name: str, value: int) -> None:
        self._set(self._slot_off(slot, name), value, L.RING_CONSUMER.fields[name][0].itemsize == 8)

    @property
    def ended(self) -> bool:
        """The recording finished (every buffer it will publish is published)."""
        return self._hdr("state") == L.RING_ENDED

    def producer_alive(self) -> bool:
        try:
            os.kill(self.producer_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    @contextmanager
    def _locked(self, timeout: float = 3.0) -> Iterator[None]:
        """flock(2) on the segment: serialises slot claims and control commands between clients."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise UserError(f"ring {self.name}: another client holds the ring's lock") from None
                time.sleep(0.002)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    # --- control -------------------------------------------------------------------------------------------

    def _command(self, cmd: int, arg: int = 0, timeout: float = 3.0) -> None:
        if self.ended or not self.producer_alive():
            raise UserError(f"ring {self.name}: the recording has ended")
        seq_off, ack_off = _field(L.RING_HEADER, "ctl_seq"), _field(L.RING_HEADER, "ctl_ack")
        with self._locked(timeout):
            seq = (self._get(seq_off) + 1) & 0xFFFFFFFF
            self._set(_field(L.RING_HEADER, "ctl_cmd"), cmd)
            self._set(_field(L.RING_HEADER, "ctl_arg"), arg, wide=True)
            self._set(seq_off, seq)
            self._futex.wake(seq_off)
            deadline = time.monotonic() + timeout
            while (ack := self._get(ack_off)) != seq:
                if time.monotonic() > deadline or not self.producer_alive():
                    raise UserError(f"ring {self.name}: the plugin did not answer within {timeout:g} s")
                self._futex.wait(ack_off, ack, 0.01)
            result = self._hdr("ctl_result")
        if result != L.RING_OK:
            raise UserError(f"ring {self.name}: {_RESULTS.get(result, f'error {result}')}")

    def start(self) -> None:
        """Trace the selected events again (after ``stop()`` or before a START marker)."""
        self._command(L.RING_CMD_START)

    def stop(self) -> None:
        """Trace nothing until ``start()``; the guest runs on."""
        self._command(L.RING_CMD_STOP)

    def mark(self, value: int) -> None:
        """A marker record carrying ``value``, placed by the next traced vCPU to enter a block."""
        if not 0 <= int(value) < 1 << 64:
            raise UserError(f"marker value {value} does not fit 64 bits")
        self._command(L.RING_CMD_MARK, int(value))

    def status(self) -> Status:
        h = np.frombuffer(self._mm, L.RING_HEADER, 1)[0].copy()
        slots = np.frombuffer(self._mm, L.RING_CONSUMER, L.RING_MAX_CONSUMERS, self._slots_off).copy()
        write_seq = int(h["write_seq"])
        consumers = tuple(
            ConsumerStatus(i, int(s["pid"]), max(write_seq - int(s["read_seq"]), 0), int(s["lost"]))
            for i, s in enumerate(slots) if int(s["state"]) == L.RING_SLOT_ATTACHED)
        on = int(h["trace_on"])
        bits = ((L.RING_ON_FETCH, "fetch"), (L.RING_ON_LOAD, "load"), (L.RING_ON_STORE, "store"))
        refreshed = int(h["status_time_ns"])
        return Status(
            name=self.name, producer_pid=self.producer_pid,
            running=int(h["state"]) == L.RING_RUNNING and self.producer_alive(),
            tracing=tuple(n for b, n in bits if on & b),
            records={k: int(v) for k, v in zip(L.KIND_NAMES, h["status_records"], strict=False)},
            rate=int(h["status_rate"]), icount=int(h["status_icount"]), published=int(h["records_published"]),
            dropped=int(h["records_dropped"]), dropped_buffers=int(h["buffers_dropped"]),
            lossy=bool(self.flags & L.RING_F_LOSSY), nbuffers=self.nbuffers, buffer_records=self.buffer_records,
            consumers=consumers, age=(time.monotonic_ns() - refreshed) / 1e9 if refreshed else float("inf"),
        )

    def close(self) -> None:
        """Unmaps the segment; a batch still referenced keeps the mapping alive until it is dropped."""
        if self._fd < 0:
            return
        self._release_views()
        self._futex.close()
        self._u32.release()
        self._u64.release()
        try:
            self._mm.close()
        except BufferError:
            pass  # numpy views handed out still point into it; the mapping goes with the last of them
        os.close(self._fd)
        self._fd = -1

    def _release_views(self) -> None:
        """Hook for subclasses holding numpy views of the mapping; runs while the header words are usable."""

    def __enter__(self) -> Ring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            self.close()


class Consumer(Ring):
    """An attached consumer: iterate for record batches (see the module docstring for their lifetime).

    ``joined_seq``: the first buffer it gets. ``joined_at``: (sequence, stream index, pos) of its first record,
    set with the first batch. ``lost``: records dropped (lossy mode) while it was attached. ``complete``: the
    stream ended normally (False if the producer died, None while running).
    """

    def __init__(self, name: str, timeout: float = 5.0, expand: bool = True) -> None:
        deadline = time.monotonic() + timeout
        while not os.path.exists(shm_path(name)) and time.monotonic() < deadline:
            time.sleep(0.01)  # the client may start before QEMU has created the ring
        super().__init__(name)
        self.slot = -1
        self._expand = expand
        self._lost = 0
        self.complete: bool | None = None
        self.joined_at: tuple[int, int, int] | None = None
        self.first_record = 0  # stream index of the current batch's first record (gaps: dropped or not attached)
        self._records = np.frombuffer(self._mm, L.RECORD, self.nbuffers * self.buffer_records,
                                      self._records_off).reshape(self.nbuffers, self.buffer_records)
        self._descs = np.frombuffer(self._mm, L.RING_BUFFER, self.nbuffers, self._descs_off)
        self._attach(timeout)
        self.joined_seq = self._slot(self.slot, "joined_seq")
        self._generation = self._slot(self.slot, "generation")
        self._next = self.joined_seq  # the buffer the next batch comes from
        self._holding = False
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name=f"memtap-ring-{self.slot}", daemon=True)
        self._beat.start()

    def _attach(self, timeout: float) -> None:
        if self.ended:
            raise UserError(f"ring {self.name}: the recording has ended")
        with self._locked():
            free = [i for i in range(L.RING_MAX_CONSUMERS) if self._slot(i, "state") == L.RING_SLOT_FREE]
            if not free:
                raise UserError(f"ring {self.name}: all {L.RING_MAX_CONSUMERS} consumer slots are taken")
            self.slot = free[0]
            self._set_slot(self.slot, "state", L.RING_SLOT_CLAIMING)
            self._set_slot(self.slot, "pid", os.getpid())
            self._set_slot(self.slot, "state", L.RING_SLOT_ATTACHING)
        deadline = time.monotonic() + timeout
        while (state := self._slot(self.slot, "state")) != L.RING_SLOT_ATTACHED:
            if state != L.RING_SLOT_ATTACHING or self.ended or not self.producer_alive() \
                    or time.monotonic() > deadline:
                self._set_slot(self.slot, "state", L.RING_SLOT_LEAVING)
                why = "the recording ended" if self.ended or not self.producer_alive() else "no answer"
                raise UserError(f"ring {self.name}: could not attach ({why})")
            time.sleep(0.001)

    def _heartbeat(self) -> None:
        period = max(self.heartbeat_ms / 6000, 0.005)
        beat = 0
        while not self._stop.wait(period):
            beat = (beat + 1) & 0xFFFFFFFF
            try:
                self._set_slot(self.slot, "heartbeat", beat)
            except ValueError:
                return  # closed under us

    @property
    def lost(self) -> int:
        if self.slot >= 0:
            self._lost = self._slot(self.slot, "lost")
        return self._lost

    def _check_attached(self) -> None:
        if self._slot(self.slot, "state") != L.RING_SLOT_ATTACHED or \
                self._slot(self.slot, "generation") != self._generation:
            reason = _DETACH.get(self._slot(self.slot, "detach_reason"), "unknown reason")
            raise UserError(f"ring {self.name}: this consumer was detached by the plugin ({reason})")

    def release(self) -> None:
        """Hands the last batch's buffer back to the plugin (iteration does this before the next batch)."""
        if not self._holding:
            return
        self._holding = False
        self._next += 1
        self._set_slot(self.slot, "read_seq", self._next)
        if self._hdr("producer_waiting"):
            off = _field(L.RING_HEADER, "release_futex")
            self._set(off, self._get(off) + 1)
            self._futex.wake(off)

    def next_batch(self, timeout: float | None = None) -> np.ndarray | None:
        """The next buffer's records, None at the end of the stream; TimeoutError after ``timeout`` s."""
        self.release()
        deadline = None if timeout is None else time.monotonic() + timeout
        pub_off = _field(L.RING_HEADER, "publish_futex")
        while True:
            seen = self._get(pub_off)
            if self._next < self._hdr("write_seq"):
                break
            if self.ended:
                if self._next >= self._hdr("write_seq"):
                    self.complete = True
                    return None
                continue
            if not self.producer_alive():
                self.complete = False
                return None
            self._check_attached()
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"ring {self.name}: no records within {timeout:g} s")
            self._futex.wait(pub_off, seen, 0.05)
        index = self._next % self.nbuffers
        desc = self._descs[index]
        seq, count = int(desc["seq"]), int(desc["count"])
        if seq != self._next or count > self.buffer_records:
            raise TraceError(f"ring {self.name}: buffer {index} describes sequence {seq} with {count} records, "
                             f"expected sequence {self._next}")
        self._check_attached()  # a detached consumer's buffers are no longer kept for it
        batch = self._records[index, :count]
        self.first_record = int(desc["first_record"])
        if self.joined_at is None and count:
            # a run load/store's first access is its first fetch (`fetches` is 0 in any other record)
            self.joined_at = (seq, int(desc["first_record"]), int(batch["pos"][0]) - int(batch["fetches"][0]))
        self._holding = True
        return ring_runs.expand(batch) if self._expand else batch

    def __iter__(self) -> Iterator[np.ndarray]:
        """Every batch until the recording ends; each is released when the next is requested or at the end."""
        try:
            while (batch := self.next_batch()) is not None:
                if len(batch):
                    yield batch
        finally:
            self.release()

    def _release_views(self) -> None:
        beat = getattr(self, "_beat", None)
        if beat is not None:
            self._stop.set()
            beat.join()
        if getattr(self, "slot", -1) < 0:
            return
        self._lost = self._slot(self.slot, "lost")
        if self._slot(self.slot, "state") == L.RING_SLOT_ATTACHED and \
                self._slot(self.slot, "generation") == getattr(self, "_generation", None):
            self._set_slot(self.slot, "state", L.RING_SLOT_LEAVING)
            off = _field(L.RING_HEADER, "release_futex")
            self._set(off, self._get(off) + 1)
            self._futex.wake(off)
        self.slot = -1
        self._records = self._descs = None  # type: ignore[assignment]


def open_ring(name: str) -> Ring:
    """The ring's control channel and status, without consuming records."""
    return Ring(name)


def connect(name: str, timeout: float = 5.0, expand: bool = True) -> Consumer:
    """Attach a consumer to ring ``name`` (waiting up to ``timeout`` s for it to appear and admit the consumer);
    it receives every record from the next published buffer on, with fetch runs expanded unless ``expand`` is
    False."""
    return Consumer(name, timeout, expand)


def remove_stale(name: str) -> bool:
    """Removes a ring's name left behind by a QEMU that was killed; True if there was one."""
    try:
        os.unlink(shm_path(name))
        return True
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            return False
        raise
