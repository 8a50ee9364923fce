"""The upgrade report (python -m reports.diff): two runs that differ in each way give exactly
those rows; a bad input is a one-line error that writes nothing; fingerprints are recorded,
whatever order the items ran in."""

import json
import subprocess
import sys

import pytest

from conformance import catalogue
from conformance.harness.fingerprint import describe
from reports import diff
from tests.helpers import ROOT, run_throwaway, throwaway_results


def header(torch_version: str, **extra) -> dict:
    return {
        "type": "environment",
        "source": f"box torch {torch_version}",
        "torch": torch_version,
        "profile": "ci",
        "devices": ["cpu"],
        "start": "2026-12-01T00:00:00+00:00",
        "end": "2026-12-01T00:01:00+00:00",
        **extra,
    }


def result(behaviour, dtype, status="passed", device="cpu", **extra) -> dict:
    record = {
        "type": "result",
        "nodeid": f"conformance/test_x.py::test_{behaviour.split('.')[1]}[{device}-{dtype}]",
        "behaviour": behaviour,
        "device": device,
        "dtype": dtype,
        "mode": "eager",
        "status": status,
        "repro_line": f"pytest conformance/test_x.py::test_{behaviour.split('.')[1]}[{device}-{dtype}] --device={device}",
        "fingerprint": {"result": [dtype], "warnings": []},
    }
    record.update(extra)
    return record


def write(path, head, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in [head, *records]))
    return path


# One change of each kind, and one item that does not change at all.
OLD = [
    result("views.permute_shares", "float32"),  # regresses
    result("views.permute_shares", "int64", "expected failure", reason="known deviation: copies"),  # goes stale
    result("views.permute_shares", "float64"),  # unchanged
    result("numpy_bridge.numpy_shares_memory", "float32", "failed"),  # fixed
    result("softmax.range_and_sum", "float32"),  # result dtype changes
    result("softmax.range_and_sum", "float64"),  # a warning appears
    result("softmax.log_softmax_exp", "float32", fingerprint={"result": ["float32"], "warnings": ["UserWarning: old hint"]}),
    result("losses.nll_sum", "float32"),  # the whole behaviour is gone
    result("losses.nll_all_ignored_observed", "float32", observations={"mean of all ignored": "nan"}),
]
NEW = [
    result("views.permute_shares", "float32", "failed"),
    result("views.permute_shares", "int64", stale_deviation="known deviation: copies"),
    result("views.permute_shares", "float64"),
    result("numpy_bridge.numpy_shares_memory", "float32"),
    result("softmax.range_and_sum", "float32", fingerprint={"result": ["float64"], "warnings": []}),
    result("softmax.range_and_sum", "float64", fingerprint={"result": ["float64"], "warnings": ["UserWarning: size # is odd"]}),
    result("softmax.range_and_sum", "float32", device="cuda"),  # a new item of a behaviour both have
    result("softmax.log_softmax_exp", "float32"),  # its warning disappears
    result("losses.nll_none", "float32"),  # a new behaviour
    result("losses.nll_all_ignored_observed", "float32", observations={"mean of all ignored": "0.0"}),
]
EXPECTED = {
    ("regressed", "views.permute_shares", "cpu float32", "status", "passed", "failed"),
    (
        "stale",
        "views.permute_shares",
        "cpu int64",
        "status",
        "expected failure: known deviation: copies",
        "passed (a known deviation that passed: stale)",
    ),
    ("fixed", "numpy_bridge.numpy_shares_memory", "cpu float32", "status", "failed", "passed"),
    ("result", "softmax.range_and_sum", "cpu float32", "result", "float32", "float64"),
    ("warning+", "softmax.range_and_sum", "cpu float64", "UserWarning: size # is odd", "not raised", "raised"),
    ("warning-", "softmax.log_softmax_exp", "cpu float32", "UserWarning: old hint", "raised", "not raised"),
    ("new", "softmax.range_and_sum", "cuda float32", "item", "absent", "passed"),
    ("observation", "losses.nll_all_ignored_observed", "cpu float32", "mean of all ignored", "nan", "0.0"),
    ("gone", "losses.nll_sum", "1 item", "behaviour", "1 passed", "absent"),
    ("new", "losses.nll_none", "1 item", "behaviour", "absent", "1 passed"),
}


