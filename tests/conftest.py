"""The tests run the source tree, not an installed memtap: src/ comes first on sys.path (and in PYTHONPATH, for
the CLI processes the tests start), and the C libraries setup.py lists are built in place when one of their
sources is newer than they are, so a `pytest` right after an edit tests the edit."""

import os
import runpy
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
sys.path[:0] = [str(SRC), str(ROOT / "tests")]
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)


def _stale() -> bool:
    setup = ROOT / "setup.py"
    for ext in runpy.run_path(str(setup), run_name="memtap_setup")["NATIVE"]:
        lib = SRC / (ext.name.replace(".", "/") + ".so")
        sources = [setup, *(ROOT / p for p in (*ext.sources, *ext.depends))]
        if not lib.exists() or lib.stat().st_mtime < max(p.stat().st_mtime for p in sources):
            return True
    return False


if _stale():
    subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=ROOT, check=True)
