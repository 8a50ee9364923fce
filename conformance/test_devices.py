"""Device moves: .to forms, get_device, cuda vs cuda:0, mixed devices, module moves."""

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks import assert_own_storage, independent_array, numpy_dtype, private_rng
from conformance.checks import dense_non_overlapping as _dense
from strategies import DTYPE_GROUPS, specs


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


TO_FORMS = {  # the documented spellings of to(device, dtype), copy= given or left out
    "positional": lambda t, device, dtype, **copy: t.to(device, dtype, **copy),
    "keywords": lambda t, device, dtype, **copy: t.to(device=device, dtype=dtype, **copy),
    "device_object": lambda t, device, dtype, **copy: t.to(torch.device(device), dtype, **copy),
}


@pytest.mark.behaviour("devices.to_device_and_dtype")
@pytest.mark.dtypes("float32")
@pytest.mark.meta_too
@given(
    x=specs(special_values=True, extremes=True),
    other=st.sampled_from(DTYPE_GROUPS["all"]),
    copy=st.sampled_from([None, False, True]),  # None: left out, its default (False)
)
def test_to_changes_device_and_dtype_together(device, dtype, x, other, copy):
    drawn = x.build(dtype=dtype, device="cpu")
    given = {} if copy is None else {"copy": copy}
    # The drawn layout, and its dims reversed: a dense input is then non-contiguous in every example;
    # each documented spelling of the call, every example.
    for t, form in itertools.product((drawn, drawn.permute(tuple(reversed(range(drawn.dim()))))), TO_FORMS):
        out = TO_FORMS[form](t, device, other, **given)
        assert out.device.type == torch.device(device).type, "to() did not move the tensor to the device asked for"
        assert out.dtype == other, "to() did not convert the tensor to the dtype asked for"
        assert out.shape == t.shape, "to() changed the shape"
        if out.device == t.device and other == t.dtype and not copy:  # "then ``self`` is returned"
            assert out is t, "to() with the tensor's own device and dtype did not return self"
        elif t.numel() and out.device.type != "meta":  # "the returned tensor is a copy of ``self``"
            assert_own_storage(out, t, f"to({device}, {other}, copy={copy})")
        # Its own dtype too, each example: self unless copy=True ("a new Tensor is created even when
        # the Tensor already matches").
        kept = t.to(device, dtype) if copy is None else t.to(device, dtype, copy=copy)
        assert (kept is t) == (kept.device == t.device and not copy), f"to({device}, its own dtype, copy={copy}): self or not"
        if t.numel() and _dense(t.shape, t.stride()):  # memory_format's default, preserve_format: "strides will be copied"
            assert out.stride() == t.stride() and kept.stride() == t.stride(), "to() did not keep a dense input's strides"
        if out.device.type == "meta":
            continue
        np.testing.assert_array_equal(
            independent_array(kept.cpu()), independent_array(t), "to() in its own dtype changed the values"
        )
        expected, defined = converted(independent_array(t), other)
        got = independent_array(out.cpu())
        np.testing.assert_array_equal(got[defined], expected[defined], f"values converted to {other} ({form})")
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
    assert len({f.device for f in forms}) == 1, "the spellings of the move put the tensor on different devices"
    assert forms[0].device.type == torch.device(device).type, "the move did not reach the device asked for"
    already = t.to(device)  # on the device already: each form returns the tensor itself, no copy
    again = [already.to(device), already.to(torch.device(device))]
    if already.device.type == "cuda":
        again += [already.cuda(already.device.index), already.to(str(already.device))]
    assert all(f is already for f in again), "a move to the device a tensor is on did not return it itself"
    if forms[0].device.type != "meta":
        assert all(torch.equal(f.cpu(), t) for f in forms), "a spelling of the move changed the values"


@pytest.mark.behaviour("devices.get_device")
@pytest.mark.device_types("cpu", "cuda")
def test_get_device_is_minus_one_on_cpu_else_the_index(device):
    t = torch.zeros(2, device=device)
    if t.device.type == "cpu":
        assert t.get_device() == -1, "get_device() of a CPU tensor is not -1"
    else:  # the index asked for, or the current device's for a bare 'cuda'
        index = torch.device(device).index
        expected = index if index is not None else torch.cuda.current_device()
        assert t.get_device() == expected, "get_device() of a CUDA tensor is not its device's index"


def same_device(tensor_device, default):
    """A tensor's device is the default device: its type, and its index where the default names one."""
    return tensor_device.type == default.type and default.index in (None, tensor_device.index)


@pytest.mark.behaviour("devices.default_device")
@pytest.mark.meta_too
def test_default_device_is_cpu_until_set_and_factories_follow_it(device):
    assert torch.get_default_device() == torch.device("cpu"), "the default device is not initially cpu"
    for target in dict.fromkeys([device, "meta"]):  # the device under test, and one that is never the CPU
        with torch.device(target):  # "used as a context manager to change the default device"
            inside = torch.get_default_device()
            assert inside.type == torch.device(target).type, f"get_default_device() inside torch.device({target!r}): {inside}"
            assert same_device(torch.zeros(1).device, inside), "a factory inside torch.device(d) did not allocate on d"
        assert torch.get_default_device() == torch.device("cpu"), "the default device did not come back after the with block"
        torch.set_default_device(target)
        try:
            now = torch.get_default_device()
            assert now.type == torch.device(target).type, f"get_default_device() after set_default_device({target!r}): {now}"
            assert same_device(torch.zeros(1).device, now), "a factory call was not performed as if passed the default device"
            assert torch.zeros(1, device="cpu").device.type == "cpu", "set_default_device affected an explicit device argument"
        finally:
            torch.set_default_device("cpu")
        assert torch.get_default_device() == torch.device("cpu"), "set_default_device('cpu') did not make the CPU the default"
    # left as found, with no default device: one set to the CPU is a function mode that every later
    # torch call passes through (torch's own way to clear it, though the docs name only devices)
    torch.set_default_device(None)


