"""The catalogue is the spec: every entry has a test and every test names an entry; the rooms
keep to their roles (what imports what)."""

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conformance import catalogue

ROOT = Path(__file__).resolve().parent.parent

COLLECT = """
import json, pytest
from conformance.harness.identity import identity_of

class Identities:
    found = {}
    skips = {}  # node id -> the reason its skip marker gives, where it has one
    def pytest_collection_finish(self, session):
        for item in session.items:
            identity = identity_of(item)
            self.found[item.nodeid] = identity.behaviour if identity else None
            marker = item.get_closest_marker("skip")
            if marker is not None:
                self.skips[item.nodeid] = marker.kwargs.get("reason", "")

plugin = Identities()
# -m: every item, the distributed ones the default run leaves out included
code = pytest.main(["--collect-only", "-q", "--no-report", "-p", "no:cacheprovider", "--device=cpu,meta",
                    "-m", "distributed or not distributed", "conformance"], plugins=[plugin])
print("IDENTITIES", json.dumps(plugin.found))
print("SKIPS", json.dumps(plugin.skips))
raise SystemExit(int(code))
"""


@pytest.fixture(scope="module")
def collection() -> dict[str, dict]:
    """What collecting every conformance item on cpu and meta gives: IDENTITIES (node id ->
    behaviour, as the harness identifies it) and SKIPS (node id -> its skip marker's reason)."""
    done = subprocess.run([sys.executable, "-c", COLLECT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    found = {}
    for key in ("IDENTITIES", "SKIPS"):
        line = next(line for line in done.stdout.splitlines() if line.startswith(f"{key} "))
        found[key] = json.loads(line.removeprefix(f"{key} "))
    return found


@pytest.fixture(scope="module")
def identities(collection) -> dict[str, str | None]:
    """node id -> behaviour, as the harness identifies every collected conformance item."""
    return collection["IDENTITIES"]


def test_a_behaviour_needs_cuda_exactly_when_its_items_run_on_cuda_alone(collection):
    """`needs = "cuda"` in the catalogue (what the report and the GPU evidence run read) agrees with
    the tests: on cpu and meta every item of such a behaviour skips by its markers, and every other
    behaviour of this torch release has an item that runs there."""
    items: dict[str, list[str]] = {}
    for node, behaviour in collection["IDENTITIES"].items():
        items.setdefault(behaviour, []).append(node)
    runs_here = {b for b, nodes in items.items() if any(n not in collection["SKIPS"] for n in nodes)}
    needs_cuda = {b.id for b in catalogue.behaviours().values() if b.needs == "cuda"}
    assert needs_cuda, "no behaviour is marked needs = 'cuda'"
    assert not sorted(needs_cuda & runs_here), "marked needs = 'cuda' but an item runs without CUDA"
    import torch

    known = catalogue.behaviours()  # a behaviour of other torch releases only skips here for that reason
    unmarked = sorted(b for b in items if b not in runs_here | needs_cuda and b in known and known[b].holds_on(torch.__version__))
    assert not unmarked, f"every item skips without CUDA, yet not marked needs = 'cuda': {unmarked}"


def test_every_test_names_a_catalogue_entry(identities):
    anonymous = sorted(node for node, behaviour in identities.items() if behaviour is None)
    assert not anonymous, f"tests that name no behaviour: {anonymous[:5]}"
    unknown = set(identities.values()) - set(catalogue.behaviours())
    assert not unknown, f"tests name behaviours missing from the catalogue: {sorted(unknown)}"


def test_every_catalogue_entry_has_a_test(identities):
    untested = set(catalogue.behaviours()) - set(identities.values())
    assert not untested, f"catalogue entries without a test: {sorted(untested)}"


def test_entries_are_complete():
    for b in catalogue.behaviours().values():
        assert b.statement.strip() and b.doc.startswith("https://docs.pytorch.org/"), b.id
        if b.note is not None:
            assert b.claim and b.verdict in catalogue.VERDICTS, b.id


def test_test_modules_are_one_per_area():
    areas = {a.name for a in catalogue.areas()}
    modules = {p.stem.removeprefix("test_") for p in (ROOT / "conformance").glob("test_*.py")}
    execution_modes = {"cross_device", "compiled", "compiled_inputs"}  # modules that run every declaration, no area of their own
    assert modules <= areas | execution_modes, f"test modules without an area: {modules - areas}"


def imports_of(path: Path) -> set[str]:
    """Every module a source file imports, at any depth of the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


@pytest.mark.parametrize(
    ("room", "forbidden"),
    [
        ("reports", ("conformance.test_",)),
        ("strategies", ("reports", "conformance")),
    ],
)
def test_rooms_import_only_downstream(room, forbidden):
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / room).rglob("*.py")
        for name in imports_of(path)
        if name.startswith(forbidden)
    }
    assert not offenders, sorted(offenders)


def test_renderer_and_merge_never_import_torch():
    code = "import sys, reports.render, reports.merge, reports.killmatrix, reports.diff; assert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _normalised(text: str) -> str:
    return " ".join(text.split())


def test_every_docstring_quote_is_in_the_installed_torch_docstring():
    import importlib

    missing = []
    for b in catalogue.behaviours().values():
        if not b.docstring:
            continue
        module, _, attribute = b.docstring.partition(".")
        obj = importlib.import_module(module)
        for part in attribute.split(".") if attribute else ():
            obj = getattr(obj, part)
        if _normalised(b.quote) not in _normalised(obj.__doc__ or ""):
            missing.append(f"{b.id}: {b.quote!r} is not in {b.docstring}.__doc__")
    assert not missing, "\n".join(missing)


def _resolve_api(name: str):
    head, _, rest = name.partition(".")
    import importlib

    import torch

    roots = {"Tensor": torch.Tensor, "F": torch.nn.functional, "nn": torch.nn, "torch": torch}
    obj, path = roots[head], head
    for part in rest.split("."):
        path = f"{path}.{part}"
        if not hasattr(obj, part) and path.startswith("torch."):
            importlib.import_module(path)  # a submodule torch does not import by itself
        obj = getattr(obj, part)
    return obj


def test_every_api_a_behaviour_names_exists_on_the_installed_torch():
    missing = []
    for b in catalogue.behaviours().values():
        for name in b.apis:
            try:
                _resolve_api(name)
            except (KeyError, AttributeError):
                missing.append(f"{b.id}: {name}")
    assert not missing, missing


def test_the_census_names_resolve_too():
    from reports.render import census

    unknown = []
    for _, name, _ in census():
        try:
            _resolve_api(name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").startswith("torch"):  # a third-party package (tensorboard) may be absent
                unknown.append(name)
        except (KeyError, AttributeError):
            unknown.append(name)
    assert not unknown, unknown


# The census's coverage (issue 28): the top 100 all checked; of the top 300, this many checked or
# listed with the reason in reports/api_census_uncovered.toml. Raise it as behaviours are added.
CENSUS_TOP = 100
CENSUS_COVERED_OR_LISTED_AT_LEAST = 299
TOP_LISTED: set[str] = set()  # census top-100 APIs left out with a reason (none now)


def test_the_census_top_apis_are_checked_or_left_out_with_a_reason():
    from reports.render import api_coverage, census_uncovered

    rows = api_coverage()
    in_census = {row["api"] for row in rows}
    listed = census_uncovered()
    assert not sorted(set(listed) - in_census), "listed as uncovered but not in the census"
    assert not [r["api"] for r in rows if r["behaviours"] and r["api"] in listed], "listed as uncovered but checked"
    assert all(reason.strip() for reason in listed.values())
    assert [r["api"] for r in rows[:CENSUS_TOP] if not r["behaviours"] and r["api"] not in TOP_LISTED] == []
    accounted = [r for r in rows if r["behaviours"] or r["api"] in listed]
    print(f"census: {sum(bool(r['behaviours']) for r in rows)} of {len(rows)} checked, {len(listed)} listed with a reason")
    assert len(accounted) >= CENSUS_COVERED_OR_LISTED_AT_LEAST


ENTRY = 'title = "T"\n[behaviours.b]\nstatement = "s"\ndoc = "https://docs.pytorch.org/x"\napis = ["torch.add"]\n'


@pytest.mark.parametrize(
    "fields, problem",
    [
        ('since = "2.x"\nchanged = "https://github.com/pytorch/pytorch/pull/1"', "has since '2.x'; expected a torch release"),
        ('until = 2.13\nchanged = "https://github.com/pytorch/pytorch/pull/1"', "has until 2.13; expected a torch release"),
        (
            'since = "2.13"\nuntil = "2.6"\nchanged = "https://github.com/pytorch/pytorch/pull/1"',
            "since 2.13 not before until 2.6",
        ),
        ('since = "2.6"', "has a torch range but changed None"),
        ('until = "2.13"\nchanged = "the changelog"', "has a torch range but changed 'the changelog'"),
        ('changed = "https://github.com/pytorch/pytorch/pull/1"', "has changed without since or until"),
    ],
)
def test_a_torch_range_is_validated_with_a_one_line_error(tmp_path, fields, problem):
    path = tmp_path / "area.toml"
    path.write_text(ENTRY + fields + "\n")
    with pytest.raises(catalogue.CatalogueError) as raised:
        catalogue._load_area(path)
    message = str(raised.value)
    assert problem in message and message.startswith("area.toml: entry 'b'") and "\n" not in message


def test_a_versioned_behaviour_is_skipped_outside_its_range_with_the_range_named(tmp_path):
    """A synthetic catalogue entry that held from 2.6 until 2.13 (the fields and link invented)."""
    from conformance.harness.releases import skip_reason

    path = tmp_path / "area.toml"
    path.write_text(ENTRY + 'since = "2.6"\nuntil = "2.13"\nchanged = "https://github.com/pytorch/pytorch/pull/1"\n')
    (b,) = catalogue._load_area(path).behaviours
    assert b.releases == ">=2.6,<2.13"
    for inside in ("2.6.0", "2.6.0a0+git1234", "2.12.1+cu130", "2.12.0.dev20260101"):
        assert skip_reason(b, inside) is None, inside
    for outside in ("2.5.1", "2.13.0+cpu", "2.14.0.dev20261201", "3.0.0"):
        reason = skip_reason(b, outside)
        assert reason == (
            f"holds only on torch >=2.6,<2.13 (changed: https://github.com/pytorch/pytorch/pull/1); this is torch {outside}"
        )
    unranged = catalogue.behaviours()["views.permute_shares"]
    assert unranged.releases is None and skip_reason(unranged, "1.0.0") is None


def test_the_versioned_entries_of_the_catalogue_hold_on_the_installed_torch_or_say_why_not():
    """Every ranged entry names the change; on the installed torch its items run or skip by the range."""
    import torch

    ranged = [b for b in catalogue.behaviours().values() if b.releases]
    assert ranged, "the catalogue marks no versioned behaviour (serialization.map_location_and_weights_only: since 2.6)"
    for b in ranged:
        assert b.changed.startswith("https://"), b.id
    weights_only = catalogue.behaviours()["serialization.map_location_and_weights_only"]
    assert weights_only.since == "2.6" and weights_only.holds_on(torch.__version__)


RANGED = """
    import dataclasses
    from conformance import catalogue

    def pytest_configure(config):  # views.permute_shares as if it had stopped holding in torch 2.0
        known = dict(catalogue.behaviours())
        known["views.permute_shares"] = dataclasses.replace(
            known["views.permute_shares"], until="2.0", changed="https://github.com/pytorch/pytorch/pull/1"
        )
        catalogue.behaviours = lambda: known
"""


def test_the_items_of_a_behaviour_outside_its_range_are_skipped_with_the_range_named(tmp_path):
    from tests.helpers import run_throwaway, throwaway_results

    (tmp_path / "ranged_plugin.py").write_text(textwrap.dedent(RANGED))
    source = """
        import pytest

        @pytest.mark.behaviour("views.permute_shares")
        def test_out_of_range(device):
            raise AssertionError("never runs")

        @pytest.mark.behaviour("views.narrow_shares")
        def test_unranged(device):
            pass
    """
    done = run_throwaway(tmp_path, source, plugins=("-p", "ranged_plugin"))
    assert done.returncode == 0, done.stdout[-2000:]
    _, by_name = throwaway_results(tmp_path)
    skipped = by_name["test_out_of_range[cpu]"]
    assert skipped["status"] == "skipped"
    assert skipped["reason"].startswith(
        "holds only on torch <2.0 (changed: https://github.com/pytorch/pytorch/pull/1); this is torch 2."
    )
    assert by_name["test_unranged[cpu]"]["status"] == "passed"
