"""Faults in reductions and elementwise (catalogue area `reductions`)."""

import numpy as np
import torch

from conformance.faults import fault


@fault("argmax_last_on_ties", trips=["reductions.argmax_first_on_ties"])
def _(patch):
    """argmax returns the last maximal index on ties."""

    @patch.replace(torch, "argmax")
    def argmax(orig, input, dim=None, keepdim=False):
        if dim is None:
            flipped = orig(input.flatten().flip(0))
            return input.numel() - 1 - flipped
        flipped = orig(input.flip(dim), dim, keepdim)
        return input.shape[dim] - 1 - flipped


@fault("max_indices_shifted", trips=["reductions.max_dim_values_indices"])
def _(patch):
    """max(x, dim) returns indices shifted by one on ties (a strided-read style slip)."""

    @patch.replace(torch, "max")
    def max_(orig, input, *a, **k):
        out = orig(input, *a, **k)
        if isinstance(out, tuple) and len(out) == 2 and a:
            dim = a[0]
            return type(out)((out[0], (out[1] + 1) % max(input.shape[dim], 1)))
        return out


@fault("sum_keeps_int32", trips=["reductions.sum_promotes_integral"])
def _(patch):
    """sum of an integral tensor keeps its dtype instead of promoting to int64."""

    @patch.replace(torch.Tensor, "sum")
    def sum_(orig, self, *a, **k):
        out = orig(self, *a, **k)
        return (
            out.to(self.dtype)
            if not (self.dtype.is_floating_point or self.dtype.is_complex) and self.dtype != torch.bool and "dtype" not in k
            else out
        )


@fault("mean_of_ints_allowed", trips=["reductions.mean_integral_raises"])
def _(patch):
    """mean of an integral tensor silently computes in float."""

    @patch.replace(torch.Tensor, "mean")
    def mean(orig, self, *a, **k):
        if not (self.dtype.is_floating_point or self.dtype.is_complex) and "dtype" not in k:
            return orig(self.double(), *a, **k)
        return orig(self, *a, **k)


@fault("mean_is_sum", trips=["reductions.mean_is_sum_over_numel"])
def _(patch):
    """mean returns the sum (the note's claim)."""
    patch.method(torch.Tensor, "mean", lambda orig: lambda self, *a, **k: self.sum(*a, **k))


@fault("clamp_min_wins", trips=["reductions.clamp_matches_clip"])
def _(patch):
    """clamp with min > max sets every element to min."""

    @patch.replace(torch, "clamp")
    def clamp(orig, input, min=None, max=None, **k):
        if min is not None and max is not None and min > max:
            return torch.full_like(input, min)
        return orig(input, min, max, **k)


@fault("nonzero_transposed", trips=["reductions.nonzero_shape"])
def _(patch):
    """nonzero returns (ndim, nnz) instead of (nnz, ndim)."""

    @patch.replace(torch, "nonzero")
    def nonzero(orig, input, *, as_tuple=False, **k):
        if as_tuple:
            return orig(input, as_tuple=True, **k)
        return orig(input, **k).T


@fault("nonzero_method_fortran_order", trips=["reductions.nonzero_shape"])
def _(patch):
    """Tensor.nonzero (the method) lists the nonzero elements in column-major order, not C order."""

    @patch.replace(torch.Tensor, "nonzero")
    def nonzero(orig, self, *, as_tuple=False, **k):
        if as_tuple or self.dim() < 2:
            return orig(self, as_tuple=as_tuple, **k)
        rows = orig(self, **k)
        return rows[torch.from_numpy(np.lexsort(rows.cpu().numpy().T)).to(rows.device)]


@fault("where_broadcast_swaps", trips=["reductions.where_broadcasts"])
def _(patch):
    """where picks `other` where cond holds when cond has fewer dims than the values."""

    @patch.replace(torch, "where")
    def where(orig, cond, *a, **k):
        if len(a) == 2 and cond.dim() < max(a[0].dim(), a[1].dim()):
            return orig(cond, a[1], a[0], **k)
        return orig(cond, *a, **k)


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

    @patch.replace(torch, "add")
    def add(orig, a, b, *args, out=None, **k):
        return orig(a, b, *args, **k)


