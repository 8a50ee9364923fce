"""Creation: factory shapes and dtypes, random ranges, and what *_like / new_* inherit."""

import contextlib
import math
import re
import sys
import warnings

import numpy
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conformance.checks import (
    assert_same_storage,
    contiguous_strides,
    dense_non_overlapping,
    independent_array,
    numpy_dtype,
    private_rng,
)
from conformance.harness.declaration import Operation
from conformance.harness.releases import torch_at_least
from strategies import DTYPE_GROUPS, specs
from strategies.samples import ITEM_DEVICE, ITEM_DTYPE, SIZE_FORMS, Sample, call_forms
from strategies.shapes import shapes
from strategies.tensors import WRITABLE_LAYOUTS, label


def generator(device, seed: int) -> torch.Generator | None:
    """A generator of its own on `device`, so a call draws nothing from torch's global one; none
    on meta, which has no generator and draws no numbers (its tensors hold no values)."""
    if torch.device(device).type == "meta":
        return None
    return torch.Generator(device=device).manual_seed(seed)


@contextlib.contextmanager
def uninitialised_memory_filled():
    """torch.use_deterministic_algorithms(True) with torch.utils.deterministic.fill_uninitialized_memory
    (its default, True), restored on leaving: the one setting under which the docs fix what an
    uninitialised tensor holds."""
    import torch.utils.deterministic

    mode, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    try:
        torch.use_deterministic_algorithms(True)
        torch.utils.deterministic.fill_uninitialized_memory = True
        yield
    finally:
        torch.utils.deterministic.fill_uninitialized_memory = fill
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)


def assert_filled_as_uninitialised(t: torch.Tensor, name: str):
    """torch.empty and torch.empty_like, under uninitialised_memory_filled(): "Floating point and
    complex tensors are filled with NaN, and integer tensors are filled with the maximum value."
    A bool tensor is neither (torch fills True: observed, not asserted); meta holds no values."""
    if t.device.type == "meta" or t.dtype == torch.bool:
        return
    if t.is_floating_point() or t.is_complex():
        assert bool(t.isnan().all()), f"{name}: an element is not NaN where uninitialised memory is filled"
    else:
        top = torch.iinfo(t.dtype).max
        assert bool((t == top).all()), f"{name}: an element is not the dtype's maximum {top} where uninitialised memory is filled"


def shape_only(t: torch.Tensor) -> torch.Tensor:
    """What a comparison of two runs may ask of a tensor whose values are unspecified (empty) or
    random: its shape, dtype and device, carried by zeros."""
    return torch.zeros_like(t)


FACTORIES = {
    # name -> (call, what two runs agree on), torch looked up when it runs
    "empty": lambda *size, **kw: shape_only(torch.empty(*size, **kw)),
    "zeros": lambda *size, **kw: torch.zeros(*size, **kw),
    "ones": lambda *size, **kw: torch.ones(*size, **kw),
    "rand": lambda *size, seed, **kw: in_unit_interval(torch.rand(*size, generator=drawn_on(kw, seed), **kw)),
    "randn": lambda *size, seed, **kw: finite(torch.randn(*size, generator=drawn_on(kw, seed), **kw)),
}
SAMPLING = ("rand", "randn")  # "rand and randn do the same for the floating and complex dtypes they sample"


def drawn_on(kw: dict, seed: int) -> torch.Generator:
    return generator(kw.get("device", "cpu"), seed)


# generator= on rand_like, randn_like and randint_like is new in torch 2.10: "Add `generator` arg to
# `rand*_like` APIs", https://github.com/pytorch/pytorch/pull/166160 (opened 2025-10, after 2.9's
# release; torch 2.6 has no such argument, 2.13 documents it). Before it, the call draws from torch's
# default generator for the device, seeded alike and restored afterwards: still a generator seeded
# with `seed`, so the same numbers a torch.Generator seeded alike draws (and nothing is taken from
# the stream other tests draw from).
LIKE_TAKES_GENERATOR = torch_at_least("2.10")


def seeded_like(like, t: torch.Tensor, *args, seed: int, **kwargs) -> torch.Tensor:
    """like(t, *args, **kwargs), one of rand_like, randn_like and randint_like, drawing from a
    generator seeded with `seed` on the result's device: its own (generator=) where torch takes one,
    else the device's default one, seeded and then restored (LIKE_TAKES_GENERATOR)."""
    device = torch.device(kwargs.get("device", t.device))
    if LIKE_TAKES_GENERATOR:
        return like(t, *args, generator=generator(device, seed), **kwargs)
    if device.type == "meta":  # no generator, no numbers drawn
        return like(t, *args, **kwargs)
    with private_rng(seed, device):
        return like(t, *args, **kwargs)


def in_unit_interval(t: torch.Tensor):
    return shape_only(t), (t.real >= 0) & (t.real < 1) if t.is_complex() else (t >= 0) & (t < 1)


def finite(t: torch.Tensor):
    return shape_only(t), torch.isfinite(t)


@st.composite
def factory_calls(draw, dtype: torch.dtype) -> Sample:
    """Sample(size..., name, dtype=, device=): a shape in one of the documented size forms, a
    factory, and dtype= and device= each given or left out (left out: their defaults)."""
    shape = draw(shapes(), label="shape")
    form = draw(st.sampled_from(sorted(SIZE_FORMS)), label="size_form")
    names = [n for n in FACTORIES if n not in SAMPLING or dtype.is_floating_point or dtype.is_complex]
    name = draw(st.sampled_from(names), label="factory")
    kwargs = {}
    if draw(st.booleans(), label="dtype_given"):
        kwargs["dtype"] = ITEM_DTYPE
    if draw(st.booleans(), label="device_given"):
        kwargs["device"] = ITEM_DEVICE
    if name in SAMPLING:
        kwargs["seed"] = draw(st.integers(0, 2**32 - 1), label="seed")
    return Sample((name, *SIZE_FORMS[form](shape)), kwargs)


FACTORY = Operation(
    "creation.factory_shapes_dtypes",
    dtypes="all",
    samples=factory_calls,
    call=lambda name, *size, **kw: FACTORIES[name](*size, **kw),
)


def size_of(sample: Sample) -> tuple:
    """The shape the sample's size arguments spell, read without torch: ints, or one sequence."""
    size = sample.args[1:]
    return tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else tuple(size)


@FACTORY.property
def test_factories_honour_shape_dtype_device(device, dtype, sample):
    name = sample.args[0]
    (_, *size), kw = sample.build(dtype=dtype, device=device)
    shape = size_of(sample)
    # what the factory made, before the comparison's reduction to shape and values
    raw = getattr(torch, name)(
        *size,
        **{k: v for k, v in kw.items() if k != "seed"},
        **({"generator": drawn_on(kw, kw["seed"])} if name in SAMPLING else {}),
    )
    expected_dtype = dtype if "dtype" in kw else torch.get_default_dtype()  # left out: the default dtype
    expected_device = torch.device(device).type if "device" in kw else "cpu"  # left out: the default device
    got = (tuple(raw.shape), raw.dtype, raw.device.type)
    assert got == (shape, expected_dtype, expected_device), f"{name}: {got}, not the requested shape, dtype and device"
    assert not raw.requires_grad, f"{name}: requires grad, where requires_grad defaults to False"
    given = {k: v for k, v in kw.items() if k != "seed"}
    if name in SAMPLING and raw.device.type != "meta":  # drawn from the given generator: the same seed draws the same numbers
        again = getattr(torch, name)(*size, **given, generator=drawn_on(kw, kw["seed"]))
        assert torch.equal(raw, again), f"{name}: a generator seeded alike drew other numbers"
        # "torch.rand_like(input) is equivalent to torch.rand(input.size(), dtype=input.dtype,
        # layout=input.layout, device=input.device)" (randn_like's docstring says the same of randn):
        # seeded alike, rand_like of the result's metadata draws the numbers rand drew
        like = seeded_like(getattr(torch, f"{name}_like"), raw, seed=kw["seed"])
        assert torch.equal(raw, like), f"{name}: not the numbers {name}_like, its documented equivalent, drew"
    if name == "empty":  # uninitialised, except where the docs fill uninitialised memory
        with uninitialised_memory_filled():
            assert_filled_as_uninitialised(torch.empty(*size, **given), name)
    if "device" in kw:  # device= names where the tensor lives: the meta device, on every machine, too
        on_meta = getattr(torch, name)(*size, **{**given, "device": "meta"})
        assert on_meta.device.type == "meta", f"{name}: device='meta' gave a tensor on {on_meta.device}"
    out = FACTORY(sample, dtype=dtype, device=device)
    if name == "zeros":
        assert bool((out == 0).all()), "zeros holds an element other than 0"
    if name == "ones":
        assert bool((out == 1).all()), "ones holds an element other than 1"


RAND = Operation(
    "creation.rand_half_open",
    dtypes="floating",
    samples=st.builds(
        lambda seed: Sample((4096,), {"dtype": ITEM_DTYPE, "device": ITEM_DEVICE, "seed": seed}), st.integers(0, 2**32 - 1)
    ),
    # each device draws its own numbers: two runs agree on which fell in [0, 1), not on the numbers
    call=lambda n, dtype, device, seed: in_unit_interval(
        torch.rand(n, dtype=dtype, device=device, generator=generator(device, seed))
    ),
)


