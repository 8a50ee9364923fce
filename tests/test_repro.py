"""Standalone repros (Note [Repros] in conformance/repro/__init__.py): every failing item of a
fault-injected run gets a torch-only script that, in a fresh process, fails the way the test did
with the fault injected and runs to its end on stock torch.

The sample below takes one fault of each kind of check the catalogue holds; the whole catalogue
is measured with `python -m tools.killmatrix --check-scripts` (figures in the README).
"""

import ast
import sys

import pytest

from reports import schema
from tests.helpers import first_failure, run_pytest
from tools import repro

SAMPLE = {
    "softmax_wrong_dim": "numbers against a formula, torch.testing.assert_close",
    "numpy_returns_copy": "NumPy writes through an array the test got from torch",
    "grads_overwrite": "autograd: backward twice, .grad read back",
    "detach_copies": "storage identity",
    "narrow_clamps_negative_start": "a view's values through NumPy, a negative start, a 0-d tensor start",
    "mul_in_place_ignores_a_strided_self": "an in-place write into a strided tensor",
    "nonscalar_backward_sums": "an error that should be raised (pytest.raises)",
    "dropout_ignores_eval": "a module's forward",
    # written from the test's source (conformance/repro/source.py): what the trace cannot write
    "custom_function_output_detached": "a custom autograd.Function the test module defines, a declared call",
    "t_underscore_takes_dims": "a value the test drew from `data` inside a pytest.raises block",
    "cuda_seed_warns_without_cuda": "warnings recorded in a loop over lambdas, a pytest.skip on a branch not taken",
    "grad_scaler_steps_on_inf": "specs drawn from `data` in a loop, ended past the run's draws on stock torch",
    "graph_always_retained": "a table of (call, NumPy reference) pairs",
    "compile_ignores_fullgraph": "a helper that reads the run's options (backends(request.config))",
}
TORCH_ONLY = {"torch", "numpy", *sys.stdlib_module_names}  # torch, NumPy and the standard library


def _failing_items(tmp_path, fault: str) -> list[dict]:
    from conformance.faults import catalogue

    trips = ",".join(catalogue()[fault].trips)
    done = run_pytest(
        "conformance", f"--inject-fault={fault}", f"--behaviour={trips}", "--hypothesis-profile=faults",
        f"--report-dir={tmp_path}", "-p", "no:randomly", "-n", "0", "-q",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:]
    assert "standalone repro (torch only)" in done.stdout  # the failure message prints it
    return [r for r in schema.load(tmp_path / "results.jsonl").results if r["status"] == "failed"]


@pytest.mark.parametrize("fault", sorted(SAMPLE))
def test_each_failing_item_gets_a_script_that_fails_under_the_fault_and_passes_on_stock_torch(tmp_path, fault):
    failing = _failing_items(tmp_path, fault)
    assert failing
    missing = {r["nodeid"]: r.get("repro_missing") for r in failing if not r.get("repro")}
    assert not missing, f"no script for {missing}"
    scripts = {r["nodeid"]: r["repro"] for r in failing}
    for nodeid, script in scripts.items():
        imported = {
            name.split(".")[0]
            for node in ast.walk(ast.parse(script))
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for name in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module])
        }
        assert imported <= TORCH_ONLY, f"{nodeid}: imports {imported - TORCH_ONLY}"
    under_fault = repro.run(scripts, fault=fault)
    on_stock = repro.run(scripts)
    for r in failing:
        assert under_fault[r["nodeid"]]["raised"] == r["repro_fails_with"], (
            r["nodeid"],
            under_fault[r["nodeid"]],
            r["repro"],
        )
        assert on_stock[r["nodeid"]]["raised"] is None, (r["nodeid"], on_stock[r["nodeid"]], r["repro"])


def test_the_runner_refuses_an_unknown_fault_in_one_line():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "tools.repro", "-", "--fault", "no_such_fault"], input="{}", capture_output=True, text=True
    )
    assert done.returncode == 2 and "no such fault: no_such_fault" in done.stderr and "Traceback" not in done.stderr


