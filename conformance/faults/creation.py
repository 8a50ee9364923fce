"""Faults in creation and dtype inheritance (catalogue area `creation`)."""

import math

import numpy
import torch

from conformance.faults import fault


@fault("ones_ignores_dtype", trips=["creation.factory_shapes_dtypes"])
def _(patch):
    """torch.ones ignores dtype= and returns float32."""
    patch.method(torch, "ones", lambda orig: lambda *s, dtype=None, **k: orig(*s, **k))


@fault("rand_closed_interval", trips=["creation.rand_half_open"])
def _(patch):
    """rand can return exactly 1 (the note's [0, 1])."""

    @patch.replace(torch, "rand")
    def rand(orig, *size, **k):
        out = orig(*size, **k)
        if out.numel():
            out.view(-1)[out.view(-1).argmax()] = 1
        return out


@fault("like_ignores_source_dtype", trips=["creation.like_inherits"])
def _(patch):
    """zeros_like returns the default dtype instead of the source's."""

    @patch.replace(torch, "zeros_like")
    def zeros_like(orig, t, dtype=None, **kwargs):
        return orig(t, dtype=dtype or torch.get_default_dtype(), **kwargs)


@fault("randn_like_integers", trips=["creation.randn_like_integral_raises"])
def _(patch):
    """randn_like of an integral dtype rounds normal samples instead of raising."""

    @patch.replace(torch, "randn_like")
    def randn_like(orig, t, dtype=None, **k):
        dtype = dtype or t.dtype
        if not (dtype.is_floating_point or dtype.is_complex):
            return orig(t, dtype=torch.float32, **k).round().to(dtype)
        return orig(t, dtype=dtype, **k)


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

    @patch.replace(torch, "tensor")
    def tensor(orig, data, *a, **k):
        if isinstance(data, int) and a and isinstance(a[0], int):
            return torch.zeros(data, *a, **k)
        return orig(data, *a, **k)


@fault("double64_alias", trips=["creation.no_double64"])
def _(patch):
    """torch.double64 exists (as the note wrote it)."""
    patch.attribute(torch, "double64", torch.float64)


@fault("tensor_of_ints_is_int32", trips=["creation.tensor_infers_dtype"])
def _(patch):
    """torch.tensor of Python ints gives int32 (as on some platforms' NumPy)."""

    @patch.replace(torch, "tensor")
    def tensor(orig, data, *a, **k):
        out = orig(data, *a, **k)
        return out.to(torch.int32) if out.dtype == torch.int64 and "dtype" not in k else out


@fault("factory_list_size_flattened", trips=["creation.factory_shapes_dtypes"])
def _(patch):
    """torch.zeros given its size as one list makes a flat tensor of that many elements."""

    @patch.replace(torch, "zeros")
    def zeros(orig, *size, **k):
        if len(size) == 1 and isinstance(size[0], list) and len(size[0]) > 1:
            return orig(math.prod(size[0]), **k)
        return orig(*size, **k)


@fault("tensor_function_is_the_class", trips=["creation.tensor_class_vs_function"])
def _(patch):
    """torch.tensor of Python data always gives the default floating dtype, as torch.Tensor does."""

    @patch.replace(torch, "tensor")
    def tensor(orig, data, *a, **k):
        out = orig(data, *a, **k)
        return out.to(torch.get_default_dtype()) if isinstance(data, list) and "dtype" not in k else out


@fault("tensor_function_shares_ndarray", trips=["creation.tensor_class_shares_float32_ndarray"])
def _(patch):
    """torch.tensor of an ndarray shares its memory (as torch.as_tensor does)."""

    @patch.replace(torch, "tensor")
    def tensor(orig, data, *a, **k):
        return torch.as_tensor(data) if isinstance(data, numpy.ndarray) and not (a or k) else orig(data, *a, **k)


@fault("nbytes_assumes_four_byte_elements", trips=["creation.nbytes_is_numel_times_element_size"])
def _(patch):
    """Tensor.nbytes counts four bytes per element whatever the dtype."""
    patch.attribute(torch.Tensor, "nbytes", property(lambda self: self.numel() * 4))


