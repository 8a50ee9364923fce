"""Faults in numPy bridge (catalogue area `numpy_bridge`)."""

import numpy as np
import torch

from conformance.faults import fault


@fault("numpy_returns_copy", trips=["numpy_bridge.numpy_shares_memory"])
def _(patch):
    """Tensor.numpy() returns a copy instead of sharing memory."""
    patch.method(torch.Tensor, "numpy", lambda orig: lambda self, *a, **k: orig(self, *a, **k).copy())


@fault("numpy_copies_strided", trips=["numpy_bridge.numpy_shares_memory"])
def _(patch):
    """Tensor.numpy() of a non-contiguous tensor silently returns a contiguous copy."""

    @patch.replace(torch.Tensor, "numpy")
    def numpy(orig, self, *a, **k):
        out = orig(self, *a, **k)
        return out if self.is_contiguous() else np.ascontiguousarray(out).copy()


@fault("from_numpy_copies", trips=["numpy_bridge.from_numpy_shares_memory"])
def _(patch):
    """torch.from_numpy copies the array."""
    patch.method(torch, "from_numpy", lambda orig: lambda a: orig(np.array(a, copy=True)))


@fault("tensor_of_ndarray_aliases", trips=["numpy_bridge.tensor_copies"])
def _(patch):
    """torch.tensor(ndarray) shares memory instead of copying."""

    @patch.replace(torch, "tensor")
    def tensor(orig, data, *a, **k):
        if isinstance(data, np.ndarray) and not a and not k:
            return torch.as_tensor(data)
        return orig(data, *a, **k)


@fault("as_tensor_copies", trips=["numpy_bridge.as_tensor_shares"])
def _(patch):
    """torch.as_tensor(ndarray) copies."""

    @patch.replace(torch, "as_tensor")
    def as_tensor(orig, data, *args, **kwargs):
        return orig(np.array(data, copy=True) if isinstance(data, np.ndarray) else data, *args, **kwargs)


@fault("numpy_ignores_requires_grad", trips=["numpy_bridge.numpy_requires_grad"])
def _(patch):
    """Tensor.numpy() no longer refuses tensors that require grad."""
    patch.method(torch.Tensor, "numpy", lambda orig: lambda self, *a, **k: orig(self.detach(), *a, **k))


@fault("numpy_of_cuda_copies_to_host", trips=["numpy_bridge.numpy_non_cpu_raises"], devices=("off_cpu",))
def _(patch):
    """Tensor.numpy() of a non-CPU tensor silently copies it to the host instead of raising."""

    @patch.replace(torch.Tensor, "numpy")
    def numpy(orig, self, *a, **k):
        if self.device.type != "cpu":
            if self.device.type == "meta":
                return np.zeros(tuple(self.shape), dtype=np.float32)
            return orig(self.cpu(), *a, **k)
        return orig(self, *a, **k)


@fault("bfloat16_numpy_as_float32", trips=["numpy_bridge.numpy_unsupported_dtype_raises"])
def _(patch):
    """Tensor.numpy() of bfloat16/complex32 silently upcasts instead of raising TypeError."""

    @patch.replace(torch.Tensor, "numpy")
    def numpy(orig, self, *a, **k):
        if self.dtype == torch.bfloat16:
            return orig(self.float(), *a, **k)
        if self.dtype == torch.complex32:
            return orig(self.to(torch.complex64), *a, **k)
        return orig(self, *a, **k)


@fault("int8_from_numpy_widens", trips=["numpy_bridge.int8_round_trips"])
def _(patch):
    """torch.from_numpy turns int8 arrays into int16 tensors (the old CharTensor gap)."""
    patch.method(torch, "from_numpy", lambda orig: lambda a: orig(a.astype(np.int16) if a.dtype == np.int8 else a))


@fault("negative_strides_copied", trips=["numpy_bridge.negative_strides_rejected"])
def _(patch):
    """torch.from_numpy copies negative-stride arrays instead of raising ValueError."""

    @patch.replace(torch, "from_numpy")
    def from_numpy(orig, a):
        if any(s < 0 for s in a.strides):
            a = a.copy()
        return orig(a)


@fault("readonly_array_rejected", trips=["numpy_bridge.readonly_array_shares"])
def _(patch):
    """torch.from_numpy copies read-only arrays instead of sharing them."""

    @patch.replace(torch, "from_numpy")
    def from_numpy(orig, a):
        return orig(a.copy() if not a.flags.writeable else a)


@fault("zero_dim_numpy_becomes_1d", trips=["numpy_bridge.zero_dim_round_trip"])
def _(patch):
    """Tensor.numpy() of a 0-d tensor returns a 1-element 1-d array."""
    patch.method(
        torch.Tensor,
        "numpy",
        lambda orig: lambda self, *a, **k: orig(self, *a, **k).reshape(1) if self.dim() == 0 else orig(self, *a, **k),
    )


@fault("from_numpy_converts_anything", trips=["numpy_bridge.from_numpy_rejects_others"])
def _(patch):
    """torch.from_numpy converts lists, object arrays and foreign byte orders through torch.tensor."""

    @patch.replace(torch, "from_numpy")
    def from_numpy(orig, data):
        if not isinstance(data, np.ndarray) or data.dtype == object or not data.dtype.isnative:
            return torch.tensor(np.asarray(data, dtype=np.float64))
        return orig(data)


@fault("numpy_force_ignores_conj", trips=["numpy_bridge.numpy_force"])
def _(patch):
    """numpy(force=True) hands out the memory of a conjugated view without conjugating it."""

    @patch.replace(torch.Tensor, "numpy")
    def numpy(orig, self, *, force=False):
        if force:
            base = self.detach().cpu()
            return orig(base.conj() if base.is_conj() else base)  # .conj() drops the bit: the raw memory
        return orig(self)


@fault("numpy_of_conj_unconjugated", trips=["numpy_bridge.numpy_conj_refused"])
def _(patch):
    """numpy() of a conjugated view returns the underlying, unconjugated values."""

    @patch.replace(torch.Tensor, "numpy")
    def numpy(orig, self, *a, **k):
        if self.is_conj():
            return orig(self.conj(), *a, **k)
        return orig(self, *a, **k)


@fault("numpy_densifies_sparse", trips=["numpy_bridge.numpy_sparse_refused"])
def _(patch):
    """numpy() of a sparse tensor quietly densifies it."""

    @patch.replace(torch.Tensor, "numpy")
    def numpy(orig, self, *a, **k):
        return orig(self.to_dense(), *a, **k) if self.layout != torch.strided else orig(self, *a, **k)


@fault("zero_dim_numpy_zeroed", trips=["numpy_bridge.zero_dim_round_trip"])
def _(patch):
    """Tensor.numpy() of a 0-d tensor returns a fresh 0-d array of zero, not the tensor's value."""
    patch.method(
        torch.Tensor,
        "numpy",
        lambda orig: lambda self, *a, **k: np.zeros_like(orig(self, *a, **k)) if self.dim() == 0 else orig(self, *a, **k),
    )
