"""Faults in autograd and leaf status (catalogue area `autograd`)."""

import torch

from conformance.faults import fault


def _leaves(t):
    seen, stack, out = set(), [t.grad_fn], []
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if hasattr(fn, "variable"):
            out.append(fn.variable)
        stack.extend(f for f, _ in fn.next_functions)
    return out


@fault("factories_require_grad", trips=["autograd.default_no_grad"])
def _(patch):
    """torch.zeros returns tensors that require grad (the note's claim) where the dtype allows."""

    @patch.replace(torch, "zeros")
    def zeros(orig, *size, **k):
        out = orig(*size, **k)
        return out.requires_grad_() if out.dtype.is_floating_point else out


@fault("requires_grad_default_false", trips=["autograd.requires_grad_default_on"])
def _(patch):
    """requires_grad_() with no argument turns requires_grad off."""
    patch.method(torch.Tensor, "requires_grad_", lambda orig: lambda self, requires_grad=False: orig(self, requires_grad))


@fault("to_dtype_makes_leaf", trips=["autograd.to_makes_non_leaf"])
def _(patch):
    """.to(dtype) of a leaf that requires grad returns a fresh leaf instead of a recorded copy."""

    @patch.replace(torch.Tensor, "to")
    def to(orig, self, *a, **k):
        out = orig(self, *a, **k)
        if self.is_leaf and self.requires_grad and out is not self and out.dtype.is_floating_point:
            return out.detach().requires_grad_()
        return out


@fault("to_cuda_makes_leaf", trips=["autograd.to_makes_non_leaf"], devices=("cuda",))
def _(patch):
    """.to('cuda') of a leaf that requires grad returns a leaf (CUDA only)."""

    @patch.replace(torch.Tensor, "to")
    def to(orig, self, *a, **k):
        out = orig(self, *a, **k)
        if out.device.type == "cuda" and self.device.type != "cuda" and self.requires_grad and self.is_leaf:
            return out.detach().requires_grad_()
        return out


@fault("to_always_copies", trips=["autograd.to_returns_self"])
def _(patch):
    """.to() copies even when dtype and device already match."""

    @patch.replace(torch.Tensor, "to")
    def to(orig, self, *args, **kwargs):
        out = orig(self, *args, **kwargs)
        return out.clone() if out is self else out


@fault("to_in_place", trips=["autograd.to_not_in_place"])
def _(patch):
    """.to(device, dtype) also rewrites the source tensor's data in place."""

    @patch.replace(torch.Tensor, "to")
    def to(orig, self, *a, **k):
        out = orig(self, *a, **k)
        if (
            out is not self
            and not self.requires_grad
            and self.device.type == "cpu"
            and out.device.type != "meta"
            and self.numel()
            and out.dtype == torch.bool
        ):
            with torch.no_grad():
                self.zero_()
        return out


@fault("integral_to_keeps_grad", trips=["autograd.to_integral_drops_grad"])
def _(patch):
    """.to(integral dtype) of a tensor requiring grad hands back a float tensor that requires grad."""

    @patch.replace(torch.Tensor, "to")
    def to(orig, self, *a, **k):
        out = orig(self, *a, **k)
        if self.requires_grad and not (out.dtype.is_floating_point or out.dtype.is_complex):
            return self * 1
        return out


@fault("scalar_backward_uses_two", trips=["autograd.backward_scalar_default", "autograd.worked_example"])
def _(patch):
    """backward() of a scalar seeds the gradient with 2 instead of 1."""

    @patch.replace(torch.Tensor, "backward")
    def backward(orig, self, gradient=None, *a, **k):
        if gradient is None and self.numel() == 1:
            gradient = torch.full_like(self, 2)
        return orig(self, gradient, *a, **k)


@fault("nonscalar_backward_sums", trips=["autograd.backward_nonscalar_raises"])
def _(patch):
    """backward() of a non-scalar without gradient silently uses ones."""

    @patch.replace(torch.Tensor, "backward")
    def backward(orig, self, gradient=None, *a, **k):
        if gradient is None and self.numel() > 1:
            gradient = torch.ones_like(self)
        return orig(self, gradient, *a, **k)


