"""Views and contiguity: which operations alias their input, and when `view` may succeed."""

import math

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

from conformance.checks import (
    assert_equal,
    assert_own_storage,
    assert_same_storage,
    changed,
    contiguous_strides,
    independent_array,
)
from conformance.harness.declaration import Operation
from strategies import specs
from strategies.samples import Arg, Sample, call_forms, dims
from strategies.shapes import reshapes, shapes
from strategies.tensors import WRITABLE_LAYOUTS, label


def view_is_possible(shape, strides, new_shape) -> bool:
    """The documented condition for `view`, decided from the strides alone.

    Drop the size-1 dimensions; split the rest into runs where stride[i] == stride[i+1] *
    size[i+1] (each run is one evenly strided block of memory). A new dimension may not
    straddle two runs, so each run's end must fall on a boundary between new dimensions:

        shape (2, 12)   strides (12, 1)      one run [2, 12]: any shape of 24 elements views
        shape (2, 3, 4) strides (12, 1, 3)   stride 12 != 1*3 and 1 != 3*4 -> runs [2] [3] [4]
        ends at element counts 2, 6, 24  ->  (2, 3, 2, 2) is fine; (6, 4), (2, 12), (24,) are not.
    """
    if math.prod(shape) == 0:
        return True
    dims = [(n, s) for n, s in zip(shape, strides) if n != 1]
    run_ends, count = set(), 1
    for i, (n, s) in enumerate(dims):
        count *= n
        if i == len(dims) - 1 or s != dims[i + 1][1] * dims[i + 1][0]:
            run_ends.add(count)
    boundaries, count = set(), 1
    for n in new_shape:
        count *= n
        boundaries.add(count)
    return run_ends <= boundaries


def is_c_contiguous(shape, strides) -> bool:
    """Row-major contiguity as documented: size-1 dimensions' strides do not matter."""
    if math.prod(shape) == 0:
        return True
    return all(s == e for n, s, e in zip(shape, strides, contiguous_strides(shape)) if n != 1)


def assert_shares_storage(derived, base, what):
    """`derived` shares `base`'s storage: the same memory, and the same storage object, which
    `untyped_storage()` returns ("the underlying UntypedStorage"). The second is what tells a view
    of an empty tensor from a copy, where both hold no memory at all."""
    assert_same_storage(derived, base, what)
    if derived.device.type != "meta":
        storage = base.untyped_storage()  # held, so the same storage answers with this object
        assert derived.untyped_storage() is storage, f"{what}: not the base's storage object (a copy, not a view)"


def maybe_requiring_grad(draw, x, dtype):
    """The base `x` as a Sample argument that requires grad where the drawn flag says so (floating
    dtypes only: "Only Tensors of floating point and complex dtype can require gradients")."""
    wants = dtype.is_floating_point and draw(st.booleans(), label="requires_grad")
    label(f"requires_grad={wants}")
    return Arg(x, requires_grad=True) if wants else x


def spec_of(base):
    """The TensorSpec of a base given as a spec or as an Arg."""
    return base.spec if isinstance(base, Arg) else base


def assert_is_live_view(derived, base, expected_of, spec, dtype, what):
    """`derived` aliases `base`: same storage, the documented values and dtype now, and after a
    write to the base. `expected_of` is the operation written in NumPy (reshape, take,
    broadcast_to, swapaxes, transpose, basic indexing), applied to an array of the base's values
    that torch did not make."""
    assert_shares_storage(derived, base, what)
    assert derived.dtype == base.dtype, f"{what}: dtype {derived.dtype}, expected the base's {base.dtype}"
    # autograd mechanics: an operation's output requires grad when one of its inputs does
    assert derived.requires_grad == base.requires_grad, (
        f"{what}: requires_grad {derived.requires_grad}, the base's is {base.requires_grad}"
    )
    values = independent_array(spec.logical_values(dtype))
    np.testing.assert_array_equal(independent_array(derived.detach().cpu()), expected_of(values), f"{what}: wrong values")
    new = changed(base.detach())
    with torch.no_grad():  # a leaf that requires grad is written only outside autograd
        base.copy_(new)
    np.testing.assert_array_equal(
        independent_array(derived.detach().cpu()),
        expected_of(independent_array(new.cpu())),
        f"{what}: a write to the base did not show",
    )


