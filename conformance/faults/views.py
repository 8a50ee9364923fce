"""Faults in views and contiguity (catalogue area `views`)."""

import torch

from conformance.faults import fault


@fault(
    "view_copies",
    trips=[
        "views.view_shares_storage",
        "views.view_infers_size",
        "views.view_stride_condition",
        "views.no_torch_view",
        "shape_ops.view_minus_one_k",
    ],
)
def _(patch):
    """view() returns a copy with the right values instead of aliasing the base."""
    patch.method(torch.Tensor, "view", lambda orig: lambda self, *a, **k: orig(self, *a, **k).clone())


@fault("view_copies_on_incompatible_strides", trips=["views.view_stride_condition"])
def _(patch):
    """view() silently copies where the strides forbid a view, instead of raising."""

    @patch.replace(torch.Tensor, "view")
    def view(orig, self, *shape, **k):
        try:
            return orig(self, *shape, **k)
        except RuntimeError:
            return self.reshape(*shape)


@fault("view_minus_one_off_by_one", trips=["views.view_infers_size"])
def _(patch):
    """view(-1, ...) infers the wrong size whenever the inferred side would be 1 (it raises)."""

    @patch.replace(torch.Tensor, "view")
    def view(orig, self, *shape, **k):
        dims = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)) else shape
        if -1 in tuple(dims) and isinstance(dims, (tuple, list)):
            known = 1
            for d in dims:
                if d != -1:
                    known *= d
            if known and self.numel() // known == 1:
                raise RuntimeError("shape '[-1]' is invalid for input")
        return orig(self, *shape, **k)


@fault("reshape_always_copies", trips=["views.reshape_view_or_copy"])
def _(patch):
    """reshape() always copies, even where a view is possible."""
    patch.method(torch.Tensor, "reshape", lambda orig: lambda self, *a, **k: orig(self, *a, **k).clone())


@fault("contiguous_always_copies", trips=["views.contiguous_self_or_copy"])
def _(patch):
    """contiguous() copies even an already contiguous tensor (the note's claim)."""
    patch.method(torch.Tensor, "contiguous", lambda orig: lambda self, *a, **k: orig(self, *a, **k).clone())


@fault("narrow_clamps_negative_start", trips=["views.narrow_shares"])
def _(patch):
    """narrow() reads a negative start as 0 instead of counting from the end of dim."""

    def make(orig):
        def narrow(self, dim, start, length):
            return orig(self, dim, max(int(start), 0), length)

        return narrow

    patch.method(torch.Tensor, "narrow", make)
    patch.method(torch, "narrow", make)


@fault("narrow_copies", trips=["views.narrow_shares"])
def _(patch):
    """narrow() returns a copy."""
    patch.method(torch.Tensor, "narrow", lambda orig: lambda self, *a, **k: orig(self, *a, **k).clone())


@fault("expand_materialises", trips=["views.expand_shares"])
def _(patch):
    """expand() materialises the repeated elements instead of using stride 0."""
    patch.method(torch.Tensor, "expand", lambda orig: lambda self, *a, **k: orig(self, *a, **k).clone())


@fault("transpose_copies_strided", trips=["views.transpose_shares"])
def _(patch):
    """transpose() copies when its input is not contiguous (fires only on strided layouts)."""

    @patch.replace(torch.Tensor, "transpose")
    def transpose(orig, self, *a, **k):
        out = orig(self, *a, **k)
        return out if self.is_contiguous() else out.clone()


@fault("permute_copies", trips=["views.permute_shares"])
def _(patch):
    """permute() returns a copy."""
    patch.method(torch.Tensor, "permute", lambda orig: lambda self, *a, **k: orig(self, *a, **k).clone())


@fault("stepped_slice_copies", trips=["views.slicing_shares"])
def _(patch):
    """Indexing with a stepped slice returns a copy."""

    @patch.replace(torch.Tensor, "__getitem__")
    def getitem(orig, self, index):
        out = orig(self, index)
        parts = index if isinstance(index, tuple) else (index,)
        if any(isinstance(p, slice) and p.step not in (None, 1) for p in parts):
            return out.clone()
        return out


@fault("is_contiguous_strict_on_size1", trips=["views.is_contiguous_rule"])
def _(patch):
    """is_contiguous() also demands row-major strides on size-1 dimensions."""

    @patch.replace(torch.Tensor, "is_contiguous")
    def is_contiguous(orig, self, *a, **k):
        expected, strict = 1, True
        for n, s in zip(reversed(self.shape), reversed(self.stride())):
            strict &= s == expected
            expected *= max(n, 1)
        return orig(self, *a, **k) and (self.numel() == 0 or strict)


@fault("compiled_outputs_are_copies", trips=["views.reshape_view_or_copy", "views.view_shares_storage"], modes=("aot_eager",))
def _(patch):
    """Compiled code returns copies where eager code returns views (a compiler that drops aliasing)."""
    from torch.utils._pytree import tree_map

    @patch.replace(torch, "compile")
    def compile(orig, model=None, **kwargs):
        compiled = orig(model, **kwargs)

        def copying(*args, **kw):
            return tree_map(lambda t: t.clone() if isinstance(t, torch.Tensor) else t, compiled(*args, **kw))

        return copying