@RAND.property
def test_rand_is_in_zero_one_half_open(device, dtype, sample):
    shape, inside = RAND(sample, dtype=dtype, device=device)
    assert shape.dtype == dtype and tuple(shape.shape) == (4096,), "rand did not make the requested shape and dtype"
    assert bool(inside.all()), f"rand left [0, 1) at {int((~inside).sum())} of 4096 elements"
    n, kw = sample.args[0], sample.kwargs
    (drawn, again) = (torch.rand(n, dtype=dtype, device=device, generator=generator(device, kw["seed"])) for _ in range(2))
    if torch.device(device).type != "meta":
        # a uniform distribution: 4096 draws are not all one number (a chance of 2**-(16 * 4095) at worst)
        assert drawn.unique().numel() > 1, "rand drew one number 4096 times"
        assert torch.equal(drawn, again), "rand: a generator seeded alike drew other numbers"
        # rand_like's docstring: "torch.rand_like(input) is equivalent to torch.rand(input.size(), ...)"
        like = seeded_like(torch.rand_like, drawn, seed=kw["seed"])
        assert torch.equal(drawn, like), "rand: not the numbers rand_like, its documented equivalent, drew"
    assert not drawn.requires_grad, "rand requires grad, where requires_grad defaults to False"
    on_meta = torch.rand(n, dtype=dtype, device="meta")  # device= names where the tensor lives, meta too
    assert on_meta.device.type == "meta", f"rand: device='meta' gave a tensor on {on_meta.device}"


LIKE = {
    # "*_like functions return a tensor of the source's shape"
    "zeros_like": lambda t, size, seed, **kw: torch.zeros_like(t, **kw),
    "ones_like": lambda t, size, seed, **kw: torch.ones_like(t, **kw),
    "empty_like": lambda t, size, seed, **kw: torch.empty_like(t, **kw),
    "rand_like": lambda t, size, seed, **kw: seeded_like(torch.rand_like, t, seed=seed, **kw),
    "randn_like": lambda t, size, seed, **kw: seeded_like(torch.randn_like, t, seed=seed, **kw),
    "full_like": lambda t, size, seed, **kw: torch.full_like(t, 2, **kw),
}
NEW = {
    # "new_* methods ... take a size"
    "new_zeros": lambda t, size, seed, **kw: t.new_zeros(size, **kw),
    "new_ones": lambda t, size, seed, **kw: t.new_ones(size, **kw),
    "new_empty": lambda t, size, seed, **kw: t.new_empty(size, **kw),
    "new_full": lambda t, size, seed, **kw: t.new_full(size, 3, **kw),
}
INHERITING = LIKE | NEW
FILLED = {"zeros_like": 0, "ones_like": 1, "full_like": 2, "new_zeros": 0, "new_ones": 1, "new_full": 3}
UNSPECIFIED = {"empty_like", "new_empty"}  # uninitialised
SAMPLED = {"rand_like": torch.rand, "randn_like": torch.randn}  # "is equivalent to torch.rand(input.size(), ...)"


def comparable(name: str, made: torch.Tensor) -> torch.Tensor:
    """What two runs agree on: the values where they are fixed; for uninitialised or random ones,
    shape, dtype and device only (shape_only)."""
    return shape_only(made) if name in UNSPECIFIED or name in SAMPLED else made


def meaningful(shape, strides) -> tuple:
    return tuple(None if 0 in shape or n <= 1 else st for n, st in zip(shape, strides))


def assert_preserved_format(made, x, dtype, device, name):
    """torch.preserve_format: "If input tensor is allocated in dense non-overlapping memory, the
    output tensor strides will be copied from the input." Only that half is asserted: for other
    sources the page says "output strides will follow torch.contiguous_format", where *_like keep
    the source's stride order instead (observed; see the catalogue entry)."""
    source = x.build(dtype=dtype, device=device)
    shape, strides = tuple(source.shape), source.stride()
    if dense_non_overlapping(shape, strides):
        assert meaningful(shape, made.stride()) == meaningful(shape, strides), (
            f"{name}: strides {made.stride()}, not the dense source's {strides} (preserve_format)"
        )


@st.composite
def like_calls(draw, dtype: torch.dtype) -> Sample:
    """Sample(x, name, size, seed[, dtype=other]): a source tensor, one *_like function or new_*
    method, a size for new_*, and dtype= given (another floating or complex dtype) or left out."""
    x = draw(specs(), label="x")
    name = draw(st.sampled_from(sorted(INHERITING)), label="call")
    size = draw(shapes(max_dims=2), label="size")
    kwargs = {}
    if draw(st.booleans(), label="dtype_given"):
        kwargs["dtype"] = draw(st.sampled_from(DTYPE_GROUPS["float_and_complex"]), label="other_dtype")
    return Sample((x, name, size, draw(st.integers(0, 2**32 - 1), label="seed")), kwargs)


LIKE_INHERITS = Operation(
    "creation.like_inherits",
    dtypes="float_and_complex",
    samples=like_calls,
    call=lambda t, name, size, seed, **kw: comparable(name, INHERITING[name](t, size, seed, **kw)),
)


@LIKE_INHERITS.property
def test_like_and_new_inherit_unless_given(device, dtype, sample):
    x, _, size, seed = sample.args
    (t, *_), kw = sample.build(dtype=dtype, device=device)
    for name in INHERITING:  # every function and method, with dtype= as drawn
        made = INHERITING[name](t, size, seed, **kw)
        want_dtype = sample.kwargs.get("dtype", dtype)  # given, or the source's
        want_shape = x.shape if name in LIKE else size
        got = (tuple(made.shape), made.dtype, made.device.type, made.layout)
        want = (want_shape, want_dtype, torch.device(device).type, torch.strided)
        assert got == want, f"{name}: {got}, not the source's (or the given) shape, dtype, device and layout {want}"
        assert not made.requires_grad, f"{name}: requires grad, where requires_grad defaults to False"
        if name in LIKE:  # memory_format=torch.preserve_format, the default
            assert_preserved_format(made, sample.args[0], dtype, device, name)
        if name in FILLED:  # zeros hold 0, ones 1, full the fill value
            assert bool((made.cpu() == FILLED[name]).all()), f"{name}: an element is not {FILLED[name]}"
        if name in SAMPLED and made.is_contiguous() and made.device.type != "meta":
            # "torch.rand_like(input) is equivalent to torch.rand(input.size(), dtype=input.dtype,
            # layout=input.layout, device=input.device)", and randn_like to randn: seeded alike, the
            # same numbers. Only where the result is contiguous: with a dense non-contiguous source,
            # preserve_format keeps its strides and torch draws in memory order (observed, not asserted)
            same_seed = generator(t.device, seed)
            drawn = SAMPLED[name](t.size(), dtype=want_dtype, layout=t.layout, device=t.device, generator=same_seed)
            assert torch.equal(made, drawn), f"{name}: not the numbers its documented equivalent drew"
        if name == "empty_like":  # uninitialised, except where the docs fill uninitialised memory
            with uninitialised_memory_filled():
                assert_filled_as_uninitialised(INHERITING[name](t, size, seed, **kw), name)
    for name, draw in (("rand_like", torch.rand_like), ("randn_like", torch.randn_like)):
        first, again = (seeded_like(draw, t, seed=seed) for _ in range(2))
        assert torch.equal(first, again), f"{name}: a generator seeded alike drew other numbers"


RANDN_LIKE_INTEGRAL = Operation(
    "creation.randn_like_integral_raises",
    dtypes="integral",
    # an empty tensor never reaches the sampling kernel; dtype= given (from a float source) or inherited
    samples=st.builds(lambda x, given: Sample((x, given)), specs(shapes=shapes(min_side=1)), st.booleans()),
    call=lambda t, given: torch.randn_like(t.float(), dtype=t.dtype) if given else torch.randn_like(t),
)


@RANDN_LIKE_INTEGRAL.property
def test_randn_like_refuses_integral_dtypes(device, dtype, sample):
    x, _ = sample.args
    for dtype_given in (False, True):
        with pytest.raises(RuntimeError, match="not implemented for"):  # (observed message)
            RANDN_LIKE_INTEGRAL(Sample((x, dtype_given)), dtype=dtype, device=device)


def integer_range(dtype: torch.dtype) -> tuple[int, int]:
    """The integers `dtype` holds: all of an integral dtype's, and for a floating one those it
    holds exactly, -2**(p+1) to 2**(p+1) for p mantissa bits."""
    if dtype.is_floating_point:
        exact = 2 ** (round(-math.log2(torch.finfo(dtype).eps)) + 1)
        return -exact, exact
    info = torch.iinfo(dtype)
    return info.min, info.max


@st.composite
def randint_like_calls(draw, dtype: torch.dtype) -> Sample:
    """Sample(x, low, high, seed): low and high anywhere in the dtype's range; for floating dtypes,
    among the integers the dtype holds exactly (beyond them an integer draw rounds, onto high itself)."""
    bottom, top = integer_range(dtype)
    low = draw(st.integers(bottom, top - 1), label="low")
    span = draw(st.integers(1, top - low), label="span")
    return Sample((draw(specs(), label="x"), low, low + span, draw(st.integers(0, 2**32 - 1), label="seed")))


def randint_like_within(t, low, high, seed):
    out = seeded_like(torch.randint_like, t, low, high, seed=seed)
    return shape_only(out), (out >= low) & (out < high)  # each device draws its own numbers


RANDINT_LIKE = Operation(
    "creation.randint_like_range",
    dtypes="real",
    samples=randint_like_calls,
    call=lambda t, low, high, seed: randint_like_within(t, low, high, seed),
)


@RANDINT_LIKE.property
def test_randint_like_is_in_low_high(device, dtype, sample):
    x = sample.args[0]
    shape, within = RANDINT_LIKE(sample, dtype=dtype, device=device)
    assert (tuple(shape.shape), shape.dtype) == (x.shape, dtype), "randint_like did not keep x's shape and dtype"
    assert bool(within.all()), "randint_like left [low, high)"
    (t, low, high, seed), _ = sample.build(dtype=dtype, device=device)
    if t.device.type == "meta":
        return
    drawn, again = (seeded_like(torch.randint_like, t, low, high, seed=seed) for _ in range(2))
    assert torch.equal(drawn, again), "randint_like: a generator seeded alike drew other numbers"
    assert_preserved_format(drawn, x, dtype, device, "randint_like")  # memory_format=torch.preserve_format, the default
    # high = low + 1: low (inclusive) is the only integer below high (exclusive)
    only = seeded_like(torch.randint_like, t, low, low + 1, seed=seed)
    assert bool((only == low).all()), "randint_like(x, low, low + 1) drew other than low"


