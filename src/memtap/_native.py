"""Loading memtap's native cores, one way for all of them.

Each core is a plain shared library that setup.py builds beside its Python binding (see NATIVE there) and that
the binding loads with ctypes. A core is loaded on first use, so importing memtap never needs one; a core that
was not built is a one-line MemtapError naming it and the loader's reason (which names the file).
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memtap.errors import MemtapError
from memtap.trace import layout

# Function name -> (result type, argument types), as ctypes takes them (None: void).
Signatures = Mapping[str, tuple[Any, Sequence[Any]]]


class Library:
    """One native core: ``lib()`` loads it once and declares its functions' signatures from a table.

    ``record_offsets``: the byte offsets of the fields of memtap.trace.layout.RECORD that the core reads from
    records itself; a layout that moved one of them is an error before the core is used."""

    def __init__(self, path: Path, what: str, signatures: Signatures,
                 record_offsets: Mapping[str, int] | None = None) -> None:
        self.path, self.what, self.signatures = path, what, signatures
        self.record_offsets = record_offsets or {}
        self._so: ctypes.CDLL | None = None

    def __call__(self) -> ctypes.CDLL:
        """The loaded core; a MemtapError when it was not built or does not match the record layout."""
        if self._so is None:
            self._check_record_layout()
            try:
                so = ctypes.CDLL(str(self.path))
            except OSError as exc:
                raise MemtapError(f"{self.what} is not built ({exc}); reinstall memtap") from None
            for name, (result, args) in self.signatures.items():
                fn = getattr(so, name)
                fn.restype, fn.argtypes = result, list(args)
            self._so = so
        return self._so

    def _check_record_layout(self) -> None:
        if any(layout.RECORD.fields[k][1] != off for k, off in self.record_offsets.items()):
            raise MemtapError(f"{self.what} does not match memtap.layout.RECORD; rebuild memtap")


def ptr(a: np.ndarray | None) -> int | None:
    """The address of an array's data for a ctypes call (None for a NULL pointer)."""
    return None if a is None else a.ctypes.data
