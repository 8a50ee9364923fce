"""The strategies reach what they promise, replay exactly, and poison their gaps."""

import math

import pytest
import torch
from hypothesis import find, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from strategies import DTYPE_GROUPS, LAYOUTS, TensorSpec, dtypes_for, specs
from strategies.samples import call_forms, dims, index_lists, option_grid
from strategies.shapes import SIZE_BUCKETS, reshapes, shapes, size_bucket
from strategies.tensors import poison

ENOUGH = settings(max_examples=600, database=None, deadline=None)


def test_every_layout_and_size_bucket_and_ndim_is_reached():
    seen = set()

    @ENOUGH
    @given(specs())
    def draw(spec):
        seen.add(("layout", spec.layout))
        seen.add(("size", size_bucket(spec.numel)))
        seen.add(("ndim", spec.ndim))
        seen.add(("zero-size", 0 in spec.shape))

    draw()
    missing = (
        {("layout", name) for name in LAYOUTS}
        | {("size", b) for b in SIZE_BUCKETS if b != ">128"}
        | {("ndim", n) for n in range(5)}
        | {("zero-size", True)}
    ) - seen
    assert not missing, missing


def test_large_size_bucket_is_reachable():
    @ENOUGH
    @given(specs(shapes=shapes(min_dims=4, min_side=4)))
    def draw(spec):
        assert size_bucket(spec.numel) == ">128"

    draw()


def test_every_dtype_of_every_group_builds_in_every_layout():
    layouts_seen = {d: set() for d in DTYPE_GROUPS["all"]}

    @settings(max_examples=300, database=None, deadline=None)
    @given(specs(special_values=True), st.sampled_from(DTYPE_GROUPS["all"]))
    def draw(spec, dtype):
        t = spec.build(dtype=dtype)
        assert t.dtype == dtype and tuple(t.shape) == spec.shape
        assert torch.equal(
            t.nan_to_num() if dtype.is_floating_point or dtype.is_complex else t,
            spec.logical_values(dtype).nan_to_num()
            if dtype.is_floating_point or dtype.is_complex
            else spec.logical_values(dtype),
        )
        layouts_seen[dtype].add(spec.layout)

    draw()
    assert all(layouts_seen[d] for d in layouts_seen)
    assert dtypes_for("floating", "mps") == (torch.float16, torch.bfloat16, torch.float32)


def test_non_contiguous_layouts_really_are_strided():
    spec = TensorSpec(shape=(3, 4), layout="sliced", params=(2, 3))
    t = spec.build(dtype=torch.float32)
    assert not t.is_contiguous() and t.stride() == (24, 3)
    spec = TensorSpec(shape=(2, 3, 4), layout="as_strided", params=((2, 0, 1), (2, 1, 2), 3))
    t = spec.build(dtype=torch.int64)
    assert not t.is_contiguous() and t.storage_offset() == 3
    assert TensorSpec(shape=(2, 3), layout="expanded", params=(0,)).build(dtype=torch.int8).stride()[0] == 0
    assert (
        TensorSpec(shape=(2, 3, 4, 5), layout="channels_last")
        .build(dtype=torch.float32)
        .is_contiguous(memory_format=torch.channels_last)
    )


def test_gaps_hold_poison():
    spec = TensorSpec(shape=(2, 2), layout="sliced", params=(2, 2), seed=3)
    for dtype, check in [(torch.float32, lambda v: math.isnan(v)), (torch.int32, lambda v: v == torch.iinfo(torch.int32).max)]:
        t = spec.build(dtype=dtype)
        storage = torch.empty(0, dtype=dtype).set_(t.untyped_storage())
        used = {i * t.stride(0) + j * t.stride(1) for i in range(2) for j in range(2)}
        gaps = [storage[k].item() for k in range(storage.numel()) if k not in used]
        assert gaps and all(check(v) for v in gaps)
        assert poison(dtype) is not None


def test_same_seed_gives_the_same_tensors_and_leaves_the_global_rng_alone():
    def collect():
        out = []

        @seed(1234)
        @settings(max_examples=30, database=None, deadline=None)
        @given(specs(special_values=True))
        def draw(spec):
            out.append((spec, spec.build(dtype=torch.float64)))

        draw()
        return out

    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(7)
        before = torch.get_rng_state()
        first, second = collect(), collect()
        assert torch.equal(before, torch.get_rng_state())
    assert [s for s, _ in first] == [s for s, _ in second]
    for (_, a), (_, b) in zip(first, second):
        assert torch.equal(a.nan_to_num(), b.nan_to_num()) and a.stride() == b.stride()


