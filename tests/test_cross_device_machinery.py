"""The cross-device comparison runs on CPU-only machines too, against the meta device, and it
catches a fault that fires on the other device only."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.test_cross_device import CASES, _compare
from tests.helpers import run_pytest

ARGS = ("-q", "--device=meta", "--max-examples=3", "conformance/test_cross_device.py")


def test_cross_device_cases_run_against_meta():
    result = run_pytest(*ARGS)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout


def test_a_device_only_fault_is_caught(tmp_path):
    result = run_pytest(*ARGS, "--inject-fault=softmax_wrong_dtype_off_cpu", "-k", "softmax")
    assert result.returncode == 1, result.stdout[-3000:]


# The value comparison itself runs only beside a real second device; here every case runs twice
# on the CPU, which checks that each is deterministic (a precondition of comparing devices) and
# that its results go through the comparison, and a drifted copy must not.

@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@settings(max_examples=8, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_each_case_agrees_with_itself_on_the_cpu(case, data):
    dtype = data.draw(st.sampled_from(case.dtypes))
    run = case.make(data, dtype)
    _compare(run("cpu"), run("cpu"), "cpu", case.rtol_atol("cpu") if case.rtol_atol else {}, case.behaviour)


def test_a_drift_of_a_tenth_of_a_percent_is_a_disagreement():
    x = torch.linspace(1, 2, 7)
    _compare((x, x.long()), (x, x.long()), "cpu", {}, "same")
    with pytest.raises(AssertionError):
        _compare((x, x.long()), (x * 1.001, x.long()), "cpu", {}, "drift")
    with pytest.raises(AssertionError):
        _compare(x.long(), x.long() + 1, "cpu", {}, "integers")
    with pytest.raises(AssertionError):
        _compare((x, x), (x,), "cpu", {}, "a missing result")
