"""Faults in shape operations (catalogue area `shape_ops`)."""

import torch

from conformance.faults import fault


@fault("view_minus_one_transposed", trips=["shape_ops.view_minus_one_k"])
def _(patch):
    """view(-1, k) puts the inferred size last (the note's reading)."""

    @patch.replace(torch.Tensor, "view")
    def view(orig, self, *shape):
        if len(shape) == 2 and shape[0] == -1 and isinstance(shape[1], int) and shape[1] > 0:
            return orig(self, shape[1], -1) if self.numel() % (shape[1] ** 2) == 0 else orig(self, *shape)
        return orig(self, *shape)


@fault("unsqueeze_negative_off_by_one", trips=["shape_ops.unsqueeze"])
def _(patch):
    """unsqueeze with a negative dim counts in the input, not the result."""

    @patch.replace(torch.Tensor, "unsqueeze")
    def unsqueeze(orig, self, dim):
        return orig(self, dim + self.dim() if dim < 0 else dim)


@fault("squeeze_keeps_leading", trips=["shape_ops.squeeze_all"])
def _(patch):
    """squeeze() keeps a leading size-1 dimension."""

    @patch.replace(torch.Tensor, "squeeze")
    def squeeze(orig, self, *dims):
        if dims:
            return orig(self, *dims)
        out = orig(self)
        return out.unsqueeze(0) if self.dim() and self.shape[0] == 1 and out.dim() < self.dim() else out


@fault("squeeze_dim_any_size", trips=["shape_ops.squeeze_dim"])
def _(patch):
    """squeeze(d) of a dimension larger than 1 raises instead of returning the tensor unchanged."""

    @patch.replace(torch.Tensor, "squeeze")
    def squeeze(orig, self, *dims):
        if dims and self.dim() and self.shape[dims[0]] != 1:
            raise RuntimeError("cannot squeeze a dimension larger than 1")
        return orig(self, *dims)


@fault("repeat_interleaves", trips=["shape_ops.repeat_tiles"])
def _(patch):
    """repeat of a 1-D tensor repeats each element instead of tiling."""

    @patch.replace(torch.Tensor, "repeat")
    def repeat(orig, self, *sizes):
        if self.dim() == 1 and len(sizes) == 1 and isinstance(sizes[0], int):
            return self.repeat_interleave(sizes[0])
        return orig(self, *sizes)


@fault("repeat_interleave_tiles", trips=["shape_ops.repeat_interleave"])
def _(patch):
    """repeat_interleave tiles the whole dimension instead."""

    @patch.replace(torch.Tensor, "repeat_interleave")
    def repeat_interleave(orig, self, repeats, dim=None, **k):
        if isinstance(repeats, int) and dim is not None:
            sizes = [1] * self.dim()
            sizes[dim] = repeats
            return self.repeat(*sizes)
        return orig(self, repeats, dim, **k)


@fault("t_underscore_takes_dims", trips=["shape_ops.t_takes_no_argument"])
def _(patch):
    """t_() accepts (and ignores) an argument instead of raising TypeError."""

    @patch.replace(torch.Tensor, "t_")
    def t_(orig, self, *ignored):
        return orig(self)


@fault("unsqueeze_wraps_against_the_input_rank", trips=["shape_ops.unsqueeze"])
def _(patch):
    """unsqueeze wraps a negative dim against the input's rank instead of rank + 1 (inserting one place early)."""

    @patch.replace(torch.Tensor, "unsqueeze")
    def unsqueeze(orig, self, dim):
        return orig(self, dim + self.dim() if dim < 0 and dim + self.dim() >= 0 else dim)


@fault("repeat_interleave_wraps_negative_dims_wrong", trips=["shape_ops.repeat_interleave"])
def _(patch):
    """repeat_interleave with a negative dim repeats along the first dimension."""

    @patch.replace(torch.Tensor, "repeat_interleave")
    def repeat_interleave(orig, self, repeats, dim=None, **k):
        return orig(self, repeats, 0 if dim is not None and dim < 0 else dim, **k)


@fault("flatten_ignores_end_dim", trips=["shape_ops.flatten_range"])
def _(patch):
    """Tensor.flatten(start, end) flattens from start to the last dimension whatever end says."""

    @patch.replace(torch.Tensor, "flatten")
    def flatten(orig, self, start_dim=0, end_dim=-1):
        return orig(self, start_dim, -1)


