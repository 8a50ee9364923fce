"""The report stage: results.jsonl as the run goes, a whole index.html, merging, escaping."""

import json
import re
import shlex
import subprocess
import sys

import pytest

from reports import render, schema
from tests.helpers import ROOT, header_and_results, run_pytest

ONE = "conformance/test_views.py::test_permute_is_a_view"


@pytest.fixture(scope="module")
def parallel_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    result = run_pytest(
        "-q",
        "-n",
        "2",
        f"--report-dir={out}",
        "--max-examples",
        "3",
        "--behaviour",
        "views.permute_shares,numpy_bridge.numpy_non_cpu_raises",
        f"--junitxml={out / 'junit.xml'}",
    )
    assert result.returncode == 0, result.stdout[-2000:]
    return out, result


def test_xdist_run_writes_results_and_a_whole_page(parallel_run):
    out, result = parallel_run
    header, results = header_and_results(out / "results.jsonl")
    assert header["type"] == "environment" and header["end"] and header["torch"]
    assert {"python", "numpy", "hypothesis", "profile", "seed", "command", "start", "gpus"} <= set(header)
    assert all(r["worker"].startswith("gw") for r in results)
    passed = [r for r in results if r["status"] == "passed"]
    generated = [r for r in passed if "examples" in r]  # a plain test (the meta refusal) draws nothing
    assert generated and all(r["examples"] >= 1 and r["features"] for r in generated)
    assert {r["status"] for r in results} <= {"passed", "skipped"}
    assert all(r.get("reason") for r in results if r["status"] == "skipped")
    html = (out / "index.html").read_text()
    assert html.rstrip().endswith("</html>") and "views.permute_shares" in html
    assert str(out / "index.html") in result.stdout
    assert (out / "junit.xml").read_text().count("<testcase") == len(results)
    assert not list(out.glob(".*tmp"))


def test_failures_carry_example_and_repro(tmp_path):
    result = run_pytest(
        "-q",
        f"--report-dir={tmp_path}",
        "--device",
        "cpu",
        "--hypothesis-profile",
        "ci",
        "--inject-fault",
        "permute_copies",
        "--behaviour",
        "views.permute_shares",
        "-k",
        "float32",
    )
    assert result.returncode == 1
    _, results = header_and_results(tmp_path / "results.jsonl")
    (failure,) = results
    # a copy where a view is due: its strides or its storage give it away, whichever is checked first
    assert failure["status"] == "failed" and ("storage" in failure["error"] or "strides" in failure["error"])
    assert "TensorSpec(" in failure["example"] and failure["blob"].startswith("@reproduce_failure(")
    assert failure["repro_line"].startswith(f"pytest '{ONE}[cpu-float32]'")
    assert failure["examples_to_failure"] >= 1
    assert "pytest &#39;" in (tmp_path / "index.html").read_text()


def write_results(path, records, header=None):
    header = header or {"type": "environment", "source": "synthetic", "devices": ["cpu"], "end": "x"}
    path.write_text("\n".join(json.dumps(r) for r in [header, *records]) + "\n")