def test_special_values_are_reachable():
    seen = set()

    @ENOUGH
    @given(specs(special_values=True, shapes=shapes(min_dims=1, min_side=1)))
    def draw(spec):
        t = spec.build(dtype=torch.float32)
        seen.update({"nan"} if t.isnan().any() else set())
        seen.update({"inf"} if t.isposinf().any() else set())
        seen.update({"-inf"} if t.isneginf().any() else set())
        seen.update({"-0.0"} if ((t == 0) & t.signbit()).any() else set())

    draw()
    assert seen == {"nan", "inf", "-inf", "-0.0"}


@settings(max_examples=200, database=None, deadline=None)
@given(st.data())
def test_reshapes_keep_the_element_count(data):
    shape = data.draw(shapes())
    new = data.draw(reshapes(shape))
    assert math.prod(new) == math.prod(shape)


def test_strategies_reject_bad_arguments_at_once():
    import pytest
    from hypothesis.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="unknown layout.*'transpose'.*valid: contiguous, transposed"):
        specs(layouts=("transpose",))
    with pytest.raises(InvalidArgument, match="not both"):
        specs(shape=(2,), shapes=shapes())
    with pytest.raises(InvalidArgument, match="non-negative"):
        specs(shape=(2, -1))
    with pytest.raises(InvalidArgument, match="low must not exceed high"):
        specs(low=3, high=1)
    with pytest.raises(InvalidArgument, match="min <= max"):
        shapes(min_dims=3, max_dims=1)


@given(ndim=st.integers(0, 5), data=st.data())
def test_dims_cover_the_documented_range_and_nothing_else(ndim, data):
    plain = data.draw(dims(ndim))
    assert -max(ndim, 1) <= plain < max(ndim, 1)
    inserted = data.draw(dims(ndim, inserting=True))
    assert -(ndim + 1) <= inserted <= ndim


def test_dims_reach_both_ends_and_refuse_a_bad_rank():
    assert {find(dims(3), lambda d: d == -3), find(dims(3), lambda d: d == 2)} == {-3, 2}
    assert {find(dims(3, inserting=True), lambda d: d == -4), find(dims(3, inserting=True), lambda d: d == 3)} == {-4, 3}
    with pytest.raises(InvalidArgument, match="ndim"):
        dims(-1).example()


@pytest.mark.parametrize(
    "dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.uint8, torch.int64]
)
def test_extremes_place_the_dtype_s_own_limits(dtype):
    from strategies.tensors import EXTREMES, extreme_value

    names = [n for n in EXTREMES if extreme_value(n, dtype) is not None]
    spec = TensorSpec(shape=(len(names),), extremes=tuple(enumerate(names)))
    values = spec.values(dtype).tolist()
    if dtype.is_floating_point:
        info = torch.finfo(dtype)
        assert values == [info.max, info.min, info.tiny, info.tiny / 4]
        assert 0 < values[3] < info.tiny, "the subnormal is not below the smallest normal"
    else:
        info = torch.iinfo(dtype)
        assert values == [info.max, info.min]


@given(n=st.integers(0, 6), unique=st.booleans(), data=st.data())
def test_index_lists_stay_in_the_documented_range(n, unique, data):
    index = data.draw(index_lists(n, unique=unique))
    assert all(-n <= i < n for i in index)
    if unique:
        assert len({i % n for i in index}) == len(index)


def test_index_lists_reach_every_class_and_refuse_bad_arguments():
    assert find(index_lists(4), lambda ix: any(i < 0 for i in ix) and len(set(ix)) < len(ix) and ix != sorted(ix))
    assert find(index_lists(4), lambda ix: ix == []) == []
    assert all(i % 3 != j % 3 for ix in [find(index_lists(3, unique=True), lambda ix: len(ix) == 3)] for i, j in zip(ix, ix[1:]))
    with pytest.raises(InvalidArgument, match="non-negative"):
        index_lists(-1)
    with pytest.raises(InvalidArgument, match="no index"):
        index_lists(0, min_size=1)