@fault("storage_sizeof_is_the_wrapper_only", trips=["creation.getsizeof_counts_the_whole_storage"])
def _(patch):
    """sys.getsizeof of a storage counts only the Python object, not its bytes."""
    patch.attribute(torch.UntypedStorage, "__sizeof__", lambda self: object.__sizeof__(self))


@fault("like_ignores_device", trips=["creation.like_on_another_device"], devices=("off_cpu",))
def _(patch):
    """ones_like(x, device=d) creates the tensor on x's device."""

    @patch.replace(torch, "ones_like")
    def ones_like(orig, source, *a, device=None, **k):
        return orig(source, *a, **k)


@fault("arange_includes_end", trips=["creation.arange_length_and_values"])
def _(patch):
    """arange(start, end, step) includes end when the steps land on it: [start, end] instead of [start, end)."""

    @patch.replace(torch, "arange")
    def arange(orig, *a, **k):
        if len(a) == 3 and all(isinstance(v, int) for v in a) and a[2] and (a[1] - a[0]) % a[2] == 0:
            return orig(a[0], a[1] + a[2], a[2], **k)
        return orig(*a, **k)


@fault("full_always_floating", trips=["creation.full_infers_dtype"])
def _(patch):
    """torch.full ignores the fill value's type and makes a tensor of the default floating dtype."""

    @patch.replace(torch, "full")
    def full(orig, size, fill_value, **k):
        k.setdefault("dtype", torch.get_default_dtype())
        return orig(size, fill_value, **k)


@fault("float_method_gives_half", trips=["creation.conversion_methods"])
def _(patch):
    """Tensor.float() converts to float16."""
    patch.method(torch.Tensor, "float", lambda orig: lambda self, *a, **k: self.to(torch.float16))


@fault("long_method_returns_contiguous", trips=["creation.conversion_methods"])
def _(patch):
    """Tensor.long() of a transposed (dense, not contiguous) tensor returns row-major strides, as if
    memory_format were torch.contiguous_format rather than the default torch.preserve_format."""
    patch.method(torch.Tensor, "long", lambda orig: lambda self, *a, **k: orig(self, *a, **k).contiguous())


@fault("fill_misses_strided_self", trips=["creation.fill_and_init_fill"])
def _(patch):
    """fill_ on a non-contiguous self fills a contiguous copy and leaves self as it was."""
    patch.strided_writes_lost(torch.Tensor, "fill_")


@fault("randint_includes_high", trips=["creation.manual_seed_replays_randint"])
def _(patch):
    """torch.randint(low, high, size) draws from [low, high], high included."""

    @patch.replace(torch, "randint")
    def randint(orig, low, high, size, **k):
        return orig(low, high + 1, size, **k)


@fault("randint_ignores_device", trips=["creation.manual_seed_replays_randint"])
def _(patch):
    """torch.randint(..., device=d) ignores device= and draws on the default device."""
    patch.keyword_ignored(torch, "randint", "device")


@fault("finfo_eps_halved", trips=["creation.finfo_limits"])
def _(patch):
    """torch.finfo reports half the true machine epsilon."""
    real = torch.finfo

    class Halved:
        def __init__(self, dtype=None):
            self._info = real(dtype) if dtype is not None else real()
            self.eps = self._info.eps / 2

        def __getattr__(self, name):
            return getattr(self._info, name)

    patch.attribute(torch, "finfo", Halved)


@fault("default_dtype_ignored_by_factories", trips=["creation.default_dtype_governs_inference"])
def _(patch):
    """torch.zeros without dtype= always makes float32, whatever the default dtype."""

    @patch.replace(torch, "zeros")
    def zeros(orig, *size, **k):
        k.setdefault("dtype", torch.float32)
        return orig(*size, **k)


@fault("fork_rng_keeps_changes", trips=["creation.generators_and_fork_rng"])
def _(patch):
    """torch.random.fork_rng does not restore the generator's state."""
    import contextlib

    @patch.replace(torch.random, "fork_rng")
    def fork_rng(orig, *a, **k):
        return contextlib.nullcontext()


@fault("linspace_excludes_end", trips=["creation.linspace_evenly_spaced"])
def _(patch):
    """linspace spaces steps values from start up to, not including, end (the step of arange)."""

    @patch.replace(torch, "linspace")
    def linspace(orig, start, end, steps, **k):
        return orig(start, start + (end - start) * (steps - 1) / steps, steps, **k) if steps > 1 else orig(start, end, steps, **k)


