"""memtap: record every memory access a QEMU guest makes, and read the traces from Python.

    >>> import memtap
    >>> trace = memtap.open("run.trace")
    >>> for batch in trace.batches(kinds=["store"]):
    ...     ...
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "open"]


def open(path):  # noqa: A001 - memtap.open mirrors the builtin on purpose
    """Opens a trace file; see memtap.trace.reader.Trace."""
    from memtap.trace.reader import open_trace

    return open_trace(path)