@fault("torch_view_function", trips=["views.no_torch_view"])
def _(patch):
    """torch grows a view function that reshapes in place (the note's reading)."""

    def view(tensor, *shape):
        return tensor.set_(tensor.untyped_storage(), tensor.storage_offset(), tensor.view(*shape).shape)

    patch.attribute(torch, "view", view)


@fault("permute_ignores_negative_dims", trips=["views.permute_shares"])
def _(patch):
    """permute reads a negative dim as counting from the front (abs) instead of wrapping it."""

    @patch.replace(torch.Tensor, "permute")
    def permute(orig, self, *dims):
        dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        fixed = [abs(d) if d < 0 and abs(d) < self.dim() and abs(d) not in dims else d for d in dims]
        return orig(self, tuple(fixed))  # a tuple: permute(()) of a 0-d tensor takes no dims as torch does


@fault("narrow_window_one_late", trips=["views.narrow_shares"])
def _(patch):
    """narrow starts its window one element late wherever there is room: still a view, on every layout
    and device alike, so only an oracle that does not call narrow itself can see it."""

    @patch.replace(torch.Tensor, "narrow")
    def narrow(orig, self, dim, start, length):
        return orig(self, dim, start + 1 if start + length < self.shape[dim] else start, length)


@fault(
    "compiled_dynamic_outputs_column_major",
    trips=["views.reshape_view_or_copy", "views.transpose_shares"],  # transpose documents its strides
    modes=("aot_eager",),
)
def _(patch):
    """Code compiled with dynamic=True returns each output of two or more dims as a column-major
    copy: the values are right, the strides (and a view's sharing) are not."""
    from torch.utils._pytree import tree_map

    def column_major(t):
        if not isinstance(t, torch.Tensor) or t.dim() < 2:
            return t
        reverse = tuple(reversed(range(t.dim())))
        return t.permute(reverse).contiguous().permute(reverse)

    @patch.replace(torch, "compile")
    def compile(orig, model=None, **kwargs):
        compiled = orig(model, **kwargs)
        if kwargs.get("dynamic") is not True:
            return compiled
        return lambda *args, **kw: tree_map(column_major, compiled(*args, **kw))


def _shape_of(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list, torch.Size)) else tuple(shape)