@pytest.fixture
def runs(tmp_path):
    return write(tmp_path / "old.jsonl", header("2.12.0"), OLD), write(tmp_path / "new.jsonl", header("2.13.0"), NEW)


def test_two_runs_differing_in_each_way_give_exactly_those_rows(runs):
    model = diff.compare(diff.load_side(runs[0]), diff.load_side(runs[1]))
    rows = {(r["kind"], r["behaviour"], r["item"], r["what"], r["old"], r["new"]) for r in model["rows"]}
    assert rows == EXPECTED
    assert len(model["rows"]) == len(EXPECTED)
    for r in model["rows"]:  # each row carries its statement, both torch versions and NEW's repro line
        assert r["statement"] == catalogue.behaviours()[r["behaviour"]].statement
        assert (r["old_torch"], r["new_torch"]) == ("2.12.0", "2.13.0")
        if r["kind"] != "gone":
            assert r["repro_line"].startswith("pytest ") and "--device=" in r["repro_line"]
    assert model["compared"] == 8
    # the weightiest change first: the area with a regression before the one with a fix, ...
    assert [a["name"] for a in model["areas"]] == ["views", "numpy_bridge", "softmax", "losses"]
    # aggregated per behaviour: the worst status on each side, its rows under it
    views = next(b for a in model["areas"] for b in a["behaviours"] if b["behaviour"] == "views.permute_shares")
    assert (views["old_status"], views["new_status"]) == ("expected failure", "failed")
    assert [r["kind"] for r in views["rows"]] == ["regressed", "stale"]
    assert model["headline"].startswith("Regressed (now fails): 1 in 1 behaviour;")


def test_results_from_before_fingerprints_compare_statuses_and_say_so(runs, tmp_path):
    bare = [{k: v for k, v in r.items() if k != "fingerprint"} for r in OLD]
    old = write(tmp_path / "bare.jsonl", header("2.12.0"), bare)
    model = diff.compare(diff.load_side(old), diff.load_side(runs[1]))
    assert {r["kind"] for r in model["rows"]} == {"regressed", "stale", "fixed", "observation", "new", "gone"}
    assert any("The OLD results carry no fingerprints" in note for note in model["notes"])


def test_the_same_run_twice_changes_nothing(runs):
    model = diff.compare(diff.load_side(runs[1]), diff.load_side(runs[1]))
    assert model["rows"] == [] and "Nothing changed in the 10 items" in model["headline"]


def run_diff(*args):
    return subprocess.run([sys.executable, "-m", "reports.diff", *map(str, args)], cwd=ROOT, capture_output=True, text=True)


def test_the_command_writes_a_page_that_answers_what_changed_first_and_a_short_markdown(runs, tmp_path):
    page, md = tmp_path / "out" / "diff.html", tmp_path / "out" / "diff.md"
    done = run_diff(*runs, "--html", page, "--markdown", md)
    assert done.returncode == 0, done.stderr
    html = page.read_text()
    assert html.index('id="what-changed"') < html.index('id="counts"') < html.index('id="area-')
    assert "torch 2.12.0 → 2.13.0" in html and "<script" not in html and html.rstrip().endswith("</html>")
    assert catalogue.behaviours()["views.permute_shares"].statement.split("'")[0] in html
    assert "pytest conformance/test_x.py::test_permute_shares[cpu-float32] --device=cpu" in html
    text = md.read_text()
    assert text.startswith("## Upgrade report: torch 2.12.0 → 2.13.0") and len(text.splitlines()) < 80
    assert "`views.permute_shares` cpu float32: passed (torch 2.12.0) → failed (torch 2.13.0)." in text
    assert not list((tmp_path / "out").glob(".*tmp"))
    printed = run_diff(*runs)  # no output named: the Markdown on standard output
    assert printed.returncode == 0 and printed.stdout == text


