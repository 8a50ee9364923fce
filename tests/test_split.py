"""One run spread over several machines (pytest-split) merges into the report of the unsplit run."""

import subprocess
import sys

from tests.helpers import ROOT, header_and_results, run_pytest

MODULES = ("conformance/test_views.py", "conformance/test_softmax.py", "conformance/test_creation.py")


def _outcomes(path):
    _, results = header_and_results(path)
    return {(r["nodeid"], r["status"]) for r in results}


def test_three_shards_merge_into_the_unsplit_report(tmp_path):
    # one seed for every run: an outcome that depends on the draw (a deviation only some inputs show)
    # must be the same in a shard as in the whole run
    common = ("--hypothesis-profile=quick", "--hypothesis-seed=0", "-p", "no:randomly", *MODULES)
    whole = run_pytest(*common, f"--report-dir={tmp_path / 'whole'}")
    assert whole.returncode == 0, whole.stdout[-2000:]
    shards = []
    for group in (1, 2, 3):
        done = run_pytest(*common, "--splits=3", f"--group={group}", f"--report-dir={tmp_path / str(group)}")
        assert done.returncode == 0, done.stdout[-2000:]
        shards.append(_outcomes(tmp_path / str(group) / "results.jsonl"))
    assert all(shards), "a shard ran nothing"
    assert sum(len(s) for s in shards) == len(set().union(*shards)), "two shards ran the same item"
    assert set().union(*shards) == _outcomes(tmp_path / "whole" / "results.jsonl")
    merged = tmp_path / "merged.html"
    files = [str(tmp_path / str(g) / "results.jsonl") for g in (1, 2, 3)]
    command = [sys.executable, "-m", "reports.merge", *files, "-o", str(merged)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    html = merged.read_text()
    _, results = header_and_results(tmp_path / "whole" / "results.jsonl")
    missing = {r["behaviour"] for r in results} - {b for b in {r["behaviour"] for r in results} if f'id="{b}"' in html}
    assert not missing, f"behaviours of the unsplit run missing from the merged page: {sorted(missing)}"
