"""Exceptions with one-line messages, so the CLI can print them as ``memtap: <message>``."""

from __future__ import annotations


class MemtapError(Exception):
    """Base class: every error memtap reports to a user, never a traceback."""


class UserError(MemtapError):
    """A bad command line or an unusable path: the user can fix it without touching the trace."""


class TraceError(MemtapError):
    """A trace file that is not a memtap trace, or is damaged (bad magic, crc mismatch, undecodable)."""
