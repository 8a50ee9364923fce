"""Reductions and elementwise: max/argmax, sum and mean dtypes, clamp, nonzero, where, item."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch.testing import assert_close

from conformance.checks import assert_close_to_reference, assert_equal, independent_array
from conformance.harness.declaration import Operation
from conformance.tolerances import tolerance
from strategies import specs
from strategies.samples import Arg, Sample, broadcast_operands, call_forms, dims, option_grid, tensor_and_dim
from strategies.shapes import shapes
from strategies.tensors import WRITABLE_LAYOUTS, label

# Small integer ranges make ties common: tie-breaking bugs only show on ties.
TIES = dict(low=-2, high=2)
NON_EMPTY = shapes(min_dims=1, min_side=1)


MAX_ALONG_DIM = Operation(
    "reductions.max_dim_values_indices",
    dtypes="real",
    samples=st.builds(
        lambda s, keepdim: Sample(s.args, {"keepdim": keepdim}), tensor_and_dim(shapes=NON_EMPTY, **TIES), st.booleans()
    ),
    call=lambda x, dim, keepdim: torch.max(x, dim, keepdim=keepdim),
)
ARGMAX = Operation(
    "reductions.argmax_first_on_ties",
    dtypes="real",
    samples=tensor_and_dim(shapes=NON_EMPTY, **TIES),
    call=lambda x, dim: (torch.argmax(x, dim), torch.argmax(x)),
)


def integral_sum_samples(dtype):
    """Any tensor, or one whose values lie in the upper half of a dtype narrower than int64, so
    that its sum overflows the input dtype: where promotion matters."""
    anything = specs()
    if dtype == torch.int64:
        return anything.map(lambda x: Sample((x,)))
    top = torch.iinfo(dtype).max
    # at least two values near the top of the dtype: a sum that overflows it unless accumulated in int64
    overflowing = specs(shapes=shapes(min_dims=1, min_side=2), low=top // 2, high=top)
    return st.one_of(anything, overflowing).map(lambda x: Sample((x,)))


SUM_OF_INTEGERS = Operation(
    "reductions.sum_promotes_integral", dtypes="integral", samples=integral_sum_samples, call=lambda x: x.sum()
)
MEAN = Operation(
    "reductions.mean_is_sum_over_numel",
    dtypes="floating",
    # non-empty: the mean of no element is NaN, a case of its own (reductions.edges_and_nan)
    samples=specs(shapes=shapes(min_side=1)).map(lambda x: Sample((x,))),
    call=lambda x: x.mean(),
)


def integer_valued(spec, dtype, device, requires_grad=False):
    """The tensor `spec` describes with every value rounded to an integer in [-9, 9] in place, through its
    whole storage (so its layout stays), and its values as a float64 array. A float sum of up to
    625 such terms of magnitude <= 9 is exact, so the documented result is decided exactly: the
    exact sum (or mean: the exact sum over the count) rounded once to the dtype."""
    t = spec.build(dtype=dtype, device=device)
    storage = t.untyped_storage().nbytes() // t.element_size()
    if storage:
        t.as_strided((storage,), (1,), 0).round_().clamp_(-9, 9)  # NaN stays NaN; +-inf and extremes become +-9
    return t.requires_grad_(requires_grad), independent_array(t.cpu()).astype(np.float64)


def assert_reduction_of(out, exact, dtype, what):
    """`out`, a float sum or mean of integer values, has `dtype` and the shape of NumPy's float64
    `exact`, and its values rounded once to `dtype`, exactly (NaN where NumPy has NaN)."""
    assert out.dtype == dtype, f"{what}: the result dtype is {out.dtype}, not the input's {dtype}"
    assert tuple(out.shape) == np.shape(exact), f"{what}: shape {tuple(out.shape)}, NumPy's {np.shape(exact)}"
    expected = torch.from_numpy(np.asarray(exact, dtype=np.float64)).to(dtype)
    assert_close(out.detach().cpu(), expected, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{what}: not NumPy's value\n{m}")


def exact_mean(a, axis=None, keepdims=False):
    """The mean of float64 integer values `a`: their exact sum over the count, rounded once (NaN for none)."""
    count = a.size // max(np.sum(a, axis=axis, keepdims=keepdims).size, 1) if a.size else 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(a, axis=axis, keepdims=keepdims) / count


@MAX_ALONG_DIM.property
def test_max_along_dim_returns_values_and_indices(device, dtype, sample):
    x, dim = sample.args
    keepdim = sample.kwargs["keepdim"]
    values, indices = MAX_ALONG_DIM(sample, dtype=dtype, device=device)
    assert indices.dtype == torch.int64, f"max(x, dim): the indices are {indices.dtype}, not int64"
    a = independent_array(x.build(dtype=dtype, device="cpu"))
    # "If there are multiple maximal values in a reduced row then the indices of the first maximal
    # value are returned" (torch.max): NumPy's argmax documents the same first-occurrence rule.
    first = np.expand_dims(np.argmax(a, axis=dim), dim)
    expected_values = np.take_along_axis(a, first, axis=dim)
    if not keepdim:
        first, expected_values = first.squeeze(dim), expected_values.squeeze(dim)
    assert values.dtype == dtype, f"max(x, dim): the values are {values.dtype}, not the input's {dtype}"
    np.testing.assert_array_equal(independent_array(values.cpu()), expected_values, "max(x, dim): not the maxima along dim")
    np.testing.assert_array_equal(independent_array(indices.cpu()), first, "max(x, dim): not the index of the first maximum")


@ARGMAX.property
def test_argmax_picks_the_first_maximum(device, dtype, sample):
    x, dim = sample.args
    a = independent_array(x.build(dtype=dtype, device="cpu"))
    along_dim, overall = ARGMAX(sample, dtype=dtype, device=device)
    expected = np.argmax(a, axis=dim)  # NumPy documents first-occurrence too
    assert along_dim.dtype == overall.dtype == torch.int64, "argmax did not return int64 (LongTensor) indices"
    np.testing.assert_array_equal(independent_array(along_dim.cpu()), expected, "argmax(x, dim): not the first maximal index")
    assert overall.item() == int(np.argmax(a)), "argmax(x): not the first maximal index of the flattened tensor"


@SUM_OF_INTEGERS.property
def test_sum_of_integers_is_int64(device, dtype, sample, record_observation):
    t = sample.args[0].build(dtype=dtype, device=device)
    out = SUM_OF_INTEGERS(sample, dtype=dtype, device=device)
    # "the result type may be automatically promoted (e.g., from torch.int32 to torch.int64)": the
    # exact integer sum is promised, the dtype that holds it is observed.
    assert out.item() == sum(int(v) for v in t.flatten().tolist()), "the sum is not the exact integer sum"
    assert not (out.dtype.is_floating_point or out.dtype.is_complex or out.dtype == torch.bool), "the sum's dtype is not integral"
    record_observation(f"sum of {str(dtype).removeprefix('torch.')} (and of bool)", f"{out.dtype}, {t.bool().sum().dtype}")


MEAN_OF_INTEGERS = Operation(
    "reductions.mean_integral_raises", dtypes="integral", samples=specs().map(lambda x: Sample((x,))), call=lambda x: x.mean()
)


@MEAN_OF_INTEGERS.property
def test_mean_of_integers_raises(device, dtype, sample):
    with pytest.raises(RuntimeError):
        MEAN_OF_INTEGERS(sample, dtype=dtype, device=device)
        pytest.fail(f"mean of {dtype} without dtype= returned a result")


@MEAN.property
def test_mean_is_sum_over_numel(device, dtype, sample):
    (x,) = sample.args
    # MEAN builds its own input: its values are compared at the dtype's tolerance with NumPy's float64
    # sum over the count; then integer values, for which sum and mean are decided exactly
    a = independent_array(x.logical_values(dtype)).astype(np.float64)
    assert_close_to_reference(MEAN(sample, dtype=dtype, device=device), torch.tensor(a.sum() / a.size, dtype=torch.float64))
    t, ints = integer_valued(x, dtype, device)
    assert_reduction_of(t.sum(), ints.sum(), dtype, "sum()")
    assert_reduction_of(t.mean(), exact_mean(ints), dtype, "mean() is not sum / numel")


def clamp_samples(dtype):
    # uint8 holds no negative bound: its bounds are drawn from its own range.
    bound = st.integers(0 if dtype == torch.uint8 else -9, 9)
    # the dtype's extremes too: clamping them is where a saturating or wrapping bug shows
    return st.builds(lambda x, lo, hi: Sample((x, lo, hi)), specs(low=-9, high=9, extremes=True), bound, bound)


CLAMP = Operation(
    "reductions.clamp_matches_clip", dtypes="real", samples=clamp_samples, call=lambda x, lo, hi: torch.clamp(x, lo, hi)
)
# torch.nonzero, or the method x.nonzero() ("See torch.nonzero")
NONZERO_FORMS = {
    "function": lambda x: (torch.nonzero(x), torch.nonzero(x, as_tuple=True)),
    "method": lambda x: (x.nonzero(), x.nonzero(as_tuple=True)),
}
NONZERO = Operation(
    "reductions.nonzero_shape",
    dtypes="representative",
    samples=st.builds(lambda x, form: Sample((x, form)), specs(**TIES), call_forms(NONZERO_FORMS)),
    call=lambda x, form: NONZERO_FORMS[form](x),
    shape_depends_on_values=True,
    not_compiled="its output shape depends on values: Dynamo breaks the graph there by default "
    "(capture_dynamic_output_shape_ops), leaving nothing compiled",
)
WHERE = Operation(
    "reductions.where_broadcasts",
    dtypes="floating",
    samples=broadcast_operands(3, max_side=3).map(lambda s: Sample((Arg(s.args[0], dtype=torch.bool), *s.args[1:]))),
    call=lambda cond, a, b: torch.where(cond, a, b),
)


@CLAMP.property
def test_clamp_is_numpy_clip(device, dtype, sample):
    x, lo, hi = sample.args
    t = x.build(dtype=dtype, device=device)
    out = CLAMP(sample, dtype=dtype, device=device)
    if lo <= hi:
        assert out.dtype == dtype, f"clamp(x, min, max) gave {out.dtype}, not the input's {dtype}"
        expected = np.clip(independent_array(t.cpu()), lo, hi)
        np.testing.assert_array_equal(independent_array(out.cpu()), expected, "clamp(x, min, max) is not numpy.clip")
    else:
        assert bool((out == hi).all()), "min > max must set every element to max"


@NONZERO.property
def test_nonzero_returns_one_row_per_element(device, dtype, sample):
    x, form = sample.args
    values = independent_array(x.logical_values(dtype))
    expected = np.argwhere(values)  # NumPy's (nnz, ndim) indices, in C order
    out, parts = NONZERO(sample, dtype=dtype, device=device)
    assert out.dtype == torch.int64, f"nonzero() ({form} form) gave {out.dtype}, not int64 (LongTensor) indices"
    assert tuple(out.shape) == (expected.shape[0], x.ndim), f"nonzero() has shape {tuple(out.shape)}, not (nnz, ndim)"
    np.testing.assert_array_equal(
        independent_array(out.cpu()).reshape(expected.shape), expected, "nonzero(): not one row per nonzero element in C order"
    )
    # as_tuple=True: one 1-D int64 tensor per dim, the indices along it; "when input has zero
    # dimensions and a nonzero scalar value, it is treated as a one-dimensional tensor with one element"
    columns = list(expected.T) if x.ndim else [np.zeros(int(values.item() != 0), dtype=np.int64)]
    assert len(parts) == len(columns), f"as_tuple=True gave {len(parts)} index tensors, not one per dim"
    for d, (part, column) in enumerate(zip(parts, columns)):
        assert part.dtype == torch.int64 and part.dim() == 1, f"as_tuple=True: index tensor {d} is not a 1-D int64 tensor"
        np.testing.assert_array_equal(independent_array(part.cpu()), column, f"as_tuple=True: the indices along dim {d}")


@WHERE.property
def test_where_broadcasts_and_picks(device, dtype, sample):
    (cond, a, b), _ = sample.build(dtype=dtype, device=device)
    out = WHERE(sample, dtype=dtype, device=device)
    expected = np.where(*(independent_array(v.cpu()) for v in (cond, a, b)))
    assert out.dtype == dtype, f"where of two {dtype} tensors gave {out.dtype}"
    assert tuple(out.shape) == torch.broadcast_shapes(cond.shape, a.shape, b.shape), "where: not the broadcast shape"
    np.testing.assert_array_equal(independent_array(out.cpu()), expected, "where: not input where cond holds, other elsewhere")


ITEM = Operation(
    "reductions.item_one_element",
    dtypes="representative",
    samples=specs(shapes=shapes(max_side=2)).map(lambda x: Sample((x,))),
    call=lambda x: x.item(),
    shape_depends_on_values=True,  # its result is a value: meta tensors hold none
    not_compiled="item() returns a Python number: Dynamo breaks the graph there (capture_scalar_outputs is off "
    "by default), leaving nothing compiled",
)
TOLIST = Operation(
    "reductions.tolist",
    dtypes="real",
    samples=specs(extremes=True).map(lambda x: Sample((x,))),
    call=lambda x: x.tolist(),
    shape_depends_on_values=True,  # its result is values: meta tensors hold none
    not_compiled="tolist() returns Python lists of Python numbers: Dynamo breaks the graph there, leaving nothing compiled",
)


@ITEM.property
def test_item_needs_exactly_one_element(device, dtype, sample):
    (x,) = sample.args
    if x.numel == 1:
        value = ITEM(sample, dtype=dtype, device=device)
        kind = bool if dtype == torch.bool else complex if dtype.is_complex else float if dtype.is_floating_point else int
        assert type(value) is kind, f"item() gave a {type(value).__name__}, not a Python {kind.__name__}"
        expected = independent_array(x.logical_values(dtype)).reshape(()).item()
        assert value == expected or (value != value and expected != expected), (
            f"item() gave {value}, not the element's value {expected}"
        )
    else:
        with pytest.raises(RuntimeError):
            ITEM(sample, dtype=dtype, device=device)


@TOLIST.property
def test_tolist_gives_nested_python_numbers(device, dtype, sample):
    (x,) = sample.args
    out = TOLIST(sample, dtype=dtype, device=device)
    # the oracle goes through NumPy, not through tolist (bfloat16 via float32, which holds it exactly)
    values = x.logical_values(dtype)
    expected = (values.float() if dtype == torch.bfloat16 else values).numpy()
    if x.ndim == 0:
        assert not isinstance(out, list) and out == expected.item(), "tolist() of a 0-d tensor is not its plain number"
    else:
        assert np.array(out, dtype=expected.dtype).reshape(expected.shape).tolist() == expected.tolist(), "tolist(): values"
        assert isinstance(out, list) and len(out) == x.shape[0], "tolist(): not nested lists of the tensor's shape"


# The in-place methods: name -> (the call on self and other, its result in NumPy from self's and other's values)
UNDERSCORE = {
    "add_": (lambda t, other: t.add_(other), lambda a, b: a + b),
    "mul_": (lambda t, other: t.mul_(other), lambda a, b: a * b),
    "clamp_": (lambda t, other: t.clamp_(-1, 1), lambda a, b: np.clip(a, -1, 1)),
    "copy_": (lambda t, other: t.copy_(other), lambda a, b: b),
    "t_": (lambda t, other: t.t_(), lambda a, b: a.T),
}


@st.composite
def underscore_samples(draw):
    """Sample(self, other, name): self in every writable layout (transposed, permuted, stepped
    slices, offsets), so the tensor written is often a view; t_ is documented for tensors of at
    most 2 dims, so the shapes stay 2-d."""
    # written, so writable layouts; 2-d: t_ is documented for tensors of at most 2 dims
    x = draw(specs(layouts=WRITABLE_LAYOUTS, shapes=shapes(min_dims=2, max_dims=2)), label="x")
    name = draw(st.sampled_from(sorted(UNDERSCORE)), label="method")
    label(f"method={name}")
    return Sample((x, draw(specs(shape=x.shape), label="other"), name))


UNDERSCORE_OP = Operation(
    "reductions.inplace_underscore",
    dtypes="float32",
    samples=underscore_samples(),
    call=lambda t, other, name: UNDERSCORE[name][0](t, other),
)


@UNDERSCORE_OP.property
def test_underscore_methods_change_and_return_self(device, dtype, sample):
    x, o, drawn = sample.args
    other = o.build(dtype=dtype, device=device)
    other_values = independent_array(o.logical_values(dtype))
    drawn_out = UNDERSCORE_OP(sample, dtype=dtype, device=device)  # the drawn method is what other modes compare
    expected = UNDERSCORE[drawn][1](independent_array(x.logical_values(dtype)), other_values)
    np.testing.assert_array_equal(independent_array(drawn_out.cpu()), expected, f"{drawn} did not change self")
    for name, (method, expected_of) in UNDERSCORE.items():  # here every method is checked
        t = x.build(dtype=dtype, device=device)
        # another tensor over the same memory, made before the call: the write must reach the
        # memory itself, not only the Python object
        alias = t.as_strided(t.shape, t.stride(), t.storage_offset())
        expected = expected_of(independent_array(x.logical_values(dtype)), other_values)
        version = t._version
        returned = method(t, other)
        assert returned is t, f"{name} did not return self"
        np.testing.assert_array_equal(independent_array(t.cpu()), expected, f"{name} did not change self")
        # "Every tensor keeps a version counter, that is incremented every time it is marked dirty
        # in any operation" (autograd notes): an in-place method marks self dirty
        assert t._version > version, f"{name} did not bump the version counter of self"
        if name != "t_":  # t_ changes self's strides, not its memory
            np.testing.assert_array_equal(
                independent_array(alias.cpu()), expected, f"{name}: another view of self's memory does not see the write"
            )


def add_into_new_out(a, b):
    out = a.new_empty(torch.broadcast_shapes(a.shape, b.shape))
    returned = torch.add(a, b, out=out)
    return out, returned


ADD_OUT = Operation(
    "reductions.add_out", dtypes="numeric", samples=broadcast_operands(2), call=lambda a, b: add_into_new_out(a, b)[0]
)


@ADD_OUT.property
def test_add_out_writes_into_out(device, dtype, sample):
    (x, y), _ = sample.build(dtype=dtype, device=device)
    out, returned = add_into_new_out(x, y)
    assert returned is out, "add(out=) did not return out itself"
    assert_close(ADD_OUT(sample, dtype=dtype, device=device), x + y, msg=lambda m: f"add(out=): out does not hold the sum\n{m}")


def with_axis(x, axis):
    """sum, mean and argmax given axis=; argmax only where the axis has an element to point at
    (over an empty dim it has no index to return: it raises, whichever the name)."""
    out = {"sum": torch.sum(x, axis=axis), "mean": torch.mean(x, axis=axis)}
    if x.dim() == 0 or x.shape[axis]:
        out["argmax"] = torch.argmax(x, axis=axis)
    return out


@st.composite
def axis_samples(draw):
    """Sample(x, axis): x of any shape (0-d and empty too), requiring grad or not."""
    x = draw(specs(), label="x")
    requires_grad = draw(st.booleans(), label="requires_grad")
    return Sample((Arg(x, requires_grad=requires_grad), draw(dims(x.ndim), label="axis")))


AXIS = Operation("reductions.axis_alias", dtypes="float32_64", samples=axis_samples(), call=lambda x, axis: with_axis(x, axis))


@AXIS.property
@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")  # NumPy on a zero-size axis; torch gives NaN too
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_axis_is_another_name_for_dim(device, dtype, sample):
    arg, axis = sample.args
    x, requires_grad = arg.spec, arg.requires_grad
    # the oracle is NumPy's own axis= (0-d: NumPy takes axis 0 or -1 of a 0-d array as no axis)
    np_axis = axis if x.ndim else None
    values = independent_array(x.logical_values(dtype)).astype(np.float64)
    out = AXIS(sample, dtype=dtype, device=device)
    for name, reference in (("sum", np.sum), ("mean", np.mean)):
        expected = np.asarray(reference(values, axis=np_axis))
        assert out[name].dtype == dtype, f"{name}(axis={axis}): the result dtype is {out[name].dtype}, not the input's {dtype}"
        assert tuple(out[name].shape) == expected.shape, (
            f"{name}(axis={axis}): shape {tuple(out[name].shape)}, NumPy's {expected.shape}"
        )
        assert_close_to_reference(out[name].detach(), torch.from_numpy(expected), equal_nan=True)
    # exactly, on integer values (where a float sum is exact), with either name
    t, a = integer_valued(x, dtype, device, requires_grad)
    for name, reduce, reference in (("sum", torch.sum, np.sum), ("mean", torch.mean, exact_mean)):
        expected = reference(a, axis=np_axis)
        assert_reduction_of(reduce(t, axis=axis), expected, dtype, f"{name}(axis={axis})")
        assert_reduction_of(reduce(t, dim=axis), expected, dtype, f"{name}(dim={axis})")
    if a.ndim and a.shape[axis] == 0:
        assert "argmax" not in out
        return  # argmax over an empty dim has no index to return: it raises, whichever the name
    first = np.argmax(values, axis=np_axis)  # NumPy's argmax: the first maximum too
    for form, got in (("axis", out["argmax"]), ("dim", torch.argmax(t, dim=axis)), ("axis", torch.argmax(t, axis=axis))):
        assert got.dtype == torch.int64, f"argmax({form}=) gave {got.dtype}, not int64 indices"
        ref = first if got is out["argmax"] else np.argmax(a, axis=np_axis)
        np.testing.assert_array_equal(independent_array(got.cpu()), ref, f"argmax({form}={axis}) is not NumPy's argmax")


@st.composite
def one_hot_samples(draw):
    """Sample(classes, num_classes): int64 classes of any shape in [0, num_classes). The test
    also infers the count (num_classes=-1, and left out: its default) from the same classes."""
    shape = draw(shapes(max_dims=3, max_side=4), label="shape")
    num_classes = draw(st.sampled_from([1, 3, 6]), label="num_classes")
    classes = draw(specs(shape=shape, low=0, high=num_classes), label="classes")  # in [0, num_classes): high is exclusive
    return Sample((classes, num_classes))


# num_classes given: with -1 the result's shape depends on the largest class, which Dynamo cannot
# trace (a graph break, nothing compiled) and meta tensors do not hold; the test checks -1 itself.
ONE_HOT = Operation(
    "reductions.one_hot",
    dtypes="int64",
    samples=one_hot_samples(),
    call=lambda classes, num_classes: F.one_hot(classes, num_classes=num_classes),
)


@ONE_HOT.property
def test_one_hot_puts_a_single_one_at_each_class(device, dtype, sample):
    spec, num_classes = sample.args
    values = independent_array(spec.logical_values(dtype))
    t = spec.build(dtype=dtype, device=device)
    inferred = {"num_classes=-1": lambda: F.one_hot(t, num_classes=-1), "num_classes left out": lambda: F.one_hot(t)}
    outputs = {f"num_classes={num_classes}": (num_classes, ONE_HOT(sample, dtype=dtype, device=device))}
    if values.size:  # "one greater than the largest class value": an empty input has none
        outputs.update({form: (int(values.max()) + 1, call()) for form, call in inferred.items()})
    for form, (classes, out) in outputs.items():
        assert out.shape == (*spec.shape, classes) and out.dtype == torch.int64, f"one_hot({form}): not int64 (*, classes)"
        expected = (np.arange(classes) == values[..., None]).astype(np.int64)
        np.testing.assert_array_equal(independent_array(out.cpu()), expected, f"one_hot({form}): not 1 exactly at each class")


def masked_fill_samples(dtype):
    """Sample(self, mask, value): self in every writable layout, with the dtype's extremes; the
    mask broadcasts to self's shape (never the other way round): some trailing dims of self's
    shape, any of them replaced by 1; a value of self's kind."""

    @st.composite
    def draw_sample(draw):
        self_shape = draw(shapes(max_dims=3, max_side=3), label="self_shape")
        kept = draw(st.integers(0, len(self_shape)), label="mask_ndim")
        trailing = self_shape[len(self_shape) - kept :]
        mask_shape = tuple(1 if draw(st.booleans(), label=f"broadcast_{i}") else n for i, n in enumerate(trailing))
        x = draw(specs(shape=self_shape, layouts=WRITABLE_LAYOUTS, extremes=True), label="x")
        mask = draw(specs(shape=mask_shape), label="mask")
        return Sample((x, Arg(mask, dtype=torch.bool), {torch.bool: True, torch.int64: -7}.get(dtype, 0.5)))

    return draw_sample()


