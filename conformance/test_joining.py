"""Joining: stack adds a dimension, cat extends one; torch.tensor of tensors flattens."""

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

from conformance.checks import assert_equal, independent_array
from conformance.harness.declaration import Operation
from conformance.test_views import assert_shares_storage
from strategies import DTYPE_GROUPS, specs
from strategies.samples import Arg, Sample, call_forms, dims
from strategies.shapes import shapes


@st.composite
def same_shape_specs(draw, *, min_count=1, max_count=4, shape=None):
    shape = shape if shape is not None else draw(shapes(max_dims=3))
    count = draw(st.integers(min_count, max_count))
    return [draw(specs(shape=shape), label=f"tensor{i}") for i in range(count)]


@st.composite
def stack_inputs(draw):
    """Sample([specs], dim): one to four tensors of one shape, and a dim over the inserting range."""
    parts = draw(same_shape_specs())
    return Sample((parts, draw(dims(parts[0].ndim, inserting=True), label="dim")))


STACK = Operation(
    "joining.stack_new_dim",
    dtypes="representative",
    samples=stack_inputs(),
    call=lambda tensors, dim: torch.stack(tensors, dim),
)


@STACK.property
def test_stack_joins_along_a_new_dim(device, dtype, sample):
    parts, dim = sample.args
    ndim = parts[0].ndim
    out = STACK(sample, dtype=dtype, device=device)
    expected_shape = list(parts[0].shape)
    expected_shape.insert(dim % (ndim + 1), len(parts))
    assert list(out.shape) == expected_shape, f"stack(dim={dim}): shape {tuple(out.shape)}, a new dim of {len(parts)} expected"
    for i, p in enumerate(parts):
        assert_equal(out.select(dim, i).cpu(), p.logical_values(dtype), f"slice {i} along dim {dim} is not tensors[{i}]")


@st.composite
def unequal_shapes(draw):
    """Sample([a, b]): two tensors whose shapes differ."""
    a, b = draw(shapes(max_dims=3), label="shape_a"), draw(shapes(max_dims=3), label="shape_b")
    if a == b:
        b = b + (2,)
    return Sample(([draw(specs(shape=a), label="a"), draw(specs(shape=b), label="b")],))


STACK_UNEQUAL = Operation(
    "joining.stack_unequal_raises", dtypes="float32", samples=unequal_shapes(), call=lambda tensors: torch.stack(tensors)
)


@STACK_UNEQUAL.property
def test_stack_of_unequal_shapes_raises(device, dtype, sample):
    with pytest.raises(RuntimeError):
        STACK_UNEQUAL(sample, dtype=dtype, device=device)
        pytest.fail("stack of different shapes returned a result")


STACK_SCALARS = Operation(
    "joining.stack_zero_dim",
    dtypes="representative",
    samples=same_shape_specs(shape=()).map(lambda parts: Sample((parts,))),
    call=lambda tensors: torch.stack(tensors),
)


@STACK_SCALARS.property
def test_stack_of_scalars_is_1d(device, dtype, sample):
    (parts,) = sample.args
    out = STACK_SCALARS(sample, dtype=dtype, device=device)
    assert out.shape == (len(parts),), f"stack of {len(parts)} 0-d tensors: shape {tuple(out.shape)}"
    assert out.dtype == dtype, f"stack of {dtype} 0-d tensors gave {out.dtype}"
    assert out.tolist() == [p.logical_values(dtype).item() for p in parts], "stack of 0-d tensors: not their values"


# torch.concat and torch.concatenate: "Alias of torch.cat."
CAT_FORMS = {
    "cat": lambda tensors, dim: torch.cat(tensors, dim),
    "concat": lambda tensors, dim: torch.concat(tensors, dim),
    "concatenate": lambda tensors, dim: torch.concatenate(tensors, dim),
}


@st.composite
def cat_inputs(draw):
    """Sample([specs], dim, form): specs that agree in every dimension except `dim`; cat or an alias."""
    base = list(draw(shapes(min_dims=1, max_dims=3)))  # cat refuses 0-d tensors (joining.cat_zero_dim_raises)
    dim = draw(st.integers(-len(base), len(base) - 1))
    parts = []
    for i in range(draw(st.integers(1, 4))):
        shape = list(base)
        shape[dim] = draw(st.integers(0, 4))
        parts.append(draw(specs(shape=tuple(shape)), label=f"tensor{i}"))
    return Sample((parts, dim, draw(call_forms(CAT_FORMS), label="form")))


CAT = Operation(
    "joining.cat_existing_dim",
    dtypes="representative",
    samples=cat_inputs(),
    call=lambda tensors, dim, form: CAT_FORMS[form](tensors, dim),
)