SIZE = Operation(
    "creation.size_is_tuple",
    dtypes="float32",
    samples=specs().map(lambda x: Sample((x,))),
    call=lambda t: (t.size(), t.numel()),
    not_compiled="size() and numel() read the tensor's metadata: Dynamo answers them as constants and compiles no graph",
)


@SIZE.property
def test_size_is_a_tuple_and_numel_its_product(device, dtype, sample):
    (x,) = sample.args
    size, numel = SIZE(sample, dtype=dtype, device=device)
    # torch.Size built from a list of sizes; its numel(): "x.numel() == x.size().numel() == s.numel()"
    made = torch.Size(list(x.shape))
    assert made == tuple(x.shape) and isinstance(made, tuple), "torch.Size(list of sizes) is not the tuple of those sizes"
    assert made.numel() == size.numel() == numel == math.prod(x.shape), (
        f"torch.Size({list(x.shape)}).numel() {made.numel()}, size().numel() {size.numel()}, numel() {numel}: "
        "not the number of elements"
    )
    assert isinstance(size, torch.Size) and isinstance(size, tuple), "size() is not a torch.Size, a tuple"
    assert size == x.shape, "size() is not the shape"
    assert numel == math.prod(x.shape), "numel() is not the product of the sizes"
    t = x.build(dtype=dtype, device=device)
    assert t.shape == size and torch.numel(t) == numel, "shape or torch.numel disagrees with size() and numel()"


# what torch.is_tensor is asked about: the tensor, a Parameter made of it (a Tensor subclass), a
# view of it, and objects that are no tensor though they hold it, its memory or its size
IS_TENSOR_OBJECTS = {
    "tensor": lambda t: t,
    "Parameter": lambda t: torch.nn.Parameter(t, requires_grad=False),
    "view": lambda t: t[...],
    "list": lambda t: [t],
    "torch.Size": lambda t: t.shape,
    "storage": lambda t: t.untyped_storage(),
    "numpy array": lambda t: numpy.zeros(tuple(t.shape)),
    "Python number": lambda t: 0,
    "None": lambda t: None,
}
IS_A_TENSOR = {"tensor", "Parameter", "view"}

IS_TENSOR = Operation(
    "creation.is_tensor",
    dtypes="representative",
    samples=st.builds(lambda x, kind: Sample((x, kind)), specs(), call_forms(IS_TENSOR_OBJECTS)),
    call=lambda t, kind: torch.is_tensor(IS_TENSOR_OBJECTS[kind](t)),
    not_compiled="is_tensor reads the Python type of its argument: Dynamo answers it as a constant and compiles no graph",
)


@IS_TENSOR.property
def test_is_tensor_is_true_exactly_for_tensors(device, dtype, sample):
    _, kind = sample.args
    answer = IS_TENSOR(sample, dtype=dtype, device=device)
    assert answer is (kind in IS_A_TENSOR), f"torch.is_tensor of a {kind}: {answer!r}"


TWO_INTS = Operation(
    "creation.tensor_two_ints_raises",
    dtypes="float32",
    samples=st.builds(lambda a, b: Sample((a, b), {"device": ITEM_DEVICE}), st.integers(0, 6), st.integers(0, 6)),
    call=lambda a, b, device: torch.tensor(a, b, device=device),
)


@TWO_INTS.property
def test_tensor_of_two_ints_raises(device, dtype, sample):
    a, b = sample.args
    with pytest.raises(TypeError):  # "data (array_like)": a second int is no data
        TWO_INTS(sample, dtype=dtype, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        made = torch.empty(a, b, device=device)
        assert made.shape == (a, b), "torch.empty(a, b) is not a x b"
        assert made.dtype == torch.get_default_dtype(), "torch.empty(a, b) is not of the default dtype"
        assert not made.requires_grad, "torch.empty requires grad, where requires_grad defaults to False"
        # "device: the desired device of returned tensor", the device under test and meta, on every machine
        for where in (device, "meta"):
            placed = torch.empty(a, b, device=where)
            assert placed.device.type == torch.device(where).type, f"torch.empty(a, b, device={where!r}) is on {placed.device}"


@pytest.mark.behaviour("creation.no_double64")
@pytest.mark.behaviour("creation.no_double64")
@pytest.mark.dtypes("floating")
@given(x=specs())
def test_there_is_no_double64_only_float64(device, dtype, x):
    assert not hasattr(torch, "double64"), "torch.double64 exists"
    assert torch.double is torch.float64, "torch.double is not torch.float64"
    t = x.build(dtype=dtype, device=device)
    with private_rng(0, device):
        like = torch.randn_like(t, dtype=torch.float64)
    assert like.dtype == torch.float64 and like.shape == t.shape and like.device == t.device, "randn_like(dtype=float64)"
    assert not like.requires_grad, "randn_like requires grad, where requires_grad defaults to False"
    assert_preserved_format(like, x, dtype, device, "randn_like")  # memory_format=torch.preserve_format, the default
    if like.is_contiguous() and like.device.type != "meta":
        # "torch.randn_like(input) is equivalent to torch.randn(input.size(), dtype=input.dtype, ...)",
        # with dtype=torch.float64 given: drawn from a generator seeded alike, the same numbers (where
        # the result is contiguous: a dense non-contiguous source's strides are kept, see like_inherits)
        with private_rng(0, device):
            drawn = torch.randn(t.size(), dtype=torch.float64, layout=t.layout, device=t.device)
        assert torch.equal(like, drawn), "randn_like(dtype=float64): not the numbers randn, its documented equivalent, drew"


SCALARS = {
    "bool": st.booleans(),
    "int": st.integers(-(2**40), 2**40),
    "float": st.floats(-1e6, 1e6, allow_nan=False),
    "complex": st.complex_numbers(max_magnitude=1e6, allow_nan=False, allow_infinity=False),
}


@st.composite
def python_data(draw) -> Sample:
    """Sample(data, device=): a flat or nested list of Python bools, ints, floats and complex numbers."""
    kinds = draw(st.lists(st.sampled_from(sorted(SCALARS)), min_size=1, max_size=6), label="kinds")
    values = [draw(SCALARS[kind], label=kind) for kind in kinds]
    nested = draw(st.booleans(), label="nested")
    return Sample(([[v] for v in values] if nested else values,), {"device": ITEM_DEVICE})


TENSOR_INFERS = Operation(
    "creation.tensor_infers_dtype",
    dtypes="float32",
    samples=python_data(),
    call=lambda data, device: torch.tensor(data, device=device),
)


def flat(data: list) -> list:
    return [v for item in data for v in (item if isinstance(item, list) else [item])]


@TENSOR_INFERS.property
def test_tensor_infers_its_dtype_from_python_data(device, dtype, sample):
    values = flat(sample.args[0])
    out = TENSOR_INFERS(sample, dtype=dtype, device=device)
    present = {type(v) for v in values}
    default_complex = {torch.float32: torch.complex64, torch.float64: torch.complex128}[torch.get_default_dtype()]
    if complex in present:
        expected = default_complex
    elif float in present:
        expected = torch.get_default_dtype()
    elif int in present:
        expected = torch.int64
    else:
        expected = torch.bool
    assert out.dtype == expected, f"{sorted(t.__name__ for t in present)}: got {out.dtype}, not the inferred {expected}"
    held = numpy.asarray(sample.args[0], dtype=numpy_dtype(expected))  # the data, as NumPy converts it
    numpy.testing.assert_array_equal(independent_array(out.cpu()), held, err_msg="torch.tensor does not hold the data")


@st.composite
def legacy_calls(draw) -> Sample:
    kinds = draw(st.lists(st.sampled_from(["bool", "int", "float"]), min_size=1, max_size=6), label="kinds")
    values = [draw(SCALARS[kind], label=kind) for kind in kinds]
    size = draw(shapes(min_dims=1, max_dims=3), label="size")  # torch.Tensor() without sizes is empty 1-d, not 0-d
    return Sample((values, size))


LEGACY = Operation(
    "creation.tensor_class_vs_function",
    dtypes="float32",
    samples=legacy_calls(),
    # torch.Tensor(*size) is uninitialised: its shape and dtype are what two runs agree on
    call=lambda values, size: (torch.Tensor(values), torch.tensor(values), shape_only(torch.Tensor(*size))),
)


@LEGACY.property
@pytest.mark.device_types("cpu")  # torch.Tensor(...) is the legacy constructor of CPU tensors
def test_torch_Tensor_makes_default_dtype_tensors_and_reads_ints_as_sizes(device, dtype, sample):
    values, size = sample.args
    legacy, inferred_tensor, sized = LEGACY(sample, dtype=dtype, device=device)
    assert legacy.dtype == torch.get_default_dtype(), f"torch.Tensor(data) gave {legacy.dtype}, not the default dtype"
    held = [float(v) for v in numpy.asarray(values, dtype=numpy.float32)]
    assert legacy.tolist() == held, "torch.Tensor(data) holds other values"
    inferred = {bool: torch.bool, int: torch.int64, float: torch.get_default_dtype()}
    expected = max((inferred[type(v)] for v in values), key=[torch.bool, torch.int64, torch.get_default_dtype()].index)
    assert inferred_tensor.dtype == expected, f"torch.tensor(data) gave {inferred_tensor.dtype}, not the inferred {expected}"
    numpy.testing.assert_array_equal(
        independent_array(inferred_tensor),
        numpy.asarray(values, dtype=numpy_dtype(expected)),
        err_msg="torch.tensor(data): other values",
    )
    assert sized.shape == size and sized.dtype == torch.get_default_dtype(), "torch.Tensor(n, m, ...) did not read ints as sizes"


@st.composite
def long_tensor_calls(draw) -> Sample:
    """Sample(values, size): Python ints over int64's whole range (none too), and sizes as ints."""
    values = draw(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=6), label="values")
    size = draw(shapes(min_dims=1, max_dims=3), label="size")  # LongTensor() without sizes is empty 1-d, not 0-d
    return Sample((values, size))


