"""Builds memtap's C parts as part of `pip install .`: the QEMU plugin and the native cores of the package.

Each is a plain shared library, never imported as a Python extension: QEMU loads the plugin with -plugin, and the
package loads its cores with ctypes (whose calls release the GIL). setuptools' extension machinery is used only
because it compiles C with the package's own build, so no separate make step exists. NATIVE lists them all;
tests/conftest.py reads it to rebuild them in place when a source changes.
"""

from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
CFLAGS = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"]


class PlainLibraryNames(build_ext):
    """Names each library plainly (no Python ABI tag): QEMU and ctypes, not Python's importer, load them."""

    def get_ext_filename(self, fullname: str) -> str:
        return fullname.replace(".", "/") + ".so"


def files(folder: str, suffix: str) -> list[str]:
    return sorted(str(p.relative_to(HERE)) for p in (HERE / folder).glob(f"*{suffix}"))


def native_core(module: str, folder: str, libraries: tuple[str, ...] = ()) -> Extension:
    """A core of the Python package: every .c file of its folder, built against the public headers."""
    return Extension(module, sources=files(folder, ".c"), depends=files(folder, ".h") + files("include/memtap", ".h"),
                     include_dirs=["include"], libraries=list(libraries), extra_compile_args=CFLAGS)


NATIVE = [
    Extension(
        "memtap._plugin.libmemtap",
        sources=files("plugin", ".c"),
        depends=files("plugin", ".h") + files("include/memtap", ".h"),
        include_dirs=["include", "plugin"],
        libraries=["zstd", "z", "pthread"],
        # -flto lets the per-access paths in hooks.c inline control.c's accounting.
        extra_compile_args=[*CFLAGS, "-flto"],
        extra_link_args=["-flto", "-O2"],
    ),
    native_core("memtap.analysis.cachesim.libcachesim", "src/memtap/analysis/cachesim"),
    native_core("memtap.analysis.sharing.libsharing", "src/memtap/analysis/sharing"),
    native_core("memtap.report.libreport", "src/memtap/report"),
    native_core("memtap.export.libexport", "src/memtap/export", ("zstd", "pthread")),   # parquet.c: zstd
]

if __name__ == "__main__":
    setup(ext_modules=NATIVE, cmdclass={"build_ext": PlainLibraryNames})
