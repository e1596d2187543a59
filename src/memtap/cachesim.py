"""Compatibility name: the cache simulator lives in memtap.analysis.cachesim (this is the same package)."""

import sys

from memtap.analysis import cachesim as _cachesim

sys.modules[__name__] = _cachesim
