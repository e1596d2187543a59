"""memtap report's page in a real browser: Debian's chromium, headless, opens it from a file with the network off
(in a network namespace of its own when we are root; the page's Content-Security-Policy forbids every load
anyway, and a violation would be an error on the page), logs no JavaScript error, and draws its plots: the
screenshot's pixels inside each plot's rectangle are not blank.

The page collects window errors, unhandled rejections and policy violations into #memtap-errors, sets
body[data-state] to "drawn" once every plot is drawn, and writes each plot's rectangle into data-rect; the
tests read them from chromium's --dump-dom.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tracegen
from guestlib import guest, memtap, record

from memtap.trace import layout as L

ARCH = "riscv64"
WIDTH, HEIGHT = 1400, 7000
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (scripts/setup-system.sh installs it)")


def chromium(page: Path, *args: str) -> str:
    """Run headless chromium on the page (network off) and return its standard output."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           "--virtual-time-budget=15000", f"--window-size={WIDTH},{HEIGHT}", *args, page.resolve().as_uri()]
    if os.geteuid() == 0 and shutil.which("unshare"):
        cmd = ["unshare", "--net", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def open_page(page: Path, tmp: Path) -> tuple[str, np.ndarray]:
    """The page's DOM after it ran, and a screenshot as an RGB array."""
    from PIL import Image

    dom = chromium(page, "--dump-dom")
    png = tmp / (page.stem + ".png")
    chromium(page, f"--screenshot={png}")
    return dom, np.asarray(Image.open(png).convert("RGB"))


def plot_rects(dom: str) -> dict[str, tuple[int, int, int, int]]:
    """{plot id: (x, y, width, height)} as the page recorded them."""
    out = {}
    for tag in re.findall(r"<div[^>]*data-rect=[^>]*>", dom):
        pid = re.search(r'id="([^"]+)"', tag).group(1)
        rect = re.search(r'data-rect="([^"]+)"', tag).group(1)
        out[pid] = tuple(int(v) for v in rect.split(","))
    return out


def assert_drawn(dom: str) -> None:
    assert 'data-state="drawn"' in dom, re.search(r'<pre id="memtap-errors">[^<]*', dom)
    errors = re.search(r'<pre id="memtap-errors">([^<]*)</pre>', dom)
    assert errors is not None and errors.group(1) == ""


def assert_plot_painted(image: np.ndarray, rect: tuple[int, int, int, int], min_colours: int) -> None:
    """The plot's area holds data drawn in colour: axes, grid lines, labels and the tool bar are grey, so an empty
    plot has next to no coloured pixels (its legend's samples are far below 0.5% of the area)."""
    x, y, w, h = rect
    assert w > 100 and h > 100 and y + h <= image.shape[0], f"plot outside the screenshot: {rect}"
    area = image[y: y + h, x: x + w].reshape(-1, 3).astype(np.int16)
    coloured = area[area.max(axis=1) - area.min(axis=1) > 60]
    assert len(coloured) > 0.005 * len(area), f"{len(coloured)} coloured pixels of {len(area)}"
    classes = np.unique(coloured // 16, axis=0)   # coarse colour classes, so anti-aliasing does not count
    assert len(classes) >= min_colours, f"{len(classes)} colours"


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    """Reports of real recordings: cover with its ELF and a cache (one vCPU), smp with a cache (four vCPUs)."""
    d = tmp_path_factory.mktemp("report-pages")
    out = {}
    for name, smp, args in (("cover", 1, ("--elf", str(guest(ARCH, "cover")), "--cache", "cortex-a53")),
                            ("smp", 4, ("--cache", "zen4"))):
        trace = d / f"{name}.trace"
        assert record(trace, ARCH, name, smp=smp).returncode == 0
        page = d / f"{name}.html"
        proc = memtap("report", str(trace), "-o", str(page), *args)
        assert proc.returncode == 0, proc.stderr
        out[name] = page
    return out


@pytest.mark.parametrize("name", ["cover", "smp"])
def test_page_draws_offline_without_errors(pages: dict[str, Path], name: str, tmp_path: Path) -> None:
    page = pages[name]
    text = page.read_text()
    assert "<script src" not in text and "<link" not in text   # nothing to fetch: all of it is inline
    dom, image = open_page(page, tmp_path)
    assert_drawn(dom)
    rects = plot_rects(dom)
    want = {"plot-time", "plot-heatmap", "plot-cache"} | ({"plot-sharing"} if name == "smp" else set())
    assert set(rects) == want
    for pid, rect in rects.items():
        assert_plot_painted(image, rect, min_colours=3 if pid != "plot-heatmap" else 12)
    for title in ("Overview", "Address x time", "Hottest pages", "Hottest lines", "Cache"):
        assert f">{title}</h2>" in dom
    if name == "cover":
        assert ">square</td>" in dom and ">cover.c</td>" in dom           # functions and coverage tables
        assert "Not shown: one vCPU in the selection" in dom
    else:
        assert "Sharing between vCPUs" in dom and "Not shown: no --elf" in dom


def test_page_of_an_empty_trace_still_opens(tmp_path: Path) -> None:
    trace = tmp_path / "empty.trace"
    tracegen.empty_trace(trace)
    page = tmp_path / "empty.html"
    assert memtap("report", str(trace), "-o", str(page)).returncode == 0
    dom = chromium(page, "--dump-dom")
    assert_drawn(dom)
    assert "Nothing to plot: the trace holds no records." in dom
    assert "Not shown: no fetch, load or store records." in dom
    assert plot_rects(dom) == {}


def test_high_addresses_stay_exact(tmp_path: Path) -> None:
    """Addresses above 2**53 (a kernel's) reach the page as exact hex, not rounded JavaScript numbers."""
    trace = tmp_path / "high.trace"
    high = 0xFFFF_FFC0_8000_1040
    with tracegen.TraceWriter(trace) as w:
        w.info()
        w.insns([tracegen.Insn(0xFFFF_FFC0_8000_0000, 4, L.PRIV_SUPERVISOR)])
        w.events(0, [tracegen.exec_ev(0, 1, pos=0, icount=1), tracegen.data_ev(0, high, pos=2, icount=1)])
        w.end()
    page = tmp_path / "high.html"
    assert memtap("report", str(trace), "-o", str(page)).returncode == 0
    dom = chromium(page, "--dump-dom")
    assert_drawn(dom)
    assert f">{hex(high & ~63)}</td>" in dom and f">{hex(high & ~4095)}</td>" in dom