def test_the_runner_names_a_corrupt_results_file_in_one_line(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "results.jsonl"
    bad.write_text("not json\n")
    done = subprocess.run([sys.executable, "-m", "tools.repro", str(bad)], capture_output=True, text=True)
    assert done.returncode == 2 and "line 1 is not JSON" in done.stderr and "Traceback" not in done.stderr


def test_a_large_generated_input_is_written_as_the_seeded_call_that_made_it():
    import torch

    from conformance.repro.writing import _seeded
    from strategies.tensors import TensorSpec

    drawn = TensorSpec(shape=(10, 10), seed=7)
    t = drawn.build(dtype=torch.float32)
    seed, call = _seeded(t, t.reshape(-1).clone(), [TensorSpec(shape=(3,)), drawn])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        assert eval(call, {"torch": torch}).equal(t)
    # values the test rearranged (a layout that poisons gaps) are no seeded call's: a literal then
    sliced = TensorSpec(shape=(10, 10), layout="sliced", params=(2, 2), seed=7)
    assert _seeded(t, t.reshape(-1).clone(), [sliced]) is None


@pytest.mark.parametrize(
    "fault, case",
    [("compiled_drops_mutation_of_aliased_inputs", "aliased"), ("compiled_dynamic_outputs_column_major", "dynamic")],
)
def test_a_compiled_failure_gets_a_script_that_compiles_the_call_and_compares_with_eager(tmp_path, fault, case):
    """Issue 27: a compiled-mode failure's script is the declaration's call under torch.compile
    with the mode's backend, against eager, on the example's inputs; proven both ways."""
    from conformance.faults import catalogue

    trips = ",".join(catalogue()[fault].trips)
    done = run_pytest(
        "conformance/test_compiled_inputs.py", "--compile=aot_eager", "--device=cpu", f"--inject-fault={fault}",
        f"--behaviour={trips}", "-k", case, "--hypothesis-profile=faults", f"--report-dir={tmp_path}",
        "-p", "no:randomly", "-n", "0", "-q",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:]
    failing = [r for r in schema.load(tmp_path / "results.jsonl").results if r["status"] == "failed"]
    assert failing
    missing = {r["nodeid"]: r.get("repro_missing") for r in failing if not r.get("repro")}
    assert not missing, f"no script for {missing}"
    scripts = {r["nodeid"]: r["repro"] for r in failing}
    for script in scripts.values():
        assert "torch.compile(" in script and "backend='aot_eager'" in script
    under_fault, on_stock = repro.run(scripts, fault=fault), repro.run(scripts)
    for nodeid in scripts:
        assert under_fault[nodeid]["raised"] == "AssertionError", (nodeid, under_fault[nodeid], scripts[nodeid])
        assert on_stock[nodeid]["raised"] is None, (nodeid, on_stock[nodeid], scripts[nodeid])


def _scripts_of_run(tmp_path, *args: str) -> dict[str, dict]:
    done = run_pytest(
        "conformance/test_distributed.py", "--device=cpu", "--hypothesis-profile=faults", f"--report-dir={tmp_path}",
        "-p", "no:randomly", "-n", "0", "-q", *args,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:]
    failing = [r for r in schema.load(tmp_path / "results.jsonl").results if r["status"] == "failed"]
    assert failing
    missing = {r["nodeid"]: r.get("repro_missing") for r in failing if not r.get("repro")}
    assert not missing, f"no script for {missing}"
    return {r["nodeid"]: r for r in failing}


@pytest.mark.parametrize(
    "fault, behaviour, select",
    [
        ("all_reduce_ignores_op", "distributed.all_reduce", "int32"),  # a check of what the ranks sent back
        ("all_reduce_takes_complex_max", "distributed.all_reduce_complex_ops_rejected", "complex64"),  # pytest.raises
        ("sampler_drops_the_padding", "distributed.sampler_partition", ""),  # no ranks: the body from its source
    ],
)
def test_a_distributed_failure_gets_a_script_that_forms_its_own_group(tmp_path, fault, behaviour, select):
    """Issue 27: a distributed test's script forks its own gloo group (so the ranks run the torch
    of the process that runs it: the fault here, stock torch there) and checks what they send
    back as the test did; proven both ways, in fresh processes."""
    import sys

    failing = _scripts_of_run(tmp_path, f"--inject-fault={fault}", f"--behaviour={behaviour}", "-k", select)
    scripts = {nodeid: r["repro"] for nodeid, r in failing.items()}
    for nodeid, script in scripts.items():
        imported = {
            name.split(".")[0]
            for node in ast.walk(ast.parse(script))
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for name in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module])
        }
        assert imported <= TORCH_ONLY | sys.stdlib_module_names, f"{nodeid}: imports {imported - TORCH_ONLY}"
        assert ("run_ranks(" in script) == (fault != "sampler_drops_the_padding"), script
    under_fault, on_stock = repro.run(scripts, fault=fault), repro.run(scripts)
    for nodeid, r in failing.items():
        assert under_fault[nodeid]["raised"] == r["repro_fails_with"], (nodeid, under_fault[nodeid], r["repro"])
        assert on_stock[nodeid]["raised"] is None, (nodeid, on_stock[nodeid], r["repro"])


