"""Device moves: .to forms, get_device, cuda vs cuda:0, mixed devices, module moves."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks import assert_own_storage, independent_array, numpy_dtype, private_rng
from strategies import DTYPE_GROUPS, specs
from strategies.samples import call_forms


def converted(a: np.ndarray, to: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
    """float32 values `a` converted to `to` by the documented rules, and where they are defined.
    Tensor.to's note: C++ conversion rules, "converting floating point value to integer type will
    truncate the fractional part. If the truncated value cannot fit into the target type ... the
    behavior is undefined"; bool is nonzero (C++); floats round to nearest even (IEEE 754)."""
    defined = np.ones(a.shape, dtype=bool)
    if to == torch.bool:
        return a != 0, defined
    if not to.is_floating_point and not to.is_complex:
        info = np.iinfo(numpy_dtype(to))
        with np.errstate(invalid="ignore"):
            whole = np.trunc(a)
            defined = np.isfinite(whole) & (whole >= info.min) & (whole <= info.max)
        return np.where(defined, whole, 0).astype(numpy_dtype(to)), defined
    if to == torch.bfloat16:  # the top 16 bits of float32, rounded to nearest even; NaN stays NaN
        bits = a.astype(np.float32).view(np.uint32).astype(np.uint64)
        rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).astype(np.uint32).view(np.float32)
        return np.where(np.isnan(a), np.float32("nan"), rounded), defined
    with np.errstate(over="ignore"):
        return a.astype(numpy_dtype(to)), defined


def dense_non_overlapping(t: torch.Tensor) -> bool:
    """Whether t's elements fill one block of memory once each, its dims taken in stride order
    (dims of size 1 carry no stride); an empty tensor has no memory to fill."""
    expected = 1
    for stride, size in sorted((s, n) for s, n in zip(t.stride(), t.shape) if n != 1):
        if stride != expected:
            return False
        expected *= size
    return t.numel() > 0


TO_FORMS = {  # the documented spellings of to(device, dtype)
    "positional": lambda t, device, dtype: t.to(device, dtype),
    "keywords": lambda t, device, dtype: t.to(device=device, dtype=dtype),
    "device_object": lambda t, device, dtype: t.to(torch.device(device), dtype),
}


@pytest.mark.behaviour("devices.to_device_and_dtype")
@pytest.mark.dtypes("float32")
@pytest.mark.meta_too
@given(
    x=specs(special_values=True, extremes=True),
    other=st.sampled_from(DTYPE_GROUPS["all"]),
    form=call_forms(TO_FORMS),
    copy=st.sampled_from([None, False, True]),  # None: left out, its default (False)
)
def test_to_changes_device_and_dtype_together(device, dtype, x, other, form, copy):
    t = x.build(dtype=dtype, device="cpu")
    out = TO_FORMS[form](t, device, other) if copy is None else t.to(device, other, copy=copy)
    assert (out.device.type, out.dtype, out.shape) == (torch.device(device).type, other, t.shape), "device, dtype or shape"
    if out.device == t.device and other == t.dtype and not copy:  # "then ``self`` is returned"
        assert out is t, "to() with the tensor's own device and dtype did not return self"
    elif t.numel() and out.device.type != "meta":  # "the returned tensor is a copy of ``self``"
        assert_own_storage(out, t, f"to({device}, {other}, copy={copy})")
    # Its own dtype too, each example: self unless copy=True ("a new Tensor is created even when
    # the Tensor already matches").
    kept = t.to(device, dtype) if copy is None else t.to(device, dtype, copy=copy)
    assert (kept is t) == (kept.device == t.device and not copy), f"to({device}, its own dtype, copy={copy}): self or not"
    if dense_non_overlapping(t):  # memory_format's default, preserve_format: "strides will be copied"
        assert out.stride() == t.stride() and kept.stride() == t.stride(), "to() did not keep a dense input's strides"
    if out.device.type == "meta":
        return
    expected, defined = converted(independent_array(t), other)
    got = independent_array(out.cpu())
    np.testing.assert_array_equal(got[defined], expected[defined], f"values converted to {other}")
    if other.is_floating_point or other.is_complex:  # IEEE 754 keeps the sign of a zero
        zero = (expected == 0) & defined
        np.testing.assert_array_equal(np.signbit(got.real[zero]), np.signbit(expected.real[zero]), "sign of zero")


@pytest.mark.behaviour("devices.to_forms_agree")
@pytest.mark.dtypes("float32")
@pytest.mark.meta_too
@given(x=specs())
def test_to_string_device_object_and_cuda_agree(device, dtype, x):
    t = x.build(dtype=dtype, device="cpu")
    forms = [t.to(device), t.to(torch.device(device))]
    if torch.device(device).type == "cuda":
        index = torch.device(device).index
        forms += [t.cuda(index), t.to("cuda" if index is None else f"cuda:{index}")]
    assert len({f.device for f in forms}) == 1 and forms[0].device.type == torch.device(device).type
    already = t.to(device)  # on the device already: each form returns the tensor itself, no copy
    again = [already.to(device), already.to(torch.device(device))]
    if already.device.type == "cuda":
        again += [already.cuda(already.device.index), already.to(str(already.device))]
    assert all(f is already for f in again), "a move to the device a tensor is on did not return it itself"
    if forms[0].device.type != "meta":
        assert all(torch.equal(f.cpu(), t) for f in forms)