LONG_TENSOR = Operation(
    "creation.long_tensor_legacy",
    dtypes="int64",
    samples=long_tensor_calls(),
    # torch.LongTensor(*size) is uninitialised: its shape and dtype are what two runs agree on
    call=lambda values, size: (torch.LongTensor(values), shape_only(torch.LongTensor(*size))),
)


@LONG_TENSOR.property
@pytest.mark.device_types("cpu")  # torch.LongTensor is the legacy constructor of CPU int64 tensors
def test_LongTensor_makes_int64_cpu_tensors_of_ints_or_sizes(device, dtype, sample):
    values, size = sample.args
    held, sized = LONG_TENSOR(sample, dtype=dtype, device=device)
    assert (held.dtype, held.device.type) == (torch.int64, "cpu"), f"torch.LongTensor(ints) gave {held.dtype} on {held.device}"
    assert held.tolist() == values, "torch.LongTensor(ints) holds other values"
    assert (sized.shape, sized.dtype) == (size, torch.int64), "torch.LongTensor(n, m, ...) did not read ints as sizes"


@pytest.mark.behaviour("creation.tensor_class_shares_float32_ndarray")
@pytest.mark.behaviour("creation.tensor_class_shares_float32_ndarray")
@pytest.mark.device_types("cpu")
# non-empty: an empty array holds no memory to share (its tensor's data_ptr is 0)
@given(a=arrays(numpy.float32, shapes(min_side=1), elements=st.floats(width=32, allow_nan=True)))
def test_torch_Tensor_of_a_float32_ndarray_shares_it(device, a):
    t = torch.Tensor(a)
    assert t.data_ptr() == a.__array_interface__["data"][0], "torch.Tensor(float32 ndarray) copied"
    copied = torch.tensor(a)
    assert not numpy.shares_memory(copied.numpy(), a), "torch.tensor(ndarray) shares"
    assert copied.dtype == torch.float32, "torch.tensor(float32 ndarray) is not float32"
    numpy.testing.assert_array_equal(independent_array(copied), a, err_msg="torch.tensor(ndarray) holds other values")


def bytes_per_element(dtype: torch.dtype) -> int:
    """From the dtype's name, as the dtype table lists it: float32 is 32 bits, complex64 64, bool one byte."""
    name = str(dtype).removeprefix("torch.")
    return 1 if name == "bool" else int(re.search(r"\d+", name).group()) // 8


NBYTES = Operation(
    "creation.nbytes_is_numel_times_element_size",
    dtypes="all",
    samples=specs().map(lambda x: Sample((x,))),
    call=lambda t: (t.nbytes, t.numel(), t.element_size()),
)


@NBYTES.property
def test_nbytes_is_numel_times_element_size(device, dtype, sample):
    nbytes, numel, element_size = NBYTES(sample, dtype=dtype, device=device)
    assert element_size == bytes_per_element(dtype), f"element_size() {element_size} is not the dtype's width"
    assert nbytes == numel * element_size, "nbytes is not numel() * element_size()"
    assert numel == math.prod(sample.args[0].shape), "numel() is not the product of the shape"


def storage_sizes(t: torch.Tensor):
    """sys.getsizeof of t's storage and of an empty one's (the wrapper), and the storage's nbytes()."""
    wrapper = sys.getsizeof(torch.empty(0, dtype=t.dtype, device=t.device).untyped_storage())
    storage = t.untyped_storage()
    return sys.getsizeof(storage), wrapper, storage.nbytes()


GETSIZEOF = Operation(
    "creation.getsizeof_counts_the_whole_storage",
    dtypes="representative",
    samples=specs().map(lambda x: Sample((x,))),
    call=lambda t: storage_sizes(t),
    not_compiled="sys.getsizeof of a storage object is Python-level bookkeeping, no tensor operation a graph could hold",
)


@GETSIZEOF.property
def test_getsizeof_of_a_storage_is_its_bytes_plus_the_wrapper(device, dtype, sample):
    size, wrapper, nbytes = GETSIZEOF(sample, dtype=dtype, device=device)
    assert size == wrapper + nbytes, "getsizeof of a storage is not its nbytes() plus the wrapper's size"
    # a view's storage is its base's: at least as large as what the view can reach, usually larger
    t = sample.args[0].build(dtype=dtype, device=device)
    reach = t.storage_offset() + sum((n - 1) * s for n, s in zip(t.shape, t.stride())) + 1 if t.numel() else 0
    assert nbytes >= reach * t.element_size(), "a view's storage is smaller than what the view reaches"


@pytest.mark.behaviour("creation.like_on_another_device")
@pytest.mark.behaviour("creation.like_on_another_device")
@pytest.mark.meta_too
@pytest.mark.dtypes("float_and_complex")
@given(x=specs())
def test_like_with_device_creates_there(device, dtype, x):
    source = x.build(dtype=dtype, device="cpu")
    made = {
        "zeros_like": torch.zeros_like(source, device=device),
        "ones_like": torch.ones_like(source, device=device),
        "full_like": torch.full_like(source, 2, device=device),
        "empty_like": torch.empty_like(source, device=device),
    }
    for name, t in made.items():
        got = (t.shape, t.dtype, t.device.type)
        assert got == (source.shape, dtype, torch.device(device).type), (
            f"{name}: not on the given device, source's shape and dtype"
        )
        assert not t.requires_grad, f"{name}: requires grad, where requires_grad defaults to False"
        assert_preserved_format(t, x, dtype, "cpu", name)  # memory_format=torch.preserve_format, the default
    if torch.device(device).type != "meta":
        for name, value in (("zeros_like", 0), ("ones_like", 1), ("full_like", 2)):
            assert bool((made[name] == value).all()), f"{name}: not filled with its value"
        with uninitialised_memory_filled():  # empty_like is uninitialised, except where the docs fill it
            assert_filled_as_uninitialised(torch.empty_like(source, device=device), "empty_like")
    if torch.device(device).type == "cpu":  # the source's own device: the meta device is the other one here
        for name, t in {
            "zeros_like": torch.zeros_like(source, device="meta"),
            "ones_like": torch.ones_like(source, device="meta"),
            "full_like": torch.full_like(source, 2, device="meta"),
            "empty_like": torch.empty_like(source, device="meta"),
        }.items():
            assert t.device.type == "meta", f"{name}: not on the given device, meta"


@st.composite
def arange_calls(draw) -> Sample:
    """Sample(start, end, step, dtype=, device=): integer arguments (the docstring warns that
    non-integer steps meet rounding against end, so a float-step length is no promise), dtype=
    given or left out (integer arguments: int64)."""
    start, span = draw(st.integers(-20, 20), label="start"), draw(st.integers(-20, 20), label="span")
    step = draw(st.integers(-5, 5).filter(bool), label="step")
    kwargs = {"device": ITEM_DEVICE}
    if draw(st.booleans(), label="dtype_given"):
        kwargs["dtype"] = ITEM_DTYPE
    return Sample((start, start + span, step), kwargs)


ARANGE = Operation(
    "creation.arange_length_and_values",
    dtypes="real",
    samples=arange_calls(),
    call=lambda start, end, step, **kw: torch.arange(start, end, step, **kw),
)


@ARANGE.property
def test_arange_has_ceil_length_and_steps_from_start(device, dtype, sample):
    start, end, step = sample.args
    kind = dtype if "dtype" in sample.kwargs else torch.int64  # left out: inferred from the integer arguments
    length = max(0, math.ceil((end - start) / step))
    values = [start + i * step for i in range(length)]
    info = torch.iinfo(kind) if not kind.is_floating_point else torch.finfo(kind)
    if not all(info.min <= v <= info.max for v in (start, end, *values)):
        return  # the dtype cannot hold the range (uint8 and negatives): no documented result
    if (end - start) * step < 0:
        with pytest.raises(RuntimeError):  # the sign of step must lead from start towards end
            ARANGE(sample, dtype=dtype, device=device)
        return
    t = ARANGE(sample, dtype=dtype, device=device)
    assert t.shape == (length,) and t.dtype == kind, f"{tuple(t.shape)} {t.dtype}: not ceil((end - start) / step) of {kind}"
    assert t.tolist() == values, "not start + i * step"


@st.composite
def full_calls(draw) -> Sample:
    shape = draw(shapes(), label="shape")
    value = draw(st.one_of(st.booleans(), st.integers(-(2**40), 2**40), st.floats(-1e6, 1e6)), label="fill_value")
    return Sample((shape, value), {"device": ITEM_DEVICE})


FULL = Operation(
    "creation.full_infers_dtype",
    dtypes="float32",
    samples=full_calls(),
    call=lambda size, value, device: torch.full(size, value, device=device),
)


@FULL.property
def test_full_fills_and_infers_its_dtype_from_the_value(device, dtype, sample):
    shape, value = sample.args
    t = FULL(sample, dtype=dtype, device=device)
    expected = {bool: torch.bool, int: torch.int64, float: torch.get_default_dtype()}[type(value)]
    assert t.dtype == expected and tuple(t.shape) == shape, f"{t.dtype}: not the dtype inferred from {type(value).__name__}"
    filled = numpy.full(shape, value, dtype={bool: numpy.bool_, int: numpy.int64, float: numpy.float32}[type(value)])
    numpy.testing.assert_array_equal(independent_array(t.cpu()), filled, err_msg="an element is not fill_value")


CONVERSIONS = {"float": torch.float32, "double": torch.float64, "half": torch.float16, "long": torch.int64, "int": torch.int32}


def convert(t, method, other):
    """The conversion method `method` (a dtype method, type_as, or type(dtype))."""
    if method == "type_as":
        return t.type_as(torch.empty(0, dtype=other, device=t.device))
    if method == "type":
        return t.type(other)
    return getattr(t, method)()


CONVERT = Operation(
    "creation.conversion_methods",
    dtypes="all",
    samples=st.builds(
        lambda x, method, other: Sample((x, method, other)),
        specs(),
        st.sampled_from([*sorted(CONVERSIONS), "type_as", "type"]),
        st.sampled_from(DTYPE_GROUPS["all"]),
    ),
    call=lambda t, method, other: convert(t, method, other),
)


