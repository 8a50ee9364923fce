"""Pointwise: each element of the result is the documented function of the matching input elements.

The oracle is the documented formula evaluated in float64 NumPy (rounded once to the result's
dtype), or NumPy's own function where the docs name it (np.true_divide, np.floor_divide, around).
Where IEEE 754 or the docs decide the result exactly (integers, a correctly rounded product, the
sign of zero, where NaN goes) it is compared exactly (`assert_ieee_equal`); elsewhere at the
dtype's tolerance. Inputs cover the whole domain: NaN, +-inf and -0.0, the dtype's extremes and
subnormals, values around 0, around 1 and large, every layout, and Python scalar operands.
"""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

from conformance.checks import assert_ieee_equal, assert_same_storage, dense_non_overlapping, independent_array
from conformance.harness.declaration import Operation
from strategies import shapes, specs
from strategies.samples import Arg, Sample, broadcast_operands, call_forms
from strategies.tensors import WRITABLE_LAYOUTS, label


def whole_domain():
    """A tensor over the whole value domain: specials, extremes, every magnitude, every layout."""
    return specs(special_values=True, extremes=True, magnitudes=True)


def values64(spec, dtype) -> np.ndarray:
    """The spec's values in `dtype`, exactly, as float64 (int64 for integral dtypes) NumPy."""
    a = independent_array(spec.logical_values(dtype))
    return a.astype(np.int64 if a.dtype.kind in "iub" else np.complex128 if a.dtype.kind == "c" else np.float64)


def native(spec, dtype) -> np.ndarray:
    """The spec's values in NumPy's counterpart of `dtype` (the docs' NumPy equivalents)."""
    return independent_array(spec.logical_values(dtype))


def assert_formula(out, expected, dtype, what, *, where=None):
    """`out` is the float64 reference `expected` rounded to `dtype`, at the dtype's tolerance, with
    NaN and infinities where the reference has them; `where`: only there (elsewhere no result is
    documented)."""
    assert out.dtype == dtype, f"{what}: the result's dtype is {out.dtype}, not x's {dtype}"
    reference, got = torch.from_numpy(np.array(expected)).to(dtype), out.detach().cpu()
    if where is not None:
        keep = torch.from_numpy(np.array(np.broadcast_to(where, got.shape)))
        reference, got = reference[keep], got[keep]
    assert_close(got, reference, equal_nan=True, msg=lambda m: f"{what}: not the documented formula\n{m}")


@st.composite
def unary(draw, forms):
    """Sample(x, form=...): one tensor over the whole domain and one documented spelling."""
    x = draw(whole_domain(), label="x")
    return Sample((x,), {"form": draw(call_forms(forms), label="form")})


def check_every_form(sample, dtype, device, forms, drawn, expected, what, *, exact=False):
    """The drawn spelling's result and every other spelling's are the reference."""
    (x,) = sample.args
    built = x.build(dtype=dtype, device=device)
    for form, out in {sample.kwargs["form"]: drawn, **{name: f(built) for name, f in forms.items()}}.items():
        assert out.shape == x.shape, f"{form}: shape {tuple(out.shape)}, not the input's {x.shape}"
        if exact:
            assert out.dtype == dtype, f"{form}: the result's dtype is {out.dtype}, not x's {dtype}"
            assert_ieee_equal(out, expected, f"{form}: {what}")
        else:
            assert_formula(out, expected, dtype, f"{form}: {what}")


def errstate():
    return np.errstate(all="ignore")


# --- sigmoid -----------------------------------------------------------------------------------

SIGMOID_FORMS = {
    "torch.sigmoid(x)": lambda x: torch.sigmoid(x),
    "x.sigmoid()": lambda x: x.sigmoid(),
    "F.sigmoid(x)": lambda x: F.sigmoid(x),
    "nn.Sigmoid()(x)": lambda x: torch.nn.Sigmoid()(x),
}
SIGMOID = Operation(
    "pointwise.sigmoid_formula", dtypes="floating", samples=unary(SIGMOID_FORMS), call=lambda x, form: SIGMOID_FORMS[form](x)
)


@SIGMOID.property
def test_sigmoid_is_one_over_one_plus_exp_minus_x(device, dtype, sample):
    out = SIGMOID(sample, dtype=dtype, device=device)
    with errstate():
        expected = 1 / (1 + np.exp(-values64(sample.args[0], dtype)))  # sigmoid(-inf) = 0, sigmoid(inf) = 1
    check_every_form(sample, dtype, device, SIGMOID_FORMS, out, expected, "sigmoid is not 1 / (1 + exp(-x))")


# --- tanh --------------------------------------------------------------------------------------

TANH_FORMS = {
    "torch.tanh(x)": lambda x: torch.tanh(x),
    "x.tanh()": lambda x: x.tanh(),
    "nn.Tanh()(x)": lambda x: torch.nn.Tanh()(x),
}
TANH = Operation("pointwise.tanh_formula", dtypes="floating", samples=unary(TANH_FORMS), call=lambda x, form: TANH_FORMS[form](x))


@TANH.property
def test_tanh_is_the_hyperbolic_tangent(device, dtype, sample):
    out = TANH(sample, dtype=dtype, device=device)
    a = values64(sample.args[0], dtype)
    with errstate():
        # (exp(x) - exp(-x)) / (exp(x) + exp(-x)), evaluated without overflow: it is NumPy's tanh
        expected = np.tanh(a)
    check_every_form(sample, dtype, device, TANH_FORMS, out, expected, "tanh is not (e^x - e^-x) / (e^x + e^-x)")


# --- pow ---------------------------------------------------------------------------------------

