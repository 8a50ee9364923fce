"""Matrix products: mul is elementwise, matmul broadcasts, mm and bmm do not."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

from conformance.checks import assert_close_to_reference, independent_array
from conformance.harness.declaration import Operation
from strategies import specs
from strategies.samples import Arg, Sample, broadcast_operands
from strategies.tensors import label

MATMUL = "(m?,n),(n,p?)->(m?,p?)"


def wide(t: torch.Tensor) -> torch.Tensor:
    """The exact reference's input: a CPU float64 (or complex128) copy of `t`."""
    return t.cpu().to(torch.complex128 if t.dtype.is_complex else torch.float64)


@st.composite
def matrices(draw, *shapes_by_letter: str, batch: bool = False):
    """Sample of tensors shaped by letters ('mn', 'np'), each letter one drawn size (0-4)."""
    sizes = {letter: draw(st.integers(0, 4), label=letter) for letter in sorted(set("".join(shapes_by_letter)))}
    lead = (draw(st.integers(1, 3), label="b"),) if batch else ()
    return Sample(
        tuple(draw(specs(shape=lead + tuple(sizes[c] for c in letters)), label=letters) for letters in shapes_by_letter)
    )


MUL = Operation(
    "matmul.mul_elementwise",
    dtypes="float_and_complex",
    samples=broadcast_operands(2, magnitudes=True),
    call=lambda a, b: torch.mul(a, b),
)
MATMUL_OP = Operation(
    "matmul.matmul_semantics",
    dtypes="float32_64",
    samples=broadcast_operands(signature=MATMUL, max_dims=2),
    call=lambda a, b: torch.matmul(a, b),
)
MM = Operation("matmul.mm_2d_only", dtypes="float32_64", samples=matrices("mn", "np"), call=lambda a, b: torch.mm(a, b))
BMM = Operation(
    "matmul.bmm_batches", dtypes="float32_64", samples=matrices("mn", "np", batch=True), call=lambda a, b: torch.bmm(a, b)
)


@MUL.property
def test_mul_is_elementwise_with_broadcasting(device, dtype, sample):
    (x, y), _ = sample.build(dtype=dtype, device=device)
    out = MUL(sample, dtype=dtype, device=device)
    assert out.shape == torch.broadcast_shapes(x.shape, y.shape)
    assert out.dtype == dtype, f"mul of two {dtype} tensors gave {out.dtype}"
    if dtype.is_complex:  # several roundings: at the dtype's tolerance
        assert_close_to_reference(out, wide(x) * wide(y))
    else:  # one product, rounded once by IEEE 754 (exact in float64 for the narrower dtypes): exactly
        assert_close(
            out.cpu(), (wide(x) * wide(y)).to(dtype), rtol=0, atol=0, equal_nan=True, msg="mul is not x * y rounded once"
        )


@MATMUL_OP.property
def test_matmul_follows_numpy_matmul(device, dtype, sample):
    (x, y), _ = sample.build(dtype=dtype, device=device)
    out = MATMUL_OP(sample, dtype=dtype, device=device)
    expected = np.matmul(wide(x).numpy(), wide(y).numpy())
    assert tuple(out.shape) == np.shape(expected)
    assert_close_to_reference(out, torch.as_tensor(expected))


@MM.property
def test_mm_multiplies_matrices(device, dtype, sample):
    (x, y), _ = sample.build(dtype=dtype, device=device)
    out = MM(sample, dtype=dtype, device=device)
    assert out.dtype == dtype, f"mm of two {dtype} matrices gave {out.dtype}"
    assert_close_to_reference(out, wide(x) @ wide(y))


@MM.property
def test_mm_rejects_batches_vectors_and_mismatched_sizes(device, dtype, sample, data):
    (x, y), _ = sample.build(dtype=dtype, device=device)
    m, n = x.shape
    batch = data.draw(st.integers(1, 3), label="batch")
    with pytest.raises(RuntimeError):
        torch.mm(x.expand(batch, m, n), y)
    with pytest.raises(RuntimeError):
        torch.mm(x, y[:, 0] if y.shape[1] else torch.zeros(n, dtype=dtype, device=device))
    with pytest.raises(RuntimeError):
        torch.mm(x, torch.zeros(n + 1, y.shape[1], dtype=dtype, device=device))


