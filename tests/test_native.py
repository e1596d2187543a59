"""memtap._native.Library, through which every native core of the package is loaded: once, with the signatures
of its table, and with a one-line error naming the core when it was not built or does not match the record
layout."""

from __future__ import annotations

import ctypes
import ctypes.util
from pathlib import Path

import pytest

from memtap._native import Library
from memtap.analysis.cachesim import native as cachesim_native
from memtap.analysis.sharing import native as sharing_native
from memtap.errors import MemtapError
from memtap.export import native as export_native
from memtap.report import native as report_native

BINDINGS = [cachesim_native, sharing_native, report_native, export_native]


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda m: m.__name__)
def test_every_core_loads_once_with_its_signatures(binding) -> None:
    so = binding.lib()
    assert binding.lib() is so
    for name, (result, args) in binding.SIGNATURES.items():
        fn = getattr(so, name)
        assert (fn.restype, fn.argtypes) == (result, list(args))


def test_a_core_not_built_is_one_line_naming_it(tmp_path) -> None:
    path = tmp_path / "libnothing.so"
    lib = Library(path, "the nothing core", {"f": (None, [])})
    with pytest.raises(MemtapError) as err:
        lib()
    message = str(err.value)
    assert message.startswith("the nothing core is not built (") and message.endswith("); reinstall memtap")
    assert str(path) in message and "\n" not in message


def test_a_moved_record_field_is_refused_before_loading(tmp_path) -> None:
    lib = Library(tmp_path / "libnothing.so", "the nothing core", {}, record_offsets={"vaddr": 17})
    with pytest.raises(MemtapError, match=r"^the nothing core does not match memtap.layout.RECORD; rebuild memtap$"):
        lib()


def test_declared_types_are_used() -> None:
    """A signature from the table is what ctypes applies: libc's strchr declared to return a C string."""
    lib = Library(Path(ctypes.util.find_library("c")), "libc",
                  {"strchr": (ctypes.c_char_p, [ctypes.c_char_p, ctypes.c_int])})
    assert lib().strchr(b"memtap", ord("t")) == b"tap"
