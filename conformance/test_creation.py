"""Creation: factory shapes and dtypes, random ranges, and what *_like / new_* inherit."""

import math
import re
import sys
import warnings

import numpy
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conformance.checks import private_rng
from strategies import DTYPE_GROUPS, specs
from strategies.samples import SIZE_FORMS
from strategies.shapes import shapes
from strategies.tensors import WRITABLE_LAYOUTS


@pytest.mark.behaviour("creation.factory_shapes_dtypes")
@pytest.mark.dtypes("all")
@given(shape=shapes(), seed=st.integers(0, 2**32 - 1))
def test_factories_honour_shape_dtype_device(device, dtype, shape, seed):
    for form, size in SIZE_FORMS.items():  # every form, every example: they are cheap
        made = {name: getattr(torch, name)(*size(shape), dtype=dtype, device=device) for name in ("empty", "zeros", "ones")}
        if dtype.is_floating_point or dtype.is_complex:  # rand and randn sample floating and complex dtypes only
            generator = torch.Generator(device=device).manual_seed(seed)
            made.update(
                rand=torch.rand(*size(shape), dtype=dtype, device=device, generator=generator),
                randn=torch.randn(*size(shape), dtype=dtype, device=device, generator=generator),
            )
        for name, t in made.items():
            assert (tuple(t.shape), t.dtype, t.device.type) == (shape, dtype, torch.device(device).type), f"{name}, {form}"
        assert bool((made["zeros"] == 0).all()) and bool((made["ones"] == 1).all()), form


@pytest.mark.behaviour("creation.rand_half_open")
@pytest.mark.dtypes("floating")
@given(seed=st.integers(0, 2**32 - 1))
def test_rand_is_in_zero_one_half_open(device, dtype, seed):
    generator = torch.Generator(device=device).manual_seed(seed)
    t = torch.rand(4096, dtype=dtype, device=device, generator=generator)
    assert bool((t >= 0).all()) and bool((t < 1).all()), f"max {t.max().item()}"


@pytest.mark.behaviour("creation.like_inherits")
@pytest.mark.dtypes("float_and_complex")
@given(x=specs(), other=st.sampled_from(DTYPE_GROUPS["float_and_complex"]), size=shapes(max_dims=2))
def test_like_and_new_inherit_unless_given(device, dtype, x, other, size):
    t = x.build(dtype=dtype, device=device)
    with private_rng(x.seed, device):
        random = (torch.rand_like(t), torch.randn_like(t))
    for made in (torch.zeros_like(t), torch.ones_like(t), torch.empty_like(t), *random, torch.full_like(t, 2)):
        assert (made.shape, made.dtype, made.device, made.layout) == (t.shape, dtype, t.device, t.layout)
    for made in (t.new_ones(size), t.new_zeros(size), t.new_empty(size), t.new_full(size, 3)):
        assert (tuple(made.shape), made.dtype, made.device) == (size, dtype, t.device)
    assert torch.zeros_like(t, dtype=other).dtype == other and t.new_ones(size, dtype=other).dtype == other


@pytest.mark.behaviour("creation.randn_like_integral_raises")
@pytest.mark.dtypes("integral")
@given(shape=shapes(min_side=1))  # an empty tensor never reaches the sampling kernel
def test_randn_like_refuses_integral_dtypes(device, dtype, shape):
    source = torch.zeros(shape, dtype=dtype, device=device)
    with pytest.raises(RuntimeError):
        torch.randn_like(source)
    with pytest.raises(RuntimeError):
        torch.randn_like(source.float(), dtype=dtype)


def integer_range(dtype: torch.dtype) -> tuple[int, int]:
    """The integers `dtype` holds: all of an integral dtype's, and for a floating one those it
    holds exactly, -2**(p+1) to 2**(p+1) for p mantissa bits."""
    if dtype.is_floating_point:
        exact = 2 ** (round(-math.log2(torch.finfo(dtype).eps)) + 1)
        return -exact, exact
    info = torch.iinfo(dtype)
    return info.min, info.max


