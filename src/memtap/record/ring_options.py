"""`memtap record --ring*`: the live ring's name, geometry, loss policy and consumer handling (docs/ring.md)."""

from __future__ import annotations

import argparse
import os
import secrets
from dataclasses import dataclass

from memtap.errors import UserError
from memtap.live.ring import shm_path
from memtap.trace.layout import RING_MAX_CONSUMERS

DEATH_POLICIES = ("continue", "stop")
FETCH_FORMS = ("runs", "records")


def default_name() -> str:
    """Unpredictable, so another local user cannot guess and pre-create it."""
    return f"memtap-{secrets.token_hex(8)}"


@dataclass
class RingOptions:
    """Mirrors the plugin's ring_* arguments."""

    name: str
    buffers: int = 8
    records: int = 1 << 16
    lossy: bool = False
    wait: int = 0
    on_death: str = "continue"
    heartbeat_ms: int = 600
    fetches: str = "runs"  # runs: MEMTAP_KIND_FETCH_RUN records that clients expand; records: one per fetch

    def check(self) -> None:
        if os.path.exists(shm_path(self.name)):  # shm_path raises on a bad name
            raise UserError(f"ring {self.name.lstrip('/')}: a shared-memory object of that name exists "
                            "(another recording?); choose another name")
        if not 2 <= self.buffers <= 1 << 16:
            raise UserError(f"--ring-buffers {self.buffers}: use 2..65536 buffers")
        if not 1 <= self.records <= 1 << 24:
            raise UserError(f"--ring-buffer-size {self.records}: use 1..16777216 records")
        if not 0 <= self.wait <= RING_MAX_CONSUMERS:
            raise UserError(f"--ring-wait {self.wait}: at most {RING_MAX_CONSUMERS} consumers")
        if not 10 <= self.heartbeat_ms <= 3_600_000:
            raise UserError(f"--ring-heartbeat-ms {self.heartbeat_ms}: use 10..3600000")

    def plugin_args(self) -> dict[str, str]:
        return {
            "ring": self.name.lstrip("/"), "ring_buffers": str(self.buffers), "ring_records": str(self.records),
            "ring_lossy": "on" if self.lossy else "off", "ring_wait": str(self.wait),
            "ring_on_death": self.on_death, "ring_heartbeat_ms": str(self.heartbeat_ms),
            "ring_fetches": self.fetches,
        }

    def banner(self) -> str:
        name = self.name.lstrip("/")
        mode = "lossy" if self.lossy else "lossless"
        return (f"memtap: ring {name}: {self.buffers} buffers of {self.records} records, {mode}; read it with "
                f"memtap.ring.connect({name!r}) or `memtap top {name}`, control it with `memtap ctl {name} ...`")


def _count(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("live ring (docs/ring.md)")
    g.add_argument("--ring", nargs="?", const="", default=None, metavar="NAME",
                   help="also publish every record into shared-memory ring NAME (a random name if omitted) "
                        "for live clients, and accept `memtap ctl` commands; without -o no file is written")
    g.add_argument("--ring-buffers", type=_count, default=8, metavar="N", help="buffers in the ring (default: 8)")
    g.add_argument("--ring-buffer-size", type=_count, default=1 << 16, metavar="S",
                   help="records per ring buffer (default: 65536; 64 bytes each)")
    g.add_argument("--ring-lossy", action="store_true",
                   help="when every buffer is still held by a consumer, drop whole buffers (and count them) "
                        "instead of holding the guest back")
    g.add_argument("--ring-wait", type=_count, default=0, metavar="N",
                   help="hold the guest until N consumers have attached (at most 60 s)")
    g.add_argument("--ring-fetches", choices=FETCH_FORMS, default="runs",
                   help="fetches in the ring as runs (default: one record per run of up to 32 consecutive "
                        "instructions of a block, or carried by the load or store that ends them; memtap.ring and "
                        "ring_client.h expand them) or as one record per instruction")
    g.add_argument("--ring-on-death", choices=DEATH_POLICIES, default="continue",
                   help="when a consumer dies: detach it and go on (default), or also stop tracing")
    g.add_argument("--ring-heartbeat-ms", type=_count, default=600, metavar="MS",
                   help="a consumer whose heartbeat stops this long is detached (default: 600)")


def from_args(args: argparse.Namespace) -> RingOptions | None:
    if args.ring is None:
        return None
    opts = RingOptions(args.ring or default_name(), args.ring_buffers, args.ring_buffer_size, args.ring_lossy,
                       args.ring_wait, args.ring_on_death, args.ring_heartbeat_ms, args.ring_fetches)
    opts.check()
    return opts
