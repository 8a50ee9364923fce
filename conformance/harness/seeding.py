"""Hypothesis profiles, --max-examples, and one seed for the whole run.

The profile comes from --hypothesis-profile, else `ci` when the CI variable is set, else
`default` (see conformance/harness/profiles.py). A randomized run draws one seed on the
controller and hands it to every xdist worker, so a failure replays with --hypothesis-seed.

Every test item draws its own examples. Left alone, Hypothesis would give the items of one test
function (one per device and dtype) one and the same sequence: derandomized profiles seed it from
the function, a forced seed is the same for all. So each item's seed is derived from its node id,
and from the run's seed in a randomized run: the items spread over the domain, and the node id
with the same profile (and --hypothesis-seed) replays any one of them.

A profile's count is per behaviour and device, not per dtype: a test swept over many dtype cells
gives each cell a share of twice the count, never below 40% of it (25 examples: 1-2 cells 25 each,
3 cells 17, 4 cells 13, 5 or more 10 each). A bug of one dtype still meets ten inputs of that
dtype, and the whole sweep meets fifty or more. `--max-examples N` is exactly N per item.

Note [Hypothesis's local constants]
Hypothesis draws, now and then, a constant found in the source of the "local" modules (not the
standard library, not site-packages, not test files) loaded at that moment. Which of the suite's
modules a worker has loaded depends on what ran before in it (a fault module, the repro tracer), so
the same item with the same derandomized seed met different examples in two runs and its
fingerprint changed with no torch change (rules.broadcasting bool, reductions.tolist,
rules.type_promotion float32 in the upgrade report), and a repro line run alone met other examples
than the run did. freeze_local_constants fixes the pool at start-up to the constants of every
non-test source file of the suite (SUITE_SOURCES): whatever is imported later, an item's examples
depend only on the profile, the seed, its node id and the checkout.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import random
import types
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import settings

from conformance.harness import profiles
from reports.schema import RUN

CELLS = pytest.StashKey[int]()  # on an item: how many dtype cells its test has on its device
ROOT = Path(__file__).resolve().parents[2]
SUITE_SOURCES = ("conftest.py", "conformance", "strategies", "reports", "tools")  # test_*.py left out


def pytest_addoption(parser):
    parser.getgroup("torch-conformance").addoption(
        "--max-examples", default=None, metavar="N", help="Hypothesis examples per test item, overriding the profile's count"
    )


def _ci_requested() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def suite_source_files() -> list[Path]:
    """The suite's non-test Python sources, as Hypothesis's local-constant scan would pick them."""
    found = []
    for name in SUITE_SOURCES:
        path = ROOT / name
        files = [path] if path.is_file() else sorted(path.rglob("*.py"))
        found += [f for f in files if not f.stem.startswith("test_") and not f.stem.endswith("_test")]
    return found


def freeze_local_constants() -> bool:
    """Note [Hypothesis's local constants]: the pool fixed to the suite's own sources. False (and the
    pool left to Hypothesis) where this Hypothesis has no such pool or keeps it elsewhere."""
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants, constants_from_module
        from hypothesis.internal.floats import float_to_int
        from sortedcontainers import SortedSet
    except ImportError:
        return False
    if not callable(getattr(providers, "_get_local_constants", None)) or not hasattr(providers, "CONSTANTS_CACHE"):
        return False
    frozen = []

    def suite_constants() -> Constants:
        # read on first use, not while plugins load: Hypothesis warns of storage access then
        if not frozen:
            found = Constants()
            for path in suite_source_files():
                # as Hypothesis reads a loaded module (its size limit, its cache of each file's constants)
                stand_in = types.ModuleType(path.stem)
                stand_in.__file__ = str(path)
                found |= constants_from_module(stand_in)
            # sorted sets, as Hypothesis keeps its pool: a plain set of strings iterates in a per-process order
            empty = Constants(integers=SortedSet(), floats=SortedSet(key=float_to_int), bytes=SortedSet(), strings=SortedSet())
            frozen.append(empty | found)
        return frozen[0]

    providers._get_local_constants = suite_constants
    providers.CONSTANTS_CACHE.cache.clear()
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    profiles.register()
    freeze_local_constants()
    name = config.getoption("hypothesis_profile", None)
    if name:
        if name not in profiles.PROFILES:
            raise pytest.UsageError(f"--hypothesis-profile {name!r}: unknown profile; known: {', '.join(profiles.PROFILES)}")
    else:
        name = "ci" if _ci_requested() else "default"
        settings.load_profile(name)
    config.stash.setdefault(RUN, {})["profile"] = name
    raw = config.getoption("max_examples")
    if raw is not None:
        try:
            count = int(raw)
        except ValueError:
            count = -1
        if count < 1:
            raise pytest.UsageError(f"--max-examples {raw!r}: expected a positive whole number")
        config.stash[RUN]["max_examples"] = count
    # Two xdist workers on two cores: torch's intra-op threads would fight each other.
    if hasattr(config, "workerinput") and "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(1)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown when xdist is absent or disabled
def pytest_configure_node(node):
    """xdist controller: every worker runs with the controller's seed."""
    node.workerinput["conformance_seed"] = node.config.stash[RUN].get("seed")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    config = session.config
    # Applied here, after Hypothesis' own plugin has loaded --hypothesis-profile.
    count = config.stash[RUN].get("max_examples")
    if count is not None:
        settings.register_profile("cli", parent=settings.default, max_examples=count)
        settings.load_profile("cli")
    from hypothesis import core

    seed = config.getoption("hypothesis_seed", None)
    if hasattr(config, "workerinput"):
        seed = config.workerinput.get("conformance_seed")
    elif seed is None and not settings.default.derandomize:
        # One seed for the whole run, so every failure replays with --hypothesis-seed.
        seed = random.randrange(2**32)
    if seed is not None and not settings.default.derandomize:
        core.global_force_seed = int(seed) if str(seed).isdigit() else seed
    config.stash[RUN]["seed"] = seed


def pytest_collection_modifyitems(config, items):
    from conformance.harness.identity import identity_of

    def sweep(item):
        identity = identity_of(item)  # None for the suite's own tests: each item its own sweep
        if identity is None:
            return (item.nodeid,)
        return (item.path, getattr(item, "originalname", item.name), identity.behaviour, identity.device, identity.mode)

    counts = Counter(sweep(item) for item in items)
    for item in items:
        item.stash[CELLS] = counts[sweep(item)]


def examples_for(count: int, cells: int) -> int:
    """Examples of one dtype cell of a sweep of `cells` cells, from the profile's `count`."""
    floor = min(count, max(2, math.ceil(count * 0.4)))  # the compiled modes' 2 examples stay 2
    return max(floor, min(count, math.ceil(2 * count / max(cells, 1))))


def item_seed(run_seed, nodeid: str) -> int:
    """The Hypothesis seed of one test item in a randomized run: the run's seed and the item's id."""
    return int.from_bytes(hashlib.sha256(f"{run_seed}/{nodeid}".encode()).digest()[:8], "big")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with item_examples(item):
        yield


@contextlib.contextmanager
def item_examples(item):
    """While it is open, `item`'s Hypothesis test draws this item's own examples: its own digest
    and seed, and its share of the profile's examples. The strength harness re-runs items inside
    it too (conformance/harness/mutants.py), so a mutant meets the examples the run itself drew."""
    test = getattr(item, "obj", None)
    handle = getattr(test, "hypothesis", None)
    if handle is None:
        yield
        return
    # Derandomized profiles seed from the function's digest, which includes this per-item key
    # (Hypothesis' own plugin sets it only for @pytest.mark.parametrize, not for generated parameters).
    handle.inner_test._hypothesis_internal_add_digest = item.nodeid.encode()
    seed = item.config.stash[RUN].get("seed")
    forced = seed is not None and not settings.default.derandomize
    if forced and getattr(test, "_hypothesis_internal_use_seed", None) is None:
        test._hypothesis_internal_use_seed = item_seed(seed, item.nodeid)
    before = getattr(test, "_hypothesis_internal_use_settings", None)
    cells = item.stash.get(CELLS, 1)
    if before is not None and cells > 2 and item.config.stash[RUN].get("max_examples") is None:
        test._hypothesis_internal_use_settings = settings(before, max_examples=examples_for(before.max_examples, cells))
    try:
        yield
    finally:
        if forced:
            test._hypothesis_internal_use_seed = None
        if before is not None:
            test._hypothesis_internal_use_settings = before
