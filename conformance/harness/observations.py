"""The record_observation fixture: torch behaviour that no doc promises, shown in the report."""

from __future__ import annotations

import pytest

from reports.schema import OBSERVATION


@pytest.fixture
def record_observation(request):
    """Record what torch did where the docs promise nothing (version- or device-dependent
    behaviour): the report shows it beside the behaviour instead of asserting a value."""

    def record(what: str, value: str) -> None:
        props = request.node.user_properties
        props[:] = [p for p in props if not (p[0] == OBSERVATION and p[1][0] == what)]
        props.append((OBSERVATION, (what, value)))

    return record