@fault("backward_ignores_v", trips=["autograd.vector_jacobian_product"])
def _(patch):
    """y.backward(v) ignores v and uses ones."""

    @patch.replace(torch.Tensor, "backward")
    def backward(orig, self, gradient=None, *a, **k):
        if gradient is not None and self.numel() > 1:
            gradient = torch.ones_like(self)
        return orig(self, gradient, *a, **k)


@fault("grads_overwrite", trips=["autograd.grad_accumulates"])
def _(patch):
    """Each backward overwrites .grad instead of accumulating into it."""

    @patch.replace(torch.Tensor, "backward")
    def backward(orig, self, *a, **k):
        for leaf in _leaves(self):
            leaf.grad = None
        return orig(self, *a, **k)


@fault("grad_starts_at_zero", trips=["autograd.grad_none_before_backward"])
def _(patch):
    """.grad of a leaf that requires grad reads as zeros before any backward."""
    descriptor = torch._C.TensorBase.__dict__["grad"]

    def make(orig):
        def get(self):
            value = descriptor.__get__(self)
            if value is None and self.requires_grad and self.is_leaf:
                return torch.zeros_like(self)
            return value

        return property(get, descriptor.__set__, descriptor.__delete__)

    patch.method(torch.Tensor, "grad", make)


@fault("graph_always_retained", trips=["autograd.retain_graph"])
def _(patch):
    """backward always retains the graph, so a second backward never raises."""
    patch.method(
        torch.Tensor,
        "backward",
        lambda orig: lambda self, gradient=None, retain_graph=None, *a, **k: orig(self, gradient, True, *a, **k),
    )


@fault("second_backward_always_raises", trips=["autograd.retain_graph"])
def _(patch):
    """A second backward raises even through a graph that saved no tensors (the rule overapplied)."""
    import weakref

    traversed = weakref.WeakSet()

    @patch.replace(torch.Tensor, "backward")
    def backward(orig, self, gradient=None, retain_graph=None, *a, **k):
        if self.grad_fn is not None and self in traversed and not retain_graph:
            raise RuntimeError("Trying to backward through the graph a second time")
        if not retain_graph:
            traversed.add(self)
        return orig(self, gradient, retain_graph, *a, **k)


@fault("one_element_backward_needs_gradient", trips=["autograd.backward_scalar_default"])
def _(patch):
    """backward() without a gradient accepts only 0-d outputs, not other one-element ones."""

    @patch.replace(torch.Tensor, "backward")
    def backward(orig, self, gradient=None, *a, **k):
        if gradient is None and self.dim() > 0:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        return orig(self, gradient, *a, **k)


@fault("non_leaf_grad_silent", trips=["autograd.non_leaf_grad_none"])
def _(patch):
    """Reading .grad of a non-leaf returns None without the warning the docs describe."""
    import warnings

    def make(original):
        def read(self):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return original.__get__(self)

        return property(read, original.__set__, original.__delete__)

    patch.method(torch.Tensor, "grad", make)


@fault("retain_grad_noop", trips=["autograd.non_leaf_grad_none"])
def _(patch):
    """retain_grad() does nothing."""
    patch.method(torch.Tensor, "retain_grad", lambda orig: lambda self: None)


@fault("detach_copies", trips=["autograd.detach_shares"])
def _(patch):
    """detach() returns a copy (the note's claim)."""
    patch.method(torch.Tensor, "detach", lambda orig: lambda self: orig(self).clone())


@fault("no_grad_is_noop", trips=["autograd.no_grad_modes"])
def _(patch):
    """torch.no_grad() leaves grad mode on."""
    import contextlib

    class NoGrad(contextlib.nullcontext):
        def __call__(self, fn):
            return fn

    patch.method(torch, "no_grad", lambda orig: NoGrad)


@fault("tensor_of_tensor_aliases", trips=["autograd.tensor_of_tensor_copies"])
def _(patch):
    """torch.tensor(t) returns t.detach(), sharing storage."""

    @patch.replace(torch, "tensor")
    def tensor(orig, data, *a, **k):
        if isinstance(data, torch.Tensor) and not a and not k:
            import warnings

            warnings.warn("use sourceTensor.clone().detach()", UserWarning, stacklevel=2)
            return data.detach()
        return orig(data, *a, **k)


