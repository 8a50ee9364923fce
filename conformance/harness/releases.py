"""Versioned behaviours: a catalogue entry that holds only for some torch releases.

An entry with `since = "2.6"` and/or `until = "2.13"` (and `changed`, the link to the change)
holds on torch releases in [since, until). On any other torch its items are skipped, with a
reason naming the range, the link and the torch that ran: the report lists them as skipped, not
passed, and the upgrade report (python -m reports.diff) shows the item going from passed to
skipped with that reason.
"""

from __future__ import annotations

import pytest

from conformance.harness.identity import identity_of


def skip_reason(behaviour, torch_version: str) -> str | None:
    """Why `behaviour` (a catalogue Behaviour) does not apply on `torch_version`, or None where it does."""
    if behaviour is None or behaviour.releases is None or behaviour.holds_on(torch_version):
        return None
    return f"holds only on torch {behaviour.releases} (changed: {behaviour.changed}); this is torch {torch_version}"


def pytest_collection_modifyitems(items):
    import torch

    from conformance import catalogue

    known = catalogue.behaviours()
    if not any(b.releases for b in known.values()):
        return
    for item in items:
        identity = identity_of(item)
        reason = skip_reason(known.get(identity.behaviour), torch.__version__) if identity else None
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


def torch_at_least(release: str) -> bool:
    """Whether the running torch is release `release` (`major.minor`) or later, its pre-releases and
    local builds counting as that release: for a test that narrows one draw or one check to the
    releases that have an argument or behaviour, with a comment citing the change. A whole behaviour
    that holds only on some releases is versioned in its catalogue entry (`since`/`until`) instead."""
    import torch

    from conformance.catalogue import _release

    return _release(torch.__version__) >= _release(release)
