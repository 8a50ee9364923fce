"""Faults in torch.compile's promises, autocast on the CPU and GradScaler (catalogue area `compile`)."""

import torch
import torch.nn.functional as F

from conformance.faults import fault


@fault("compile_stale_across_graph_break", trips=["compile.graph_breaks_keep_eager_results"])
def _(patch):
    """A compiled function that breaks its graph returns the result of its first call for every later
    call with inputs of the same shape and dtype: a resume function whose guards miss the values."""

    @patch.replace(torch, "compile")
    def compile(orig, model=None, **kwargs):
        if model is None:
            return lambda m: compile(orig, m, **kwargs)
        compiled = orig(model, **kwargs)
        if kwargs.get("disable"):
            return compiled
        seen = {}

        def stale(*args, **kw):
            key = tuple((tuple(a.shape), a.dtype) for a in args if isinstance(a, torch.Tensor))
            if key not in seen:
                seen[key] = compiled(*args, **kw)
            return seen[key]

        return stale


@fault("compile_ignores_disable", trips=["compile.disable_is_a_no_op"])
def _(patch):
    """torch.compile(fn, disable=True) compiles fn anyway."""

    @patch.replace(torch, "compile")
    def compile(orig, model=None, disable=False, **kwargs):
        return orig(model, **kwargs)


@fault("compile_ignores_fullgraph", trips=["compile.fullgraph_raises_on_graph_break"])
def _(patch):
    """torch.compile(fn, fullgraph=True) breaks the graph silently instead of raising."""

    @patch.replace(torch, "compile")
    def compile(orig, model=None, fullgraph=False, **kwargs):
        return orig(model, **kwargs)


@fault("is_compiling_always_false", trips=["compile.is_compiling"])
def _(patch):
    """torch.compiler.is_compiling() says False even while torch.export traces. (Under torch.compile
    the patched function still says True: Dynamo does not run it as patched, observed. The fault
    shows through torch.export.)"""

    @patch.replace(torch.compiler, "is_compiling")
    def is_compiling(orig):
        return False


@fault("is_compiling_always_true", trips=["compile.is_compiling"])
def _(patch):
    """torch.compiler.is_compiling() says True in eager code too."""

    @patch.replace(torch.compiler, "is_compiling")
    def is_compiling(orig):
        return True


def _without_autocast(patch, owner, name: str, when) -> None:
    """owner.name runs outside autocast (in its inputs' dtype) when `when(tensors)` holds inside a
    CPU autocast region."""

    @patch.replace(owner, name)
    def broken(orig, *args, **kwargs):
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        if torch.is_autocast_enabled("cpu") and when(tensors):
            with torch.autocast("cpu", enabled=False):
                return orig(*args, **kwargs)
        return orig(*args, **kwargs)


@fault("autocast_cpu_matrix_products_stay_float32", trips=["compile.autocast_cpu_lower_precision"])
def _(patch):
    """mm, bmm, matmul and linear skip autocast on the CPU: float32 inputs give float32 results
    inside a bfloat16 region."""
    for name in ("mm", "bmm", "matmul", "addmm", "baddbmm", "addbmm"):
        _without_autocast(patch, torch, name, lambda ts: True)
    _without_autocast(patch, torch.Tensor, "mm", lambda ts: True)
    _without_autocast(patch, torch.Tensor, "__matmul__", lambda ts: True)
    _without_autocast(patch, F, "linear", lambda ts: True)
    _without_autocast(patch, F, "conv1d", lambda ts: True)
    _without_autocast(patch, torch.linalg, "vecdot", lambda ts: True)


@fault("autocast_cpu_casts_float64_too", trips=["compile.autocast_cpu_lower_precision"])
def _(patch):
    """Autocast on the CPU casts float64 inputs of mm and matmul to bfloat16 as well, though float64
    is not eligible."""

    for owner, name in ((torch, "mm"), (torch, "matmul"), (torch.Tensor, "mm"), (torch.Tensor, "__matmul__")):

        @patch.replace(owner, name)
        def cast(orig, *args, **kwargs):
            if torch.is_autocast_enabled("cpu") and any(isinstance(a, torch.Tensor) and a.dtype == torch.float64 for a in args):
                args = [a.to(torch.bfloat16) if isinstance(a, torch.Tensor) else a for a in args]
            return orig(*args, **kwargs)


@fault("autocast_cpu_float32_list_stays_bfloat16", trips=["compile.autocast_cpu_float32"])
def _(patch):
    """prod, cdist, trace and the losses of the CPU float32 list skip autocast: bfloat16 inputs give
    bfloat16 results inside the region."""
    low = lambda ts: any(t.dtype == torch.bfloat16 for t in ts)
    for owner, name in (
        (torch, "prod"),
        (torch.Tensor, "prod"),
        (torch, "trace"),
        (torch, "cdist"),
        (F, "mse_loss"),
        (F, "l1_loss"),
        (F, "huber_loss"),
        (F, "binary_cross_entropy_with_logits"),
    ):
        _without_autocast(patch, owner, name, low)


@fault("autocast_cpu_cat_ignores_the_widest_input", trips=["compile.autocast_cpu_float32"])
def _(patch):
    """cat and stack inside a CPU autocast region cast every input to the first one's dtype."""
    for name in ("cat", "stack"):

        @patch.replace(torch, name)
        def narrowed(orig, tensors, *args, **kwargs):
            if torch.is_autocast_enabled("cpu") and tensors:
                tensors = [t.to(tensors[0].dtype) for t in tensors]
            return orig(tensors, *args, **kwargs)


@fault("grad_scaler_steps_on_inf", trips=["compile.grad_scaler_cpu"])
def _(patch):
    """GradScaler.step runs optimizer.step() even when the unscaled gradients hold infs or NaNs."""

    @patch.replace(torch.amp.GradScaler, "step")
    def step(orig, self, optimizer, *args, **kwargs):
        orig(self, optimizer, *args, **kwargs)
        found = sum(v.item() for v in self._per_optimizer_states[id(optimizer)]["found_inf_per_device"].values())
        if found:
            return optimizer.step(*args, **kwargs)
        return None


@fault("grad_scaler_never_backs_off", trips=["compile.grad_scaler_cpu"])
def _(patch):
    """GradScaler.update keeps the scale after a skipped step instead of multiplying it by backoff_factor."""

    @patch.replace(torch.amp.GradScaler, "update")
    def update(orig, self, new_scale=None):
        before = self.get_scale()
        orig(self, new_scale)
        if new_scale is None and self._scale is not None and self.get_scale() < before:
            self._scale.fill_(before)


@fault("grad_scaler_unscale_forgets_to_divide", trips=["compile.grad_scaler_cpu"])
def _(patch):
    """GradScaler.unscale_ checks the gradients for infs/NaNs but leaves them scaled."""

    @patch.replace(torch.amp.GradScaler, "_unscale_grads_")
    def unscale(orig, self, optimizer, inv_scale, found_inf, allow_fp16):
        return orig(self, optimizer, torch.ones_like(inv_scale), found_inf, allow_fp16)


@fault("grad_scaler_scale_uses_init_scale", trips=["compile.grad_scaler_cpu"])
def _(patch):
    """GradScaler.scale multiplies by the initial scale, not the current one."""

    @patch.replace(torch.amp.GradScaler, "scale")
    def scale(orig, self, outputs):
        if not self._enabled:
            return outputs
        return outputs * self._init_scale
