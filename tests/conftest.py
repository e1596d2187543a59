"""The tests run the source tree, not an installed memtap: src/ comes first on sys.path (and in PYTHONPATH, for
the CLI processes the tests start), and the C libraries are built in place when a source is newer than them, so a
`pytest` right after an edit tests the edit."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
sys.path[:0] = [str(SRC), str(ROOT / "tests")]
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)

# What setup.py builds, and the sources each depends on.
_LIBRARIES = {
    SRC / "memtap" / "_plugin" / "libmemtap.so": [ROOT / "plugin", ROOT / "include" / "memtap"],
    SRC / "memtap" / "analysis" / "cachesim" / "libcachesim.so": [SRC / "memtap" / "analysis" / "cachesim",
                                                                  ROOT / "include" / "memtap"],
    SRC / "memtap" / "analysis" / "sharing" / "libsharing.so": [SRC / "memtap" / "analysis" / "sharing"],
    SRC / "memtap" / "export" / "libexport.so": [SRC / "memtap" / "export"],
}


def _newest_source(folders: list[Path]) -> float:
    return max(p.stat().st_mtime for folder in folders for p in folder.iterdir() if p.suffix in (".c", ".h"))


def _stale() -> bool:
    setup = (ROOT / "setup.py").stat().st_mtime
    return any(not lib.exists() or lib.stat().st_mtime < max(setup, _newest_source(deps))
               for lib, deps in _LIBRARIES.items())


if _stale():
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=ROOT, check=True)
