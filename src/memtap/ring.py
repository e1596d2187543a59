"""Compatibility name: the live ring's client lives in memtap.live.ring (this is the same module)."""

import sys

from memtap.live import ring as _ring

sys.modules[__name__] = _ring