def assert_viewed(v, t, new_shape, spec, dtype):
    """`v` is `t` viewed as `new_shape`: that shape, `t`'s storage, `t`'s elements in row-major
    order ("a new tensor with the same data"), judged against NumPy's reshape."""
    what = f"view{tuple(new_shape)} of {tuple(t.shape)}"
    assert tuple(v.shape) == tuple(new_shape), f"{what}: wrong shape {tuple(v.shape)}"
    assert_shares_storage(v, t, what)
    assert v.dtype == t.dtype, f"{what}: dtype {v.dtype}, expected {t.dtype}"
    expected = np.reshape(independent_array(spec.logical_values(dtype)), new_shape)
    np.testing.assert_array_equal(independent_array(v.cpu()), expected, f"{what}: not the base's elements in row-major order")


@st.composite
def view_samples(draw):
    """Sample(x, new_shape): any layout, any shape of as many elements, viewable or not."""
    x = draw(specs(), label="x")
    return Sample((x, draw(reshapes(x.shape), label="new_shape")))


VIEW_BY_STRIDES = Operation(
    "views.view_stride_condition", dtypes="representative", samples=view_samples(), call=lambda t, shape: t.view(shape)
)


@VIEW_BY_STRIDES.property
def test_view_succeeds_exactly_when_strides_allow(device, dtype, sample):
    x, new_shape = sample.args
    (t, _), _ = sample.build(dtype=dtype, device=device)
    if view_is_possible(t.shape, t.stride(), new_shape):
        assert_viewed(VIEW_BY_STRIDES.call(t, new_shape), t, new_shape, x, dtype)
    else:
        with pytest.raises(RuntimeError, match="view size is not compatible"):
            VIEW_BY_STRIDES.call(t, new_shape)


def viewable_samples(dtype):
    """Sample(base, new_shape): a writable base, requiring grad or not, and a shape it can be
    viewed as (its own reversed, or its own, where the drawn one cannot be)."""

    @st.composite
    def draw_sample(draw):
        x = draw(specs(layouts=WRITABLE_LAYOUTS), label="x")
        new_shape = draw(reshapes(x.shape), label="new_shape")
        if not view_is_possible(x.shape, x.strides, new_shape):
            new_shape = tuple(reversed(x.shape)) if is_c_contiguous(x.shape, x.strides) else x.shape
        return Sample((maybe_requiring_grad(draw, x, dtype), new_shape))

    return draw_sample()


VIEW = Operation(
    "views.view_shares_storage", dtypes="representative", samples=viewable_samples, call=lambda t, shape: t.view(shape)
)


@VIEW.property
def test_view_shares_storage(device, dtype, sample):
    base, new_shape = sample.args
    (t, _), _ = sample.build(dtype=dtype, device=device)
    v = VIEW.call(t, new_shape)
    assert v.numel() == t.numel(), f"view{new_shape} changed numel: {v.numel()} of {t.numel()}"
    assert_is_live_view(v, t, lambda a: np.reshape(a, new_shape), spec_of(base), dtype, f"view{new_shape}")


@st.composite
def inferred_views(draw):
    """Sample(x, shape with one -1): contiguous only, since whether view() succeeds on other layouts
    depends on "the new view size must be compatible with its original size and stride"
    (views.view_stride_condition covers that side)."""
    x = draw(specs(layouts=("contiguous",)), label="x")  # contiguous: see the docstring
    new_shape = draw(reshapes(x.shape).filter(len), label="new_shape")
    if 0 in new_shape:
        at = new_shape.index(0)  # only the zero side can be inferred: 0 / 0 is ambiguous
    else:
        at = draw(st.integers(0, len(new_shape) - 1), label="inferred_dim")
    return Sample((x, new_shape[:at] + (-1,) + new_shape[at + 1 :]))