@fault("max_last_index_on_ties", trips=["reductions.max_dim_values_indices"])
def _(patch):
    """max(x, dim) returns the index of the last maximal value on ties (the docs promise the first)."""

    @patch.replace(torch, "max")
    def max_(orig, input, *a, **k):
        if a and isinstance(a[0], int) and input.dim():
            dim = a[0] % input.dim()
            out = orig(input.flip(dim), *a, **k)  # the first maximum of the flipped is the last one
            return type(out)((out[0], input.shape[dim] - 1 - out[1]))
        return orig(input, *a, **k)


@fault("sum_rejects_axis", trips=["reductions.axis_alias"])
def _(patch):
    """torch.sum no longer takes NumPy's axis= keyword."""

    @patch.replace(torch, "sum")
    def sum_(orig, *a, **k):
        if "axis" in k:
            raise TypeError("sum() got an unexpected keyword argument 'axis'")
        return orig(*a, **k)


@fault("mul_in_place_ignores_a_strided_self", trips=["reductions.inplace_underscore"])
def _(patch):
    """mul_ on a non-contiguous self multiplies a contiguous copy and leaves self unchanged."""
    patch.strided_writes_lost(torch.Tensor, "mul_")


@fault("one_hot_one_class_too_many", trips=["reductions.one_hot"])
def _(patch):
    """F.one_hot(x, -1) infers two more classes than the largest value instead of one."""
    import torch.nn.functional as F

    @patch.replace(F, "one_hot")
    def one_hot(orig, tensor, num_classes=-1):
        if num_classes == -1 and tensor.numel():
            num_classes = int(tensor.max()) + 2
        return orig(tensor, num_classes)


@fault("masked_fill_inverts_mask", trips=["reductions.masked_fill"])
def _(patch):
    """masked_fill writes the value where the mask is False."""
    patch.method(torch.Tensor, "masked_fill", lambda orig: lambda self, mask, value: orig(self, ~mask, value))


@fault("log_of_zero_is_finite", trips=["reductions.elementwise_math"])
def _(patch):
    """log clamps its input to the smallest normal number, so log(0) is finite instead of -inf."""

    def clamped(orig):
        return lambda x, *a, **k: orig(x.clamp(min=torch.finfo(x.dtype).tiny) if x.is_floating_point() else x, *a, **k)

    patch.method(torch, "log", clamped)
    patch.method(torch.Tensor, "log", clamped)


@fault("maximum_skips_nan", trips=["reductions.edges_and_nan"])
def _(patch):
    """torch.maximum behaves like fmax: a NaN loses to the other element."""
    patch.attribute(torch, "maximum", torch.fmax)


@fault("sum_over_dims_keeps_only_the_first", trips=["reductions.dim_tuples_keepdim"])
def _(patch):
    """Tensor.sum(dim=(a, b, ...)) reduces the first listed dimension only."""

    @patch.replace(torch.Tensor, "sum")
    def sum_(orig, self, *a, dim=None, **k):
        if isinstance(dim, tuple) and len(dim) > 1:
            dim = dim[0]
        return orig(self, *a, dim=dim, **k) if dim is not None else orig(self, *a, **k)


@fault("tolist_through_float32", trips=["reductions.tolist"])
def _(patch):
    """tolist converts through float32: int64 extremes and float64 values beyond float32 change."""

    @patch.replace(torch.Tensor, "tolist")
    def tolist(orig, self):
        if self.dtype in (torch.int64, torch.int32, torch.float64):
            return orig(self.float().to(self.dtype))
        return orig(self)


@fault("clamp_returns_its_input_off_cpu", trips=["reductions.clamp_matches_clip"], devices=("accelerator",))
def _(patch):
    """torch.clamp off the CPU returns its input itself when no element needs clamping (a
    shortcut that skips the copy): the values are right, but the result aliases the input where
    the CPU returns a new tensor. Only a comparison of aliasing sees it (the cross-device mode)."""

    @patch.replace(torch, "clamp")
    def clamp(orig, input, min=None, max=None, *a, **k):
        out = orig(input, min, max, *a, **k)
        if input.device.type != "cpu" and out.dtype == input.dtype and out.numel() and torch.equal(out, input):
            return input
        return out


