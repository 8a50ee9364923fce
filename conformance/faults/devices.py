"""Faults in device moves and modules."""
import copy

import torch
from torch import nn

from conformance.faults import fault


@fault("to_device_drops_dtype", trips=["devices.to_device_and_dtype"], devices=("meta", "cuda"))
def _(patch):
    """.to(device, dtype) moves the tensor but keeps its dtype."""
    def make(orig):
        def to(self, *a, **k):
            if len(a) == 2 and isinstance(a[1], torch.dtype) and not isinstance(a[0], torch.dtype):
                return orig(self, a[0], **k)
            return orig(self, *a, **k)
        return to
    patch.method(torch.Tensor, "to", make)


@fault("to_device_object_ignored", trips=["devices.to_forms_agree"], devices=("meta", "cuda"))
def _(patch):
    """.to(torch.device(...)) leaves the tensor where it is; only strings move it."""
    def make(orig):
        def to(self, *a, **k):
            if len(a) == 1 and isinstance(a[0], torch.device) and not k:
                return self
            return orig(self, *a, **k)
        return to
    patch.method(torch.Tensor, "to", make)


@fault("get_device_zero_on_cpu", trips=["devices.get_device"])
def _(patch):
    """get_device() of a CPU tensor returns 0."""
    patch.method(torch.Tensor, "get_device", lambda orig: lambda self: 0 if self.device.type == "cpu" else orig(self))


@fault("cuda_means_cuda0", trips=["devices.cuda_device_objects_differ"])
def _(patch):
    """torch.device('cuda') is normalised to cuda:0, so the two compare equal."""
    device = torch.device

    def make(orig):
        def make_device(spec, *a):
            return device("cuda:0") if spec == "cuda" and not a else device(spec, *a)
        return make_device
    patch.method(torch, "device", make)


@fault("mixed_devices_moved_silently", trips=["devices.mixed_devices_raise"], devices=("meta", "cuda"))
def _(patch):
    """Adding a CPU tensor to a tensor on another device moves it instead of raising."""
    def make(orig):
        def add(self, other):
            if isinstance(other, torch.Tensor) and other.device != self.device and other.dim():
                other = other.to(self.device)
            return orig(self, other)
        return add
    patch.method(torch.Tensor, "__add__", make)


@fault("cuda_tensor_index_none", trips=["devices.cuda_current_index", "devices.get_device"], devices=("cuda",))
def _(patch):
    """get_device() of a CUDA tensor returns -1 (CUDA only)."""
    patch.method(torch.Tensor, "get_device", lambda orig: lambda self: -1 if self.device.type == "cuda" else orig(self))


@fault("module_to_copies", trips=["devices.module_moves_in_place"], devices=("meta", "cuda"))
def _(patch):
    """Module.to returns a moved copy and leaves the original where it was."""
    def make(orig):
        def to(self, *a, **k):
            return orig(copy.deepcopy(self), *a, **k)
        return to
    patch.method(nn.Module, "to", make)


@fault("call_skips_hooks", trips=["modules.call_runs_hooks"])
def _(patch):
    """Calling a module runs forward only, skipping its hooks."""
    patch.method(nn.Module, "__call__", lambda orig: lambda self, *a, **k: self.forward(*a, **k))


@fault("parameter_no_grad", trips=["modules.parameter_is_tensor"])
def _(patch):
    """nn.Parameter defaults to requires_grad=False."""
    patch.method(nn.Parameter, "__new__", lambda orig: lambda cls, data=None, requires_grad=False: orig(cls, data, requires_grad))


@fault("named_parameters_unprefixed", trips=["modules.named_parameters"])
def _(patch):
    """named_parameters() drops the submodule prefix from names."""
    patch.method(nn.Module, "named_parameters", lambda orig: lambda self, *a, **k:
                 ((name.rsplit(".", 1)[-1], p) for name, p in orig(self, *a, **k)))


