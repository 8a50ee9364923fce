"""Shape operations: view(-1, k), (un)squeeze, repeat and repeat_interleave."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks import assert_equal, independent_array
from conformance.harness.declaration import Operation
from conformance.test_indexing import assert_write_seen_by_autograd, saved_for_backward
from conformance.test_views import assert_shares_storage, view_is_possible
from strategies import specs
from strategies.samples import Sample, call_forms, dims
from strategies.shapes import shapes


@pytest.mark.behaviour("shape_ops.view_minus_one_k")
@pytest.mark.dtypes("float32")
@given(rows=st.integers(0, 6), k=st.integers(1, 6), data=st.data())
def test_view_minus_one_k(device, dtype, rows, k, data):
    # contiguous: the note's claim is about the inferred size, not view's stride rule
    x = data.draw(specs(shape=(rows * k,), layouts=("contiguous",)), label="x")
    t = x.build(dtype=dtype, device=device)
    v = t.view(-1, k)
    assert v.shape == (rows, k), f"view(-1, {k}) of {rows * k} elements: shape {tuple(v.shape)}"
    # still a view ("the same data"): the storage, the elements row by row
    assert_shares_storage(v, t, f"view(-1, {k})")
    np.testing.assert_array_equal(
        independent_array(v.cpu()), independent_array(x.logical_values(dtype)).reshape(rows, k), "view(-1, k): not row-major"
    )
    if rows == 2 and k == 8:  # the note's 4x4 example
        assert torch.zeros(4, 4, device=device).view(-1, 8).shape == (2, 8)


@pytest.mark.behaviour("shape_ops.unsqueeze")
@pytest.mark.dtypes("float32")
@given(x=specs(), data=st.data())
def test_unsqueeze_inserts_a_size_one_dim(device, dtype, x, data):
    d = data.draw(dims(x.ndim, inserting=True), label="dim")
    t = x.build(dtype=dtype, device=device)
    out = t.unsqueeze(d)
    expected = list(x.shape)
    expected.insert(d if d >= 0 else d + x.ndim + 1, 1)
    assert list(out.shape) == expected, f"unsqueeze({d}) of {x.shape}: size-1 dimension not at d ({tuple(out.shape)})"
    # "The returned tensor shares the same underlying data with this tensor."
    assert_shares_storage(out, t, f"unsqueeze({d})")
    np.testing.assert_array_equal(
        independent_array(out.cpu()), np.expand_dims(independent_array(x.logical_values(dtype)), d), "unsqueeze: values"
    )


@pytest.mark.behaviour("shape_ops.squeeze_all")
@pytest.mark.dtypes("float32")
@given(x=specs(shapes=shapes(max_side=2, max_dims=5)))
def test_squeeze_removes_every_size_one_dim(device, dtype, x):
    t = x.build(dtype=dtype, device=device)
    out = t.squeeze()
    assert out.shape == tuple(s for s in x.shape if s != 1), (
        f"squeeze() of {x.shape}: not every size-1 dimension removed ({tuple(out.shape)})"
    )
    # "The returned tensor shares the storage with the input tensor"
    assert_shares_storage(out, t, "squeeze()")
    np.testing.assert_array_equal(
        independent_array(out.cpu()).ravel(), independent_array(x.logical_values(dtype)).ravel(), "squeeze(): values in order"
    )


@pytest.mark.behaviour("shape_ops.squeeze_dim")
@pytest.mark.dtypes("float32")
@given(x=specs(shapes=shapes(max_side=2, max_dims=5)), data=st.data())
def test_squeeze_dim_removes_only_that_size_one_dim(device, dtype, x, data):
    d = data.draw(st.integers(-max(x.ndim, 1), max(x.ndim, 1) - 1), label="dim")
    t = x.build(dtype=dtype, device=device)
    expected = list(x.shape)
    if x.ndim and expected[d] == 1:
        del expected[d]
    out = t.squeeze(d)
    assert list(out.shape) == expected, f"squeeze({d}) of {x.shape}: removed the wrong dimensions ({tuple(out.shape)})"
    assert_shares_storage(out, t, f"squeeze({d})")  # "shares the storage with the input tensor"


@st.composite
def repeat_samples(draw):
    """Sample(x, reps): as many repeats as x has dims or more (repeat accepts no fewer)."""
    x = draw(specs(shapes=shapes(max_dims=3, max_side=3)), label="x")
    reps = draw(st.lists(st.integers(1, 3), min_size=x.ndim, max_size=x.ndim + 2), label="sizes")
    if draw(st.booleans(), label="with_a_zero") and reps:
        reps[0] = 0
    return Sample((x, tuple(reps)))


REPEAT = Operation(
    "shape_ops.repeat_tiles",
    dtypes="representative",
    samples=repeat_samples(),
    call=lambda x, reps: x.repeat(*reps) if reps else x.repeat(()),
)


@REPEAT.property
def test_repeat_tiles_like_numpy_tile(device, dtype, sample, data):
    x, reps = sample.args
    t = x.build(dtype=dtype, device=device)
    out = REPEAT(sample, dtype=dtype, device=device)
    expected = np.tile(independent_array(t.cpu()), reps)
    assert tuple(out.shape) == expected.shape, f"repeat{reps}: shape {tuple(out.shape)}, not numpy.tile's {expected.shape}"
    assert out.dtype == t.dtype, f"repeat{reps}: dtype {out.dtype}, the input's is {t.dtype}"
    np.testing.assert_array_equal(independent_array(out.cpu()), expected, f"repeat{reps}: not numpy.tile's values")
    flat, times = t.reshape(-1), data.draw(st.integers(2, 3), label="flat_times")  # the 1-D case
    np.testing.assert_array_equal(
        independent_array(flat.repeat(times).cpu()), np.tile(independent_array(flat.cpu()), times), "repeat of a 1-D tensor"
    )


@pytest.mark.behaviour("shape_ops.repeat_interleave")
@pytest.mark.dtypes("representative")
@given(x=specs(shapes=shapes(min_dims=1, max_dims=3, max_side=3)), data=st.data())  # repeats along a dim: one at least
def test_repeat_interleave_repeats_in_place(device, dtype, x, data):
    dim = data.draw(dims(x.ndim), label="dim")
    r = data.draw(st.integers(0, 3), label="repeats")
    t = x.build(dtype=dtype, device=device)
    out = t.repeat_interleave(r, dim)
    assert out.dtype == t.dtype, f"repeat_interleave({r}, {dim}): dtype {out.dtype}, the input's is {t.dtype}"
    np.testing.assert_array_equal(
        independent_array(out.cpu()), np.repeat(independent_array(t.cpu()), r, axis=dim), "not numpy.repeat's"
    )


@pytest.mark.behaviour("shape_ops.t_takes_no_argument")
@pytest.mark.dtypes("representative")
@given(x=specs(shapes=shapes(max_dims=2)), arg=st.integers(-2, 1))  # t() is documented for tensors of <= 2 dims
def test_t_underscore_transposes_in_place_and_takes_no_argument(device, dtype, x, arg):
    t = x.build(dtype=dtype, device=device)
    expected = x.logical_values(dtype).t() if x.ndim == 2 else x.logical_values(dtype)
    probe = saved_for_backward(t)
    # another view of the same memory, and the strides before: t() is a view with the strides
    # swapped (views.transpose_shares), so its in-place version changes t's strides, not the memory
    alias, strides = t.detach(), t.stride()
    assert t.t_() is t, "t_() did not return the tensor itself"
    assert_write_seen_by_autograd(probe, "t_()")  # in place: a graph that saved t sees the change
    assert_equal(t.cpu(), expected, "t_() of the tensor")
    assert t.stride() == tuple(reversed(strides)), f"t_() did not swap the strides: {strides} became {t.stride()}"
    assert_equal(alias.cpu(), x.logical_values(dtype), "t_() moved data: another view of its memory changed")
    with pytest.raises(TypeError):
        t.t_(arg)


FLATTEN_FORMS = {"method": lambda t, **k: t.flatten(**k), "function": lambda t, **k: torch.flatten(t, **k)}


@pytest.mark.behaviour("shape_ops.flatten_range")
@pytest.mark.dtypes("representative")
@given(x=specs(), data=st.data())
def test_flatten_merges_start_to_end_in_row_major_order(device, dtype, x, data):
    ndim = max(x.ndim, 1)
    start = data.draw(dims(x.ndim), label="start_dim")
    end = data.draw(dims(x.ndim).filter(lambda e: e % ndim >= start % ndim), label="end_dim")
    t = x.build(dtype=dtype, device=device)
    s, e = start % ndim, end % ndim
    shape = list(x.shape) or [1]
    expected_shape = tuple(shape[:s] + [math.prod(shape[s : e + 1])] + shape[e + 1 :]) if x.ndim else (1,)
    # function and method; the documented defaults (start_dim=0, end_dim=-1) exercised by leaving
    # out an argument that equals them
    form = data.draw(call_forms(FLATTEN_FORMS), label="form")
    omit_end = e == ndim - 1 and data.draw(st.booleans(), label="end_dim omitted")
    omit_start = omit_end and s == 0 and data.draw(st.booleans(), label="start_dim omitted")
    kwargs = {} if omit_start else {"start_dim": start}
    if not omit_end:
        kwargs["end_dim"] = end
    out = FLATTEN_FORMS[form](t, **kwargs)
    assert tuple(out.shape) == expected_shape, f"flatten({start}, {end}): wrong shape {tuple(out.shape)}"
    assert out.dtype == t.dtype, f"flatten({start}, {end}): dtype {out.dtype}, the input's is {t.dtype}"
    # "If no dimensions are flattened, then the original object input is returned. Otherwise, if
    # input can be viewed as the flattened shape, then that view is returned." (a 0-d tensor: "a
    # one-dimensional view")
    if x.ndim and s == e:
        assert out is t, f"flatten({start}, {end}) flattens nothing: not the original object"
    elif view_is_possible(t.shape, t.stride(), expected_shape):
        assert_shares_storage(out, t, f"flatten({start}, {end}) where a view is possible")
    np.testing.assert_array_equal(
        independent_array(out.cpu()).ravel(), independent_array(x.logical_values(dtype)).ravel(), "flatten changed the order"
    )


@pytest.mark.behaviour("shape_ops.dim_is_ndim")
@given(x=specs())
def test_dim_is_the_number_of_dimensions(device, x):
    t = x.build(dtype=torch.float32, device=device)
    assert t.dim() == t.ndim == len(x.shape), f"dim() {t.dim()}, ndim {t.ndim}, len(shape) {len(x.shape)}: not all equal"


@st.composite
def pad_cases(draw):
    """(x spec, pad tuple): padding the last len(pad) / 2 dims, last dimension first; negative crops."""
    # sides of 2 or more, so that a negative pad (a crop) has something to remove on either side
    x = draw(specs(shapes=shapes(min_dims=1, max_dims=3, min_side=2, max_side=4)), label="x")
    padded = draw(st.integers(1, x.ndim), label="padded_dims")
    pad = []
    for d in range(padded):  # (left, right) of the last dim, then of the one before, ...
        side = x.shape[-1 - d]
        left, right = (
            draw(st.integers(-(side // 2), 2), label=f"left_{d}"),
            draw(st.integers(-(side // 2), 2), label=f"right_{d}"),
        )
        pad += [left, right]
    return x, tuple(pad)


@pytest.mark.behaviour("shape_ops.pad_constant")
@pytest.mark.dtypes("float32_64")
@given(case=pad_cases(), value=st.floats(-5, 5))
def test_constant_pad_adds_value_or_crops_from_the_last_dimension_forward(device, dtype, case, value):
    x, pad = case
    out = F.pad(x.build(dtype=dtype, device=device), pad, mode="constant", value=value)
    a = independent_array(x.logical_values(dtype))
    widths = [(0, 0)] * a.ndim
    for d in range(len(pad) // 2):
        widths[a.ndim - 1 - d] = (pad[2 * d], pad[2 * d + 1])
    # numpy.pad takes no negative widths: crop first, then pad
    crop = tuple(slice(max(0, -lo), a.shape[i] - max(0, -hi)) for i, (lo, hi) in enumerate(widths))
    expected = np.pad(a[crop], [(max(0, lo), max(0, hi)) for lo, hi in widths], constant_values=value)
    np.testing.assert_array_equal(independent_array(out.cpu()), expected.astype(a.dtype), "not numpy.pad's (after the crop)")


@pytest.mark.behaviour("shape_ops.interpolate_linear_corners")
@pytest.mark.dtypes("float32_64")
@given(
    x=specs(shapes=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(2, 6))),
    out_size=st.integers(2, 12),
    factor=st.integers(1, 3),
)
def test_interpolate_linear_aligned_corners_and_nearest_by_integer_factors(device, dtype, x, out_size, factor):
    t = x.build(dtype=dtype, device=device)
    a = independent_array(x.logical_values(dtype)).astype(np.float64)
    n = a.shape[-1]
    # align_corners=True: output j sits at input position j (n - 1) / (out - 1), "preserving the
    # values at the corner pixels"; in between, linear interpolation of the two neighbours
    out = F.interpolate(t, size=out_size, mode="linear", align_corners=True)
    positions = np.arange(out_size) * (n - 1) / (out_size - 1)
    expected = np.stack([np.stack([np.interp(positions, np.arange(n), row) for row in batch]) for batch in a])
    np.testing.assert_allclose(
        independent_array(out.cpu()).astype(np.float64), expected, rtol=1e-5, atol=1e-5, err_msg="linear, align_corners=True"
    )
    # nearest with an integer scale factor k repeats every element k times
    near = F.interpolate(t, scale_factor=factor, mode="nearest")
    np.testing.assert_array_equal(
        independent_array(near.cpu()),
        np.repeat(independent_array(x.logical_values(dtype)), factor, axis=-1),
        "nearest by an integer factor",
    )
