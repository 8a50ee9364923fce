"""The rules under every operation: type promotion, broadcasting, in-place casting and shapes,
and autograd's check of tensors modified after they were saved."""

import functools
import math
import operator
import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conformance.checks import independent_array
from conformance.harness.declaration import Operation
from strategies import DTYPE_GROUPS, specs, supported_on
from strategies.samples import ITEM_DEVICE, ITEM_DTYPE, Arg, Sample
from strategies.shapes import shapes
from strategies.tensors import WRITABLE_LAYOUTS, TensorSpec

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
# the four operators as torch calls, looked up when they run (a Python number may come first)
ARITHMETIC = {
    "+": lambda a, b: torch.add(a, b),
    "-": lambda a, b: torch.sub(a, b),
    "*": lambda a, b: torch.mul(a, b),
    "/": lambda a, b: torch.div(a, b),
}


def as_operand_dtype(kind: str, dtype: torch.dtype) -> torch.dtype:
    """A Python number stands for its category: its dtype is the documented one of that category."""
    return python_scalar_dtype(SCALAR_OF_CATEGORY[category(dtype)]) if kind == "scalar" else dtype


def operand(kind: str, dtype: torch.dtype, spec, item_dtype: torch.dtype):
    """The Sample argument of one operand: a Python number of the dtype's category, or a tensor
    (the item's dtype as a plain spec, another as an Arg)."""
    if kind == "scalar":
        return SCALAR_OF_CATEGORY[category(dtype)]
    return spec if dtype == item_dtype else Arg(spec, dtype=dtype)


@st.composite
def promotion_operands(draw, item_dtype: torch.dtype) -> Sample:
    """Sample(a, b, op): the item's dtype and one drawn from every dtype, as any pair of operand
    kinds (dimensioned, zero-dim, Python number; not two numbers), under one of + - * /. Values
    are drawn, but "we do not inspect values when determining the minimum dtypes of an operand"."""
    other = draw(st.sampled_from(PROMOTED), label="other_dtype")
    first = draw(st.booleans(), label="item_dtype_first")
    dtypes = (item_dtype, other) if first else (other, item_dtype)
    kinds = draw(st.sampled_from(KIND_PAIRS), label="kinds")
    shape = draw(shapes(min_dims=1, max_dims=2, min_side=1, max_side=3), label="shape")  # dimensioned: one shape for both
    args = []
    for i, (kind, dtype) in enumerate(zip(kinds, dtypes)):
        spec = draw(specs(shape=shape if kind == "dimensioned" else ()), label=f"operand_{i}")
        args.append(operand(kind, dtype, spec, item_dtype))
    sample = Sample((*args, draw(st.sampled_from(sorted(ARITHMETIC)), label="op")))
    # complex32 is a limited-support dtype ("not all operators support it"): the CPU has no
    # division kernel for it, so a division whose result is complex32 is no rule of promotion
    # a device could agree on; its dtype is still checked, through torch.result_type, below
    operands = operand_kinds(sample, item_dtype)
    complex32 = any(d == torch.float16 for _, d in operands) and expected_result_dtype(operands)[1]
    assume(not (sample.args[2] == "/" and complex32))
    return sample


def operand_kinds(sample: Sample, item_dtype: torch.dtype) -> list[tuple[str, torch.dtype]]:
    """(kind, dtype) of the sample's two operands, read from the sample, not from torch."""
    found = []
    for a in sample.args[:2]:
        if isinstance(a, (bool, int, float, complex)):
            found.append(("scalar", python_scalar_dtype(a)))
        else:
            spec, dtype = (a.spec, a.dtype) if isinstance(a, Arg) else (a, item_dtype)
            found.append(("dimensioned" if spec.ndim else "zero-dim", dtype))
    return found


PROMOTION = Operation(
    "rules.type_promotion",
    dtypes="all",
    samples=promotion_operands,
    call=lambda a, b, op: ARITHMETIC[op](a, b),
)


@PROMOTION.property
def test_binary_arithmetic_promotes_as_documented(device, dtype, sample, record_observation):
    assume(all(supported_on(torch.device(device).type, d) for _, d in operand_kinds(sample, dtype)))
    a, b, _ = sample.args
    for op in ARITHMETIC:  # every operator on the drawn operands: the rules are the same for each
        check_promotion(Sample((a, b, op)), dtype, device, record_observation)


