"""The catalogue is the spec: every entry has a test and every test names an entry."""
import importlib
import inspect
from pathlib import Path

from conformance import catalogue

ROOT = Path(__file__).resolve().parent.parent


def behaviour_tests() -> dict[str, list[str]]:
    """behaviour id -> test names, read from the markers of conformance/test_*.py."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "conformance").glob("test_*.py")):
        module = importlib.import_module(f"conformance.{path.stem}")
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("test_"):
                continue
            marks = getattr(fn, "pytestmark", [])
            own = [m.args[0] for m in marks if m.name == "behaviour"]
            # a parametrized test may name one behaviour per parameter instead (cross-device cases)
            per_param = [[m.args[0] for m in p.marks if m.name == "behaviour"]
                         for m in marks if m.name == "parametrize" for p in m.args[1]
                         if hasattr(p, "marks")]
            if per_param:
                assert not own and all(len(b) == 1 for b in per_param), f"{path.name}::{name}"
                ids = [b[0] for b in per_param]
            else:
                assert len(own) == 1, f"{path.name}::{name} needs exactly one behaviour marker"
                ids = own
            for bid in ids:
                found.setdefault(bid, []).append(f"{path.name}::{name}")
    return found


def test_every_test_names_a_catalogue_entry():
    unknown = set(behaviour_tests()) - set(catalogue.behaviours())
    assert not unknown, f"tests name behaviours missing from the catalogue: {sorted(unknown)}"


def test_every_catalogue_entry_has_a_test():
    untested = set(catalogue.behaviours()) - set(behaviour_tests())
    assert not untested, f"catalogue entries without a test: {sorted(untested)}"


def test_entries_are_complete():
    for b in catalogue.behaviours().values():
        assert b.statement.strip() and b.doc.startswith("https://docs.pytorch.org/"), b.id
        if b.note is not None:
            assert b.claim and b.verdict in catalogue.VERDICTS, b.id


def test_test_modules_are_one_per_area():
    areas = {a.name for a in catalogue.areas()}
    modules = {p.stem.removeprefix("test_") for p in (ROOT / "conformance").glob("test_*.py")}
    assert modules <= areas | {"cross_device"}, f"test modules without an area: {modules - areas}"


def test_renderer_never_imports_torch():
    import subprocess
    import sys

    code = "import sys, reports.render, reports.merge, reports.killmatrix; assert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