@CONVERT.property
# complex to real keeps the real part and says so: a documented warning, not a failure
@pytest.mark.filterwarnings("ignore:Casting complex values to real discards the imaginary part:UserWarning")
def test_conversion_methods_equal_to_with_their_dtype(device, dtype, sample):
    x, _, other = sample.args
    t = x.build(dtype=dtype, device=device)
    for method, target in [*CONVERSIONS.items(), ("type_as", other), ("type", other)]:
        # ``self.float()`` is equivalent to ``self.to(torch.float32)``, and so on for each method
        converted = CONVERT.call(t, method, other)
        assert converted.dtype == target and converted.shape == t.shape, (
            f"{method}: {converted.dtype}, not the method's dtype {target}"
        )
        assert (converted is t) == (dtype == target), f"{method}: self returned exactly when the dtype already matches"
        torch.testing.assert_close(converted, t.to(target), rtol=0, atol=0, equal_nan=True)
        shape, strides = tuple(t.shape), t.stride()
        # the dtype methods take memory_format=torch.preserve_format by default: "If input tensor is
        # allocated in dense non-overlapping memory, the output tensor strides will be copied from the
        # input" (tensor_attributes.html#torch-memory-format). type and type_as document no strides; the
        # non-dense half is clone's known deviation (creation.clone_non_dense_contiguous)
        if method in CONVERSIONS and dense_non_overlapping(shape, strides):
            assert meaningful(shape, converted.stride()) == meaningful(shape, strides), (
                f"{method}: strides {converted.stride()}, not the dense input's {strides}"
            )
    # and where the draw is dense and contiguous, its transpose: dense, non-overlapping and not
    # contiguous, so "copied from the input" differs from a contiguous result in every dtype drawn
    flipped = t.transpose(0, -1) if t.ndim >= 2 else t
    if dense_non_overlapping(tuple(flipped.shape), flipped.stride()):
        for method in CONVERSIONS:
            converted = CONVERT.call(flipped, method, other)
            assert meaningful(flipped.shape, converted.stride()) == meaningful(flipped.shape, flipped.stride()), (
                f"{method}: strides {converted.stride()}, not the dense input's {flipped.stride()}"
            )
    assert t.type(dtype) is t and isinstance(t.type(), str), "type() with no dtype names the type"


FILL = Operation(
    "creation.fill_and_init_fill",
    dtypes="floating",
    # float16's finite range holds every value
    samples=st.builds(
        lambda x, value, init: Sample((x, value, init)), specs(layouts=WRITABLE_LAYOUTS), st.floats(-6e4, 6e4), st.booleans()
    ),
    call=lambda t, value, init: torch.nn.init.zeros_(t) if init else t.fill_(value),
)


@FILL.property
def test_fill_and_zeros_init_write_every_element_in_place(device, dtype, sample):
    x, value, _ = sample.args
    held = torch.tensor(value, dtype=dtype).item()  # the value as the dtype holds it (a conversion, not fill_)
    for init, expected in ((False, held), (True, 0.0)):
        (t, _, _), _ = Sample((x, value, init)).build(dtype=dtype, device=device)
        assert FILL.call(t, value, init) is t, "fill_ / zeros_ did not return self"
        numpy.testing.assert_array_equal(
            independent_array(t.cpu()).astype(numpy.float64),
            numpy.full(x.shape, expected, dtype=numpy.float64),
            err_msg="an element was not written",
        )


@pytest.mark.behaviour("creation.manual_seed_replays_randint")
@pytest.mark.behaviour("creation.manual_seed_replays_randint")
@pytest.mark.device_types("cpu", "cuda")  # the devices manual_seed documents ("on all devices")
# high = low + span stays an int64 (at most 2**63 - 1): 2**63 is no int64, refused on every release
# Small spans half the time: only there does a draw meet the excluded bound, high, often enough to see it
@given(
    seed=st.integers(0, 2**63 - 1),
    low=st.integers(-(2**62), 2**62 - 1),
    span=st.one_of(st.integers(1, 4), st.integers(1, 2**62)),
    size=shapes(max_dims=2),
)
def test_manual_seed_replays_randint_within_low_and_high(device, seed, low, span, size):
    index = torch.device(device).index or 0
    with torch.random.fork_rng(devices=[index] if torch.device(device).type == "cuda" else []):
        torch.manual_seed(seed)
        first = torch.randint(low, low + span, size, device=device)
        torch.manual_seed(seed)
        again = torch.randint(low, low + span, size, device=device)
        on_meta = torch.randint(low, low + span, size, device="meta")  # draws nothing: meta holds no values
    assert torch.equal(first, again), "the same seed gave other numbers"
    assert first.dtype == torch.int64 and tuple(first.shape) == size, "randint is not int64 of the given size"
    # "device: the desired device of returned tensor", the device under test and meta, on every machine
    for where, made in ((device, first), ("meta", on_meta)):
        assert made.device.type == torch.device(where).type, f"randint: device={where!r} gave a tensor on {made.device}"
    assert bool((first >= low).all()) and bool((first < low + span).all()), "randint left [low, high)"


@pytest.mark.behaviour("creation.finfo_limits")
@pytest.mark.dtypes("floating")
@given(data=st.data())
def test_finfo_eps_max_and_tiny_are_the_dtype_s_limits(device, dtype, data):
    info = torch.finfo(dtype)
    one = torch.tensor(1.0, dtype=dtype, device=device)
    assert bool(one + info.eps != one) and bool(one + info.eps / 4 == one), "eps is not the gap after 1.0"
    top = torch.tensor(info.max, dtype=dtype, device=device)
    assert bool(top.isfinite()) and bool((top * 2).isinf()), "max is not the largest finite number"
    assert info.min == -info.max, "min is not -max"
    tiny = torch.tensor(info.tiny, dtype=dtype, device=device)
    assert bool(tiny > 0) and info.tiny == info.smallest_normal, "tiny is not the smallest normal number"
    assert info.bits == torch.empty((), dtype=dtype).element_size() * 8, "bits is not the width"


COMPLEX_OF = {torch.float16: torch.complex32, torch.float32: torch.complex64, torch.float64: torch.complex128}


@pytest.mark.behaviour("creation.default_dtype_governs_inference")
# complex32, the complex counterpart of float16, is experimental and torch says so
@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental:UserWarning")
@given(default=st.sampled_from([torch.float16, torch.float32, torch.float64]), value=st.floats(-100, 100), n=st.integers(-5, 5))
def test_set_default_dtype_decides_float_and_complex_inference(device, default, value, n):
    before = torch.get_default_dtype()
    try:
        torch.set_default_dtype(default)
        assert torch.get_default_dtype() == default, "get_default_dtype() is not the dtype set"
        assert torch.tensor(value, device=device).dtype == default, "a Python float is not the default dtype"
        assert torch.zeros(2, device=device).dtype == default, "a factory without dtype= is not the default dtype"
        assert torch.tensor(complex(value, 1), device=device).dtype == COMPLEX_OF[default], "not the complex counterpart"
        assert (torch.tensor([n], device=device) * 1.5).dtype == default, "int tensor times a float is not the default"
        assert torch.tensor([n], device=device).dtype == torch.int64, "ints are not int64"
    finally:
        torch.set_default_dtype(before)
    with pytest.raises(TypeError):  # only floating point dtypes may be the default
        torch.set_default_dtype(torch.int64)


@pytest.mark.behaviour("creation.generators_and_fork_rng")
@given(seed=st.integers(0, 2**63 - 1), other=st.integers(0, 2**63 - 1), n=st.integers(1, 16))
def test_generators_replay_independently_and_fork_rng_restores_the_global_state(device, seed, other, n):
    a = torch.Generator(device=device).manual_seed(seed)
    b = torch.Generator(device=device).manual_seed(seed)
    first = torch.rand(n, generator=a, device=device)
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(other)  # the global CPU generator, forked: restored on leaving
        torch.rand(n)
    assert torch.equal(torch.rand(n, generator=b, device=device), first), "generators with one seed diverged"
    state = torch.random.get_rng_state()
    with torch.random.fork_rng(devices=[]):
        torch.rand(n)
    assert torch.equal(torch.random.get_rng_state(), state), "fork_rng did not restore the CPU generator"


@st.composite
def linspace_calls(draw) -> Sample:
    """Sample(start, end, steps, [dtype=], device=): real endpoints in either order, steps from 0,
    dtype= given or left out (the default dtype)."""
    start, end = (draw(st.floats(-1e3, 1e3), label=name) for name in ("start", "end"))
    kwargs = {"device": ITEM_DEVICE}
    if draw(st.booleans(), label="dtype_given"):
        kwargs["dtype"] = ITEM_DTYPE
    steps = draw(st.integers(0, 20), label="steps")
    label(f"steps={steps}" if steps < 2 else "steps>1")
    return Sample((start, end, steps), kwargs)


LINSPACE = Operation(
    "creation.linspace_evenly_spaced",
    dtypes="float32_64",
    samples=linspace_calls(),
    call=lambda start, end, steps, **kw: torch.linspace(start, end, steps, **kw),
)


@LINSPACE.property
def test_linspace_spaces_steps_values_evenly_from_start_to_end(device, dtype, sample):
    start, end, steps = sample.args
    kind = dtype if "dtype" in sample.kwargs else torch.get_default_dtype()  # left out: the default dtype
    t = LINSPACE(sample, dtype=dtype, device=device)
    assert tuple(t.shape) == (steps,) and t.dtype == kind, f"linspace: {tuple(t.shape)} {t.dtype}, not ({steps},) {kind}"
    assert not t.requires_grad, "linspace requires grad, where requires_grad (left out) defaults to False"
    # start + i * (end - start) / (steps - 1), in float64
    expected = [start + i * (end - start) / (steps - 1) for i in range(steps - 1)] + [end] if steps > 1 else [start][:steps]
    got = independent_array(t.cpu()).astype(numpy.float64)
    eps = torch.finfo(kind).eps
    numpy.testing.assert_allclose(got, expected, rtol=0, atol=4 * eps * max(abs(start), abs(end), 1), err_msg="not evenly spaced")
    if steps:  # "from start to end, inclusive": the endpoints as the dtype holds them
        held = [torch.tensor(v, dtype=kind).item() for v in (start, end)]
        assert got[0] == held[0] and (steps == 1 or got[-1] == held[1]), "linspace: the first is not start or the last not end"