@fault("sub_underscore_rebinds", trips=["autograd.manual_update"])
def _(patch):
    """sub_ under no_grad returns the difference without changing the tensor."""
    patch.method(torch.Tensor, "sub_", lambda orig: lambda self, other, **k: self - other)


@fault("hooks_not_run", trips=["autograd.hooks_receive_grad", "autograd.hook_closure_late_binding"])
def _(patch):
    """register_hook accepts the hook and never calls it."""

    class Handle:
        def remove(self):
            pass

    patch.method(torch.Tensor, "register_hook", lambda orig: lambda self, hook: Handle())


@fault("created_with_grad_not_leaf", trips=["autograd.created_are_leaves"])
def _(patch):
    """torch.zeros(requires_grad=True) returns a non-leaf (as if it were computed)."""

    @patch.replace(torch, "zeros")
    def zeros(orig, *size, requires_grad=False, **k):
        out = orig(*size, **k)
        return out.requires_grad_() * 1 if requires_grad else out


@fault("ops_make_leaves", trips=["autograd.ops_make_non_leaves"])
def _(patch):
    """Adding to a tensor that requires grad returns a fresh leaf (history lost)."""

    @patch.replace(torch.Tensor, "__add__")
    def add(orig, self, other):
        out = orig(self, other)
        return out.detach().requires_grad_() if out.requires_grad else out


@fault("custom_function_output_detached", trips=["autograd.custom_function"])
def _(patch):
    """Function.apply returns its forward's result cut from the graph: the custom backward never runs."""
    original = torch.autograd.Function.__dict__["apply"]
    patch.attribute(
        torch.autograd.Function,
        "apply",
        classmethod(lambda cls, *a, **k: original.__func__(cls, *a, **k).detach().requires_grad_()),
    )


@fault("inplace_on_leaf_allowed", trips=["autograd.inplace_on_leaf_raises"])
def _(patch):
    """sub_ on a leaf that requires grad silently runs under no_grad instead of raising."""

    @patch.replace(torch.Tensor, "sub_")
    def sub_(orig, self, *a, **k):
        if self.is_leaf and self.requires_grad and torch.is_grad_enabled():
            with torch.no_grad():
                return orig(self, *a, **k)
        return orig(self, *a, **k)


@fault("clone_of_detached_shares", trips=["autograd.clone_detach_either_order"])
def _(patch):
    """clone() of a tensor that does not require grad returns a view of it instead of a copy."""

    @patch.replace(torch.Tensor, "clone")
    def clone(orig, self, *a, **k):
        return self.view_as(self) if not self.requires_grad else orig(self, *a, **k)


@fault("mean_through_division", trips=["autograd.grad_fn_names"])
def _(patch):
    """Tensor.mean is computed as sum / numel, so its grad_fn is a division node."""

    @patch.replace(torch.Tensor, "mean")
    def mean(orig, self, *a, **k):
        if a or k:
            return orig(self, *a, **k)
        return self.sum() / max(self.numel(), 1)


