"""Faults in joining tensors (catalogue area `joining`)."""

import torch

from conformance.faults import fault


@fault("stack_ignores_dim", trips=["joining.stack_new_dim"])
def _(patch):
    """stack always joins along dimension 0."""
    patch.method(torch, "stack", lambda orig: lambda tensors, dim=0, **k: orig(tensors, 0, **k))


@fault("stack_unequal_broadcasts", trips=["joining.stack_unequal_raises"])
def _(patch):
    """stack of unequal shapes silently returns zeros instead of raising."""

    @patch.replace(torch, "stack")
    def stack(orig, tensors, dim=0, **k):
        try:
            return orig(tensors, dim, **k)
        except RuntimeError:
            return torch.zeros(len(tensors), device=tensors[0].device)


@fault("stack_scalars_keeps_2d", trips=["joining.stack_zero_dim"])
def _(patch):
    """stack of 0-d tensors gives an (n, 1) tensor."""

    @patch.replace(torch, "stack")
    def stack(orig, tensors, dim=0, **k):
        out = orig(tensors, dim, **k)
        return out.unsqueeze(-1) if tensors and tensors[0].dim() == 0 else out


@fault("cat_no_promotion", trips=["joining.cat_promotes"])
def _(patch):
    """cat casts every input to the first one's dtype."""

    @patch.replace(torch, "cat")
    def cat(orig, tensors, dim=0, **k):
        tensors = list(tensors)
        return orig([t.to(tensors[0].dtype) for t in tensors] if tensors else tensors, dim, **k)


@fault("cat_scalars_stack", trips=["joining.cat_zero_dim_raises"])
def _(patch):
    """cat of 0-d tensors stacks them instead of raising."""

    @patch.replace(torch, "cat")
    def cat(orig, tensors, dim=0, **k):
        tensors = list(tensors)
        if tensors and all(t.dim() == 0 for t in tensors):
            return torch.stack(tensors)
        return orig(tensors, dim, **k)


@fault("cat_rejects_empty_1d", trips=["joining.cat_empty_1d_joins_anything"])
def _(patch):
    """cat refuses a 1-D empty tensor beside tensors of other ranks."""

    @patch.replace(torch, "cat")
    def cat(orig, tensors, dim=0, **k):
        tensors = list(tensors)
        if len({t.dim() for t in tensors}) > 1:
            raise RuntimeError("Tensors must have same number of dimensions")
        return orig(tensors, dim, **k)


@fault("cat_wrong_order", trips=["joining.cat_existing_dim", "joining.cat_inverts_split", "joining.cat_promotes"])
def _(patch):
    """cat joins its inputs in reverse order."""
    patch.method(torch, "cat", lambda orig: lambda tensors, dim=0, **k: orig(list(tensors)[::-1], dim, **k))


@fault("split_drops_remainder", trips=["joining.cat_inverts_split"])
def _(patch):
    """split drops the last, smaller piece."""

    @patch.replace(torch, "split")
    def split(orig, tensor, split_size_or_sections, dim=0):
        parts = orig(tensor, split_size_or_sections, dim)
        if isinstance(split_size_or_sections, int) and len(parts) > 1 and parts[-1].shape[dim] != split_size_or_sections:
            return parts[:-1]
        return parts


@fault("tensor_of_tensors_nested", trips=["joining.tensor_of_tensors"])
def _(patch):
    """torch.tensor of one-element 1-D tensors keeps them as rows: shape (n, 1)."""

    @patch.replace(torch, "tensor")
    def tensor(orig, data, *a, **k):
        if isinstance(data, list) and data and all(isinstance(d, torch.Tensor) and d.dim() == 1 for d in data):
            return torch.stack([d.clone() for d in data])
        return orig(data, *a, **k)


@fault("stack_of_integers_widens", trips=["joining.stack_zero_dim"])
def _(patch):
    """stack of integral 0-d tensors returns float64 (the same numbers, another dtype)."""

    @patch.replace(torch, "stack")
    def stack(orig, tensors, *a, **k):
        out = orig(tensors, *a, **k)
        integral = not out.dtype.is_floating_point and not out.dtype.is_complex and out.dtype != torch.bool
        return out.to(torch.float64) if integral else out


@fault("split_and_chunk_copy", trips=["joining.cat_inverts_split"])
def _(patch):
    """torch.split and torch.chunk return copies of the pieces instead of views of the input."""
    patch.method(torch, "split", lambda orig: lambda *a, **k: tuple(p.clone() for p in orig(*a, **k)))
    patch.method(torch, "chunk", lambda orig: lambda *a, **k: tuple(p.clone() for p in orig(*a, **k)))


@fault("concat_aliases_ignore_dim", trips=["joining.cat_existing_dim"])
def _(patch):
    """torch.concat and torch.concatenate, the aliases of torch.cat, always join along dimension 0."""
    patch.method(torch, "concat", lambda orig: lambda tensors, dim=0, **k: orig(tensors, 0, **k))
    patch.method(torch, "concatenate", lambda orig: lambda tensors, dim=0, **k: orig(tensors, 0, **k))


@fault("chunk_method_drops_last", trips=["joining.cat_inverts_split"])
def _(patch):
    """Tensor.chunk (the method) drops its last piece."""

    @patch.replace(torch.Tensor, "chunk")
    def chunk(orig, self, chunks, dim=0):
        parts = orig(self, chunks, dim)
        return parts[:-1] if len(parts) > 1 else parts
