"""ctypes binding of the export core (csv.c, parquet.c; built by setup.py into libexport.so)."""

from __future__ import annotations

import ctypes
from functools import cache
from pathlib import Path

from memtap.errors import MemtapError

LIBRARY = Path(__file__).with_name("libexport.so")


@cache
def lib() -> ctypes.CDLL:
    """The loaded core; a MemtapError when it was not built."""
    try:
        so = ctypes.CDLL(str(LIBRARY))
    except OSError as exc:
        raise MemtapError(f"the export core is not built ({exc}); reinstall memtap") from None
    p, size = ctypes.c_void_p, ctypes.c_size_t
    sigs = {
        "mx_csv": (size, [p, ctypes.c_int, size, size, p, size, ctypes.POINTER(size)]),
        "mx_pq_bound": (size, [p, size]),
        "mx_pq_encode": (size, [p, size, p, size, p, size, p]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(so, name)
        fn.restype, fn.argtypes = res, args
    return so
