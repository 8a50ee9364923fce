"""Reductions and elementwise: max/argmax, sum and mean dtypes, clamp, nonzero, where, item."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch.testing import assert_close

from conformance.checks import assert_close_to_reference, independent_array
from strategies import specs
from strategies.shapes import shapes

# Small integer ranges make ties common: tie-breaking bugs only show on ties.
TIES = dict(low=-2, high=2)


@pytest.mark.behaviour("reductions.max_dim_values_indices")
@pytest.mark.dtypes("real")
@given(x=specs(shapes=shapes(min_dims=1, min_side=1), **TIES), data=st.data(), keepdim=st.booleans())
def test_max_along_dim_returns_values_and_indices(device, dtype, x, data, keepdim):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1), label="dim")
    t = x.build(dtype=dtype, device=device)
    values, indices = torch.max(t, dim, keepdim=keepdim)
    assert indices.dtype == torch.int64
    assert torch.equal(values, t.amax(dim, keepdim=keepdim))
    gathered = t.gather(dim, indices if keepdim else indices.unsqueeze(dim))
    assert torch.equal(gathered if keepdim else gathered.squeeze(dim), values)


@pytest.mark.behaviour("reductions.argmax_first_on_ties")
@pytest.mark.dtypes("real")
@given(x=specs(shapes=shapes(min_dims=1, min_side=1), **TIES), data=st.data())
def test_argmax_picks_the_first_maximum(device, dtype, x, data):
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1), label="dim")
    t = x.build(dtype=dtype, device=device)
    a = independent_array(t.cpu())
    expected = np.argmax(a, axis=dim)  # NumPy documents first-occurrence too
    np.testing.assert_array_equal(independent_array(torch.argmax(t, dim).cpu()), expected)
    assert torch.argmax(t).item() == int(np.argmax(a))


@pytest.mark.behaviour("reductions.sum_promotes_integral")
@pytest.mark.dtypes("integral")
@given(x=specs())
def test_sum_of_integers_is_int64(device, dtype, x):
    t = x.build(dtype=dtype, device=device)
    out = t.sum()
    assert out.dtype == torch.int64 and t.bool().sum().dtype == torch.int64
    assert out.item() == sum(int(v) for v in t.flatten().tolist())


@pytest.mark.behaviour("reductions.mean_integral_raises")
@pytest.mark.dtypes("integral")
@given(x=specs())
def test_mean_of_integers_raises(device, dtype, x):
    with pytest.raises(RuntimeError):
        x.build(dtype=dtype, device=device).mean()


@pytest.mark.behaviour("reductions.mean_is_sum_over_numel")
@pytest.mark.dtypes("floating")
@given(x=specs(shapes=shapes(min_side=1)))
def test_mean_is_sum_over_numel(device, dtype, x):
    t = x.build(dtype=dtype, device=device)
    reference = t.cpu().double().sum() / x.numel
    assert_close_to_reference(t.mean(), reference)


@pytest.mark.behaviour("reductions.clamp_matches_clip")
@pytest.mark.dtypes("real")
@given(x=specs(low=-9, high=9), bounds=st.tuples(st.integers(-9, 9), st.integers(-9, 9)))
def test_clamp_is_numpy_clip(device, dtype, x, bounds):
    lo, hi = (abs(b) for b in bounds) if dtype == torch.uint8 else bounds
    t = x.build(dtype=dtype, device=device)
    out = torch.clamp(t, lo, hi)
    if lo <= hi:
        expected = np.clip(independent_array(t.cpu()), lo, hi)
        np.testing.assert_array_equal(independent_array(out.cpu()), expected)
    else:
        assert bool((out == hi).all()), "min > max must set every element to max"


@pytest.mark.behaviour("reductions.nonzero_shape")
@pytest.mark.dtypes("representative")
@given(x=specs(**TIES))
def test_nonzero_returns_one_row_per_element(device, dtype, x):
    t = x.build(dtype=dtype, device=device)
    out = torch.nonzero(t)
    expected = np.argwhere(independent_array(t.cpu()))
    assert out.dtype == torch.int64 and tuple(out.shape) == (expected.shape[0], x.ndim)
    np.testing.assert_array_equal(independent_array(out.cpu()).reshape(expected.shape), expected)
    parts = torch.nonzero(t, as_tuple=True)
    assert len(parts) == max(x.ndim, 1) if x.ndim else len(parts) == 1
    if x.ndim:
        for d, part in enumerate(parts):
            assert torch.equal(part, out[:, d])


@pytest.mark.behaviour("reductions.where_broadcasts")
@pytest.mark.dtypes("float32")
@given(shapes3=hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3), data=st.data())
def test_where_broadcasts_and_picks(device, dtype, shapes3, data):
    c_shape, a_shape, b_shape = shapes3.input_shapes
    cond = data.draw(specs(shape=c_shape), label="cond").build(dtype=torch.bool, device=device)
    a = data.draw(specs(shape=a_shape), label="a").build(dtype=dtype, device=device)
    b = data.draw(specs(shape=b_shape), label="b").build(dtype=dtype, device=device)
    out = torch.where(cond, a, b)
    expected = np.where(*(independent_array(v.cpu()) for v in (cond, a, b)))
    assert tuple(out.shape) == shapes3.result_shape
    np.testing.assert_array_equal(independent_array(out.cpu()), expected)


@pytest.mark.behaviour("reductions.item_one_element")
@pytest.mark.dtypes("representative")
@given(x=specs(shapes=shapes(max_side=2)))
def test_item_needs_exactly_one_element(device, dtype, x):
    t = x.build(dtype=dtype, device=device)
    if x.numel == 1:
        value = t.item()
        kind = bool if dtype == torch.bool else complex if dtype.is_complex else \
            float if dtype.is_floating_point else int
        assert type(value) is kind
    else:
        with pytest.raises(RuntimeError):
            t.item()


@pytest.mark.behaviour("reductions.tolist")
@pytest.mark.dtypes("real")
@given(x=specs())
def test_tolist_gives_nested_python_numbers(device, dtype, x):
    t = x.build(dtype=dtype, device=device)
    out = t.tolist()
    expected = independent_array(t.cpu())
    if x.ndim == 0:
        assert not isinstance(out, list) and out == expected.item()
    else:
        assert np.array(out, dtype=expected.dtype).reshape(expected.shape).tolist() == expected.tolist()
        assert isinstance(out, list) and len(out) == x.shape[0]


@pytest.mark.behaviour("reductions.inplace_underscore")
@pytest.mark.dtypes("float32")
@given(x=specs(shapes=shapes(min_dims=2, max_dims=2)), data=st.data())
def test_underscore_methods_change_and_return_self(device, dtype, x, data):
    other = data.draw(specs(shape=x.shape), label="other").build(dtype=dtype, device=device)
    for name, args, reference in [
        ("add_", (other,), lambda a: a + other), ("mul_", (other,), lambda a: a * other),
        ("clamp_", (-1, 1), lambda a: a.clamp(-1, 1)), ("copy_", (other,), lambda a: other.clone()),
        ("t_", (), lambda a: a.t().clone()),
    ]:
        t = x.build(dtype=dtype, device=device).contiguous()
        expected = reference(t.clone())
        returned = getattr(t, name)(*args)
        assert returned is t, f"{name} did not return self"
        assert torch.equal(t, expected), f"{name} did not change self"


@pytest.mark.behaviour("reductions.add_out")
@pytest.mark.dtypes("float32_64")
@given(a=specs(), data=st.data())
def test_add_out_writes_into_out(device, dtype, a, data):
    b = data.draw(specs(shape=a.shape), label="b")
    x, y = a.build(dtype=dtype, device=device), b.build(dtype=dtype, device=device)
    result = torch.zeros_like(x)
    returned = torch.add(x, y, out=result)
    assert returned is result
    assert_close(result, x + y)
