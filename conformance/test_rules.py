"""The rules under every operation: type promotion, broadcasting, in-place casting and shapes,
and autograd's check of tensors modified after they were saved."""

import functools
import math
import operator
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conformance.checks import independent_array
from strategies import DTYPE_GROUPS, specs, supported_on
from strategies.shapes import shapes
from strategies.tensors import WRITABLE_LAYOUTS

# The dtypes the promotion rules are stated for; the wide unsigned ones have too few kernels
# for arithmetic, and complex32 is a limited-support dtype (tensor attributes page).
PROMOTED = DTYPE_GROUPS["all"]
BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
SCALAR_OF_CATEGORY = {0: True, 1: 1, 2: 1.0, 3: 1 + 0j}  # the Python number of each category


def promoted_dtypes(device) -> list[torch.dtype]:
    return [d for d in PROMOTED if supported_on(torch.device(device).type, d)]


# ---- an oracle for result dtypes, written from the tensor attributes page -------------------


def category(dtype: torch.dtype) -> int:
    """boolean < integral < floating < complex: the page's order of categories."""
    if dtype == torch.bool:
        return 0
    return 3 if dtype.is_complex else 2 if dtype.is_floating_point else 1


_BITS = {torch.uint8: 8, torch.int8: 8, torch.int16: 16, torch.int32: 32, torch.int64: 64}
_FLOAT_BITS = {torch.float16: 16, torch.bfloat16: 16, torch.float32: 32, torch.float64: 64}


def smallest_holding(a: torch.dtype, b: torch.dtype) -> torch.dtype:
    """The smallest dtype of one category that holds every value of `a` and of `b` (same category)."""
    if a == b:
        return a
    c = category(a)
    if c == 1:
        if {a, b} == {torch.uint8, torch.int8}:
            return torch.int16
        if torch.uint8 in (a, b):  # uint8 and a wider signed type: the signed type holds both
            return a if b == torch.uint8 else b
        return a if _BITS[a] >= _BITS[b] else b
    if c == 2:
        if {a, b} == {torch.float16, torch.bfloat16}:  # neither holds the other: float32 holds both
            return torch.float32
        return a if _FLOAT_BITS[a] >= _FLOAT_BITS[b] else b
    return a if a.itemsize >= b.itemsize else b  # complex: the wider one


def python_scalar_dtype(value) -> torch.dtype:
    """ "A floating point scalar operand has dtype torch.get_default_dtype() and an integral
    non-boolean scalar operand has dtype torch.int64"; complex ones the default complex dtype."""
    if isinstance(value, bool):
        return torch.bool
    if isinstance(value, int):
        return torch.int64
    if isinstance(value, float):
        return torch.get_default_dtype()
    return {torch.float32: torch.complex64, torch.float64: torch.complex128}[torch.get_default_dtype()]


def expected_result_dtype(operands) -> tuple[torch.dtype, bool]:
    """operands: (kind, dtype) with kind "dimensioned", "zero-dim" or "scalar". Returns the
    documented result dtype and whether the case is one where torch keeps the precision of a
    lower-category floating operand (complex over floating, see the catalogue's statement)."""
    top = max(category(d) for _, d in operands)
    for kind in ("dimensioned", "zero-dim", "scalar"):  # "dimensioned over zero-dim over scalars"
        group = [d for k, d in operands if k == kind and category(d) == top]
        if group:
            result = functools.reduce(smallest_holding, group)
            # a floating operand deciding first or alongside (float64 with complex64 gives complex128)
            floating_alongside = [d for k, d in operands if category(d) == 2 and _rank(k) <= _rank(kind)]
            return result, top == 3 and bool(floating_alongside)
    raise AssertionError("no operand")


def _rank(kind: str) -> int:
    return ("dimensioned", "zero-dim", "scalar").index(kind)


KINDS = ("dimensioned", "zero-dim", "scalar")
KIND_PAIRS = [(a, b) for a in KINDS for b in KINDS if (a, b) != ("scalar", "scalar")]


def build_operand(kind, dtype, shape, device):
    # Ones, not drawn values: "Unlike numpy, we do not inspect values when determining the minimum
    # dtypes of an operand", so the result dtype depends on kinds and dtypes alone.
    if kind == "scalar":
        return SCALAR_OF_CATEGORY[category(dtype)]
    return torch.ones(shape if kind == "dimensioned" else (), dtype=dtype, device=device)


@pytest.mark.behaviour("rules.type_promotion")
@given(data=st.data())
def test_binary_arithmetic_promotes_as_documented(device, data, record_observation):
    supported = promoted_dtypes(device)
    # one draw from all ordered pairs: two independent draws would repeat one dtype far too often
    dtypes = data.draw(st.sampled_from([(a, b) for a in supported for b in supported]), label="dtypes")
    shape = data.draw(shapes(min_dims=1, max_dims=2, min_side=1, max_side=3), label="shape")
    # every kind of operand pair and every operator for the drawn dtypes: the rules are about the
    # kinds as much as the dtypes
    for kinds in KIND_PAIRS:
        operands = [(k, as_operand_dtype(k, d)) for k, d in zip(kinds, dtypes)]
        for op in BINARY:
            check_promotion(operands, op, shape, device, record_observation)


