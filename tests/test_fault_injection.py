"""Each behaviour test fails when torch breaks that behaviour (a quick sample of the fault
catalogue on every CI run; `python -m conformance.faults.killmatrix` runs all of it)."""
import pytest

from conformance.faults import catalogue
from tests.helpers import run_pytest

SAMPLE = [
    "numpy_returns_copy",
    "numpy_copies_strided",
    "from_numpy_copies",
    "view_copies",
    "view_copies_on_incompatible_strides",
    "contiguous_always_copies",
    "transpose_copies_strided",
    "stepped_slice_copies",
]


def failed_ids(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.splitlines() if line.startswith("FAILED ")]


@pytest.mark.parametrize("fault_id", SAMPLE)
def test_fault_is_caught_by_its_behaviour(fault_id):
    fault = catalogue()[fault_id]
    result = run_pytest("-q", "-rf", "--device", "cpu", "--hypothesis-profile", "faults", "-x",
                        "--inject-fault", fault_id, "--behaviour", ",".join(fault.trips))
    assert result.returncode == 1, f"{fault_id} survived:\n{result.stdout[-3000:]}"
    assert failed_ids(result.stdout), result.stdout[-3000:]


def test_stock_torch_passes_the_same_behaviours():
    behaviours = sorted({b for f in SAMPLE for b in catalogue()[f].trips})
    result = run_pytest("-q", "--device", "cpu", "--hypothesis-profile", "ci",
                        "--behaviour", ",".join(behaviours))
    assert result.returncode == 0, result.stdout[-3000:]
