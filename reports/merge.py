"""Merge results from several machines or torch versions into one page, a column group each:

    python -m reports.merge cpu/results.jsonl gpu/results.jsonl -o merged/index.html

A corrupt or truncated input is named in a one-line error (exit 2) and nothing is written.
"""

import sys

from reports.render import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m reports.merge"))