def masked_fills(x, mask, value):
    """masked_fill's copy, then masked_fill_ on self: (the copy, what masked_fill_ returned)."""
    out = x.masked_fill(mask, value)
    return out, x.masked_fill_(mask, value)


MASKED_FILL = Operation(
    "reductions.masked_fill",
    dtypes="representative",
    samples=masked_fill_samples,
    call=lambda x, mask, value: masked_fills(x, mask, value),
)


@MASKED_FILL.property
def test_masked_fill_writes_value_where_the_mask_is_true(device, dtype, sample):
    x, mask_arg, value = sample.args
    mask = independent_array(mask_arg.spec.logical_values(torch.bool))
    t = x.build(dtype=dtype, device=device)
    m = torch.from_numpy(mask).to(device)
    expected = np.where(mask, np.array(value, dtype=independent_array(t.cpu()).dtype), independent_array(x.logical_values(dtype)))
    copied, filled = MASKED_FILL(sample, dtype=dtype, device=device)
    for what, got in (("masked_fill", copied), ("masked_fill_", filled)):
        assert got.dtype == dtype, f"{what} gave {got.dtype}"
        np.testing.assert_array_equal(independent_array(got.cpu()), expected, f"{what}: not value where the mask holds")
    out = t.masked_fill(m, value)
    assert out.dtype == dtype, f"masked_fill gave {out.dtype}"
    np.testing.assert_array_equal(independent_array(out.cpu()), expected, "masked_fill: not value where the mask holds")
    np.testing.assert_array_equal(
        independent_array(t.cpu()), independent_array(x.logical_values(dtype)), "masked_fill changed self"
    )
    alias = t.as_strided(t.shape, t.stride(), t.storage_offset())  # another tensor over self's memory
    version = t._version
    assert t.masked_fill_(m, value) is t, "masked_fill_ did not return self"
    np.testing.assert_array_equal(independent_array(t.cpu()), expected, "masked_fill_ did not fill self")
    np.testing.assert_array_equal(independent_array(alias.cpu()), expected, "masked_fill_: another view of self's memory")
    assert t._version > version, "masked_fill_ did not bump self's version counter"
    if t.numel() >= 2:  # a mask true at the second element only (row-major): where the write lands shows
        u = x.build(dtype=dtype, device=device)
        one = torch.zeros(u.numel(), dtype=torch.bool)
        one[1] = True
        one = one.reshape(u.shape)
        want = np.where(independent_array(one), np.array(value, dtype=expected.dtype), independent_array(x.logical_values(dtype)))
        u.masked_fill_(one.to(device), value)
        np.testing.assert_array_equal(independent_array(u.cpu()), want, "masked_fill_ wrote where the mask is False")


