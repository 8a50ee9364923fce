"""--inject-fault: run the suite against torch with one catalogued fault (conformance/faults)."""

from __future__ import annotations

import pytest

from reports.schema import RUN

PATCHER = pytest.StashKey[object]()


def pytest_addoption(parser):
    parser.getgroup("torch-conformance").addoption(
        "--inject-fault",
        default=None,
        metavar="FAULT",
        help="run against torch with one catalogued fault injected (see conformance/faults); stock torch is untouched without it",
    )


def pytest_configure(config):
    fault_id = config.getoption("inject_fault")
    if not fault_id:
        return
    from conformance import faults

    try:
        config.stash[PATCHER] = faults.inject(fault_id)
    except KeyError:
        raise pytest.UsageError(
            f"--inject-fault {fault_id!r}: no such fault; list them with python -m tools.killmatrix --list"
        ) from None
    config.stash.setdefault(RUN, {})["fault"] = fault_id


def pytest_unconfigure(config):
    patcher = config.stash.get(PATCHER, None)
    if patcher is not None:
        patcher.undo()
