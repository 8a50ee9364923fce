"""Shape operations: view(-1, k), (un)squeeze, repeat and repeat_interleave, flip, roll, unbind, unfold."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from conformance.checks import assert_equal, assert_own_storage, independent_array
from conformance.harness.declaration import Operation
from conformance.harness.releases import torch_at_least
from conformance.test_indexing import assert_write_seen_by_autograd, saved_for_backward
from conformance.test_views import assert_is_live_view, assert_shares_storage, view_is_possible
from strategies import specs
from strategies.samples import Sample, call_forms, dims
from strategies.shapes import shapes
from strategies.tensors import WRITABLE_LAYOUTS, label


@st.composite
def flat_and_k(draw):
    """Sample(x, k): a contiguous 1-D x of rows * k elements (the note's claim is about the inferred
    size, not view's stride rule), and k."""
    rows, k = draw(st.integers(0, 6), label="rows"), draw(st.integers(1, 6), label="k")
    x = draw(specs(shape=(rows * k,), layouts=("contiguous",)), label="x")  # contiguous: see the docstring
    return Sample((x, k))


VIEW_MINUS_ONE = Operation("shape_ops.view_minus_one_k", dtypes="float32", samples=flat_and_k(), call=lambda t, k: t.view(-1, k))


@VIEW_MINUS_ONE.property
def test_view_minus_one_k(device, dtype, sample):
    x, k = sample.args
    rows = x.numel // k
    (t, _), _ = sample.build(dtype=dtype, device=device)
    v = VIEW_MINUS_ONE.call(t, k)
    assert v.shape == (rows, k), f"view(-1, {k}) of {rows * k} elements: shape {tuple(v.shape)}"
    # still a view ("the same data"): the storage, the elements row by row
    assert_shares_storage(v, t, f"view(-1, {k})")
    np.testing.assert_array_equal(
        independent_array(v.cpu()), independent_array(x.logical_values(dtype)).reshape(rows, k), "view(-1, k): not row-major"
    )
    if rows == 2 and k == 8:  # the note's 4x4 example
        assert torch.zeros(4, 4, device=device).view(-1, 8).shape == (2, 8)


@st.composite
def tensor_and_inserting_dim(draw):
    """Sample(x, d): any x and a dim where a new one may go, -(ndim + 1) <= d <= ndim."""
    x = draw(specs(), label="x")
    return Sample((x, draw(dims(x.ndim, inserting=True), label="dim")))


UNSQUEEZE = Operation(
    "shape_ops.unsqueeze", dtypes="float32", samples=tensor_and_inserting_dim(), call=lambda t, d: t.unsqueeze(d)
)


@UNSQUEEZE.property
def test_unsqueeze_inserts_a_size_one_dim(device, dtype, sample):
    x, d = sample.args
    (t, _), _ = sample.build(dtype=dtype, device=device)
    out = UNSQUEEZE.call(t, d)
    expected = list(x.shape)
    expected.insert(d if d >= 0 else d + x.ndim + 1, 1)
    assert list(out.shape) == expected, f"unsqueeze({d}) of {x.shape}: size-1 dimension not at d ({tuple(out.shape)})"
    # "The returned tensor shares the same underlying data with this tensor."
    assert_shares_storage(out, t, f"unsqueeze({d})")
    np.testing.assert_array_equal(
        independent_array(out.cpu()), np.expand_dims(independent_array(x.logical_values(dtype)), d), "unsqueeze: values"
    )


SQUEEZE = Operation(
    "shape_ops.squeeze_all",
    dtypes="float32",
    samples=specs(shapes=shapes(max_side=2, max_dims=5)).map(lambda x: Sample((x,))),  # sides of 1 often
    call=lambda t: t.squeeze(),
)


@SQUEEZE.property
def test_squeeze_removes_every_size_one_dim(device, dtype, sample):
    (x,) = sample.args
    (t,), _ = sample.build(dtype=dtype, device=device)
    out = SQUEEZE.call(t)
    assert out.shape == tuple(s for s in x.shape if s != 1), (
        f"squeeze() of {x.shape}: not every size-1 dimension removed ({tuple(out.shape)})"
    )
    # "The returned tensor shares the storage with the input tensor"
    assert_shares_storage(out, t, "squeeze()")
    np.testing.assert_array_equal(
        independent_array(out.cpu()).ravel(), independent_array(x.logical_values(dtype)).ravel(), "squeeze(): values in order"
    )


@st.composite
def squeeze_dim_samples(draw):
    """Sample(x, d): sides of 1 often, and a dim of x (0 and -1 for a 0-d x)."""
    x = draw(specs(shapes=shapes(max_side=2, max_dims=5)), label="x")
    return Sample((x, draw(dims(x.ndim), label="dim")))


SQUEEZE_DIM = Operation("shape_ops.squeeze_dim", dtypes="float32", samples=squeeze_dim_samples(), call=lambda t, d: t.squeeze(d))


@SQUEEZE_DIM.property
def test_squeeze_dim_removes_only_that_size_one_dim(device, dtype, sample):
    x, d = sample.args
    (t, _), _ = sample.build(dtype=dtype, device=device)
    expected = list(x.shape)
    if x.ndim and expected[d] == 1:
        del expected[d]
    out = SQUEEZE_DIM.call(t, d)
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


@st.composite
def interleave_samples(draw):
    """Sample(x, r, dim): repeats along a dim of x, so x has one at least."""
    x = draw(specs(shapes=shapes(min_dims=1, max_dims=3, max_side=3)), label="x")  # repeats along a dim: one at least
    dim = draw(dims(x.ndim), label="dim")
    return Sample((x, draw(st.integers(0, 3), label="repeats"), dim))


REPEAT_INTERLEAVE = Operation(
    "shape_ops.repeat_interleave",
    dtypes="representative",
    samples=interleave_samples(),
    call=lambda t, r, dim: t.repeat_interleave(r, dim),
)


@REPEAT_INTERLEAVE.property
def test_repeat_interleave_repeats_in_place(device, dtype, sample):
    x, r, dim = sample.args
    out = REPEAT_INTERLEAVE(sample, dtype=dtype, device=device)
    assert out.dtype == dtype, f"repeat_interleave({r}, {dim}): dtype {out.dtype}, the input's is {dtype}"
    np.testing.assert_array_equal(
        independent_array(out.cpu()), np.repeat(independent_array(x.logical_values(dtype)), r, axis=dim), "not numpy.repeat's"
    )


T_ = Operation(
    "shape_ops.t_takes_no_argument",
    dtypes="representative",
    samples=specs(shapes=shapes(max_dims=2)).map(lambda x: Sample((x,))),  # t() is documented for tensors of <= 2 dims
    call=lambda t: t.t_(),
    compare_strides=True,  # "In-place version of t()", a view with the strides swapped
    not_compiled="Dynamo graph-breaks at t_() on a graph input ('Getting an inplace view on a graph input is not "
    "supported', graph break gb0148), so no graph is compiled: eager code runs either way",
)


@T_.property
def test_t_underscore_transposes_in_place_and_takes_no_argument(device, dtype, sample, data):
    (x,) = sample.args
    (t,), _ = sample.build(dtype=dtype, device=device)
    expected = x.logical_values(dtype).t() if x.ndim == 2 else x.logical_values(dtype)
    probe = saved_for_backward(t)
    # another view of the same memory, and the strides before: t() is a view with the strides
    # swapped (views.transpose_shares), so its in-place version changes t's strides, not the memory
    alias, strides = t.detach(), t.stride()
    assert T_.call(t) is t, "t_() did not return the tensor itself"
    assert_write_seen_by_autograd(probe, "t_()")  # in place: a graph that saved t sees the change
    assert_equal(t.cpu(), expected, "t_() of the tensor")
    assert t.stride() == tuple(reversed(strides)), f"t_() did not swap the strides: {strides} became {t.stride()}"
    assert_equal(alias.cpu(), x.logical_values(dtype), "t_() moved data: another view of its memory changed")
    with pytest.raises(TypeError):
        t.t_(data.draw(st.integers(-2, 1), label="arg"))


FLATTEN_FORMS = {"method": lambda t, **k: t.flatten(**k), "function": lambda t, **k: torch.flatten(t, **k)}


@st.composite
def flatten_samples(draw):
    """Sample(x, form, kwargs): start_dim <= end_dim (negative ones too), function or method; the
    documented defaults (start_dim=0, end_dim=-1) exercised by leaving out an argument that equals them."""
    x = draw(specs(), label="x")
    ndim = max(x.ndim, 1)
    start = draw(dims(x.ndim), label="start_dim")
    end = draw(dims(x.ndim).filter(lambda e: e % ndim >= start % ndim), label="end_dim")
    form = draw(call_forms(FLATTEN_FORMS), label="form")
    omit_end = end % ndim == ndim - 1 and draw(st.booleans(), label="end_dim omitted")
    omit_start = omit_end and start % ndim == 0 and draw(st.booleans(), label="start_dim omitted")
    kwargs = {} if omit_start else {"start_dim": start}
    if not omit_end:
        kwargs["end_dim"] = end
    return Sample((x, form, kwargs))


FLATTEN = Operation(
    "shape_ops.flatten_range",
    dtypes="representative",
    samples=flatten_samples(),
    call=lambda t, form, kwargs: FLATTEN_FORMS[form](t, **kwargs),
)


@FLATTEN.property
def test_flatten_merges_start_to_end_in_row_major_order(device, dtype, sample):
    x, form, kwargs = sample.args
    ndim = max(x.ndim, 1)
    start, end = kwargs.get("start_dim", 0), kwargs.get("end_dim", -1)
    (t, *_), _ = sample.build(dtype=dtype, device=device)
    s, e = start % ndim, end % ndim
    shape = list(x.shape) or [1]
    expected_shape = tuple(shape[:s] + [math.prod(shape[s : e + 1])] + shape[e + 1 :]) if x.ndim else (1,)
    out = FLATTEN.call(t, form, kwargs)
    # the documented defaults stand for an omitted argument: start_dim=0, end_dim=-1
    assert tuple(out.shape) == expected_shape, (
        f"{form} form of flatten(**{kwargs}) (start_dim omitted is 0, end_dim omitted -1): wrong shape {tuple(out.shape)}"
    )
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


DIM = Operation(
    "shape_ops.dim_is_ndim",
    dtypes="float32",
    samples=specs().map(lambda x: Sample((x,))),
    call=lambda t: (t.dim(), t.ndim, len(t.shape)),
    not_compiled="dim(), ndim and shape read the tensor's metadata: Dynamo answers them as constants and compiles no graph",
)


@DIM.property
def test_dim_is_the_number_of_dimensions(device, dtype, sample):
    (x,) = sample.args
    dim, ndim, rank = DIM(sample, dtype=dtype, device=device)
    assert dim == ndim == rank == len(x.shape), f"dim() {dim}, ndim {ndim}, len(shape) {rank}: not all equal"


# A crop that empties a dimension (left + right == -size) is refused by older torch where another
# dimension is padded ("resulted in a negative output size" of a size 0: constant_pad_nd checked
# new_dim > 0, made >= 0 for https://github.com/pytorch/pytorch/issues/161014, fixed by
# https://github.com/pytorch/pytorch/pull/161901 in 2025-09; torch 2.6 has the old check, 2.13 the new).
# No doc speaks of a negative constant pad. The PR's date puts the fix in 2.9 or 2.10 (not verified
# here): such crops are drawn from 2.10.
PAD_MAY_EMPTY_A_DIMENSION = torch_at_least("2.10")


@st.composite
def pad_cases(draw):
    """Sample(x, pad, value): padding the last len(pad) / 2 dims, last dimension first; negative crops."""
    # sides of 2 or more, so that a negative pad (a crop) has something to remove on either side
    x = draw(specs(shapes=shapes(min_dims=1, max_dims=3, min_side=2, max_side=4)), label="x")
    padded = draw(st.integers(1, x.ndim), label="padded_dims")
    pad = []
    for d in range(padded):  # (left, right) of the last dim, then of the one before, ...
        side = x.shape[-1 - d]
        left = draw(st.integers(-(side // 2), 2), label=f"left_{d}")
        lowest = -(side // 2) if PAD_MAY_EMPTY_A_DIMENSION else max(-(side // 2), 1 - side - left)
        right = draw(st.integers(lowest, 2), label=f"right_{d}")
        pad += [left, right]
    return Sample((x, tuple(pad), draw(st.floats(-5, 5), label="value")))


PAD = Operation(
    "shape_ops.pad_constant",
    dtypes="float32_64",
    samples=pad_cases(),
    call=lambda x, pad, value: F.pad(x, pad, mode="constant", value=value),
)


@PAD.property
def test_constant_pad_adds_value_or_crops_from_the_last_dimension_forward(device, dtype, sample):
    x, pad, value = sample.args
    out = PAD(sample, dtype=dtype, device=device)
    a = independent_array(x.logical_values(dtype))
    widths = [(0, 0)] * a.ndim
    for d in range(len(pad) // 2):
        widths[a.ndim - 1 - d] = (pad[2 * d], pad[2 * d + 1])
    # numpy.pad takes no negative widths: crop first, then pad
    crop = tuple(slice(max(0, -lo), a.shape[i] - max(0, -hi)) for i, (lo, hi) in enumerate(widths))
    expected = np.pad(a[crop], [(max(0, lo), max(0, hi)) for lo, hi in widths], constant_values=value)
    np.testing.assert_array_equal(independent_array(out.cpu()), expected.astype(a.dtype), "not numpy.pad's (after the crop)")


def linear_and_nearest(t, out_size, factor):
    """F.interpolate of t to out_size, linear with align_corners=True, and by scale_factor, nearest."""
    return (
        F.interpolate(t, size=out_size, mode="linear", align_corners=True),
        F.interpolate(t, scale_factor=factor, mode="nearest"),
    )


INTERPOLATE = Operation(
    "shape_ops.interpolate_linear_corners",
    dtypes="float32_64",
    samples=st.builds(
        lambda x, out_size, factor: Sample((x, out_size, factor)),
        specs(shapes=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(2, 6))),
        st.integers(2, 12),
        st.integers(1, 3),
    ),
    call=lambda t, out_size, factor: linear_and_nearest(t, out_size, factor),
)


@INTERPOLATE.property
def test_interpolate_linear_aligned_corners_and_nearest_by_integer_factors(device, dtype, sample):
    x, out_size, factor = sample.args
    out, near = INTERPOLATE(sample, dtype=dtype, device=device)
    a = independent_array(x.logical_values(dtype)).astype(np.float64)
    n = a.shape[-1]
    # align_corners=True: output j sits at input position j (n - 1) / (out - 1), "preserving the
    # values at the corner pixels"; in between, linear interpolation of the two neighbours
    positions = np.arange(out_size) * (n - 1) / (out_size - 1)
    expected = np.stack([np.stack([np.interp(positions, np.arange(n), row) for row in batch]) for batch in a])
    np.testing.assert_allclose(
        independent_array(out.cpu()).astype(np.float64), expected, rtol=1e-5, atol=1e-5, err_msg="linear, align_corners=True"
    )
    # nearest with an integer scale factor k repeats every element k times
    np.testing.assert_array_equal(
        independent_array(near.cpu()),
        np.repeat(independent_array(x.logical_values(dtype)), factor, axis=-1),
        "nearest by an integer factor",
    )


FLIP_FORMS = {"function": lambda t, dims: torch.flip(t, dims), "method": lambda t, dims: t.flip(dims)}


@st.composite
def flip_samples(draw):
    """Sample(x, dims, form): dims a list or tuple of distinct dims of x, each given as itself or
    counted from the end (none, some or all of them); torch.flip or the method."""
    x = draw(specs(), label="x")
    ndim = max(x.ndim, 1)  # a 0-d tensor accepts 0 and -1, as for every dim argument
    # distinct dims counted from 0 here, then each given as d or d - ndim: the whole range -ndim..ndim-1
    chosen = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim), label="flipped")
    flipped = [d - ndim if draw(st.booleans()) else d for d in chosen]  # each as d or d - ndim
    for d in flipped:
        label("dim<0" if d < 0 else "dim>=0")
    container = draw(st.sampled_from(["list", "tuple"]), label="dims_container")
    label(f"dims={container}", "dims=empty" if not flipped else f"dims={len(flipped)}")
    return Sample((x, flipped if container == "list" else tuple(flipped), draw(call_forms(FLIP_FORMS), label="form")))


FLIP = Operation(
    "shape_ops.flip_reverses_copy",
    dtypes="representative",
    samples=flip_samples(),
    call=lambda t, dims, form: FLIP_FORMS[form](t, dims),
)


@FLIP.property
def test_flip_reverses_the_given_dims_into_a_copy(device, dtype, sample):
    x, flipped, form = sample.args
    (t, *_), _ = sample.build(dtype=dtype, device=device)
    out = FLIP.call(t, flipped, form)
    a = independent_array(x.logical_values(dtype))
    expected = np.flip(a, axis=tuple(d % max(x.ndim, 1) for d in flipped)) if x.ndim else a  # a 0-d tensor: itself
    assert out.dtype == t.dtype, f"flip({flipped}): dtype {out.dtype}, the input's is {t.dtype}"
    np.testing.assert_array_equal(
        independent_array(out.cpu()), expected, f"{form} form of flip({flipped}): not numpy.flip along those dims"
    )
    # "torch.flip makes a copy of input's data" (unlike numpy.flip's view)
    assert_own_storage(out, t, f"flip({flipped})")


ROLL_FORMS = {
    "function": lambda t, shifts, dims: torch.roll(t, shifts, dims),
    "keywords": lambda t, shifts, dims: torch.roll(t, shifts=shifts, dims=dims),
    "method": lambda t, shifts, dims: t.roll(shifts, dims),
    "dims omitted": lambda t, shifts, dims: torch.roll(t, shifts),  # dims=None, its default
}


@st.composite
def roll_samples(draw):
    """Sample(x, shifts, dims, form): dims None (flattened; omitted or given), one dim with an int
    shift, or a tuple of dims (repeats too) with a tuple of shifts of the same size; shifts negative,
    zero, and beyond the size rolled along."""
    x = draw(specs(), label="x")
    kinds = ["flattened", "one dim", "tuple of dims"] if x.ndim else ["flattened"]  # dims: an axis of x
    kind = draw(st.sampled_from(kinds), label="dims_kind")
    label(f"dims={kind}")

    def shift(size):
        return draw(st.integers(-3 * size - 2, 3 * size + 2), label="shift")

    if kind == "flattened":
        form = draw(call_forms(ROLL_FORMS), label="form")
        return Sample((x, shift(x.numel), None, form))
    form = draw(call_forms({k: v for k, v in ROLL_FORMS.items() if k != "dims omitted"}), label="form")
    if kind == "one dim":
        dim = draw(dims(x.ndim), label="dim")
        return Sample((x, shift(x.shape[dim]), dim, form))
    rolled = draw(st.lists(dims(x.ndim), min_size=1, max_size=3), label="dims")
    if len({d % x.ndim for d in rolled}) < len(rolled):
        label("dims=repeated")
    return Sample((x, tuple(shift(x.shape[d]) for d in rolled), tuple(rolled), form))


ROLL = Operation(
    "shape_ops.roll_wraps_around",
    dtypes="representative",
    samples=roll_samples(),
    call=lambda t, shifts, dims, form: ROLL_FORMS[form](t, shifts, dims),
)


@ROLL.property
def test_roll_reintroduces_shifted_elements_at_the_start(device, dtype, sample):
    x, shifts, rolled, form = sample.args
    out = ROLL(sample, dtype=dtype, device=device)
    a = independent_array(x.logical_values(dtype))
    # numpy.roll: elements shifted beyond the last position come back at the first; axis None rolls
    # the flattened array and restores the shape; a tuple rolls each axis by its shift in turn
    expected = np.roll(a, shifts, axis=rolled)
    assert tuple(out.shape) == x.shape and out.dtype == dtype, (
        f"roll({shifts}, {rolled}): shape {tuple(out.shape)} and dtype {out.dtype}, the input's are {x.shape}, {dtype}"
    )
    np.testing.assert_array_equal(
        independent_array(out.cpu()), expected, f"{form} form of roll({shifts}, dims={rolled}): not numpy.roll's"
    )


UNBIND_FORMS = {
    "function": lambda t, dim: torch.unbind(t, dim),
    "method": lambda t, dim: t.unbind(dim),
    "keyword": lambda t, dim: torch.unbind(t, dim=dim),
    "function, dim omitted": lambda t, dim: torch.unbind(t),  # dim=0, its default
    "method, dim omitted": lambda t, dim: t.unbind(),
}


@st.composite
def unbind_samples(draw):
    """Sample(x, dim, form): x with a dimension to remove, one of its dims; the forms that leave dim
    out draw dim 0, its default."""
    x = draw(specs(shapes=shapes(min_dims=1)), label="x")  # "Removes a tensor dimension": x has one
    form = draw(call_forms(UNBIND_FORMS), label="form")
    return Sample((x, 0 if "omitted" in form else draw(dims(x.ndim), label="dim"), form))


UNBIND = Operation(
    "shape_ops.unbind_slices",
    dtypes="representative",
    samples=unbind_samples(),
    call=lambda t, dim, form: UNBIND_FORMS[form](t, dim),
)


@UNBIND.property
def test_unbind_returns_every_slice_without_the_dim(device, dtype, sample):
    x, dim, form = sample.args
    (t, *_), _ = sample.build(dtype=dtype, device=device)
    out = UNBIND.call(t, dim, form)
    a = independent_array(x.logical_values(dtype))
    assert isinstance(out, tuple), f"{form} form of unbind({dim}) returned a {type(out).__name__}, not a tuple"
    assert len(out) == x.shape[dim], f"unbind({dim}) of {x.shape}: {len(out)} slices, not one per index along dim"
    for i, part in enumerate(out):  # "all slices along a given dimension, already without it"
        assert part.dtype == dtype, f"unbind({dim}): slice {i} has dtype {part.dtype}, the input's is {dtype}"
        np.testing.assert_array_equal(
            independent_array(part.cpu()), np.take(a, i, axis=dim), f"unbind({dim}): slice {i} is not x's slice {i} along dim"
        )
        # unbind is in "a full list of view ops in PyTorch" (the tensor views page): each slice a view of x
        assert_shares_storage(part, t, f"{form} form of unbind({dim}): slice {i}")


@st.composite
def unfold_samples(draw):
    """Sample(x, dimension, size, step): a dimension of x, a slice size from 0 to its size, a step
    of 1 or more, beyond the size too."""
    # "the size of dimension dimension": x has one
    x = draw(specs(shapes=shapes(min_dims=1), layouts=WRITABLE_LAYOUTS), label="x")
    dim = draw(dims(x.ndim), label="dimension")
    size = draw(st.integers(0, x.shape[dim]), label="size")  # at most the size of the dimension
    step = draw(st.integers(1, x.shape[dim] + 2), label="step")  # "the step between each slice": positive
    label("step>size" if step > size else "step<=size")
    return Sample((x, dim, size, step))


UNFOLD = Operation(
    "shape_ops.unfold_windows",
    dtypes="representative",
    samples=unfold_samples(),
    call=lambda t, dim, size, step: t.unfold(dim, size, step),
)


@UNFOLD.property
def test_unfold_is_a_view_of_every_window(device, dtype, sample):
    x, dim, size, step = sample.args
    (t, *_), _ = sample.build(dtype=dtype, device=device)
    out = UNFOLD.call(t, dim, size, step)
    d = dim % x.ndim
    count = (x.shape[d] - size) // step + 1  # "(sizedim - size) / step + 1", rounded down
    expected_shape = x.shape[:d] + (count,) + x.shape[d + 1 :] + (size,)
    assert tuple(out.shape) == expected_shape, f"unfold({dim}, {size}, {step}) of {x.shape}: shape {tuple(out.shape)}"

    def windows(a):  # window i along d holds elements i * step ... i * step + size - 1, on a new last dim
        starts = range(0, count * step, step)
        picked = [np.moveaxis(np.take(a, np.arange(s, s + size, dtype=np.int64), axis=d), d, -1) for s in starts]
        return np.stack(picked, axis=d) if picked else np.empty(expected_shape, dtype=a.dtype)

    np.testing.assert_array_equal(
        independent_array(out.cpu()),
        windows(independent_array(x.logical_values(dtype))),
        f"unfold({dim}, {size}, {step}): not every slice of size {size} along the dimension, {step} apart",
    )
    # "Returns a view of the original tensor which contains all slices of size size": its storage,
    # and a later write to x shows in it
    assert_is_live_view(out, t, windows, x, dtype, f"unfold({dim}, {size}, {step})")