def as_operand_dtype(kind: str, dtype: torch.dtype) -> torch.dtype:
    """A Python number stands for its category: its dtype is the documented one of that category."""
    return python_scalar_dtype(SCALAR_OF_CATEGORY[category(dtype)]) if kind == "scalar" else dtype


def check_promotion(operands, op, shape, device, record_observation):
    values = [build_operand(k, d, shape, device) for k, d in operands]
    if op == "-" and torch.bool in [d for _, d in operands]:
        with pytest.raises(RuntimeError, match="bool"):  # "Subtraction ... with a bool tensor is not supported"
            BINARY[op](*values)
        return
    expected, keeps_precision = expected_result_dtype(operands)
    if keeps_precision:  # complex over a floating operand: only the category is documented
        # (the op itself is not run: complex32, which float16 can lead to, lacks most kernels)
        result_type = torch.result_type(*values)
        assert category(result_type) == 3, f"{operands}: {result_type} is not complex"
        record_observation("complex over a floating operand", f"{operands} -> {result_type}")
        return
    result = BINARY[op](*values)
    if op == "/" and category(expected) < 2:  # torch.div: "Always promotes integer types to the default scalar type"
        expected = torch.get_default_dtype()
    assert result.dtype == expected, f"{operands} {op}: got {result.dtype}, documented {expected}"
    assert result.dtype == torch.result_type(*values) or op == "/", "torch.result_type disagrees with the operator"


@pytest.mark.behaviour("rules.inplace_casting")
@given(data=st.data(), op=st.sampled_from(["+", "*"]))
def test_in_place_results_never_cast_to_a_lower_category(device, data, op):
    supported = promoted_dtypes(device)
    out_dtype, other_dtype = (data.draw(st.sampled_from(supported), label=k) for k in ("self", "other"))
    shape = data.draw(shapes(max_dims=2, max_side=3), label="shape")
    t = torch.ones(shape, dtype=out_dtype, device=device)
    other = torch.ones(shape, dtype=other_dtype, device=device)
    result = smallest_holding_across(out_dtype, other_dtype)
    # "An integral output tensor cannot accept a floating point tensor. A boolean output tensor
    # cannot accept a non-boolean tensor. A non-complex output tensor cannot accept a complex tensor"
    refused = category(result) > category(out_dtype)
    in_place = {"+": t.add_, "*": t.mul_}[op]
    if refused:
        with pytest.raises(RuntimeError, match="can't be cast"):
            in_place(other)
    else:
        assert in_place(other) is t and t.dtype == out_dtype


def smallest_holding_across(a: torch.dtype, b: torch.dtype) -> torch.dtype:
    """Promotion of two dimensioned operands: the higher category wins, then the smallest holding."""
    return expected_result_dtype([("dimensioned", a), ("dimensioned", b)])[0]


# ---- broadcasting ------------------------------------------------------------------------------


