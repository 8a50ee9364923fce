"""Indexing: assignment through index lists and slices, masks, copies, negative steps."""

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

from conformance.checks import assert_own_storage, independent_array
from conformance.harness.declaration import Operation
from strategies import specs
from strategies.samples import Arg, Sample, call_forms, dims, index_lists
from strategies.shapes import shapes
from strategies.tensors import WRITABLE_LAYOUTS, label


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


def index_spec(shape, n):
    """An int64 index tensor of `shape` (any layout) whose values lie in [0, n): the range gather,
    scatter_ and scatter_add_ document ("between 0 and self.size(dim) - 1 inclusive"); repeats fall
    where they fall."""
    # the documented index range: make_tensor's high is exclusive
    return specs(shape=shape, low=0, high=max(n, 1) if n else 0)


@st.composite
def index_shape_within(draw, shape, dim, *, along):
    """A shape of len(shape) dims no larger than `shape` in the dims other than `dim`, and of up to
    `along` elements in `dim` (none where shape[dim] is 0: no index fits an empty dim)."""
    d = dim % len(shape)
    return tuple(
        draw(st.integers(0, along if shape[d] else 0), label=f"index_size{i}")
        if i == d
        else draw(st.integers(0, s), label=f"index_size{i}")
        for i, s in enumerate(shape)
    )


GATHER_FORMS = {
    "function": lambda t, dim, index: torch.gather(t, dim, index),
    "method": lambda t, dim, index: t.gather(dim, index),
    "keyword": lambda t, dim, index: torch.gather(input=t, dim=dim, index=index),
}


@st.composite
def gathers(draw):
    """Sample(x, dim, Arg(index, int64), form): index as many dims as x, no larger than x in the
    dims other than dim, its values in [0, x.size(dim))."""
    # the formula indexes x along dim: at least one dim
    x = draw(specs(shapes=shapes(min_dims=1)), label="x")
    dim = draw(dims(x.ndim), label="dim")
    shape = draw(index_shape_within(x.shape, dim, along=5), label="index_shape")
    index = Arg(draw(index_spec(shape, x.shape[dim]), label="index"), dtype=torch.int64)
    return Sample((x, dim, index, draw(call_forms(GATHER_FORMS), label="form")))


GATHER = Operation(
    "indexing.gather_along_dim",
    dtypes="representative",
    samples=gathers(),
    call=lambda t, dim, index, form: GATHER_FORMS[form](t, dim, index),
)


@GATHER.property
def test_gather_reads_input_at_index_along_dim(device, dtype, sample):
    x, dim, index_arg, _ = sample.args
    (t, _, index, form), _ = sample.build(dtype=dtype, device=device)
    a = independent_array(x.logical_values(dtype))
    idx = independent_array(index_arg.spec.logical_values(torch.int64))
    d = dim % x.ndim
    # out[i][j][k] = input[i][index[i][j][k]][k] (dim == 1): NumPy's take_along_axis over the part
    # of input that index spans in the other dims
    part = a[tuple(slice(None) if i == d else slice(0, s) for i, s in enumerate(idx.shape))]
    expected = np.take_along_axis(part, idx, axis=d) if idx.size else np.empty(idx.shape, a.dtype)
    out = GATHER.call(t, dim, index, form)
    assert tuple(out.shape) == idx.shape, f"gather: shape {tuple(out.shape)}, not index's {idx.shape}"
    assert out.dtype == t.dtype, f"gather: dtype {out.dtype}, not input's {t.dtype}"
    np.testing.assert_array_equal(independent_array(out.cpu()), expected, "gather: not input at index along dim")


SCATTER_FORMS = {
    "src": lambda t, dim, index, src, value: t.scatter_(dim, index, src),
    "src_keyword": lambda t, dim, index, src, value: t.scatter_(dim=dim, index=index, src=src),
    "value": lambda t, dim, index, src, value: t.scatter_(dim, index, value),
    "add": lambda t, dim, index, src, value: t.scatter_add_(dim, index, src),
    "add_keyword": lambda t, dim, index, src, value: t.scatter_add_(dim=dim, index=index, src=src),
}


@st.composite
def scatters(draw, forms):
    """Sample(t, dim, Arg(index, int64), src, value, form): index as many dims as t, no larger than
    src in any dim nor than t in the dims other than dim, its values in [0, t.size(dim)), repeats
    included; src at least index's size."""
    # the formula writes into t along dim: at least one dim
    x = draw(specs(layouts=WRITABLE_LAYOUTS, shapes=shapes(min_dims=1)), label="t")
    dim = draw(dims(x.ndim), label="dim")
    shape = draw(index_shape_within(x.shape, dim, along=5), label="index_shape")
    src_shape = tuple(s + draw(st.integers(0, 1), label=f"src_extra{i}") for i, s in enumerate(shape))
    index = Arg(draw(index_spec(shape, x.shape[dim]), label="index"), dtype=torch.int64)
    src = draw(specs(shape=src_shape), label="src")
    return Sample((x, dim, index, src, draw(st.integers(-9, 9), label="value"), draw(call_forms(forms), label="form")))


