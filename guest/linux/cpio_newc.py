"""A cpio archive in the "newc" format, the one the Linux kernel unpacks as its initramfs
(Documentation/driver-api/early-userspace/buffer-format.rst). Written from Python so that building an initramfs
needs no root (device nodes are just header fields) and no cpio tool; the output is byte-for-byte reproducible
(owner root, mtime 0, inode numbers in order)."""
from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    """One archive member: a directory, regular file, symbolic link (data is its target) or device node."""
    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def directory(name: str, perm: int = 0o755) -> Entry:
    return Entry(name, stat.S_IFDIR | perm)


def file(name: str, data: bytes, perm: int = 0o755) -> Entry:
    return Entry(name, stat.S_IFREG | perm, data)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, stat.S_IFLNK | 0o777, target.encode())


def char_device(name: str, major: int, minor: int, perm: int = 0o600) -> Entry:
    return Entry(name, stat.S_IFCHR | perm, rdev=(major, minor))


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def _member(ino: int, entry: Entry) -> bytes:
    name = entry.name.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (ino, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0, entry.rdev[0], entry.rdev[1], len(name), 0)
    header = b"070701" + b"".join(b"%08X" % f for f in fields)
    return header + name + _pad4(len(header) + len(name)) + entry.data + _pad4(len(entry.data))


def archive(entries: list[Entry]) -> bytes:
    """The newc archive of entries (parents before children; names relative, without a leading '/')."""
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError("cpio: duplicate member names")
    members = [_member(i + 1, e) for i, e in enumerate(entries)]
    members.append(_member(0, Entry("TRAILER!!!", 0)))
    return b"".join(members)


def write(path: Path, entries: list[Entry]) -> None:
    path.write_bytes(archive(entries))