@BMM.property
def test_bmm_multiplies_each_batch(device, dtype, sample):
    (x, y), _ = sample.build(dtype=dtype, device=device)
    expected = torch.stack([wide(x[i]) @ wide(y[i]) for i in range(x.shape[0])])
    out = BMM(sample, dtype=dtype, device=device)
    assert out.dtype == dtype, f"bmm of two {dtype} batches gave {out.dtype}"
    assert_close_to_reference(out, expected)


@BMM.property
def test_bmm_rejects_unequal_batches_and_matrices(device, dtype, sample):
    (x, y), _ = sample.build(dtype=dtype, device=device)
    b, n, p = y.shape
    with pytest.raises(RuntimeError):
        torch.bmm(x, torch.zeros(b + 1, n, p, dtype=dtype, device=device))
    with pytest.raises(RuntimeError):
        torch.bmm(x[0], y[0])


# The products: each takes two operands of one shape pair (bmm's with a batch of one).
PRODUCTS = {
    "mm": lambda a, b: torch.mm(a, b),
    "matmul": lambda a, b: torch.matmul(a, b),
    "bmm": lambda a, b: torch.bmm(a.unsqueeze(0), b.unsqueeze(0)),
}
# Another dtype for the other operand: the other width, a half precision one, complex, integral.
OTHER_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.int64]


@st.composite
def mismatched_operands(draw, dtype):
    """Sample(a, b, product): an (m, n) and an (n, m) operand, one in the item's dtype and the
    other in another dtype (either first). Not empty: bmm of empty operands of mixed dtypes
    returns an empty result on the CPU (observed), where mm and matmul still raise."""
    m, n = draw(st.integers(1, 3), label="m"), draw(st.integers(1, 3), label="n")
    other = draw(st.sampled_from([d for d in OTHER_DTYPES if d != dtype]), label="other_dtype")
    a, b = draw(specs(shape=(m, n)), label="a"), draw(specs(shape=(n, m)), label="b")
    a, b = (a, Arg(b, dtype=other)) if draw(st.booleans(), label="other_first") else (Arg(a, dtype=other), b)
    product = draw(st.sampled_from(sorted(PRODUCTS)), label="product")
    label(f"product={product}")
    return Sample((a, b, product))


MISMATCHED = Operation(
    "matmul.mismatched_dtypes_raise",
    dtypes="float32_64",
    samples=mismatched_operands,
    call=lambda a, b, product: PRODUCTS[product](a, b),
)


@MISMATCHED.property
def test_products_of_mismatched_dtypes_raise(device, dtype, sample):
    (a, b, drawn), _ = sample.build(dtype=dtype, device=device)
    assert a.dtype != b.dtype
    with pytest.raises(RuntimeError):
        MISMATCHED(sample, dtype=dtype, device=device)
    for name, product in PRODUCTS.items():  # the drawn product is what other modes compare; here all three
        with pytest.raises(RuntimeError):
            product(a, b)
            pytest.fail(f"{name} of {a.dtype} and {b.dtype} promoted instead of raising")


EINSUM = {
    # equation -> the same contraction by index arithmetic in NumPy (no einsum there either)
    "ij,jk->ik": lambda a, b: a @ b,
    "ij->ji": lambda a: a.T,
    "ii->i": lambda a: np.diagonal(a).copy(),
    "ij->": lambda a: a.sum(),
    "ij,ij->ij": lambda a, b: a * b,
    "bij,bjk->bik": lambda a, b: a @ b,
    "i,j->ij": lambda a, b: np.outer(a, b),
}


