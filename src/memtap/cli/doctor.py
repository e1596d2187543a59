"""`memtap doctor`: which QEMU system emulators are here, whether memtap can use them, and what fixes the rest."""

from __future__ import annotations

import argparse
import json

from memtap import qemu
from memtap.errors import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check the QEMU emulators and the plugin", description=__doc__)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    emulators = qemu.find_all()
    try:
        plugin = str(qemu.plugin_path())
        plugin_problem = None
    except UserError as exc:
        plugin, plugin_problem = None, str(exc)
    if args.json:
        rows = [
            {"name": e.name, "path": e.path, "version": e.version_text, "plugins": e.plugins, "usable": e.usable,
             "problem": e.problem(), "fix": None if e.usable else qemu.fix_command([qemu.package_of(e.name)])}
            for e in emulators
        ]
        print(json.dumps({"plugin": plugin, "plugin_problem": plugin_problem, "emulators": rows}, indent=2))
    else:
        print(f"plugin: {plugin or plugin_problem}")
        for e in emulators:
            version = ".".join(map(str, e.version)) if e.version else "-"
            state = "ok" if e.usable else e.problem()
            print(f"{e.name:22} {version:9} plugins={'yes' if e.plugins else 'no':3}  {state}")
        missing = [qemu.package_of(e.name) for e in emulators if not e.usable]
        if missing:
            print(f"to fix: {qemu.fix_command(missing)}")
    usable = any(e.usable for e in emulators)
    return 0 if usable and plugin else 1
