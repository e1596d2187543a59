"""The report page: one HTML file that holds everything it shows (plotly.js, its own script and style, the
document's numbers) and loads nothing, so it opens offline, from a file or a mail attachment.

The page's script draws the document itself; the HTML holds the same numbers `memtap report --json` writes,
except that integers above 2**53 (which JavaScript numbers cannot hold exactly: high addresses) are written as
"0x..." strings.
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from memtap.errors import MemtapError

_SAFE = (1 << 53) - 1


@cache
def _asset(name: str) -> str:
    return resources.files("memtap.report").joinpath("assets", name).read_text(encoding="utf-8")


@cache
def plotly_js() -> str:
    """plotly.js as the plotly package ships it (package_data/plotly.min.js), to be inlined."""
    try:
        import plotly
    except ImportError:
        raise MemtapError("memtap report needs the plotly package (pip install plotly)") from None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise MemtapError(f"plotly.js is missing from the plotly package ({path}: {e.strerror})") from None


def _js_safe(value: Any) -> Any:
    """The document with integers JavaScript cannot hold exactly written as hex strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -_SAFE <= value <= _SAFE else hex(value)
    if isinstance(value, dict):
        return {k: _js_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_js_safe(v) for v in value]
    return value


def _script(code: str, name: str) -> str:
    """Script text that can sit inside a <script> element as is (it holds no ``</script`` and no ``<!--``)."""
    low = code.lower()
    if "</script" in low or "<!--" in low:
        raise MemtapError(f"{name} cannot be inlined in a page: it contains </script or <!--")
    return code


def render(doc: dict[str, Any]) -> str:
    """The page of a report document."""
    # '<' escaped inside the JSON strings (the only place it can be), so the data cannot end its element
    data = json.dumps(_js_safe(doc), separators=(",", ":")).replace("<", "\\u003c")
    title = html.escape(str(doc.get("overview", {}).get("trace", "trace")))
    page = _asset("report.html")
    parts = {"@TITLE@": title, "@CSS@": _asset("report.css"), "@DATA@": data,
             "@PLOTLY@": _script(plotly_js(), "plotly.min.js"),
             "@REPORT_JS@": _script(_asset("report.js"), "report.js")}
    out = []
    rest = page
    # Substitute in one pass over the template, so no inserted text is searched for placeholders.
    while True:
        hits = [(rest.find(k), k) for k in parts if rest.find(k) >= 0]
        if not hits:
            out.append(rest)
            break
        at, key = min(hits)
        out += [rest[:at], parts[key]]
        rest = rest[at + len(key):]
    return "".join(out)


def write(doc: dict[str, Any], path: str | Path) -> None:
    """Write the page of a report document to path."""
    text = render(doc)
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as e:
        raise MemtapError(f"{path}: cannot write: {e.strerror}") from None