@st.composite
def einsum_cases(draw):
    """Sample(equation, *operands): one of the equations, operands sized as its letters say."""
    equation = draw(st.sampled_from(sorted(EINSUM)), label="equation")
    sizes = {c: draw(st.integers(1, 4), label=c) for c in "bijk"}
    if equation == "ii->i":
        sizes["j"] = sizes["i"]
    inputs = equation.split("->")[0].split(",")
    shapes_ = [tuple(sizes[c] for c in term) for term in inputs]
    return Sample((equation, *(draw(specs(shape=s), label=f"operand_{n}") for n, s in enumerate(shapes_))))


EINSUM_OP = Operation(
    "matmul.einsum_contractions",
    dtypes="float32_64",
    samples=einsum_cases(),
    call=lambda equation, *operands: torch.einsum(equation, *operands),
)


@EINSUM_OP.property
def test_einsum_sums_products_as_the_equation_says(device, dtype, sample):
    equation, *operands = sample.args
    out = EINSUM_OP(sample, dtype=dtype, device=device)
    assert out.dtype == dtype, f"einsum({equation!r}) of {dtype} operands gave {out.dtype}"
    expected = EINSUM[equation](*(independent_array(o.logical_values(dtype)).astype(np.float64) for o in operands))
    np.testing.assert_allclose(independent_array(out.cpu()).astype(np.float64), expected, rtol=1e-5, atol=1e-4)


AUTOCAST_DEFAULT = {"cpu": torch.bfloat16, "cuda": torch.float16}  # each device type's default autocast dtype


@pytest.mark.behaviour("matmul.autocast_lower_precision")
@pytest.mark.device_types("cpu", "cuda")
@given(n=st.integers(1, 4), m=st.integers(1, 4), k=st.integers(1, 4), explicit=st.booleans(), data=st.data())
def test_autocast_runs_matrix_products_in_the_autocast_dtype(device, n, m, k, explicit, data):
    kind = torch.device(device).type
    a = data.draw(specs(shape=(n, k)), label="a").build(dtype=torch.float32, device=device)
    b = data.draw(specs(shape=(k, m)), label="b").build(dtype=torch.float32, device=device)
    dtype = data.draw(st.sampled_from([torch.bfloat16, torch.float16]), label="dtype") if explicit else AUTOCAST_DEFAULT[kind]
    with torch.autocast(device_type=kind, **({"dtype": dtype} if explicit else {})):
        inside = {"mm": torch.mm(a, b), "matmul": a @ b, "linear": torch.nn.functional.linear(a, b.T)}
        assert torch.is_autocast_enabled(kind)
    # "ops run in an op-specific dtype": the inputs cast to the autocast dtype, multiplied; so the
    # product of the rounded inputs (float64), at the autocast dtype's tolerance
    expected = wide(a.to(dtype)) @ wide(b.to(dtype))
    for name, out in inside.items():
        assert out.dtype == dtype, f"{name} under autocast gave {out.dtype}, not {dtype}"
        assert tuple(out.shape) == (n, m), f"{name} under autocast: shape {tuple(out.shape)}, not {(n, m)}"
        assert_close_to_reference(out, expected, msg=lambda msg, name=name: f"{name} under autocast: not the product\n{msg}")
    assert (a @ b).dtype == torch.float32 and not torch.is_autocast_enabled(kind), "autocast outlived its region"
    with torch.autocast(device_type=kind, enabled=False):
        assert (a @ b).dtype == torch.float32, "enabled=False still cast"
    low = a.to(dtype)
    with torch.autocast(device_type=kind, **({"dtype": dtype} if explicit else {})):
        with torch.autocast(device_type=kind, enabled=False):  # nested: the inner region turns it off
            assert (a @ b).dtype == torch.float32, "a disabled region nested in an enabled one still cast"
        assert (a @ b).dtype == dtype, "leaving the nested region did not restore autocast"
        # mse_loss is on both devices' lists of ops that autocast to float32
        assert torch.nn.functional.mse_loss(low, low).dtype == torch.float32, "mse_loss did not run in float32"
        if kind == "cpu":  # stack is on the CPU list of ops that promote to the widest input type
            assert torch.stack([low, a]).dtype == torch.float32, "stack did not promote to the widest input"
