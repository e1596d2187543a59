"""Cache hierarchy configuration: dataclasses, TOML loading, presets and validation.

A configuration is a list of levels from the core outwards plus a few options; docs/cachesim.md describes the
TOML format. Every geometry error is a UserError that names the field, e.g. ``L1D.size``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from memtap.errors import UserError

REPLACEMENTS = ("lru", "fifo", "random", "plru")
SIDES = ("unified", "instruction", "data")
SEMANTICS = ("memtap", "pycachesim")
ADDRESSES = ("virtual", "physical")
MAX_LEVELS = 16

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
          "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}


@dataclass(frozen=True)
class Level:
    """One cache level. ``ways=0`` means fully associative; ``shared`` levels serve every vCPU."""

    name: str
    size: int
    line: int = 64
    ways: int = 8
    replacement: str = "lru"
    write_back: bool = True
    write_allocate: bool = True
    inclusive: bool = False
    shared: bool = False
    side: str = "unified"

    @property
    def assoc(self) -> int:
        """The number of ways, with fully associative resolved."""
        return self.ways or self.size // self.line

    @property
    def sets(self) -> int:
        return self.size // (self.line * self.assoc)


@dataclass(frozen=True)
class Config:
    """A hierarchy and the options of one simulation."""

    levels: tuple[Level, ...]
    name: str = ""
    split_lines: bool = True          # a line-crossing access counts once per line (False: once)
    semantics: str = "memtap"         # or "pycachesim" (see docs/cachesim.md)
    classify: bool = False            # compulsory / capacity / conflict miss classes
    seed: int = 1                     # random replacement
    address: str = "virtual"          # which record address indexes the caches
    range_bits: int = 12              # per-range misses: ranges of 2**range_bits bytes
    reset_marker: int | None = None   # a MEMTAP_MARK(n) with this n zeroes the statistics
    track: bool = True                # per-PC and per-range miss maps
    sources: tuple[str, ...] = field(default=(), compare=False)

    def level(self, name: str) -> Level:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise UserError(f"no cache level named {name!r} (levels: {', '.join(lv.name for lv in self.levels)})")


def parse_size(value: Any, what: str) -> int:
    """Bytes from an int or a string such as '32KiB', '1 MB', '64'. Units are binary (1 KB = 1024 bytes)."""
    if isinstance(value, bool):
        raise UserError(f"{what}: expected a size, got {value!r}")
    if isinstance(value, int):
        return value
    m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", str(value))
    if not m or m.group(2).lower() not in _UNITS:
        raise UserError(f"{what}: cannot read {value!r} as a size (examples: 64, 32KiB, 1MiB)")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def _pow2(x: int) -> bool:
    return x > 0 and x & (x - 1) == 0


def _check_level(lv: Level) -> None:
    n = lv.name
    if lv.line <= 0 or not _pow2(lv.line):
        raise UserError(f"{n}.line: {lv.line} is not a power of two")
    if lv.ways < 0:
        raise UserError(f"{n}.ways: {lv.ways} is negative (0 means fully associative)")
    if lv.size <= 0:
        raise UserError(f"{n}.size: {lv.size} must be positive")
    if lv.size % (lv.line * lv.assoc):
        raise UserError(f"{n}.size: {lv.size} is not a multiple of line * ways = {lv.line} * {lv.assoc}")
    if not _pow2(lv.sets):
        raise UserError(f"{n}.size: gives {lv.sets} sets ({lv.size} / ({lv.line} * {lv.assoc})), "
                        "not a power of two")
    if lv.replacement not in REPLACEMENTS:
        raise UserError(f"{n}.replacement: {lv.replacement!r} is not one of {', '.join(REPLACEMENTS)}")
    if lv.replacement == "plru" and (not _pow2(lv.assoc) or lv.assoc > 64):
        raise UserError(f"{n}.ways: tree-PLRU needs a power-of-two number of ways up to 64, not {lv.assoc}")
    if lv.side not in SIDES:
        raise UserError(f"{n}.side: {lv.side!r} is not one of {', '.join(SIDES)}")


def _path(levels: tuple[Level, ...], side: str) -> list[Level]:
    return [lv for lv in levels if lv.side in ("unified", side)]


def validate(cfg: Config) -> Config:
    """Checks every level and how they stack; returns cfg unchanged or raises a UserError naming the field."""
    if not cfg.levels:
        raise UserError("cache config: no levels")
    if len(cfg.levels) > MAX_LEVELS:
        raise UserError(f"cache config: {len(cfg.levels)} levels, at most {MAX_LEVELS}")
    names = [lv.name for lv in cfg.levels]
    for n in names:
        if not n or not re.fullmatch(r"[A-Za-z0-9_.-]+", n):
            raise UserError(f"level name {n!r}: use letters, digits, '_', '-' or '.'")
        if names.count(n) > 1:
            raise UserError(f"{n}.name: two levels have this name")
    for lv in cfg.levels:
        _check_level(lv)
    seen_unified = None
    for lv in cfg.levels:
        if lv.side == "unified":
            seen_unified = lv
        elif seen_unified is not None:
            raise UserError(f"{lv.name}.side: a split ({lv.side}) level cannot be below the unified level "
                            f"{seen_unified.name}")
    for side in ("instruction", "data"):
        path = _path(cfg.levels, side)
        for upper, lower in zip(path, path[1:], strict=False):
            if upper.shared and not lower.shared:
                raise UserError(f"{lower.name}.shared: a private level cannot be below the shared level "
                                f"{upper.name}")
            if lower.line < upper.line:
                raise UserError(f"{lower.name}.line: {lower.line} is smaller than {upper.name}.line "
                                f"{upper.line} above it")
        for i, lv in enumerate(path):
            for upper in path[:i]:
                if lv.inclusive and lv.size < upper.size:
                    raise UserError(f"{lv.name}.size: an inclusive level of {lv.size} bytes cannot hold "
                                    f"{upper.name} ({upper.size} bytes) above it")
    if cfg.semantics not in SEMANTICS:
        raise UserError(f"semantics: {cfg.semantics!r} is not one of {', '.join(SEMANTICS)}")
    if cfg.address not in ADDRESSES:
        raise UserError(f"address: {cfg.address!r} is not one of {', '.join(ADDRESSES)}")
    if not 0 <= cfg.range_bits <= 63:
        raise UserError(f"range_bits: {cfg.range_bits} is not within 0..63")
    if cfg.reset_marker is not None and not 0 <= cfg.reset_marker < 1 << 63:
        raise UserError(f"reset_marker: {cfg.reset_marker} is not a marker value")
    if not 0 <= cfg.seed < 1 << 64:
        raise UserError(f"seed: {cfg.seed} is not within 0..2**64-1")
    return cfg


# --- TOML ------------------------------------------------------------------------------------------------

_LEVEL_FIELDS = {f.name: f for f in fields(Level)}
_CONFIG_KEYS = {f.name for f in fields(Config)} - {"levels", "sources"}
_BOOL_LEVEL = {"write_back", "write_allocate", "inclusive", "shared"}


def _typed(value: Any, kind: type, what: str) -> Any:
    if kind is bool and not isinstance(value, bool):
        raise UserError(f"{what}: expected true or false, got {value!r}")
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise UserError(f"{what}: expected an integer, got {value!r}")
    if kind is str and not isinstance(value, str):
        raise UserError(f"{what}: expected a string, got {value!r}")
    return value


def level_from_dict(d: dict[str, Any], index: int) -> Level:
    """A Level from one ``[[level]]`` table."""
    name = d.get("name")
    if not isinstance(name, str):
        raise UserError(f"level {index + 1}: needs a name (a string)")
    kw: dict[str, Any] = {"name": name}
    for key, value in d.items():
        what = f"{name}.{key}"
        if key == "name":
            continue
        if key not in _LEVEL_FIELDS:
            raise UserError(f"{what}: unknown key (known: {', '.join(_LEVEL_FIELDS)})")
        if key in ("size", "line"):
            kw[key] = parse_size(value, what)
        elif key == "ways":
            kw[key] = 0 if value in ("full", "fully") else _typed(value, int, what)
        else:
            kw[key] = _typed(value, bool if key in _BOOL_LEVEL else str, what)
    if "size" not in kw:
        raise UserError(f"{name}.size: missing")
    if "replacement" in kw:
        kw["replacement"] = kw["replacement"].lower()
    return Level(**kw)


def config_from_dict(d: dict[str, Any], origin: str = "cache config") -> Config:
    """A validated Config from a parsed TOML document."""
    raw_levels = d.get("level")
    if not isinstance(raw_levels, list) or not raw_levels:
        raise UserError(f"{origin}: needs at least one [[level]] table")
    kw: dict[str, Any] = {}
    for key, value in d.items():
        if key == "level":
            continue
        if key not in _CONFIG_KEYS:
            raise UserError(f"{key}: unknown key in {origin} (known: level, {', '.join(sorted(_CONFIG_KEYS))})")
        kinds = {"split_lines": bool, "classify": bool, "track": bool, "seed": int, "range_bits": int,
                 "reset_marker": int}
        kw[key] = _typed(value, kinds.get(key, str), key)
    levels = tuple(level_from_dict(lv, i) for i, lv in enumerate(raw_levels))
    return validate(Config(levels=levels, **kw))


def load_config(path: str | Path) -> Config:
    """Reads and validates a TOML cache configuration file."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise UserError(f"cannot read cache config {path}: {exc.strerror}") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    return config_from_dict(doc, str(path))


def preset_names() -> list[str]:
    """Names of the presets shipped in memtap/cachesim/presets."""
    return sorted(p.name[:-5] for p in resources.files(__package__).joinpath("presets").iterdir()
                  if p.name.endswith(".toml"))


def preset(name: str) -> Config:
    """A shipped preset by name (see preset_names())."""
    if name not in preset_names():
        raise UserError(f"no cache preset {name!r} (presets: {', '.join(preset_names())})")
    text = resources.files(__package__).joinpath("presets", f"{name}.toml").read_text()
    return config_from_dict(tomllib.loads(text), f"preset {name}")


def with_options(cfg: Config, **options: Any) -> Config:
    """cfg with the given options replaced (None leaves an option as it is), validated again."""
    return validate(replace(cfg, **{k: v for k, v in options.items() if v is not None}))