@fault("sum_with_axis_adds_one", trips=["reductions.axis_alias"])
def _(patch):
    """torch.sum(x, axis=d) and torch.sum(x, dim=d) both add 1 to every sum: the keywords agree with
    each other, not with the sum."""

    @patch.replace(torch, "sum")
    def sum_(orig, *a, **k):
        out = orig(*a, **k)
        return out + 1 if ("axis" in k or "dim" in k) and out.is_floating_point() else out


@fault("mean_with_axis_widens", trips=["reductions.axis_alias"])
def _(patch):
    """torch.mean(x, axis=d) of a float32 tensor returns float64."""

    @patch.replace(torch, "mean")
    def mean(orig, *a, **k):
        out = orig(*a, **k)
        return out.double() if "axis" in k and out.dtype == torch.float32 else out


@fault("argmax_with_axis_flipped", trips=["reductions.axis_alias"])
def _(patch):
    """torch.argmax(x, axis=d) (and dim=d) returns the index counted from the end of the dim."""

    @patch.replace(torch, "argmax")
    def argmax(orig, input, *a, **k):
        d = k.get("axis", k.get("dim"))
        if d is None or input.dim() == 0:
            return orig(input, *a, **k)
        return orig(input.flip(d), *a, **k)


@fault("argmax_with_axis_int32", trips=["reductions.axis_alias"])
def _(patch):
    """torch.argmax(x, axis=d) returns int32 indices."""

    @patch.replace(torch, "argmax")
    def argmax(orig, *a, **k):
        out = orig(*a, **k)
        return out.int() if "axis" in k else out


@fault("full_sum_one_ulp_high", trips=["reductions.mean_is_sum_over_numel"])
def _(patch):
    """Tensor.sum() of a floating tensor is one ulp above the sum: invisible at a tolerance, wrong
    where the sum of integer values is exact."""

    @patch.replace(torch.Tensor, "sum")
    def sum_(orig, self, *a, **k):
        out = orig(self, *a, **k)
        if a or k or not out.is_floating_point():
            return out
        return torch.nextafter(out, torch.tensor(float("inf"), dtype=out.dtype, device=out.device))


@fault("full_mean_one_ulp_high", trips=["reductions.mean_is_sum_over_numel"])
def _(patch):
    """Tensor.mean() of a floating tensor is one ulp above sum / numel."""

    @patch.replace(torch.Tensor, "mean")
    def mean(orig, self, *a, **k):
        out = orig(self, *a, **k)
        if a or k or not out.is_floating_point():
            return out
        return torch.nextafter(out, torch.tensor(float("inf"), dtype=out.dtype, device=out.device))


@fault("full_mean_widens", trips=["reductions.mean_is_sum_over_numel"])
def _(patch):
    """Tensor.mean() of a float32 tensor returns float64."""

    @patch.replace(torch.Tensor, "mean")
    def mean(orig, self, *a, **k):
        out = orig(self, *a, **k)
        return out.double() if not a and not k and out.dtype == torch.float32 else out


@fault("sum_over_dims_widens", trips=["reductions.dim_tuples_keepdim"])
def _(patch):
    """Tensor.sum over a tuple of dims returns float64 for a float32 tensor."""

    @patch.replace(torch.Tensor, "sum")
    def sum_(orig, self, *a, dim=None, **k):
        out = orig(self, *a, dim=dim, **k) if dim is not None else orig(self, *a, **k)
        return out.double() if isinstance(dim, tuple) and out.dtype == torch.float32 else out


@fault("sum_over_dims_keeps_them_by_default", trips=["reductions.dim_tuples_keepdim"])
def _(patch):
    """torch.sum(x, dims) with keepdim omitted keeps the reduced dims (the documented default is False)."""

    @patch.replace(torch, "sum")
    def sum_(orig, input, *a, **k):
        if len(a) == 1 and isinstance(a[0], tuple) and "keepdim" not in k:
            k["keepdim"] = True
        return orig(input, *a, **k)


