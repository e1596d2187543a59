"""Outputs that appear under their final name only when complete: written under a temporary name beside it and
renamed on success, so an interrupted export never leaves a plausible-looking but incomplete file or dataset."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from memtap.errors import UserError


def _ordinary_permissions(path: Path, mode: int) -> None:
    """mkstemp and mkdtemp create owner-only files; give the output what the umask allows."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, mode & ~umask)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it over ``path`` only if the block succeeds."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"cannot write {path}: is a directory")
    directory = path.parent
    if not directory.is_dir():
        raise UserError(f"cannot write {path}: directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=directory)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        _ordinary_permissions(Path(tmp), 0o666)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; it becomes ``path`` only if the block succeeds. ``path`` must
    not exist, or be an empty directory."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UserError(f"cannot write {path}: {'not a directory' if not path.is_dir() else 'directory not empty'}")
    parent = path.parent
    if not parent.is_dir():
        raise UserError(f"cannot write {path}: directory {parent} does not exist")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=parent))
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None
    try:
        yield tmp
        _ordinary_permissions(tmp, 0o777)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