@st.composite
def randperm_calls(draw) -> Sample:
    """Sample(n, seed, [dtype=], device=): n from 0 (an empty permutation), dtype= given or left
    out (int64)."""
    kwargs = {"device": ITEM_DEVICE}
    if draw(st.booleans(), label="dtype_given"):
        kwargs["dtype"] = ITEM_DTYPE
    return Sample((draw(st.integers(0, 30), label="n"), draw(st.integers(0, 2**32 - 1), label="seed")), kwargs)


def permutation_of(n, seed, **kw):
    """torch.randperm(n) drawn from a generator seeded with `seed`, and its sorted values: each
    device draws its own order, so two runs agree on the sorted values only."""
    drawn = torch.randperm(n, generator=generator(kw.get("device", "cpu"), seed), **kw)
    return drawn, drawn.sort().values


RANDPERM = Operation(
    "creation.randperm_is_a_permutation",
    # the group's dtypes hold 0 to 29 exactly
    dtypes="real",
    samples=randperm_calls(),
    call=lambda n, seed, **kw: permutation_of(n, seed, **kw)[1],
)


@RANDPERM.property
def test_randperm_permutes_zero_to_n_minus_one(device, dtype, sample):
    (n, seed), kw = sample.build(dtype=dtype, device=device)
    kind = dtype if "dtype" in sample.kwargs else torch.int64  # left out: int64
    drawn, _ = permutation_of(n, seed, **kw)
    assert tuple(drawn.shape) == (n,) and drawn.dtype == kind, f"randperm: {tuple(drawn.shape)} {drawn.dtype}, not ({n},) {kind}"
    # "device: the desired device of returned tensor", the device under test and meta, on every machine
    for where, made in ((device, drawn), ("meta", torch.randperm(n, **{**kw, "device": "meta"}))):
        assert made.device.type == torch.device(where).type, f"randperm: device={where!r} gave a tensor on {made.device}"
    if torch.device(device).type != "meta":
        assert sorted(drawn.cpu().tolist()) == list(range(n)), "randperm: not a permutation of 0 to n - 1"
        again, _ = permutation_of(n, seed, **kw)
        assert torch.equal(drawn, again), "randperm: a generator seeded alike drew another permutation"


@st.composite
def eye_calls(draw) -> Sample:
    """Sample(n[, m], [dtype=], device=): m given or left out (n), dtype= given or left out."""
    n = draw(st.integers(0, 6), label="n")
    m = (draw(st.integers(0, 6), label="m"),) if draw(st.booleans(), label="m_given") else ()
    kwargs = {"device": ITEM_DEVICE}
    if draw(st.booleans(), label="dtype_given"):
        kwargs["dtype"] = ITEM_DTYPE
    return Sample((n, *m), kwargs)


EYE = Operation("creation.eye_ones_on_diagonal", dtypes="all", samples=eye_calls(), call=lambda *nm, **kw: torch.eye(*nm, **kw))


@EYE.property
def test_eye_has_ones_on_the_diagonal_and_zeros_elsewhere(device, dtype, sample):
    n, m = sample.args[0], sample.args[-1]  # m left out: n
    kind = dtype if "dtype" in sample.kwargs else torch.get_default_dtype()  # left out: the default dtype
    t = EYE(sample, dtype=dtype, device=device)
    assert tuple(t.shape) == (n, m) and t.dtype == kind, f"eye: {tuple(t.shape)} {t.dtype}, not ({n}, {m}) {kind}"
    if torch.device(device).type != "meta":
        got = independent_array(t.cpu())
        expected = numpy.eye(n, m, dtype=got.dtype)
        numpy.testing.assert_array_equal(got, expected, err_msg="eye: not ones on the diagonal, zeros elsewhere")


MESHGRID_FORMS = {
    "ij": lambda *ts: torch.meshgrid(*ts, indexing="ij"),
    "xy": lambda *ts: torch.meshgrid(*ts, indexing="xy"),
    "default": lambda *ts: torch.meshgrid(*ts),
    "list_ij": lambda *ts: torch.meshgrid(list(ts), indexing="ij"),
}


@st.composite
def meshgrid_calls(draw) -> Sample:
    """Sample(form, *tensors): one to three 0-d or 1-D tensors (0-d: "treated equivalently to 1D
    inputs of a single element"), any length from 0, and an indexing mode given or left out."""
    # "list of scalars or 1 dimensional tensors": at most one dim each
    ts = draw(st.lists(specs(shapes=shapes(max_dims=1)), min_size=1, max_size=3), label="tensors")
    return Sample((draw(call_forms(MESHGRID_FORMS), label="form"), *ts))


MESHGRID = Operation(
    "creation.meshgrid_like_numpy",
    dtypes="representative",
    samples=meshgrid_calls(),
    call=lambda form, *ts: MESHGRID_FORMS[form](*ts),
)


@MESHGRID.property
# indexing left out: torch says it will be required ("See warning for future changes")
@pytest.mark.filterwarnings("ignore:torch.meshgrid. in an upcoming release:UserWarning")
def test_meshgrid_expands_each_input_like_numpy(device, dtype, sample):
    form, *specs_ = sample.args
    indexing = "xy" if form == "xy" else "ij"  # left out: "ij"
    arrays = [independent_array(s.logical_values(dtype)).reshape(-1) for s in specs_]
    expected = numpy.meshgrid(*arrays, indexing=indexing)
    (_, *inputs), _ = sample.build(dtype=dtype, device=device)
    grids = MESHGRID.call(form, *inputs)
    assert len(grids) == len(arrays), f"meshgrid: {len(grids)} grids for {len(arrays)} inputs"
    for i, (g, e) in enumerate(zip(grids, expected)):
        shape = tuple(g.shape)
        assert shape == e.shape and g.dtype == dtype, f"meshgrid[{i}]: {shape} {g.dtype}, not numpy's shape or the dtype"
        got = independent_array(g.cpu())
        numpy.testing.assert_array_equal(got, e, err_msg=f"meshgrid[{i}] ({indexing}): not numpy.meshgrid's")
        if g.numel():
            # "G_i is constructed by expanding T_i to the result shape", and expanding "does not
            # allocate new memory, but only creates a new view on the existing tensor" (Tensor.expand)
            assert_same_storage(g, inputs[i], f"meshgrid[{i}], an expansion of input {i}")


# "input (Tensor): 1-D input vector", "vec2 (Tensor): 1-D input vector"
VECTORS = specs(shapes=shapes(min_dims=1, max_dims=1))

OUTER = Operation(
    "creation.outer_product",
    dtypes="real",
    samples=st.builds(lambda a, b, method: Sample((a, b, method)), VECTORS, VECTORS, st.booleans()),
    call=lambda a, b, method: a.outer(b) if method else torch.outer(a, b),
)


@OUTER.property
def test_outer_is_the_matrix_of_products(device, dtype, sample):
    a_spec, b_spec, _ = sample.args
    out = OUTER(sample, dtype=dtype, device=device)
    a, b = (s.logical_values(dtype).to(torch.float64).numpy() for s in (a_spec, b_spec))
    # a product of two values of a narrower dtype is exact in float64 and the dtype rounds it once; in
    # float64 the product is rounded once as it is
    expected = independent_array(torch.from_numpy(numpy.multiply.outer(a, b)).to(dtype))
    assert tuple(out.shape) == (a.size, b.size) and out.dtype == dtype, f"outer: {tuple(out.shape)} {out.dtype}, not (n, m)"
    numpy.testing.assert_array_equal(independent_array(out.cpu()), expected, err_msg="outer: not input[i] * vec2[j]")


CLONE_FORMS = {
    "function": lambda t: torch.clone(t),
    "preserve": lambda t: torch.clone(t, memory_format=torch.preserve_format),
}

CLONE = Operation(
    "creation.clone_preserves_dense_strides",
    dtypes="all",
    samples=st.builds(lambda x, form: Sample((x, form)), specs(), call_forms(CLONE_FORMS)),
    call=lambda t, form: CLONE_FORMS[form](t),
    compare_strides=True,
)


@CLONE.property
def test_clone_copies_and_keeps_a_dense_source_s_strides(device, dtype, sample):
    x, form = sample.args
    t, _ = sample.build(dtype=dtype, device=device)[0]
    out = CLONE.call(t, form)
    assert out.dtype == t.dtype and out.shape == t.shape, "clone: not the input's shape and dtype"
    numpy.testing.assert_array_equal(
        independent_array(out.cpu()), independent_array(x.logical_values(dtype)), err_msg="clone: not a copy"
    )
    if t.numel():
        assert out.untyped_storage().data_ptr() != t.untyped_storage().data_ptr(), "clone: shares the input's storage"
    shape, strides = tuple(t.shape), t.stride()
    # preserve_format: "If the input tensor is dense (i.e., non-overlapping strided), its memory format
    # (including strides) is retained." (the other half is creation.clone_non_dense_contiguous)
    if dense_non_overlapping(shape, strides):
        assert meaningful(shape, out.stride()) == meaningful(shape, strides), (
            f"clone: strides {out.stride()}, not the dense input's"
        )


CLONE_NON_DENSE = Operation(
    "creation.clone_non_dense_contiguous",
    dtypes="float32",
    # the layouts that make a tensor that is not dense: stepped slices, stride-0 expands, as_strided gaps
    samples=st.builds(lambda x: Sample((x,)), specs(layouts=("sliced", "expanded", "as_strided"))),
    # transposed too (first and last dims swapped), so that not every source runs in row-major order
    call=lambda t: torch.clone(t.transpose(0, -1) if t.dim() else t),
    compare_strides=True,
)