# Python numbers every floating dtype holds exactly (k / 8 in [-8, 8], and the specials): how a
# number that is not is rounded to the tensor's dtype first is not documented here. The exponents
# 0.5 and -0.5 are pow_half_exponents' (below).
SCALARS = st.one_of(
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.0, 3.0, -2.0, 2.5, math.inf, -math.inf, math.nan]),
    st.integers(-64, 64).filter(lambda k: abs(k) != 4).map(lambda k: k / 8),
)


@st.composite
def pow_samples(draw):
    """Sample(base, exponent): a tensor to a tensor power (shapes broadcast), to a Python float, or
    a Python float to a tensor power; values over the whole domain."""
    case = draw(st.sampled_from(["tensor ** tensor", "tensor ** float", "float ** tensor"]), label="case")
    label(f"case={case}")
    if case == "tensor ** tensor":
        shapes = draw(broadcast_operands(2), label="shapes")
        # broadcast_operands draws the shapes; the values come over the whole domain
        x, y = (draw(specs(shape=s.shape, special_values=True, extremes=True, magnitudes=True)) for s in shapes.args)
        return Sample((x, y))
    t = draw(whole_domain(), label="t")
    number = draw(SCALARS, label="number")
    return Sample((t, number)) if case == "tensor ** float" else Sample((number, t))


POW = Operation("pointwise.pow_elementwise", dtypes="float32_64", samples=pow_samples(), call=lambda b, e: torch.pow(b, e))


def assert_pow(out, sample, dtype):
    base, exponent = (values64(a, dtype) if not isinstance(a, float) else np.float64(a) for a in sample.args)
    with errstate():
        expected = np.power(base, exponent)  # C99's pow: pow(x, 0) = 1 and pow(1, y) = 1, NaN or not
    assert_formula(out, np.asarray(expected), dtype, "torch.pow: out_i is not x_i ** exponent_i")


@POW.property
def test_pow_takes_each_element_to_its_exponent(device, dtype, sample):
    assert_pow(POW(sample, dtype=dtype, device=device), sample, dtype)


POW_HALF = Operation(
    "pointwise.pow_half_exponents",
    dtypes="float32_64",
    samples=st.builds(lambda t, e: Sample((t, e)), whole_domain(), st.sampled_from([0.5, -0.5])),
    call=lambda b, e: torch.pow(b, e),
)


@POW_HALF.property
def test_pow_to_a_half_is_pow(device, dtype, sample):
    # the same formula as every other float exponent: C99's pow, so pow(-0.0, -0.5) = +inf and
    # pow(-inf, 0.5) = inf
    assert_pow(POW_HALF(sample, dtype=dtype, device=device), sample, dtype)


@pytest.mark.behaviour("pointwise.pow_half_exponents")
@pytest.mark.dtypes("float32_64")
@given(t=specs(extremes=True, magnitudes=True), exponent=st.sampled_from([0.5, -0.5]))
def test_pow_to_a_half_of_values_without_specials(device, dtype, t, exponent):
    # the known deviation is at -0.0 and -inf (test_pow_to_a_half_is_pow, over the whole domain);
    # here the same formula over every other value, so the rest of the behaviour is still checked
    sample = Sample((t, exponent))
    assert_pow(torch.pow(t.build(dtype=dtype, device=device), exponent), sample, dtype)


# --- abs ---------------------------------------------------------------------------------------

ABS = Operation("pointwise.abs_exact", dtypes="real", samples=whole_domain().map(lambda x: Sample((x,))), call=lambda x: x.abs())


@ABS.property
def test_abs_is_the_magnitude_of_each_element(device, dtype, sample):
    out = ABS(sample, dtype=dtype, device=device)
    a = values64(sample.args[0], dtype)
    expected = np.abs(a)  # |-0.0| = +0.0, |-inf| = inf, NaN stays NaN
    fits = a != (
        torch.iinfo(dtype).min if dtype.is_signed and not dtype.is_floating_point else -np.inf - 1
    )  # |int min| does not fit
    assert out.dtype == dtype, f"x.abs(): the result's dtype is {out.dtype}, not x's {dtype}"
    assert_ieee_equal(out, expected, "x.abs() is not |x| exactly", where=fits)


# --- sqrt and rsqrt ----------------------------------------------------------------------------

ROOT_FORMS = {"x.sqrt()": lambda x: x.sqrt(), "torch.rsqrt(x)": lambda x: torch.rsqrt(x)}
ROOTS = Operation(
    "pointwise.sqrt_rsqrt",
    dtypes="floating",
    samples=unary(ROOT_FORMS),
    call=lambda x, form: ROOT_FORMS[form](x),
)


@ROOTS.property
def test_sqrt_and_rsqrt_follow_ieee(device, dtype, sample):
    (x,) = sample.args
    drawn = ROOTS(sample, dtype=dtype, device=device)
    built = x.build(dtype=dtype, device=device)
    a = values64(x, dtype)
    with errstate():
        root = np.sqrt(a)  # IEEE: sqrt(-0.0) = -0.0, sqrt(x < 0) = NaN, sqrt(inf) = inf
        reciprocal = 1 / root  # rsqrt(+-0.0) = +-inf, rsqrt(inf) = 0
    outputs = {sample.kwargs["form"]: drawn, "x.sqrt()": built.sqrt(), "torch.rsqrt(x)": torch.rsqrt(built)}
    for form, out in outputs.items():
        expected = root if form == "x.sqrt()" else reciprocal
        assert_formula(out, expected, dtype, f"{form}: not sqrt(x) / 1 / sqrt(x)")
        specials = (a == 0) | (a < 0) | np.isinf(a)
        assert_ieee_equal(out, expected, f"{form}: not IEEE on zeros, negatives and infinities", where=specials)


