"""The trace file: its layout (the mirror of include/memtap/trace.h) and the reader that decodes it."""

from memtap.trace.reader import Trace, open_trace

__all__ = ["Trace", "open_trace"]