def check_promotion(sample, item_dtype, device, record_observation):
    operands = operand_kinds(sample, item_dtype)
    op = sample.args[2]
    if op == "-" and torch.bool in [d for _, d in operands]:
        with pytest.raises(RuntimeError, match="Subtraction, the `-` operator, with"):  # (observed message)
            PROMOTION(sample, dtype=item_dtype, device=device)
        return
    expected, keeps_precision = expected_result_dtype(operands)
    if keeps_precision:  # complex over a floating operand: only the category is documented
        # (the op itself is not run: complex32, which float16 can lead to, lacks most kernels)
        values, _ = sample.build(dtype=item_dtype, device=device)
        result_type = torch.result_type(*values[:2])
        assert category(result_type) == 3, f"{operands}: {result_type} is not complex"
        record_observation("complex over a floating operand", f"{operands} -> {result_type}")
        return
    result = PROMOTION(sample, dtype=item_dtype, device=device)
    if op == "/" and category(expected) < 2:  # torch.div: "Always promotes integer types to the default scalar type"
        assert result.dtype == torch.get_default_dtype(), f"{operands} /: {result.dtype}, not the default dtype"
        return
    assert result.dtype == expected, f"{operands} {op}: {result.dtype}, not the documented result dtype {expected}"
    assert_promoted_values(sample, item_dtype, result)


# NumPy's ufuncs for the four operators, computed exactly in a wide dtype of the result's category
NUMPY_OF = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide}


def operand_values(arg, item_dtype: torch.dtype, promoted: torch.dtype) -> np.ndarray:
    """An operand's values as the promoted dtype holds them ("promote", then compute: a conversion,
    not the arithmetic under test), from a Python number or a spec's logical values."""
    if isinstance(arg, (bool, int, float, complex)):
        values = torch.tensor(arg)
    else:
        spec, dtype = (arg.spec, arg.dtype) if isinstance(arg, Arg) else (arg, item_dtype)
        values = spec.logical_values(dtype)
    return independent_array(values.to(promoted))


def assert_promoted_values(sample: Sample, item_dtype: torch.dtype, result: torch.Tensor) -> None:
    """The operation computed in the promoted dtype: both operands converted to it, the exact result
    (NumPy, in the widest dtype of the result's category; integral results wrap as the cast to the
    result dtype does), rounded to the result's dtype, at that dtype's tolerance."""
    a, b, op = sample.args
    wide = _WIDE[category(result.dtype)]
    with np.errstate(all="ignore"):  # x / 0 is inf or nan, as in torch
        exact = NUMPY_OF[op](*(operand_values(x, item_dtype, result.dtype).astype(wide) for x in (a, b)))
    expected = torch.from_numpy(np.asarray(exact)).to(result.dtype)
    torch.testing.assert_close(
        result.cpu(), expected, equal_nan=True, msg=lambda m: f"{op}: not the operation's values in the promoted dtype\n{m}"
    )


# ---- in-place casting ------------------------------------------------------------------------


@st.composite
def in_place_operands(draw, item_dtype: torch.dtype) -> Sample:
    """Sample(self, other, op): self of the item's dtype in a writable layout, other of any dtype
    and of self's shape, op one of + and *."""
    other_dtype = draw(st.sampled_from(PROMOTED), label="other_dtype")
    t = draw(specs(shapes=shapes(max_dims=2, max_side=3), layouts=WRITABLE_LAYOUTS), label="self")
    other = draw(specs(shape=t.shape), label="other")
    return Sample((t, Arg(other, dtype=other_dtype), draw(st.sampled_from(["+", "*"]), label="op")))


IN_PLACE = Operation(
    "rules.inplace_casting",
    dtypes="all",
    samples=in_place_operands,
    call=lambda t, other, op: t.add_(other) if op == "+" else t.mul_(other),
)

# The exact value of the promoted result of + and * in NumPy, one wide dtype per category
_WIDE = {0: np.bool_, 1: np.int64, 2: np.float64, 3: np.complex128}


