"""The simulator and timeline formats ``memtap export --format`` writes besides CSV and Parquet: one module
each, imported only when used. Each module has NAME, SUMMARY and ``write(source, out, options, warn)``, which
reads a Source: a trace file's records or a live ring's (stream.py)."""

from __future__ import annotations

import importlib
from types import ModuleType

FORMATS = {
    "uftrace": "memtap.export.uftrace",
    "chrome": "memtap.export.chrome",
    "champsim": "memtap.export.champsim",
    "dinero": "memtap.export.dinero",
    "lackey": "memtap.export.lackey",
    "dramsim3": "memtap.export.dramsim3",
    "ramulator": "memtap.export.ramulator",
    "ramulator-o3": "memtap.export.ramulator_o3",
    "gem5": "memtap.export.gem5",
}


def module(name: str) -> ModuleType:
    return importlib.import_module(FORMATS[name])