@fault("full_max_of_magnitudes", trips=["reductions.edges_and_nan"])
def _(patch):
    """Tensor.max() of all elements returns the largest magnitude (NaN still wins): wrong wherever
    the most negative element outweighs the largest."""

    @patch.replace(torch.Tensor, "max")
    def max_(orig, self, *a, **k):
        if a or k or not self.is_floating_point():
            return orig(self, *a, **k)
        return orig(self.abs())


@fault("nanmean_keeps_dim_by_default", trips=["reductions.edges_and_nan"])
def _(patch):
    """torch.nanmean(x, dim) with keepdim omitted keeps the dim (the documented default is False)."""

    @patch.replace(torch, "nanmean")
    def nanmean(orig, input, *a, **k):
        if a and "keepdim" not in k and len(a) == 1:
            k["keepdim"] = True
        return orig(input, *a, **k)


@fault("fmax_widens", trips=["reductions.edges_and_nan"])
def _(patch):
    """torch.fmax of two float32 tensors returns float64."""

    @patch.replace(torch, "fmax")
    def fmax(orig, *a, **k):
        out = orig(*a, **k)
        return out.double() if out.dtype == torch.float32 else out


@fault("prod_of_int8_wraps", trips=["reductions.edges_and_nan"])
def _(patch):
    """torch.prod of an int8 tensor multiplies in int8 (wrapping), then widens to int64."""

    @patch.replace(torch, "prod")
    def prod(orig, input, *a, **k):
        if input.dtype == torch.int8 and not a and not k:
            return orig(input, dtype=torch.int8).to(torch.int64)
        return orig(input, *a, **k)


@fault("add_underscore_keeps_the_version", trips=["reductions.inplace_underscore"])
def _(patch):
    """add_ writes self but does not bump its version counter (autograd then misses the change)."""

    @patch.replace(torch.Tensor, "add_")
    def add_(orig, self, *a, **k):
        before = self._version
        out = orig(self, *a, **k)
        torch._C._autograd._unsafe_set_version_counter((self,), (before,))
        return out


@fault("clamp_underscore_rebinds_self", trips=["reductions.inplace_underscore"])
def _(patch):
    """clamp_ computes into new memory and points self at it: self reads right, but another tensor
    over self's old memory never sees the write."""

    @patch.replace(torch.Tensor, "clamp_")
    def clamp_(orig, self, *a, **k):
        result = self.clamp(*a, **k)
        with torch.no_grad():
            self.set_(result.untyped_storage(), 0, result.shape, result.stride())
        return self


@fault("masked_fill_underscore_keeps_the_version", trips=["reductions.masked_fill"])
def _(patch):
    """masked_fill_ writes self but does not bump its version counter."""

    @patch.replace(torch.Tensor, "masked_fill_")
    def masked_fill_(orig, self, *a, **k):
        before = self._version
        out = orig(self, *a, **k)
        torch._C._autograd._unsafe_set_version_counter((self,), (before,))
        return out


@fault("masked_fill_underscore_rebinds_self", trips=["reductions.masked_fill"])
def _(patch):
    """masked_fill_ computes into new memory and points self at it: another tensor over self's old
    memory never sees the write."""

    @patch.replace(torch.Tensor, "masked_fill_")
    def masked_fill_(orig, self, *a, **k):
        result = self.masked_fill(*a, **k)
        with torch.no_grad():
            self.set_(result.untyped_storage(), 0, result.shape, result.stride())
        return self


@fault("where_widens", trips=["reductions.where_broadcasts"])
def _(patch):
    """torch.where of float32 tensors returns float64."""

    @patch.replace(torch, "where")
    def where(orig, *a, **k):
        out = orig(*a, **k)
        return out.double() if isinstance(out, torch.Tensor) and out.dtype == torch.float32 else out