@IN_PLACE.property
def test_in_place_results_never_cast_to_a_lower_category(device, dtype, sample):
    t_spec, other, _ = sample.args
    assume(supported_on(torch.device(device).type, other.dtype))
    result = smallest_holding_across(dtype, other.dtype)
    # "An integral output tensor cannot accept a floating point tensor. A boolean output tensor
    # cannot accept a non-boolean tensor. A non-complex output tensor cannot accept a complex tensor"
    if category(result) > category(dtype):
        with pytest.raises(RuntimeError, match="can't be cast"):
            IN_PLACE(sample, dtype=dtype, device=device)
        return
    for op in ("+", "*"):  # both operations on the drawn operands
        (t, o, _), _ = Sample((t_spec, other, op)).build(dtype=dtype, device=device)
        returned = IN_PLACE.call(t, o, op)
        assert returned is t and t.dtype == dtype, "an in-place operation returned another tensor or changed self's dtype"
        # the promoted result, computed exactly in a wide dtype of its category, then written into self's dtype
        wide = _WIDE[category(result)]
        a = independent_array(t_spec.logical_values(dtype)).astype(wide)
        b = independent_array(other.spec.logical_values(other.dtype)).astype(wide)
        exact = a + b if op == "+" else a * b
        expected = torch.from_numpy(np.asarray(exact)).to(result).to(dtype)
        torch.testing.assert_close(
            t.cpu(), expected, msg=lambda m: f"self does not hold the promoted result cast to its dtype\n{m}"
        )


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
    """Pairs that broadcast (from mutually_broadcastable_shapes), arbitrary pairs, most of which do not,
    and pairs where lining up the leading dimensions would broadcast too, pairing other elements
    ((2, 2) with (2,)): the rule starts "at the trailing dimension", and only such pairs show it."""
    kind = draw(st.sampled_from(["broadcastable", "arbitrary", "leading would broadcast too"]), label="pair")
    if kind == "leading would broadcast too":
        side, ndim = draw(st.integers(2, 3), label="side"), draw(st.integers(2, 3), label="ndim")
        short = draw(st.integers(1, ndim - 1), label="short ndim")
        pair = ((side,) * ndim, (side,) * short)
        return pair if draw(st.booleans(), label="longer first") else pair[::-1]
    if kind == "broadcastable":
        drawn = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=4, min_side=0, max_side=3), label="shapes")
        return drawn.input_shapes
    return tuple(draw(shapes(max_dims=4, max_side=3), label=f"shape_{i}") for i in range(2))


@st.composite
def broadcast_pair(draw) -> Sample:
    """Sample(a, b, in_place): shapes that broadcast or not (a in a writable layout: it is written
    in place), and whether the operation is out of place (torch.add) or in place (a.add_)."""
    a_shape, b_shape = draw(shape_pairs(), label="shapes")
    a = draw(specs(shape=a_shape, layouts=WRITABLE_LAYOUTS), label="a")
    b = draw(specs(shape=b_shape), label="b")
    return Sample((a, b, draw(st.booleans(), label="in_place")))


def broadcast_elementwise(a, b, in_place):
    """add (logical_xor for bool, which has no add), out of place or in place into a."""
    if a.dtype == torch.bool:
        return a.logical_xor_(b) if in_place else torch.logical_xor(a, b)
    return a.add_(b) if in_place else torch.add(a, b)


BROADCAST = Operation(
    "rules.broadcasting",
    dtypes="representative",
    samples=broadcast_pair(),
    call=lambda a, b, in_place: broadcast_elementwise(a, b, in_place),
)


@BROADCAST.property
def test_binary_ops_broadcast_by_the_documented_rule(device, dtype, sample):
    a_spec, b_spec, _ = sample.args
    expected = broadcast_shape(a_spec.shape, b_spec.shape)
    out_of_place, in_place = Sample((a_spec, b_spec, False)), Sample((a_spec, b_spec, True))
    if expected is None:
        with pytest.raises(RuntimeError, match="must match the size"):  # (observed message)
            BROADCAST(out_of_place, dtype=dtype, device=device)
        return
    out = BROADCAST(out_of_place, dtype=dtype, device=device)
    assert tuple(out.shape) == expected, f"broadcast shape {tuple(out.shape)}, documented {expected}"
    assert out.dtype == dtype, f"{out.dtype}: not the operands' dtype"
    ref = np.logical_xor if dtype == torch.bool else np.add
    wide = _WIDE[category(dtype)]  # exact, then rounded to the dtype
    a_np, b_np = (independent_array(s.logical_values(dtype)).astype(wide) for s in (a_spec, b_spec))
    torch.testing.assert_close(
        out.cpu(),
        torch.from_numpy(np.asarray(ref(a_np, b_np))).to(dtype),
        msg=lambda m: f"not the elementwise operation's values at the broadcast positions\n{m}",
    )
    # in place, self cannot change shape: allowed exactly when the broadcast shape is self's
    (a, b, _), _ = in_place.build(dtype=dtype, device=device)
    if expected == tuple(a_spec.shape):
        assert BROADCAST.call(a, b, True) is a, "in place did not return self"
        torch.testing.assert_close(a.cpu(), out.cpu(), msg=lambda m: f"in place, a does not hold the broadcast result\n{m}")
    else:
        with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):  # (observed message)
            BROADCAST.call(a, b, True)


