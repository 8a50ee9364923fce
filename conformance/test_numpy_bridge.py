"""NumPy bridge: memory sharing between tensors and ndarrays, and where conversion refuses."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks import (
    array_byte_strides,
    assert_equal,
    byte_strides,
    changed,
    changed_np,
    independent_array,
    numpy_dtype,
)
from conformance.harness.releases import torch_at_least
from strategies import specs
from strategies.shapes import shapes
from strategies.tensors import WRITABLE_LAYOUTS

# Positive-stride NumPy layouts: each is an ndarray view torch.from_numpy must honour.
NUMPY_LAYOUTS = ("c", "fortran", "stepped", "offset")


@st.composite
def ndarrays(draw, dtype, *, layouts=NUMPY_LAYOUTS, shapes=None):
    """An ndarray of `dtype` in a drawn NumPy layout, valued without going through the bridge."""
    spec = draw(specs(shapes=shapes, layouts=("contiguous",)))  # values only: NumPy's layout is drawn below
    values = independent_array(spec.values(dtype))
    layout = draw(st.sampled_from(layouts))
    if layout == "fortran":
        return np.asfortranarray(values)
    if layout == "stepped" and values.ndim:
        big = np.repeat(values, 2, axis=0)
        return big[::2]
    if layout == "offset" and values.size:
        flat = np.concatenate([values.reshape(-1)[:1], values.reshape(-1)])
        return flat[1:].reshape(values.shape)
    return values


@pytest.mark.behaviour("numpy_bridge.numpy_shares_memory")
@pytest.mark.dtypes("numpy")
@pytest.mark.device_types("cpu")
@given(x=specs(layouts=WRITABLE_LAYOUTS))
def test_numpy_shares_memory(device, dtype, x):
    t = x.build(dtype=dtype, device=device)
    a = t.numpy()
    assert a.shape == tuple(t.shape), "numpy() changed the shape"
    assert array_byte_strides(a) == byte_strides(t), "numpy() changed the strides"
    assert a.dtype == numpy_dtype(dtype), "numpy() gave another dtype than the tensor's"
    np.testing.assert_array_equal(a, independent_array(t), "the array's values are not the tensor's")
    if t.numel():
        a[...] = changed_np(a)  # a write through the array shows in the tensor
        np.testing.assert_array_equal(independent_array(t), a, "a write through the array did not show in the tensor")
        t.copy_(changed(t))  # and a write through the tensor shows in the array
        np.testing.assert_array_equal(a, independent_array(t), "a write through the tensor did not show in the array")


@pytest.mark.behaviour("numpy_bridge.from_numpy_shares_memory")
@pytest.mark.dtypes("numpy")
@pytest.mark.device_types("cpu")
@given(data=st.data())
def test_from_numpy_shares_memory(device, dtype, data):
    a = data.draw(ndarrays(dtype))
    t = torch.from_numpy(a)
    assert tuple(t.shape) == a.shape, "from_numpy() changed the shape"
    assert byte_strides(t) == array_byte_strides(a), "from_numpy() changed the strides"
    assert t.dtype == dtype, "from_numpy() gave another dtype than the array's"
    np.testing.assert_array_equal(independent_array(t), a, "the tensor's values are not the array's")
    if a.size:
        t.copy_(changed(t))
        np.testing.assert_array_equal(a, independent_array(t), "a write through the tensor did not show in the array")
        a[...] = changed_np(a)
        np.testing.assert_array_equal(independent_array(t), a, "a write through the array did not show in the tensor")


@pytest.mark.behaviour("numpy_bridge.tensor_copies")
@pytest.mark.dtypes("numpy_representative")
@pytest.mark.device_types("cpu")
@given(data=st.data())
def test_tensor_of_ndarray_copies(device, dtype, data):
    a = data.draw(ndarrays(dtype))
    before = a.copy()
    t = torch.tensor(a)
    np.testing.assert_array_equal(independent_array(t), a, "torch.tensor(a) does not hold a's values")
    a[...] = changed_np(a)  # a write to the array does not reach the tensor ...
    np.testing.assert_array_equal(independent_array(t), before, "a write to the array reached the tensor")
    array_now = a.copy()
    t.copy_(torch.from_numpy(np.array(changed_np(array_now), order="C")))  # ... nor one to the tensor the array
    np.testing.assert_array_equal(a, array_now, "a write to the tensor reached the array")


@pytest.mark.behaviour("numpy_bridge.as_tensor_shares")
@pytest.mark.dtypes("numpy_representative")
@pytest.mark.device_types("cpu")
@given(data=st.data())
def test_as_tensor_shares(device, dtype, data):
    a = data.draw(ndarrays(dtype))
    t = torch.as_tensor(a)
    assert t.dtype == dtype, "as_tensor(a) gave another dtype than the array's"
    if a.size:
        a[...] = changed_np(a)
        np.testing.assert_array_equal(independent_array(t), a, "a write to the array did not show in as_tensor's tensor")


@pytest.mark.behaviour("numpy_bridge.numpy_requires_grad")
@pytest.mark.dtypes("float_and_complex")
@pytest.mark.device_types("cpu")
@given(x=specs(layouts=WRITABLE_LAYOUTS))
def test_numpy_of_tensor_requiring_grad(device, dtype, x, record_observation):
    if dtype == torch.bfloat16:
        dtype = torch.float32  # bfloat16 has no NumPy dtype; this behaviour is about grad
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad"):
        t.numpy()
    # Under no_grad / inference_mode no doc says what happens: what torch does is recorded.
    for mode in (torch.no_grad, torch.inference_mode):
        try:
            with mode():
                a = t.numpy()
        except RuntimeError as exc:
            record_observation(f"numpy() under {mode.__name__}", f"raises: {str(exc)[:80]}")
            continue
        shares = bool(t.numel()) and a.__array_interface__["data"][0] == t.data_ptr()
        record_observation(f"numpy() under {mode.__name__}", "succeeds, sharing memory" if shares else "succeeds")


@pytest.mark.behaviour("numpy_bridge.numpy_non_cpu_raises")
@pytest.mark.off_cpu
@pytest.mark.meta_too  # meta is off the CPU too, and the refusal reads no values
def test_numpy_of_non_cpu_tensor_raises(device):
    t = torch.ones(3, device=device)
    with pytest.raises(TypeError, match=r"Tensor\.cpu\(\)"):
        t.numpy()


@pytest.mark.behaviour("numpy_bridge.numpy_unsupported_dtype_raises")
@pytest.mark.dtypes("no_numpy")
@pytest.mark.device_types("cpu")
@given(shape=shapes())
def test_numpy_of_dtype_without_numpy_counterpart_raises(device, dtype, shape):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # complex32 is "experimental"
        t = torch.zeros(shape, dtype=dtype, device=device)
    with pytest.raises(TypeError):
        t.numpy()


@pytest.mark.behaviour("numpy_bridge.int8_round_trips")
@pytest.mark.device_types("cpu")
@given(x=specs(layouts=WRITABLE_LAYOUTS, low=-128, high=127, extremes=True))  # int8's whole range
def test_int8_round_trips(device, x):
    t = x.build(dtype=torch.int8, device=device)
    back = torch.from_numpy(t.numpy())
    assert back.dtype == torch.int8, "the int8 round trip changed the dtype"
    assert_equal(back, t, "the int8 round trip's values")


@pytest.mark.behaviour("numpy_bridge.negative_strides_rejected")
@pytest.mark.dtypes("numpy_representative")
@pytest.mark.device_types("cpu")
@given(data=st.data())
def test_from_numpy_rejects_negative_strides(device, dtype, data):
    # NumPy drops the sign of strides it never steps along, so every side is at least 2.
    a = data.draw(ndarrays(dtype, layouts=("c",), shapes=shapes(min_dims=1, min_side=2)))
    axis = data.draw(st.integers(0, a.ndim - 1), label="axis")
    reversed_a = np.flip(a, axis)
    with pytest.raises(ValueError, match="negative"):
        torch.from_numpy(reversed_a)


@pytest.mark.behaviour("numpy_bridge.readonly_array_shares")
@pytest.mark.dtypes("numpy_representative")
@pytest.mark.device_types("cpu")
@given(data=st.data())
def test_from_numpy_of_readonly_array_shares(device, dtype, data):
    a = data.draw(ndarrays(dtype))
    a.flags.writeable = False
    with warnings.catch_warnings():
        # torch warns about non-writable arrays at most once per process: never rely on it
        warnings.simplefilter("ignore", UserWarning)
        t = torch.from_numpy(a)
    np.testing.assert_array_equal(independent_array(t), a, "from_numpy of a read-only array does not hold its values")
    if a.size:
        assert t.data_ptr() == a.__array_interface__["data"][0], "from_numpy of a read-only array did not share its memory"


@pytest.mark.behaviour("numpy_bridge.zero_dim_round_trip")
@pytest.mark.dtypes("numpy_representative")
@pytest.mark.device_types("cpu")
@given(x=specs(shape=()))
def test_zero_dim_round_trip(device, dtype, x):
    t = x.build(dtype=dtype, device=device)
    a = t.numpy()
    assert isinstance(a, np.ndarray) and a.shape == (), "a 0-d tensor's numpy() is not a 0-d ndarray"
    np.testing.assert_array_equal(a, independent_array(t), "a 0-d tensor's numpy() does not hold its value")
    back = torch.from_numpy(np.array(t.item(), dtype=numpy_dtype(dtype)))
    assert back.shape == () and back.dtype == dtype, "from_numpy of a 0-d ndarray is not a 0-d tensor of its dtype"
    assert back.item() == t.item(), "from_numpy of a 0-d ndarray does not hold its value"


@pytest.mark.behaviour("numpy_bridge.from_numpy_rejects_others")
@pytest.mark.device_types("cpu")
@given(values=st.lists(st.integers(-100, 100), min_size=1, max_size=6))
def test_from_numpy_rejects_what_it_does_not_list(device, values):
    with pytest.raises(TypeError, match="expected np.ndarray"):
        torch.from_numpy(values)  # a list, not an ndarray
    with pytest.raises(TypeError, match="numpy.object_"):
        torch.from_numpy(np.array(values, dtype=object))
    swapped = np.array(values, dtype=np.dtype(np.int32).newbyteorder())  # the byte order this machine does not use
    with pytest.raises(ValueError, match="byte order"):
        torch.from_numpy(swapped)


@pytest.mark.behaviour("numpy_bridge.numpy_force")
@pytest.mark.dtypes("complex")
@pytest.mark.device_types("cpu")
@given(x=specs(layouts=WRITABLE_LAYOUTS))
def test_numpy_force_converts_what_numpy_refuses(device, dtype, x):
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    a = t.numpy(force=True)
    np.testing.assert_array_equal(
        a, independent_array(t.detach()), "numpy(force=True) of a tensor that requires grad: its values"
    )
    if t.numel():
        assert a.__array_interface__["data"][0] == t.data_ptr(), "numpy(force=True) of a plain CPU tensor copied it"
    c = t.detach().conj()
    np.testing.assert_array_equal(
        c.numpy(force=True), np.conj(independent_array(t.detach())), "numpy(force=True) of a conjugated view is not resolved"
    )


@pytest.mark.behaviour("numpy_bridge.numpy_conj_refused")
@pytest.mark.dtypes("complex")
@pytest.mark.device_types("cpu")
@given(x=specs())
def test_numpy_of_a_conjugated_view_raises(device, dtype, x):
    c = x.build(dtype=dtype, device=device).conj()
    assert c.is_conj(), "x.conj() of a complex tensor did not set the conjugate bit"
    with pytest.raises(RuntimeError, match="conjugate bit"):
        c.numpy()


# The way out the refusal names (its message, observed: no doc fixes it): "Use Tensor.to_dense() first."
# Before torch 2.8 the message said "Use Tensor.dense() first.", a method torch never had; "Fix two error
# messages involving Tensor.dense()", https://github.com/pytorch/pytorch/pull/152631 (merged 2025-05,
# after 2.7's release), made it to_dense().
SPARSE_REFUSAL_NAMES = r"Tensor\.to_dense\(\)" if torch_at_least("2.8") else r"Tensor\.dense\(\)"


@pytest.mark.behaviour("numpy_bridge.numpy_sparse_refused")
@pytest.mark.filterwarnings("ignore:Sparse CS. tensor support is in beta:UserWarning")
@pytest.mark.dtypes("float32_64")
@pytest.mark.device_types("cpu")
# 2-d: CSR and CSC are layouts of matrices
@given(x=specs(shapes=shapes(min_dims=2, max_dims=2)), layout=st.sampled_from(["coo", "csr", "csc"]), force=st.booleans())
def test_numpy_of_a_sparse_tensor_raises(device, dtype, x, layout, force):
    dense = x.build(dtype=dtype, device=device)
    sparse = {"coo": dense.to_sparse, "csr": dense.to_sparse_csr, "csc": dense.to_sparse_csc}[layout]()
    with pytest.raises(TypeError, match=SPARSE_REFUSAL_NAMES):
        sparse.numpy(force=force)
    assert_equal(torch.from_numpy(sparse.to_dense().numpy()), dense.cpu(), "the densified tensor's array")
