"""`memtap ctl NAME start|stop|status|mark N`: steer a running `memtap record --ring NAME` from another terminal.

start and stop switch tracing of the recorded events on and off while the guest runs on; mark N adds a marker
record carrying N on the next traced vCPU to enter a block; status shows records so far, rate, drops and the
attached consumers. Errors (no such ring, recording ended, tracing off for a mark) exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from memtap.errors import UserError
from memtap.live.ring import Status, open_ring

COMMANDS = ("start", "stop", "status", "mark")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("ctl", help="control a running recording through its ring: start, stop, mark, status",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ring", metavar="NAME", help="the ring name memtap record printed (or was given)")
    p.add_argument("command", choices=COMMANDS, help="what to do")
    p.add_argument("value", nargs="?", help="mark: the marker value, a 64-bit integer (decimal or 0x hex)")
    p.add_argument("--json", action="store_true", help="status: print JSON")
    p.set_defaults(func=run)


def format_status(s: Status) -> str:
    total = sum(s.records.values())
    kinds = ", ".join(f"{k} {v}" for k, v in s.records.items())
    state = "running" if s.running else "ended"
    dropped = (f"{s.dropped} records in {s.dropped_buffers} buffers" if s.lossy else "0 (lossless: the guest waits "
               "for the slowest consumer)")
    lines = [
        f"ring        {s.name} (QEMU pid {s.producer_pid}, {state})",
        f"tracing     {', '.join(s.tracing) if s.tracing else 'off'}",
        f"records     {total} ({kinds})",
        f"rate        {s.rate} records/s",
        f"dropped     {dropped}",
        f"buffers     {s.nbuffers} of {s.buffer_records} records; {s.published} records published",
        f"consumers   {len(s.consumers)}",
    ]
    lines += [f"  slot {c.slot}: pid {c.pid}, {c.behind} buffers behind, {c.lost} records lost" for c in s.consumers]
    return "\n".join(lines)


def parse_value(text: str | None) -> int:
    if text is None:
        raise UserError("mark needs a value: memtap ctl NAME mark N")
    try:
        value = int(text, 0)
    except ValueError:
        raise UserError(f"marker value {text!r} is not an integer") from None
    if not 0 <= value < 1 << 64:
        raise UserError(f"marker value {text} does not fit 64 bits")
    return value


def run(args: argparse.Namespace) -> int:
    if args.command != "mark" and args.value is not None:
        raise UserError(f"{args.command} takes no value")
    value = parse_value(args.value) if args.command == "mark" else 0
    with open_ring(args.ring) as ring:
        if args.command == "status":
            s = ring.status()
            print(json.dumps(s.to_dict(), indent=2) if args.json else format_status(s))
        elif args.command == "start":
            ring.start()
        elif args.command == "stop":
            ring.stop()
        else:
            ring.mark(value)
    if args.command != "status":
        print(f"memtap: ring {args.ring}: {args.command} done", file=sys.stderr)
    return 0