VIEW_INFERRING = Operation(
    "views.view_infers_size", dtypes="representative", samples=inferred_views(), call=lambda t, shape: t.view(shape)
)


@VIEW_INFERRING.property
def test_view_infers_minus_one(device, dtype, sample):
    x, asked = sample.args
    (t, _), _ = sample.build(dtype=dtype, device=device)
    known = math.prod(n for n in asked if n != -1)
    # the -1 is numel divided by the product of the other sizes (the zero side where one is 0)
    new_shape = tuple((x.numel // known if known else 0) if n == -1 else n for n in asked)
    assert_viewed(VIEW_INFERRING.call(t, asked), t, new_shape, x, dtype)


# the method, or reshape_as(other): "self.reshape_as(other) is equivalent to self.reshape(other.sizes())"
RESHAPE_FORMS = {
    "reshape": lambda x, shape: x.reshape(shape),
    "reshape_as": lambda x, shape: x.reshape_as(torch.empty(shape, dtype=x.dtype, device=x.device)),
}


@st.composite
def reshape_samples(draw):
    x = draw(specs(), label="x")
    new_shape, form = draw(reshapes(x.shape), label="new_shape"), draw(call_forms(RESHAPE_FORMS), label="form")
    if form == "reshape_as":  # the other tensor's sizes: no -1 to infer
        known = math.prod(n for n in new_shape if n != -1)
        new_shape = tuple((x.numel // known if known else 0) if n == -1 else n for n in new_shape)
    return Sample((x, new_shape, form))


RESHAPE = Operation(
    "views.reshape_view_or_copy",
    dtypes="representative",
    samples=reshape_samples(),
    call=lambda x, shape, form: RESHAPE_FORMS[form](x, shape),
)


@RESHAPE.property
def test_reshape_views_when_it_can(device, dtype, sample, record_observation):
    x, new_shape, form = sample.args
    t = x.build(dtype=dtype, device=device)
    r = RESHAPE(Sample((t, new_shape, form)), dtype=dtype, device=device)
    assert r.dtype == t.dtype, f"{form}{new_shape}: changed the dtype to {r.dtype}"
    expected = np.reshape(independent_array(x.logical_values(dtype)), new_shape)  # row-major, as NumPy's C order
    np.testing.assert_array_equal(
        independent_array(r.cpu()), expected, f"{form}{new_shape} (the {form} form): not the elements in row-major order"
    )
    if t.is_contiguous():  # "Contiguous inputs ... can be reshaped without copying"
        assert_shares_storage(r, t, f"{form}{new_shape} of a contiguous tensor")
    elif not view_is_possible(t.shape, t.stride(), new_shape):
        assert_own_storage(r, t, f"{form}{new_shape}")  # no view exists: "Otherwise, it will be a copy"
    elif form == "reshape_as":  # "This method returns a view if other.sizes() is compatible with the current shape"
        assert_shares_storage(r, t, f"reshape_as to a shape {new_shape} a view of the input is possible in")
    else:  # "you should not depend on the copying vs. viewing behavior": recorded, not asserted
        shares = t.numel() and r.untyped_storage().data_ptr() == t.untyped_storage().data_ptr()
        record_observation("reshape of a non-contiguous tensor that could be viewed", "view" if shares else "copy")


CONTIGUOUS_FORMS = {
    "default": lambda t: t.contiguous(),  # memory_format "Default: torch.contiguous_format"
    "keyword": lambda t: t.contiguous(memory_format=torch.contiguous_format),
}


@st.composite
def contiguous_samples(draw, dtype):
    """Sample(base, form): any layout, requiring grad or not, and how memory_format is given."""
    x = draw(specs(), label="x")
    return Sample((maybe_requiring_grad(draw, x, dtype), draw(call_forms(CONTIGUOUS_FORMS), label="form")))


CONTIGUOUS = Operation(
    "views.contiguous_self_or_copy",
    dtypes="representative",
    samples=lambda dtype: contiguous_samples(dtype),
    call=lambda t, form: CONTIGUOUS_FORMS[form](t),
    compare_strides=True,  # "a contiguous in memory tensor": row-major strides, or the tensor itself
)


@CONTIGUOUS.property
def test_contiguous_returns_self_or_copy(device, dtype, sample):
    base, form = sample.args
    (t, _), _ = sample.build(dtype=dtype, device=device)
    c = CONTIGUOUS.call(t, form)
    if is_c_contiguous(t.shape, t.stride()):
        assert c is t, f"contiguous() [memory_format {form}] of a contiguous tensor must return the tensor itself"
    else:
        assert is_c_contiguous(c.shape, c.stride()), f"contiguous() gave strides {c.stride()} for shape {tuple(c.shape)}"
        assert_own_storage(c, t, "contiguous() of a non-contiguous tensor")
        assert_equal(c.detach().cpu(), spec_of(base).logical_values(dtype), "contiguous() of a non-contiguous tensor: values")


NARROW_FORMS = {"method": lambda t, *a: t.narrow(*a), "function": lambda t, *a: torch.narrow(t, *a)}


def narrow_samples(dtype):
    """Sample(base, dim, start, length, as_tensor, form): start "can be negative, which means
    indexing from the end of dim"; it may be a 0-dim integral tensor; narrow is a function and a method."""

    @st.composite
    def draw_sample(draw):
        x = draw(specs(layouts=WRITABLE_LAYOUTS, shapes=shapes(min_dims=1)), label="x")  # a dim to narrow
        dim = draw(dims(x.ndim), label="dim")
        size = x.shape[dim]
        start = draw(st.integers(-size, size), label="start")
        length = draw(st.integers(0, size - (start + size if start < 0 else start)), label="length")
        as_tensor = draw(st.booleans(), label="start_as_tensor")
        form = draw(call_forms(NARROW_FORMS), label="form")
        return Sample((maybe_requiring_grad(draw, x, dtype), dim, start, length, as_tensor, form))

    return draw_sample()


NARROW = Operation(
    "views.narrow_shares",
    dtypes="representative",
    samples=narrow_samples,
    call=lambda t, dim, start, length, as_tensor, form: NARROW_FORMS[form](
        t, dim, torch.tensor(start) if as_tensor else start, length
    ),
)


@NARROW.property
def test_narrow_is_a_view(device, dtype, sample):
    base, dim, start, length, as_tensor, form = sample.args
    label("start<0" if start < 0 else "start>=0", f"start={'tensor' if as_tensor else 'int'}")
    begin = start + spec_of(base).shape[dim] if start < 0 else start  # a negative start counts from the end of dim
    (t, *rest), _ = sample.build(dtype=dtype, device=device)
    narrowed = NARROW.call(t, *rest)
    assert_is_live_view(
        narrowed,
        t,
        lambda a: np.take(a, range(begin, begin + length), axis=dim),  # from the front
        spec_of(base),
        dtype,
        f"{form} form of narrow({dim}, {start}, {length}) (start_as_tensor={as_tensor})",
    )


def expand_samples(dtype):
    """Sample(base, target): new leading dims, and every size-1 dim expanded to 0..3."""

    @st.composite
    def draw_sample(draw):
        x = draw(specs(layouts=WRITABLE_LAYOUTS, shapes=shapes(max_side=2)), label="x")  # sides of 1 often
        extra = draw(st.lists(st.integers(0, 3), max_size=2), label="new_leading_dims")
        sizes = tuple(draw(st.integers(0, 3)) if s == 1 else s for s in x.shape)
        form = draw(call_forms(EXPAND_FORMS), label="form")
        return Sample((maybe_requiring_grad(draw, x, dtype), tuple(extra) + sizes, form))

    return draw_sample()


# expand(sizes), or expand_as(other): "self.expand_as(other) is equivalent to self.expand(other.size())"
EXPAND_FORMS = {
    "expand": lambda t, target: t.expand(target),
    "expand_as": lambda t, target: t.expand_as(torch.empty(target, dtype=t.dtype, device=t.device)),
}

EXPAND = Operation(
    "views.expand_shares",
    dtypes="representative",
    samples=expand_samples,
    call=lambda t, target, form: EXPAND_FORMS[form](t, target),
    compare_strides=True,  # "a new view ... setting the stride to 0"
)


@EXPAND.property
def test_expand_is_a_view(device, dtype, sample):
    base, target, form = sample.args
    x = spec_of(base)
    (t, *_), _ = sample.build(dtype=dtype, device=device)
    e = EXPAND.call(t, target, form)
    extra = len(target) - x.ndim
    for d, n in enumerate(x.shape):
        if n == 1 and target[extra + d] != 1:
            assert e.stride(extra + d) == 0, f"{form}{target} (the {form} form): expanded dim {d} should have stride 0"
    assert_is_live_view(e, t, lambda a: np.broadcast_to(a, target), x, dtype, f"{form}{target}")


def transposed(t, d0, d1, use_t):
    """t.t() where use_t, else t.transpose(d0, d1)."""
    return t.t() if use_t else t.transpose(d0, d1)


def transpose_samples(dtype):
    """Sample(base, d0, d1, use_t): 0-d included (a 0-d tensor's dims are 0 and -1, and t() returns
    "0-D and 1-D tensors ... as is"); t() only where the base has at most 2 dims."""

    @st.composite
    def draw_sample(draw):
        use_t = draw(st.booleans(), label="use t()")
        # t() takes "<= 2-D tensors": its own shapes, so that 2-D ones with no elements come up
        x = draw(specs(layouts=WRITABLE_LAYOUTS, shapes=shapes(max_dims=2) if use_t else shapes()), label="x")
        d0, d1 = draw(dims(x.ndim), label="dim0"), draw(dims(x.ndim), label="dim1")
        return Sample((maybe_requiring_grad(draw, x, dtype), d0, d1, use_t))

    return draw_sample()


TRANSPOSE = Operation(
    "views.transpose_shares",
    dtypes="representative",
    samples=transpose_samples,
    call=lambda t, d0, d1, use_t: transposed(t, d0, d1, use_t),
    compare_strides=True,  # a view with the two dims' strides swapped
)


@TRANSPOSE.property
def test_transpose_is_a_view(device, dtype, sample):
    base, d0, d1, use_t = sample.args
    x = spec_of(base)
    (t, *_), _ = sample.build(dtype=dtype, device=device)
    strides = list(t.stride())
    tr = TRANSPOSE.call(t, d0, d1, use_t)
    if use_t:
        # "0-D and 1-D tensors are returned as is. When input is a 2-D tensor this is equivalent
        # to transpose(input, 0, 1)."
        what = "t()"
        strides.reverse()
        if x.ndim < 2:
            assert tr.shape == t.shape, "t() of a 0-D or 1-D tensor: not returned as is"
        op = (lambda a: a.T) if x.ndim == 2 else (lambda a: a)
    else:
        what = f"transpose({d0}, {d1})"
        if x.ndim:
            strides[d0], strides[d1] = strides[d1], strides[d0]
        op = (lambda a: np.swapaxes(a, d0, d1)) if x.ndim else (lambda a: a)
    assert tr.stride() == tuple(strides), f"{what}: strides {tr.stride()}, expected the two swapped: {tuple(strides)}"
    assert_is_live_view(tr, t, op, x, dtype, what)


def permute_samples(dtype):
    """Sample(base, dims): every order, each entry also as its negative (-ndim <= d < ndim)."""

    @st.composite
    def draw_sample(draw):
        x = draw(specs(layouts=WRITABLE_LAYOUTS), label="x")
        order = draw(st.permutations(range(x.ndim)), label="dims")  # every order; negatives below
        perm = tuple(d - x.ndim if draw(st.booleans(), label=f"negative_{d}") else d for d in order)
        return Sample((maybe_requiring_grad(draw, x, dtype), perm))

    return draw_sample()


PERMUTE = Operation(
    "views.permute_shares",
    dtypes="representative",
    samples=permute_samples,
    call=lambda t, perm: t.permute(perm),
    compare_strides=True,  # a view with the sizes and strides permuted
)


@PERMUTE.property
def test_permute_is_a_view(device, dtype, sample):
    base, perm = sample.args
    x = spec_of(base)
    order = tuple(d % x.ndim for d in perm)
    (t, _), _ = sample.build(dtype=dtype, device=device)
    p = PERMUTE.call(t, perm)
    assert p.stride() == tuple(t.stride()[d] for d in order), f"permute{perm}: strides {p.stride()} not permuted"
    assert_is_live_view(p, t, lambda a: np.transpose(a, order), x, dtype, f"permute{perm}")


@st.composite
def basic_indices(draw, shape):
    """An index of ints, positive-step slices, None and Ellipsis: basic indexing only."""
    index = []
    for size in shape:
        kind = draw(st.sampled_from(["slice", "int", "full"] if size else ["slice", "full"]))
        if kind == "int":
            index.append(draw(st.integers(-size, size - 1)))
        elif kind == "slice":
            start = draw(st.none() | st.integers(-size - 1, size + 1))
            stop = draw(st.none() | st.integers(-size - 1, size + 1))
            index.append(slice(start, stop, draw(st.none() | st.integers(1, 3))))
        else:
            index.append(slice(None))
    if index and draw(st.booleans()):
        index.insert(draw(st.integers(0, len(index))), None)
    if index and draw(st.booleans()):
        cut = draw(st.integers(0, len(index)))
        index = index[:cut] + [Ellipsis]
    return tuple(index)


def slicing_samples(dtype):
    """Sample(base, index): integers and slices index dims, so the base has one at least."""

    @st.composite
    def draw_sample(draw):
        x = draw(specs(layouts=WRITABLE_LAYOUTS, shapes=shapes(min_dims=1)), label="x")  # see the docstring
        return Sample((maybe_requiring_grad(draw, x, dtype), draw(basic_indices(x.shape), label="index")))

    return draw_sample()


SLICING = Operation("views.slicing_shares", dtypes="representative", samples=slicing_samples, call=lambda t, index: t[index])


@SLICING.property
def test_basic_slicing_is_a_view(device, dtype, sample):
    base, index = sample.args
    (t, _), _ = sample.build(dtype=dtype, device=device)
    assert_is_live_view(SLICING.call(t, index), t, lambda a: a[index], spec_of(base), dtype, f"t[{index}]")


IS_CONTIGUOUS = Operation(
    "views.is_contiguous_rule",
    dtypes="representative",
    samples=specs().map(lambda x: Sample((x,))),
    call=lambda t: t.is_contiguous(),
    not_compiled="is_contiguous() reads the tensor's strides: Dynamo answers it as a constant and compiles no graph",
)


@IS_CONTIGUOUS.property
def test_is_contiguous_follows_the_stride_rule(device, dtype, sample, data):
    (x,) = sample.args
    assert IS_CONTIGUOUS(sample, dtype=dtype, device=device) == is_c_contiguous(x.shape, x.strides), f"strides {x.strides}"
    # Any stride on a size-1 dimension keeps a row-major tensor contiguous.
    strides = [data.draw(st.integers(0, 50)) if n == 1 else s for n, s in zip(x.shape, contiguous_strides(x.shape))]
    odd = torch.empty(x.numel + 1, dtype=dtype, device=device).as_strided(x.shape, strides)
    assert IS_CONTIGUOUS.call(odd), f"shape {x.shape} strides {strides} should count as contiguous"


NO_TORCH_VIEW = Operation(
    "views.no_torch_view", dtypes="representative", samples=view_samples(), call=lambda t, shape: t.view(shape)
)


@NO_TORCH_VIEW.property
def test_there_is_no_torch_view_only_the_method(device, dtype, sample):
    assert not hasattr(torch, "view"), "torch.view exists"
    x, new_shape = sample.args
    (t, _), _ = sample.build(dtype=dtype, device=device)
    before = (tuple(t.shape), t.stride())
    if view_is_possible(t.shape, t.stride(), new_shape):
        assert_viewed(NO_TORCH_VIEW.call(t, new_shape), t, new_shape, x, dtype)
    assert (tuple(t.shape), t.stride()) == before, "view changed the tensor it was called on"
    assert_equal(t.cpu(), x.logical_values(dtype), "the tensor view was called on")


# the real dtype whose two values make one element of each complex dtype
COMPONENT_DTYPE = {torch.complex64: torch.float32, torch.complex128: torch.float64, torch.complex32: torch.float16}


def view_as_real_samples(dtype):
    """Sample(base): a complex tensor of any shape and writable layout, requiring grad or not."""
    return st.composite(lambda draw: Sample((maybe_requiring_grad(draw, draw(specs(layouts=WRITABLE_LAYOUTS)), dtype),)))()


VIEW_AS_REAL = Operation(
    "views.view_as_real_shares",
    dtypes="complex",  # "only supported for tensors with complex dtypes"
    samples=view_as_real_samples,
    call=lambda t: torch.view_as_real(t),
)


@VIEW_AS_REAL.property
def test_view_as_real_is_a_view_with_a_last_dim_of_two(device, dtype, sample, record_observation):
    (base,) = sample.args
    x = spec_of(base)
    (t,), _ = sample.build(dtype=dtype, device=device)
    r = VIEW_AS_REAL.call(t)
    assert tuple(r.shape) == x.shape + (2,), f"view_as_real of {x.shape}: shape {tuple(r.shape)}, not the size with a last 2"
    component = COMPONENT_DTYPE[dtype]
    assert r.dtype == component, f"view_as_real of {dtype}: dtype {r.dtype}, not the real {component}"

    def as_real(a):  # the last dimension: the real part, then the imaginary part
        return np.stack([a.real, a.imag], axis=-1)

    np.testing.assert_array_equal(
        independent_array(r.detach().cpu()),
        as_real(independent_array(x.logical_values(dtype))),
        "view_as_real: the last dimension is not (real, imaginary)",
    )
    # "Returns a view of input as a real tensor": its storage, and a later write to the input shows
    assert_shares_storage(r, t, "view_as_real")
    # autograd mechanics: an operation's output requires grad when one of its inputs does
    assert r.requires_grad == t.requires_grad, f"view_as_real: requires_grad {r.requires_grad}, the input's is {t.requires_grad}"
    new = changed(t.detach())
    with torch.no_grad():  # a leaf that requires grad is written only outside autograd
        t.copy_(new)
    np.testing.assert_array_equal(
        independent_array(r.detach().cpu()),
        as_real(independent_array(new.cpu())),
        "view_as_real: a write to the input did not show",
    )
    # "only supported for tensors with complex dtypes": refused, with a type no doc names (RuntimeError up
    # to 2.14, TypeError on 2.15), so the type is recorded for the upgrade report, not asserted
    with pytest.raises(Exception) as refused:
        torch.view_as_real(torch.zeros(x.shape, dtype=component, device=device))
    record_observation("view_as_real of a real tensor raises", type(refused.value).__name__)
