"""Faults in type promotion, broadcasting and in-place rules (catalogue area `rules`)."""

import torch

from conformance.faults import fault


@fault("promotion_ignores_zero_dim_priority", trips=["rules.type_promotion"])
def _(patch):
    """+ promotes over every tensor operand alike, so an int64 zero-dim tensor widens an int32 tensor."""

    def promoting(orig):
        def add(self, other, *rest, **kwargs):
            out = orig(self, other, *rest, **kwargs)
            if isinstance(self, torch.Tensor) and isinstance(other, torch.Tensor) and not out.dtype.is_complex:
                return out.to(torch.promote_types(self.dtype, other.dtype))
            return out

        return add

    patch.method(torch.Tensor, "__add__", promoting)
    patch.method(torch, "add", promoting)


@fault("inplace_add_casts_down", trips=["rules.inplace_casting"])
def _(patch):
    """add_ casts a floating or complex operand into an integral or bool self instead of refusing it."""

    @patch.replace(torch.Tensor, "add_")
    def add_(orig, self, other, *a, **k):
        if isinstance(other, torch.Tensor) and other.dtype != self.dtype:
            other = other.real.to(self.dtype) if other.dtype.is_complex and not self.dtype.is_complex else other.to(self.dtype)
        return orig(self, other, *a, **k)


@fault("broadcast_aligns_leading_dims", trips=["rules.broadcasting"])
def _(patch):
    """torch.add aligns the shorter shape at the leading dimensions when that broadcasts."""

    @patch.replace(torch, "add")
    def add(orig, a, b, *rest, **k):
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and 0 < b.dim() < a.dim():
            leading = b.reshape(*b.shape, *([1] * (a.dim() - b.dim())))
            try:
                return orig(a, leading, *rest, **k)
            except RuntimeError:
                pass
        return orig(a, b, *rest, **k)


@fault("inplace_bypasses_version_counter", trips=["rules.saved_tensor_modified"])
def _(patch):
    """In-place add_, mul_ and zero_ write through .data: no version bump, so backward uses stale saved values."""
    for name in ("add_", "mul_", "zero_"):
        patch.method(torch.Tensor, name, lambda orig: lambda self, *a, **k: (orig(self.data, *a, **k), self)[1])


@fault("add_out_ignores_out", trips=["rules.out_argument"])
def _(patch):
    """torch.add(..., out=t) returns a new tensor and leaves t as it was."""

    @patch.replace(torch, "add")
    def add(orig, a, b, *rest, out=None, **k):
        return orig(a, b, *rest, **k)


@fault("remainder_takes_dividend_sign", trips=["rules.division_and_rounding"])
def _(patch):
    """torch.remainder behaves like fmod: the result takes the sign of the dividend."""
    patch.attribute(torch, "remainder", torch.fmod)
