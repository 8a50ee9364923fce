"""Indexing: assignment through index lists and slices, masks, copies, negative steps."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks import assert_equal, assert_own_storage, independent_array
from strategies import specs
from strategies.samples import index_lists
from strategies.shapes import shapes
from strategies.tensors import WRITABLE_LAYOUTS


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
    before = t.clone()
    t[index] = source[index]
    for r in range(n):
        assert_equal(t[r], source[r] if r in rows else before[r], f"row {r}")


@pytest.mark.behaviour("indexing.mask_from_index_assignment")
@given(n=st.integers(1, 12), data=st.data())
def test_index_assignment_builds_a_mask(device, n, data):
    # repeated, unsorted and negative positions, or none at all (a mask with no True); repeats are
    # fine here, since every write stores the same 1
    idx = data.draw(index_lists(n, max_size=2 * n), label="idx")
    mask = torch.zeros(n, device=device)
    mask[torch.tensor(idx, dtype=torch.long, device=device)] = 1
    mask = mask.bool()
    assert mask.tolist() == [i in {j % n for j in idx} for i in range(n)]


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
    snapshot = picked.clone()
    t.copy_(~t if dtype == torch.bool else t + 1)
    assert_equal(picked, snapshot, "a write to the source showed in the indexed result")


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
    assert put.index_put_((index,), source, accumulate=True) is put
    np.testing.assert_array_equal(independent_array(put.cpu()), expected)
    added = torch.zeros(n, dtype=dtype, device=device)
    assert added.index_add_(0, index % n, source) is added  # index_add_ takes indices in [0, n)
    np.testing.assert_array_equal(independent_array(added.cpu()), expected)