@fault("dim_skips_size_one", trips=["shape_ops.dim_is_ndim"])
def _(patch):
    """Tensor.dim() counts only the dimensions of size other than 1."""
    patch.method(torch.Tensor, "dim", lambda orig: lambda self: sum(1 for n in self.shape if n != 1))


@fault("pad_first_dimension_first", trips=["shape_ops.pad_constant"])
def _(patch):
    """F.pad reads its pairs from the first padded dimension to the last, not from the last one forward."""
    import torch.nn.functional as F

    @patch.replace(F, "pad")
    def pad(orig, x, pad, *a, **k):
        pairs = [pad[i : i + 2] for i in range(0, len(pad), 2)]
        return orig(x, tuple(v for p in reversed(pairs) for v in p), *a, **k)


@fault("interpolate_ignores_align_corners", trips=["shape_ops.interpolate_linear_corners"])
def _(patch):
    """F.interpolate treats align_corners=True as False (half-pixel centres)."""
    import torch.nn.functional as F

    @patch.replace(F, "interpolate")
    def interpolate(orig, x, *a, align_corners=None, **k):
        return orig(x, *a, align_corners=False if align_corners else align_corners, **k)


def _integral(dtype):
    return not dtype.is_floating_point and not dtype.is_complex and dtype != torch.bool


def _keeps_version(orig):
    """`orig`, an in-place method, with the tensor's version counter set back after the write."""

    def inplace(self, *a, **k):
        before = self._version
        out = orig(self, *a, **k)
        torch._C._autograd._unsafe_set_version_counter((self,), (before,))
        return out

    return inplace


@fault("unsqueeze_copies", trips=["shape_ops.unsqueeze"])
def _(patch):
    """unsqueeze() returns a copy instead of sharing the input's data."""
    patch.method(torch.Tensor, "unsqueeze", lambda orig: lambda self, *a, **k: orig(self, *a, **k).clone())


@fault("squeeze_copies", trips=["shape_ops.squeeze_all", "shape_ops.squeeze_dim"])
def _(patch):
    """squeeze() returns a copy instead of sharing the input's storage."""
    patch.method(torch.Tensor, "squeeze", lambda orig: lambda self, *a, **k: orig(self, *a, **k).clone())


@fault("repeat_widens_integers", trips=["shape_ops.repeat_tiles"])
def _(patch):
    """repeat of an integral tensor returns float64: the same numbers in another dtype."""

    @patch.replace(torch.Tensor, "repeat")
    def repeat(orig, self, *a, **k):
        out = orig(self, *a, **k)
        return out.to(torch.float64) if _integral(out.dtype) else out


@fault("repeat_interleave_widens_integers", trips=["shape_ops.repeat_interleave"])
def _(patch):
    """repeat_interleave of an integral tensor returns float64: the same numbers in another dtype."""

    @patch.replace(torch.Tensor, "repeat_interleave")
    def repeat_interleave(orig, self, *a, **k):
        out = orig(self, *a, **k)
        return out.to(torch.float64) if _integral(out.dtype) else out


@fault("t_underscore_keeps_the_version", trips=["shape_ops.t_takes_no_argument"])
def _(patch):
    """t_() transposes in place but leaves the version counter, so autograd misses the write."""
    patch.method(torch.Tensor, "t_", _keeps_version)


@fault("flatten_copies", trips=["shape_ops.flatten_range"])
def _(patch):
    """flatten() always copies: not the input itself where nothing is flattened, nor a view where
    one is possible."""
    patch.method(torch.Tensor, "flatten", lambda orig: lambda self, *a, **k: orig(self, *a, **k).clone())


@fault("flatten_widens_integers", trips=["shape_ops.flatten_range"])
def _(patch):
    """flatten of an integral tensor returns float64: the same numbers in another dtype."""

    @patch.replace(torch.Tensor, "flatten")
    def flatten(orig, self, *a, **k):
        out = orig(self, *a, **k)
        return out.to(torch.float64) if _integral(out.dtype) else out