# ---- autograd's in-place correctness check ---------------------------------------------------


SAVING = {
    # operation -> what it saves for backward, so an in-place change of that tensor must be caught
    "exp (saves its result)": (lambda x: x.exp(), "result"),
    "x * x (saves its inputs)": (lambda x: x * x, "input"),
    "sin (saves its input)": (lambda x: x.sin(), "input"),
}
MODIFY = {"add_": lambda t: t.add_(2), "mul_": lambda t: t.mul_(2), "zero_": lambda t: t.zero_()}


def modify_saved(leaf, op, modify):
    """Run `op` on a non-leaf copy of `leaf`, modify in place the tensor it saved for backward;
    return the output, the modified tensor and its version before the modification."""
    source = leaf * 1  # a non-leaf, so it may be modified in place
    function, saved = SAVING[op]
    out = function(source)
    target = out if saved == "result" else source
    before = target._version
    MODIFY[modify](target)
    return out, target, before


def modify_saved_then_backward(leaf, op, modify):
    out, _, _ = modify_saved(leaf, op, modify)
    out.sum().backward()
    return leaf.grad


SAVED_MODIFIED = Operation(
    "rules.saved_tensor_modified",
    dtypes="float32_64",
    samples=st.builds(
        lambda x, op, modify: Sample((Arg(x, requires_grad=True), op, modify)),
        specs(),
        st.sampled_from(sorted(SAVING)),
        st.sampled_from(sorted(MODIFY)),
    ),
    call=lambda leaf, op, modify: modify_saved_then_backward(leaf, op, modify),
)


@SAVED_MODIFIED.property
def test_backward_raises_when_a_saved_tensor_was_modified_in_place(device, dtype, sample):
    (leaf, op, modify), _ = sample.build(dtype=dtype, device=device)
    out, target, before = modify_saved(leaf, op, modify)
    assert target._version > before, "an in-place operation did not bump the version counter"
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        SAVED_MODIFIED(sample, dtype=dtype, device=device)


# ---- out= ----------------------------------------------------------------------------------------

OUT_KINDS = ("the broadcast shape", "empty", "another shape", "integral", "inputs require grad")


@st.composite
def out_operands(draw) -> Sample:
    """Sample(a, b, out): shapes that broadcast, and an out of one documented kind."""
    shape_a, shape_b = draw(shape_pairs().filter(lambda pair: broadcast_shape(*pair) is not None), label="shapes")
    a, b = (draw(specs(shape=s), label=n) for n, s in (("a", shape_a), ("b", shape_b)))
    return out_sample(a, b, draw(st.sampled_from(OUT_KINDS), label="out"), draw(st.integers(0, 2**32 - 1), label="out_seed"))


def out_sample(a, b, kind: str, seed: int) -> Sample:
    result_shape = broadcast_shape(a.shape, b.shape)
    shape = {"empty": (0,), "another shape": (1,) if result_shape != (1,) else (2,)}.get(kind, result_shape)
    out = TensorSpec(shape=shape, seed=seed)
    if kind == "integral":
        out = Arg(out, dtype=torch.int64)
    if kind == "inputs require grad":
        a = Arg(a, requires_grad=True)
    return Sample((a, b), {"out": out})


OUT = Operation(
    "rules.out_argument",
    dtypes="float32_64",
    samples=out_operands(),
    call=lambda a, b, out: torch.add(a, b, out=out),
)


