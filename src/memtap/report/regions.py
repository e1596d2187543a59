"""Address regions of the heatmap: code, data, stack, MMIO and other, from the ELF files or from the addresses.

With ELF files, each allocated section gives an address range: executable sections are code, sections whose name
says stack are the stack, the other allocated sections data; neighbouring sections of one class (less than a page
apart) form one region. Accessed addresses outside every section, and all of them without an ELF, are clustered:
touched heat cells less than CLUSTER_GAP apart and of one class form a region, whose class comes from its
accesses (MMIO if any access to its pages was MMIO, else code if instructions were fetched there, else data; the
stack is then not told apart from data). A cell belongs to the region that holds its first address.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from memtap.analysis.symbols import ElfSpec
from memtap.errors import UserError

CLUSTER_GAP = 1 << 20   # touched addresses closer than this (and of one class) are one region
MAX_REGIONS = 8         # more clusters than this are merged with their nearest neighbour
MERGE_GAP = 4096        # ELF sections of one class closer than this are one region

HOW_ELF = ("from the ELF files' allocated sections: executable ones are code, those named *stack* the stack, "
           "the others data; accessed addresses outside them are clustered (gaps of 1 MiB or more split "
           "clusters) and called MMIO if an access there was MMIO, else code if instructions were fetched "
           "there, else other")
HOW_CLUSTERS = ("by clustering the accessed addresses (gaps of 1 MiB or more split clusters): a cluster is MMIO "
                "if an access to it was MMIO, else code if instructions were fetched from it, else data; "
                "without --elf the stack is not told apart from data")


@dataclass(frozen=True)
class Section:
    """An address range of one class from an ELF file (run-time addresses)."""

    lo: int
    hi: int
    cls: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Region:
    """Heat cells lo_bin..hi_bin (inclusive; a cell is 2**addr_shift bytes) of one class."""

    cls: str
    lo_bin: int
    hi_bin: int
    label: str


def elf_sections(specs: list[ElfSpec]) -> list[Section]:
    """The allocated sections of the ELF files, classified, with neighbours of one class merged."""
    found = []
    for spec in specs:
        try:
            with open(spec.path, "rb") as f:
                for sec in ELFFile(f).iter_sections():
                    flags = sec["sh_flags"]
                    if not flags & SH_FLAGS.SHF_ALLOC or not sec["sh_size"]:
                        continue
                    cls = "code" if flags & SH_FLAGS.SHF_EXECINSTR else (
                        "stack" if "stack" in sec.name.lower() else "data")
                    lo = sec["sh_addr"] + spec.offset
                    found.append(Section(lo, lo + sec["sh_size"], cls, (sec.name,)))
        except OSError as e:
            raise UserError(f"{spec.path}: cannot open: {e.strerror}") from None
        except ELFError as e:
            raise UserError(f"{spec.path}: not a readable ELF file ({e})") from None
    merged: list[Section] = []
    for s in sorted(found, key=lambda s: (s.lo, s.hi)):
        if merged and merged[-1].cls == s.cls and s.lo - merged[-1].hi < MERGE_GAP:
            m = merged[-1]
            merged[-1] = Section(m.lo, max(m.hi, s.hi), m.cls, m.names + s.names)
        elif not merged or s.lo >= merged[-1].hi:   # an overlapping section keeps the first one's class
            merged.append(s)
    return merged


def _bin_classes(bins: np.ndarray, addr_shift: int, pages: np.ndarray) -> np.ndarray:
    """The class of each touched heat cell from the page table (rows of page, fetch, load, store, io): MMIO,
    code, or '' (the caller's default)."""
    out = np.full(len(bins), "", object)
    if not len(bins) or not len(pages):
        return out
    if addr_shift >= 12:
        page_bin, key = pages[:, 0] >> np.uint64(addr_shift - 12), bins
    else:
        page_bin, key = pages[:, 0], bins >> np.uint64(12 - addr_shift)
    uniq, inv = np.unique(page_bin, return_inverse=True)
    io = np.zeros(len(uniq), np.uint64)
    fetch = np.zeros(len(uniq), np.uint64)
    np.add.at(io, inv, pages[:, 4])
    np.add.at(fetch, inv, pages[:, 1])
    at = np.minimum(np.searchsorted(uniq, key), len(uniq) - 1)
    found = uniq[at] == key
    out[found & (fetch[at] > 0)] = "code"
    out[found & (io[at] > 0)] = "MMIO"
    return out


def _clusters(bins: np.ndarray, classes: np.ndarray, slots: np.ndarray, addr_shift: int,
              rest: str) -> list[tuple[Region, int]]:
    """Runs of touched cells closer than CLUSTER_GAP, of one class and between the same two ELF regions
    (``slots``), each with its slot."""
    out: list[tuple[Region, int]] = []
    gap = max(CLUSTER_GAP >> addr_shift, 1)
    for b, c, slot in zip(bins.tolist(), classes.tolist(), slots.tolist(), strict=True):
        c = c or rest
        if out and out[-1][0].cls == c and out[-1][1] == slot and b - out[-1][0].hi_bin < gap:
            out[-1] = (Region(c, out[-1][0].lo_bin, b, ""), slot)
        else:
            out.append((Region(c, b, b, ""), slot))
    return out


def _merge_nearest(clusters: list[tuple[Region, int]], weight: dict[int, int]) -> list[Region]:
    """Merge the two neighbours (between the same ELF regions) with the smallest gap while more than MAX_REGIONS
    remain; the one with more accesses names the class."""
    while len(clusters) > MAX_REGIONS:
        pairs = [(b.lo_bin - a.hi_bin, i) for i, ((a, sa), (b, sb)) in enumerate(zip(clusters, clusters[1:],
                                                                                      strict=False)) if sa == sb]
        if not pairs:
            break
        i = min(pairs)[1]
        (a, slot), (b, _) = clusters[i], clusters[i + 1]
        cls = a.cls if weight.get(a.lo_bin, 0) >= weight.get(b.lo_bin, 0) else b.cls
        weight[a.lo_bin] = weight.get(a.lo_bin, 0) + weight.get(b.lo_bin, 0)
        clusters[i: i + 2] = [(Region(cls, a.lo_bin, b.hi_bin, "merged"), slot)]
    return [r for r, _ in clusters]


def find_regions(heat: np.ndarray, pages: np.ndarray, addr_shift: int, sections: list[Section]) -> list[Region]:
    """Regions covering every touched heat cell (heat rows: addr_bin, time_bin, fetch, load, store)."""
    bins, first = np.unique(heat[:, 0], return_index=True)
    per_bin = np.add.reduceat(heat[:, 2:].sum(axis=1), first) if len(heat) else np.zeros(0, np.uint64)
    start = bins << np.uint64(addr_shift) if addr_shift < 64 else np.zeros_like(bins)
    regions: list[Region] = []
    outside = np.ones(len(bins), bool)
    for s in sections:
        inside = (start >= np.uint64(s.lo)) & (start < np.uint64(s.hi)) & outside
        if inside.any():
            idx = np.flatnonzero(inside)
            regions.append(Region(s.cls, int(bins[idx[0]]), int(bins[idx[-1]]), " ".join(s.names)))
            outside &= ~inside
    loose = bins[outside]
    fixed = np.array(sorted(r.lo_bin for r in regions), np.uint64)
    slots = np.searchsorted(fixed, loose)
    clusters = _clusters(loose, _bin_classes(loose, addr_shift, pages), slots, addr_shift,
                         "other" if sections else "data")
    weight = {}
    for r, _ in clusters:
        m = (bins >= r.lo_bin) & (bins <= r.hi_bin)
        weight[r.lo_bin] = int(per_bin[m].sum())
    return sorted(regions + _merge_nearest(clusters, weight), key=lambda r: r.lo_bin)