@CAT.property
def test_cat_joins_along_an_existing_dim(device, dtype, sample):
    parts, dim, form = sample.args
    out = CAT(sample, dtype=dtype, device=device)
    assert out.shape[dim] == sum(p.shape[dim] for p in parts), f"{form} (cat or an alias): size along dim {dim} is not the sum"
    start = 0
    for p in parts:  # each input, read back by index arithmetic on the output
        assert_equal(out.narrow(dim, start, p.shape[dim]).cpu(), p.logical_values(dtype), f"an input read back from {form}")
        start += p.shape[dim]


@CAT.property
def test_cat_of_shapes_that_differ_off_dim_raises(device, dtype, sample, data):
    parts, dim, form = sample.args
    ndim = parts[0].ndim
    if ndim < 2:
        return  # a 1-D tensor has no dimension but `dim`
    # which dimension to make disagree: the test's choice, not an argument of cat
    other = data.draw(st.integers(0, ndim - 1).filter(lambda d: d != dim % ndim), label="mismatched_dim")
    first = parts[0].build(dtype=dtype, device=device)
    shape = list(first.shape)
    shape[other] += 1
    with pytest.raises(RuntimeError):
        CAT_FORMS[form]([first, torch.zeros(shape, dtype=dtype, device=device)], dim)


CAT_SCALARS = Operation(
    "joining.cat_zero_dim_raises",
    dtypes="float32",
    samples=same_shape_specs(shape=()).map(lambda parts: Sample((parts,))),
    call=lambda tensors: torch.cat(tensors),
)


@CAT_SCALARS.property
def test_cat_of_scalars_raises(device, dtype, sample):
    with pytest.raises(RuntimeError, match="zero-dimensional tensor"):
        CAT_SCALARS(sample, dtype=dtype, device=device)
        pytest.fail("cat of 0-d tensors returned a result")


@st.composite
def beside_an_empty_1d(draw):
    """Sample([empty, x] or [x, empty], dim): a (0,) tensor before or after one of any shape."""
    x = draw(specs(shapes=shapes(min_dims=1)), label="x")  # cat refuses 0-d tensors
    empty = draw(specs(shape=(0,)), label="empty")
    pair = [empty, x] if draw(st.booleans(), label="empty_first") else [x, empty]
    return Sample((pair, draw(dims(x.ndim), label="dim")))


CAT_EMPTY = Operation(
    "joining.cat_empty_1d_joins_anything",
    dtypes="float32",
    samples=beside_an_empty_1d(),
    call=lambda tensors, dim: torch.cat(tensors, dim),
)


@CAT_EMPTY.property
def test_cat_skips_a_1d_empty_tensor(device, dtype, sample):
    pair, _ = sample.args
    x = pair[1] if pair[0].shape == (0,) else pair[0]  # were both (0,), either is the other
    out = CAT_EMPTY(sample, dtype=dtype, device=device)
    assert_equal(out.cpu(), x.logical_values(dtype), "cat with a (0,) tensor: not the other tensor alone")


# split and chunk as functions, or as methods ("See torch.split", "See torch.chunk")
SPLIT_FORMS = {
    "function": lambda t, size, chunks, dim: (torch.split(t, size, dim), torch.chunk(t, chunks, dim)),
    "method": lambda t, size, chunks, dim: (t.split(size, dim), t.chunk(chunks, dim)),
}


def split_chunk_and_cat(t, size, chunks, dim, form):
    """The pieces of split(t, size, dim) and chunk(t, chunks, dim), in the function or method
    form, and cat of each along dim."""
    split, chunk = SPLIT_FORMS[form](t, size, chunks, dim)
    return {"split": split, "chunk": chunk, "cat(split)": torch.cat(split, dim), "cat(chunk)": torch.cat(chunk, dim)}


@st.composite
def split_inputs(draw):
    """Sample(x, split_size, chunks, dim, form): split and chunk cut along a dim, so x has one at least."""
    x = draw(specs(shapes=shapes(min_dims=1)), label="x")  # split and chunk cut along a dim: at least one
    dim = draw(dims(x.ndim), label="dim")
    size, chunks = draw(st.integers(1, 6), label="split_size"), draw(st.integers(1, 6), label="chunks")
    return Sample((x, size, chunks, dim, draw(call_forms(SPLIT_FORMS), label="form")))


SPLIT_AND_CAT = Operation(
    "joining.cat_inverts_split",
    dtypes="representative",
    samples=split_inputs(),
    call=lambda t, size, chunks, dim, form: split_chunk_and_cat(t, size, chunks, dim, form),
)


