"""Faults in joining, creation, shape operations, reductions, products and indexing."""
import torch

from conformance.faults import fault


@fault("stack_ignores_dim", trips=["joining.stack_new_dim"])
def _(patch):
    """stack always joins along dimension 0."""
    patch.method(torch, "stack", lambda orig: lambda tensors, dim=0, **k: orig(tensors, 0, **k))


@fault("stack_unequal_broadcasts", trips=["joining.stack_unequal_raises"])
def _(patch):
    """stack of unequal shapes silently returns zeros instead of raising."""
    def make(orig):
        def stack(tensors, dim=0, **k):
            try:
                return orig(tensors, dim, **k)
            except RuntimeError:
                return torch.zeros(len(tensors), device=tensors[0].device)
        return stack
    patch.method(torch, "stack", make)


@fault("stack_scalars_keeps_2d", trips=["joining.stack_zero_dim"])
def _(patch):
    """stack of 0-d tensors gives an (n, 1) tensor."""
    def make(orig):
        def stack(tensors, dim=0, **k):
            out = orig(tensors, dim, **k)
            return out.unsqueeze(-1) if tensors and tensors[0].dim() == 0 else out
        return stack
    patch.method(torch, "stack", make)


@fault("cat_no_promotion", trips=["joining.cat_promotes"])
def _(patch):
    """cat casts every input to the first one's dtype."""
    def make(orig):
        def cat(tensors, dim=0, **k):
            tensors = list(tensors)
            return orig([t.to(tensors[0].dtype) for t in tensors] if tensors else tensors, dim, **k)
        return cat
    patch.method(torch, "cat", make)


@fault("cat_scalars_stack", trips=["joining.cat_zero_dim_raises"])
def _(patch):
    """cat of 0-d tensors stacks them instead of raising."""
    def make(orig):
        def cat(tensors, dim=0, **k):
            tensors = list(tensors)
            if tensors and all(t.dim() == 0 for t in tensors):
                return torch.stack(tensors)
            return orig(tensors, dim, **k)
        return cat
    patch.method(torch, "cat", make)


@fault("cat_rejects_empty_1d", trips=["joining.cat_empty_1d_joins_anything"])
def _(patch):
    """cat refuses a 1-D empty tensor beside tensors of other ranks."""
    def make(orig):
        def cat(tensors, dim=0, **k):
            tensors = list(tensors)
            if len({t.dim() for t in tensors}) > 1:
                raise RuntimeError("Tensors must have same number of dimensions")
            return orig(tensors, dim, **k)
        return cat
    patch.method(torch, "cat", make)


@fault("cat_wrong_order", trips=["joining.cat_existing_dim", "joining.cat_inverts_split"])
def _(patch):
    """cat joins its inputs in reverse order."""
    patch.method(torch, "cat", lambda orig: lambda tensors, dim=0, **k: orig(list(tensors)[::-1], dim, **k))


@fault("split_drops_remainder", trips=["joining.cat_inverts_split"])
def _(patch):
    """split drops the last, smaller piece."""
    def make(orig):
        def split(tensor, split_size_or_sections, dim=0):
            parts = orig(tensor, split_size_or_sections, dim)
            if isinstance(split_size_or_sections, int) and len(parts) > 1 and \
                    parts[-1].shape[dim] != split_size_or_sections:
                return parts[:-1]
            return parts
        return split
    patch.method(torch, "split", make)


@fault("tensor_of_tensors_nested", trips=["joining.tensor_of_tensors"])
def _(patch):
    """torch.tensor of one-element 1-D tensors keeps them as rows: shape (n, 1)."""
    def make(orig):
        def tensor(data, *a, **k):
            if isinstance(data, list) and data and all(isinstance(d, torch.Tensor) and d.dim() == 1 for d in data):
                return torch.stack([d.clone() for d in data])
            return orig(data, *a, **k)
        return tensor
    patch.method(torch, "tensor", make)


@fault("ones_ignores_dtype", trips=["creation.factory_shapes_dtypes"])
def _(patch):
    """torch.ones ignores dtype= and returns float32."""
    patch.method(torch, "ones", lambda orig: lambda *s, dtype=None, **k: orig(*s, **k))


@fault("rand_closed_interval", trips=["creation.rand_half_open"])
def _(patch):
    """rand can return exactly 1 (the note's [0, 1])."""
    def make(orig):
        def rand(*size, **k):
            out = orig(*size, **k)
            if out.numel():
                out.view(-1)[out.view(-1).argmax()] = 1
            return out
        return rand
    patch.method(torch, "rand", make)