@fault("linspace_requires_grad", trips=["creation.linspace_evenly_spaced"])
def _(patch):
    """linspace's requires_grad defaults to True: the result requires grad where it is left out."""

    @patch.replace(torch, "linspace")
    def linspace(orig, *a, requires_grad=True, **k):
        return orig(*a, requires_grad=requires_grad, **k)


@fault("randperm_repeats_one", trips=["creation.randperm_is_a_permutation"])
def _(patch):
    """randperm draws one value twice and leaves another out."""

    @patch.replace(torch, "randperm")
    def randperm(orig, n, **k):
        out = orig(n, **k)
        if n > 1:
            out[out == 0] = 1
        return out


@fault("randperm_ignores_device", trips=["creation.randperm_is_a_permutation"])
def _(patch):
    """torch.randperm(n, device=d) ignores device= and makes the permutation on the default device."""
    patch.keyword_ignored(torch, "randperm", "device")


@fault("empty_ignores_device", trips=["creation.tensor_two_ints_raises"])
def _(patch):
    """torch.empty(*size, device=d) ignores device= and allocates on the default device."""
    patch.keyword_ignored(torch, "empty", "device")


@fault("eye_ignores_m", trips=["creation.eye_ones_on_diagonal"])
def _(patch):
    """eye(n, m) returns n x n, ignoring m."""
    patch.method(torch, "eye", lambda orig: lambda n, *m, **k: orig(n, **k))


@fault("meshgrid_xy_is_ij", trips=["creation.meshgrid_like_numpy"])
def _(patch):
    """meshgrid ignores indexing='xy' and returns the 'ij' grids."""

    @patch.replace(torch, "meshgrid")
    def meshgrid(orig, *tensors, indexing=None):
        return orig(*tensors, indexing="ij")


@fault("meshgrid_default_is_xy", trips=["creation.meshgrid_like_numpy"])
def _(patch):
    """meshgrid with indexing left out behaves as 'xy' (the announced future default) instead of 'ij'."""

    @patch.replace(torch, "meshgrid")
    def meshgrid(orig, *tensors, indexing=None):
        return orig(*tensors, indexing=indexing or "xy")


@fault("outer_transposed", trips=["creation.outer_product"])
def _(patch):
    """outer(a, b) returns vec2[i] * input[j] reshaped to (n, m): the products in the other order."""

    @patch.replace(torch, "outer")
    def outer(orig, a, b, **k):
        return orig(b, a, **k).reshape(a.shape[0], b.shape[0])

    patch.method(torch.Tensor, "outer", lambda orig: lambda self, other: torch.outer(self, other))


@fault("clone_always_contiguous", trips=["creation.clone_preserves_dense_strides"])
def _(patch):
    """torch.clone returns a contiguous copy of every input, a dense transposed one included."""
    patch.method(torch, "clone", lambda orig: lambda t, **k: orig(t, memory_format=torch.contiguous_format))


@fault("clone_aliases", trips=["creation.clone_preserves_dense_strides"])
def _(patch):
    """torch.clone returns a view of its input instead of a copy."""
    patch.method(torch, "clone", lambda orig: lambda t, **k: t.view_as(t))