ELEMENTWISE = {
    # Tensor method -> NumPy's function: the documented formula y_i = f(x_i), with IEEE special cases
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "sin": np.sin,
    "cos": np.cos,
    "abs": np.abs,
}


ELEMENTWISE_MATH = Operation(
    "reductions.elementwise_math",
    dtypes="float32_64",
    # |x| <= 50: sin and cos of large arguments depend on argument reduction, whose accuracy no doc
    # promises; NaN, infinities and -0.0 (special_values) cover the edges the docs name
    samples=specs(special_values=True, low=-50, high=50).map(lambda x: Sample((x,))),
    call=lambda x: {name: (getattr(torch, name)(x), getattr(x, name)()) for name in ELEMENTWISE},
)


@ELEMENTWISE_MATH.property
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's own warnings for log(0), sqrt(-1)
def test_elementwise_math_follows_the_formula_elementwise(device, dtype, sample):
    (x,) = sample.args
    outputs = ELEMENTWISE_MATH(sample, dtype=dtype, device=device)
    assert sorted(outputs) == sorted(ELEMENTWISE)
    for name, reference in ELEMENTWISE.items():
        expected = reference(independent_array(x.logical_values(dtype)))
        for form, out in zip(("torch." + name, "Tensor." + name), outputs[name]):
            assert tuple(out.shape) == x.shape and out.dtype == dtype, f"{form}: not the input's shape and dtype"
            got = independent_array(out.cpu())
            if name == "abs":  # exact in IEEE 754, the sign of a zero included: abs(-0.0) is +0.0
                np.testing.assert_array_equal(got, expected, f"{form}: not |x| exactly")
                assert not np.signbit(got[~np.isnan(got)]).any(), f"{form}: a negative sign survived"
                continue
            np.testing.assert_allclose(got, expected, rtol=4 * torch.finfo(dtype).eps, atol=0, equal_nan=True, err_msg=form)