# --- square ------------------------------------------------------------------------------------


def square_samples(dtype):
    # an integer square overflows for most values of the dtype: no documented result there, so
    # integral inputs keep make_tensor's small range (no extremes)
    x = whole_domain() if dtype.is_floating_point else specs()
    return x.map(lambda spec: Sample((spec,)))


SQUARE = Operation("pointwise.square_exact", dtypes="real", samples=square_samples, call=lambda x: x.square())


@SQUARE.property
def test_square_is_x_times_x_rounded_once(device, dtype, sample):
    out = SQUARE(sample, dtype=dtype, device=device)
    a = values64(sample.args[0], dtype)
    with errstate():
        expected = a * a  # exact in float64 for every narrower float (and for small integers): rounded once
    assert out.dtype == dtype, f"x.square(): the result's dtype is {out.dtype}, not x's {dtype}"
    if dtype == torch.float64:
        expected = native(sample.args[0], dtype) * native(sample.args[0], dtype)  # IEEE's one rounding
    assert_ieee_equal(out, expected, "x.square() is not x * x rounded once")


# --- sin and cos -------------------------------------------------------------------------------

TRIG_FORMS = {"x.sin()": lambda x: x.sin(), "x.cos()": lambda x: x.cos()}
TRIG = Operation("pointwise.sin_cos", dtypes="floating", samples=unary(TRIG_FORMS), call=lambda x, form: TRIG_FORMS[form](x))


@TRIG.property
def test_sin_and_cos_of_radians(device, dtype, sample):
    out = TRIG(sample, dtype=dtype, device=device)
    a = values64(sample.args[0], dtype)
    with errstate():
        expected = {"x.sin()": np.sin(a), "x.cos()": np.cos(a)}  # of +-inf: NaN
    (x,) = sample.args
    built = x.build(dtype=dtype, device=device)
    for form, result in {sample.kwargs["form"]: out, **{f: TRIG_FORMS[f](built) for f in TRIG_FORMS}}.items():
        assert_formula(result, expected[form], dtype, f"{form} of x in radians")


# --- ceil and floor ----------------------------------------------------------------------------

ROUNDING_FORMS = {"x.ceil()": lambda x: x.ceil(), "x.floor()": lambda x: x.floor()}
CEIL_FLOOR = Operation(
    "pointwise.ceil_floor",
    dtypes="real",
    samples=unary(ROUNDING_FORMS),
    call=lambda x, form: ROUNDING_FORMS[form](x),
)


@CEIL_FLOOR.property
def test_ceil_and_floor_are_the_nearest_integers_above_and_below(device, dtype, sample):
    out = CEIL_FLOOR(sample, dtype=dtype, device=device)
    (x,) = sample.args
    a = values64(x, dtype)
    # ceil(-0.5) = -0.0; an integer is its own ceil and floor
    expected = {"x.ceil()": np.ceil(a), "x.floor()": np.floor(a)} if dtype.is_floating_point else dict.fromkeys(ROUNDING_FORMS, a)
    built = x.build(dtype=dtype, device=device)
    for form, result in {sample.kwargs["form"]: out, **{f: ROUNDING_FORMS[f](built) for f in ROUNDING_FORMS}}.items():
        assert result.dtype == dtype, f"{form}: the result's dtype is {result.dtype}, not x's {dtype}"
        assert_ieee_equal(result, expected[form], f"{form}: not the smallest integer >= x / largest integer <= x")
        if not dtype.is_floating_point and built.numel():
            assert result.data_ptr() != built.data_ptr(), f"{form}: an integer input is returned, not a copy"


# --- round -------------------------------------------------------------------------------------


@st.composite
def round_samples(draw, dtype):
    x = draw(whole_domain(), label="x")
    # "it can easily overflow for low precision dtypes": decimals are drawn for float32 and float64
    choices = ["omitted", "0"] + (["given"] if dtype in (torch.float32, torch.float64) else [])
    decimals = draw(st.sampled_from(choices), label="decimals")
    label(f"decimals={decimals}")
    if decimals == "omitted":
        return Sample((x,))
    return Sample((x,), {"decimals": 0 if decimals == "0" else draw(st.integers(-3, 4), label="d")})


ROUND = Operation("pointwise.round_half_even", dtypes="floating", samples=round_samples, call=lambda x, **k: x.round(**k))


@ROUND.property
def test_round_breaks_ties_to_even(device, dtype, sample):
    out = ROUND(sample, dtype=dtype, device=device)
    (x,) = sample.args
    decimals = sample.kwargs.get("decimals", 0)
    assert out.dtype == dtype, f"x.round(): the result's dtype is {out.dtype}, not x's {dtype}"
    if decimals == 0:
        # to the nearest integer, ties to even (round(2.5) is 2, round(-0.5) is -0.0)
        assert_ieee_equal(out, np.rint(values64(x, dtype)), "x.round() is not the nearest integer, ties to even")
    else:
        a = native(x, dtype)
        with errstate():
            expected = np.round(a, decimals)  # NumPy's around in the input's dtype, which the docs liken it to
        assert_formula(out, expected, dtype, f"x.round(decimals={decimals}) is not NumPy's around")
        assert_ieee_equal(
            out, expected, "x.round(decimals=...): NaN, infinities or a zero's sign", where=~np.isfinite(a) | (a == 0)
        )


def _round_integers(x, **k):
    return x, x.round(**k)


