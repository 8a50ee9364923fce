"""Optimizers: leaves only, zero_grad sets None, one SGD step.

The parameter an optimizer updates is an argument of its declaration, `Arg(spec, requires_grad=True)`:
a leaf built on each side's device in a writable layout (strides and offsets included), so the
optimizer is built and stepped inside the call on a tensor the call did not make, and every mode
compares the parameter and its gradient after the call as well as what the call returns."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks import assert_close_to_reference, independent_array
from conformance.harness.declaration import Operation
from conformance.harness.releases import torch_at_least
from strategies import specs
from strategies.samples import Arg, Sample, option_grid
from strategies.tensors import WRITABLE_LAYOUTS


@pytest.mark.behaviour("optim.rejects_non_leaf")
@pytest.mark.meta_too
@given(shape=st.lists(st.integers(1, 3), max_size=2))
def test_optimizer_rejects_non_leaves(device, shape):
    moved = torch.zeros(shape, requires_grad=True).to(device, torch.float64)  # requires_grad, then move
    with pytest.raises(ValueError, match="non-leaf"):
        torch.optim.SGD([moved], lr=0.1)
    torch.optim.SGD([torch.zeros(shape).to(device).requires_grad_()], lr=0.1)  # move, then requires_grad
    retained = torch.zeros(shape, requires_grad=True).to(device, torch.float64)
    retained.retain_grad()  # a non-leaf that keeps its .grad can be optimized
    accepted = torch.optim.SGD([retained], lr=0.1).param_groups[0]["params"]
    assert len(accepted) == 1 and accepted[0] is retained, "a non-leaf with retain_grad() was not accepted"


def grad_after_zero_grad(w, set_to_none):
    """w.grad after a backward of sum(w * w) and then zero_grad() (set_to_none None: the argument
    left out, its default) of an SGD over w: None, or the tensor zero_grad left."""
    opt = torch.optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    opt.zero_grad() if set_to_none is None else opt.zero_grad(set_to_none=set_to_none)
    return w.grad


ZERO_GRAD = Operation(
    "optim.zero_grad_sets_none",
    dtypes="float32",
    samples=st.builds(
        lambda w, set_to_none: Sample((Arg(w, requires_grad=True), set_to_none)),
        specs(),
        st.sampled_from([None, True, False]),  # None: set_to_none left out
    ),
    call=lambda w, set_to_none: grad_after_zero_grad(w, set_to_none),
)


@ZERO_GRAD.property
def test_zero_grad_sets_none_by_default(device, dtype, sample):
    set_to_none = sample.args[1]
    grad = ZERO_GRAD(sample, dtype=dtype, device=device)
    if set_to_none is False:
        assert grad is not None and bool((grad == 0).all()), "zero_grad(set_to_none=False) did not fill the grads with zeros"
    else:
        assert grad is None, "zero_grad() (set_to_none default True) did not set the grads to None"


def after_two_sgd_steps(w, lr, momentum):
    """The leaf w after each of two SGD steps on the loss sum(3 sin w), whose gradient is 3 cos w;
    only lr given (every other argument at its default) or lr and momentum (dampening at its default)."""
    opt = torch.optim.SGD([w], lr=lr) if momentum is None else torch.optim.SGD([w], lr=lr, momentum=momentum)
    after = []
    for _ in range(2):
        opt.zero_grad()
        (w.sin() * 3).sum().backward()
        opt.step()
        after.append(w.detach().clone())
    return tuple(after)


def sgd_reference(w0, lr, momentum):
    """The documented SGD algorithm in float64 (NumPy) for two steps on sum(3 sin w): weight_decay 0,
    dampening 0, nesterov and maximize off; the momentum buffer starts as the first gradient
    ("if t > 1: b_t = mu b_{t-1} + (1 - tau) g_t, else b_t = g_t") and each step is w - lr * b_t."""
    g1 = 3 * np.cos(w0)
    w1 = w0 - lr * g1
    g2 = 3 * np.cos(w1)
    b2 = (momentum or 0.0) * g1 + g2
    return w1, w1 - lr * b2


SGD_STEP = Operation(
    "optim.sgd_step",
    dtypes="float32_64",
    samples=st.builds(
        lambda w, lr, momentum: Sample((Arg(w, requires_grad=True), lr, momentum)),
        specs(layouts=WRITABLE_LAYOUTS),
        st.floats(1e-3, 1.0),
        st.sampled_from([None, 0.5, 0.9]),  # None: momentum omitted, its default 0
    ),
    call=lambda w, lr, momentum: after_two_sgd_steps(w, lr, momentum),
)


@SGD_STEP.property
def test_one_sgd_step_is_w_minus_lr_grad(device, dtype, sample):
    w, lr, momentum = sample.args
    w0 = independent_array(w.spec.logical_values(dtype)).astype(np.float64)
    first, second = SGD_STEP(sample, dtype=dtype, device=device)
    want_first, want_second = sgd_reference(w0, lr, momentum)
    assert first.dtype == second.dtype == dtype, "a step changed the parameter's dtype"
    assert_close_to_reference(first, torch.tensor(want_first), msg=lambda m: f"the first step is not w - lr * grad\n{m}")
    assert_close_to_reference(
        second, torch.tensor(want_second), msg=lambda m: f"the second step is not w - lr * (momentum * b + grad)\n{m}"
    )


def steps_around_an_lr_change(w, first, second):
    """The leaf w after a plain SGD step at lr `first` on sum(3 sin w), and after a second step
    once every param_group's lr is set to `second`: the change comes after the optimizer has run."""
    opt = torch.optim.SGD([w], lr=first)
    (w.sin() * 3).sum().backward()
    opt.step()
    after_first = w.detach().clone()
    for group in opt.param_groups:
        group["lr"] = second
    opt.zero_grad()
    (w.sin() * 3).sum().backward()
    opt.step()
    return after_first, w.detach().clone()


