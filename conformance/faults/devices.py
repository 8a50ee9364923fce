"""Faults in device moves (catalogue area `devices`)."""

import copy

import torch
from torch import nn

from conformance.faults import DRIFT, fault


@fault("to_device_drops_dtype", trips=["devices.to_device_and_dtype"], devices=("off_cpu",))
def _(patch):
    """.to(device, dtype) moves the tensor but keeps its dtype."""

    @patch.replace(torch.Tensor, "to")
    def to(orig, self, *a, **k):
        if len(a) == 2 and isinstance(a[1], torch.dtype) and not isinstance(a[0], torch.dtype):
            return orig(self, a[0], **k)
        return orig(self, *a, **k)


@fault("to_device_object_ignored", trips=["devices.to_forms_agree"], devices=("off_cpu",))
def _(patch):
    """.to(torch.device(...)) leaves the tensor where it is; only strings move it."""

    @patch.replace(torch.Tensor, "to")
    def to(orig, self, *a, **k):
        if len(a) == 1 and isinstance(a[0], torch.device) and not k:
            return self
        return orig(self, *a, **k)


@fault("get_device_zero_on_cpu", trips=["devices.get_device"])
def _(patch):
    """get_device() of a CPU tensor returns 0."""
    patch.method(torch.Tensor, "get_device", lambda orig: lambda self: 0 if self.device.type == "cpu" else orig(self))


@fault("cuda_means_cuda0", trips=["devices.cuda_device_objects_differ"])
def _(patch):
    """torch.device('cuda') is normalised to cuda:0, so the two compare equal."""
    import torch.utils._device

    device = torch.device

    @patch.replace(torch, "device")
    def make_device(orig, spec, *a):
        return device("cuda:0") if spec == "cuda" and not a else device(spec, *a)


@fault("mixed_devices_moved_silently", trips=["devices.mixed_devices_raise"], devices=("off_cpu",))
def _(patch):
    """Adding a CPU tensor to a tensor on another device moves it instead of raising."""

    @patch.replace(torch.Tensor, "__add__")
    def add(orig, self, other):
        if isinstance(other, torch.Tensor) and other.device != self.device and other.dim():
            other = other.to(self.device)
        return orig(self, other)


@fault("cuda_tensor_index_none", trips=["devices.cuda_current_index", "devices.get_device"], devices=("cuda",))
def _(patch):
    """get_device() of a CUDA tensor returns -1 (CUDA only)."""
    patch.method(torch.Tensor, "get_device", lambda orig: lambda self: -1 if self.device.type == "cuda" else orig(self))


@fault("module_to_copies", trips=["devices.module_moves_in_place"], devices=("off_cpu",))
def _(patch):
    """Module.to returns a moved copy and leaves the original where it was."""

    @patch.replace(nn.Module, "to")
    def to(orig, self, *a, **k):
        return orig(copy.deepcopy(self), *a, **k)


@fault("cuda_device_context_noop", trips=["devices.cuda_device_context", "devices.two_gpu_copies"], devices=("cuda",), gpus=2)
def _(patch):
    """torch.cuda.device(i) leaves the current device unchanged (observable with two GPUs)."""
    import contextlib

    patch.method(torch.cuda, "device", lambda orig: lambda index: contextlib.nullcontext())


@fault("cross_gpu_copy_stays", trips=["devices.two_gpu_copies"], devices=("cuda",), gpus=2)
def _(patch):
    """.to('cuda:1') of a cuda:0 tensor returns it unmoved."""

    @patch.replace(torch.Tensor, "to")
    def to(orig, self, *a, **k):
        if a and str(a[0]).startswith("cuda:") and self.device.type == "cuda":
            return self
        return orig(self, *a, **k)


@fault("empty_cache_does_nothing", trips=["devices.cuda_empty_cache"], devices=("cuda",))
def _(patch):
    """torch.cuda.empty_cache keeps every cached block."""
    patch.attribute(torch.cuda, "empty_cache", lambda: None)