ROUND_INTEGERS = Operation(
    "pointwise.round_integers_copy",
    dtypes="integral",
    samples=whole_domain().map(lambda x: Sample((x,))),
    call=_round_integers,
)
# decimals=0 is the documented default: given, the result is the same copy (a known deviation:
# integer inputs raise NotImplementedError on the CPU, see known_deviations.toml)
ROUND_INTEGERS_DECIMALS = Operation(
    "pointwise.round_integers_decimals_zero",
    dtypes="int64",
    samples=whole_domain().map(lambda x: Sample((x,), {"decimals": 0})),
    call=_round_integers,
)


@ROUND_INTEGERS.property
def test_round_copies_integer_input(device, dtype, sample):
    assert_round_copies(*ROUND_INTEGERS(sample, dtype=dtype, device=device), sample, dtype)


@ROUND_INTEGERS_DECIMALS.property
def test_round_with_decimals_zero_copies_integer_input(device, dtype, sample):
    assert_round_copies(*ROUND_INTEGERS_DECIMALS(sample, dtype=dtype, device=device), sample, dtype)


def assert_round_copies(built, out, sample, dtype):
    assert out.dtype == dtype, f"x.round({sample.kwargs}): the result's dtype is {out.dtype}, not x's {dtype}"
    assert_ieee_equal(out, values64(sample.args[0], dtype), f"x.round({sample.kwargs}) of integers is not the input's values")
    if built.numel():
        assert out.data_ptr() != built.data_ptr(), f"x.round({sample.kwargs}): an integer input is returned, not a copy"


# --- clip --------------------------------------------------------------------------------------


def _clip_call(x, form, lo=None, hi=None):
    if form == "x.clip(lo, hi)":
        return x.clip(lo, hi)
    if form == "x.clip(min=lo, max=hi)":
        return x.clip(**({"min": lo} if lo is not None else {}), **({"max": hi} if hi is not None else {}))
    if form == "x.clamp(lo, hi)":
        return x.clamp(lo, hi)
    return torch.clamp(x, lo, hi)


CLIP_FORMS = ["x.clip(lo, hi)", "x.clip(min=lo, max=hi)", "x.clamp(lo, hi)", "torch.clamp(x, lo, hi)"]


@st.composite
def clip_samples(draw, dtype):
    """Sample(x, form, lo=, hi=): bounds both numbers or both tensors (the two overloads), either
    one omitted (None), a lower bound above the upper one included."""
    x = draw(whole_domain(), label="x")
    form = draw(call_forms(dict.fromkeys(CLIP_FORMS)), label="form")
    kind = draw(st.sampled_from(["numbers", "tensors"]), label="kind")
    omitted = draw(st.sampled_from(["none", "min", "max"]), label="omitted")
    label(f"bounds={kind}", f"omitted={omitted}")
    if kind == "numbers":
        # an integral bound the dtype cannot hold has no documented conversion (uint8 holds no negatives)
        number = (
            st.integers(0 if dtype == torch.uint8 else -10, 10)
            if not dtype.is_floating_point
            else st.floats(-10, 10, allow_nan=False)
        )
        lo, hi = draw(number, label="lo"), draw(number, label="hi")
    else:
        # a bound of x's trailing shape broadcasts; NaN bounds have no documented result
        n = draw(st.integers(0, x.ndim), label="trailing")
        lo, hi = (draw(specs(shape=x.shape[n:]), label=name) for name in ("lo", "hi"))
    kwargs = {"lo": None if omitted == "min" else lo, "hi": None if omitted == "max" else hi}
    return Sample((x, form), kwargs)


CLIP = Operation("pointwise.clip_bounds", dtypes="real", samples=clip_samples, call=_clip_call)


@CLIP.property
def test_clip_is_min_of_max(device, dtype, sample):
    out = CLIP(sample, dtype=dtype, device=device)
    x, form = sample.args
    y = values64(x, dtype)
    bounds = {k: (values64(v, dtype) if hasattr(v, "shape") else v) for k, v in sample.kwargs.items()}
    if bounds["lo"] is not None:
        y = np.maximum(y, bounds["lo"])  # NaN propagates (observed)
    if bounds["hi"] is not None:
        y = np.minimum(y, bounds["hi"])  # so where min > max, every element is max
    assert out.dtype == dtype, f"{form}: the result's dtype is {out.dtype}, not x's {dtype}"
    # min and max of -0.0 and 0.0 may be either: zeros compare equal whatever their sign
    assert_ieee_equal(out, y, f"{form}: not min(max(x, min), max) with an omitted bound left out", signed_zeros=False)


# --- div ---------------------------------------------------------------------------------------

DIVISORS = st.one_of(st.sampled_from([0.0, -0.0, 1.0, -1.0, 3.0, 0.1, math.inf, -math.inf, math.nan]), st.floats(-1e3, 1e3))


@st.composite
def div_samples(draw):
    """Sample(x, y, rounding_mode=...): y a tensor (shapes broadcast) or a Python number, the mode
    omitted, None, 'trunc' or 'floor'."""
    shapes = draw(broadcast_operands(2), label="shapes")
    x_shape, y_shape = (s.shape for s in shapes.args)
    domain = {"special_values": True, "extremes": True, "magnitudes": True}
    x = draw(specs(shape=x_shape, **domain), label="x")
    if draw(st.booleans(), label="tensor_divisor"):
        y = draw(specs(shape=y_shape, **domain), label="y")
        label("divisor=tensor")
    else:
        y = draw(DIVISORS, label="y")
        label("divisor=number")
    mode = draw(st.sampled_from(["omitted", None, "trunc", "floor"]), label="mode")
    label(f"rounding_mode={mode}")
    return Sample((x, y), {} if mode == "omitted" else {"rounding_mode": mode})


DIV = Operation("pointwise.div_rounding_modes", dtypes="float32_64", samples=div_samples(), call=lambda x, y, **k: x.div(y, **k))


