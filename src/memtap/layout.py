"""Compatibility name: the format's Python mirror lives in memtap.trace.layout (this is the same module)."""

import sys

from memtap.trace import layout as _layout

sys.modules[__name__] = _layout