@fault("t_underscore_moves_data", trips=["shape_ops.t_takes_no_argument"])
def _(patch):
    """t_() of a square matrix writes the transposed values into its memory and keeps its strides
    (right values, but a data move where a view change is due)."""

    @patch.replace(torch.Tensor, "t_")
    def t_(orig, self):
        if self.dim() == 2 and self.shape[0] == self.shape[1] and self.shape[0] > 1:
            with torch.no_grad():
                self.copy_(self.t().clone())
            return self
        return orig(self)


@fault("flatten_end_dim_defaults_to_start", trips=["shape_ops.flatten_range"])
def _(patch):
    """flatten() with end_dim omitted flattens only start_dim (end_dim defaults to start_dim, not -1)."""

    def make(orig):
        def flatten(*a, **k):
            if "end_dim" not in k and len(a) < 3:
                k["end_dim"] = k.get("start_dim", a[1] if len(a) > 1 else 0)
            return orig(*a, **k)

        return flatten

    patch.method(torch.Tensor, "flatten", make)
    patch.method(torch, "flatten", make)


@fault("flip_first_dim_only", trips=["shape_ops.flip_reverses_copy"])
def _(patch):
    """torch.flip and Tensor.flip reverse only the first dim of dims."""

    def make(orig):
        def flip(self, dims):
            return orig(self, list(dims)[:1])

        return flip

    patch.method(torch, "flip", make)
    patch.method(torch.Tensor, "flip", make)


@fault("flip_nothing_returns_input", trips=["shape_ops.flip_reverses_copy"])
def _(patch):
    """torch.flip with nothing to reverse (no dims, or only dims of size <= 1) returns a view of the
    input instead of a copy of its data."""

    def make(orig):
        def flip(self, dims):
            if all(self.shape[d] <= 1 for d in dims) if self.dim() else True:
                return self.view_as(self)
            return orig(self, dims)

        return flip

    patch.method(torch, "flip", make)
    patch.method(torch.Tensor, "flip", make)


@fault("roll_flattened_rolls_dim0", trips=["shape_ops.roll_wraps_around"])
def _(patch):
    """roll with dims None rolls along dimension 0 instead of rolling the flattened tensor."""

    def make(orig):
        def roll(self, shifts, dims=None):
            if dims is None and self.dim() > 0:
                return orig(self, shifts, 0)
            return orig(self, shifts, dims)

        return roll

    patch.method(torch, "roll", make)
    patch.method(torch.Tensor, "roll", make)


@fault("roll_negative_shift_forward", trips=["shape_ops.roll_wraps_around"])
def _(patch):
    """roll reads a negative shift as a positive one."""

    def make(orig):
        def roll(self, shifts, dims=None):
            shifts = tuple(abs(s) for s in shifts) if isinstance(shifts, tuple | list) else abs(shifts)
            return orig(self, shifts, dims)

        return roll

    patch.method(torch, "roll", make)
    patch.method(torch.Tensor, "roll", make)


@fault("unbind_default_dim_last", trips=["shape_ops.unbind_slices"])
def _(patch):
    """unbind with dim omitted unbinds the last dimension instead of dimension 0."""

    def make(orig):
        def unbind(self, dim=-1):
            return orig(self, dim)

        return unbind

    patch.method(torch, "unbind", make)
    patch.method(torch.Tensor, "unbind", make)


@fault("unbind_drops_last_slice", trips=["shape_ops.unbind_slices"])
def _(patch):
    """torch.unbind returns every slice but the last."""
    patch.method(torch, "unbind", lambda orig: lambda self, dim=0: orig(self, dim)[:-1])


@fault("unfold_ignores_step", trips=["shape_ops.unfold_windows"])
def _(patch):
    """Tensor.unfold steps by 1 whatever step it is given."""
    patch.method(torch.Tensor, "unfold", lambda orig: lambda self, dimension, size, step: orig(self, dimension, size, 1))


@fault("unfold_copies", trips=["shape_ops.unfold_windows"])
def _(patch):
    """Tensor.unfold returns a copy of the windows instead of a view."""
    patch.method(torch.Tensor, "unfold", lambda orig: lambda self, *a: orig(self, *a).clone())


@fault("unbind_copies", trips=["shape_ops.unbind_slices"])
def _(patch):
    """Tensor.unbind returns copies of the slices instead of views of the tensor."""
    patch.method(torch.Tensor, "unbind", lambda orig: lambda self, dim=0: tuple(p.clone() for p in orig(self, dim)))
