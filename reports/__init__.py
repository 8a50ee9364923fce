"""Recording and rendering of conformance results.

reports.plugin  a pytest plugin: one JSON line per result into <report-dir>/results.jsonl
reports.render  results.jsonl files -> one self-contained index.html (no torch import)
reports.merge   command line: join results from several machines into one page
"""