@CLONE_NON_DENSE.property
def test_clone_of_a_non_dense_input_is_contiguous(device, dtype, sample):
    t = sample.build(dtype=dtype, device=device)[0][0]
    source = t.transpose(0, -1) if t.dim() else t  # what the call clones
    shape, strides = tuple(source.shape), source.stride()
    # the dense half is creation.clone_preserves_dense_strides: such a draw is rejected, not passed
    assume(not dense_non_overlapping(shape, strides))
    out = CLONE_NON_DENSE.call(t)
    # "Otherwise (e.g., a non-dense view like a stepped slice), the output is converted to the dense
    # (contiguous) format."
    want = contiguous_strides(shape)
    assert meaningful(shape, out.stride()) == meaningful(shape, want), (
        f"clone of a non-dense input: strides {out.stride()}, not {want}"
    )


SAMPLERS = {
    "uniform_": lambda t, lo, hi, seed: t.uniform_(lo, hi, generator=generator(t.device, seed)),
    "uniform_keyword": lambda t, lo, hi, seed: t.uniform_(**{"from": lo, "to": hi}, generator=generator(t.device, seed)),
    "uniform_default": lambda t, lo, hi, seed: t.uniform_(generator=generator(t.device, seed)),
    "normal_": lambda t, lo, hi, seed: t.normal_(lo, hi - lo, generator=generator(t.device, seed)),
    "normal_default": lambda t, lo, hi, seed: t.normal_(generator=generator(t.device, seed)),
}


def sampled_into(t, form, lo, hi, seed):
    """t, NaN everywhere first (so an element left unwritten shows), then filled by the sampler."""
    return SAMPLERS[form](t.fill_(math.nan), lo, hi, seed)


def bounds_of(form, lo, hi):
    """The interval the documented distribution puts every sample in (normal: any finite number)."""
    if form.startswith("uniform"):
        return (0.0, 1.0) if form.endswith("default") else (lo, hi)  # left out: from=0, to=1
    return (-math.inf, math.inf)


@st.composite
def sampler_calls(draw) -> Sample:
    """Sample(t, form, lo, hi, seed): a writable tensor of any layout, lo < hi (uniform's from and
    to; normal's mean and mean + std, std > 0)."""
    lo = draw(st.floats(-100, 100), label="lo")
    hi = lo + draw(st.floats(0.5, 100), label="width")
    x = draw(specs(layouts=WRITABLE_LAYOUTS), label="t")
    return Sample((x, draw(call_forms(SAMPLERS), label="form"), lo, hi, draw(st.integers(0, 2**32 - 1), label="seed")))


SAMPLE_IN_PLACE = Operation(
    "creation.uniform_normal_fill_in_place",
    dtypes="floating",
    samples=sampler_calls(),
    # each device draws its own numbers: two runs agree on the shape and on which fell inside
    call=lambda t, form, lo, hi, seed: inside(sampled_into(t, form, lo, hi, seed), *bounds_of(form, lo, hi)),
)


def inside(t, lo, hi):
    """Which of t's samples lie in [lo, hi], written over t too (t is the call's input: after the call
    each device holds its own numbers, and two runs agree on which fell inside, not on the numbers)."""
    within = (t >= lo) & (t <= hi)
    return shape_only(t.copy_(within)), within


@SAMPLE_IN_PLACE.property
def test_uniform_and_normal_fill_every_element_in_place(device, dtype, sample):
    x, form, lo, hi, seed = sample.args
    (t, *_), _ = sample.build(dtype=dtype, device=device)
    t.fill_(math.nan)  # so an element left unwritten shows
    through, version = t[...], t._version  # another view of t's memory
    assert SAMPLERS[form](t, lo, hi, seed) is t, f"{form} did not return self"
    # in place: "Every tensor keeps a version counter, that is incremented every time it is marked
    # dirty in any operation" (autograd notes, in-place correctness checks)
    assert t._version > version, f"{form} did not bump self's version counter"
    low, high = bounds_of(form, lo, hi)
    # the bounds as the dtype holds them: a sample rounds to the dtype
    low, high = (torch.tensor(v, dtype=dtype).item() for v in (low, high))
    values = through.cpu().double()
    assert bool(values.isfinite().all()), f"{form}: an element left unwritten (NaN) or not finite"
    assert bool(((values >= low) & (values <= high)).all()), f"{form}: a sample outside [{low}, {high}]"
    again = x.build(dtype=dtype, device=device)
    assert torch.equal(sampled_into(again, form, lo, hi, seed), t), f"{form}: a generator seeded alike drew other numbers"


# One fixed seeded draw of N values: a sample mean lies within 5.4 standard errors (sigma / sqrt(N))
# of the distribution's mean, and a sample standard deviation within 5% of sigma (over 6 standard
# errors for these distributions), except with probability under 1e-7 for any seed: the seed only
# makes the run repeatable.
DRAW = 8192


def assert_moments(t, mean, std, mean_within, what):
    values = t.double()
    got_mean, got_std = values.mean().item(), values.std().item()
    assert abs(got_mean - mean) <= mean_within, f"{what}: mean {got_mean:.4g}, not {mean:.4g} within {mean_within:.3g}"
    assert abs(got_std - std) <= 0.05 * std, f"{what}: standard deviation {got_std:.4g}, not {std:.4g} within 5%"


@pytest.mark.behaviour("creation.uniform_normal_fill_in_place")
def test_uniform_and_normal_draw_their_documented_distributions():
    """uniform_() (from=0, to=1 left out) draws U(0, 1): mean 1/2, std 1/sqrt(12); normal_() draws
    N(0, 1), normal_(3, 0.5) N(3, 0.5^2) (Tensor.normal_: "Fills self tensor with elements samples
    from the normal distribution parameterized by mean and std")."""
    t = torch.empty(DRAW, dtype=torch.float64)
    t.uniform_(generator=torch.Generator().manual_seed(0))
    assert_moments(t, 0.5, 1 / math.sqrt(12), 5.4 / math.sqrt(12 * DRAW), "uniform_()")
    t.normal_(generator=torch.Generator().manual_seed(0))
    assert_moments(t, 0.0, 1.0, 5.4 / math.sqrt(DRAW), "normal_()")
    t.normal_(3.0, 0.5, generator=torch.Generator().manual_seed(0))
    assert_moments(t, 3.0, 0.5, 5.4 * 0.5 / math.sqrt(DRAW), "normal_(3, 0.5)")


def fans(shape) -> tuple[int, int]:
    """fan_in = size(1) * the receptive field (the product of the sizes after the first two),
    fan_out = size(0) * the receptive field."""
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


INITS = {
    # form -> (call, the interval every value lies in); p: a, b (uniform_, trunc_normal_), gain (xavier), mean, std
    "uniform_": lambda t, p, g: torch.nn.init.uniform_(t, p["a"], p["b"], generator=g),
    "uniform__default": lambda t, p, g: torch.nn.init.uniform_(t, generator=g),
    "ones_": lambda t, p, g: torch.nn.init.ones_(t),
    "xavier_uniform_": lambda t, p, g: torch.nn.init.xavier_uniform_(t, p["gain"], generator=g),
    "xavier_uniform__keyword": lambda t, p, g: torch.nn.init.xavier_uniform_(tensor=t, gain=p["gain"], generator=g),
    "xavier_uniform__default": lambda t, p, g: torch.nn.init.xavier_uniform_(t, generator=g),
    "trunc_normal_": lambda t, p, g: torch.nn.init.trunc_normal_(t, p["mean"], p["std"], p["a"], p["b"], generator=g),
    "trunc_normal__default": lambda t, p, g: torch.nn.init.trunc_normal_(t, generator=g),
}


def init_bounds(form, shape, p) -> tuple[float, float]:
    """The documented interval: U(a, b) (left out: 0 and 1); 1 for ones_; U(-A, A) with
    A = gain * sqrt(6 / (fan_in + fan_out)) (gain left out: 1); [a, b] for trunc_normal_ (left out: -2 and 2)."""
    if form == "ones_":
        return 1.0, 1.0
    if form.startswith("xavier"):
        fan_in, fan_out = fans(shape)
        bound = (1.0 if form.endswith("default") else p["gain"]) * math.sqrt(6 / (fan_in + fan_out))
        return -bound, bound
    if form.endswith("default"):
        return (0.0, 1.0) if form.startswith("uniform") else (-2.0, 2.0)
    return p["a"], p["b"]


def initialised(t, form, p, seed):
    """t, NaN everywhere first (so an element left unwritten shows), then initialised in `form`."""
    return INITS[form](t.fill_(math.nan), p, generator(t.device, seed))


@st.composite
def init_calls(draw) -> Sample:
    """Sample(t, form, params, seed): a writable tensor of any layout (two dims or more for xavier,
    whose fan_in and fan_out need them), a < b, mean in [a, b], std > 0, gain > 0."""
    form = draw(call_forms(INITS), label="form")
    # xavier's fan_in and fan_out need two dims or more, and A = gain * sqrt(6 / (fan_in + fan_out))
    # a nonzero fan_in + fan_out
    xavier = shapes(min_dims=2).filter(lambda s: sum(fans(s)) > 0)
    x = draw(specs(layouts=WRITABLE_LAYOUTS, shapes=xavier if form.startswith("xavier") else shapes()), label="t")
    a = draw(st.floats(-50, 50), label="a")
    b = a + draw(st.floats(0.5, 50), label="width")
    p = {"a": a, "b": b, "mean": draw(st.floats(a, b), label="mean"), "std": draw(st.floats(0.1, 10), label="std")}
    p["gain"] = draw(st.floats(0.1, 10), label="gain")
    return Sample((x, form, p, draw(st.integers(0, 2**32 - 1), label="seed")))


