"""Builds the memtap QEMU plugin as part of `pip install .`.

The plugin is a plain shared library that QEMU loads with -plugin; setuptools' extension machinery is used only
because it compiles C with the package's own build, so no separate make step exists. It is never imported.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

PLUGIN_SOURCES = [
    "plugin/hooks.c",
    "plugin/control.c",
    "plugin/buffer.c",
    "plugin/insns.c",
    "plugin/sink.c",
    "plugin/arch.c",
    "plugin/ring.c",
    "plugin/counts.c",
    "plugin/decode.c",
    "plugin/mmu.c",
    "plugin/regs.c",
    "plugin/exceptions.c",
]


class BuildPlugin(build_ext):
    """Names the library plainly (no Python ABI tag) since QEMU, not Python, loads it."""

    def get_ext_filename(self, fullname: str) -> str:
        return fullname.replace(".", "/") + ".so"


plugin = Extension(
    "memtap._plugin.libmemtap",
    sources=PLUGIN_SOURCES,
    include_dirs=["include", "plugin"],
    libraries=["zstd", "z", "pthread"],
    # -flto lets the per-access paths in hooks.c inline control.c's accounting.
    extra_compile_args=["-std=gnu11", "-O2", "-flto", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"],
    extra_link_args=["-flto", "-O2"],
)

# The cache simulator's core: a plain shared library that memtap.analysis.cachesim loads with ctypes.
cachesim = Extension(
    "memtap.analysis.cachesim.libcachesim",
    sources=["src/memtap/analysis/cachesim/core.c", "src/memtap/analysis/cachesim/tables.c"],
    depends=["src/memtap/analysis/cachesim/core.h", "src/memtap/analysis/cachesim/tables.h"],
    extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"],
)

# The sharing analysis's core, loaded the same way by memtap.analysis.sharing.
sharing = Extension(
    "memtap.analysis.sharing.libsharing",
    sources=["src/memtap/analysis/sharing/core.c"],
    depends=["src/memtap/analysis/sharing/core.h"],
    extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"],
)

# The exporters' core: the per-record formatting of the simulator and timeline formats (memtap.export.native).
exporters = Extension(
    "memtap.export.libexport",
    sources=["src/memtap/export/core.c"],
    depends=["src/memtap/export/core.h"],
    extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"],
)

setup(ext_modules=[plugin, cachesim, sharing, exporters], cmdclass={"build_ext": BuildPlugin})
