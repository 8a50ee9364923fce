"""The declaration is the default path: every behaviour whose subject is a torch call on generated
inputs declares it once as an Operation (conformance/harness/declaration.py), so the cross-device
and compiled modes see it; every other behaviour says in its catalogue entry why not
(`not_declared`). This test holds both, and prints the count per area."""

from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path

import pytest

from conformance import catalogue
from conformance.harness.declaration import operations

ROOT = Path(__file__).resolve().parent.parent

# Areas whose every entry is a declaration or says why not; the rest follow as they are rewritten
# (issue 26). An area leaves this list only by being added to it.
COMPLETE_AREAS: set[str] = {
    "autograd",
    "compile",
    "creation",
    "data",
    "devices",
    "distances",
    "distributed",
    "indexing",
    "joining",
    "losses",
    "matmul",
    "modules",
    "numpy_bridge",
    "optim",
    "pointwise",
    "reductions",
    "rules",
    "serialization",
    "shape_ops",
    "softmax",
    "views",
}
# The catalogue-wide floor: it only rises.
DECLARED_AT_LEAST = 216


@pytest.fixture(scope="module")
def declared() -> set[str]:
    for path in sorted((ROOT / "conformance").glob("test_*.py")):
        importlib.import_module(f"conformance.{path.stem}")
    return {op.behaviour for op in operations()}


def test_counts_per_area(declared, capsys):
    per_area = Counter(b.area for b in catalogue.behaviours().values() if b.id in declared)
    reasons = Counter(b.area for b in catalogue.behaviours().values() if b.not_declared)
    totals = Counter(b.area for b in catalogue.behaviours().values())
    with capsys.disabled():
        print("\narea: declared / why not / all")
        for area in sorted(totals):
            print(f"  {area}: {per_area[area]} / {reasons[area]} / {totals[area]}")
        print(f"  all: {sum(per_area.values())} / {sum(reasons.values())} / {sum(totals.values())}")
    assert sum(per_area.values()) >= DECLARED_AT_LEAST


def test_a_declaration_and_a_reason_exclude_each_other(declared):
    both = sorted(b.id for b in catalogue.behaviours().values() if b.not_declared and b.id in declared)
    assert not both, f"declared, yet their entries say why they are not: {both}"


@pytest.mark.parametrize("area", sorted(COMPLETE_AREAS))
def test_every_behaviour_is_declared_or_says_why(declared, area):
    silent = sorted(
        b.id for b in catalogue.behaviours().values() if b.area == area and b.id not in declared and not b.not_declared
    )
    assert not silent, f"neither declared nor saying why not (not_declared): {silent}"


def test_operations_name_catalogue_behaviours(declared):
    unknown = sorted(declared - set(catalogue.behaviours()))
    assert not unknown, f"declarations of behaviours missing from the catalogue: {unknown}"
