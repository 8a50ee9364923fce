"""Indexing: assignment through index lists and slices, masks, copies, negative steps."""

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

from conformance.checks import assert_own_storage, independent_array
from conformance.harness.declaration import Operation
from strategies import specs
from strategies.samples import Sample, index_lists
from strategies.shapes import shapes
from strategies.tensors import WRITABLE_LAYOUTS


def saved_for_backward(t):
    """A graph that saved `t` for its backward (w * t saves t to compute w's gradient)."""
    return torch.ones((), dtype=torch.float64, device=t.device, requires_grad=True) * t


def assert_write_seen_by_autograd(probe, what):
    """An in-place write to a tensor a graph saved is seen: "Every tensor keeps a version counter,
    that is incremented every time it is marked dirty in any operation ... if it is greater than
    the saved value an error is raised" (autograd notes, in-place correctness checks; the
    message is observed)."""
    total = probe.sum()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        (total.real if total.is_complex() else total).backward()


@st.composite
def row_assignments(draw):
    """Sample(t, source, index, as_tensor): t and source of one shape, an index of t's rows that is
    a slice, or a list of distinct rows (a tensor of them where as_tensor)."""
    # rows to index: dim 0 holds at least one (an empty dim has no index to draw); the others may be empty
    x = draw(specs(layouts=WRITABLE_LAYOUTS, shapes=shapes(min_dims=1).filter(lambda s: s[0] > 0)), label="x")
    source = draw(specs(shape=x.shape), label="source")
    n = x.shape[0]
    if draw(st.booleans(), label="use_slice"):
        return Sample((x, source, slice(draw(st.integers(-n, n), label="start"), None), False))
    # Unsorted and negative indices (-n <= i < n), as a list or a tensor. Repeats are left out:
    # "If accumulate is False, the behavior is undefined if indices contain duplicate elements."
    rows = draw(index_lists(n, unique=True), label="rows")
    return Sample((x, source, rows, draw(st.booleans(), label="as_tensor")))


def assign_rows(t, source, index, as_tensor):
    """t[index] = source[index], the index a list of rows, a tensor of them, or a slice; returns t."""
    if as_tensor:
        index = torch.tensor(index, dtype=torch.long, device=t.device)
    t[index] = source[index]
    return t


LIST_ASSIGNMENT = Operation(
    "indexing.list_index_assignment",
    dtypes="representative",
    samples=row_assignments(),
    call=lambda t, source, index, as_tensor: assign_rows(t, source, index, as_tensor),
)


@LIST_ASSIGNMENT.property
def test_assignment_through_index_lists_and_slices(device, dtype, sample):
    x, source_spec, index, _ = sample.args
    n = x.shape[0]
    rows = list(range(n))[index] if isinstance(index, slice) else [i % n for i in index]
    (t, source, *rest), _ = sample.build(dtype=dtype, device=device)
    expected = independent_array(x.logical_values(dtype))
    expected[rows] = independent_array(source_spec.logical_values(dtype))[rows]
    probe = saved_for_backward(t)
    assert LIST_ASSIGNMENT.call(t, source, *rest) is t, "the assignment's target is not t itself"
    np.testing.assert_array_equal(independent_array(t.cpu()), expected, "rows assigned, or the others kept")
    assert_write_seen_by_autograd(probe, "t[index] = ...")


def ones_at(m, idx):
    """m[idx] = 1 through an index tensor, then m.bool()."""
    m[torch.tensor(idx, dtype=torch.long, device=m.device)] = 1
    return m.bool()


@st.composite
def masks_to_mark(draw):
    """Sample(zeros(n), idx): repeated, unsorted and negative positions, or none at all (a mask with
    no True); repeats are fine here, since every write stores the same 1."""
    n = draw(st.integers(1, 12), label="n")
    # zeros(n): low == high makes every value 0
    return Sample(
        (
            draw(specs(shape=(n,), layouts=WRITABLE_LAYOUTS, low=0, high=0), label="m"),
            draw(index_lists(n, max_size=2 * n), label="idx"),
        )
    )


MASK_FROM_INDEX = Operation(
    "indexing.mask_from_index_assignment", dtypes="float32", samples=masks_to_mark(), call=lambda m, idx: ones_at(m, idx)
)


@MASK_FROM_INDEX.property
def test_index_assignment_builds_a_mask(device, dtype, sample):
    (mask, idx), _ = sample.build(dtype=dtype, device=device)
    n = mask.shape[0]
    assert not mask.cpu().any(), "the mask does not start as zeros(n)"
    probe = saved_for_backward(mask)
    out = MASK_FROM_INDEX.call(mask, idx)
    assert_write_seen_by_autograd(probe, "m[idx] = 1")
    assert out.dtype == torch.bool, f"bool() gave {out.dtype}"
    expected = [i in {j % n for j in idx} for i in range(n)]
    assert out.tolist() == expected, "the mask is not true exactly at idx"
    assert (mask.cpu() == 1).tolist() == expected, "m[idx] = 1 did not write 1 exactly at idx"