def _column_major(orig, self, shape):
    """`self` viewed as `shape`, but filled in column-major order: still a view of the same
    storage, of the right shape, when the reversed shape can be viewed; else None (and for fewer
    than two dims, where the orders agree)."""
    if len(shape) < 2:
        return None
    if -1 in shape:
        known = 1
        for d in shape:
            known *= d if d != -1 else 1
        shape = tuple(self.numel() // known if d == -1 and known else d for d in shape)
    try:
        reversed_view = orig(self, tuple(reversed(shape)))
    except RuntimeError:
        return None
    return reversed_view.permute(*reversed(range(len(shape))))


@fault(
    "view_reads_column_major",
    trips=["views.view_infers_size", "views.view_stride_condition", "views.no_torch_view", "shape_ops.view_minus_one_k"],
)
def _(patch):
    """view(shape) returns a view of the right shape and storage that reads the elements in
    column-major order instead of row-major."""

    @patch.replace(torch.Tensor, "view")
    def view(orig, self, *shape):
        if shape and isinstance(shape[0], torch.dtype):
            return orig(self, *shape)
        wrong = _column_major(orig, self, _shape_of(shape))
        return wrong if wrong is not None else orig(self, *shape)


@fault("view_of_empty_copies", trips=["views.view_shares_storage"])
def _(patch):
    """view() of a tensor with no elements returns a fresh empty tensor: no memory to tell apart,
    but not the base's storage."""

    @patch.replace(torch.Tensor, "view")
    def view(orig, self, *a, **k):
        out = orig(self, *a, **k)
        return out.clone() if self.numel() == 0 else out


_SAME_SIZE = {torch.int64: torch.float64, torch.float32: torch.int32, torch.bfloat16: torch.int16, torch.bool: torch.uint8}


@fault("view_reinterprets_dtype", trips=["views.view_shares_storage"])
def _(patch):
    """view(shape) returns the base's bytes reinterpreted as another dtype of the same size (a
    view, of the right shape, but not of the base's dtype)."""

    @patch.replace(torch.Tensor, "view")
    def view(orig, self, *a, **k):
        out = orig(self, *a, **k)
        other = _SAME_SIZE.get(out.dtype)
        return orig(out, other) if other is not None and not (a and isinstance(a[0], torch.dtype)) else out


@fault("view_bumps_its_input", trips=["views.no_torch_view"])
def _(patch):
    """view() writes into the tensor it is called on (adds 1, or negates a bool) before viewing it."""

    @patch.replace(torch.Tensor, "view")
    def view(orig, self, *a, **k):
        if not (a and isinstance(a[0], torch.dtype)) and not self.requires_grad:
            with torch.no_grad():
                self.copy_(~self if self.dtype == torch.bool else self + 1)
        return orig(self, *a, **k)


@fault("reshape_reads_column_major", trips=["views.reshape_view_or_copy"])
def _(patch):
    """reshape(shape) of a contiguous tensor returns its elements in column-major order (a view, of
    the right shape): an oracle that reshapes with torch itself agrees with it."""

    @patch.replace(torch.Tensor, "reshape")
    def reshape(orig, self, *shape):
        wrong = _column_major(torch.Tensor.view, self, _shape_of(shape)) if self.is_contiguous() else None
        return wrong if wrong is not None else orig(self, *shape)


@fault("reshape_reinterprets_dtype", trips=["views.reshape_view_or_copy"])
def _(patch):
    """reshape returns the elements' bytes reinterpreted as another dtype of the same size."""

    @patch.replace(torch.Tensor, "reshape")
    def reshape(orig, self, *a, **k):
        out = orig(self, *a, **k)
        other = _SAME_SIZE.get(out.dtype)
        return out.view(other) if other is not None and out.numel() else out


@fault("contiguous_keyword_returns_self", trips=["views.contiguous_self_or_copy"])
def _(patch):
    """contiguous(memory_format=torch.contiguous_format), the default given by keyword, returns
    the tensor itself even when it is not contiguous."""

    @patch.replace(torch.Tensor, "contiguous")
    def contiguous(orig, self, *a, **k):
        return self if k.get("memory_format") is torch.contiguous_format else orig(self, *a, **k)


# (A copy of a tensor with no elements is no fault: it shares no element, so no documented
# observation tells it from a view.)
@fault("t_of_empty_keeps_shape", trips=["views.transpose_shares"])
def _(patch):
    """t() of a 2-D tensor with no elements returns it as is instead of transposed."""

    @patch.replace(torch.Tensor, "t")
    def t(orig, self):
        return self if self.numel() == 0 and self.dim() == 2 else orig(self)


@fault("t_of_0d_copies", trips=["views.transpose_shares"])
def _(patch):
    """t() of a 0-D tensor returns a copy instead of the tensor as is."""

    @patch.replace(torch.Tensor, "t")
    def t(orig, self):
        out = orig(self)
        return out.clone() if self.dim() == 0 else out


@fault("t_of_1d_makes_a_row", trips=["views.transpose_shares"])
def _(patch):
    """t() of a 1-D tensor returns it as a (1, n) row instead of as is."""

    @patch.replace(torch.Tensor, "t")
    def t(orig, self):
        return self.unsqueeze(0) if self.dim() == 1 else orig(self)


@fault("narrow_by_tensor_detaches", trips=["views.narrow_shares"])
def _(patch):
    """narrow() with a tensor start returns a view detached from autograd (it no longer requires
    grad although its base does)."""

    def make(orig):
        def narrow(self, dim, start, length):
            out = orig(self, dim, start, length)
            return out.detach() if isinstance(start, torch.Tensor) else out

        return narrow

    patch.method(torch.Tensor, "narrow", make)
    patch.method(torch, "narrow", make)


@fault("reshape_as_copies_noncontiguous", trips=["views.reshape_view_or_copy"])
def _(patch):
    """reshape_as(other) of a non-contiguous tensor copies even where a view is possible (which
    reshape may do, but reshape_as "returns a view if other.sizes() is compatible")."""

    @patch.replace(torch.Tensor, "reshape_as")
    def reshape_as(orig, self, other):
        return orig(self, other) if self.is_contiguous() else orig(self.contiguous(), other)


@fault("expand_as_materialises", trips=["views.expand_shares"])
def _(patch):
    """expand_as(other) materialises the repeated elements instead of a view with stride 0."""
    patch.method(torch.Tensor, "expand_as", lambda orig: lambda self, other: orig(self, other).clone())


@fault("view_as_real_copies", trips=["views.view_as_real_shares"])
def _(patch):
    """view_as_real returns a copy of the (real, imaginary) pairs instead of a view of the input."""
    patch.method(torch, "view_as_real", lambda orig: lambda input: orig(input).clone())


@fault("view_as_real_imaginary_first", trips=["views.view_as_real_shares"])
def _(patch):
    """view_as_real puts the imaginary part first in the last dimension."""
    patch.method(torch, "view_as_real", lambda orig: lambda input: orig(input)[..., [1, 0]])


@fault("view_as_real_accepts_real", trips=["views.view_as_real_shares"])
def _(patch):
    """view_as_real of a real tensor returns (x, 0) pairs instead of raising."""

    @patch.replace(torch, "view_as_real")
    def view_as_real(orig, input):
        if input.is_complex():
            return orig(input)
        return torch.stack([input, torch.zeros_like(input)], dim=-1)