def broadcast_shape(a: tuple, b: tuple) -> tuple | None:
    """The broadcasting notes' rule: align trailing dimensions; each pair is equal, or one is 1
    (or missing). None when the shapes do not broadcast."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x != y and 1 not in (x, y):
            return None
        out.append(y if x == 1 else x)
    return tuple(reversed(out))


@st.composite
def shape_pairs(draw):
    """Pairs that broadcast (from mutually_broadcastable_shapes) and arbitrary pairs, most of which do not."""
    if draw(st.booleans(), label="broadcastable"):
        drawn = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, min_side=0, max_side=3), label="shapes")
        return drawn.input_shapes
    return tuple(draw(shapes(max_dims=4, max_side=3), label=f"shape_{i}") for i in range(2))


@pytest.mark.behaviour("rules.broadcasting")
@pytest.mark.dtypes("representative")
@given(pair=shape_pairs(), data=st.data())
def test_binary_ops_broadcast_by_the_documented_rule(device, dtype, pair, data):
    a_shape, b_shape = pair
    a_spec = data.draw(specs(shape=a_shape, layouts=WRITABLE_LAYOUTS), label="a")  # a is written in place below
    b_spec = data.draw(specs(shape=b_shape), label="b")
    a, b = a_spec.build(dtype=dtype, device=device), b_spec.build(dtype=dtype, device=device)
    expected = broadcast_shape(a_shape, b_shape)
    op = torch.logical_xor if dtype == torch.bool else torch.add
    if expected is None:
        with pytest.raises(RuntimeError):
            op(a, b)
        return
    out = op(a, b)
    assert tuple(out.shape) == expected
    ref = np.logical_xor if dtype == torch.bool else np.add
    a_np, b_np = independent_array(a_spec.logical_values(dtype)), independent_array(b_spec.logical_values(dtype))
    np.testing.assert_allclose(
        independent_array(out.cpu()).astype(np.complex128), ref(a_np, b_np).astype(np.complex128), rtol=1e-2, atol=1e-2
    )
    # in place, self cannot change shape: allowed exactly when the broadcast shape is self's
    in_place = a.logical_xor_ if dtype == torch.bool else a.add_
    if expected == tuple(a_shape):
        assert in_place(b) is a
    else:
        with pytest.raises(RuntimeError):
            in_place(b)


# ---- autograd's in-place correctness check ---------------------------------------------------


SAVING = {
    # operation -> what it saves for backward, so an in-place change of that tensor must be caught
    "exp (saves its result)": (lambda x: x.exp(), "result"),
    "x * x (saves its inputs)": (lambda x: x * x, "input"),
    "sin (saves its input)": (lambda x: x.sin(), "input"),
}


@pytest.mark.behaviour("rules.saved_tensor_modified")
@pytest.mark.dtypes("float32_64")
@given(x=specs(), op=st.sampled_from(sorted(SAVING)), modify=st.sampled_from(["add_", "mul_", "zero_"]))
def test_backward_raises_when_a_saved_tensor_was_modified_in_place(device, dtype, x, op, modify):
    leaf = x.build(dtype=dtype, device=device, requires_grad=True)
    source = leaf * 1  # a non-leaf, so it may be modified in place
    function, saved = SAVING[op]
    out = function(source)
    target = out if saved == "result" else source
    before = target._version
    getattr(target, modify)(*(() if modify == "zero_" else (2,)))
    assert target._version > before, "an in-place operation did not bump the version counter"
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


@pytest.mark.behaviour("rules.out_argument")
@pytest.mark.dtypes("float32_64")
@given(pair=shape_pairs(), data=st.data())
def test_out_is_written_resized_cast_or_refused_as_documented(device, dtype, pair, data):
    result_shape = broadcast_shape(*pair)
    if result_shape is None:
        return
    a, b = (data.draw(specs(shape=s), label=n).build(dtype=dtype, device=device) for n, s in zip("ab", pair))
    out = torch.empty(result_shape, dtype=dtype, device=device)
    assert torch.add(a, b, out=out) is out  # written and returned
    np.testing.assert_array_equal(independent_array(out.cpu()), independent_array((a + b).cpu()))
    empty = torch.empty(0, dtype=dtype, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty out is resized silently
        torch.add(a, b, out=empty)
    assert tuple(empty.shape) == result_shape
    if math.prod(result_shape) and result_shape != (1,):
        wrong = torch.empty(1, dtype=dtype, device=device)  # non-empty, wrong shape: resized with a warning
        with pytest.warns(UserWarning, match="resized"):
            torch.add(a, b, out=wrong)
        assert tuple(wrong.shape) == result_shape
    with pytest.raises(RuntimeError, match="can't be cast"):  # an integral out cannot accept a floating result
        torch.add(a, b, out=torch.empty(result_shape, dtype=torch.int64, device=device))
    with pytest.raises(RuntimeError, match="automatic differentiation"):
        torch.add(a.detach().requires_grad_(), b, out=torch.empty(result_shape, dtype=dtype, device=device))


# ---- division and rounding -----------------------------------------------------------------------

ROUNDING = {
    # torch call (looked up when it runs, as declarations do) -> NumPy's function with the documented meaning
    "div": (lambda a, b: torch.div(a, b), lambda a, b: np.true_divide(a, b)),
    "div floor": (lambda a, b: torch.div(a, b, rounding_mode="floor"), lambda a, b: np.floor_divide(a, b)),
    "div trunc": (lambda a, b: torch.div(a, b, rounding_mode="trunc"), lambda a, b: np.trunc(np.true_divide(a, b))),
    "remainder": (lambda a, b: torch.remainder(a, b), np.remainder),  # the sign of the divisor
    "fmod": (lambda a, b: torch.fmod(a, b), np.fmod),  # the sign of the dividend
}


@pytest.mark.behaviour("rules.division_and_rounding")
@pytest.mark.dtypes("float32_64")
@given(
    values=st.lists(st.tuples(st.integers(-50, 50), st.integers(-9, 9).filter(bool)), min_size=1, max_size=12),
    integral=st.booleans(),
)
def test_division_modes_and_remainders_follow_their_documented_signs(device, dtype, values, integral):
    kind = torch.int64 if integral else dtype
    a = torch.tensor([v for v, _ in values], dtype=kind, device=device)
    b = torch.tensor([d for _, d in values], dtype=kind, device=device)
    a_np, b_np = (np.array([p[i] for p in values], dtype=np.int64 if integral else np.float64) for i in (0, 1))
    for name, (ours, reference) in ROUNDING.items():
        out = ours(a, b)
        expected_dtype = torch.get_default_dtype() if name == "div" and integral else kind  # true division promotes
        assert out.dtype == expected_dtype, f"{name}: {out.dtype}"
        np.testing.assert_allclose(
            independent_array(out.cpu()).astype(np.float64), reference(a_np, b_np), rtol=1e-6, err_msg=name
        )
    halves = torch.tensor([v + 0.5 for v, _ in values], dtype=dtype, device=device)
    np.testing.assert_array_equal(independent_array(torch.round(halves).cpu()), np.round(np.array([v + 0.5 for v, _ in values])))
    if integral and device == "cpu":  # integer division by zero on the CPU raises ("ZeroDivisionError")
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            torch.div(a, torch.zeros_like(b), rounding_mode="floor")
