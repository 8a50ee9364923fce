"""Fingerprints: what each item's calls did, recorded for the upgrade report, never asserted.

Note [Fingerprints]
Beside its status, every item's result record carries a small `fingerprint` that two runs on two
torch releases can be compared by (python -m reports.diff OLD NEW):

    "fingerprint": {"result": ["float32", "raises RuntimeError"],
                    "warnings": ["UserWarning: Using a target size (torch.Size([#])) that is ..."]}

`result`: what a declared operation's calls returned, as dtypes (a tuple as its elements' dtypes,
a Python number as its type), or the type of the error they raised; only items that call a
declared operation (conformance/harness/declaration.py) have it. `warnings`: the category of each
warning raised while the item ran, with the start of its first line, its numbers written `#`, so
that a different shape or count in the message does not count as a change.

Each is a sorted set over the item's examples, not a list in example order, so the same torch
and the same derandomized examples (the `ci` profile) give the same fingerprint whatever the
order the examples ran in. torch's once-per-process warnings (TORCH_WARN_ONCE) are turned into
every-time warnings while an item runs (torch.set_warn_always), so which item sees one does not
depend on which items a worker ran before it; Python's per-location "once" registry is reset per
item by the same `warnings.catch_warnings` that records them. The examples themselves depend only
on the item, the profile and the checkout (Note [Hypothesis's local constants] in seeding.py).
Warnings a test catches itself (`pytest.warns`) are its own and are not seen here; warnings the
run's filters ignore are not either. Recorded warnings are emitted again after the call, so
pytest's warnings summary still shows them, and filters a test changed are left changed, so the
isolation check still sees them.

Cost: one catch_warnings per item and a set insertion per operation call.
"""

from __future__ import annotations

import contextvars
import re
import warnings

import pytest
import torch

from reports.schema import FINGERPRINT

_CURRENT: contextvars.ContextVar[dict | None] = contextvars.ContextVar("fingerprint of the item running now", default=None)
_KEY = pytest.StashKey[dict]()
MAX_VALUES = 16  # distinct values kept per key: a record stays small whatever an item does
_NUMBER = re.compile(r"0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:e[-+]?\d+)?")
_MESSAGE_CHARS = 80


def describe(value) -> str:
    """A result as its dtypes: `float32`, `(float32, int64)`, `tuple of float32` (any length),
    `int`, `None`. The length of a sequence of like elements is left out: it follows the example."""
    dtype = getattr(value, "dtype", None)
    if dtype is not None and type(value).__module__.startswith("torch"):
        return str(dtype).removeprefix("torch.")
    if type(value).__module__ == "numpy" and dtype is not None:
        return f"ndarray {dtype}"
    if isinstance(value, (tuple, list)):
        parts = [describe(v) for v in value]
        if len(set(parts)) == 1 and len(parts) > 1 and not hasattr(value, "_fields"):
            return f"{type(value).__name__} of {parts[0]}"
        return ("(" if isinstance(value, tuple) else "[") + ", ".join(parts) + (")" if isinstance(value, tuple) else "]")
    return "None" if value is None else type(value).__name__


def note_result(value=None, error: BaseException | None = None) -> None:
    """Called by a declared operation after each call: its result's dtypes, or the error it raised."""
    found = _CURRENT.get()
    if found is None:
        return
    if error is not None:
        found["result"].add(f"raises {type(error).__name__}")
        return
    with torch._C.DisableTorchFunction():  # reading a dtype is no call of the test's (a repro trace's mode)
        found["result"].add(describe(value))


def warning_text(message: warnings.WarningMessage) -> str:
    """`Category: start of the message`, numbers and addresses written `#`."""
    text = str(message.message).strip().splitlines()
    first = _NUMBER.sub("#", text[0] if text else "")
    if len(first) > _MESSAGE_CHARS:
        first = first[:_MESSAGE_CHARS].rsplit(" ", 1)[0] + " ..."
    return f"{message.category.__name__}: {first}".rstrip(": ")


def _sorted(values: set[str]) -> list[str]:
    return sorted(values)[:MAX_VALUES]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    found = {"result": set(), "warnings": set()}
    token = _CURRENT.set(found)
    warn_always = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    caught: list[warnings.WarningMessage] = []
    entry = left = None
    try:
        with warnings.catch_warnings(record=True) as recorded:
            entry = list(warnings.filters)
            try:
                return (yield)
            finally:
                caught = list(recorded)
                found["warnings"] = {warning_text(w) for w in caught}
                left = list(warnings.filters)
    finally:
        torch.set_warn_always(warn_always)
        _CURRENT.reset(token)
        item.stash[_KEY] = {k: _sorted(v) for k, v in found.items() if v or k == "warnings"}
        for w in caught:  # into pytest's own record, for its warnings summary
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
        if left != entry:  # the test changed the filters: leave its change for the isolation check to see
            warnings.filters[:] = left
            getattr(warnings, "_filters_mutated", lambda: None)()  # forget what the old filters let through once


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and _KEY in item.stash:
        report.user_properties.append((FINGERPRINT, item.stash[_KEY]))
    return report
