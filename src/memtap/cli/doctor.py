"""`memtap doctor`: which QEMU system emulators are here, whether memtap can use them, what fixes the rest, and
what each gives (how exceptions are found, whether fetches get translated physical addresses), also for the QEMU
that scripts/build-newer-qemu.sh built."""

from __future__ import annotations

import argparse
import json

from memtap.errors import UserError
from memtap.record import qemu


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check the QEMU emulators and the plugin", description=__doc__)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    emulators = qemu.find_all()
    newer = qemu.find_newer_builds()
    try:
        plugin = str(qemu.plugin_path())
        plugin_problem = None
    except UserError as exc:
        plugin, plugin_problem = None, str(exc)
    if args.json:
        def row(e: qemu.Emulator) -> dict:
            return {"name": e.name, "path": e.path, "version": e.version_text, "plugins": e.plugins,
                    "usable": e.usable, "problem": e.problem(), "features": qemu.features(e) if e.usable else None,
                    "fix": None if e.usable else qemu.fix_command([qemu.package_of(e.name)])}

        print(json.dumps({"plugin": plugin, "plugin_problem": plugin_problem,
                          "emulators": [row(e) for e in emulators],
                          "newer_builds": [row(e) for e in newer]}, indent=2))
    else:
        print(f"plugin: {plugin or plugin_problem}")
        for e in emulators:
            print(_line(e.name, e))
        missing = [qemu.package_of(e.name) for e in emulators if not e.usable]
        if missing:
            print(f"to fix: {qemu.fix_command(missing)}")
        if newer:
            print(f"built by scripts/build-newer-qemu.sh, in {qemu.newer_build_dir()} (name it on the command line):")
            for e in newer:
                print(_line(e.name, e))
    usable = any(e.usable for e in emulators)
    return 0 if usable and plugin else 1


def _line(name: str, e: qemu.Emulator) -> str:
    version = ".".join(map(str, e.version)) if e.version else "-"
    state = f"ok  {qemu.features(e)}" if e.usable else e.problem()
    return f"{name:22} {version:9} plugins={'yes' if e.plugins else 'no':3}  {state}"
