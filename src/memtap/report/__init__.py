"""memtap report: one self-contained HTML page that shows a trace.

    >>> from memtap.report import build, render
    >>> doc = build.build(memtap.open("run.trace"), build.Options())     # the numbers (JSON-ready)
    >>> render.write(doc, "report.html")                                  # the page that draws them

aggregate.py and core.c make the one pass over the records; regions.py, sections.py, cache.py and transfers.py
turn its counts into the document's sections; render.py and assets/ make the page.
"""