@fault("clone_of_non_dense_keeps_its_strides", trips=["creation.clone_non_dense_contiguous"])
def _(patch):
    """torch.clone of a non-dense input returns a copy laid out with the input's own (non-dense) strides."""

    @patch.replace(torch, "clone")
    def clone(orig, t, **k):
        if t.is_contiguous() or k or t.numel() == t.untyped_storage().nbytes() // t.element_size():
            return orig(t, **k)
        base = orig(t.as_strided((t.untyped_storage().nbytes() // t.element_size(),), (1,), 0))
        return base.as_strided(t.shape, t.stride(), t.storage_offset())


@fault("uniform_skips_strided_elements", trips=["creation.uniform_normal_fill_in_place"])
def _(patch):
    """uniform_ and normal_ write a contiguous copy of a non-contiguous self and lose the write."""
    patch.strided_writes_lost(torch.Tensor, "uniform_")
    patch.strided_writes_lost(torch.Tensor, "normal_")


@fault("uniform_ignores_to", trips=["creation.uniform_normal_fill_in_place"])
def _(patch):
    """uniform_(from, to) samples [from, from + 2 * (to - from)) instead of [from, to)."""

    @patch.replace(torch.Tensor, "uniform_")
    def uniform_(orig, self, *args, **k):
        lo, hi = (list(args) + [k.pop("from", 0.0), k.pop("to", 1.0)][len(args) :])[:2]
        return orig(self, lo, lo + 2 * (hi - lo), **k)


@fault("xavier_uniform_swaps_fans_for_sizes", trips=["creation.init_within_documented_bounds"])
def _(patch):
    """xavier_uniform_ takes fan_in + fan_out as size(0) + size(1), leaving out the receptive field: too wide a bound."""

    @patch.replace(torch.nn.init, "xavier_uniform_")
    def xavier_uniform_(orig, tensor, gain=1.0, generator=None):
        bound = gain * math.sqrt(6.0 / (tensor.size(0) + tensor.size(1)))
        with torch.no_grad():
            return tensor.uniform_(-bound, bound, generator=generator)


@fault("trunc_normal_does_not_truncate", trips=["creation.init_within_documented_bounds"])
def _(patch):
    """trunc_normal_ draws from the untruncated normal: values outside [a, b]."""

    @patch.replace(torch.nn.init, "trunc_normal_")
    def trunc_normal_(orig, tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
        with torch.no_grad():
            return tensor.normal_(mean, std * 10, generator=generator)


@fault("ones_init_skips_strided", trips=["creation.init_within_documented_bounds"])
def _(patch):
    """nn.init.ones_ fills a contiguous copy of a non-contiguous tensor and loses the write."""
    patch.method(torch.nn.init, "ones_", lambda orig: lambda t: (orig(t.contiguous()), t)[1])


@fault("xavier_normal_ignores_gain", trips=["creation.xavier_normal_std"])
def _(patch):
    """xavier_normal_ draws with gain 1 whatever gain says."""
    patch.method(torch.nn.init, "xavier_normal_", lambda orig: lambda t, gain=1.0, generator=None: orig(t, 1.0, generator))


@fault("multinomial_always_replaces", trips=["creation.multinomial_draws"])
def _(patch):
    """torch.multinomial draws with replacement even when replacement is left out or False."""
    patch.method(
        torch,
        "multinomial",
        lambda orig: lambda input, num_samples, replacement=False, **kw: orig(input, num_samples, True, **kw),
    )


@fault("multinomial_draws_zero_weights", trips=["creation.multinomial_draws"])
def _(patch):
    """torch.multinomial gives zero-weight categories a small chance (as if smoothed)."""
    patch.method(
        torch,
        "multinomial",
        lambda orig: (
            lambda input, num_samples, replacement=False, **kw: orig(
                input + input.sum(-1, keepdim=True), num_samples, replacement, **kw
            )
        ),
    )


@fault("size_constructor_reverses", trips=["creation.size_is_tuple"])
def _(patch):
    """torch.Size(sizes) holds the sizes in reverse order (still a torch.Size)."""
    patch.method(torch, "Size", lambda orig: lambda sizes=(): orig(list(sizes)[::-1]))


@fault("is_tensor_exact_type", trips=["creation.is_tensor"])
def _(patch):
    """torch.is_tensor answers True only for the exact type torch.Tensor, not for its subclasses."""
    patch.method(torch, "is_tensor", lambda orig: lambda obj: type(obj) is torch.Tensor)


@fault("is_tensor_of_sequences", trips=["creation.is_tensor"])
def _(patch):
    """torch.is_tensor answers True for anything with a shape or a length (a torch.Size, a list, an array)."""
    patch.method(torch, "is_tensor", lambda orig: lambda obj: orig(obj) or hasattr(obj, "__len__"))


@fault("long_tensor_default_dtype", trips=["creation.long_tensor_legacy"])
def _(patch):
    """torch.LongTensor(data) builds a tensor of the default floating dtype, as torch.Tensor does."""
    patch.attribute(torch, "LongTensor", torch.Tensor)
