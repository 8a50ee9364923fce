"""Matrix products: mul is elementwise, matmul broadcasts, mm and bmm do not."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conformance.checks import assert_close_to_reference
from strategies import specs

MATMUL = "(m?,n),(n,p?)->(m?,p?)"


def pair(data, shape_a, shape_b, dtype, device):
    a = data.draw(specs(shape=tuple(shape_a)), label="a")
    b = data.draw(specs(shape=tuple(shape_b)), label="b")
    x, y = a.build(dtype=dtype, device=device), b.build(dtype=dtype, device=device)
    return x, y, x.cpu().to(torch.complex128 if dtype.is_complex else torch.float64), \
        y.cpu().to(torch.complex128 if dtype.is_complex else torch.float64)


@pytest.mark.behaviour("matmul.mul_elementwise")
@pytest.mark.dtypes("float_and_complex")
@given(shapes2=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4), data=st.data())
def test_mul_is_elementwise_with_broadcasting(device, dtype, shapes2, data):
    x, y, x64, y64 = pair(data, *shapes2.input_shapes, dtype, device)
    out = torch.mul(x, y)
    assert tuple(out.shape) == shapes2.result_shape
    assert_close_to_reference(out, x64 * y64)


@pytest.mark.behaviour("matmul.matmul_semantics")
@pytest.mark.dtypes("float32_64")
@given(shapes2=hnp.mutually_broadcastable_shapes(signature=MATMUL, max_dims=2, max_side=4), data=st.data())
def test_matmul_follows_numpy_matmul(device, dtype, shapes2, data):
    x, y, x64, y64 = pair(data, *shapes2.input_shapes, dtype, device)
    out = torch.matmul(x, y)
    expected = np.matmul(x64.numpy(), y64.numpy())
    assert tuple(out.shape) == np.shape(expected) == shapes2.result_shape
    assert_close_to_reference(out, torch.as_tensor(expected))


@pytest.mark.behaviour("matmul.mm_2d_only")
@pytest.mark.dtypes("float32")
@given(m=st.integers(0, 4), n=st.integers(0, 4), p=st.integers(0, 4), batch=st.integers(1, 3), data=st.data())
def test_mm_needs_matrices_and_never_broadcasts(device, dtype, m, n, p, batch, data):
    x, y, x64, y64 = pair(data, (m, n), (n, p), dtype, device)
    assert_close_to_reference(torch.mm(x, y), x64 @ y64)
    with pytest.raises(RuntimeError):
        torch.mm(x.expand(batch, m, n), y)
    with pytest.raises(RuntimeError):
        torch.mm(x, y[:, 0] if p else torch.zeros(n, device=device))
    with pytest.raises(RuntimeError):
        torch.mm(x, torch.zeros(n + 1, p, dtype=dtype, device=device))


@pytest.mark.behaviour("matmul.bmm_batches")
@pytest.mark.dtypes("float32")
@given(b=st.integers(1, 3), m=st.integers(0, 3), n=st.integers(0, 3), p=st.integers(0, 3), data=st.data())
def test_bmm_multiplies_each_batch(device, dtype, b, m, n, p, data):
    x, y, x64, y64 = pair(data, (b, m, n), (b, n, p), dtype, device)
    out = torch.bmm(x, y)
    assert_close_to_reference(out, torch.stack([x64[i] @ y64[i] for i in range(b)]) if b else x64 @ y64)
    with pytest.raises(RuntimeError):
        torch.bmm(x, torch.zeros(b + 1, n, p, dtype=dtype, device=device))
    with pytest.raises(RuntimeError):
        torch.bmm(x[0], y[0])


@pytest.mark.behaviour("matmul.mismatched_dtypes_raise")
@given(m=st.integers(1, 3), n=st.integers(1, 3),
       dtypes=st.sampled_from([(torch.float32, torch.float64), (torch.float64, torch.float32),
                               (torch.float32, torch.complex64), (torch.float32, torch.float16)]))
def test_products_of_mismatched_dtypes_raise(device, m, n, dtypes):
    a = torch.ones(m, n, dtype=dtypes[0], device=device)
    b = torch.ones(n, m, dtype=dtypes[1], device=device)
    for product in (torch.mm, torch.matmul):
        with pytest.raises(RuntimeError):
            product(a, b)
    with pytest.raises(RuntimeError):
        torch.bmm(a.unsqueeze(0), b.unsqueeze(0))