def at_the_edges(x, other):
    """The reductions at their edges: of nothing, of int8 values whose sum int8 cannot hold, and
    the NaN rules of maximum, fmax, nanmean and a full max, on x and other."""
    empty = x.new_empty(0)
    ints = torch.full((3,), 100, dtype=torch.int8, device=x.device)
    out = {
        "sum of nothing": torch.sum(empty),
        "prod of nothing": torch.prod(empty),
        "mean of nothing": empty.mean(),
        "sum of int8": torch.sum(ints),
        "cumsum of int8": torch.cumsum(ints, 0),
        "prod of int8": torch.prod(ints),
        "sum(dtype=float64) of int8": torch.sum(ints, dtype=torch.float64),
        "maximum": torch.maximum(x, other),
        "fmax": torch.fmax(x, other),
        "nanmean": torch.nanmean(x),
    }
    if x.dim():
        out["nanmean(x, -1)"] = torch.nanmean(x, -1)
    if x.numel():
        out["max"] = x.max()
    return out


@st.composite
def edge_samples(draw):
    x = draw(specs(special_values=True, extremes=True), label="x")
    return Sample((x, draw(specs(shape=x.shape, special_values=True, extremes=True), label="other")))


EDGES = Operation(
    "reductions.edges_and_nan", dtypes="float32_64", samples=edge_samples(), call=lambda x, other: at_the_edges(x, other)
)


