"""Softmax: a probability distribution along `dim`, whatever the other dimensions."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

from strategies import specs


def dims_of(ndim: int):
    return st.integers(-max(ndim, 1), max(ndim, 1) - 1)


@pytest.mark.behaviour("softmax.range_and_sum")
@pytest.mark.dtypes("floating")
@given(x=specs(), data=st.data())
def test_softmax_is_a_distribution_along_dim(device, dtype, x, data):
    dim = data.draw(dims_of(x.ndim), label="dim")
    out = F.softmax(x.build(dtype=dtype, device=device), dim)
    assert out.shape == x.shape and out.dtype == dtype
    assert bool(((out >= 0) & (out <= 1)).all()), "softmax left [0, 1]"
    if x.ndim == 0 or x.shape[dim] > 0:
        sums = out.double().sum(dim) if x.ndim else out.double()
        tol = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2}.get(dtype)
        assert_close(sums, torch.ones_like(sums), rtol=tol or 1e-6, atol=tol or 1e-6)


@pytest.mark.behaviour("softmax.shift_invariant")
@pytest.mark.dtypes("float32_64")
@given(x=specs(), data=st.data())
def test_softmax_ignores_a_constant_along_dim(device, dtype, x, data):
    dim = data.draw(dims_of(x.ndim), label="dim")
    t = x.build(dtype=dtype, device=device)
    shift_shape = tuple(1 if d == dim % max(x.ndim, 1) else s for d, s in enumerate(x.shape))
    shift = specs(shape=shift_shape, low=-20, high=20)
    c = data.draw(shift, label="shift").build(dtype=dtype, device=device)
    assert_close(F.softmax(t + c, dim), F.softmax(t, dim))


@pytest.mark.behaviour("softmax.log_softmax_exp")
# In half precision exp() magnifies the rounding of a log near -10 past the dtype's own
# tolerance, so the identity is only meaningful at float32/float64.
@pytest.mark.dtypes("float32_64")
@given(x=specs(), data=st.data())
def test_log_softmax_exponentiates_to_softmax(device, dtype, x, data):
    dim = data.draw(dims_of(x.ndim), label="dim")
    t = x.build(dtype=dtype, device=device)
    assert_close(F.log_softmax(t, dim).exp(), F.softmax(t, dim))


@pytest.mark.behaviour("softmax.dtype_casts_first")
@pytest.mark.dtypes("floating")
@given(x=specs(), data=st.data())
def test_softmax_dtype_casts_before_computing(device, dtype, x, data):
    dim = data.draw(dims_of(x.ndim), label="dim")
    t = x.build(dtype=dtype, device=device)
    out = F.softmax(t, dim, dtype=torch.float64)
    assert out.dtype == torch.float64
    assert_close(out, F.softmax(t.to(torch.float64), dim))


@pytest.mark.behaviour("softmax.module_matches_functional")
@pytest.mark.dtypes("float32")
@given(x=specs())
def test_softmax_module_equals_functional(device, dtype, x):
    t = x.build(dtype=dtype, device=device)
    for dim in range(-max(x.ndim, 1), max(x.ndim, 1)):
        assert torch.equal(torch.nn.Softmax(dim)(t), F.softmax(t, dim)), f"dim={dim}"