def targets(index: np.ndarray, dim: int) -> dict:
    """position in self -> the positions of src written there: self[i][index[i][j][k]][k] = src[i][j][k]
    (dim == 1), by index arithmetic."""
    written: dict = {}
    for position in np.ndindex(*index.shape):
        target = tuple(int(index[position]) if i == dim else p for i, p in enumerate(position))
        written.setdefault(target, []).append(position)
    return written


def scatter_into(t, dim, index, src, value, form):
    """What t.scatter_ or t.scatter_add_ in `form` returns."""
    return SCATTER_FORMS[form](t, dim, index, src, value)


def settled(t, dim, index):
    """t with every element that two or more indices write set to 0: scatter_ documents no winner
    among them ("one of the values from src will be picked arbitrarily"), so two runs agree on the rest."""
    contested = np.zeros(tuple(t.shape), dtype=bool)
    for target, sources in targets(independent_array(index.cpu()), dim % t.dim()).items():
        contested[target] = len(sources) > 1
    return t.masked_fill(torch.from_numpy(contested).to(t.device), 0)


SCATTER = Operation(
    "indexing.scatter_writes_src_at_index",
    dtypes="representative",
    samples=scatters({k: v for k, v in SCATTER_FORMS.items() if not k.startswith("add")}),
    call=lambda t, dim, index, src, value, form: settled(scatter_into(t, dim, index, src, value, form), dim, index),
)


@SCATTER.property
def test_scatter_writes_src_where_index_points(device, dtype, sample):
    x, dim, index_arg, src_spec, value, form = sample.args
    (t, _, index, src, _, _), _ = sample.build(dtype=dtype, device=device)
    before = independent_array(x.logical_values(dtype))
    s = independent_array(src_spec.logical_values(dtype))
    written = targets(independent_array(index_arg.spec.logical_values(torch.int64)), dim % x.ndim)
    held = independent_array(torch.tensor(value, dtype=dtype)) if form == "value" else None
    probe = saved_for_backward(t)
    assert scatter_into(t, dim, index, src, value, form) is t, "scatter_ did not return self"
    assert_write_seen_by_autograd(probe, "t.scatter_")
    after = independent_array(t.cpu())
    for position in np.ndindex(*before.shape):
        if position not in written:
            np.testing.assert_array_equal(after[position], before[position], f"scatter_ changed {position}, unnamed by index")
            continue
        # one of the values written there (repeated indices: "one of the values from src will be picked arbitrarily")
        candidates = [held] if held is not None else [s[p] for p in written[position]]
        assert any(np.array_equal(after[position], c, equal_nan=True) for c in candidates), (
            f"scatter_ wrote {after[position]!r} at {position}, not src's value there ({candidates!r})"
        )


SCATTER_ADD = Operation(
    "indexing.scatter_add_sums_repeats",
    # integers sum exactly in any order (wrapping modulo 2**bits alike)
    dtypes="integral",
    samples=scatters({k: v for k, v in SCATTER_FORMS.items() if k.startswith("add")}),
    call=lambda t, dim, index, src, value, form: scatter_into(t, dim, index, src, value, form),
)


@SCATTER_ADD.property
def test_scatter_add_adds_every_src_value_at_its_index(device, dtype, sample):
    x, dim, index_arg, src_spec, value, form = sample.args
    (t, _, index, src, _, _), _ = sample.build(dtype=dtype, device=device)
    expected = independent_array(x.logical_values(dtype)).copy()
    s = independent_array(src_spec.logical_values(dtype))
    written = targets(independent_array(index_arg.spec.logical_values(torch.int64)), dim % x.ndim)
    pairs = [(target, p) for target, sources in written.items() for p in sources]
    if pairs:  # self[i][index[i][j][k]][k] += src[i][j][k], every repeat counted (unbuffered np.add.at)
        at = tuple(np.array([target for target, _ in pairs]).T)
        np.add.at(expected, at, np.array([s[p] for _, p in pairs], dtype=expected.dtype))
    probe = saved_for_backward(t)
    assert scatter_into(t, dim, index, src, value, form) is t, "scatter_add_ did not return self"
    assert_write_seen_by_autograd(probe, "t.scatter_add_")
    np.testing.assert_array_equal(independent_array(t.cpu()), expected, "scatter_add_: not self plus every src value")


INDEX_SELECT_FORMS = {
    "function": lambda t, dim, index: torch.index_select(t, dim, index),
    "method": lambda t, dim, index: t.index_select(dim, index),
    "keyword": lambda t, dim, index: torch.index_select(input=t, dim=dim, index=index),
}