@fault("like_ignores_source_dtype", trips=["creation.like_inherits"])
def _(patch):
    """zeros_like returns the default dtype instead of the source's."""
    patch.method(torch, "zeros_like", lambda orig: lambda t, dtype=None, **k: orig(t, dtype=dtype or torch.get_default_dtype(), **k))


@fault("randn_like_integers", trips=["creation.randn_like_integral_raises"])
def _(patch):
    """randn_like of an integral dtype rounds normal samples instead of raising."""
    def make(orig):
        def randn_like(t, dtype=None, **k):
            dtype = dtype or t.dtype
            if not (dtype.is_floating_point or dtype.is_complex):
                return orig(t, dtype=torch.float32, **k).round().to(dtype)
            return orig(t, dtype=dtype, **k)
        return randn_like
    patch.method(torch, "randn_like", make)


@fault("randint_like_includes_high", trips=["creation.randint_like_range"])
def _(patch):
    """randint_like(x, low, high) may return high."""
    patch.method(torch, "randint_like", lambda orig: lambda t, low, high, **k: orig(t, low, high + 1, **k))


@fault("size_is_list", trips=["creation.size_is_tuple"])
def _(patch):
    """Tensor.size() returns a list."""
    patch.method(torch.Tensor, "size", lambda orig: lambda self, *a: list(orig(self)) if not a else orig(self, *a))


@fault("tensor_two_ints_is_empty", trips=["creation.tensor_two_ints_raises"])
def _(patch):
    """torch.tensor(5, 3) makes a 5x3 tensor (the note's claim)."""
    def make(orig):
        def tensor(data, *a, **k):
            if isinstance(data, int) and a and isinstance(a[0], int):
                return torch.zeros(data, *a, **k)
            return orig(data, *a, **k)
        return tensor
    patch.method(torch, "tensor", make)


@fault("view_minus_one_transposed", trips=["shape_ops.view_minus_one_k"])
def _(patch):
    """view(-1, k) puts the inferred size last (the note's reading)."""
    def make(orig):
        def view(self, *shape):
            if len(shape) == 2 and shape[0] == -1 and isinstance(shape[1], int) and shape[1] > 0:
                return orig(self, shape[1], -1) if self.numel() % (shape[1] ** 2) == 0 else orig(self, *shape)
            return orig(self, *shape)
        return view
    patch.method(torch.Tensor, "view", make)


@fault("unsqueeze_negative_off_by_one", trips=["shape_ops.unsqueeze"])
def _(patch):
    """unsqueeze with a negative dim counts in the input, not the result."""
    def make(orig):
        def unsqueeze(self, dim):
            return orig(self, dim + self.dim() if dim < 0 else dim)
        return unsqueeze
    patch.method(torch.Tensor, "unsqueeze", make)


@fault("squeeze_keeps_leading", trips=["shape_ops.squeeze_all"])
def _(patch):
    """squeeze() keeps a leading size-1 dimension."""
    def make(orig):
        def squeeze(self, *dims):
            if dims:
                return orig(self, *dims)
            out = orig(self)
            return out.unsqueeze(0) if self.dim() and self.shape[0] == 1 and out.dim() < self.dim() else out
        return squeeze
    patch.method(torch.Tensor, "squeeze", make)


@fault("squeeze_dim_any_size", trips=["shape_ops.squeeze_dim"])
def _(patch):
    """squeeze(d) of a dimension larger than 1 raises instead of returning the tensor unchanged."""
    def make(orig):
        def squeeze(self, *dims):
            if dims and self.dim() and self.shape[dims[0]] != 1:
                raise RuntimeError("cannot squeeze a dimension larger than 1")
            return orig(self, *dims)
        return squeeze
    patch.method(torch.Tensor, "squeeze", make)


@fault("repeat_interleaves", trips=["shape_ops.repeat_tiles"])
def _(patch):
    """repeat of a 1-D tensor repeats each element instead of tiling."""
    def make(orig):
        def repeat(self, *sizes):
            if self.dim() == 1 and len(sizes) == 1 and isinstance(sizes[0], int):
                return self.repeat_interleave(sizes[0])
            return orig(self, *sizes)
        return repeat
    patch.method(torch.Tensor, "repeat", make)


