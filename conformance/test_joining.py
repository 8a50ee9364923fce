"""Joining: stack adds a dimension, cat extends one; torch.tensor of tensors flattens."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks import assert_equal, independent_array
from conformance.harness.declaration import Operation
from conformance.test_views import assert_shares_storage
from strategies import DTYPE_GROUPS, specs
from strategies.samples import Sample, dims
from strategies.shapes import shapes


@st.composite
def same_shape_specs(draw, *, min_count=1, max_count=4, shape=None):
    shape = shape if shape is not None else draw(shapes(max_dims=3))
    count = draw(st.integers(min_count, max_count))
    return [draw(specs(shape=shape), label=f"tensor{i}") for i in range(count)]


@pytest.mark.behaviour("joining.stack_new_dim")
@pytest.mark.dtypes("representative")
@given(parts=same_shape_specs(), data=st.data())
def test_stack_joins_along_a_new_dim(device, dtype, parts, data):
    ndim = parts[0].ndim
    dim = data.draw(dims(ndim, inserting=True), label="dim")
    tensors = [p.build(dtype=dtype, device=device) for p in parts]
    out = torch.stack(tensors, dim)
    expected_shape = list(parts[0].shape)
    expected_shape.insert(dim % (ndim + 1), len(tensors))
    assert list(out.shape) == expected_shape, f"stack(dim={dim}): shape {tuple(out.shape)}, a new dim of {len(tensors)} expected"
    for i, t in enumerate(tensors):
        assert_equal(out.select(dim, i), t, f"slice {i} along dim {dim} is not tensors[{i}]")


@pytest.mark.behaviour("joining.stack_unequal_raises")
@given(a=shapes(max_dims=3), b=shapes(max_dims=3))
def test_stack_of_unequal_shapes_raises(device, a, b):
    if a == b:
        b = b + (2,)
    with pytest.raises(RuntimeError):
        torch.stack([torch.zeros(a, device=device), torch.zeros(b, device=device)])


@pytest.mark.behaviour("joining.stack_zero_dim")
@pytest.mark.dtypes("representative")
@given(parts=same_shape_specs(shape=()))
def test_stack_of_scalars_is_1d(device, dtype, parts):
    tensors = [p.build(dtype=dtype, device=device) for p in parts]
    out = torch.stack(tensors)
    assert out.shape == (len(tensors),), f"stack of {len(tensors)} 0-d tensors: shape {tuple(out.shape)}"
    assert out.dtype == dtype, f"stack of {dtype} 0-d tensors gave {out.dtype}"
    assert out.tolist() == [t.item() for t in tensors], "stack of 0-d tensors: not their values"


@st.composite
def cat_inputs(draw):
    """Sample([specs], dim): specs that agree in every dimension except `dim`."""
    base = list(draw(shapes(min_dims=1, max_dims=3)))  # cat refuses 0-d tensors (joining.cat_zero_dim_raises)
    dim = draw(st.integers(-len(base), len(base) - 1))
    parts = []
    for i in range(draw(st.integers(1, 4))):
        shape = list(base)
        shape[dim] = draw(st.integers(0, 4))
        parts.append(draw(specs(shape=tuple(shape)), label=f"tensor{i}"))
    return Sample((parts, dim))


CAT = Operation(
    "joining.cat_existing_dim", dtypes="representative", samples=cat_inputs(), call=lambda tensors, dim: torch.cat(tensors, dim)
)


@CAT.property
def test_cat_joins_along_an_existing_dim(device, dtype, sample):
    parts, dim = sample.args
    out = CAT(sample, dtype=dtype, device=device)
    assert out.shape[dim] == sum(p.shape[dim] for p in parts), f"cat: size along dim {dim} is not the sum"
    start = 0
    for p in parts:  # each input, read back by index arithmetic on the output
        assert_equal(out.narrow(dim, start, p.shape[dim]).cpu(), p.logical_values(dtype), "an input read back from cat")
        start += p.shape[dim]


@CAT.property
def test_cat_of_shapes_that_differ_off_dim_raises(device, dtype, sample, data):
    parts, dim = sample.args
    ndim = parts[0].ndim
    if ndim < 2:
        return  # a 1-D tensor has no dimension but `dim`
    # which dimension to make disagree: the test's choice, not an argument of cat
    other = data.draw(st.integers(0, ndim - 1).filter(lambda d: d != dim % ndim), label="mismatched_dim")
    first = parts[0].build(dtype=dtype, device=device)
    shape = list(first.shape)
    shape[other] += 1
    with pytest.raises(RuntimeError):
        torch.cat([first, torch.zeros(shape, dtype=dtype, device=device)], dim)


@pytest.mark.behaviour("joining.cat_zero_dim_raises")
@given(count=st.integers(1, 4))
def test_cat_of_scalars_raises(device, count):
    with pytest.raises(RuntimeError, match="zero-dimensional tensor"):
        torch.cat([torch.tensor(float(i), device=device) for i in range(count)])


@pytest.mark.behaviour("joining.cat_empty_1d_joins_anything")
@pytest.mark.dtypes("float32")
@given(x=specs(shapes=shapes(min_dims=1)), data=st.data())  # cat refuses 0-d tensors
def test_cat_skips_a_1d_empty_tensor(device, dtype, x, data):
    t = x.build(dtype=dtype, device=device)
    empty = torch.empty(0, dtype=dtype, device=device)
    before = data.draw(st.booleans(), label="empty_first")
    dim = data.draw(dims(x.ndim), label="dim")
    out = torch.cat([empty, t] if before else [t, empty], dim)
    assert_equal(out, t, "cat with a (0,) tensor: not the other tensor alone")


@pytest.mark.behaviour("joining.cat_inverts_split")
@pytest.mark.dtypes("representative")
@given(x=specs(shapes=shapes(min_dims=1)), data=st.data())  # split and chunk cut along a dim: at least one
def test_cat_undoes_split_and_chunk(device, dtype, x, data):
    t = x.build(dtype=dtype, device=device)
    dim = data.draw(dims(x.ndim), label="dim")
    size = data.draw(st.integers(1, 6), label="split_size")
    chunks = data.draw(st.integers(1, 6), label="chunks")
    pieces = {"split": torch.split(t, size, dim), "chunk": torch.chunk(t, chunks, dim)}
    for name, parts in pieces.items():
        # "Each chunk is a view of the original tensor" (torch.split), "... of the input tensor" (torch.chunk)
        for i, part in enumerate(parts):
            assert_shares_storage(part, t, f"{name} piece {i}")
        assert_equal(torch.cat(parts, dim), t, f"cat({name}(x)) gives back x")


@pytest.mark.behaviour("joining.cat_promotes")
@given(
    a=specs(shape=(2, 3)),
    b=specs(shape=(1, 3)),
    dtypes=st.tuples(st.sampled_from(DTYPE_GROUPS["all"]), st.sampled_from(DTYPE_GROUPS["all"])),
)
def test_cat_promotes_dtypes(device, a, b, dtypes):
    x, y = a.build(dtype=dtypes[0], device=device), b.build(dtype=dtypes[1], device=device)
    out = torch.cat([x, y])
    expected = torch.promote_types(*dtypes)
    assert out.dtype == expected, f"cat of {dtypes[0]} and {dtypes[1]} gave {out.dtype}"
    # the converted values, joined row after row: NumPy joins them, not torch.cat
    joined = np.concatenate([independent_array(x.to(expected).cpu()), independent_array(y.to(expected).cpu())])
    np.testing.assert_array_equal(independent_array(out.cpu()), joined, "cat of mixed dtypes: not the converted values")


@pytest.mark.behaviour("joining.tensor_of_tensors")
@pytest.mark.device_types("cpu")
@given(values=st.lists(st.integers(-100, 100), max_size=5))
def test_tensor_of_scalar_tensors_is_1d(device, values):
    scalars = torch.tensor([torch.tensor(v) for v in values]) if values else torch.tensor([])
    assert scalars.shape == (len(values),) and scalars.tolist() == values, "a list of 0-d tensors: not 1-D"
    if values:
        singles = torch.tensor([torch.tensor([v]) for v in values])
        assert singles.shape == (len(values),) and singles.tolist() == values, "one-element 1-D tensors: not flat"
