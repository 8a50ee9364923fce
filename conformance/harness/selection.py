"""Which items run, and in what order: --behaviour and --shuffle-seed."""

from __future__ import annotations

import random

import pytest

from conformance.harness.identity import identity_of


def pytest_addoption(parser):
    group = parser.getgroup("torch-conformance")
    group.addoption(
        "--behaviour",
        action="append",
        default=None,
        metavar="ID[,ID...]",
        help="run only the tests of these catalogue behaviours; an area name (numpy_bridge) selects all of its behaviours",
    )
    group.addoption(
        "--shuffle-seed", default=None, metavar="N", help="run the tests in an order shuffled with this seed (isolation check)"
    )


def pytest_configure(config):
    shuffle = config.getoption("shuffle_seed")
    if shuffle is not None and not str(shuffle).isdigit():
        raise pytest.UsageError(f"--shuffle-seed {shuffle!r}: expected a non-negative whole number")


def pytest_report_header(config):
    seed = config.getoption("shuffle_seed")
    return f"torch-conformance: tests shuffled with seed {seed}" if seed is not None else None


def pytest_terminal_summary(terminalreporter, config):
    seed = config.getoption("shuffle_seed")
    if seed is not None:
        terminalreporter.write_line(f"torch-conformance: tests shuffled with seed {seed}")


def pytest_collection_modifyitems(config, items):
    seed = config.getoption("shuffle_seed")
    if seed is not None:  # every xdist worker shuffles the same way, so their collections agree
        random.Random(int(seed)).shuffle(items)
    wanted = config.getoption("behaviour")
    if not wanted:
        return
    names = {n.strip() for value in wanted for n in value.split(",") if n.strip()}
    keep, drop = [], []
    for item in items:
        identity = identity_of(item)
        selected = identity is not None and (identity.behaviour in names or identity.behaviour.split(".")[0] in names)
        (keep if selected else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