INIT = Operation(
    "creation.init_within_documented_bounds",
    dtypes="float32_64",
    samples=init_calls(),
    # each device draws its own numbers: two runs agree on the shape and on which fell inside
    call=lambda t, form, p, seed: inside(initialised(t, form, p, seed), *init_bounds(form, tuple(t.shape), p)),
)


@INIT.property
def test_nn_init_fills_every_element_within_its_documented_interval(device, dtype, sample):
    x, form, p, seed = sample.args
    t = x.build(dtype=dtype, device=device).fill_(math.nan)  # so an element left unwritten shows
    through, version = t[...], t._version  # another view of t's memory
    assert INITS[form](t, p, generator(t.device, seed)) is t, f"nn.init.{form} did not return the tensor it filled"
    # in place: "Every tensor keeps a version counter, that is incremented every time it is marked
    # dirty in any operation" (autograd notes, in-place correctness checks)
    assert t._version > version, f"nn.init.{form} did not bump the version counter of the tensor it filled"
    low, high = init_bounds(form, x.shape, p)
    values = through.cpu().double()
    assert bool(values.isfinite().all()), f"nn.init.{form}: an element left unwritten (NaN)"
    # the bounds as the dtype holds them: a sample rounds to the dtype
    slack = torch.finfo(dtype).eps * max(abs(low), abs(high))
    assert bool(((values >= low - slack) & (values <= high + slack)).all()), f"nn.init.{form}: a value outside [{low}, {high}]"
    if form != "ones_":
        again = initialised(x.build(dtype=dtype, device=device), form, p, seed)
        assert torch.equal(again, t), f"nn.init.{form}: a generator seeded alike drew other numbers"
        # ones_ draws nothing: each example checks it too, on the same tensor afresh
        ones = x.build(dtype=dtype, device=device).fill_(math.nan)
        through, version = ones[...], ones._version
        assert torch.nn.init.ones_(ones) is ones, "nn.init.ones_ did not return the tensor it filled"
        assert ones._version > version, "nn.init.ones_ did not bump the version counter of the tensor it filled"
        assert bool((through.cpu() == 1).all()), "nn.init.ones_: an element is not 1"


@pytest.mark.behaviour("creation.init_within_documented_bounds")
def test_nn_init_draws_their_documented_distributions():
    """uniform_(t) draws U(0, 1) (a and b left out: 0 and 1): mean 1/2; trunc_normal_(t) draws N(0, 1)
    with values outside [-2, 2] redrawn (mean, std, a and b left out): every value in [-2, 2], mean 0,
    std 0.8796 (N(0, 1) truncated to [-2, 2]: sqrt(1 - 4 phi(2) / (Phi(2) - Phi(-2))));
    xavier_uniform_(w, gain) draws U(-A, A), A = gain * sqrt(6 / (fan_in + fan_out)): std A / sqrt(3)."""
    t = torch.empty(DRAW, dtype=torch.float64)
    torch.nn.init.uniform_(t, generator=torch.Generator().manual_seed(0))
    assert_moments(t, 0.5, 1 / math.sqrt(12), 5.4 / math.sqrt(12 * DRAW), "nn.init.uniform_(t)")
    torch.nn.init.trunc_normal_(t, generator=torch.Generator().manual_seed(0))
    assert bool(((t >= -2) & (t <= 2)).all()), "nn.init.trunc_normal_(t): a value outside [-2, 2]"
    phi2 = math.exp(-2) / math.sqrt(2 * math.pi)
    truncated = math.sqrt(1 - 4 * phi2 / math.erf(2 / math.sqrt(2)))
    assert_moments(t, 0.0, truncated, 5.4 * truncated / math.sqrt(DRAW), "nn.init.trunc_normal_(t)")
    shape = (64, 128)
    fan_in, fan_out = fans(shape)
    for spelled in ("positional", "keyword"):
        w = torch.empty(shape, dtype=torch.float64)
        g = torch.Generator().manual_seed(0)
        if spelled == "positional":
            torch.nn.init.xavier_uniform_(w, 2.5, generator=g)
        else:
            # tensor positional: the strength recorder's dry probes of an in-place API find self
            # only among the positional arguments
            torch.nn.init.xavier_uniform_(w, gain=2.5, generator=g)
        bound = 2.5 * math.sqrt(6 / (fan_in + fan_out))
        std = bound / math.sqrt(3)
        assert_moments(w, 0.0, std, 5.4 * std / math.sqrt(w.numel()), f"nn.init.xavier_uniform_(w, gain=2.5) ({spelled})")


@pytest.mark.behaviour("creation.xavier_normal_std")
@pytest.mark.parametrize("shape", [(64, 128), (32, 16, 3, 3)])
def test_xavier_normal_draws_with_the_documented_std(shape):
    """One fixed draw (a seeded generator: no flake) of 8192 or more values: its standard deviation
    is within 10% of gain * sqrt(2 / (fan_in + fan_out)), for gain left out (1) and given."""
    fan_in, fan_out = fans(shape)
    for gain, kwargs in ((1.0, {}), (2.5, {"gain": 2.5})):
        t = torch.full(shape, math.nan, dtype=torch.float64)  # so an element left unwritten shows
        version = t._version
        filled = torch.nn.init.xavier_normal_(t, generator=torch.Generator().manual_seed(0), **kwargs)
        assert filled is t, "xavier_normal_ did not return the tensor it filled"
        # in place: "Every tensor keeps a version counter, that is incremented every time it is
        # marked dirty in any operation" (autograd notes, in-place correctness checks)
        assert t._version > version, "xavier_normal_ did not bump the version counter of the tensor it filled"
        again = torch.nn.init.xavier_normal_(
            torch.empty(shape, dtype=torch.float64), generator=torch.Generator().manual_seed(0), **kwargs
        )
        assert torch.equal(again, t), "xavier_normal_: a generator seeded alike drew other numbers"
        std = gain * math.sqrt(2 / (fan_in + fan_out))
        assert abs(t.std().item() - std) <= 0.1 * std, f"xavier_normal_: std {t.std().item():.4g}, not {std:.4g} within 10%"
        assert abs(t.mean().item()) <= 0.1 * std, f"xavier_normal_: mean {t.mean().item():.4g}, not 0 within 0.1 std"


def multinomial_draw(weights, kept, num_samples, seed, replacement):
    """torch.multinomial(weights * kept, ...) from a generator seeded with `seed` (replacement left out where None):
    the draw, and what every device agrees on: the weight of each drawn index is non-zero, and each row's number
    of distinct indices."""
    w = weights * torch.tensor(kept, dtype=weights.dtype, device=weights.device)
    options = {} if replacement is None else {"replacement": replacement}
    drawn = torch.multinomial(w, num_samples, **options, generator=generator(weights.device, seed))
    rows = drawn.reshape(-1, num_samples)
    distinct = torch.tensor([len(set(r)) for r in rows.tolist()], dtype=torch.int64)
    return drawn, (w.gather(-1, drawn) > 0, distinct)


@st.composite
def multinomial_samples(draw):
    """Sample(weights, kept, num_samples, seed, replacement): a vector or a matrix of non-negative finite weights,
    some zeroed (kept: 1 or 0 per weight), each row with a non-zero sum, as documented."""
    k = draw(st.integers(1, 5), label="categories")
    shape = (k,) if draw(st.booleans(), label="vector") else (draw(st.integers(1, 3), label="rows"), k)
    label(f"input_dims={len(shape)}")
    # weights "must be non-negative, finite and have a non-zero sum": values in [0.1, 3], zeros placed by `kept`
    weights = draw(specs(shape=shape, low=0.1, high=3), label="weights")
    kept = numpy.array(draw(st.lists(st.booleans(), min_size=math.prod(shape), max_size=math.prod(shape)), label="kept"))
    kept = kept.reshape(-1, k)
    kept[:, draw(st.integers(0, k - 1), label="nonzero_at")] = True  # a non-zero sum in every row
    replacement = draw(st.sampled_from([None, False, True]), label="replacement")
    label(f"replacement={replacement}", f"zeros={'some' if not kept.all() else 'none'}")
    # without replacement at most as many samples as a row's non-zero weights (the docstring's example draws 2 of 2)
    most = 6 if replacement else int(kept.sum(axis=1).min())
    num_samples = draw(st.integers(1, most), label="num_samples")
    kept_rows = tuple(tuple(map(float, row)) for row in kept)
    return Sample(
        (
            weights,
            kept_rows[0] if len(shape) == 1 else kept_rows,
            num_samples,
            draw(st.integers(0, 2**32 - 1), label="seed"),
            replacement,
        )
    )


MULTINOMIAL = Operation(
    "creation.multinomial_draws",
    dtypes="float32_64",
    samples=multinomial_samples(),
    call=lambda *args: multinomial_draw(*args)[1],
)


@MULTINOMIAL.property
def test_multinomial_draws_indices_of_non_zero_weights(device, dtype, sample):
    (weights, kept, num_samples, seed, replacement), _ = sample.build(dtype=dtype, device=device)
    drawn, (positive, distinct) = multinomial_draw(weights, kept, num_samples, seed, replacement)
    shape = (num_samples,) if weights.ndim == 1 else (weights.shape[0], num_samples)
    assert tuple(drawn.shape) == shape and drawn.dtype == torch.int64, (
        f"multinomial: {tuple(drawn.shape)} {drawn.dtype}, not {shape} int64"
    )
    k = weights.shape[-1]
    indices = drawn.cpu().tolist()
    rows = [indices] if weights.ndim == 1 else indices
    zero = numpy.array(kept).reshape(-1, k) == 0
    for row, zeros in zip(rows, zero):
        assert all(0 <= i < k for i in row), "multinomial: an index outside the row's categories"
        assert not any(zeros[i] for i in row), "multinomial: a category of zero weight was drawn"
        if not replacement:  # left out: False
            assert len(set(row)) == len(row), "multinomial without replacement drew an index twice in a row"
    again, _ = multinomial_draw(weights, kept, num_samples, seed, replacement)
    assert torch.equal(drawn, again), "multinomial: a generator seeded alike drew other indices"
