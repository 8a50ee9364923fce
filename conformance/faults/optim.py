"""Faults in optimizers (catalogue area `optim`)."""

import torch

from conformance.faults import fault


@fault("optimizer_accepts_non_leaf", trips=["optim.rejects_non_leaf"])
def _(patch):
    """Optimizers accept non-leaf tensors (silently detaching them)."""

    @patch.replace(torch.optim.Optimizer, "add_param_group")
    def add_param_group(orig, self, group):
        params = group["params"]
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        group["params"] = [p if p.is_leaf else p.detach().requires_grad_() for p in params]
        return orig(self, group)


@fault("optimizer_rejects_retained_non_leaf", trips=["optim.rejects_non_leaf"])
def _(patch):
    """Optimizers reject every non-leaf, also one on which retain_grad() was called."""

    @patch.replace(torch.optim.Optimizer, "add_param_group")
    def add_param_group(orig, self, group):
        params = group["params"]
        if any(not p.is_leaf for p in ([params] if isinstance(params, torch.Tensor) else list(params))):
            raise ValueError("can't optimize a non-leaf Tensor")
        return orig(self, group)


@fault("zero_grad_zeroes", trips=["optim.zero_grad_sets_none"])
def _(patch):
    """zero_grad() fills gradients with zeros by default (the note's reading)."""
    patch.method(torch.optim.Optimizer, "zero_grad", lambda orig: lambda self, set_to_none=False: orig(self, set_to_none))


@fault("sgd_lr_drift", trips=["optim.sgd_step"])
def _(patch):
    """SGD steps with a learning rate 0.1% too large."""

    @patch.replace(torch.optim.SGD, "step")
    def step(orig, self, closure=None):
        for group in self.param_groups:
            group["lr"] *= 1.001
        try:
            return orig(self, closure)
        finally:
            for group in self.param_groups:
                group["lr"] /= 1.001


@fault("sgd_ignores_changed_lr", trips=["optim.param_group_lr_takes_effect"])
def _(patch):
    """SGD keeps the learning rate it was built with when param_group['lr'] changes."""

    @patch.replace(torch.optim.SGD, "__init__")
    def __init__(orig, self, params, lr=1e-3, *a, **k):
        orig(self, params, lr, *a, **k)
        self._built_lr = lr

    @patch.replace(torch.optim.SGD, "step")
    def step(orig, self, *a, **k):
        changed = [group["lr"] for group in self.param_groups]
        for group in self.param_groups:
            group["lr"] = self._built_lr
        try:
            return orig(self, *a, **k)
        finally:
            for group, lr in zip(self.param_groups, changed):
                group["lr"] = lr


@fault("sgd_default_momentum", trips=["optim.sgd_step"])
def _(patch):
    """SGD built without momentum= uses momentum 0.5 (the documented default is 0): the first step
    is still w - lr * grad, the second is not."""

    @patch.replace(torch.optim.SGD, "__init__")
    def __init__(orig, self, params, lr=1e-3, momentum=None, *a, **k):
        orig(self, params, lr, 0.5 if momentum is None else momentum, *a, **k)


@fault("sgd_lr_read_at_first_step", trips=["optim.param_group_lr_takes_effect"])
def _(patch):
    """SGD reads each group's lr at its first step and keeps it: a change made after a step is ignored."""

    @patch.replace(torch.optim.SGD, "step")
    def step(orig, self, *a, **k):
        changed = [group["lr"] for group in self.param_groups]
        for group in self.param_groups:
            group["lr"] = group.setdefault("_lr_at_first_step", group["lr"])
        try:
            return orig(self, *a, **k)
        finally:
            for group, lr in zip(self.param_groups, changed):
                group["lr"] = lr


def _adam_init_with(patch, **forced):
    """Adam's constructor with some keywords forced, whatever the caller gave (or left out)."""

    @patch.replace(torch.optim.Adam, "__init__")
    def init(orig, self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, **kwargs):
        given = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, **kwargs)
        orig(self, params, **{**given, **{k: f(given.get(k)) for k, f in forced.items()}})


@fault("adam_ignores_amsgrad", trips=["optim.adam_step"])
def _(patch):
    """Adam ignores amsgrad=True, dividing by the current second moment instead of its running maximum."""
    _adam_init_with(patch, amsgrad=lambda given: False)


@fault("adam_ignores_decoupled_weight_decay", trips=["optim.adam_step"])
def _(patch):
    """Adam ignores decoupled_weight_decay=True, adding the decay to the gradient (L2) instead of AdamW's decay of w."""
    _adam_init_with(patch, decoupled_weight_decay=lambda given: False)


@fault("adam_default_beta2_0_99", trips=["optim.adam_step"])
def _(patch):
    """Adam's default betas are (0.9, 0.99), not the documented (0.9, 0.999)."""
    _adam_init_with(patch, betas=lambda given: (0.9, 0.99) if tuple(given) == (0.9, 0.999) else given)
