"""memtap report: one self-contained HTML page that shows a trace.

    >>> from memtap.report import build, render
    >>> doc = build.build(memtap.open("run.trace"), build.Options())     # the numbers (JSON-ready)
    >>> render.write(doc, "report.html")                                  # the page that draws them

aggregate.py and core.c make the one pass over the records in file order; regions.py and sections.py turn its
counts into the document's sections; build.py adds a pass in global order for the cache (cache.py) and the
transfers between vCPUs (memtap.analysis.sharing); render.py and assets/ make the page.
"""