@fault("mean_grad_for_four_elements", trips=["autograd.worked_example"])
def _(patch):
    """The gradient of a full mean is 1/4 whatever the number of elements: right for the notes' 2x2 only."""

    class QuarterMean(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.shape = x.shape
            return orig_mean(x)

        @staticmethod
        def backward(ctx, grad):
            return grad.expand(ctx.shape) / 4

    orig_mean = torch.Tensor.mean

    @patch.replace(torch.Tensor, "mean")
    def mean(orig, self, *a, **k):
        if a or k or not self.requires_grad:
            return orig(self, *a, **k)
        return QuarterMean.apply(self)


@fault("item_keeps_the_graph", trips=["autograd.item_leaves_graph"])
def _(patch):
    """item() of a tensor that requires grad returns it as a 0-d tensor, so it stays in the graph."""

    @patch.replace(torch.Tensor, "item")
    def item(orig, self):
        return self.reshape(()) if self.requires_grad else orig(self)


@fault("backward_reshapes_gradient", trips=["autograd.backward_gradient_shape_checked"])
def _(patch):
    """backward(gradient) quietly reshapes or replaces a gradient of the wrong shape."""

    @patch.replace(torch.Tensor, "backward")
    def backward(orig, self, gradient=None, *a, **k):
        if gradient is not None and gradient.shape != self.shape:
            gradient = gradient.reshape(self.shape) if gradient.numel() == self.numel() else torch.ones_like(self)
        return orig(self, gradient, *a, **k)


@fault("tensor_of_tensor_keeps_graph", trips=["autograd.tensor_of_tensor_copies"])
def _(patch):
    """torch.tensor(t, requires_grad=True) returns t.clone(): a non-leaf recorded in t's graph."""

    @patch.replace(torch, "tensor")
    def tensor(orig, data, *a, requires_grad=False, **k):
        if requires_grad and isinstance(data, torch.Tensor) and data.requires_grad:
            orig(data, *a, **k)  # keeps the UserWarning
            return data.clone()
        return orig(data, *a, requires_grad=requires_grad, **k)


@fault("adding_to_a_number_drops_history", trips=["autograd.accumulated_loss_keeps_history"])
def _(patch):
    """number + tensor (total_loss += loss from 0) returns a detached tensor: the history is dropped."""

    @patch.replace(torch.Tensor, "__radd__")
    def radd(orig, self, other):
        return orig(self, other).detach() if isinstance(other, (int, float)) else orig(self, other)


@fault("enable_grad_is_noop", trips=["autograd.enable_grad_inside_no_grad"])
def _(patch):
    """torch.enable_grad() leaves grad mode as it found it (off, inside no_grad)."""
    import contextlib

    class EnableGrad(contextlib.nullcontext):
        def __call__(self, fn):
            return fn

    patch.method(torch, "enable_grad", lambda orig: EnableGrad)


@fault("autograd_grad_accumulates", trips=["autograd.grad_returns_vjp"])
def _(patch):
    """torch.autograd.grad also accumulates the gradients into the inputs' .grad, as backward() does."""

    @patch.replace(torch.autograd, "grad")
    def grad(orig, outputs, inputs, *args, **kwargs):
        got = orig(outputs, inputs, *args, **kwargs)
        pairs = zip(inputs.values(), got.values()) if isinstance(inputs, dict) else zip(inputs, got)
        for t, g in pairs:
            if g is not None:
                t.grad = g.detach().clone() if t.grad is None else t.grad + g
        return got


@fault("autograd_grad_ignores_grad_outputs", trips=["autograd.grad_returns_vjp"])
def _(patch):
    """torch.autograd.grad ignores grad_outputs and differentiates the sum of the outputs."""

    @patch.replace(torch.autograd, "grad")
    def grad(orig, outputs, inputs, grad_outputs=None, *args, **kwargs):
        if grad_outputs is not None:
            outputs = outputs.sum() if isinstance(outputs, torch.Tensor) else [o.sum() for o in outputs]
        return orig(outputs, inputs, None, *args, **kwargs)


@fault("checkpoint_keeps_activations", trips=["autograd.checkpoint_same_gradients"])
def _(patch):
    """checkpoint runs the function plainly, keeping its activations: nothing is recomputed in the backward pass."""
    import torch.utils.checkpoint

    patch.method(torch.utils.checkpoint, "checkpoint", lambda orig: lambda function, *args, **kwargs: function(*args))


@fault("checkpoint_detaches_later_inputs", trips=["autograd.checkpoint_same_gradients"])
def _(patch):
    """checkpoint passes gradients to its first tensor argument only: the others are detached."""
    import torch.utils.checkpoint

    @patch.replace(torch.utils.checkpoint, "checkpoint")
    def checkpoint(orig, function, first, *rest, **kwargs):
        return orig(function, first, *(r.detach().requires_grad_() for r in rest), **kwargs)


@fault("detach_underscore_returns_a_copy", trips=["autograd.detach_in_place_leaf"])
def _(patch):
    """detach_() returns a detached new tensor and leaves the tensor in the graph."""
    patch.method(torch.Tensor, "detach_", lambda orig: lambda self: self.detach())


@fault("detach_underscore_detaches_views", trips=["autograd.detach_in_place_leaf"])
def _(patch):
    """detach_() of a view returns it as it is instead of raising."""

    @patch.replace(torch.Tensor, "detach_")
    def detach_(orig, self):
        try:
            return orig(self)
        except RuntimeError:
            return self