@fault("module_cuda_copies", trips=["devices.module_moves_in_place"], devices=("cuda",))
def _(patch):
    """Module.cuda() returns a moved copy and leaves the module where it was."""
    import copy

    @patch.replace(torch.nn.Module, "cuda")
    def cuda(orig, self, *a, **k):
        return orig(copy.deepcopy(self), *a, **k)


@fault("cuda_always_available", trips=["devices.cuda_is_available_truthful"])
def _(patch):
    """torch.cuda.is_available() says True on a machine without CUDA."""
    patch.attribute(torch.cuda, "is_available", lambda: True)


@fault("to_float_to_int_rounds", trips=["devices.to_device_and_dtype"])
def _(patch):
    """A float converted to an integer dtype by to() is rounded to nearest, not truncated."""

    @patch.replace(torch.Tensor, "to")
    def to(orig, self, *a, **k):
        target = next((x for x in (*a, k.get("dtype")) if isinstance(x, torch.dtype)), None)
        integral = target is not None and not (target.is_floating_point or target.is_complex or target == torch.bool)
        if integral and self.is_floating_point():
            self = self.round()
        return orig(self, *a, **k)


@fault("to_keyword_int_dtype_floors", trips=["devices.to_device_and_dtype"])
def _(patch):
    """to(device=..., dtype=an integer type), dtype spelled as a keyword, floors a float instead of
    truncating it: a negative value with a fraction lands one below."""

    @patch.replace(torch.Tensor, "to")
    def to(orig, self, *a, **k):
        target = k.get("dtype")
        integral = isinstance(target, torch.dtype) and not (target.is_floating_point or target.is_complex or target == torch.bool)
        if integral and self.is_floating_point():
            self = self.floor()
        return orig(self, *a, **k)


@fault("to_same_dtype_copies", trips=["devices.to_device_and_dtype", "devices.to_forms_agree"])
def _(patch):
    """to() of a tensor that already has the asked device and dtype returns a copy, not self."""

    @patch.replace(torch.Tensor, "to")
    def to(orig, self, *a, **k):
        out = orig(self, *a, **k)
        return out.clone() if out is self else out


@fault("to_drops_strides", trips=["devices.to_device_and_dtype"])
def _(patch):
    """to() with a new dtype returns a contiguous tensor, not the dense input's strides."""

    @patch.replace(torch.Tensor, "to")
    def to(orig, self, *a, **k):
        out = orig(self, *a, **k)
        return out if out is self else out.contiguous()


@fault("tensor_cpu_drops_values", trips=["devices.module_moves_in_place"], devices=("accelerator",))
def _(patch):
    """Tensor.cpu() of a tensor off the CPU allocates the CPU tensor but never copies the values into it."""

    @patch.replace(torch.Tensor, "cpu")
    def cpu(orig, self, *a, **k):
        return torch.zeros_like(self, device="cpu") if self.device.type != "cpu" else orig(self, *a, **k)


@fault("to_copy_drifts", trips=["devices.to_device_and_dtype"])
def _(patch):
    """to(..., copy=True) of a tensor that already matches returns a copy whose last element drifted by 0.1%."""

    @patch.replace(torch.Tensor, "to")
    def to(orig, self, *a, **k):
        out = orig(self, *a, **k)
        if k.get("copy") and out.dtype == self.dtype and out.is_floating_point() and out.numel():
            out.view(-1)[-1] *= DRIFT
        return out


@fault("default_device_always_cpu", trips=["devices.default_device"])
def _(patch):
    """torch.get_default_device() answers the CPU whatever the default device is."""
    patch.method(torch, "get_default_device", lambda orig: lambda: torch.device("cpu"))


@fault("set_default_device_ignored", trips=["devices.default_device"])
def _(patch):
    """torch.set_default_device(d) does nothing: factories keep allocating on the CPU."""
    patch.method(torch, "set_default_device", lambda orig: lambda device: None)