def numpy_division(a, b, mode):
    """The docs' equivalents: np.true_divide, C-style truncation, np.floor_divide."""
    with errstate():
        if mode is None:
            return np.true_divide(a, b)
        if mode == "trunc":
            return np.trunc(np.true_divide(a, b))
        return np.floor_divide(a, b)


@DIV.property
def test_div_rounds_as_its_rounding_mode_says(device, dtype, sample):
    out = DIV(sample, dtype=dtype, device=device)
    x, y = sample.args
    mode = sample.kwargs.get("rounding_mode")
    b = native(y, dtype) if hasattr(y, "shape") else y  # a Python number, as NumPy takes it
    expected = numpy_division(native(x, dtype), b, mode)
    assert out.dtype == dtype, f"x.div(y, rounding_mode={mode!r}): the result's dtype is {out.dtype}, not x's {dtype}"
    assert_ieee_equal(out, np.asarray(expected), f"x.div(y, rounding_mode={mode!r}) is not NumPy's")


@st.composite
def integer_div_samples(draw, dtype):
    """Sample(x, y, ...) for integral x: integer division by zero has no documented result, and
    int min // -1 overflows: divisors are positive tensors of 1 to 9 or non-zero Python ints (no
    negative ones for uint8, which cannot hold them), x in make_tensor's small range."""
    shapes = draw(broadcast_operands(2), label="shapes")
    x_shape, y_shape = (s.shape for s in shapes.args)
    x = draw(specs(shape=x_shape), label="x")
    if draw(st.booleans(), label="tensor_divisor"):
        y = draw(specs(shape=y_shape, low=1, high=9), label="y")  # non-zero (see the docstring)
        label("divisor=tensor")
    else:
        y = draw(st.integers(1 if dtype == torch.uint8 else -9, 9).filter(bool), label="y")
        label("divisor=number")
    mode = draw(st.sampled_from(["omitted", None, "trunc", "floor"]), label="mode")
    label(f"rounding_mode={mode}")
    return Sample((x, y), {} if mode == "omitted" else {"rounding_mode": mode})


INT_DIV = Operation(
    "pointwise.div_integers", dtypes="integral", samples=integer_div_samples, call=lambda x, y, **k: x.div(y, **k)
)


@INT_DIV.property
def test_integer_div_promotes_or_rounds(device, dtype, sample):
    x, y = sample.args
    b = values64(y, dtype) if hasattr(y, "shape") else np.int64(y)
    out = INT_DIV(sample, dtype=dtype, device=device)
    a = values64(x, dtype)
    mode = sample.kwargs.get("rounding_mode")
    if mode is None:
        assert out.dtype == torch.get_default_dtype(), f"integer x.div(y): dtype {out.dtype}, not the default float dtype"
        assert_ieee_equal(out, a / b, "integer x.div(y) is not true division")
        return
    q = np.abs(a) // np.abs(b) * np.sign(a) * np.sign(b) if mode == "trunc" else a // b  # C-style; Python's //
    assert out.dtype == dtype, f"integer x.div(y, rounding_mode={mode!r}): the result's dtype is {out.dtype}, not x's {dtype}"
    assert_ieee_equal(out, q, f"integer x.div(y, rounding_mode={mode!r}) is not C-style or Python's floor division")


@st.composite
def in_place_div_samples(draw):
    """Sample(x, y, ...): x in a writable layout, y broadcastable to x's shape."""
    x = draw(specs(layouts=WRITABLE_LAYOUTS, special_values=True, extremes=True, magnitudes=True), label="x")  # div_ writes x
    # where the operand's trailing dims start (0: all of x's shape): every broadcastable shape
    n = draw(st.integers(0, x.ndim), label="trailing")
    # y of x's trailing dims broadcasts to x, or a Python number
    number = draw(st.integers(0, 2), label="number") == 0  # a tensor two times in three
    y = draw(DIVISORS if number else specs(shape=x.shape[n:], special_values=True), label="y")
    mode = draw(st.sampled_from(["omitted", None, "trunc", "floor"]), label="mode")
    label(f"rounding_mode={mode}")
    return Sample((x, y), {} if mode == "omitted" else {"rounding_mode": mode})


def _div_in_place(x, y, **k):
    through = x[...]  # another view of x's elements
    x.div_(y, **k)
    return through


DIV_ = Operation("pointwise.div_in_place", dtypes="float32_64", samples=in_place_div_samples(), call=_div_in_place)


@DIV_.property
def test_div_in_place_writes_the_quotient_into_x(device, dtype, sample):
    x, y = sample.args
    built, divisor = (a.build(dtype=dtype, device=device) if hasattr(a, "shape") else a for a in sample.args)
    through, version = built[...], built._version
    returned = built.div_(divisor, **sample.kwargs)
    assert returned is built, "x.div_(y) does not return x"
    assert built._version > version, "x.div_(y) did not bump x's version counter"
    mode = sample.kwargs.get("rounding_mode")
    expected = numpy_division(native(x, dtype), native(y, dtype) if hasattr(y, "shape") else y, mode)
    assert_ieee_equal(through, np.broadcast_to(expected, x.shape), f"x.div_(y, rounding_mode={mode!r}) seen through another view")
    assert_same_storage(through, built, "the view")
    seen = DIV_(sample, dtype=dtype, device=device)
    assert_ieee_equal(seen, np.broadcast_to(expected, x.shape), "the declared call's view")


# --- mul ---------------------------------------------------------------------------------------

EXACT_NUMBERS = st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.0, 0.5, -3.0, 1.25, 1024.0, math.inf, -math.inf, math.nan])