@st.composite
def index_selections(draw):
    """Sample(x, dim, rows, index_dtype, form): rows a list of positions along dim in [0, n),
    repeated, unsorted or empty, given as an int64 or int32 tensor ("IntTensor or LongTensor")."""
    # index_select indexes along a dim: at least one
    x = draw(specs(shapes=shapes(min_dims=1)), label="x")
    dim = draw(dims(x.ndim), label="dim")
    n = x.shape[dim]
    # the documented range is [0, n) (negative positions are not documented)
    rows = draw(st.lists(st.integers(0, n - 1), max_size=6) if n else st.just([]), label="rows")
    index_dtype = draw(st.sampled_from(["int64", "int32"]), label="index_dtype")
    return Sample((x, dim, rows, index_dtype, draw(call_forms(INDEX_SELECT_FORMS), label="form")))


def index_select_rows(t, dim, rows, index_dtype, form):
    index = torch.tensor(rows, dtype=getattr(torch, index_dtype), device=t.device)
    return INDEX_SELECT_FORMS[form](t, dim, index)


INDEX_SELECT = Operation(
    "indexing.index_select_copies_rows",
    dtypes="representative",
    samples=index_selections(),
    call=lambda t, dim, rows, index_dtype, form: index_select_rows(t, dim, rows, index_dtype, form),
)


@INDEX_SELECT.property
def test_index_select_returns_the_rows_named_in_new_storage(device, dtype, sample):
    x, dim, rows, _, _ = sample.args
    (t, *rest), _ = sample.build(dtype=dtype, device=device)
    expected = np.take(independent_array(x.logical_values(dtype)), np.array(rows, dtype=np.int64), axis=dim)
    out = INDEX_SELECT.call(t, *rest)
    assert out.dim() == t.dim() and tuple(out.shape) == expected.shape, (
        f"index_select: shape {tuple(out.shape)}, not input's with len(index) in dim"
    )
    assert out.dtype == t.dtype, f"index_select: dtype {out.dtype}, not input's"
    np.testing.assert_array_equal(independent_array(out.cpu()), expected, "index_select: not the entries of index along dim")
    assert_own_storage(out, t, "index_select")


TRIANGLE_FORMS = {
    "tril": lambda t, diagonal: torch.tril(t, diagonal),
    "tril_keyword": lambda t, diagonal: torch.tril(t, diagonal=diagonal),
    "tril_default": lambda t, diagonal: torch.tril(t),
    "triu": lambda t, diagonal: torch.triu(t, diagonal),
    "triu_keyword": lambda t, diagonal: torch.triu(t, diagonal=diagonal),
    "triu_default": lambda t, diagonal: torch.triu(t),
    "triu_": lambda t, diagonal: t.triu_(diagonal),
    "triu__default": lambda t, diagonal: t.triu_(),
}


@st.composite
def triangles(draw):
    """Sample(x, diagonal, form): a matrix or a batch of them, a diagonal from below the last row
    to beyond the last column."""
    # "the matrix (2-D tensor) or batch of matrices": at least two dims
    x = draw(specs(layouts=WRITABLE_LAYOUTS, shapes=shapes(min_dims=2)), label="x")
    diagonal = draw(st.integers(-6, 6), label="diagonal")
    label("diagonal<0" if diagonal < 0 else "diagonal>0" if diagonal > 0 else "diagonal=0")
    return Sample((x, diagonal, draw(call_forms(TRIANGLE_FORMS), label="form")))


TRIANGLE = Operation(
    "indexing.tril_triu_keep_a_triangle",
    dtypes="representative",
    samples=triangles(),
    call=lambda t, diagonal, form: TRIANGLE_FORMS[form](t, diagonal),
)


@TRIANGLE.property
def test_tril_and_triu_keep_their_triangle_and_zero_the_rest(device, dtype, sample):
    x, diagonal, form = sample.args
    t, _, _ = sample.build(dtype=dtype, device=device)[0]
    k = 0 if form.endswith("default") else diagonal  # left out: diagonal=0
    rows, cols = np.indices(x.shape[-2:])
    # on and below diagonal k (tril: j - i <= k), on and above it (triu: j - i >= k)
    keep = (cols - rows <= k) if form.startswith("tril") else (cols - rows >= k)
    a = independent_array(x.logical_values(dtype))
    expected = np.where(keep, a, np.zeros((), dtype=a.dtype))
    in_place = form in ("triu_", "triu__default")
    probe = saved_for_backward(t) if in_place else None
    out = TRIANGLE.call(t, diagonal, form)
    if in_place:
        assert out is t, "triu_ did not return self"
        assert_write_seen_by_autograd(probe, "t.triu_")
    # "the lower triangular part of the matrix": input's own elements, so input's dtype
    assert out.dtype == t.dtype, f"{form}: dtype {out.dtype}, not input's {t.dtype}"
    np.testing.assert_array_equal(independent_array(out.cpu()), expected, f"{form}: not the triangle of diagonal {k}")
