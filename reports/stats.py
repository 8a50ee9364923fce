"""What Hypothesis ran for one test item, taken from its statistics callback.

Hypothesis hands its per-test statistics to whatever `hypothesis.statistics.collector`
holds; its own pytest plugin sets that around each test call. We set ours just inside
theirs and chain to it, so `--hypothesis-show-statistics` keeps working.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis.statistics import collector

STATS = pytest.StashKey[dict]()
_PHASES = ("explicit", "reuse", "generate")


def summarise(stats: dict) -> dict:
    cases = [case for phase in _PHASES for case in stats.get(f"{phase}-phase", {}).get("test-cases", [])]
    features = Counter(label for case in cases for label in case.get("events", ()))
    return {
        "examples": len(cases),
        "shrinks": len(stats.get("shrink-phase", {}).get("test-cases", [])),
        "draw_s": round(sum(c.get("drawtime", 0.0) for c in cases), 6),
        "run_s": round(sum(c.get("runtime", 0.0) for c in cases), 6),
        # examples run up to and including the first failing one (the fault kill matrix)
        "examples_to_failure": next((i + 1 for i, c in enumerate(cases) if c["status"] == "interesting"), None),
        "features": dict(features),
    }


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item):
    outer = collector.value

    def note(stats):
        item.stash[STATS] = summarise(stats)
        if outer is not None:
            outer(stats)

    with collector.with_value(note):
        return (yield)
