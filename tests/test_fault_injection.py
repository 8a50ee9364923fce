"""Every behaviour test fails when torch breaks that behaviour: a sample of the fault catalogue,
one or more per area, runs on every CI run (the full catalogue: python -m
tools.killmatrix, documented in the README)."""

import json
import os
import subprocess
import sys

from conformance import catalogue
from conformance.faults import catalogue as faults
from tests.helpers import ROOT, run_pytest

SAMPLE = [
    "numpy_returns_copy",
    "numpy_copies_strided",
    "view_copies_on_incompatible_strides",
    "transpose_copies_strided",
    "softmax_wrong_dim",
    "nll_mean_by_weight_sum",
    "cat_no_promotion",
    "rand_closed_interval",
    "repeat_interleaves",
    "argmax_last_on_ties",
    "mean_is_sum",
    "mul_half_drift",
    "negative_step_flips",
    "pdist_includes_diagonal",
    "to_dtype_makes_leaf",
    "hooks_not_run",
    "to_device_drops_dtype",
    "state_dict_copies",
    "zero_grad_zeroes",
    "collate_dicts_as_list",
    "promotion_ignores_zero_dim_priority",
    "load_copies_every_tensor",
    "round_half_away_from_zero",
    "compile_ignores_disable",
    "all_reduce_ignores_op",  # starts a gloo rank pool: the distributed area in the sample too
    "deterministic_put_runs_anyway",  # the cuda area's faults that fire on the CPU
]


def test_sample_covers_every_area():
    areas = {b.split(".")[0] for f in SAMPLE for b in faults()[f].trips}
    assert areas == {a.name for a in catalogue.areas()}


def test_every_behaviour_has_a_fault():
    tripped = {b for f in faults().values() for b in f.trips}
    missing = set(catalogue.behaviours()) - tripped
    assert not missing, f"behaviours no catalogued fault breaks: {sorted(missing)}"


def test_sampled_faults_are_killed_by_their_behaviours(tmp_path):
    out = tmp_path / "kill.json"
    done = subprocess.run(
        [sys.executable, "-m", "tools.killmatrix", "--faults", ",".join(SAMPLE), "--device", "cpu", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    results = json.loads(out.read_text())["results"]
    survivors = [r["fault"] for r in results if r["status"] == "survived"]
    assert not survivors and done.returncode == 0, done.stdout
    for r in results:
        assert set(r["killed_by"]) <= set(r["trips"]) and r["killed_by"], r
        assert r["errors"] == 0, f"{r['fault']}: caught by errors, not by a failing behaviour test"


def test_stock_torch_passes_the_sampled_behaviours():
    behaviours = sorted({b for f in SAMPLE for b in faults()[f].trips})
    result = run_pytest(
        "-q", "--device", "cpu", "--hypothesis-profile", "faults", "--no-report", "--behaviour", ",".join(behaviours)
    )
    assert result.returncode == 0, result.stdout[-3000:]


LATER_SESSION = """
from conformance.faults import catalogue
from tools.killmatrix import run_fault
run_fault(catalogue()["numpy_returns_copy"], "trips", ["cpu"])  # imports every test module
later = run_fault(catalogue()["softmax_wrong_dtype_off_cpu"], "trips", ["cpu"])
print(*later["failing_tests"], sep="\\n")
"""


def test_a_later_in_process_session_sees_its_fault():
    """The kill matrix runs one session per fault in one process, importing the test modules
    once: declarations look torch up when they run, so a fault installed later is seen."""
    done = subprocess.run(
        [sys.executable, "-c", LATER_SESSION],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "test_cross_device.py::test_device_agrees_with_cpu[softmax.range_and_sum-meta-" in done.stdout, done.stdout
