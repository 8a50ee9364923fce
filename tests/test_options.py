"""Bad options end in a one-line usage error and a non-zero exit, never a traceback."""

import pytest
import torch

from tests.helpers import run_pytest

BAD = [
    (["--device", "bogus"], "not a torch device string"),
    (["--device", "cpu,nonsense:7"], "not a torch device string"),
    (["--hypothesis-profile", "nope"], "unknown profile"),
    (["--max-examples", "many"], "positive whole number"),
    (["--max-examples", "-1"], "positive whole number"),
    (["--inject-fault", "no_such_fault"], "no such fault"),
]
if not torch.cuda.is_available():
    BAD.append((["--device", "cuda"], "CUDA is not available"))
else:
    BAD.append((["--device", f"cuda:{torch.cuda.device_count()}"], "indices 0.."))


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_option_is_a_one_line_usage_error(tmp_path, args, message):
    (tmp_path / "results.jsonl").write_text("earlier run\n")
    (tmp_path / "index.html").write_text("earlier page")
    result = run_pytest("-q", f"--report-dir={tmp_path}", *args)
    assert (tmp_path / "results.jsonl").read_text() == "earlier run\n"
    assert (tmp_path / "index.html").read_text() == "earlier page"
    assert result.returncode == 4, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_device_appears_in_test_ids_and_k_selects_it():
    result = run_pytest(
        "--collect-only", "-q", "-k", "cpu and float32", "conformance/test_numpy_bridge.py::test_numpy_shares_memory"
    )
    assert "test_numpy_shares_memory[cpu-float32]" in result.stdout, result.stdout
    assert "[cpu-int64]" not in result.stdout


def test_cuda_items_skip_with_a_reason_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the skip path cannot be shown here")
    result = run_pytest(
        "-q", "-rs", "conformance/test_numpy_bridge.py::test_numpy_shares_memory", "--max-examples", "2", "-k", "float32 or cuda"
    )
    assert result.returncode == 0, result.stdout
    assert "CUDA is not available" in result.stdout
    assert "1 passed, 1 skipped" in result.stdout


def test_behaviour_option_selects_by_catalogue_id():
    result = run_pytest("--collect-only", "-q", "--behaviour", "views.permute_shares")
    ids = [line for line in result.stdout.splitlines() if "::" in line]
    # its own test, and the execution modes' items of its declaration (cross-device)
    assert ids and any("test_permute_is_a_view" in line for line in ids), result.stdout
    assert all("test_permute_is_a_view" in line or "[views.permute_shares-" in line for line in ids), result.stdout


def _examples_per_item(*args):
    done = run_pytest(
        "conformance/test_creation.py::test_factories_honour_shape_dtype_device",
        "-p",
        "no:randomly",
        "--hypothesis-verbosity=verbose",
        "-s",
        *args,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    per_item: dict[str, list[str]] = {}
    for case in done.stdout.split("Test case: ")[1:]:
        dtype = next(line for line in case.splitlines() if "dtype=" in line).strip()
        per_item.setdefault(dtype, []).append(next(line for line in case.splitlines() if "Draw 1" in line).strip())
    return per_item


@pytest.mark.parametrize("profile_args", [("--hypothesis-profile=ci",), ("--hypothesis-profile=default", "--hypothesis-seed=7")])
def test_each_item_draws_its_own_examples_and_replays_them(profile_args):
    first, again = _examples_per_item(*profile_args), _examples_per_item(*profile_args)
    assert first == again, "the same items with the same profile and seed drew other examples"
    sequences = [tuple(shapes) for shapes in first.values()]
    assert len(sequences) >= 10 and len(set(sequences)) == len(sequences), "dtype items repeated one sequence"