LR_CHANGE = Operation(
    "optim.param_group_lr_takes_effect",
    dtypes="float32_64",
    samples=st.builds(
        lambda w, first, second: Sample((Arg(w, requires_grad=True), first, second)),
        specs(layouts=WRITABLE_LAYOUTS),
        st.floats(1e-3, 1.0),
        st.floats(1e-3, 1.0),
    ),
    call=lambda w, first, second: steps_around_an_lr_change(w, first, second),
)


@LR_CHANGE.property
def test_a_changed_learning_rate_applies_to_the_next_step(device, dtype, sample):
    w, first, second = sample.args
    w0 = independent_array(w.spec.logical_values(dtype)).astype(np.float64)
    after_first, after_second = LR_CHANGE(sample, dtype=dtype, device=device)
    w1 = w0 - first * 3 * np.cos(w0)
    assert_close_to_reference(after_first, torch.tensor(w1), msg=lambda m: f"the first step is not at the first lr\n{m}")
    w2 = w1 - second * 3 * np.cos(w1)
    assert_close_to_reference(
        after_second, torch.tensor(w2), msg=lambda m: f"the step after the change is not at the new lr\n{m}"
    )


# Adam's documented options, each given (a value other than its default) or left out (None: the
# default, lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0, decoupled_weight_decay, amsgrad
# and maximize False), and foreach, an implementation choice that computes the same algorithm.
# decoupled_weight_decay is new in torch 2.7 ("AdamW refactor", https://github.com/pytorch/pytorch/pull/118857,
# merged 2024-12, after 2.6's branch cut; 2.6's Adam takes no such argument): left out before it.
ADAM_OPTIONS = dict(
    lr=[None, 0.05, 0.5],
    betas=[None, (0.8, 0.99)],
    eps=[None, 1e-3],
    weight_decay=[None, 0.1],
    decoupled_weight_decay=[None, True] if torch_at_least("2.7") else [None],
    amsgrad=[None, True],
    maximize=[None, True],
    foreach=[None, True, False],
)
ADAM_DEFAULTS = dict(
    lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False, amsgrad=False, maximize=False
)


def after_two_adam_steps(w, **options):
    """The leaf w after each of two Adam steps on the loss sum(3 sin w) (gradient 3 cos w), the
    options left out where None."""
    opt = torch.optim.Adam([w], **{k: v for k, v in options.items() if v is not None})
    after = []
    for _ in range(2):
        opt.zero_grad()
        (w.sin() * 3).sum().backward()
        opt.step()
        after.append(w.detach().clone())
    return tuple(after)


def adam_reference(w0, *, lr, betas, eps, weight_decay, decoupled_weight_decay, amsgrad, maximize, steps=2):
    """The documented Adam algorithm in float64 (NumPy) on sum(3 sin w): each step's parameters.
    With decoupled_weight_decay, AdamW's ("equivalent to AdamW"): the parameter decays by
    lr * weight_decay * w before the update and the decay enters neither moment."""
    b1, b2 = betas
    w, m, v, v_max, out = w0, np.zeros_like(w0), np.zeros_like(w0), np.zeros_like(w0), []
    for t in range(1, steps + 1):
        g = 3 * np.cos(w)
        g = -g if maximize else g
        if decoupled_weight_decay:
            w = w - lr * weight_decay * w
        elif weight_decay != 0:
            g = g + weight_decay * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        if amsgrad:
            v_max = np.maximum(v_max, v)
            v_hat = v_max / (1 - b2**t)
        else:
            v_hat = v / (1 - b2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(w)
    return out


ADAM_STEP = Operation(
    "optim.adam_step",
    dtypes="float32_64",
    samples=st.builds(
        lambda w, options: Sample((Arg(w, requires_grad=True),), options),
        specs(layouts=WRITABLE_LAYOUTS),
        option_grid(**ADAM_OPTIONS),
    ),
    call=lambda w, **options: after_two_adam_steps(w, **options),
)


@ADAM_STEP.property
def test_two_adam_steps_follow_the_documented_algorithm(device, dtype, sample):
    (w,), options = sample.args, sample.kwargs
    w0 = independent_array(w.spec.logical_values(dtype)).astype(np.float64)
    first, second = ADAM_STEP(sample, dtype=dtype, device=device)
    settings = {k: ADAM_DEFAULTS[k] if v is None else v for k, v in options.items() if k != "foreach"}
    want_first, want_second = adam_reference(w0, **settings)
    assert first.dtype == second.dtype == dtype, "an Adam step changed the parameter's dtype"
    assert_close_to_reference(
        first, torch.from_numpy(np.array(want_first)), msg=lambda m: f"the first Adam step is not the documented update\n{m}"
    )
    assert_close_to_reference(
        second, torch.from_numpy(np.array(want_second)), msg=lambda m: f"the second Adam step is not the documented update\n{m}"
    )