@pytest.mark.behaviour("devices.cuda_device_objects_differ")
@pytest.mark.device_types("cpu")  # a property of torch.device itself: no GPU needed, checked once
def test_cuda_and_cuda0_device_objects_differ(device):
    assert torch.device("cuda") != torch.device("cuda:0"), "torch.device('cuda') compared equal to torch.device('cuda:0')"
    assert torch.device("cuda").index is None, "torch.device('cuda') has an index"
    assert torch.device("cuda:0").index == 0, "torch.device('cuda:0') does not have index 0"
    assert torch.device("cuda:0") == torch.device("cuda", 0), "torch.device('cuda', 0) is not torch.device('cuda:0')"


@pytest.mark.behaviour("devices.cuda_current_index")
@pytest.mark.device_types("cuda")
def test_cuda_tensor_reports_the_current_index(device):
    t = torch.zeros(1, device="cuda")
    assert t.device == torch.device("cuda", torch.cuda.current_device()), (
        "a tensor made with device='cuda' is not on the current device"
    )
    assert t.device != torch.device("cuda"), "a tensor made with device='cuda' reports no index"


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
    assert out.device == on_device.device, "an operation with a 0-d CPU tensor did not run on the other tensor's device"


@pytest.mark.behaviour("devices.cuda_device_context")
@pytest.mark.device_types("cuda")
def test_cuda_device_is_a_context_manager(device):
    before = torch.cuda.current_device()
    target = torch.cuda.device_count() - 1
    with torch.cuda.device(target):
        assert torch.cuda.current_device() == target, "the current device inside torch.cuda.device(i) is not i"
        assert torch.zeros(1, device="cuda").device.index == target, (
            "a tensor made with device='cuda' did not land on the context's device"
        )
    assert torch.cuda.current_device() == before, "the previous device did not come back on exit"


@pytest.mark.behaviour("devices.module_moves_in_place")
@pytest.mark.meta_too
@given(width=st.integers(1, 4))
def test_module_moves_in_place_and_tensor_cpu_copies(device, width):
    with private_rng():
        model = torch.nn.Sequential(torch.nn.Linear(width, width), torch.nn.Linear(width, 1))
    assert model.to(device) is model, "Module.to did not return the module itself"
    assert {p.device.type for p in model.parameters()} == {torch.device(device).type}, "Module.to left a parameter behind"
    if torch.device(device).type not in ("cpu", "meta"):
        assert model.cpu() is model, "Module.cpu() did not return the module itself"
        assert {p.device.type for p in model.parameters()} == {"cpu"}, "Module.cpu() left a parameter off the CPU"
        if torch.device(device).type == "cuda":  # the notes' own spelling of the move
            assert model.cuda() is model, "Module.cuda() did not return the module itself"
            assert {p.device.type for p in model.parameters()} == {"cuda"}, "Module.cuda() left a parameter off CUDA"
            model.cpu()
        values = list(range(width))
        t = torch.tensor(values, device=device)
        moved = t.cpu()
        assert moved is not t and t.device.type != "cpu", "Tensor.cpu() of a non-CPU tensor moved the tensor itself"
        assert moved.device.type == "cpu" and moved.tolist() == values, (
            "Tensor.cpu() of a non-CPU tensor is not a CPU copy of its values"
        )
    t = torch.ones(width)
    assert t.cpu() is t, "Tensor.cpu() of a CPU tensor did not return it itself"


@pytest.mark.behaviour("devices.two_gpu_copies")
@pytest.mark.needs_two_cuda
def test_copies_and_mixing_between_two_gpus(device):
    a = torch.arange(4.0, device="cuda:0")
    b = a.to("cuda:1")
    assert b.device == torch.device("cuda:1"), ".to('cuda:1') of a cuda:0 tensor is not on cuda:1"
    assert b.cpu().tolist() == [0.0, 1.0, 2.0, 3.0], ".to('cuda:1') of a cuda:0 tensor changed its values"
    with pytest.raises(RuntimeError):
        a + b
    with torch.cuda.device(1):
        assert torch.zeros(1, device="cuda").device == torch.device("cuda:1"), (
            "device='cuda' inside torch.cuda.device(1) is not cuda:1"
        )


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
    assert live.cpu().tolist() == list(range(1024)), "empty_cache changed a live tensor's values"


@pytest.mark.behaviour("devices.cuda_is_available_truthful")
def test_cuda_is_available_says_whether_a_cuda_tensor_can_be_made(device):
    available = torch.cuda.is_available()
    assert type(available) is bool, "torch.cuda.is_available() is not a bool"
    if available:
        assert torch.cuda.device_count() >= 1, "is_available() is True, yet device_count() is 0"
        assert torch.zeros(1, device="cuda").device.type == "cuda", "is_available() is True, yet no CUDA tensor was made"
    else:
        with pytest.raises((RuntimeError, AssertionError)):  # AssertionError: "Torch not compiled with CUDA enabled"
            torch.zeros(1, device="cuda")