@EDGES.property
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's own warnings on the NaN and inf it is given
def test_reductions_at_the_edges_and_nan_handling(device, dtype, sample):
    x, o = sample.args
    got = EDGES(sample, dtype=dtype, device=device)
    exactly = dict(rtol=0, atol=0, equal_nan=True)
    scalar = lambda v, d=dtype: torch.tensor(v, dtype=d)
    assert_close(got["sum of nothing"].cpu(), scalar(0.0), **exactly, msg="the sum of nothing is 0")  # the identities of + and *
    assert_close(got["prod of nothing"].cpu(), scalar(1.0), **exactly, msg="the product of nothing is 1")
    assert_close(got["mean of nothing"].cpu(), scalar(math.nan), **exactly, msg="the mean of nothing is NaN")  # 0 / 0
    with pytest.raises(RuntimeError):  # max has no identity: a full max of nothing is refused
        torch.empty(0, dtype=dtype, device=device).max()
    # integers promote to int64: the exact 300 (int8 would wrap to 44)
    assert_equal(got["sum of int8"].cpu(), scalar(300, torch.int64), "sum of int8 is the int64 sum")
    assert_equal(got["cumsum of int8"].cpu(), torch.tensor([100, 200, 300]), "cumsum of int8 is the int64 running sum")
    assert_equal(got["prod of int8"].cpu(), scalar(1_000_000, torch.int64), "prod of int8 is the int64 product")
    # dtype= casts before reducing: 300 in float64, not a wrapped int8 sum converted
    assert_equal(got["sum(dtype=float64) of int8"].cpu(), scalar(300.0, torch.float64), "sum(dtype=) casts before reducing")
    a, b = independent_array(x.logical_values(dtype)), independent_array(o.logical_values(dtype))
    # maximum propagates NaN ("that element is returned"); fmax takes the non-NaN element
    for name, reference in (("maximum", np.maximum), ("fmax", np.fmax)):
        out = got[name]
        assert out.dtype == dtype, f"{name} of two {dtype} tensors gave {out.dtype}"
        np.testing.assert_array_equal(independent_array(out.cpu()), reference(a, b), f"{name} is not NumPy's {name}")
    # nanmean of integer values (NaN kept): the exact sum of the non-NaN values over their count,
    # rounded once, so decided exactly
    ints, c = integer_valued(x, dtype, device)
    with np.errstate(invalid="ignore", divide="ignore"):
        assert_reduction_of(torch.nanmean(ints), np.nansum(c) / (~np.isnan(c)).sum(), dtype, "nanmean() ignores NaNs")
        if c.ndim:
            along = np.nansum(c, axis=-1) / (~np.isnan(c)).sum(axis=-1)
            assert_reduction_of(torch.nanmean(ints, -1), along, dtype, "nanmean(x, -1) ignores NaNs, keepdim omitted: False")
    assert ("max" in got) == bool(x.numel) and ("nanmean(x, -1)" in got) == bool(x.ndim)
    if x.numel:
        # the maximum of every element, NaN where there is a NaN, as a 0-d tensor of the input's dtype
        assert_close(
            got["max"].cpu(), scalar(np.max(a).item()), **exactly, msg="max of a tensor with NaN is NaN, else its maximum"
        )
        finite = a[~np.isnan(a)]
        # near the dtype's limits the float sum depends on the order of its terms (max + 1 - max):
        # nanmean is compared only where no term is within 1e10 of overflowing
        if np.all(np.abs(finite) < torch.finfo(dtype).max / 1e10):
            nearly = dict(rtol=1e-4, atol=1e-4, equal_nan=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                expected = np.nanmean(a.astype(np.float64)) if finite.size else np.nan
                assert_close(got["nanmean"].cpu(), scalar(expected), **nearly, msg="nanmean ignores NaNs")
            if x.ndim:  # along a dim, keepdim omitted: its default False drops the dim
                with np.errstate(invalid="ignore", divide="ignore"):
                    along = np.nanmean(a.astype(np.float64), axis=-1) if a.shape[-1] else np.full(a.shape[:-1], np.nan)
                assert_close(
                    got["nanmean(x, -1)"].cpu(),
                    torch.from_numpy(np.asarray(along)).to(dtype),
                    **nearly,
                    msg="nanmean along a dim",
                )


def over_dims(x, dims, keepdim):
    """sum and mean over `dims`, as Tensor methods and torch functions; keepdim None: omitted."""
    kept = {} if keepdim is None else {"keepdim": keepdim}
    return {
        f"{form}.{name}": reduce(x, dims, **kept)
        for name in ("sum", "mean")
        for form, reduce in (
            ("Tensor", lambda t, d, name=name, **k: getattr(t, name)(dim=d, **k)),
            ("torch", lambda t, d, name=name, **k: getattr(torch, name)(t, d, **k)),
        )
    }


@st.composite
def dim_tuple_samples(draw):
    """Sample(x, dims, keepdim): a tuple of distinct dims (negative ones too) of x; keepdim True,
    False or None (omitted: its documented default False)."""
    # at least one dim: a tuple of dims of a 0-d tensor has nothing to name
    x = draw(specs(shapes=shapes(min_dims=1, max_dims=4)), label="x")
    chosen = draw(st.lists(dims(x.ndim), min_size=1, max_size=x.ndim, unique_by=lambda d: d % x.ndim), label="dims")
    return Sample((x, tuple(chosen), draw(st.sampled_from([None, True, False]), label="keepdim")))


DIM_TUPLES = Operation(
    "reductions.dim_tuples_keepdim",
    dtypes="float32_64",
    samples=dim_tuple_samples(),
    call=lambda x, dims, keepdim: over_dims(x, dims, keepdim),
)


@DIM_TUPLES.property
@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")  # NumPy on zero-size axes; torch gives NaN too
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_sum_and_mean_over_dim_tuples_with_keepdim(device, dtype, sample):
    x, chosen, keepdim = sample.args
    axes = tuple(d % x.ndim for d in chosen)
    values = independent_array(x.logical_values(dtype)).astype(np.float64)
    for form, out in DIM_TUPLES(sample, dtype=dtype, device=device).items():
        expected = np.asarray((np.sum if form.endswith("sum") else np.mean)(values, axis=axes, keepdims=bool(keepdim)))
        what = f"{form}(dim={chosen}, keepdim={keepdim})"
        assert out.dtype == dtype, f"{what}: the result dtype is {out.dtype}, not the input's {dtype}"
        assert tuple(out.shape) == expected.shape, f"{what}: shape {tuple(out.shape)}, NumPy's {expected.shape}"
        assert_close_to_reference(out, torch.from_numpy(expected), equal_nan=True)
    # exactly, on integer values (where a float sum is exact)
    t, a = integer_valued(x, dtype, device)
    for name, reference in (("sum", np.sum), ("mean", exact_mean)):
        expected = reference(a, axis=axes, keepdims=bool(keepdim))
        for form, out in over_dims(t, chosen, keepdim).items():
            if form.endswith(name):
                assert_reduction_of(out, expected, dtype, f"{form}(dim={chosen}, keepdim={keepdim})")


def kept(keepdim):
    """keepdim as a keyword, or nothing when it is None (left out: its documented default, False)."""
    return {} if keepdim is None else {"keepdim": keepdim}


@st.composite
def min_samples(draw):
    """Sample(x, dim, keepdim): a non-empty tensor (a full min of nothing has no value) with small
    integer values, so ties are common; keepdim True, False or left out (None)."""
    x, dim = draw(tensor_and_dim(shapes=NON_EMPTY, **TIES), label="x_dim").args
    return Sample((x, dim, draw(st.sampled_from([None, True, False]), label="keepdim")))


def minima(x, dim, keepdim):
    """min as a torch function and a Tensor method, along dim and of the whole tensor."""
    return {
        "torch.min(x, dim)": torch.min(x, dim, **kept(keepdim)),
        "Tensor.min(dim)": x.min(dim, **kept(keepdim)),
        "torch.min(x)": torch.min(x),
        "Tensor.min()": x.min(),
    }


# float32 and float64: the first-index rule is about values, and max_dim_values_indices covers every real dtype
MIN = Operation("reductions.min_dim_values_indices", dtypes="float32_64", samples=min_samples(), call=minima)


@MIN.property
def test_min_along_dim_returns_values_and_first_indices(device, dtype, sample):
    x, dim, keepdim = sample.args
    a = independent_array(x.logical_values(dtype))
    # "If there are multiple minimal values in a reduced row then the indices of the first minimal
    # value are returned" (torch.min): NumPy's argmin documents the same first-occurrence rule.
    first = np.expand_dims(np.argmin(a, axis=dim), dim)
    expected = np.take_along_axis(a, first, axis=dim)
    if not keepdim:
        first, expected = first.squeeze(dim), expected.squeeze(dim)
    got = MIN(sample, dtype=dtype, device=device)
    for form in ("torch.min(x, dim)", "Tensor.min(dim)"):
        values, indices = got[form]
        what = f"{form}, keepdim={keepdim}"
        assert values.dtype == dtype, f"{what}: the values are {values.dtype}, not the input's {dtype}"
        assert indices.dtype == torch.int64, f"{what}: the indices are {indices.dtype}, not int64"
        assert tuple(values.shape) == tuple(indices.shape) == first.shape, f"{what}: shape {tuple(values.shape)}, squeeze"
        np.testing.assert_array_equal(independent_array(values.cpu()), expected, f"{what}: not the minima along dim")
        np.testing.assert_array_equal(independent_array(indices.cpu()), first, f"{what}: not the index of the first minimum")
    for form in ("torch.min(x)", "Tensor.min()"):
        out = got[form]
        assert out.dtype == dtype and out.dim() == 0, f"{form}: not a 0-d tensor of the input's dtype"
        assert independent_array(out.cpu()).item() == a.min().item(), f"{form}: not the minimum of all elements"


@st.composite
def all_any_samples(draw):
    """Sample(x, dim, keepdim): values in {-1, 0, 1} (0 is the only false one) with NaN and +-inf
    (true, as NumPy counts them) where floating; dim None (every dim), one dim or a tuple of
    distinct dims, negative ones too; keepdim True, False or left out (None)."""
    # -1..1: zeros (false) and non-zeros (true) in every row, so both answers occur
    x = draw(specs(low=-1, high=1, special_values=True), label="x")
    which = draw(st.sampled_from(["none", "int", "tuple"]), label="dim_kind")
    label(f"dim={which}")
    if which == "none":
        dim = None
    elif which == "int":
        dim = draw(dims(x.ndim), label="dim")
    else:
        distinct = st.lists(dims(x.ndim), min_size=1, max_size=max(x.ndim, 1), unique_by=lambda d: d % max(x.ndim, 1))
        dim = tuple(draw(distinct, label="dims"))
    return Sample((x, dim, draw(st.sampled_from([None, True, False]), label="keepdim")))


def all_any(x, dim, keepdim):
    """all and any as torch functions and Tensor methods; dim None: the whole tensor (no dim given)."""
    if dim is None:
        return {"torch.all": torch.all(x), "Tensor.all": x.all(), "torch.any": torch.any(x), "Tensor.any": x.any()}
    k = kept(keepdim)
    return {
        "torch.all": torch.all(x, dim, **k),
        "Tensor.all": x.all(dim, **k),
        "torch.any": torch.any(x, dim, **k),
        "Tensor.any": x.any(dim, **k),
    }


# bool, uint8 (the documented exception), integers, floats and complex, one of each kind (the default run's time)
ALL_ANY = Operation("reductions.all_any", dtypes="numpy_representative", samples=all_any_samples(), call=all_any)


@ALL_ANY.property
def test_all_and_any_test_truth_along_dims(device, dtype, sample):
    x, dim, keepdim = sample.args
    truth = independent_array(x.logical_values(dtype)).astype(bool)  # NumPy: 0 false, anything else (NaN too) true
    axis = dim if dim is None or isinstance(dim, int) else tuple(d % max(x.ndim, 1) for d in dim)
    if x.ndim == 0 and axis is not None:
        axis = ()  # a 0-d tensor's dim 0 (or -1) is the tensor itself: nothing to reduce
    keepdims = bool(keepdim) and dim is not None
    # "bool for all supported dtypes except uint8. For uint8 the dtype of output is uint8 itself."
    want_dtype = torch.uint8 if dtype == torch.uint8 else torch.bool
    for form, out in ALL_ANY(sample, dtype=dtype, device=device).items():
        reference = np.all if form.endswith("all") else np.any
        expected = np.asarray(reference(truth, axis=axis, keepdims=keepdims))
        what = f"{form}(dim={dim}, keepdim={keepdim})"
        assert out.dtype == want_dtype, f"{what} of {dtype} gave {out.dtype}, not {want_dtype}"
        assert tuple(out.shape) == expected.shape, f"{what}: shape {tuple(out.shape)}, not NumPy's {expected.shape}"
        np.testing.assert_array_equal(independent_array(out.cpu()).astype(bool), expected, f"{what}: not NumPy's truth")


def rows(a, dim):
    """The 1-D rows of array `a` along `dim`, as a 2-D array (dim moved last), and how to put rows back."""
    moved = np.moveaxis(a.reshape(a.shape or (1,)), dim, -1)
    flat = moved.reshape(math.prod(moved.shape[:-1]), moved.shape[-1])
    return flat, lambda r: np.moveaxis(r.reshape(*moved.shape[:-1], r.shape[-1]), -1, dim)


def stable_order(row, descending):
    """The stable sorting permutation of one row: Python's sort is stable, and with reverse=True it
    still keeps equal elements in their original order (the Python docs' sorting HOWTO)."""
    return sorted(range(len(row)), key=lambda i: row[i].item(), reverse=descending)


@st.composite
def topk_samples(draw):
    """Sample(x, k, dim, largest, sorted): small integer values (ties common), k over [0, size of
    dim], dim given or left out (None: the last), largest and sorted True, False or left out."""
    x = draw(specs(shapes=shapes(min_dims=1), **TIES), label="x")  # a dim to take k of: at least one
    dim = draw(st.one_of(st.none(), dims(x.ndim)), label="dim")
    k = draw(st.integers(0, x.shape[-1 if dim is None else dim]), label="k")
    options = draw(option_grid(largest=[None, True, False], sorted=[None, True, False]), label="options")
    return Sample((x, k, dim, options["largest"], options["sorted"]))


def topks(x, k, dim, largest, sorted):
    """topk as a torch function and a Tensor method; None: the argument left out."""
    given = {name: v for name, v in (("dim", dim), ("largest", largest), ("sorted", sorted)) if v is not None}
    return {"torch.topk": torch.topk(x, k, **given), "Tensor.topk": x.topk(k, **given)}


TOPK = Operation("reductions.topk_k_largest", dtypes="float32_64", samples=topk_samples(), call=topks)


@TOPK.property
def test_topk_returns_the_k_largest_with_their_indices(device, dtype, sample):
    x, k, dim, largest, is_sorted = sample.args
    d = x.ndim - 1 if dim is None else dim % x.ndim  # "If dim is not given, the last dimension"
    a = independent_array(x.logical_values(dtype))
    flat, back = rows(a, d)
    smallest = largest is False
    # the k largest (smallest) values of each row, in descending (ascending) order
    ordered = np.sort(flat, axis=-1)
    expected = (ordered if smallest else ordered[:, ::-1])[:, :k]
    for form, (values, indices) in TOPK(sample, dtype=dtype, device=device).items():
        what = f"{form}(k={k}, dim={dim}, largest={largest}, sorted={is_sorted})"
        assert values.dtype == dtype and indices.dtype == torch.int64, f"{what}: values {values.dtype}, indices {indices.dtype}"
        shape = list(x.shape)
        shape[d] = k
        assert list(values.shape) == list(indices.shape) == shape, f"{what}: shape {list(values.shape)}, not {shape}"
        v, i = rows(independent_array(values.cpu()), d)[0], rows(independent_array(indices.cpu()), d)[0]
        assert ((i >= 0) & (i < a.shape[d])).all(), f"{what}: an index outside the dim"
        assert all(len(set(r.tolist())) == len(r) for r in i), f"{what}: an element taken twice"
        np.testing.assert_array_equal(np.take_along_axis(flat, i, axis=-1), v, f"{what}: the indices do not point at the values")
        if is_sorted is False:  # "sorted ... controls whether to return the elements in sorted order": any order
            v = np.sort(v, axis=-1) if smallest else np.sort(v, axis=-1)[:, ::-1]
        # which of tied elements is taken is open ("the indices of tied elements are not guaranteed")
        np.testing.assert_array_equal(v, expected, f"{what}: not the k {'smallest' if smallest else 'largest'} in order")


@st.composite
def sort_samples(draw):
    """Sample(x, dim, descending, stable): small integer values (ties common), dim given or left out
    (None: the last), descending and stable True, False or left out."""
    x = draw(specs(**TIES), label="x")
    dim = draw(st.one_of(st.none(), dims(x.ndim)), label="dim")
    options = draw(option_grid(descending=[None, True, False], stable=[None, True, False]), label="options")
    return Sample((x, dim, options["descending"], options["stable"]))


def sorts(x, dim, descending, stable):
    """sort and argsort as torch functions, argsort as a Tensor method; None: the argument left out."""
    given = {name: v for name, v in (("dim", dim), ("descending", descending), ("stable", stable)) if v is not None}
    return {
        "torch.sort": torch.sort(x, **given),
        "torch.argsort": torch.argsort(x, **given),
        "Tensor.argsort": x.argsort(**given),
    }


SORT = Operation("reductions.sort_orders_values", dtypes="float32_64", samples=sort_samples(), call=sorts)


@SORT.property
def test_sort_orders_values_and_argsort_gives_the_order(device, dtype, sample):
    x, dim, descending, stable = sample.args
    d = -1 if dim is None else dim  # "If dim is not given, the last dimension"
    a = independent_array(x.logical_values(dtype))
    flat, back = rows(a, d)
    ordered = np.sort(flat, axis=-1)
    if descending:
        ordered = ordered[:, ::-1]
    got = SORT(sample, dtype=dtype, device=device)
    values, indices = got["torch.sort"]
    what = f"torch.sort(dim={dim}, descending={descending}, stable={stable})"
    assert values.dtype == dtype, f"{what}: the values are {values.dtype}, not the input's {dtype}"
    assert tuple(values.shape) == x.shape, f"{what}: shape {tuple(values.shape)}, not the input's {x.shape}"
    np.testing.assert_array_equal(independent_array(values.cpu()), back(ordered).reshape(a.shape), f"{what}: not sorted")
    # "If True, ... preserving the order of equivalent elements"; otherwise the order of ties is open
    stable_indices = np.array([stable_order(r, bool(descending)) for r in flat], dtype=np.int64).reshape(flat.shape)
    for form, idx in (("torch.sort", indices), *((f, got[f]) for f in ("torch.argsort", "Tensor.argsort"))):
        what = f"{form}(dim={dim}, descending={descending}, stable={stable})"
        assert idx.dtype == torch.int64 and tuple(idx.shape) == x.shape, f"{what}: indices not int64 of the input's shape"
        i = rows(independent_array(idx.cpu()), d)[0]
        assert all(sorted(r.tolist()) == list(range(flat.shape[-1])) for r in i), f"{what}: not a permutation of the dim"
        np.testing.assert_array_equal(np.take_along_axis(flat, i, axis=-1), ordered, f"{what}: not the sorting order")
        if stable:
            np.testing.assert_array_equal(i, stable_indices, f"{what}: stable=True did not keep equal elements in order")


@st.composite
def amax_samples(draw):
    """Sample(x, dim, keepdim): small integer values (ties common: the gradient rule is about them);
    dim left out (None: every dim), one dim or a non-empty tuple of distinct dims; keepdim True,
    False or left out (None)."""
    # non-empty: a maximum of no element has no value
    x = draw(specs(shapes=NON_EMPTY, **TIES), label="x")
    which = draw(st.sampled_from(["none", "int", "tuple"]), label="dim_kind")
    label(f"dim={which}")
    if which == "none":
        dim = None
    elif which == "int":
        dim = draw(dims(x.ndim), label="dim")
    else:
        distinct = st.lists(dims(x.ndim), min_size=1, max_size=x.ndim, unique_by=lambda d: d % x.ndim)
        dim = tuple(draw(distinct, label="dims"))
    return Sample((x, dim, draw(st.sampled_from([None, True, False]), label="keepdim")))


def amax(x, dim, keepdim):
    """Tensor.amax; None: the argument left out."""
    given = {name: v for name, v in (("dim", dim), ("keepdim", keepdim)) if v is not None}
    return x.amax(**given)


AMAX = Operation("reductions.amax_dims_and_gradient", dtypes="float32_64", samples=amax_samples(), call=amax)


@AMAX.property
def test_amax_reduces_dims_and_splits_the_gradient_among_ties(device, dtype, sample):
    x, dim, keepdim = sample.args
    a = independent_array(x.logical_values(dtype))
    axis = None if dim is None else tuple(d % x.ndim for d in ((dim,) if isinstance(dim, int) else dim))
    expected = np.asarray(np.amax(a, axis=axis, keepdims=bool(keepdim)))
    out = AMAX(sample, dtype=dtype, device=device)
    what = f"Tensor.amax(dim={dim}, keepdim={keepdim})"
    assert out.dtype == dtype, f"{what}: {out.dtype}, not the input's {dtype}"
    assert tuple(out.shape) == expected.shape, f"{what}: shape {tuple(out.shape)}, not NumPy's {expected.shape}"
    np.testing.assert_array_equal(independent_array(out.cpu()), expected, f"{what}: not the maximum of each slice")
    if dtype.is_floating_point:
        # "Both amax/amin evenly distribute gradients between equal values": each maximal element of
        # a slice gets 1 / (the number of maximal elements in its slice) of the slice's gradient,
        # here a different one per slice (1, 2, 3, ... in row-major order of the result)
        t = x.build(dtype=dtype, device=device, requires_grad=True)
        tracked = amax(t, dim, keepdim)  # of an input that requires grad: the same maxima
        assert tracked.dtype == dtype, f"{what} of an input requiring grad: {tracked.dtype}, not the input's {dtype}"
        np.testing.assert_array_equal(
            independent_array(tracked.detach().cpu()),
            expected,
            f"{what} of an input requiring grad: not the maximum of each slice",
        )
        upstream = np.arange(1, expected.size + 1, dtype=np.float64).reshape(expected.shape)
        tracked.backward(torch.from_numpy(upstream).to(dtype=dtype, device=device))
        top = np.amax(a, axis=axis, keepdims=True)
        is_max = a == top
        share = is_max / np.sum(is_max, axis=axis, keepdims=True) * upstream.reshape(top.shape)
        assert_close(t.grad.cpu(), torch.from_numpy(share).to(dtype), msg=lambda m: f"{what}: gradient not split evenly\n{m}")


@st.composite
def prod_cumsum_samples(draw):
    """Sample(x, dim, keepdim): any shape, empty too; keepdim True, False or left out (None)."""
    # |values| <= 2: a product of hundreds of terms stays within float32's range, so the comparison is of values, not overflow
    x, dim = draw(tensor_and_dim(low=-2, high=2), label="x_dim").args
    return Sample((x, dim, draw(st.sampled_from([None, True, False]), label="keepdim")))


def prods_and_cumsums(x, dim, keepdim):
    return {"Tensor.prod(dim)": x.prod(dim, **kept(keepdim)), "Tensor.prod()": x.prod(), "Tensor.cumsum(dim)": x.cumsum(dim)}


PROD_CUMSUM = Operation(
    "reductions.prod_cumsum_along_dim", dtypes="float32_64", samples=prod_cumsum_samples(), call=prods_and_cumsums
)


@PROD_CUMSUM.property
def test_prod_and_cumsum_along_dim_are_numpys(device, dtype, sample):
    x, dim, keepdim = sample.args
    a = independent_array(x.logical_values(dtype)).astype(np.float64)
    if a.ndim:
        along = np.prod(a, axis=dim, keepdims=bool(keepdim))
        running = np.cumsum(a, axis=dim)
    else:  # a 0-d tensor's one dim (0 or -1) is itself: its product and running sum are its value
        along = running = a
    expected = {"Tensor.prod(dim)": along, "Tensor.prod()": np.prod(a), "Tensor.cumsum(dim)": running}
    for form, out in PROD_CUMSUM(sample, dtype=dtype, device=device).items():
        want = np.asarray(expected[form])
        what = f"{form} (dim={dim}, keepdim={keepdim})"
        assert out.dtype == dtype, f"{what}: {out.dtype}, not the input's {dtype}"
        assert tuple(out.shape) == want.shape, f"{what}: shape {tuple(out.shape)}, not NumPy's {want.shape}"
        assert_close_to_reference(
            out,
            torch.from_numpy(want),
            **tolerance("sum_of_terms", dtype),
            msg=lambda m, what=what: f"{what}: not NumPy's value\n{m}",
        )
        got = independent_array(out.cpu()).astype(np.float64)
        # where nothing is rounded, exactly: a product of no factors is 1, of one factor that
        # factor, a running sum's first entry is its first term (a 0-d tensor: its value throughout)
        rows = a.shape[dim] if a.ndim else 1
        if form == "Tensor.prod()" and a.size <= 1 or form == "Tensor.prod(dim)" and rows <= 1:
            np.testing.assert_array_equal(got, want, f"{what}: a product of at most one factor is not exact")
        if form == "Tensor.cumsum(dim)" and a.size:
            first = (lambda v: v) if not a.ndim else (lambda v: np.take(v, [0], axis=dim))
            np.testing.assert_array_equal(first(got), first(a), f"{what}: the first running sum is not the first term")


@st.composite
def reduced_dims(draw, ndim):
    """dim None (every dim), one dim or a non-empty tuple of distinct dims, negative ones too;
    reports dim=none|int|tuple."""
    which = draw(st.sampled_from(["none", "int", "tuple"]), label="dim_kind")
    label(f"dim={which}")
    if which == "none":
        return None
    if which == "int":
        return draw(dims(ndim), label="dim")
    distinct = st.lists(dims(ndim), min_size=1, max_size=max(ndim, 1), unique_by=lambda d: d % max(ndim, 1))
    return tuple(draw(distinct, label="dims"))


def axes_of(dim, ndim):
    """NumPy's axis for a torch dim argument (None, an int or a tuple); a 0-d tensor's dim 0 or -1 is itself."""
    if dim is None:
        return None
    if not ndim:
        return ()
    return tuple(d % ndim for d in ((dim,) if isinstance(dim, int) else dim))


@st.composite
def std_var_samples(draw):
    """Sample(x, dim, correction, keepdim): any shape, empty too; correction left out (None: its
    default 1), 0, 1 or 2 (at or past the count, where the formula divides by max(0, N - correction)
    = 0); keepdim True, False or left out (None)."""
    x = draw(specs(), label="x")
    dim = draw(reduced_dims(x.ndim), label="dim")
    options = draw(option_grid(correction=[None, 0, 1, 2], keepdim=[None, True, False]), label="options")
    return Sample((x, dim, options["correction"], options["keepdim"]))


def stds_and_vars(x, dim, correction, keepdim):
    given = {name: v for name, v in (("correction", correction), ("keepdim", keepdim)) if v is not None}
    return {"Tensor.std": x.std(dim, **given), "Tensor.var": x.var(dim, **given)}


STD_VAR = Operation("reductions.std_var_correction", dtypes="float32_64", samples=std_var_samples(), call=stds_and_vars)


@STD_VAR.property
@pytest.mark.filterwarnings("ignore:.*degrees of freedom is <= 0:UserWarning")  # N - correction <= 0: torch's warning
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's own on 0 / 0
def test_std_and_var_follow_the_documented_formula(device, dtype, sample):
    x, dim, correction, keepdim = sample.args
    a = independent_array(x.logical_values(dtype)).astype(np.float64)
    axis = axes_of(dim, x.ndim)
    delta = 1 if correction is None else correction  # "Defaults to Bessel's correction, correction=1"
    # var = 1 / max(0, N - correction) * sum((x_i - mean)^2); std its square root
    n = a.size // max(np.sum(a, axis=axis, keepdims=True).size, 1) if a.size else 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.sum(a, axis=axis, keepdims=True) / n
        squares = np.sum((a - mean) ** 2, axis=axis, keepdims=bool(keepdim))
        var = np.asarray(squares / max(0, n - delta))
    for form, out in STD_VAR(sample, dtype=dtype, device=device).items():
        want = np.asarray(np.sqrt(var) if form.endswith("std") else var)
        what = f"{form}(dim={dim}, correction={correction}, keepdim={keepdim})"
        assert out.dtype == dtype, f"{what}: {out.dtype}, not the input's {dtype}"
        assert tuple(out.shape) == want.shape, f"{what}: shape {tuple(out.shape)}, not {want.shape}"
        assert_close_to_reference(
            out,
            torch.from_numpy(want),
            equal_nan=True,
            **tolerance("sum_of_terms", dtype),
            msg=lambda m, what=what: f"{what}: not the documented formula\n{m}",
        )
        if n == 1 and delta == 0:
            # one sample is its own mean: sum((x - mean)^2) / 1 is exactly 0, with nothing rounded
            np.testing.assert_array_equal(independent_array(out.cpu()), want, f"{what}: one sample's spread is not exactly 0")
    # The same dims of the input's first entry along each reduced dim, every example: one sample,
    # with correction=0 exactly 0 (NaN where that sample is infinite or NaN: inf - inf)
    reduced = range(x.ndim) if axis is None else axis
    t = x.build(dtype=dtype, device=device)
    if all(t.shape[d] for d in reduced):
        one, first = t, a
        for d in reduced:
            one, first = one.narrow(d, 0, 1), np.take(first, [0], axis=d)
        with np.errstate(invalid="ignore"):
            spread = np.asarray(np.sum((first - first) ** 2, axis=axis, keepdims=bool(keepdim)))
        for form, out in (
            ("Tensor.std", one.std(dim, correction=0, **kept(keepdim))),
            ("Tensor.var", one.var(dim, correction=0, **kept(keepdim))),
        ):
            what = f"{form}(dim={dim}, correction=0, keepdim={keepdim}) of one sample"
            assert tuple(out.shape) == spread.shape, f"{what}: shape {tuple(out.shape)}, not {spread.shape}"
            np.testing.assert_array_equal(independent_array(out.cpu()), spread, f"{what}: one sample's spread is not exactly 0")


# ord -> the vector norm of |x| in NumPy (linalg.vector_norm's table): inf max, -inf min, 0 the
# count of non-zeros, any other (sum |x|^ord)^(1/ord)
NORM_ORDS = [2, 1, 3, 0.5, -1, 0, math.inf, -math.inf]


def vector_norm_reference(a, ord, axis, keepdims):
    m = np.abs(a)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if ord == math.inf:
            return np.amax(m, axis=axis, keepdims=keepdims)
        if ord == -math.inf:
            return np.amin(m, axis=axis, keepdims=keepdims)
        if ord == 0:
            return np.sum(m != 0, axis=axis, keepdims=keepdims).astype(np.float64)
        return np.sum(m**ord, axis=axis, keepdims=keepdims) ** (1 / ord)


@st.composite
def norm_samples(draw):
    """Sample(x, ord, dim, keepdim): values with zeros (where negative and zero orders differ);
    ord from the table (None: left out, 2); dim None, one dim or a tuple; keepdim True, False or left out."""
    # non-empty: ord=inf and -inf are a max and a min, which no element has none of
    x = draw(specs(shapes=NON_EMPTY), label="x")
    dim = draw(reduced_dims(x.ndim), label="dim")
    options = draw(option_grid(ord=[None, *NORM_ORDS], keepdim=[None, True, False]), label="options")
    return Sample((x, options["ord"], dim, options["keepdim"]))


def vector_norms(x, ord, dim, keepdim):
    """linalg.vector_norm at every ord; torch.norm and Tensor.norm where their table defines p: a
    non-zero finite number (their p=ord), and left out ('fro', the same as p=2 for one or two dims);
    keepdim only with a dim (the docs: 'Ignored if dim = None and out = None')."""
    given = {name: v for name, v in (("dim", dim), ("keepdim", keepdim)) if v is not None}
    out = {"torch.linalg.vector_norm": torch.linalg.vector_norm(x, **({} if ord is None else {"ord": ord}), **given)}
    if ord is None or (math.isfinite(ord) and ord != 0):
        p = {} if ord is None else {"p": ord}
        legacy = given if dim is not None and (ord is not None or len(np.atleast_1d(dim)) <= 2) else {}
        if legacy or dim is None:
            out["torch.norm"] = torch.norm(x, **p, **legacy)
            out["Tensor.norm"] = x.norm(**p, **legacy)
    return out


NORM = Operation("reductions.vector_norm_ord", dtypes="float32_64", samples=norm_samples(), call=vector_norms)


@NORM.property
def test_vector_norms_follow_the_table(device, dtype, sample):
    x, ord, dim, keepdim = sample.args
    a = independent_array(x.logical_values(dtype)).astype(np.float64)
    for form, out in NORM(sample, dtype=dtype, device=device).items():
        axis = axes_of(dim, x.ndim) if form == "torch.linalg.vector_norm" or dim is not None else None
        # vector_norm: "the reduced dimensions are retained" (every dim where dim is None); torch.norm
        # is given keepdim only with a dim
        keep = bool(keepdim) and (form == "torch.linalg.vector_norm" or dim is not None)
        want = np.asarray(vector_norm_reference(a, 2 if ord is None else ord, axis, keep))
        what = f"{form}(ord={ord}, dim={dim}, keepdim={keepdim})"
        assert out.dtype == dtype, f"{what}: {out.dtype}, not the input's {dtype}"
        assert tuple(out.shape) == want.shape, f"{what}: shape {tuple(out.shape)}, not {want.shape}"
        assert_close_to_reference(
            out,
            torch.from_numpy(want),
            **tolerance("sum_of_terms", dtype),
            msg=lambda m, what=what: f"{what}: not the table's norm\n{m}",
        )
        if ord in (math.inf, -math.inf, 0):
            # max|x|, min|x| and the count of non-zeros pick an element or count: nothing is rounded
            np.testing.assert_array_equal(
                independent_array(out.cpu()), want.astype(out.cpu().numpy().dtype), f"{what}: not exactly the table's norm"
            )


@st.composite
def unique_samples(draw):
    """Sample(x, sorted, return_inverse, return_counts): small integer values (repeats common), any
    shape, empty too; each option True, False or left out (None)."""
    x = draw(specs(**TIES), label="x")  # few distinct values: repeats are what unique removes
    options = draw(
        option_grid(sorted=[None, True, False], return_inverse=[None, True, False], return_counts=[None, True, False]),
        label="options",
    )
    return Sample((x, options["sorted"], options["return_inverse"], options["return_counts"]))


def unique(x, sorted, return_inverse, return_counts):
    given = {
        n: v
        for n, v in (("sorted", sorted), ("return_inverse", return_inverse), ("return_counts", return_counts))
        if v is not None
    }
    return torch.unique(x, **given)


UNIQUE = Operation(
    "reductions.unique_values_inverse_counts",
    dtypes="float32_64",
    samples=unique_samples(),
    call=unique,
    shape_depends_on_values=True,
    not_compiled="its output shape depends on values: Dynamo breaks the graph there by default "
    "(capture_dynamic_output_shape_ops), leaving nothing compiled",
)


@UNIQUE.property
def test_unique_gives_each_value_once_with_inverse_and_counts(device, dtype, sample):
    x, is_sorted, return_inverse, return_counts = sample.args
    a = independent_array(x.logical_values(dtype))
    values, counts = np.unique(a, return_counts=True)  # sorted, each value once
    got = UNIQUE(sample, dtype=dtype, device=device)
    parts = list(got) if isinstance(got, tuple) else [got]
    wanted = 1 + bool(return_inverse) + bool(return_counts)
    what = f"torch.unique(sorted={is_sorted}, return_inverse={return_inverse}, return_counts={return_counts})"
    assert len(parts) == wanted, f"{what}: {len(parts)} tensors, not {wanted}"
    out = parts.pop(0)
    u = independent_array(out.cpu())
    assert out.dtype == dtype and u.ndim == 1, f"{what}: not a 1-D tensor of the input's dtype"
    if is_sorted is False:  # "Whether to sort the unique elements in ascending order": any order otherwise
        np.testing.assert_array_equal(np.sort(u), values, f"{what}: not each value of the input once")
    else:
        np.testing.assert_array_equal(u, values, f"{what}: not the input's values once each, in ascending order")
    if return_inverse:
        inverse = parts.pop(0)
        assert inverse.dtype == torch.int64 and tuple(inverse.shape) == x.shape, f"{what}: inverse not int64 of the input's shape"
        np.testing.assert_array_equal(u[independent_array(inverse.cpu())], a, f"{what}: output[inverse] is not the input")
    if return_counts:
        c = independent_array(parts.pop(0).cpu())
        assert c.shape == u.shape, f"{what}: counts not one per unique value"
        np.testing.assert_array_equal(c, [int(np.sum(a == v)) for v in u], f"{what}: not each value's number of occurrences")