def test_report_directories_are_read_whole_and_merged(runs, tmp_path):
    merged = tmp_path / "merged"
    for name, path in (("cpu", runs[1]), ("gpu", runs[1])):
        (merged / name).mkdir(parents=True)
        (merged / name / "results.jsonl").write_text(path.read_text())
    single = tmp_path / "report"
    single.mkdir()
    (single / "results.jsonl").write_text(runs[0].read_text())
    model = diff.compare(diff.load_side(single), diff.load_side(merged))
    assert {(r["kind"], r["behaviour"], r["item"], r["what"], r["old"], r["new"]) for r in model["rows"]} == EXPECTED


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "cannot read"),
        ("", "empty, not a results file"),
        ("not json\n", "line 1 is not JSON"),
        ('{"type": "environment", "end": "x"}\n{"type": "result", "nodeid"', "line 2 is truncated"),
        ('{"type": "result", "nodeid": "n", "status": "passed"}\n', "line 1 is not an environment header"),
        ("directory", "a directory with no results.jsonl"),
    ],
)
def test_a_bad_input_is_a_one_line_error_and_no_output_is_touched(runs, tmp_path, content, problem):
    bad = tmp_path / "bad.jsonl"
    if content == "directory":
        bad.mkdir()
    elif content is not None:
        bad.write_text(content)
    page, md = tmp_path / "diff.html", tmp_path / "diff.md"
    page.write_text("previous page")
    md.write_text("previous summary")
    for old, new in ((runs[0], bad), (bad, runs[1])):
        done = run_diff(old, new, "--html", page, "--markdown", md)
        assert done.returncode == 2, done.stderr
        assert problem in done.stderr and str(bad) in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert page.read_text() == "previous page" and md.read_text() == "previous summary"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_an_output_that_is_an_input_is_refused(runs):
    done = run_diff(*runs, "--markdown", runs[1])
    assert done.returncode == 2 and "is one of the inputs" in done.stderr
    assert runs[1].read_text().startswith('{"type": "environment"')


def test_a_result_is_fingerprinted_by_its_dtypes_not_its_length():
    import torch

    assert describe(torch.ones(2)) == "float32"
    assert describe(torch.ones(2, dtype=torch.int64).split(1)) == "tuple of int64"
    assert describe(torch.ones(3).max(0)) == "(float32, int64)"
    assert describe([torch.ones(1), 2]) == "[float32, int]"
    assert describe(None) == "None" and describe(1.5) == "float"


FINGERPRINTED = """
    import warnings
    import pytest
    import torch
    from hypothesis import given, strategies as st
    from conformance.harness.declaration import Operation
    from strategies.samples import Sample

    HALVES = Operation(
        "throwaway.halves", dtypes="float32_64", samples=st.builds(lambda n: Sample(args=(n,)), st.integers(1, 4)),
        call=lambda n: torch.ones(2).view(n) * 0.5,  # raises RuntimeError unless n == 2
    )

    @HALVES.property
    def test_halves(device, dtype, sample):
        n = sample.args[0]
        if n % 2:
            warnings.warn(f"size {n} is odd", UserWarning)
        if n == 2:
            HALVES(sample, dtype=dtype, device=device)
        else:
            with pytest.raises(RuntimeError):
                HALVES(sample, dtype=dtype, device=device)

    @pytest.mark.behaviour("views.narrow_shares")
    @pytest.mark.parametrize("n", range(2))
    def test_warned_once_per_process(device, n):
        torch.cholesky(torch.eye(2))  # torch warns of it once per process (TORCH_WARN_ONCE)
"""


