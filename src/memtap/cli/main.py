"""`memtap`: dispatches to one module per subcommand and turns every memtap error into one line and exit 1."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from memtap import __version__
from memtap.errors import MemtapError


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


COMMANDS = ("record", "view", "stats", "export", "cachesim", "coverage", "profile", "sharing", "report", "ctl",
            "top", "doctor")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every subcommand, or only the one named: each module imports what it needs (pyarrow, pyelftools, ...),
    and `memtap record` should not wait a second for analysis libraries before QEMU starts."""
    parser = Parser(
        prog="memtap",
        description="Record every memory access a QEMU guest makes, and inspect the traces.",
    )
    parser.add_argument("--version", action="version", version=f"memtap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name in [only] if only in COMMANDS else COMMANDS:
        importlib.import_module(f"memtap.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MemtapError as exc:
        print(f"memtap: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `memtap view T | head`: the reader went away; that is not an error.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("memtap: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
