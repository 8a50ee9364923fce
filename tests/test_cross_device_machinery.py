"""The cross-device comparison runs on CPU-only machines too, against the meta device, and it
catches a fault that fires on the other device only."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.harness.agreement import Outcome, assert_outcomes_agree, observe
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
    first, second = (observe(operation.call, *sample.build(dtype=dtype, device="cpu"), label=f"run {n}") for n in (1, 2))
    assert_outcomes_agree(first, second, what=operation.behaviour, strides=True, **operation.tolerance("cpu", dtype))


def _outcome(fn, *inputs, label="b"):
    return observe(fn, inputs, {}, label=label)


def _disagree(a: Outcome, b: Outcome, **kwargs) -> str:
    with pytest.raises(AssertionError) as caught:
        assert_outcomes_agree(a, b, what="op", **kwargs)
    return str(caught.value)


def test_the_comparison_names_each_thing_that_differs():
    x = torch.linspace(1, 2, 6)
    same = _outcome(lambda t: (t, t.long()), x.clone())
    assert_outcomes_agree(_outcome(lambda t: (t, t.long()), x.clone(), label="a"), same, what="same")
    assert "differ" in _disagree(_outcome(lambda t: t * 1.001, x.clone(), label="a"), _outcome(lambda t: t * 1, x.clone()))
    assert "elements differ" in _disagree(_outcome(lambda t: t.long() + 1, x, label="a"), _outcome(lambda t: t.long(), x))
    assert "structure" in _disagree(_outcome(lambda t: (t,), x, label="a"), _outcome(lambda t: (t, t), x))
    assert "float64" in _disagree(_outcome(lambda t: t.double(), x, label="a"), _outcome(lambda t: t * 1, x))

    # errors: the same type on both sides agrees; one side raising, or another type, does not
    def raises(kind):
        def fn(t):
            raise kind("no")

        return fn

    assert_outcomes_agree(_outcome(raises(RuntimeError), x, label="a"), _outcome(raises(RuntimeError), x), what="raise")
    assert "raised nothing" in _disagree(_outcome(lambda t: t, x, label="a"), _outcome(raises(RuntimeError), x))
    assert "raised ValueError" in _disagree(_outcome(raises(ValueError), x, label="a"), _outcome(raises(RuntimeError), x))
    # aliasing: an output that is the input's view on one side and a copy on the other
    msg = _disagree(_outcome(lambda t: t.clone(), x.clone(), label="a"), _outcome(lambda t: t.view(-1), x.clone()))
    assert "share memory with inputs ((),) on a, ((0,),) on b" in msg, msg
    msg = _disagree(_outcome(lambda t: (t + 1, t + 1), x, label="a"), _outcome(lambda t: (t + 1,) * 2, x))
    assert "earlier outputs" in msg, msg
    # mutation: an input written on one side only
    msg = _disagree(_outcome(lambda t: t.add_(1).clone(), x.clone(), label="a"), _outcome(lambda t: t + 1, x.clone()))
    assert "input 0 after the call" in msg, msg
    # strides, only when asked for; sizes of 1 carry none
    t = torch.zeros(2, 3)
    transposed, contiguous = _outcome(lambda u: u.t().contiguous().t() + 0, t, label="a"), _outcome(lambda u: u + 0, t)
    assert transposed.leaves[0].stride() == (1, 2)  # elementwise results keep their input's layout
    assert_outcomes_agree(transposed, contiguous, what="strides not documented")
    assert "strides differ" in _disagree(transposed, contiguous, strides=True)
    ones = torch.zeros(1, 3)
    assert_outcomes_agree(
        _outcome(lambda u: u.t().contiguous().t() + 0, ones, label="a"),
        _outcome(lambda u: u + 0, ones),
        what="size 1",
        strides=True,
    )
    # autograd flags
    leaf = torch.ones(3, requires_grad=True)
    msg = _disagree(_outcome(lambda u: u.detach() * 2, leaf, label="a"), _outcome(lambda u: u * 2, leaf))
    assert "require grad" in msg, msg
    # meta: values and memory are not observable, shapes and dtypes are
    m = torch.empty(6, device="meta")
    assert_outcomes_agree(_outcome(lambda u: u.clone(), m, label="meta"), _outcome(lambda u: u.view(-1), x.clone()), what="meta")
    assert "float64" in _disagree(_outcome(lambda u: u.double(), m, label="meta"), _outcome(lambda u: u + 0, x.clone()))