@st.composite
def advanced_indices(draw):
    """Sample(t, rows, kind): rows of t as a list, an index tensor or a boolean mask."""
    # rows to index: dim 0 holds at least one; an empty row list is left out because torch.tensor([])
    # is a float tensor, not an index
    x = draw(specs(layouts=WRITABLE_LAYOUTS, shapes=shapes(min_dims=1).filter(lambda s: s[0] > 0)), label="x")
    rows = draw(index_lists(x.shape[0], min_size=1), label="rows")  # repeats and negatives read fine
    return Sample((x, rows, draw(st.sampled_from(["list", "tensor", "mask"]), label="kind")))


def advanced_index(t, rows, kind):
    """t[rows] with rows a list, an index tensor, or a boolean mask true at those rows."""
    n = t.shape[0]
    if kind == "tensor":
        return t[torch.tensor(rows, device=t.device)]
    if kind == "mask":
        at = torch.tensor([r % n for r in rows], device=t.device)
        return t[torch.zeros(n, dtype=torch.bool, device=t.device).index_fill_(0, at, True)]
    return t[rows]


ADVANCED_INDEXING = Operation(
    "indexing.advanced_indexing_copies",
    dtypes="representative",
    samples=advanced_indices(),
    call=lambda t, rows, kind: advanced_index(t, rows, kind),
    shape_depends_on_values=True,  # a boolean mask's result has as many rows as it has True
)


@ADVANCED_INDEXING.property
def test_advanced_indexing_returns_a_copy(device, dtype, sample):
    x, rows, kind = sample.args
    (t, *_), _ = sample.build(dtype=dtype, device=device)
    n = x.shape[0]
    picked = ADVANCED_INDEXING.call(t, rows, kind)
    assert_own_storage(picked, t, f"t[{kind}]")
    # the rows NumPy's advanced indexing picks, in the source's dtype
    a = independent_array(x.logical_values(dtype))
    expected = a[np.array([r % n for r in rows])] if kind != "mask" else a[sorted({r % n for r in rows})]
    assert picked.dtype == t.dtype, f"t[{kind}]: dtype {picked.dtype}, the source's is {t.dtype}"
    np.testing.assert_array_equal(independent_array(picked.cpu()), expected, f"t[{kind}]: not the indexed rows")
    t.copy_(~t if dtype == torch.bool else t + 1)
    np.testing.assert_array_equal(independent_array(picked.cpu()), expected, "a write to the source showed in the indexed result")


NEGATIVE_STEP = Operation(
    "indexing.negative_step_raises",
    dtypes="float32",
    # a step slices a dim: at least one
    samples=st.builds(lambda x, step: Sample((x, step)), specs(shapes=shapes(min_dims=1)), st.integers(-(2**62), -1)),
    call=lambda t, step: t[::step],
)


@NEGATIVE_STEP.property
def test_negative_slice_step_raises(device, dtype, sample):
    with pytest.raises(ValueError):
        NEGATIVE_STEP(sample, dtype=dtype, device=device)


@st.composite
def accumulations(draw):
    """Sample(zeros(n), zeros(n), idx, values): indices repeated on purpose, small integer values."""
    n = draw(st.integers(1, 6), label="n")
    idx = draw(st.lists(st.integers(-n, n - 1), max_size=3 * n), label="indices")  # repeats on purpose
    values = draw(st.lists(st.integers(-9, 9), min_size=len(idx), max_size=len(idx)), label="values")
    # zeros(n), twice: low == high makes every value 0
    zeros = specs(shape=(n,), layouts=WRITABLE_LAYOUTS, low=0, high=0)
    return Sample((draw(zeros, label="put"), draw(zeros, label="added"), idx, values))


def accumulate_both(put, added, idx, values):
    """put.index_put_((idx,), values, accumulate=True) and added.index_add_(0, idx % n, values):
    what each returns."""
    index = torch.tensor(idx, dtype=torch.long, device=put.device)
    source = torch.tensor(values, dtype=put.dtype, device=put.device)
    # index_add_ takes indices in [0, n)
    return put.index_put_((index,), source, accumulate=True), added.index_add_(0, index % put.shape[0], source)


ACCUMULATE = Operation(
    "indexing.accumulate_duplicates",
    dtypes="float32_64",
    samples=accumulations(),
    call=lambda put, added, idx, values: accumulate_both(put, added, idx, values),
)


@ACCUMULATE.property
def test_accumulating_writes_add_every_repeated_index(device, dtype, sample):
    (put, added, idx, values), _ = sample.build(dtype=dtype, device=device)
    n = put.shape[0]
    assert not put.cpu().any() and not added.cpu().any(), "the targets do not start as zeros(n)"
    expected = np.zeros(n)
    np.add.at(expected, np.array(idx, dtype=np.int64), np.array(values, dtype=np.float64))  # unbuffered: every repeat counts
    probes = saved_for_backward(put), saved_for_backward(added)
    returned = ACCUMULATE.call(put, added, idx, values)
    assert returned[0] is put, "index_put_ did not return self"
    assert returned[1] is added, "index_add_ did not return self"
    np.testing.assert_array_equal(independent_array(put.cpu()), expected, "index_put_ with accumulate=True")
    np.testing.assert_array_equal(independent_array(added.cpu()), expected, "index_add_ of repeated indices")
    assert_write_seen_by_autograd(probes[0], "index_put_")
    assert_write_seen_by_autograd(probes[1], "index_add_")
