"""Compatibility name: the trace reader lives in memtap.trace.reader (this is the same module)."""

import sys

from memtap.trace import reader as _reader

sys.modules[__name__] = _reader
