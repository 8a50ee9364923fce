"""Indexing: assignment through index lists and slices, masks, copies, negative steps."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks import assert_own_storage, independent_array
from strategies import specs
from strategies.samples import index_lists
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


@pytest.mark.behaviour("indexing.list_index_assignment")
@pytest.mark.dtypes("representative")
# rows to index: dim 0 holds at least one (an empty dim has no index to draw); the others may be empty
@given(x=specs(layouts=WRITABLE_LAYOUTS, shapes=shapes(min_dims=1).filter(lambda s: s[0] > 0)), data=st.data())
def test_assignment_through_index_lists_and_slices(device, dtype, x, data):
    n = x.shape[0]
    source = data.draw(specs(shape=x.shape), label="source").build(dtype=dtype, device=device)
    if data.draw(st.booleans(), label="use_slice"):
        start = data.draw(st.integers(-n, n), label="start")
        index, rows = slice(start, None), list(range(n))[start:]
    else:
        # Unsorted and negative indices (-n <= i < n), as a list or a tensor. Repeats are left out:
        # "If accumulate is False, the behavior is undefined if indices contain duplicate elements."
        index = data.draw(index_lists(n, unique=True), label="rows")
        rows = [i % n for i in index]
        if data.draw(st.booleans(), label="as_tensor"):
            index = torch.tensor(index, dtype=torch.long, device=device)
    t = x.build(dtype=dtype, device=device)
    expected = independent_array(x.logical_values(dtype))
    expected[rows] = independent_array(source.cpu())[rows]
    probe = saved_for_backward(t)
    t[index] = source[index]
    np.testing.assert_array_equal(independent_array(t.cpu()), expected, "rows assigned, or the others kept")
    assert_write_seen_by_autograd(probe, "t[index] = ...")


@pytest.mark.behaviour("indexing.mask_from_index_assignment")
@given(n=st.integers(1, 12), data=st.data())
def test_index_assignment_builds_a_mask(device, n, data):
    # repeated, unsorted and negative positions, or none at all (a mask with no True); repeats are
    # fine here, since every write stores the same 1
    idx = data.draw(index_lists(n, max_size=2 * n), label="idx")
    mask = torch.zeros(n, device=device)
    probe = saved_for_backward(mask)
    mask[torch.tensor(idx, dtype=torch.long, device=device)] = 1
    assert_write_seen_by_autograd(probe, "m[idx] = 1")
    mask = mask.bool()
    assert mask.dtype == torch.bool, f"bool() gave {mask.dtype}"
    assert mask.tolist() == [i in {j % n for j in idx} for i in range(n)], "the mask is not true exactly at idx"


@pytest.mark.behaviour("indexing.advanced_indexing_copies")
@pytest.mark.dtypes("representative")
# rows to index: dim 0 holds at least one; an empty row list is left out because torch.tensor([])
# is a float tensor, not an index
@given(x=specs(layouts=WRITABLE_LAYOUTS, shapes=shapes(min_dims=1).filter(lambda s: s[0] > 0)), data=st.data())
def test_advanced_indexing_returns_a_copy(device, dtype, x, data):
    t = x.build(dtype=dtype, device=device)
    n = x.shape[0]
    rows = data.draw(index_lists(n, min_size=1), label="rows")  # repeats and negatives read fine
    kind = data.draw(st.sampled_from(["list", "tensor", "mask"]), label="kind")
    index = {
        "list": rows,
        "tensor": torch.tensor(rows, device=device),
        "mask": torch.zeros(n, dtype=torch.bool, device=device).index_fill_(
            0, torch.tensor([r % n for r in rows], device=device), True
        ),
    }[kind]
    picked = t[index]
    assert_own_storage(picked, t, f"t[{kind}]")
    # the rows NumPy's advanced indexing picks, in the source's dtype
    a = independent_array(x.logical_values(dtype))
    expected = a[np.array([r % n for r in rows])] if kind != "mask" else a[sorted({r % n for r in rows})]
    assert picked.dtype == t.dtype, f"t[{kind}]: dtype {picked.dtype}, the source's is {t.dtype}"
    np.testing.assert_array_equal(independent_array(picked.cpu()), expected, f"t[{kind}]: not the indexed rows")
    t.copy_(~t if dtype == torch.bool else t + 1)
    np.testing.assert_array_equal(independent_array(picked.cpu()), expected, "a write to the source showed in the indexed result")


@pytest.mark.behaviour("indexing.negative_step_raises")
@given(x=specs(shapes=shapes(min_dims=1)), step=st.integers(-(2**62), -1))  # a step slices a dim: at least one
def test_negative_slice_step_raises(device, x, step):
    t = x.build(dtype=torch.float32, device=device)
    with pytest.raises(ValueError):
        t[::step]


@pytest.mark.behaviour("indexing.accumulate_duplicates")
@pytest.mark.dtypes("float32_64")
@given(n=st.integers(1, 6), data=st.data())
def test_accumulating_writes_add_every_repeated_index(device, dtype, n, data):
    idx = data.draw(st.lists(st.integers(-n, n - 1), max_size=3 * n), label="indices")  # repeats on purpose
    values = data.draw(st.lists(st.integers(-9, 9), min_size=len(idx), max_size=len(idx)), label="values")
    expected = np.zeros(n)
    np.add.at(expected, np.array(idx, dtype=np.int64), np.array(values, dtype=np.float64))  # unbuffered: every repeat counts
    index = torch.tensor(idx, dtype=torch.long, device=device)
    source = torch.tensor(values, dtype=dtype, device=device)
    put = torch.zeros(n, dtype=dtype, device=device)
    probe = saved_for_backward(put)
    assert put.index_put_((index,), source, accumulate=True) is put, "index_put_ did not return self"
    np.testing.assert_array_equal(independent_array(put.cpu()), expected, "index_put_ with accumulate=True")
    assert_write_seen_by_autograd(probe, "index_put_")
    added = torch.zeros(n, dtype=dtype, device=device)
    probe = saved_for_backward(added)
    assert added.index_add_(0, index % n, source) is added, "index_add_ did not return self"  # indices in [0, n)
    np.testing.assert_array_equal(independent_array(added.cpu()), expected, "index_add_ of repeated indices")
    assert_write_seen_by_autograd(probe, "index_add_")