@SPLIT_AND_CAT.property
def test_cat_undoes_split_and_chunk(device, dtype, sample):
    x, size, chunks, dim, form = sample.args
    (t, *_), _ = sample.build(dtype=dtype, device=device)
    out = SPLIT_AND_CAT.call(t, size, chunks, dim, form)
    for name in ("split", "chunk"):
        # "Each chunk is a view of the original tensor" (torch.split), "... of the input tensor" (torch.chunk)
        for i, part in enumerate(out[name]):
            assert_shares_storage(part, t, f"{form} form of {name}: piece {i}")
        assert_equal(out[f"cat({name})"].cpu(), x.logical_values(dtype), f"cat({name}(x)) gives back x ({form} form)")
    # split by an int: "equally sized chunks (if possible). Last chunk will be smaller if the tensor
    # size along the given dimension dim is not divisible by split_size" (no size: left open)
    n, a = x.shape[dim], independent_array(x.logical_values(dtype))
    if n:
        starts = range(0, n, size)
        sizes = [p.shape[dim] for p in out["split"]]
        assert sizes == [min(size, n - s) for s in starts], f"{form} form of split({size}, {dim}) of {n}: pieces of {sizes}"
        for i, (s, part) in enumerate(zip(starts, out["split"])):
            np.testing.assert_array_equal(
                independent_array(part.cpu()),
                np.take(a, range(s, s + size if s + size < n else n), axis=dim),
                f"split({size}, {dim}): piece {i} is not the next split_size elements along dim",
            )


def promotion_pair(dtype):
    """Sample([a, b]): a (2, 3) tensor and a (1, 3) one, one in the item's dtype and the other in
    any dtype, either first."""

    def given_dtype(spec, of):
        return spec if of == dtype else Arg(spec, dtype=of)

    @st.composite
    def pair(draw):
        other = draw(st.sampled_from(DTYPE_GROUPS["all"]), label="other_dtype")
        first, second = (dtype, other) if draw(st.booleans(), label="item_dtype_first") else (other, dtype)
        a, b = draw(specs(shape=(2, 3)), label="a"), draw(specs(shape=(1, 3)), label="b")
        return Sample(([given_dtype(a, first), given_dtype(b, second)],))

    return pair()


CAT_MIXED = Operation("joining.cat_promotes", dtypes="all", samples=promotion_pair, call=lambda tensors: torch.cat(tensors))


@CAT_MIXED.property
def test_cat_promotes_dtypes(device, dtype, sample):
    ([x, y],), _ = sample.build(dtype=dtype, device=device)
    out = CAT_MIXED.call([x, y])
    expected = torch.promote_types(x.dtype, y.dtype)
    assert out.dtype == expected, f"cat of {x.dtype} and {y.dtype} gave {out.dtype}"
    # the converted values, joined row after row: NumPy joins them, not torch.cat
    joined = np.concatenate([independent_array(x.to(expected).cpu()), independent_array(y.to(expected).cpu())])
    np.testing.assert_array_equal(independent_array(out.cpu()), joined, "cat of mixed dtypes: not the converted values")


def tensors_of_tensors(scalars, singles):
    """torch.tensor of a list of 0-d tensors, and of a list of one-element 1-D tensors."""
    return torch.tensor(scalars) if scalars else torch.tensor([]), torch.tensor(singles) if singles else None


@st.composite
def lists_of_tensors(draw):
    """Sample(scalars, singles): up to five 0-d tensors, and as many one-element 1-D ones."""
    count = draw(st.integers(0, 5), label="count")
    return Sample(
        (
            [draw(specs(shape=()), label=f"scalar{i}") for i in range(count)],
            [draw(specs(shape=(1,)), label=f"single{i}") for i in range(count)],
        )
    )


TENSOR_OF_TENSORS = Operation(
    "joining.tensor_of_tensors",
    dtypes="int64",
    samples=lists_of_tensors(),
    call=lambda scalars, singles: tensors_of_tensors(scalars, singles),
)


@TENSOR_OF_TENSORS.property
@pytest.mark.device_types("cpu")
def test_tensor_of_scalar_tensors_is_1d(device, dtype, sample):
    values = [[spec.logical_values(dtype).item() for spec in listed] for listed in sample.args]
    flat, singles = TENSOR_OF_TENSORS(sample, dtype=dtype, device=device)
    assert flat.shape == (len(values[0]),) and flat.tolist() == values[0], "a list of 0-d tensors: not 1-D"
    if values[1]:
        assert singles.shape == (len(values[1]),) and singles.tolist() == values[1], "one-element 1-D tensors: not flat"