@fault("repeat_interleave_tiles", trips=["shape_ops.repeat_interleave"])
def _(patch):
    """repeat_interleave tiles the whole dimension instead."""
    def make(orig):
        def repeat_interleave(self, repeats, dim=None, **k):
            if isinstance(repeats, int) and dim is not None:
                sizes = [1] * self.dim()
                sizes[dim] = repeats
                return self.repeat(*sizes)
            return orig(self, repeats, dim, **k)
        return repeat_interleave
    patch.method(torch.Tensor, "repeat_interleave", make)


@fault("argmax_last_on_ties", trips=["reductions.argmax_first_on_ties"])
def _(patch):
    """argmax returns the last maximal index on ties."""
    def make(orig):
        def argmax(input, dim=None, keepdim=False):
            if dim is None:
                flipped = orig(input.flatten().flip(0))
                return input.numel() - 1 - flipped
            flipped = orig(input.flip(dim), dim, keepdim)
            return input.shape[dim] - 1 - flipped
        return argmax
    patch.method(torch, "argmax", make)


@fault("max_indices_shifted", trips=["reductions.max_dim_values_indices"])
def _(patch):
    """max(x, dim) returns indices shifted by one on ties (a strided-read style slip)."""
    def make(orig):
        def max_(input, *a, **k):
            out = orig(input, *a, **k)
            if isinstance(out, tuple) and len(out) == 2 and a:
                dim = a[0]
                return type(out)((out[0], (out[1] + 1) % max(input.shape[dim], 1)))
            return out
        return max_
    patch.method(torch, "max", make)


@fault("sum_keeps_int32", trips=["reductions.sum_promotes_integral"])
def _(patch):
    """sum of an integral tensor keeps its dtype instead of promoting to int64."""
    def make(orig):
        def sum_(self, *a, **k):
            out = orig(self, *a, **k)
            return out.to(self.dtype) if not (self.dtype.is_floating_point or self.dtype.is_complex) \
                and self.dtype != torch.bool and "dtype" not in k else out
        return sum_
    patch.method(torch.Tensor, "sum", make)


@fault("mean_of_ints_allowed", trips=["reductions.mean_integral_raises"])
def _(patch):
    """mean of an integral tensor silently computes in float."""
    def make(orig):
        def mean(self, *a, **k):
            if not (self.dtype.is_floating_point or self.dtype.is_complex) and "dtype" not in k:
                return orig(self.double(), *a, **k)
            return orig(self, *a, **k)
        return mean
    patch.method(torch.Tensor, "mean", make)


@fault("mean_is_sum", trips=["reductions.mean_is_sum_over_numel"])
def _(patch):
    """mean returns the sum (the note's claim)."""
    patch.method(torch.Tensor, "mean", lambda orig: lambda self, *a, **k: self.sum(*a, **k))


@fault("clamp_min_wins", trips=["reductions.clamp_matches_clip"])
def _(patch):
    """clamp with min > max sets every element to min."""
    def make(orig):
        def clamp(input, min=None, max=None, **k):
            if min is not None and max is not None and min > max:
                return torch.full_like(input, min)
            return orig(input, min, max, **k)
        return clamp
    patch.method(torch, "clamp", make)


@fault("nonzero_transposed", trips=["reductions.nonzero_shape"])
def _(patch):
    """nonzero returns (ndim, nnz) instead of (nnz, ndim)."""
    def make(orig):
        def nonzero(input, *, as_tuple=False, **k):
            if as_tuple:
                return orig(input, as_tuple=True, **k)
            return orig(input, **k).T
        return nonzero
    patch.method(torch, "nonzero", make)


@fault("where_broadcast_swaps", trips=["reductions.where_broadcasts"])
def _(patch):
    """where picks `other` where cond holds when cond has fewer dims than the values."""
    def make(orig):
        def where(cond, *a, **k):
            if len(a) == 2 and cond.dim() < max(a[0].dim(), a[1].dim()):
                return orig(cond, a[1], a[0], **k)
            return orig(cond, *a, **k)
        return where
    patch.method(torch, "where", make)


@fault("item_takes_first", trips=["reductions.item_one_element"])
def _(patch):
    """item() of a multi-element tensor returns its first element instead of raising."""
    patch.method(torch.Tensor, "item", lambda orig: lambda self: orig(self.reshape(-1)[0]) if self.numel() > 1 else orig(self))