def test_a_real_distributed_failure_gets_a_script_that_fails_on_stock_torch(tmp_path):
    """Issue 27: a deviation of stock torch (gloo refuses uneven all_gather, which the docs
    support), run without the deviations file, gets a script that fails on stock torch as the test
    did: the ranks raise, and the script's run_ranks raises RankError."""
    empty = tmp_path / "no_deviations.toml"
    empty.write_text("")
    failing = _scripts_of_run(tmp_path, f"--known-deviations={empty}", "--behaviour=distributed.all_gather_uneven")
    scripts = {nodeid: r["repro"] for nodeid, r in failing.items()}
    on_stock = repro.run(scripts)
    for nodeid, r in failing.items():
        assert r["repro_fails_with"] == "RankError", r
        assert on_stock[nodeid]["raised"] == "RankError", (nodeid, on_stock[nodeid], r["repro"])


@pytest.mark.parametrize(
    "test, options",
    [
        # stock torch under torch.compile: an SGD step on a 0-d float64 parameter is lost
        ("test_compiled_agrees_with_eager", ("--compile=aot_eager", "--behaviour=optim.sgd_step", "-k", "float64")),
        # the test device's BatchNorm does not update its running statistics
        (
            "test_device_agrees_with_cpu",
            ("--backend=tests.testdevice", "--device=cpu,testdev", "--behaviour=modules.eval_batchnorm_running_stats"),
        ),
    ],
)  # fmt: skip
def test_a_real_divergence_gets_a_script_that_fails_on_stock_torch_and_fits_one_screen(tmp_path, test, options):
    """Issue 27: the two divergences the suite found, run without the deviations file that marks
    them: each failure carries a script (the backend imported where the run loaded one) that fails
    in a fresh process on stock torch as the test did, and prints in under 80 lines."""
    empty = tmp_path / "no_deviations.toml"
    empty.write_text("")
    module = "conformance/test_compiled.py" if "--compile=aot_eager" in options else "conformance/test_cross_device.py"
    done = run_pytest(module, f"--known-deviations={empty}", f"--report-dir={tmp_path}", "-p", "no:randomly", "-n", "0", *options)
    assert done.returncode == 1, done.stdout[-3000:]
    assert len(first_failure(done.stdout, test)) < 80, "\n".join(first_failure(done.stdout, test))
    failing = [r for r in schema.load(tmp_path / "results.jsonl").results if r["status"] == "failed"]
    assert failing and all(r.get("repro") for r in failing), [r.get("repro_missing") for r in failing]
    scripts = {r["nodeid"]: r["repro"] for r in failing}
    for script in scripts.values():
        assert ("import tests.testdevice" in script) == ("--backend=tests.testdevice" in options), script
    on_stock = repro.run(scripts)
    for r in failing:
        assert on_stock[r["nodeid"]]["raised"] == r["repro_fails_with"] == "AssertionError", (on_stock, r["repro"])
