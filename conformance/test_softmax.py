"""Softmax: a probability distribution along `dim`, whatever the other dimensions."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

from conformance.checks import assert_equal
from conformance.harness.declaration import Operation
from conformance.tolerances import tolerance
from strategies import specs
from strategies.samples import dims, tensor_and_dim

SOFTMAX = Operation("softmax.range_and_sum", dtypes="floating", samples=tensor_and_dim(), call=lambda x, dim: F.softmax(x, dim))
LOG_SOFTMAX = Operation(
    "softmax.log_softmax_exp", dtypes="float32_64", samples=tensor_and_dim(), call=lambda x, dim: F.log_softmax(x, dim)
)
SOFTMAX_IN_FLOAT64 = Operation(
    "softmax.dtype_casts_first",
    dtypes="floating",
    samples=tensor_and_dim(),
    call=lambda x, dim: F.softmax(x, dim, dtype=torch.float64),
)


@SOFTMAX.property
def test_softmax_is_a_distribution_along_dim(device, dtype, sample):
    out = SOFTMAX(sample, dtype=dtype, device=device)
    x, dim = sample.args
    assert out.shape == x.shape and out.dtype == dtype
    assert bool(((out >= 0) & (out <= 1)).all()), "softmax left [0, 1]"
    if x.ndim == 0 or x.shape[dim] > 0:
        sums = out.double().sum(dim) if x.ndim else out.double()
        assert_close(sums, torch.ones_like(sums), **tolerance("probability_sum", dtype))


@pytest.mark.behaviour("softmax.shift_invariant")
@pytest.mark.dtypes("float32_64")
@given(x=specs(), data=st.data())
def test_softmax_ignores_a_constant_along_dim(device, dtype, x, data):
    dim = data.draw(dims(x.ndim), label="dim")
    t = x.build(dtype=dtype, device=device)
    shift_shape = tuple(1 if d == dim % max(x.ndim, 1) else s for d, s in enumerate(x.shape))
    shift = specs(shape=shift_shape, low=-20, high=20)
    c = data.draw(shift, label="shift").build(dtype=dtype, device=device)
    assert_close(F.softmax(t + c, dim), F.softmax(t, dim))


# LOG_SOFTMAX is float32/float64 only: in half precision exp() magnifies the rounding of a log
# near -10 past the dtype's own tolerance, so the identity is only meaningful there.
@LOG_SOFTMAX.property
def test_log_softmax_exponentiates_to_softmax(device, dtype, sample):
    x, dim = sample.args
    out = LOG_SOFTMAX(sample, dtype=dtype, device=device)
    assert_close(out.exp(), F.softmax(x.build(dtype=dtype, device=device), dim))


@SOFTMAX_IN_FLOAT64.property
def test_softmax_dtype_casts_before_computing(device, dtype, sample):
    x, dim = sample.args
    out = SOFTMAX_IN_FLOAT64(sample, dtype=dtype, device=device)
    assert out.dtype == torch.float64
    assert_close(out, F.softmax(x.build(dtype=dtype, device=device).to(torch.float64), dim))


@pytest.mark.behaviour("softmax.module_matches_functional")
@pytest.mark.dtypes("float32")
@given(x=specs())
def test_softmax_module_equals_functional(device, dtype, x):
    t = x.build(dtype=dtype, device=device)
    for dim in range(-max(x.ndim, 1), max(x.ndim, 1)):
        assert_equal(torch.nn.Softmax(dim)(t), F.softmax(t, dim), f"dim={dim}")
