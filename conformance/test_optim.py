"""Optimizers: leaves only, zero_grad sets None, one SGD step."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks import assert_close_to_reference, independent_array
from conformance.harness.declaration import Operation
from strategies import specs
from strategies.samples import Sample
from strategies.tensors import WRITABLE_LAYOUTS


@pytest.mark.behaviour("optim.rejects_non_leaf")
@pytest.mark.meta_too
@given(shape=st.lists(st.integers(1, 3), max_size=2))
def test_optimizer_rejects_non_leaves(device, shape):
    moved = torch.zeros(shape, requires_grad=True).to(device, torch.float64)  # requires_grad, then move
    with pytest.raises(ValueError, match="non-leaf"):
        torch.optim.SGD([moved], lr=0.1)
    torch.optim.SGD([torch.zeros(shape).to(device).requires_grad_()], lr=0.1)  # move, then requires_grad
    retained = torch.zeros(shape, requires_grad=True).to(device, torch.float64)
    retained.retain_grad()  # a non-leaf that keeps its .grad can be optimized
    accepted = torch.optim.SGD([retained], lr=0.1).param_groups[0]["params"]
    assert len(accepted) == 1 and accepted[0] is retained, "a non-leaf with retain_grad() was not accepted"


@pytest.mark.behaviour("optim.zero_grad_sets_none")
@pytest.mark.dtypes("float32")
@given(x=specs(), set_to_none=st.sampled_from([None, True, False]))
def test_zero_grad_sets_none_by_default(device, dtype, x, set_to_none):
    w = x.build(dtype=dtype, device=device).clone().requires_grad_()
    opt = torch.optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    opt.zero_grad() if set_to_none is None else opt.zero_grad(set_to_none=set_to_none)
    if set_to_none is False:
        assert w.grad is not None and bool((w.grad == 0).all()), "zero_grad(set_to_none=False) did not fill the grads with zeros"
    else:
        assert w.grad is None, "zero_grad() (set_to_none default True) did not set the grads to None"


def after_two_sgd_steps(w, lr, momentum):
    """w after each of two SGD steps on the loss sum(3 sin w), whose gradient is 3 cos w; only lr
    given (every other argument at its default) or lr and momentum (dampening at its default)."""
    w = w.detach().requires_grad_()
    opt = torch.optim.SGD([w], lr=lr) if momentum is None else torch.optim.SGD([w], lr=lr, momentum=momentum)
    after = []
    for _ in range(2):
        opt.zero_grad()
        (w.sin() * 3).sum().backward()
        opt.step()
        after.append(w.detach().clone())
    return tuple(after)


def sgd_reference(w0, lr, momentum):
    """The documented SGD algorithm in float64 (NumPy) for two steps on sum(3 sin w): weight_decay 0,
    dampening 0, nesterov and maximize off; the momentum buffer starts as the first gradient
    ("if t > 1: b_t = mu b_{t-1} + (1 - tau) g_t, else b_t = g_t") and each step is w - lr * b_t."""
    g1 = 3 * np.cos(w0)
    w1 = w0 - lr * g1
    g2 = 3 * np.cos(w1)
    b2 = (momentum or 0.0) * g1 + g2
    return w1, w1 - lr * b2


SGD_STEP = Operation(
    "optim.sgd_step",
    dtypes="float32_64",
    samples=st.builds(
        lambda w, lr, momentum: Sample((w, lr, momentum)),
        specs(layouts=WRITABLE_LAYOUTS),
        st.floats(1e-3, 1.0),
        st.sampled_from([None, 0.5, 0.9]),  # None: momentum omitted, its default 0
    ),
    call=lambda w, lr, momentum: after_two_sgd_steps(w, lr, momentum),
)


@SGD_STEP.property
def test_one_sgd_step_is_w_minus_lr_grad(device, dtype, sample):
    w, lr, momentum = sample.args
    w0 = independent_array(w.logical_values(dtype)).astype(np.float64)
    first, second = SGD_STEP(sample, dtype=dtype, device=device)
    want_first, want_second = sgd_reference(w0, lr, momentum)
    assert first.dtype == second.dtype == dtype, "a step changed the parameter's dtype"
    assert_close_to_reference(first, torch.tensor(want_first), msg=lambda m: f"the first step is not w - lr * grad\n{m}")
    assert_close_to_reference(
        second, torch.tensor(want_second), msg=lambda m: f"the second step is not w - lr * (momentum * b + grad)\n{m}"
    )


@pytest.mark.behaviour("optim.param_group_lr_takes_effect")
@pytest.mark.dtypes("float32_64")
@given(x=specs(layouts=WRITABLE_LAYOUTS), first=st.floats(1e-3, 1.0), second=st.floats(1e-3, 1.0))
def test_a_changed_learning_rate_applies_to_the_next_step(device, dtype, x, first, second):
    w = x.build(dtype=dtype, device=device).requires_grad_()
    opt = torch.optim.SGD([w], lr=first)
    w0 = independent_array(x.logical_values(dtype)).astype(np.float64)
    (w.sin() * 3).sum().backward()
    opt.step()  # a first step at the first lr: the change below comes after the optimizer has run
    w1 = w0 - first * 3 * np.cos(w0)
    assert_close_to_reference(w.detach(), torch.tensor(w1), msg=lambda m: f"the first step is not at the first lr\n{m}")
    for group in opt.param_groups:
        group["lr"] = second
    opt.zero_grad()
    (w.sin() * 3).sum().backward()
    opt.step()
    w2 = w1 - second * 3 * np.cos(w1)
    assert_close_to_reference(w.detach(), torch.tensor(w2), msg=lambda m: f"the step after the change is not at the new lr\n{m}")