@st.composite
def mul_samples(draw):
    shapes = draw(broadcast_operands(2), label="shapes")
    x, y = (draw(specs(shape=s.shape, special_values=True, extremes=True, magnitudes=True)) for s in shapes.args)
    if draw(st.booleans(), label="number"):
        # a Python number every floating dtype holds exactly: how a number that is not is rounded
        # first is not documented
        label("other=number")
        return Sample((x, draw(EXACT_NUMBERS, label="other")))
    label("other=tensor")
    return Sample((x, y))


MUL = Operation("pointwise.mul_exact", dtypes="floating", samples=mul_samples(), call=lambda x, y: x.mul(y))


@MUL.property
def test_mul_is_the_product_rounded_once(device, dtype, sample):
    out = MUL(sample, dtype=dtype, device=device)
    x, y = sample.args
    with errstate():
        a, b = values64(x, dtype), (values64(y, dtype) if hasattr(y, "shape") else y)
        expected = native(x, dtype) * native(y, dtype) if dtype == torch.float64 and hasattr(y, "shape") else a * b
    assert out.dtype == dtype, f"x.mul(y): the result's dtype is {out.dtype}, not x's {dtype}"
    # the product of two narrower floats is exact in float64: rounding it once is IEEE's product
    assert_ieee_equal(out, np.asarray(expected), "x.mul(y) is not input_i * other_i rounded once")


# --- eq ----------------------------------------------------------------------------------------


@st.composite
def eq_samples(draw):
    x = draw(whole_domain(), label="x")
    case = draw(st.sampled_from(["itself", "tensor", "number"]), label="case")
    label(f"other={case}")
    if case == "itself":
        return Sample((x, x))  # the same values: equal except where NaN
    if case == "number":
        return Sample((x, draw(st.one_of(st.integers(-9, 9), EXACT_NUMBERS), label="other")))
    # where the operand's trailing dims start (0: all of x's shape): every broadcastable shape
    n = draw(st.integers(0, x.ndim), label="trailing")
    return Sample((x, draw(specs(shape=x.shape[n:], special_values=True), label="other")))


EQ = Operation("pointwise.eq_elementwise", dtypes="representative", samples=eq_samples(), call=lambda x, y: x.eq(y))


@EQ.property
def test_eq_is_elementwise_equality(device, dtype, sample):
    out = EQ(sample, dtype=dtype, device=device)
    x, y = sample.args
    a = values64(x, dtype)
    b = values64(y, dtype) if hasattr(y, "shape") else y  # every number drawn is exact in every dtype
    with errstate():
        expected = np.equal(a, b)  # NaN equals nothing, -0.0 equals 0.0
    assert out.dtype == torch.bool, f"x.eq(y): dtype {out.dtype}, not torch.bool"
    assert_ieee_equal(out, np.asarray(expected), "x.eq(y) is not True exactly where x == y")


# --- isnan and isfinite ------------------------------------------------------------------------

CLASSIFY = Operation(
    "pointwise.isnan_isfinite",
    dtypes="representative",
    samples=whole_domain().map(lambda x: Sample((x,))),
    call=lambda x: (torch.isnan(x), torch.isfinite(x)),
)


@CLASSIFY.property
def test_isnan_and_isfinite_classify_ieee_specials(device, dtype, sample):
    nan, finite = CLASSIFY(sample, dtype=dtype, device=device)
    a = native(sample.args[0], dtype)
    # a complex value is NaN if either part is, finite if both parts are; integers are all finite
    expected_nan = np.isnan(a.real) | np.isnan(a.imag) if a.dtype.kind == "c" else np.isnan(a.astype(np.float64))
    expected_finite = np.isfinite(a.real) & np.isfinite(a.imag) if a.dtype.kind == "c" else np.isfinite(a.astype(np.float64))
    outcomes = [("torch.isnan", nan, expected_nan), ("torch.isfinite", finite, expected_finite)]
    if dtype.is_complex:
        # the drawn specials sit in the real part: the same values with the parts swapped put them
        # in the imaginary part, and classify the same
        built = sample.args[0].build(dtype=dtype, device=device)
        swapped = torch.complex(built.imag, built.real)
        outcomes += [
            ("torch.isnan", torch.isnan(swapped), expected_nan),
            ("torch.isfinite", torch.isfinite(swapped), expected_finite),
        ]
    for name, out, expected in outcomes:
        assert out.dtype == torch.bool, f"{name}(x): dtype {out.dtype}, not torch.bool"
        assert_ieee_equal(out, expected, f"{name}(x) does not classify the elements")


# --- softplus and logsigmoid -------------------------------------------------------------------


@st.composite
def softplus_samples(draw):
    x = draw(whole_domain(), label="x")
    kwargs = {}
    if draw(st.booleans(), label="beta_given"):
        kwargs["beta"] = draw(st.sampled_from([0.5, 1.0, 2.0, 10.0]), label="beta")
    if draw(st.booleans(), label="threshold_given"):
        kwargs["threshold"] = draw(st.sampled_from([1.0, 5.0, 20.0]), label="threshold")
    label(*(f"{k}=given" for k in kwargs))
    return Sample((x,), kwargs)


SOFTPLUS = Operation(
    "pointwise.softplus_formula", dtypes="floating", samples=softplus_samples(), call=lambda x, **k: F.softplus(x, **k)
)


