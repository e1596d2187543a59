"""What the order of different vCPUs' records means in a trace: how QEMU ran the vCPUs (from the recorded
command line), and how finely they actually took turns (runs of one vCPU, measured from the trace).

Under multi-threaded TCG each vCPU is a host thread; on a host with fewer cores than vCPUs the host's scheduler
time-slices them, and a vCPU runs thousands of accesses before another one gets a turn. Round-robin TCG
(`-accel tcg,thread=single`, implied by `-icount`) runs all vCPUs on one thread, in turns QEMU chooses.
docs/sharing.md has the measurements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Runs this long on shared lines (accesses by one vCPU before another vCPU touches the line), holding half the
# accesses, are coarse: cores contending for a line on real hardware hand it over every few accesses.
COARSE_RUN = 100


@dataclass(frozen=True)
class Mode:
    """How QEMU scheduled the vCPUs of a recording."""

    vcpus: int | None
    tcg: str            # "multi-threaded", "round-robin", "single vCPU" or "unknown"
    option: str | None  # the command-line option that decided it (None: QEMU's default)

    def describe(self) -> str:
        if self.tcg == "single vCPU":
            return "one vCPU: pos is its program order"
        if self.tcg == "round-robin":
            return f"round-robin TCG, all vCPUs on one host thread ({self.option})"
        if self.tcg == "multi-threaded":
            how = self.option or "QEMU's default"
            return f"multi-threaded TCG, one host thread per vCPU ({how}): pos follows the host's scheduling"
        return "unknown (the trace has no QEMU command line)"


def _option_values(cmd: list[str], names: tuple[str, ...]) -> list[str]:
    """Values of options given as `-name value`, `--name value` or `-name=value`."""
    out = []
    for i, arg in enumerate(cmd):
        for name in names:
            for form in (f"-{name}", f"--{name}"):
                if arg == form and i + 1 < len(cmd):
                    out.append(cmd[i + 1])
                elif arg.startswith(form + "="):
                    out.append(arg[len(form) + 1:])
    return out


def recording_mode(meta: dict[str, Any], info: dict[str, Any]) -> Mode:
    """The TCG mode from the trace's QEMU command line (metadata) and vCPU count (INFO chunk)."""
    vcpus = info.get("smp_vcpus")
    cmd = [str(a) for a in meta.get("qemu_command") or []]
    if vcpus is not None and int(vcpus) <= 1:
        return Mode(int(vcpus), "single vCPU", None)
    if not cmd:
        return Mode(vcpus, "unknown", None)
    icount = _option_values(cmd, ("icount",))
    if icount:
        return Mode(vcpus, "round-robin", f"-icount {icount[-1]}")
    for accel in reversed(_option_values(cmd, ("accel",))):
        props = dict(p.split("=", 1) for p in accel.split(",")[1:] if "=" in p)
        if accel.split(",")[0] == "tcg" and props.get("thread") in ("single", "multi"):
            tcg = "round-robin" if props["thread"] == "single" else "multi-threaded"
            return Mode(vcpus, tcg, f"-accel {accel}")
    return Mode(vcpus, "multi-threaded", None)


@dataclass(frozen=True)
class Runs:
    """Statistics of run lengths (consecutive accesses by one vCPU)."""

    runs: int
    median: int | None     # the lower median run (an actual run length)
    weighted: int | None   # the run length that holds the median access: half the accesses were in runs at
                           # least this long (many short runs hide a few long ones that hold most accesses)
    mean: float | None
    longest: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "median": self.median, "access_weighted_median": self.weighted,
                "mean": None if self.mean is None else round(self.mean, 2), "longest": self.longest}


def _lower_median(lengths: np.ndarray, weights: np.ndarray) -> int:
    cum = np.cumsum(weights)
    return int(lengths[int(np.searchsorted(cum, (int(cum[-1]) + 1) // 2))])


def run_stats(hist: np.ndarray) -> Runs:
    """From (length, count) rows sorted by length."""
    if len(hist) == 0:
        return Runs(0, None, None, None, None)
    lengths, counts = hist[:, 0].astype(np.int64), hist[:, 1].astype(np.int64)
    total = int(counts.sum())
    return Runs(total, _lower_median(lengths, counts), _lower_median(lengths, lengths * counts),
                float((lengths * counts).sum() / total), int(lengths[-1]))


def interleaving(mode: Mode, runs_line: np.ndarray, runs_all: np.ndarray) -> dict[str, Any]:
    """The report's interleaving section, with a warning when the turns on shared lines were coarse."""
    per_line, overall = run_stats(runs_line), run_stats(runs_all)
    warning = None
    if per_line.weighted is not None and per_line.weighted >= COARSE_RUN:
        warning = (f"coarse interleaving: half the accesses to lines several vCPUs touched came in runs of "
                   f"{per_line.weighted} or more by one vCPU before another touched the line; cores contending "
                   "for a line hand it over every few accesses, so this trace shows fewer transfers than "
                   "hardware would (docs/sharing.md, Interleaving)")
    return {"mode": mode.tcg, "option": mode.option, "vcpus": mode.vcpus, "description": mode.describe(),
            "runs_per_line": per_line.to_dict(), "runs_all_data": overall.to_dict(), "warning": warning}