def test_hostile_content_renders_as_text(tmp_path):
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>" + "A" * 20000 + "\udcff"
    write_results(
        tmp_path / "r.jsonl",
        [
            {
                "type": "result",
                "nodeid": evil[:60],
                "behaviour": "views.permute_shares",
                "device": "cpu",
                "dtype": "<b>float32</b>",
                "status": "failed",
                "error": evil,
                "example": evil,
                "repro_line": evil,
                "repro": evil,
            }
        ],
    )
    html = render.render([schema.load(tmp_path / "r.jsonl")])
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    render.write_html([tmp_path / "r.jsonl"], tmp_path / "index.html")  # the lone surrogate is writable
    assert "&lt;script&gt;alert(1)" in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_merge_renders_one_page_with_a_column_group_per_source(tmp_path):
    record = {
        "type": "result",
        "nodeid": "n",
        "behaviour": "views.permute_shares",
        "device": "cpu",
        "dtype": "float32",
        "status": "passed",
    }
    write_results(tmp_path / "a.jsonl", [record], {"type": "environment", "source": "cpu-box", "devices": ["cpu"], "end": "x"})
    write_results(
        tmp_path / "b.jsonl",
        [{**record, "device": "cuda", "status": "failed"}],
        {"type": "environment", "source": "gpu-box", "devices": ["cpu", "cuda"], "end": "x"},
    )
    out = tmp_path / "merged" / "index.html"
    done = subprocess.run(
        [sys.executable, "-m", "reports.merge", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    assert "cpu-box" in html and "gpu-box" in html and 'data-device="cuda"' in html


@pytest.mark.parametrize(
    "content, problem",
    [
        ('{"type": "environment", "end": "2026-01-01T00:00:00+00:00"}\n{"type": "result", "nodeid"', "line 2 is truncated"),
        ("not json at all\n", "line 1 is not JSON"),
        ('{"type": "result", "nodeid": "n", "status": "passed"}\n', "not an environment header"),
        ("", "empty"),
        ('{"type": "environment"}\n{"type": "result", "nodeid": "n", "status": "weird"}\n', "not a result record"),
    ],
)
def test_corrupt_results_are_a_one_line_error_and_nothing_is_written(tmp_path, content, problem):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    good = tmp_path / "good.jsonl"
    write_results(good, [])
    out = tmp_path / "index.html"
    out.write_text("previous report")
    done = subprocess.run(
        [sys.executable, "-m", "reports.merge", str(good), str(bad), "-o", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 2 and problem in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert out.read_text() == "previous report"


def test_known_deviations_become_expected_failures_or_stale(tmp_path):
    deviations = tmp_path / "dev.toml"
    deviations.write_text(
        '[[deviation]]\nbehaviour = "views.permute_shares"\ndtype = "float32"\ntorch = ">=2.0"\nreason = "copies on this build"\n'
    )
    args = (
        "-q",
        "--device",
        "cpu",
        "--max-examples",
        "3",
        "--behaviour",
        "views.permute_shares",
        "-k",
        "float32 or int64",
        f"--known-deviations={deviations}",
    )
    broken = run_pytest(
        *args, f"--report-dir={tmp_path / 'a'}", "--hypothesis-profile", "faults", "--inject-fault", "permute_copies"
    )
    _, results = header_and_results(tmp_path / "a" / "results.jsonl")
    statuses = {r["dtype"]: r["status"] for r in results}
    assert statuses == {"float32": "expected failure", "int64": "failed"}, broken.stdout[-2000:]
    run_pytest(*args, f"--report-dir={tmp_path / 'b'}")
    _, results = header_and_results(tmp_path / "b" / "results.jsonl")
    stale = [r for r in results if r.get("stale_deviation")]
    assert [r["dtype"] for r in stale] == ["float32"]


@pytest.mark.parametrize(
    "content, problem",
    [
        ("[[deviation]]\nreason = 'x'\n", "needs a non-empty 'behaviour'"),
        ("[[deviation]]\nbehaviour = 'no.such'\nreason = 'x'\n", "unknown behaviour"),
        ("[[deviation]]\nbehaviour = 'views.permute_shares'\nreason = 'x'\ntorch = 'soon'\n", "not a version"),
        ("this is = = not toml", "not valid TOML"),
    ],
)
def test_malformed_deviations_file_is_a_usage_error(tmp_path, content, problem):
    path = tmp_path / "dev.toml"
    path.write_text(content)
    result = run_pytest("--collect-only", "-q", f"--known-deviations={path}")
    assert result.returncode == 4 and problem in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_unwritable_report_dir_is_a_usage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_pytest("-q", f"--report-dir={blocker / 'sub'}", "--behaviour", "views.permute_shares")
    assert result.returncode == 4 and "not writable" in result.stderr


def test_the_page_shows_each_statement_with_its_quote_and_marks_observed_behaviour(tmp_path):
    from conformance import catalogue

    quoted = catalogue.behaviours()["reductions.max_dim_values_indices"]
    observed = catalogue.behaviours()["losses.nll_all_ignored_observed"]
    header = {"type": "environment", "source": "t", "devices": ["cpu"], "end": "x", "torch": "2.13.0"}
    (tmp_path / "r.jsonl").write_text(json.dumps(header) + "\n")
    html = render.render([schema.load(tmp_path / "r.jsonl")])
    assert quoted.quote and "indices of the first maximal value are returned" in html
    assert observed.kind == "observed" and "observed behaviour, not a documented promise" in html


def test_a_run_killed_while_writing_keeps_its_finished_lines_readable(tmp_path):
    from reports import schema

    killed = tmp_path / "killed.jsonl"
    whole = '{"type": "result", "nodeid": "t[cpu]", "status": "passed", "behaviour": "softmax.range_and_sum"}\n'
    killed.write_text('{"type": "environment", "end": null}\n' + whole + '{"type": "result", "nodeid": "u[')
    source = schema.load(killed)
    assert [r["nodeid"] for r in source.results] == ["t[cpu]"] and source.incomplete


def test_the_repro_line_of_a_failing_item_replays_it_in_a_fresh_process(tmp_path):
    done = run_pytest(
        "conformance/test_softmax.py",
        "-k",
        "distribution",
        "-p",
        "no:randomly",
        "--inject-fault=softmax_naive_exp",
        "--max-examples=9",
        "--hypothesis-profile=default",
        "-n",
        "2",
        f"--report-dir={tmp_path / 'first'}",
    )
    assert done.returncode == 1, done.stdout[-2000:]
    _, results = header_and_results(tmp_path / "first" / "results.jsonl")
    failed = next(r for r in results if r["status"] == "failed")
    for needed in ("-p no:randomly", "--inject-fault=softmax_naive_exp", "--max-examples=9", "--hypothesis-seed="):
        assert needed in failed["repro_line"], failed["repro_line"]
    line = failed["repro_line"]
    assert " -k " not in line and " -n " not in line and "--report-dir" not in line
    command = shlex.split(failed["repro_line"])
    assert command[0] == "pytest"
    again = run_pytest(*command[1:], f"--report-dir={tmp_path / 'again'}")
    assert again.returncode == 1, again.stdout[-2000:]
    _, replayed = header_and_results(tmp_path / "again" / "results.jsonl")
    assert [(r["nodeid"], r["status"], r["error"], r["example"]) for r in replayed] == [
        (failed["nodeid"], "failed", failed["error"], failed["example"])
    ]


def test_the_report_flags_a_declared_input_class_that_was_never_reached(tmp_path):
    record = {
        "type": "result",
        "nodeid": "conformance/test_views.py::test_narrow_is_a_view[cpu-float32]",
        "behaviour": "views.narrow_shares",
        "device": "cpu",
        "dtype": "float32",
        "status": "passed",
        "examples": 25,
        "features": {"dim>=0": 25},
    }
    write_results(tmp_path / "r.jsonl", [record])
    html = render.render([schema.load(tmp_path / "r.jsonl")])
    assert "dim&gt;=0 ✓" in html and "dim&lt;0 never reached" in html


def test_results_written_before_the_script_was_called_a_repro_still_load(tmp_path):
    """Older files called the script `snippet` and the repro line `repro`: read under today's names."""
    old = {"type": "result", "nodeid": "t", "behaviour": "views.permute_shares", "status": "failed"}
    old |= {"repro": "pytest t", "snippet": "import torch", "snippet_fails_with": "AssertionError"}
    missing = {"type": "result", "nodeid": "u", "status": "failed", "repro": "pytest u", "snippet_missing": "why"}
    new = {"type": "result", "nodeid": "v", "status": "failed", "repro_line": "pytest v", "repro": "import torch"}
    lines = [{"type": "environment", "source": "old", "end": "x"}, old, missing, new]
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    first, second, third = schema.load(tmp_path / "r.jsonl").results
    assert (first["repro_line"], first["repro"], first["repro_fails_with"]) == ("pytest t", "import torch", "AssertionError")
    assert "snippet" not in first and (second["repro_line"], second["repro_missing"]) == ("pytest u", "why")
    assert third == new


def test_the_matrix_says_how_many_behaviours_each_mode_covered_per_area(tmp_path):
    def record(behaviour, mode, status):
        return {
            "type": "result",
            "nodeid": f"{behaviour}-{mode}",
            "behaviour": behaviour,
            "device": "cpu",
            "dtype": "float32",
            "mode": mode,
            "status": status,
        }

    results = [
        record("views.permute_shares", "eager", "passed"),
        record("views.transpose_shares", "eager", "failed"),
        record("views.permute_shares", "compiled", "passed"),
        record("views.transpose_shares", "compiled", "skipped"),  # skipped: not covered
    ]
    write_results(tmp_path / "r.jsonl", results, {"type": "environment", "source": "box", "devices": ["cpu"], "end": "x"})
    page = render.build([schema.load(tmp_path / "r.jsonl")])
    views = next(row for row in page["matrix"] if row["name"] == "views")
    by_column = dict(zip(page["matrix_columns"], views["cells"]))
    total = len(next(a for a in page["areas"] if a["name"] == "views")["behaviours"])
    assert by_column["cpu"]["covered"] == f"2 of {total}"
    assert by_column["cpu [compiled]"]["covered"] == f"1 of {total}"


def test_a_real_failure_offers_an_issue_ready_markdown_block_and_a_fault_does_not(tmp_path):
    """Issue 27: under each real failure with a proven script, one Markdown block for a PyTorch
    issue: statement, quote and link, script, observed and expected, environment."""
    failed = {
        "type": "result", "nodeid": "n", "behaviour": "views.permute_shares", "device": "testdev", "dtype": "float32",
        "mode": "cross-device", "status": "failed", "error": "AssertionError: outputs share memory with inputs",
        "repro": "import torch\nassert False\n", "repro_fails_with": "AssertionError", "repro_line": "pytest x",
    }  # fmt: skip
    header = {
        "type": "environment", "source": "box", "devices": ["cpu", "testdev"], "end": "x", "torch": "2.13.0+cpu",
        "python": "3.11.7", "platform": "Linux-x",
        "backends": [{"module": "tests.testdevice", "version": "0.1", "device": "testdev"}],
    }  # fmt: skip
    write_results(tmp_path / "real.jsonl", [failed], header)
    write_results(tmp_path / "fault.jsonl", [failed], {**header, "fault": "some_fault"})
    behaviour = catalogue_behaviour("views.permute_shares")
    real = render.build([schema.load(tmp_path / "real.jsonl")])
    block = next(f for a in real["areas"] for b in a["behaviours"] for f in b["failures"])["issue"]
    expected = (
        behaviour.statement, behaviour.doc, "```python\nimport torch\nassert False\n```", "outputs share memory",
        "PyTorch version: 2.13.0+cpu", "tests.testdevice 0.1", "Python version: 3.11.7", "views.permute_shares",
    )  # fmt: skip
    for part in expected:
        assert part in block, part
    faulty = render.build([schema.load(tmp_path / "fault.jsonl")])
    assert all(f["issue"] is None for a in faulty["areas"] for b in a["behaviours"] for f in b["failures"])
    assert "Issue-ready Markdown" in render.render([schema.load(tmp_path / "real.jsonl")])


def catalogue_behaviour(behaviour_id):
    from conformance import catalogue

    return catalogue.behaviours()[behaviour_id]


def test_a_cuda_only_behaviour_that_never_ran_is_shown_as_not_run_needs_cuda(tmp_path):
    """Issue 30: the catalogue's CUDA-only behaviours (needs = "cuda") whose items were all skipped
    are listed as "not run: needs CUDA", never as a pass; one whose CUDA item ran is shown as usual."""
    from conformance import catalogue

    def record(behaviour, device, status):
        reason = {"skipped": "CUDA is not available (torch 2.13.0, CUDA build: none)"}.get(status)
        return {
            "type": "result",
            "nodeid": f"{behaviour}[{device}]",
            "behaviour": behaviour,
            "device": device,
            "status": status,
            "reason": reason,
        }

    needs_cuda = sorted(b.id for b in catalogue.behaviours().values() if b.needs == "cuda")
    assert "devices.cuda_current_index" in needs_cuda and "devices.get_device" not in needs_cuda
    header = {"type": "environment", "source": "cpu box", "devices": ["cpu", "cuda"], "end": "x"}
    results = [record(b, d, "skipped") for b in needs_cuda for d in ("cpu", "cuda")]
    results += [record("devices.get_device", "cpu", "passed"), record("devices.get_device", "cuda", "skipped")]
    write_results(tmp_path / "cpu.jsonl", results, header)
    page = render.build([schema.load(tmp_path / "cpu.jsonl")])
    assert sorted(item["b"].id for item in page["not_run"]) == needs_cuda
    assert all(item["status"] == "not run" and item["needs"] == "not run: needs CUDA" for item in page["not_run"])
    row = next(r for r in page["summary"] if r["device"] == "cuda")
    assert dict(row["counts"]).get("passed") is None, "a skipped CUDA item counted as a pass"
    assert page["verdict"][1].endswith(f"{len(needs_cuda)} CUDA-only behaviours not run: needs CUDA.")
    html = render.render([schema.load(tmp_path / "cpu.jsonl")])
    assert html.count("not run: needs CUDA") >= 2 * len(needs_cuda)  # the list and each behaviour's own line
    # on a GPU machine the same behaviour ran: no longer listed, shown with its status
    gpu = [record("devices.cuda_current_index", "cuda", "passed"), record("devices.cuda_current_index", "cpu", "skipped")]
    write_results(tmp_path / "gpu.jsonl", gpu, {**header, "source": "gpu box"})
    page = render.build([schema.load(tmp_path / "gpu.jsonl")])
    assert "devices.cuda_current_index" not in [item["b"].id for item in page["not_run"]]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the report of a run on a machine without CUDA")
def test_a_run_without_cuda_reports_the_cuda_only_behaviours_as_not_run(tmp_path):
    result = run_pytest(
        "-q", f"--report-dir={tmp_path}", "--behaviour", "devices.cuda_current_index,devices.get_device", "-p", "no:randomly"
    )
    assert result.returncode == 0, result.stdout[-2000:]
    _, results = header_and_results(tmp_path / "results.jsonl")
    cuda_only = [r for r in results if r["behaviour"] == "devices.cuda_current_index"]
    assert cuda_only and all(r["status"] == "skipped" and r["reason"] for r in cuda_only)
    html = (tmp_path / "index.html").read_text()
    listed = html.split('id="not-run-needs"')[1].split("</ul>")[0]
    assert "devices.cuda_current_index" in listed and "devices.get_device" not in listed
    assert re.search(r"\d+ CUDA-only behaviours? not run: needs CUDA\.", html)