@SOFTPLUS.property
def test_softplus_is_log_one_plus_exp_until_the_threshold(device, dtype, sample):
    out = SOFTPLUS(sample, dtype=dtype, device=device)
    beta, threshold = sample.kwargs.get("beta", 1.0), sample.kwargs.get("threshold", 20.0)  # the documented defaults
    a = values64(sample.args[0], dtype)
    with errstate():
        formula = np.logaddexp(0, beta * a) / beta  # 1/beta * log(1 + exp(beta * x)), without overflow
        expected = np.where(a * beta > threshold, a, formula)  # "reverts to the linear function"
    assert_formula(out, expected, dtype, f"F.softplus(x, {sample.kwargs}) is not 1/beta * log(1 + exp(beta x))")
    linear = a * beta > threshold
    assert_ieee_equal(out, a, "F.softplus(x) is not x above the threshold", where=linear)


LOGSIGMOID = Operation(
    "pointwise.logsigmoid_formula",
    dtypes="floating",
    samples=whole_domain().map(lambda x: Sample((x,))),
    call=lambda x: F.logsigmoid(x),
)


@LOGSIGMOID.property
def test_logsigmoid_is_log_of_sigmoid(device, dtype, sample):
    out = LOGSIGMOID(sample, dtype=dtype, device=device)
    with errstate():
        expected = -np.logaddexp(0, -values64(sample.args[0], dtype))  # log(1 / (1 + exp(-x))), without overflow
    assert_formula(out, expected, dtype, "F.logsigmoid(x) is not log(1 / (1 + exp(-x)))")


# --- LeakyReLU and SiLU ------------------------------------------------------------------------


@st.composite
def leaky_samples(draw):
    x = draw(whole_domain(), label="x")
    if draw(st.booleans(), label="slope_given"):
        label("negative_slope=given")
        return Sample((x,), {"negative_slope": draw(st.sampled_from([0.0, 0.1, 0.2, 1.0, 3.0]), label="slope")})
    label("negative_slope=omitted")
    return Sample((x,))


LEAKY = Operation(
    "pointwise.leaky_relu_module", dtypes="floating", samples=leaky_samples(), call=lambda x, **k: torch.nn.LeakyReLU(**k)(x)
)


@LEAKY.property
def test_leaky_relu_keeps_positives_and_scales_negatives(device, dtype, sample):
    out = LEAKY(sample, dtype=dtype, device=device)
    slope = sample.kwargs.get("negative_slope", 1e-2)  # the documented default
    a = values64(sample.args[0], dtype)
    with errstate():
        expected = np.where(a >= 0, a, slope * a)  # max(0, x) + negative_slope * min(0, x), NaN kept
    assert_formula(out, expected, dtype, f"nn.LeakyReLU({sample.kwargs})(x) is not max(0, x) + slope * min(0, x)")
    assert_ieee_equal(out, a, "nn.LeakyReLU: a non-negative x is not returned as it is", where=a >= 0)


SILU = Operation(
    "pointwise.silu_module",
    dtypes="floating",
    samples=whole_domain().map(lambda x: Sample((x,))),
    call=lambda x: torch.nn.SiLU()(x),
)


@SILU.property
def test_silu_is_x_times_sigmoid(device, dtype, sample):
    x = sample.args[0].build(dtype=dtype, device=device)
    out = torch.nn.SiLU()(x)
    a = values64(sample.args[0], dtype)
    # nn.SiLU(inplace=False): the default leaves x as it was
    assert_ieee_equal(x, a, "nn.SiLU()(x) changed x: inplace is not False by default")
    out = SILU(sample, dtype=dtype, device=device)
    with errstate():
        expected = a * (1 / (1 + np.exp(-a)))  # x * sigma(x), as IEEE evaluates it (-inf * 0 is NaN)
    assert_formula(out, expected, dtype, "nn.SiLU()(x) is not x * sigmoid(x)")


# --- addcmul_ ----------------------------------------------------------------------------------


@st.composite
def addcmul_samples(draw):
    """Sample(x, t1, t2[, value=]): x writable, t1 and t2 of x's trailing shapes (broadcast to it)."""
    x = draw(specs(layouts=WRITABLE_LAYOUTS, special_values=True, magnitudes=True), label="x")  # addcmul_ writes x
    # where the operand's trailing dims start (0: all of x's shape): every broadcastable shape
    t1, t2 = (draw(specs(shape=x.shape[draw(st.integers(0, x.ndim)) :], magnitudes=True), label=n) for n in ("t1", "t2"))
    if draw(st.booleans(), label="value_given"):
        label("value=given")
        return Sample((x, t1, t2), {"value": draw(st.sampled_from([0.0, -1.0, 0.5, 2.0, 1e-3]), label="value")})
    label("value=omitted")
    return Sample((x, t1, t2))


def _addcmul_in_place(x, t1, t2, **k):
    through = x[...]  # another view of x's elements
    x.addcmul_(t1, t2, **k)
    return through


ADDCMUL_ = Operation("pointwise.addcmul_in_place", dtypes="float32_64", samples=addcmul_samples(), call=_addcmul_in_place)


@ADDCMUL_.property
def test_addcmul_in_place_adds_value_times_the_product(device, dtype, sample):
    x, t1, t2 = sample.args
    built, b1, b2 = (a.build(dtype=dtype, device=device) for a in sample.args)
    through, version = built[...], built._version
    returned = built.addcmul_(b1, b2, **sample.kwargs)
    assert returned is built, "x.addcmul_(t1, t2) does not return x"
    assert built._version > version, "x.addcmul_(t1, t2) did not bump x's version counter"
    value = sample.kwargs.get("value", 1)  # the documented default
    s, p1, p2 = (values64(a, dtype) for a in sample.args)
    with errstate():
        product = value * p1 * p2
        expected = np.broadcast_to(s + product, x.shape)
        scale = np.broadcast_to(np.abs(s) + np.abs(product), x.shape)
    what = f"x.addcmul_(t1, t2, {sample.kwargs}) seen through another view is not x + value * t1 * t2"
    assert_within_roundings(through, expected, scale, dtype, what)
    assert_same_storage(through, built, "the view")
    seen = ADDCMUL_(sample, dtype=dtype, device=device)
    assert_within_roundings(seen, expected, scale, dtype, "the declared call's view: " + what)


