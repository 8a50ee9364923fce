"""The cross-device comparison runs on CPU-only machines too, against the meta device, and it
catches a fault that fires on the other device only."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.checks import assert_agree
from conformance.harness.declaration import operations
from strategies import DTYPE_GROUPS
from tests.helpers import run_pytest

ARGS = ("-q", "--device=meta", "--max-examples=3", "conformance/test_cross_device.py")


def test_cross_device_cases_run_against_meta():
    result = run_pytest(*ARGS)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout


def test_a_device_only_fault_is_caught(tmp_path):
    result = run_pytest(*ARGS, "--inject-fault=softmax_wrong_dtype_off_cpu", "-k", "softmax")
    assert result.returncode == 1, result.stdout[-3000:]


# The value comparison itself runs only beside a real second device; here every declared
# operation runs twice on the CPU, which checks that each is deterministic (a precondition of
# comparing devices) and that its results go through the comparison, and a drifted copy must not.


@pytest.mark.parametrize("operation", operations(), ids=lambda op: op.behaviour)
@settings(max_examples=8, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_each_operation_agrees_with_itself_on_the_cpu(operation, data):
    dtype = data.draw(st.sampled_from(DTYPE_GROUPS[operation.dtypes]))
    sample = data.draw(operation.samples_for(dtype))
    assert_agree(
        operation(sample, dtype=dtype, device="cpu"),
        operation(sample, dtype=dtype, device="cpu"),
        device="cpu",
        what=operation.behaviour,
        **operation.tolerance("cpu", dtype),
    )


def test_a_drift_of_a_tenth_of_a_percent_is_a_disagreement():
    x = torch.linspace(1, 2, 7)
    assert_agree((x, x.long()), (x, x.long()), device="cpu", what="same")
    with pytest.raises(AssertionError):
        assert_agree((x * 1.001, x.long()), (x, x.long()), device="cpu", what="drift")
    with pytest.raises(AssertionError):
        assert_agree(x.long() + 1, x.long(), device="cpu", what="integers")
    with pytest.raises(AssertionError):
        assert_agree((x,), (x, x), device="cpu", what="a missing result")