@fault("tolist_flat", trips=["reductions.tolist"])
def _(patch):
    """tolist() of a tensor with 2+ dims returns a flat list."""
    patch.method(torch.Tensor, "tolist", lambda orig: lambda self: orig(self.reshape(-1)) if self.dim() > 1 else orig(self))


@fault("add_underscore_returns_copy", trips=["reductions.inplace_underscore"])
def _(patch):
    """add_ updates self but returns a new tensor."""
    patch.method(torch.Tensor, "add_", lambda orig: lambda self, *a, **k: orig(self, *a, **k).clone())


@fault("add_out_ignored", trips=["reductions.add_out"])
def _(patch):
    """add(out=) returns a new tensor and leaves out untouched."""
    def make(orig):
        def add(a, b, *args, out=None, **k):
            return orig(a, b, *args, **k)
        return add
    patch.method(torch, "add", make)


@fault("mul_half_drift", trips=["matmul.mul_elementwise"])
def _(patch):
    """mul is off by 1% for float16 inputs only."""
    def make(orig):
        def mul(a, b, *args, **k):
            out = orig(a, b, *args, **k)
            return out * 1.01 if isinstance(a, torch.Tensor) and a.dtype == torch.float16 else out
        return mul
    patch.method(torch, "mul", make)


@fault("matmul_drift", trips=["matmul.matmul_semantics"])
def _(patch):
    """matmul is off by 0.1% relative."""
    patch.method(torch, "matmul", lambda orig: lambda a, b, **k: orig(a, b, **k) * 1.001)


@fault("mm_broadcasts", trips=["matmul.mm_2d_only"])
def _(patch):
    """mm accepts batched and vector operands by deferring to matmul."""
    def make(orig):
        def mm(a, b, **k):
            if a.dim() != 2 or b.dim() != 2:
                return torch.matmul(a, b)
            return orig(a, b, **k)
        return mm
    patch.method(torch, "mm", make)


@fault("bmm_truncates_batch", trips=["matmul.bmm_batches"])
def _(patch):
    """bmm with unequal batch sizes multiplies the common prefix instead of raising."""
    def make(orig):
        def bmm(a, b, **k):
            if a.dim() == 3 and b.dim() == 3 and a.shape[0] != b.shape[0]:
                n = min(a.shape[0], b.shape[0])
                return orig(a[:n], b[:n], **k)
            return orig(a, b, **k)
        return bmm
    patch.method(torch, "bmm", make)


@fault("matmul_promotes", trips=["matmul.mismatched_dtypes_raise"])
def _(patch):
    """matmul and mm promote mismatched dtypes instead of raising."""
    def promote(orig):
        def product(a, b, **k):
            dtype = torch.promote_types(a.dtype, b.dtype)
            return orig(a.to(dtype), b.to(dtype), **k)
        return product
    patch.method(torch, "matmul", promote)
    patch.method(torch, "mm", promote)


@fault("index_put_skips_last", trips=["indexing.list_index_assignment", "indexing.mask_from_index_assignment"])
def _(patch):
    """Assignment through an index list or index tensor skips the last index."""
    def make(orig):
        def setitem(self, index, value):
            if isinstance(index, list) and len(index) > 1:
                index = index[:-1]
                value = value[:-1] if isinstance(value, torch.Tensor) and value.dim() else value
            elif isinstance(index, torch.Tensor) and index.dtype == torch.long and index.numel() > 0:
                index = index[:-1]
            return orig(self, index, value)
        return setitem
    patch.method(torch.Tensor, "__setitem__", make)


@fault("advanced_index_aliases_ranges", trips=["indexing.advanced_indexing_copies"])
def _(patch):
    """Indexing with a list of consecutive indices returns a view (narrow) instead of a copy."""
    def make(orig):
        def getitem(self, index):
            if isinstance(index, list) and index and index == list(range(index[0], index[0] + len(index))):
                return self.narrow(0, index[0], len(index))
            return orig(self, index)
        return getitem
    patch.method(torch.Tensor, "__getitem__", make)


@fault("negative_step_flips", trips=["indexing.negative_step_raises"])
def _(patch):
    """A negative slice step returns a flipped copy instead of raising ValueError."""
    def make(orig):
        def getitem(self, index):
            if isinstance(index, slice) and index.step is not None and index.step < 0:
                return orig(self.flip(0), slice(None, None, -index.step))
            return orig(self, index)
        return getitem
    patch.method(torch.Tensor, "__getitem__", make)

