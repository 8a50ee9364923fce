"""Faults in matrix products (catalogue area `matmul`)."""

import torch

from conformance.faults import DRIFT, fault


@fault("matmul_drift_on_cuda", trips=["matmul.matmul_semantics"], devices=("cuda",))
def _(patch):
    """matmul is off by 0.1% on CUDA only (caught by the cross-device check on a GPU)."""

    @patch.replace(torch, "matmul")
    def matmul(orig, a, b, **k):
        out = orig(a, b, **k)
        return out * DRIFT if out.device.type == "cuda" else out


@fault("matmul_drift_off_cpu", trips=["matmul.matmul_semantics"], devices=("accelerator",))
def _(patch):
    """matmul is off by 0.1% on every device but the CPU (caught by the cross-device check)."""

    @patch.replace(torch, "matmul")
    def matmul(orig, a, b, **k):
        out = orig(a, b, **k)
        return out * DRIFT if out.device.type != "cpu" else out


@fault("mul_half_drift", trips=["matmul.mul_elementwise"])
def _(patch):
    """mul is off by 1% for float16 inputs only."""

    @patch.replace(torch, "mul")
    def mul(orig, a, b, *args, **k):
        out = orig(a, b, *args, **k)
        return out * 1.01 if isinstance(a, torch.Tensor) and a.dtype == torch.float16 else out


@fault("matmul_drift", trips=["matmul.matmul_semantics"])
def _(patch):
    """matmul is off by 0.1% relative."""
    patch.method(torch, "matmul", lambda orig: lambda a, b, **k: orig(a, b, **k) * 1.001)


@fault("mm_broadcasts", trips=["matmul.mm_2d_only"])
def _(patch):
    """mm accepts batched and vector operands by deferring to matmul."""

    @patch.replace(torch, "mm")
    def mm(orig, a, b, **k):
        if a.dim() != 2 or b.dim() != 2:
            return torch.matmul(a, b)
        return orig(a, b, **k)


@fault("bmm_truncates_batch", trips=["matmul.bmm_batches"])
def _(patch):
    """bmm with unequal batch sizes multiplies the common prefix instead of raising."""

    @patch.replace(torch, "bmm")
    def bmm(orig, a, b, **k):
        if a.dim() == 3 and b.dim() == 3 and a.shape[0] != b.shape[0]:
            n = min(a.shape[0], b.shape[0])
            return orig(a[:n], b[:n], **k)
        return orig(a, b, **k)


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


@fault("einsum_ignores_output_order", trips=["matmul.einsum_contractions"])
def _(patch):
    """einsum drops a transposition asked for only by the output's index order (ij->ji gives ij)."""

    @patch.replace(torch, "einsum")
    def einsum(orig, equation, *operands):
        inputs, _, output = equation.partition("->")
        if "," not in inputs and sorted(output) == sorted(inputs) and output != inputs:
            equation = f"{inputs}->{inputs}"
        return orig(equation, *operands)


@fault("autocast_leaves_matmul_in_float32", trips=["matmul.autocast_lower_precision"])
def _(patch):
    """torch.mm ignores autocast and returns float32."""

    @patch.replace(torch, "mm")
    def mm(orig, a, b, *rest, **k):
        return orig(a, b, *rest, **k).float() if torch.is_autocast_enabled(a.device.type) else orig(a, b, *rest, **k)


@fault("compiled_drops_mutation_of_aliased_inputs", trips=["matmul.mul_elementwise"], modes=("aot_eager",))
def _(patch):
    """Compiled code called with inputs that share memory runs on copies of them, so what it writes
    into them is lost (a compiler that assumes its inputs never alias)."""

    @patch.replace(torch, "compile")
    def compile(orig, model=None, **kwargs):
        compiled = orig(model, **kwargs)

        def unaliased(*args, **kw):
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            storages = [t.untyped_storage()._cdata for t in tensors]
            if len(set(storages)) < len(storages):
                args = tuple(a.detach().clone() if isinstance(a, torch.Tensor) else a for a in args)
            return compiled(*args, **kw)

        return unaliased


@fault("mul_writes_into_input_off_cpu", trips=["matmul.mul_elementwise"], devices=("accelerator",))
def _(patch):
    """torch.mul off the CPU also writes its product into its first input where the shapes and
    dtypes allow (a kernel that reuses an input as scratch space): the result is right, the input
    is not. Only a comparison of the inputs after the call sees it (the cross-device mode)."""

    @patch.replace(torch, "mul")
    def mul(orig, input, other, *a, **k):
        out = orig(input, other, *a, **k)
        if (
            input.device.type != "cpu"
            and not input.requires_grad
            and input.shape == out.shape
            and input.dtype == out.dtype
            and torch._debug_has_internal_overlap(input) == 0
        ):
            input.copy_(out)
        return out