@OUT.property
@pytest.mark.filterwarnings("ignore:An output with one or more elements was resized:UserWarning")
def test_out_is_written_resized_cast_or_refused_as_documented(device, dtype, sample):
    (a_spec, b_spec), kwargs = sample.args, sample.kwargs
    a_spec = a_spec.spec if isinstance(a_spec, Arg) else a_spec
    result_shape = broadcast_shape(a_spec.shape, b_spec.shape)
    seed = (kwargs["out"].spec if isinstance(kwargs["out"], Arg) else kwargs["out"]).seed
    expected = independent_array(a_spec.logical_values(dtype)) + independent_array(b_spec.logical_values(dtype))

    def run(kind):
        (a, b), built = out_sample(a_spec, b_spec, kind, seed).build(dtype=dtype, device=device)
        return built["out"], OUT.call(a, b, **built)

    out, returned = run("the broadcast shape")
    assert returned is out, "add(out=) did not return out"  # written and returned
    np.testing.assert_allclose(independent_array(out.cpu()), expected, rtol=1e-6, err_msg="out does not hold the sum")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty out is resized silently
        empty, _ = run("empty")
    assert tuple(empty.shape) == result_shape, "an empty out was not resized to the broadcast shape"
    if math.prod(result_shape):  # non-empty, wrong shape: resized with a warning
        with pytest.warns(UserWarning, match="resized"):
            wrong, _ = run("another shape")
        assert tuple(wrong.shape) == result_shape, "an out of another shape was not resized"
    with pytest.raises(RuntimeError, match="can't be cast"):  # an integral out cannot accept a floating result
        run("integral")
    with pytest.raises(RuntimeError, match="automatic differentiation"):
        run("inputs require grad")


# ---- division and rounding -----------------------------------------------------------------------

ROUNDING = {
    # torch call (looked up when it runs, as declarations do) -> NumPy's function with the documented meaning
    "div": (lambda a, b: torch.div(a, b), lambda a, b: np.true_divide(a, b)),
    "div floor": (lambda a, b: torch.div(a, b, rounding_mode="floor"), lambda a, b: np.floor_divide(a, b)),
    "div trunc": (lambda a, b: torch.div(a, b, rounding_mode="trunc"), lambda a, b: np.trunc(np.true_divide(a, b))),
    "remainder": (lambda a, b: torch.remainder(a, b), np.remainder),  # the sign of the divisor
    "fmod": (lambda a, b: torch.fmod(a, b), np.fmod),  # the sign of the dividend
}


def divide(a: list, b: list, name: str, dtype: torch.dtype, device):
    """One of the division modes on tensors of `a` and `b` (made here: the divisors are drawn nonzero)."""
    return ROUNDING[name][0](torch.tensor(a, dtype=dtype, device=device), torch.tensor(b, dtype=dtype, device=device))


DIVISION = Operation(
    "rules.division_and_rounding",
    dtypes="float32_64",
    samples=st.builds(
        lambda values, integral, name: Sample(
            ([v for v, _ in values], [d for _, d in values], name),
            {"dtype": torch.int64 if integral else ITEM_DTYPE, "device": ITEM_DEVICE},
        ),
        st.lists(st.tuples(st.integers(-50, 50), st.integers(-9, 9).filter(bool)), min_size=1, max_size=12),
        st.booleans(),
        st.sampled_from(sorted(ROUNDING)),
    ),
    call=lambda a, b, name, dtype, device: divide(a, b, name, dtype, device),
)


@DIVISION.property
def test_division_modes_and_remainders_follow_their_documented_signs(device, dtype, sample):
    a_list, b_list, _ = sample.args
    integral = sample.kwargs["dtype"] == torch.int64
    kind = torch.int64 if integral else dtype
    a_np, b_np = (np.array(v, dtype=np.int64 if integral else np.float64) for v in (a_list, b_list))
    for name, (_, reference) in ROUNDING.items():  # every mode on the drawn values
        out = DIVISION(Sample((a_list, b_list, name), sample.kwargs), dtype=dtype, device=device)
        expected_dtype = torch.get_default_dtype() if name == "div" and integral else kind  # true division promotes
        assert out.dtype == expected_dtype, f"{name}: {out.dtype}, not the documented result dtype {expected_dtype}"
        np.testing.assert_allclose(
            independent_array(out.cpu()).astype(np.float64),
            reference(a_np, b_np),
            rtol=1e-6,
            err_msg=f"{name}: not the documented quotient or remainder",
        )
    halves = torch.tensor([v + 0.5 for v in a_list], dtype=dtype, device=device)
    rounded = torch.round(halves)
    assert rounded.dtype == dtype, f"round() gave {rounded.dtype}, not the input's dtype"
    np.testing.assert_array_equal(
        independent_array(rounded.cpu()),
        np.round(np.array([v + 0.5 for v in a_list])),
        err_msg="round() does not round halves to even",
    )
    if integral and device == "cpu":  # integer division by zero on the CPU raises ("ZeroDivisionError")
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            torch.div(torch.tensor(a_list, device=device), torch.zeros(len(b_list), dtype=torch.int64), rounding_mode="floor")