@fault("state_dict_copies", trips=["modules.state_dict_aliases"])
def _(patch):
    """state_dict() returns copies (the note's reading) instead of aliases."""
    patch.method(nn.Module, "state_dict", lambda orig: lambda self, *a, **k:
                 {name: t.clone() for name, t in orig(self, *a, **k).items()})


@fault("load_state_dict_assigns", trips=["modules.load_state_dict_copies"])
def _(patch):
    """load_state_dict swaps in the given tensors instead of copying values into the parameters."""
    patch.method(nn.Module, "load_state_dict", lambda orig: lambda self, state, strict=True, assign=False:
                 orig(self, state, strict=strict, assign=True))


@fault("dropout_ignores_eval", trips=["modules.eval_dropout_identity"])
def _(patch):
    """Dropout keeps dropping in eval() mode."""
    patch.method(nn.Dropout, "forward", lambda orig: lambda self, x: torch.nn.functional.dropout(x, self.p, True))


@fault("batchnorm_eval_uses_batch_stats", trips=["modules.eval_batchnorm_running_stats"])
def _(patch):
    """BatchNorm in eval() normalises with the batch statistics."""
    def make(orig):
        def forward(self, x):
            if self.training:
                return orig(self, x)
            return torch.nn.functional.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return forward
    patch.method(nn.BatchNorm1d, "forward", make)


@fault("eval_disables_grad", trips=["modules.modes_independent"])
def _(patch):
    """eval() also turns grad mode off."""
    def make(orig):
        def eval_(self):
            torch.set_grad_enabled(False)
            return orig(self)
        return eval_
    patch.method(nn.Module, "eval", make)


@fault("train_returns_none", trips=["modules.train_eval_return_self"])
def _(patch):
    """train() and eval() return None."""
    patch.method(nn.Module, "train", lambda orig: lambda self, mode=True: (orig(self, mode), None)[1])


@fault("sequential_copies_layers", trips=["modules.sequential_shares_layers"])
def _(patch):
    """nn.Sequential deep-copies the modules it is given."""
    patch.method(nn.Sequential, "__init__", lambda orig: lambda self, *args: orig(self, *[copy.deepcopy(a) for a in args]))


@fault("modules_ordered_dict", trips=["modules.modules_is_dict"])
def _(patch):
    """Module._modules is an OrderedDict."""
    from collections import OrderedDict

    def make(orig):
        def init(self, *a, **k):
            orig(self, *a, **k)
            object.__setattr__(self, "_modules", OrderedDict(self._modules))
        return init
    patch.method(nn.Module, "__init__", make)


@fault("conv2d_ceil_mode", trips=["modules.conv2d_output_shape"])
def _(patch):
    """Conv2d rounds its output size up when the stride does not divide evenly."""
    def make(orig):
        def forward(self, x):
            s = self.stride[0]
            if s > 1:
                x = torch.nn.functional.pad(x, (0, s - 1, 0, s - 1))
            return orig(self, x)
        return forward
    patch.method(nn.Conv2d, "forward", make)


@fault("cuda_device_context_noop", trips=["devices.cuda_device_context", "devices.two_gpu_copies"],
       devices=("cuda",), gpus=2)
def _(patch):
    """torch.cuda.device(i) leaves the current device unchanged (observable with two GPUs)."""
    import contextlib

    patch.method(torch.cuda, "device", lambda orig: lambda index: contextlib.nullcontext())


@fault("cross_gpu_copy_stays", trips=["devices.two_gpu_copies"], devices=("cuda",), gpus=2)
def _(patch):
    """.to('cuda:1') of a cuda:0 tensor returns it unmoved."""
    def make(orig):
        def to(self, *a, **k):
            if a and str(a[0]).startswith("cuda:") and self.device.type == "cuda":
                return self
            return orig(self, *a, **k)
        return to
    patch.method(torch.Tensor, "to", make)