def test_fingerprints_are_recorded_as_sorted_sets_whatever_order_the_items_ran_in(tmp_path):
    seen = []
    for shuffle in ("1", "2"):
        done = run_throwaway(tmp_path, FINGERPRINTED, "--hypothesis-profile=ci", "--max-examples=20", f"--shuffle-seed={shuffle}")
        assert done.returncode == 0, done.stdout[-2000:]
        _, by_name = throwaway_results(tmp_path)
        seen.append({name: r.get("fingerprint") for name, r in by_name.items()})
    assert seen[0] == seen[1]
    halves = seen[0]["test_halves[cpu-float32]"]
    assert halves == {"result": ["float32", "raises RuntimeError"], "warnings": ["UserWarning: size # is odd"]}
    assert seen[0]["test_halves[cpu-float64]"]["result"] == ["float32", "raises RuntimeError"]
    for n in range(2):  # both items see the once-per-process warning, whichever ran first
        (warning,) = seen[0][f"test_warned_once_per_process[cpu-{n}]"]["warnings"]
        assert warning.startswith("UserWarning: torch.cholesky is deprecated in favor of torch.linalg.cholesky")
        assert "result" not in seen[0][f"test_warned_once_per_process[cpu-{n}]"]


DRAWS = """
    import pytest
    from hypothesis import given, strategies as st

    @pytest.mark.behaviour("views.narrow_shares")
    @given(st.lists(st.integers(), min_size=20, max_size=20), st.text(min_size=3, max_size=3))
    def test_draws(device, numbers, text):
        with open({log!r}, "a") as log:
            print(numbers, repr(text), file=log)
"""
# a module outside the suite, full of constants, loaded before the test draws (as a fault module or
# the repro tracer is, in a worker that ran other items first)
CONSTANTS = "NUMBERS = [{}]\nWORDS = [{}]\n".format(
    ", ".join(str(987_654_321 + 7 * i) for i in range(50)), ", ".join(f"'w{i}z'" for i in range(50))
)


def test_the_examples_do_not_depend_on_which_modules_were_loaded_before(tmp_path):
    """Note [Hypothesis's local constants]: the same item, with and without another local module
    loaded before it, meets the same derandomized examples."""
    (tmp_path / "constants_plugin.py").write_text(CONSTANTS)
    log, seen = tmp_path / "draws.txt", []
    for plugins in ((), ("-p", "constants_plugin")):
        log.write_text("")
        done = run_throwaway(tmp_path, DRAWS.format(log=str(log)), "--hypothesis-profile=ci", plugins=plugins)
        assert done.returncode == 0, done.stdout[-2000:]
        assert "Slow code in plugin" not in done.stdout + done.stderr
        seen.append(log.read_text().splitlines())
    assert len(seen[0]) >= 25 and seen[0] == seen[1]


def test_the_nightly_release_matrix_runs_the_floor_the_pinned_and_a_newer_release():
    """The workflow's `releases` job (the upgrade report's runs) names the floor pyproject.toml
    declares as its oldest and the workflow's TORCH_VERSION as its pinned release."""
    import re

    workflow = (ROOT / ".github" / "workflows" / "conformance.yml").read_text()
    releases = dict(re.findall(r"- release: (\w+)\n\s+torch: \"([\d.]+)\"", workflow))
    floor = re.search(r'"torch>=([\d.]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    pinned = re.search(r'TORCH_VERSION: "([\d.]+)"', workflow).group(1)
    assert set(releases) == {"oldest", "pinned", "newest"}, releases
    assert releases["oldest"].startswith(floor + ".") or releases["oldest"] == floor, (releases, floor)
    assert releases["pinned"] == pinned, (releases, pinned)
    version = lambda v: tuple(int(p) for p in v.split("."))
    assert version(releases["oldest"]) < version(releases["pinned"]) < version(releases["newest"]), releases