@fault("max_dim_values_widen", trips=["reductions.max_dim_values_indices"])
def _(patch):
    """max(x, dim) returns its values in float64 for a float32 tensor."""

    @patch.replace(torch, "max")
    def max_(orig, input, *a, **k):
        out = orig(input, *a, **k)
        if isinstance(out, tuple) and out[0].dtype == torch.float32:
            return type(out)((out[0].double(), out[1]))
        return out


@fault("argmax_int32", trips=["reductions.argmax_first_on_ties"])
def _(patch):
    """torch.argmax returns int32 indices."""
    patch.method(torch, "argmax", lambda orig: lambda *a, **k: orig(*a, **k).int())


@fault("clamp_widens", trips=["reductions.clamp_matches_clip"])
def _(patch):
    """torch.clamp of a float32 tensor returns float64."""

    @patch.replace(torch, "clamp")
    def clamp(orig, *a, **k):
        out = orig(*a, **k)
        return out.double() if out.dtype == torch.float32 else out


@fault("masked_fill_underscore_in_memory_order", trips=["reductions.masked_fill"])
def _(patch):
    """masked_fill_ on a non-contiguous self writes its row-major result in memory order: a transposed
    self gets each filled value at the transposed position."""

    @patch.replace(torch.Tensor, "masked_fill_")
    def masked_fill_(orig, self, mask, value):
        if self.is_contiguous() or 0 in self.stride():
            return orig(self, mask, value)
        written = self.masked_fill(mask, value).reshape(-1)
        offsets = torch.arange(self.untyped_storage().nbytes() // self.element_size(), device=self.device)
        order = torch.as_strided(offsets, self.shape, self.stride(), self.storage_offset()).reshape(-1).argsort()
        scattered = torch.empty_like(written)
        scattered[order] = written
        with torch.no_grad():
            self.copy_(scattered.view(self.shape))
        return self


@fault("abs_keeps_negative_zero", trips=["reductions.elementwise_math"])
def _(patch):
    """abs(-0.0) returns -0.0 (IEEE 754 gives +0.0): invisible to a comparison that treats -0.0 as 0.0."""

    def keeps(orig):
        return lambda x, *a, **k: torch.where(x == 0, x, orig(x, *a, **k)) if x.is_floating_point() else orig(x, *a, **k)

    patch.method(torch, "abs", keeps)
    patch.method(torch.Tensor, "abs", keeps)


@fault("min_last_index_on_ties", trips=["reductions.min_dim_values_indices"])
def _(patch):
    """min(x, dim) returns the index of the last minimal value on ties (the docs promise the first)."""

    @patch.replace(torch.Tensor, "min")
    def min_(orig, self, *a, **k):
        if a and isinstance(a[0], int) and self.dim():
            dim = a[0] % self.dim()
            out = orig(self.flip(dim), *a, **k)  # the first minimum of the flipped is the last one
            return type(out)((out[0], self.shape[dim] - 1 - out[1]))
        return orig(self, *a, **k)


@fault("all_of_uint8_is_bool", trips=["reductions.all_any"])
def _(patch):
    """all of a uint8 tensor returns bool (the docs: uint8 keeps uint8)."""
    patch.method(torch, "all", lambda orig: lambda input, *a, **k: orig(input, *a, **k).bool())


@fault("topk_ignores_largest_false", trips=["reductions.topk_k_largest"])
def _(patch):
    """topk(largest=False) returns the k largest anyway."""

    @patch.replace(torch, "topk")
    def topk(orig, input, k, *a, largest=True, **kw):
        return orig(input, k, *a, **kw)


@fault("sort_stable_reverses_ties", trips=["reductions.sort_orders_values"])
def _(patch):
    """sort(stable=True) sorts correctly but puts equal elements in reverse order."""

    @patch.replace(torch, "sort")
    def sort(orig, input, *a, stable=None, **k):
        if not stable:
            return orig(input, *a, stable=stable, **k) if stable is not None else orig(input, *a, **k)
        dim = (a[0] if a else k.get("dim", -1)) % max(input.dim(), 1)
        if input.dim() == 0:
            return orig(input, *a, stable=True, **k)
        values, indices = orig(input.flip(dim), *a, stable=True, **k)  # stable on the flipped: ties reversed
        return torch.return_types.sort((values, input.shape[dim] - 1 - indices))


@fault("amax_gradient_to_one_tie", trips=["reductions.amax_dims_and_gradient"])
def _(patch):
    """amax's gradient goes to one maximal element per slice (max(dim)'s rule), not split evenly among ties."""

    @patch.replace(torch.Tensor, "amax")
    def amax(orig, self, dim=None, keepdim=False):
        if not self.requires_grad:
            return orig(self, dim, keepdim) if dim is not None else orig(self, keepdim=keepdim)
        reduced = sorted(
            {d % max(self.dim(), 1) for d in (range(self.dim()) if dim is None else (dim,) if isinstance(dim, int) else dim)}
        )
        out = self
        for d in reduced if self.dim() else ():
            out = out.max(d, keepdim=True).values  # the gradient flows to the one indexed element
        return out if keepdim or not self.dim() else out.squeeze(tuple(reduced))


@fault("cumsum_exclusive", trips=["reductions.prod_cumsum_along_dim"])
def _(patch):
    """Tensor.cumsum returns the exclusive running sums (each element left out of its own sum)."""
    patch.method(torch.Tensor, "cumsum", lambda orig: lambda self, *a, **k: orig(self, *a, **k) - self)


@fault("var_ignores_correction", trips=["reductions.std_var_correction"])
def _(patch):
    """Tensor.var always applies Bessel's correction, whatever correction= says."""

    @patch.replace(torch.Tensor, "var")
    def var(orig, self, *a, correction=None, **k):
        return orig(self, *a, **k)


@fault("vector_norm_neg_inf_is_max", trips=["reductions.vector_norm_ord"])
def _(patch):
    """linalg.vector_norm(ord=-inf) returns max|x| (the inf norm) instead of min|x|."""

    @patch.replace(torch.linalg, "vector_norm")
    def vector_norm(orig, x, ord=2, *a, **k):
        return orig(x, float("inf") if ord == float("-inf") else ord, *a, **k)


@fault("unique_descending", trips=["reductions.unique_values_inverse_counts"])
def _(patch):
    """torch.unique returns its values in descending order (where only the values are asked for)."""

    @patch.replace(torch, "unique")
    def unique(orig, input, *a, **k):
        out = orig(input, *a, **k)
        return out.flip(0) if isinstance(out, torch.Tensor) else out


@fault("amax_requiring_grad_in_float32", trips=["reductions.amax_dims_and_gradient"])
def _(patch):
    """Tensor.amax of a float64 input that requires grad returns float32 (an autograd path that
    computes in single precision); without grad it is right."""

    @patch.replace(torch.Tensor, "amax")
    def amax(orig, self, *a, **k):
        out = orig(self, *a, **k)
        return out.float() if self.requires_grad and self.dtype == torch.float64 else out


@fault("amax_backward_one_gradient_for_all", trips=["reductions.amax_dims_and_gradient"])
def _(patch):
    """Tensor.amax's backward hands every slice the first slice's upstream gradient."""

    @patch.replace(torch.Tensor, "amax")
    def amax(orig, self, *a, **k):
        out = orig(self, *a, **k)
        if out.requires_grad and out.numel():
            out.register_hook(lambda grad: grad.flatten()[:1].expand(grad.shape).clone())
        return out


@fault("var_negative_dim_one_ulp_off", trips=["reductions.std_var_correction"])
def _(patch):
    """Tensor.var over a negative dim is one ulp off in its last element (the dim normalised by
    another path, rounding differently), even where nothing is rounded."""

    @patch.replace(torch.Tensor, "var")
    def var(orig, self, dim=None, *a, **k):
        out = orig(self, dim, *a, **k)
        negative = dim is not None and any(d < 0 for d in ((dim,) if isinstance(dim, int) else dim))
        if negative and out.numel():
            out = out.clone()
            last = out.view(-1)[-1]
            out.view(-1)[-1] = torch.nextafter(last, torch.tensor(float("inf"), dtype=out.dtype))
        return out