def test_option_grids_reach_every_combination_and_refuse_empty_options():
    grid = option_grid(reduction=["none", "sum", "mean"], drop=[False, True])
    for reduction in ("none", "sum", "mean"):
        for drop in (False, True):
            assert find(grid, lambda o, r=reduction, d=drop: o == {"reduction": r, "drop": d})
    with pytest.raises(InvalidArgument, match="non-empty list"):
        option_grid(reduction=[])
    with pytest.raises(InvalidArgument, match="at least one"):
        option_grid()


def test_call_forms_reach_every_form_and_refuse_an_empty_table():
    forms = {"method": None, "function": None, "keyword": None}
    assert {find(call_forms(forms), lambda f, n=name: f == n) for name in forms} == set(forms)
    with pytest.raises(InvalidArgument, match="non-empty dict"):
        call_forms({})


def test_magnitude_classes_scale_floating_values_and_leave_integers_alone():
    from strategies.tensors import magnitude_factor

    for name, bound in (("small", 9e-3 + 1e-9), ("unit", 9.0), ("large", 9 * magnitude_factor("large", torch.float32))):
        spec = TensorSpec(shape=(50,), seed=1, magnitude=name)
        values = spec.build(dtype=torch.float32)
        assert values.abs().max() <= bound and values.abs().max() > bound / 20, name
        assert torch.equal(spec.build(dtype=torch.int64), TensorSpec(shape=(50,), seed=1).build(dtype=torch.int64))
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        large = TensorSpec(shape=(200,), magnitude="large").build(dtype=dtype)
        assert torch.isfinite(large * large).all(), dtype
    with pytest.raises(InvalidArgument, match="magnitudes"):
        specs(magnitudes=True, low=0)


def test_equal_bounds_give_one_value_in_every_dtype_and_layout():
    # low == high: the tensor of zeros (or of any one value) a declaration starts from
    for dtype in DTYPE_GROUPS["all"]:
        built = TensorSpec(shape=(3, 4), seed=5, low=0, high=0).build(dtype=dtype)
        assert built.dtype == dtype and not built.any(), dtype
    assert torch.equal(
        TensorSpec(shape=(4,), low=3, high=3).build(dtype=torch.float64), torch.full((4,), 3.0, dtype=torch.float64)
    )


def test_falsifying_examples_print_specs_samples_and_operations_compactly():
    """A spec prints as the constructor call that rebuilds it, defaults left out; a Sample as the
    call it stands for; an Operation as its behaviour id (not its strategy), in Hypothesis too."""
    from hypothesis.vendor.pretty import pretty

    from conformance.harness.declaration import operations
    from strategies.samples import Arg, Sample

    spec = TensorSpec(shape=(2, 3), layout="sliced", params=(2, 1), seed=7, specials=((0, "nan"),))
    assert repr(spec) == "TensorSpec(shape=(2, 3), layout='sliced', params=(2, 1), seed=7, specials=((0, 'nan'),))"
    assert eval(repr(spec)) == spec  # enough to rebuild the input
    assert repr(TensorSpec(shape=())) == "TensorSpec(shape=(), seed=0)"
    sample = Sample((spec, Arg(TensorSpec(shape=(1,)), dtype=torch.float64)), {"dim": 1})
    assert repr(sample) == f"Sample({spec!r}, Arg(spec=TensorSpec(shape=(1,), seed=0), dtype=torch.float64), dim=1)"
    assert pretty(sample) == repr(sample)
    operation = operations()[0]
    assert pretty(operation) == repr(operation) == f"Operation({operation.behaviour!r})"


def test_whole_values_are_whole_numbers_in_range_so_ties_are_common():
    import torch

    from strategies.tensors import TensorSpec

    for dtype in (torch.float32, torch.float64, torch.bfloat16, torch.complex64):
        values = TensorSpec(shape=(40,), seed=5, low=-2, high=2, whole=True).logical_values(dtype)
        parts = (values.real, values.imag) if dtype.is_complex else (values,)
        assert all(torch.equal(p, p.round()) and p.abs().max() <= 2 for p in parts), values
        assert len(set(values.tolist())) < 40, "no equal elements among 40 whole numbers in [-2, 2]"
