"""Faults in views and contiguity (catalogue area `views`)."""

import torch

from conformance.faults import fault


@fault("view_copies", trips=["views.view_shares_storage"])
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


@fault("compiled_outputs_are_copies", trips=["views.reshape_view_or_copy"], modes=("aot_eager",))
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
        return orig(self, *fixed)


@fault("narrow_window_one_late", trips=["views.narrow_shares"])
def _(patch):
    """narrow starts its window one element late wherever there is room: still a view, on every layout
    and device alike, so only an oracle that does not call narrow itself can see it."""

    @patch.replace(torch.Tensor, "narrow")
    def narrow(orig, self, dim, start, length):
        return orig(self, dim, start + 1 if start + length < self.shape[dim] else start, length)


@fault("compiled_dynamic_outputs_column_major", trips=["views.reshape_view_or_copy"], modes=("aot_eager",))
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
