"""Plain-text rendering of a cache simulation Result (the JSON form is Result.to_dict())."""

from __future__ import annotations

from memtap.analysis.cachesim.engine import Result


def human_size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return f"{n}B"


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """Aligned columns: the first `left` ones flush left, numbers flush right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) if i < left else c.rjust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
    return [fmt(header), *(fmt(r) for r in rows)]


def format_result(res: Result, title: str, top: int = 10) -> str:
    """The levels table (per vCPU too when there are several), memory traffic, and the top-N miss tables."""
    ops = res.ops()
    kinds = ", ".join(f"{k} {ops[k]}" for k in ("fetch", "load", "store", "uncached", "marker"))
    lines = [f"{title}: {res.vcpus} vCPU{'s' if res.vcpus != 1 else ''}, {res.records} records ({kinds})"]
    classes = ["compulsory", "capacity", "conflict", "coherence"] if res.config.classify else []
    header = ["level", "geometry", "accesses", "misses", "miss rate", *classes, "writebacks", "evictions",
              "invalidations"]
    rows = []
    for lv in res.config.levels:
        geometry = (f"{human_size(lv.size)} {lv.assoc}-way {lv.line}B {lv.replacement} "
                    f"{'shared' if lv.shared else 'private'}")
        for vcpu in [None, *(range(res.vcpus) if res.vcpus > 1 else [])]:
            s = res.level(lv.name, vcpu)
            name = lv.name if vcpu is None else f"  vcpu {vcpu}"
            rows.append([name, geometry if vcpu is None else "", str(s["accesses"]), str(s["misses"]),
                         f"{100 * s['miss_rate']:.2f}%", *(str(s[c]) for c in classes), str(s["writebacks"]),
                         str(s["evictions"]), str(s["invalidations"] + s["back_invalidations"])])
    lines += _table(header, rows, left=2)
    mem = res.memory()
    lines.append(f"memory: {mem['reads']} line reads, {mem['writes']} writes")
    if top > 0:
        range_name = human_size(1 << res.config.range_bits)
        for lv in res.config.levels:
            for by, key, label in (("pc", "pc", "PC"), ("range", "start", f"{range_name} range")):
                best = res.top(lv.name, top, by)
                if not len(best):
                    continue
                lines.append("")
                lines.append(f"{lv.name}: top {len(best)} misses by {label}")
                rows = [[f"0x{int(r[key]):x}", str(r["fetch"]), str(r["load"]), str(r["store"]),
                         str(int(r["fetch"]) + int(r["load"]) + int(r["store"]))] for r in best]
                lines += ["  " + x for x in _table([key, "fetch", "load", "store", "total"], rows)]
    return "\n".join(lines)
