"""Item identity: which behaviour, device, dtype and execution mode a test item checks.

It is worked out once, at collection, from the item's own parameters and markers, and put into
the item's `user_properties`, so every report of the item carries it: the setup report that
reaches the xdist controller before the test body runs included. An item whose worker dies in
the middle of its test body is therefore still recorded with its behaviour, device and dtype.
The recorder, the catalogue self-test and the kill matrix all read identities through here.
"""

from __future__ import annotations

import contextvars
from dataclasses import asdict, dataclass

import pytest

from reports.schema import IDENTITY

IDENTITY_KEY = pytest.StashKey["Identity"]()
_CURRENT = contextvars.ContextVar("behaviour under test", default=None)


@dataclass(frozen=True)
class Identity:
    behaviour: str
    device: str | None = None
    dtype: str | None = None
    mode: str = "eager"


def identity_of(item) -> Identity | None:
    """The identity of a collected item, or None for a test that checks no behaviour."""
    known = item.stash.get(IDENTITY_KEY, None)
    if known is not None:
        return known
    params = item.callspec.params if hasattr(item, "callspec") else {}
    operation = params.get("operation") if "device" in params else None
    if operation is not None:
        behaviour = operation.behaviour
    else:
        marker = item.get_closest_marker("behaviour")
        if marker is None:
            return None
        behaviour = marker.args[0]
    dtype = params.get("dtype")
    mode = item.get_closest_marker("execution_mode")
    return Identity(
        behaviour=behaviour,
        device=params.get("device"),
        dtype=str(dtype).removeprefix("torch.") if dtype is not None else None,
        mode=params.get("mode") or (mode.args[0] if mode else "eager"),
    )


def from_report(report) -> dict | None:
    """The identity a report carries, as a plain dict (the form results files hold)."""
    for key, value in getattr(report, "user_properties", ()):
        if key == IDENTITY:
            return value
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        identity = identity_of(item)
        if identity is not None:
            item.stash[IDENTITY_KEY] = identity
            item.user_properties.append((IDENTITY, asdict(identity)))


def current_behaviour() -> str | None:
    """The behaviour of the test running now, for assertion messages (None outside a test)."""
    return _CURRENT.get()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    identity = item.stash.get(IDENTITY_KEY, None)
    token = _CURRENT.set(identity.behaviour if identity else None)
    try:
        return (yield)
    finally:
        _CURRENT.reset(token)
