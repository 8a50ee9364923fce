"""Optimizers: leaves only, zero_grad sets None, one SGD step."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

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
    assert len(torch.optim.SGD([retained], lr=0.1).param_groups[0]["params"]) == 1


@pytest.mark.behaviour("optim.zero_grad_sets_none")
@pytest.mark.dtypes("float32")
@given(x=specs(), set_to_none=st.sampled_from([None, True, False]))
def test_zero_grad_sets_none_by_default(device, dtype, x, set_to_none):
    w = x.build(dtype=dtype, device=device).clone().requires_grad_()
    opt = torch.optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    opt.zero_grad() if set_to_none is None else opt.zero_grad(set_to_none=set_to_none)
    if set_to_none is False:
        assert w.grad is not None and bool((w.grad == 0).all())
    else:
        assert w.grad is None


def after_one_sgd_step(w, lr):
    """w after one SGD step on the loss sum(3 sin w), whose gradient is 3 cos w."""
    w = w.detach().requires_grad_()
    opt = torch.optim.SGD([w], lr=lr)
    (w.sin() * 3).sum().backward()
    opt.step()
    return w.detach()


# Contiguous parameters only, as before this declaration: strided parameters being written
# are the domain issue's to add.
SGD_STEP = Operation(
    "optim.sgd_step",
    dtypes="float32_64",
    samples=st.builds(lambda w, lr: Sample((w, lr)), specs(layouts=WRITABLE_LAYOUTS), st.floats(1e-3, 1.0)),
    call=lambda w, lr: after_one_sgd_step(w, lr),
)


@SGD_STEP.property
def test_one_sgd_step_is_w_minus_lr_grad(device, dtype, sample):
    w, lr = sample.args
    w0 = w.build(dtype=dtype, device=device)
    assert_close(SGD_STEP(sample, dtype=dtype, device=device), w0 - lr * 3 * w0.cos())


@pytest.mark.behaviour("optim.param_group_lr_takes_effect")
@pytest.mark.dtypes("float32_64")
@given(x=specs(layouts=WRITABLE_LAYOUTS), first=st.floats(1e-3, 1.0), second=st.floats(1e-3, 1.0))
def test_a_changed_learning_rate_applies_to_the_next_step(device, dtype, x, first, second):
    w = x.build(dtype=dtype, device=device).requires_grad_()
    opt = torch.optim.SGD([w], lr=first)
    for group in opt.param_groups:
        group["lr"] = second
    w0 = w.detach().clone()
    (w.sin() * 3).sum().backward()
    opt.step()
    assert_close(w.detach(), w0 - second * 3 * w0.cos())