@pytest.mark.behaviour("creation.randint_like_range")
@pytest.mark.dtypes("real")
@given(x=specs(), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_randint_like_is_in_low_high(device, dtype, x, data, seed):
    # low and high anywhere in the dtype's range; for floating dtypes, among the integers the
    # dtype holds exactly (beyond them an integer draw rounds, onto high itself)
    bottom, top = integer_range(dtype)
    low = data.draw(st.integers(bottom, top - 1), label="low")
    span = data.draw(st.integers(1, top - low), label="span")
    t = x.build(dtype=dtype, device=device)
    with private_rng(seed, device):
        out = torch.randint_like(t, low, low + span)
    assert (out.shape, out.dtype) == (t.shape, dtype)
    assert bool((out >= low).all()) and bool((out < low + span).all())


@pytest.mark.behaviour("creation.size_is_tuple")
@given(x=specs())
def test_size_is_a_tuple_and_numel_its_product(device, x):
    t = x.build(dtype=torch.float32, device=device)
    assert isinstance(t.size(), torch.Size) and isinstance(t.size(), tuple)
    assert t.size() == t.shape == x.shape
    assert t.numel() == math.prod(t.size()) == torch.numel(t)


@pytest.mark.behaviour("creation.tensor_two_ints_raises")
@given(a=st.integers(0, 6), b=st.integers(0, 6))
def test_tensor_of_two_ints_raises(device, a, b):
    with pytest.raises(TypeError):
        torch.tensor(a, b, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.empty(a, b, device=device).shape == (a, b)


@pytest.mark.behaviour("creation.no_double64")
@pytest.mark.dtypes("floating")
@given(x=specs())
def test_there_is_no_double64_only_float64(device, dtype, x):
    assert not hasattr(torch, "double64"), "torch.double64 exists"
    assert torch.double is torch.float64
    t = x.build(dtype=dtype, device=device)
    with private_rng(0, device):
        like = torch.randn_like(t, dtype=torch.float64)
    assert like.dtype == torch.float64 and like.shape == t.shape and like.device == t.device


SCALARS = {
    "bool": st.booleans(),
    "int": st.integers(-(2**40), 2**40),
    "float": st.floats(-1e6, 1e6, allow_nan=False),
    "complex": st.complex_numbers(max_magnitude=1e6, allow_nan=False, allow_infinity=False),
}


@pytest.mark.behaviour("creation.tensor_infers_dtype")
@given(kinds=st.lists(st.sampled_from(sorted(SCALARS)), min_size=1, max_size=6), data=st.data(), nested=st.booleans())
def test_tensor_infers_its_dtype_from_python_data(device, kinds, data, nested):
    values = [data.draw(SCALARS[kind], label=kind) for kind in kinds]
    out = torch.tensor([[v] for v in values] if nested else values, device=device)
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
    assert out.dtype == expected, f"{kinds}: got {out.dtype}, expected {expected}"


@pytest.mark.behaviour("creation.tensor_class_vs_function")
@pytest.mark.device_types("cpu")  # torch.Tensor(...) is the legacy constructor of CPU tensors
@given(
    kinds=st.lists(st.sampled_from(["bool", "int", "float"]), min_size=1, max_size=6),
    data=st.data(),
    size=shapes(min_dims=1, max_dims=3),  # torch.Tensor() without sizes is empty 1-d, not 0-d
)
def test_torch_Tensor_makes_default_dtype_tensors_and_reads_ints_as_sizes(device, kinds, data, size):
    values = [data.draw(SCALARS[kind], label=kind) for kind in kinds]
    legacy = torch.Tensor(values)
    assert legacy.dtype == torch.get_default_dtype(), f"torch.Tensor({kinds}) gave {legacy.dtype}"
    assert legacy.tolist() == [float(v) for v in numpy.asarray(values, dtype=numpy.float32)]
    inferred = {"bool": torch.bool, "int": torch.int64, "float": torch.get_default_dtype()}
    expected = max((inferred[k] for k in kinds), key=[torch.bool, torch.int64, torch.get_default_dtype()].index)
    assert torch.tensor(values).dtype == expected
    assert torch.Tensor(*size).shape == size and torch.Tensor(*size).dtype == torch.get_default_dtype()


@pytest.mark.behaviour("creation.tensor_class_shares_float32_ndarray")
@pytest.mark.device_types("cpu")
# non-empty: an empty array holds no memory to share (its tensor's data_ptr is 0)
@given(a=arrays(numpy.float32, shapes(min_side=1), elements=st.floats(width=32, allow_nan=True)))
def test_torch_Tensor_of_a_float32_ndarray_shares_it(device, a):
    t = torch.Tensor(a)
    assert t.data_ptr() == a.__array_interface__["data"][0], "torch.Tensor(float32 ndarray) copied"
    assert not numpy.shares_memory(torch.tensor(a).numpy(), a), "torch.tensor(ndarray) shares"


def bytes_per_element(dtype: torch.dtype) -> int:
    """From the dtype's name, as the dtype table lists it: float32 is 32 bits, complex64 64, bool one byte."""
    name = str(dtype).removeprefix("torch.")
    return 1 if name == "bool" else int(re.search(r"\d+", name).group()) // 8


@pytest.mark.behaviour("creation.nbytes_is_numel_times_element_size")
@pytest.mark.dtypes("all")
@given(x=specs())
def test_nbytes_is_numel_times_element_size(device, dtype, x):
    t = x.build(dtype=dtype, device=device)
    assert t.element_size() == bytes_per_element(dtype)
    assert t.nbytes == t.numel() * t.element_size()


@pytest.mark.behaviour("creation.getsizeof_counts_the_whole_storage")
@pytest.mark.dtypes("representative")
@given(x=specs())
def test_getsizeof_of_a_storage_is_its_bytes_plus_the_wrapper(device, dtype, x):
    t = x.build(dtype=dtype, device=device)
    wrapper = sys.getsizeof(torch.empty(0, dtype=dtype, device=device).untyped_storage())
    storage = t.untyped_storage()
    assert sys.getsizeof(storage) == wrapper + storage.nbytes()
    # a view's storage is its base's: at least as large as what the view can reach, usually larger
    reach = t.storage_offset() + sum((n - 1) * s for n, s in zip(t.shape, t.stride())) + 1 if t.numel() else 0
    assert storage.nbytes() >= reach * t.element_size()


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
        assert (t.shape, t.dtype, t.device.type) == (source.shape, dtype, torch.device(device).type), name
    if torch.device(device).type != "meta":
        for name, value in (("zeros_like", 0), ("ones_like", 1), ("full_like", 2)):
            assert bool((made[name] == value).all()), name


@pytest.mark.behaviour("creation.arange_length_and_values")
@pytest.mark.dtypes("real")
# Integer start, end and step: the docstring warns that non-integer steps meet rounding against end,
# so the length of a float-step arange is not a promise.
@given(start=st.integers(-20, 20), span=st.integers(-20, 20), step=st.integers(-5, 5).filter(bool))
def test_arange_has_ceil_length_and_steps_from_start(device, dtype, start, span, step):
    end = start + span
    length = max(0, math.ceil((end - start) / step))
    values = [start + i * step for i in range(length)]
    info = torch.iinfo(dtype) if not dtype.is_floating_point else torch.finfo(dtype)
    if not all(info.min <= v <= info.max for v in (start, end, *values)):
        return  # the dtype cannot hold the range (uint8 and negatives): no documented result
    if (end - start) * step < 0:
        with pytest.raises(RuntimeError):  # the sign of step must lead from start towards end
            torch.arange(start, end, step, dtype=dtype, device=device)
        return
    t = torch.arange(start, end, step, dtype=dtype, device=device)
    assert t.shape == (length,) and t.dtype == dtype
    assert t.tolist() == values


@pytest.mark.behaviour("creation.full_infers_dtype")
@given(shape=shapes(), value=st.one_of(st.booleans(), st.integers(-(2**40), 2**40), st.floats(-1e6, 1e6)))
def test_full_fills_and_infers_its_dtype_from_the_value(device, shape, value):
    t = torch.full(shape, value, device=device)
    expected = {bool: torch.bool, int: torch.int64, float: torch.get_default_dtype()}[type(value)]
    assert t.dtype == expected and tuple(t.shape) == shape
    assert bool((t == torch.tensor(value, dtype=expected)).all())


CONVERSIONS = {"float": torch.float32, "double": torch.float64, "half": torch.float16, "long": torch.int64, "int": torch.int32}


@pytest.mark.behaviour("creation.conversion_methods")
# complex to real keeps the real part and says so: a documented warning, not a failure
@pytest.mark.filterwarnings("ignore:Casting complex values to real discards the imaginary part:UserWarning")
@pytest.mark.dtypes("all")
@given(x=specs(), method=st.sampled_from(sorted(CONVERSIONS)), other=st.sampled_from(DTYPE_GROUPS["all"]))
def test_conversion_methods_equal_to_with_their_dtype(device, dtype, x, method, other):
    t = x.build(dtype=dtype, device=device)
    target = CONVERSIONS[method]
    # ``self.float()`` is equivalent to ``self.to(torch.float32)``, and so on for each method
    converted = getattr(t, method)()
    assert converted.dtype == target and converted.shape == t.shape
    assert (converted is t) == (dtype == target), "a conversion to the same dtype returns self, otherwise a new tensor"
    torch.testing.assert_close(converted, t.to(target), rtol=0, atol=0, equal_nan=True)
    like = torch.empty(0, dtype=other, device=device)
    assert t.type_as(like).dtype == other and t.type(other).dtype == other  # cast to the given tensor's type
    assert t.type(dtype) is t and isinstance(t.type(), str)  # "no copy is performed"; no dtype: the type's name


@pytest.mark.behaviour("creation.fill_and_init_fill")
@pytest.mark.dtypes("floating")
@given(x=specs(layouts=WRITABLE_LAYOUTS), value=st.floats(-6e4, 6e4))  # float16's finite range holds them all
def test_fill_and_zeros_init_write_every_element_in_place(device, dtype, x, value):
    t = x.build(dtype=dtype, device=device)
    assert t.fill_(value) is t
    assert bool((t.cpu() == torch.tensor(value, dtype=dtype)).all())
    assert torch.nn.init.zeros_(t) is t and bool((t == 0).all())


@pytest.mark.behaviour("creation.manual_seed_replays_randint")
@pytest.mark.device_types("cpu", "cuda")  # the devices manual_seed documents ("on all devices")
@given(seed=st.integers(0, 2**63 - 1), low=st.integers(-(2**62), 2**62), span=st.integers(1, 2**62), size=shapes(max_dims=2))
def test_manual_seed_replays_randint_within_low_and_high(device, seed, low, span, size):
    index = torch.device(device).index or 0
    with torch.random.fork_rng(devices=[index] if torch.device(device).type == "cuda" else []):
        torch.manual_seed(seed)
        first = torch.randint(low, low + span, size, device=device)
        torch.manual_seed(seed)
        again = torch.randint(low, low + span, size, device=device)
    assert torch.equal(first, again), "the same seed gave other numbers"
    assert first.dtype == torch.int64 and tuple(first.shape) == size
    assert bool((first >= low).all()) and bool((first < low + span).all()), "randint left [low, high)"


@pytest.mark.behaviour("creation.finfo_limits")
@pytest.mark.dtypes("floating")
@given(data=st.data())
def test_finfo_eps_max_and_tiny_are_the_dtype_s_limits(device, dtype, data):
    info = torch.finfo(dtype)
    one = torch.tensor(1.0, dtype=dtype, device=device)
    assert bool(one + info.eps != one) and bool(one + info.eps / 4 == one)  # eps: the gap after 1.0
    top = torch.tensor(info.max, dtype=dtype, device=device)
    assert bool(top.isfinite()) and bool((top * 2).isinf()) and info.min == -info.max
    tiny = torch.tensor(info.tiny, dtype=dtype, device=device)
    assert bool(tiny > 0) and info.tiny == info.smallest_normal
    assert info.bits == torch.empty((), dtype=dtype).element_size() * 8


COMPLEX_OF = {torch.float16: torch.complex32, torch.float32: torch.complex64, torch.float64: torch.complex128}


@pytest.mark.behaviour("creation.default_dtype_governs_inference")
# complex32, the complex counterpart of float16, is experimental and torch says so
@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental:UserWarning")
@given(default=st.sampled_from([torch.float16, torch.float32, torch.float64]), value=st.floats(-100, 100), n=st.integers(-5, 5))
def test_set_default_dtype_decides_float_and_complex_inference(device, default, value, n):
    before = torch.get_default_dtype()
    try:
        torch.set_default_dtype(default)
        assert torch.get_default_dtype() == default
        assert torch.tensor(value, device=device).dtype == default  # Python floats
        assert torch.zeros(2, device=device).dtype == default  # factories without dtype=
        assert torch.tensor(complex(value, 1), device=device).dtype == COMPLEX_OF[default]
        assert (torch.tensor([n], device=device) * 1.5).dtype == default  # integer tensor with a Python float
        assert torch.tensor([n], device=device).dtype == torch.int64  # ints are not affected
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