def assert_within_roundings(out, expected, scale, dtype, what):
    """`out` is `expected` up to three roundings (the product, the scaling, the sum), each within
    the dtype's eps of the operands' size `scale`; NaN and infinities where `expected` has them."""
    got = independent_array(out.detach().cpu()).astype(np.float64)
    bound = 4 * torch.finfo(dtype).eps * scale + torch.finfo(dtype).tiny
    with errstate():
        wrong = ~((np.abs(got - expected) <= bound) | (got == expected) | (np.isnan(got) & np.isnan(expected)))
    assert not wrong.any(), f"{what}: got {got[wrong][:3]}, expected {expected[wrong][:3]}"


# --- byte --------------------------------------------------------------------------------------


def byte_samples(dtype):
    # a floating value outside [0, 256) has no defined conversion to uint8 (C++'s rules); every
    # integer converts modulo 256
    x = specs(low=0, high=255, extremes=False) if dtype.is_floating_point else specs(extremes=True)
    return x.map(lambda spec: Sample((spec,)))


BYTE = Operation("pointwise.byte_is_uint8", dtypes="real", samples=byte_samples, call=lambda x: x.byte())


@BYTE.property
def test_byte_converts_to_uint8(device, dtype, sample):
    out = BYTE(sample, dtype=dtype, device=device)
    a = values64(sample.args[0], dtype)
    expected = (np.trunc(a) if dtype.is_floating_point else a % 256).astype(np.uint8)  # toward zero; modulo 2^8
    assert out.dtype == torch.uint8, f"x.byte(): dtype {out.dtype}, not torch.uint8"
    x = sample.args[0].build(dtype=dtype, device=device)
    converted = x.byte()
    if dtype == torch.uint8:
        assert converted is x, "x.byte() of a uint8 x is not x itself, as x.to(torch.uint8) is"
    elif x.numel() == 0 or dense_non_overlapping(x.shape, x.stride()):
        # memory_format=torch.preserve_format: a dense input's strides are copied
        assert converted.stride() == x.stride(), f"x.byte() strides {converted.stride()}, not x's {x.stride()}"
    assert_ieee_equal(out, expected, "x.byte() is not x.to(torch.uint8): truncated, or modulo 256")


# --- is_floating_point and equal ---------------------------------------------------------------

FLOATING_FORMS = {
    "torch.is_floating_point(x)": lambda x: torch.is_floating_point(x),
    "x.is_floating_point()": lambda x: x.is_floating_point(),
}
IS_FLOATING = Operation(
    "pointwise.is_floating_point",
    dtypes="all",
    samples=specs().flatmap(lambda x: call_forms(FLOATING_FORMS).map(lambda f: Sample((x,), {"form": f}))),
    call=lambda x, form: FLOATING_FORMS[form](x),
    not_compiled="Dynamo answers a dtype query while tracing: the compiled function holds no graph to compare",
)


@IS_FLOATING.property
def test_is_floating_point_names_the_four_floating_dtypes(device, dtype, sample):
    drawn = IS_FLOATING(sample, dtype=dtype, device=device)
    built = sample.args[0].build(dtype=dtype, device=device)
    expected = dtype in (torch.float64, torch.float32, torch.float16, torch.bfloat16)  # the docs' list
    for form, result in {sample.kwargs["form"]: drawn, **{f: FLOATING_FORMS[f](built) for f in FLOATING_FORMS}}.items():
        assert result is expected, f"{form} is {result!r} for {dtype}: not True exactly for the four floating dtypes"


@st.composite
def equal_samples(draw):
    x = draw(whole_domain(), label="x")
    cases = ["itself", "itself with a NaN", "another dtype", "one element changed", "another shape"]
    case = draw(st.sampled_from(cases), label="case")
    label(f"other={case}")
    if case == "itself":
        return Sample((x, x))
    if case == "itself with a NaN":  # NaN is never equal, not even to itself (floating dtypes only)
        # at least one element, to hold the NaN
        x = draw(specs(shapes=shapes(min_dims=1, min_side=1), magnitudes=True), label="x with a NaN")
        x = dataclasses.replace(x, specials=((draw(st.integers(0, 2**16), label="nan at"), "nan"),))
        return Sample((x, x))
    if case == "another dtype":
        return Sample((x, Arg(x, dtype=torch.float64)))  # the same values, exactly, in float64 (but int64's largest)
    if case == "one element changed":
        at = draw(st.integers(0, 2**16), label="at")
        return Sample((x, dataclasses.replace(x, extremes=(*x.extremes, (at, "max")))))
    return Sample((x, draw(whole_domain(), label="other")))


EQUAL = Operation(
    "pointwise.equal_sizes_and_elements",
    dtypes="representative",
    samples=equal_samples(),
    call=lambda x, y: torch.equal(x, y),
    not_compiled="torch.equal returns a Python bool read from the values: Dynamo breaks the graph there and "
    "runs it eagerly, so no graph is compiled",
)


@EQUAL.property
def test_equal_is_same_size_and_elements(device, dtype, sample):
    result = EQUAL(sample, dtype=dtype, device=device)
    x, y = sample.args
    a = native(x, dtype)
    b = native(y.spec, y.dtype) if isinstance(y, Arg) else native(y, dtype)
    expected = bool(np.array_equal(a, b))  # the same shape and elements; NaN is never equal; dtypes not compared
    assert result is expected, f"torch.equal(x, y) is {result!r}: the sizes or elements say {expected}"