@pytest.mark.behaviour("devices.get_device")
@pytest.mark.device_types("cpu", "cuda")
def test_get_device_is_minus_one_on_cpu_else_the_index(device):
    t = torch.zeros(2, device=device)
    expected = -1 if t.device.type == "cpu" else t.device.index
    assert t.get_device() == expected
    if t.device.type == "cuda":
        assert expected == (torch.device(device).index if torch.device(device).index is not None else torch.cuda.current_device())


@pytest.mark.behaviour("devices.cuda_device_objects_differ")
@pytest.mark.device_types("cpu")  # a property of torch.device itself: no GPU needed, checked once
def test_cuda_and_cuda0_device_objects_differ(device):
    assert torch.device("cuda") != torch.device("cuda:0")
    assert torch.device("cuda").index is None and torch.device("cuda:0").index == 0
    assert torch.device("cuda:0") == torch.device("cuda", 0)


@pytest.mark.behaviour("devices.cuda_current_index")
@pytest.mark.device_types("cuda")
def test_cuda_tensor_reports_the_current_index(device):
    t = torch.zeros(1, device="cuda")
    assert t.device == torch.device("cuda", torch.cuda.current_device())
    assert t.device != torch.device("cuda")


@pytest.mark.behaviour("devices.mixed_devices_raise")
@pytest.mark.off_cpu
@pytest.mark.meta_too
@given(x=specs(), scalar=st.floats(-5, 5))
def test_mixing_devices_raises_except_for_cpu_scalars(device, x, scalar):
    on_device = x.build(dtype=torch.float32, device=device)
    on_cpu = torch.ones(x.shape + (1,) if x.ndim == 0 else x.shape)
    with pytest.raises(RuntimeError):
        on_device + on_cpu
    out = on_device * torch.tensor(scalar)  # a 0-d CPU tensor is allowed
    assert out.device == on_device.device


@pytest.mark.behaviour("devices.cuda_device_context")
@pytest.mark.device_types("cuda")
def test_cuda_device_is_a_context_manager(device):
    before = torch.cuda.current_device()
    target = torch.cuda.device_count() - 1
    with torch.cuda.device(target):
        assert torch.cuda.current_device() == target
        assert torch.zeros(1, device="cuda").device.index == target
    assert torch.cuda.current_device() == before


@pytest.mark.behaviour("devices.module_moves_in_place")
@pytest.mark.meta_too
@given(width=st.integers(1, 4))
def test_module_moves_in_place_and_tensor_cpu_copies(device, width):
    with private_rng():
        model = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.Linear(width, 1))
    assert model.to(device) is model
    assert {p.device.type for p in model.parameters()} == {torch.device(device).type}
    if torch.device(device).type not in ("cpu", "meta"):
        assert model.cpu() is model and {p.device.type for p in model.parameters()} == {"cpu"}
        if torch.device(device).type == "cuda":  # the notes' own spelling of the move
            assert model.cuda() is model and {p.device.type for p in model.parameters()} == {"cuda"}
            model.cpu()
        t = torch.ones(width, device=device)
        assert t.cpu() is not t and t.device.type != "cpu"
    t = torch.ones(width)
    assert t.cpu() is t


@pytest.mark.behaviour("devices.two_gpu_copies")
@pytest.mark.needs_two_cuda
def test_copies_and_mixing_between_two_gpus(device):
    a = torch.arange(4.0, device="cuda:0")
    b = a.to("cuda:1")
    assert b.device == torch.device("cuda:1") and torch.equal(b.cpu(), a.cpu())
    with pytest.raises(RuntimeError):
        a + b
    with torch.cuda.device(1):
        assert torch.zeros(1, device="cuda").device == torch.device("cuda:1")


@pytest.mark.behaviour("devices.cuda_empty_cache")
@pytest.mark.device_types("cuda")
def test_empty_cache_releases_unoccupied_memory_and_keeps_live_tensors(device):
    torch.cuda.synchronize()
    torch.cuda.empty_cache()  # start from a cache with no unoccupied blocks
    live = torch.arange(1024, dtype=torch.float32, device=device)
    freed = torch.empty(64 * 2**20, dtype=torch.uint8, device=device)  # 64 MiB: a segment of its own
    del freed
    torch.cuda.synchronize()
    allocated, reserved = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
    torch.cuda.empty_cache()
    assert torch.cuda.memory_allocated() == allocated, "empty_cache freed memory a live tensor occupies"
    assert torch.cuda.memory_reserved() <= reserved - 64 * 2**20, "empty_cache kept the unoccupied 64 MiB"
    assert live.sum().item() == sum(range(1024))


@pytest.mark.behaviour("devices.cuda_is_available_truthful")
def test_cuda_is_available_says_whether_a_cuda_tensor_can_be_made(device):
    available = torch.cuda.is_available()
    assert type(available) is bool
    if available:
        assert torch.cuda.device_count() >= 1 and torch.zeros(1, device="cuda").device.type == "cuda"
    else:
        with pytest.raises((RuntimeError, AssertionError)):  # AssertionError: "Torch not compiled with CUDA enabled"
            torch.zeros(1, device="cuda")
