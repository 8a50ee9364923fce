"""Optimizers: leaves only, zero_grad sets None, one SGD step."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

from strategies import specs


@pytest.mark.behaviour("optim.rejects_non_leaf")
@pytest.mark.meta_too
@given(shape=st.lists(st.integers(1, 3), max_size=2))
def test_optimizer_rejects_non_leaves(device, shape):
    moved = torch.zeros(shape, requires_grad=True).to(device, torch.float64)  # requires_grad, then move
    with pytest.raises(ValueError, match="non-leaf"):
        torch.optim.SGD([moved], lr=0.1)
    torch.optim.SGD([torch.zeros(shape).to(device).requires_grad_()], lr=0.1)  # move, then requires_grad


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


@pytest.mark.behaviour("optim.sgd_step")
@pytest.mark.dtypes("float32_64")
@given(x=specs(layouts=("contiguous",)), lr=st.floats(1e-3, 1.0))
def test_one_sgd_step_is_w_minus_lr_grad(device, dtype, x, lr):
    w = x.build(dtype=dtype, device=device).requires_grad_()
    opt = torch.optim.SGD([w], lr=lr)
    (w.sin() * 3).sum().backward()
    expected = w.detach() - lr * w.grad
    opt.step()
    assert_close(w.detach(), expected)
