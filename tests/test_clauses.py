"""Every clause checked: a catalogue statement is a short list of clauses (`clauses = [{says,
check}]`), each naming the check in the behaviour's own test that enforces it. A clause whose
check the test never makes is an over-claim; this test fails on it.

A check is found in the source of a test of the behaviour (a function carrying its `behaviour`
marker, or the test of its declared Operation), or of a module-level helper that test calls:
either a function or method the test calls by that name (`assert_same_storage`, `signbit`), or a
fragment of a string the test writes (an assertion's message, a `match=` pattern).
"""

from __future__ import annotations

import ast
import importlib
from functools import cache
from pathlib import Path

import pytest

from conformance import catalogue

ROOT = Path(__file__).resolve().parent.parent

# Areas whose every entry states its clauses; the rest follow as they are rewritten (issue 25).
CLAUSED_AREAS: set[str] = {
    "autograd",
    "compile",
    "creation",
    "data",
    "devices",
    "distributed",
    "indexing",
    "joining",
    "losses",
    "numpy_bridge",
    "optim",
    "pointwise",
    "reductions",
    "rules",
    "shape_ops",
    "softmax",
    "views",
}


def _behaviours_of(function) -> set[str]:
    marks = getattr(function, "pytestmark", [])
    return {m.args[0] for m in marks if m.name == "behaviour" and m.args}


@cache
def sources_by_behaviour() -> dict[str, list[ast.AST]]:
    """Behaviour id -> the parsed sources of its tests and of the module's helpers they call."""
    found: dict[str, list[ast.AST]] = {}
    for path in sorted((ROOT / "conformance").glob("test_*.py")):
        module = importlib.import_module(f"conformance.{path.stem}")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        helpers = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        for name, obj in vars(module).items():
            if not callable(obj) or not name.startswith("test_"):
                continue
            for behaviour in _behaviours_of(obj):
                node = helpers.get(getattr(getattr(obj, "place_as", obj), "__name__", name)) or helpers.get(name)
                if node is None:
                    continue
                nodes, called = [node], {c for c in _called(node) if c in helpers and c != node.name}
                nodes += [helpers[c] for c in sorted(called)]
                found.setdefault(behaviour, []).extend(nodes)
    return found


def _called(node: ast.AST) -> set[str]:
    names = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            f = sub.func
            names.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "")
    return names


def _strings(node: ast.AST) -> list[str]:
    return [s.value for s in ast.walk(node) if isinstance(s, ast.Constant) and isinstance(s.value, str)]


def check_is_made(behaviour: str, check: str) -> bool:
    for node in sources_by_behaviour().get(behaviour, []):
        if check in _called(node) or any(check in s for s in _strings(node)):
            return True
    return False


CLAUSED = [b for b in catalogue.behaviours().values() if b.clauses]


@pytest.mark.parametrize("behaviour", CLAUSED, ids=[b.id for b in CLAUSED])
def test_every_clause_names_a_check_its_test_makes(behaviour):
    missing = [(says, check) for says, check in behaviour.clauses if not check_is_made(behaviour.id, check)]
    assert not missing, f"{behaviour.id}: clauses whose check its test never makes: {missing}"


def test_every_entry_of_a_claused_area_states_its_clauses():
    bare = [b.id for b in catalogue.behaviours().values() if b.area in CLAUSED_AREAS and not b.clauses]
    assert not bare, f"entries without clauses in an area that states them: {bare}"


def test_the_check_finder_is_not_blind():
    """A check the test makes is found; one it does not make is not (so the test above can fail)."""
    assert check_is_made("views.transpose_shares", "assert_is_live_view")
    assert not check_is_made("views.transpose_shares", "assert_no_such_check_anywhere")
