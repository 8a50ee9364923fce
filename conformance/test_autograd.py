"""Autograd: who is a leaf, what .to records, how gradients flow, accumulate and get hooked."""

import math
import warnings

import numpy
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

from conformance.checks import assert_equal, assert_own_storage, assert_same_storage, private_rng
from conformance.harness.declaration import Operation
from strategies import DTYPE_GROUPS, specs
from strategies.samples import Arg, Sample
from strategies.shapes import shapes
from strategies.tensors import WRITABLE_LAYOUTS


@pytest.mark.behaviour("autograd.default_no_grad")
@pytest.mark.dtypes("representative")
@given(shape=shapes())
def test_created_tensors_do_not_require_grad(device, dtype, shape):
    for t in (
        torch.zeros(shape, dtype=dtype, device=device),
        torch.ones(shape, dtype=dtype, device=device),
        torch.empty(shape, dtype=dtype, device=device),
        torch.tensor(0, dtype=dtype, device=device),
    ):
        assert t.requires_grad is False


@pytest.mark.behaviour("autograd.requires_grad_default_on")
@pytest.mark.dtypes("float_and_complex")
@given(x=specs())
def test_requires_grad_underscore_defaults_to_true(device, dtype, x):
    t = x.build(dtype=dtype, device=device)
    assert t.requires_grad_() is t and t.requires_grad is True
    assert t.requires_grad_(False).requires_grad is False


@pytest.mark.behaviour("autograd.created_are_leaves")
@pytest.mark.dtypes("float32")
@given(x=specs(), requires_grad=st.booleans())
def test_user_created_tensors_are_leaves(device, dtype, x, requires_grad):
    t = x.build(dtype=dtype, device=device, requires_grad=requires_grad)
    assert t.is_leaf and t.grad_fn is None
    made = torch.zeros(x.shape, dtype=dtype, device=device, requires_grad=requires_grad)
    assert made.is_leaf and made.grad_fn is None


@pytest.mark.behaviour("autograd.ops_make_non_leaves")
@pytest.mark.dtypes("float32_64")
@given(x=specs(), op=st.sampled_from(["add", "mul", "exp", "sum", "view", "getitem"]))
def test_operations_make_non_leaves_that_require_grad(device, dtype, x, op):
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    out = {
        "add": lambda: t + 2,
        "mul": lambda: t * t,
        "exp": lambda: t.exp(),
        "sum": lambda: t.sum(),
        "view": lambda: t.reshape(-1),
        "getitem": lambda: t[...],
    }[op]()
    assert out.requires_grad and not out.is_leaf and out.grad_fn is not None
    assert (t.detach() + 2).requires_grad is False


@pytest.mark.behaviour("autograd.to_makes_non_leaf")
@pytest.mark.dtypes("float32")
@pytest.mark.meta_too
@given(shape=shapes(), other=st.sampled_from([torch.float64, torch.float16]))
def test_to_of_a_leaf_records_a_copy(device, dtype, shape, other):
    leaf = torch.zeros(shape, dtype=dtype, requires_grad=True)
    moved = leaf.to(other)  # a dtype change is a recorded copy on every device
    assert not moved.is_leaf and moved.grad_fn is not None and moved.requires_grad
    if torch.device(device).type != "cpu":
        across = leaf.to(device)
        assert not across.is_leaf and across.grad_fn is not None
    fixed = leaf.detach().to(device).requires_grad_()
    assert fixed.is_leaf and fixed.grad_fn is None
    direct = torch.zeros(shape, dtype=dtype, device=device, requires_grad=True)
    assert direct.is_leaf


@pytest.mark.behaviour("autograd.to_returns_self")
@pytest.mark.dtypes("float32_64")
@pytest.mark.meta_too
@given(x=specs(), requires_grad=st.booleans())
def test_to_returns_self_when_nothing_changes(device, dtype, x, requires_grad):
    t = x.build(dtype=dtype, device=device, requires_grad=requires_grad)
    assert t.to(dtype) is t and t.to(device) is t and t.to(t.device, dtype) is t
    assert t.is_leaf
    copied = t.to(dtype, copy=True)
    assert copied is not t
    assert_own_storage(copied, t, ".to(copy=True)")


@pytest.mark.behaviour("autograd.to_not_in_place")
@pytest.mark.dtypes("float32")
@pytest.mark.meta_too
@given(x=specs(), other=st.sampled_from(DTYPE_GROUPS["all"]))
def test_to_leaves_its_input_alone(device, dtype, x, other):
    t = x.build(dtype=dtype, device="cpu")
    before = t.clone()
    out = t.to(device, other)
    assert (t.dtype, t.device.type) == (dtype, "cpu") and torch.equal(t, before)
    assert (out.dtype, out.device.type) == (other, torch.device(device).type)


@pytest.mark.behaviour("autograd.to_integral_drops_grad")
@pytest.mark.dtypes("float32_64")
@pytest.mark.meta_too
@given(x=specs(), target=st.sampled_from(DTYPE_GROUPS["integral"] + DTYPE_GROUPS["bool"]))
def test_integral_conversion_does_not_require_grad(device, dtype, x, target):
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    assert t.to(target).requires_grad is False


def function_of(x):
    return (3 * (x + 2) ** 2).sin().sum() / max(x.numel(), 1)


@pytest.mark.behaviour("autograd.backward_scalar_default")
@pytest.mark.dtypes("float32_64")
@given(x=specs(), rank=st.integers(0, 3))
def test_scalar_backward_defaults_to_one(device, dtype, x, rank):
    # "non-scalar (i.e. its data has more than one element)": every one-element output, of any
    # rank, is a scalar here, and its implicit gradient is one.
    one_element = (1,) * rank
    a = x.build(dtype=dtype, device=device, requires_grad=True)
    b = x.build(dtype=dtype, device=device, requires_grad=True)
    function_of(a).reshape(one_element).backward()
    function_of(b).reshape(one_element).backward(torch.ones(one_element, dtype=dtype, device=device))
    assert_close(a.grad, b.grad)


@pytest.mark.behaviour("autograd.backward_nonscalar_raises")
@pytest.mark.dtypes("float32")
# "If the tensor is non-scalar (i.e. its data has more than one element)": outputs of more than
# one element, size-1 sides among them
@given(x=specs(shapes=shapes().filter(lambda s: math.prod(s) > 1)))
def test_nonscalar_backward_needs_a_gradient(device, dtype, x):
    y = x.build(dtype=dtype, device=device, requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        y.backward()


@st.composite
def jacobian_samples(draw):
    """Sample(A, v, x): y = A sin(x) has the Jacobian J = A diag(cos x), and v is y-shaped."""
    m, n = draw(st.integers(1, 4), label="m"), draw(st.integers(1, 4), label="n")
    A, v, x = (draw(specs(shape=shape), label=k) for k, shape in (("A", (m, n)), ("v", (m,)), ("x", (n,))))
    return Sample((A, v, Arg(x, requires_grad=True)))


def grad_of_backward_with(A, v, x):
    (A @ x.sin()).backward(v)
    return x.grad


VJP = Operation(
    "autograd.vector_jacobian_product",
    dtypes="float32_64",
    samples=jacobian_samples(),
    call=lambda A, v, x: grad_of_backward_with(A, v, x),
)


@VJP.property
def test_backward_with_v_gives_j_transpose_v(device, dtype, sample):
    (A, v, x), _ = sample.build(dtype=dtype, device=device)
    assert_close(VJP(sample, dtype=dtype, device=device), x.detach().cos() * (A.T @ v))


def worked_example_gradient(x):
    y = x + 2
    out = (y * y * 3).mean()
    out.backward()
    return x.grad


WORKED_EXAMPLE = Operation(
    "autograd.worked_example",
    dtypes="float32_64",
    # non-empty: the worked example's mean over n elements has no value at n = 0
    samples=st.builds(lambda x: Sample((Arg(x, requires_grad=True),)), specs(shapes=shapes(min_side=1))),
    call=lambda x: worked_example_gradient(x),
)


@pytest.mark.behaviour("autograd.worked_example")
def test_the_notes_worked_gradient(device):
    # The notes' own numbers: x = ones(2, 2) gives a gradient of 4.5 everywhere.
    x = torch.ones(2, 2, device=device, requires_grad=True)
    assert_close(worked_example_gradient(x).cpu(), torch.full((2, 2), 4.5))


@WORKED_EXAMPLE.property
def test_worked_gradient_is_six_times_x_plus_two_over_n(device, dtype, sample):
    # d/dx_i of mean(3 (x + 2)^2) over n elements is 6 (x_i + 2) / n: 3/2 (x_i + 2) for the notes' 2x2.
    (x,), _ = sample.build(dtype=dtype, device=device)
    expected = numpy.asarray(6 * (x.detach().cpu().double().numpy() + 2) / x.numel())
    assert_close(WORKED_EXAMPLE(sample, dtype=dtype, device=device).cpu(), torch.from_numpy(expected).to(dtype))


def grad_after_backwards(t, times):
    for _ in range(times):
        function_of(t).backward()
    return t.grad


GRAD_ACCUMULATES = Operation(
    "autograd.grad_accumulates",
    dtypes="float32_64",
    samples=st.builds(lambda x, times: Sample((Arg(x, requires_grad=True), times)), specs(), st.integers(2, 4)),
    call=lambda t, times: grad_after_backwards(t, times),
)


@GRAD_ACCUMULATES.property
def test_gradients_accumulate_until_zeroed(device, dtype, sample):
    x, times = sample.args
    t = x.spec.build(dtype=dtype, device=device, requires_grad=True)
    once = grad_after_backwards(t, 1).clone()
    assert_close(GRAD_ACCUMULATES(sample, dtype=dtype, device=device), once * times)
    t.grad.zero_()
    function_of(t).backward()
    assert_close(t.grad, once)


@pytest.mark.behaviour("autograd.grad_none_before_backward")
@pytest.mark.dtypes("float32")
@given(x=specs())
def test_grad_is_none_before_backward(device, dtype, x):
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    assert t.grad is None
    with pytest.raises(AttributeError):
        t.grad.zero_()


# Graphs by whether their backward needs saved tensors: exp(t) * t saves both factors, sin saves its
# input; t + 2, -t and sum save nothing (their gradients do not depend on the values; a product
# with a Python number does save it).
SAVING = {"exp(t) * t": lambda t: (t.exp() * t).sum(), "sin(t)": lambda t: t.sin().sum()}
SAVING_NOTHING = {"(t + 2).sum()": lambda t: (t + 2).sum(), "t.sum()": lambda t: t.sum(), "(-t).sum()": lambda t: (-t).sum()}


@pytest.mark.behaviour("autograd.retain_graph")
@pytest.mark.dtypes("float32")
@given(x=specs(), graph=st.sampled_from(sorted(SAVING)))
def test_second_backward_through_saved_tensors_needs_retain_graph(device, dtype, x, graph):
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    out = SAVING[graph](t)
    out.backward()
    with pytest.raises(RuntimeError, match="second time|already been freed"):
        out.backward()
    kept = SAVING[graph](t)
    kept.backward(retain_graph=True)
    kept.backward()


@pytest.mark.behaviour("autograd.retain_graph")
@pytest.mark.dtypes("float32")
@given(x=specs(), graph=st.sampled_from(sorted(SAVING_NOTHING)))
def test_a_graph_that_saved_nothing_can_be_traversed_again(device, dtype, x, graph):
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    out = SAVING_NOTHING[graph](t)
    out.backward()
    once = t.grad.clone()
    out.backward()  # nothing was saved, so nothing was freed
    assert_equal(t.grad, once * 2, "the gradient after two backward passes")


@pytest.mark.behaviour("autograd.non_leaf_grad_none")
@pytest.mark.dtypes("float32")
@given(x=specs())
def test_non_leaf_grad_needs_retain_grad(device, dtype, x):
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    hidden, kept = t * 2, t * 3
    kept.retain_grad()
    (hidden.sum() + kept.sum()).backward()
    with pytest.warns(UserWarning, match="not a leaf Tensor"):  # the warning the statement promises
        assert hidden.grad is None
    assert_close(kept.grad, torch.ones_like(kept))


@pytest.mark.behaviour("autograd.detach_shares")
@pytest.mark.dtypes("float32_64")
@given(x=specs())
def test_detach_shares_storage(device, dtype, x):
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    d = t.detach()
    assert d.requires_grad is False and d.is_leaf
    assert_same_storage(d, t, "detach()")
    if x.numel and x.layout != "expanded":
        with torch.no_grad():
            t.add_(1)
        assert_equal(d, t.detach())


@pytest.mark.behaviour("autograd.no_grad_modes")
@pytest.mark.dtypes("float32")
@given(x=specs(), mode=st.sampled_from(["no_grad", "set_grad_enabled", "inference_mode"]))
def test_grad_free_modes_give_results_without_grad(device, dtype, x, mode):
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    ctx = {
        "no_grad": torch.no_grad,
        "inference_mode": torch.inference_mode,
        "set_grad_enabled": lambda: torch.set_grad_enabled(False),
    }[mode]
    with ctx():
        out = (t * 2).sum()
    assert out.requires_grad is False and out.grad_fn is None


@pytest.mark.behaviour("autograd.tensor_of_tensor_copies")
@pytest.mark.dtypes("float32_64")
@given(x=specs())
def test_torch_tensor_of_a_tensor_is_a_detached_clone(device, dtype, x):
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    with pytest.warns(UserWarning, match="clone"):
        copied = torch.tensor(t)
    assert copied.is_leaf and not copied.requires_grad
    assert_own_storage(copied, t, "torch.tensor(t)")
    assert_equal(copied, t.detach().clone())
    with pytest.warns(UserWarning, match="clone"):
        fresh_leaf = torch.tensor(t, requires_grad=True)
    assert fresh_leaf.is_leaf and fresh_leaf.requires_grad and fresh_leaf.grad_fn is None
    assert_own_storage(fresh_leaf, t, "torch.tensor(t, requires_grad=True)")
    assert_equal(fresh_leaf.detach(), t.detach())
    cloned = t.clone()
    assert cloned.requires_grad and cloned.grad_fn is not None


@pytest.mark.behaviour("autograd.manual_update")
@pytest.mark.dtypes("float32_64")
@given(x=specs(layouts=WRITABLE_LAYOUTS), lr=st.floats(0.01, 1.0))  # the parameter updated may be strided
def test_in_place_updates_keep_the_leaf(device, dtype, x, lr):
    w = x.build(dtype=dtype, device=device, requires_grad=True)
    function_of(w).backward()
    grad, before = w.grad.clone(), w.detach().clone()
    with torch.no_grad():
        w.sub_(w.grad * lr)
    assert w.is_leaf and torch.equal(w.grad, grad)
    assert_close(w.detach(), before - lr * grad)
    rebound = w - lr * w.grad
    assert not rebound.is_leaf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert rebound.grad is None


@pytest.mark.behaviour("autograd.hooks_receive_grad")
@pytest.mark.dtypes("float32_64")
@given(x=specs(), scale=st.floats(-3, 3))
def test_hooks_see_and_replace_the_gradient(device, dtype, x, scale):
    seen = []
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    t.register_hook(lambda g: seen.append(g.clone()) or g * scale)
    (t * t).sum().backward()
    assert len(seen) == 1
    assert_close(seen[0], 2 * t.detach())
    assert_close(t.grad, 2 * t.detach() * scale)


@pytest.mark.behaviour("autograd.hook_closure_late_binding")
@given(layers=st.integers(2, 4))
def test_hooks_in_a_loop_see_the_last_name(device, layers):
    with private_rng():
        model = torch.nn.Sequential(*[torch.nn.Linear(2, 2) for _ in range(layers)]).to(device)
    logged = []
    for name, param in model.named_parameters():
        param.register_hook(lambda grad: logged.append(name))
    model(torch.ones(1, 2, device=device)).sum().backward()
    last = list(dict(model.named_parameters()))[-1]
    assert len(logged) == 2 * layers and set(logged) == {last}


class Scale(torch.autograd.Function):
    """y = k x, with a hand-written backward: dy/dx = k."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return x * k

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        assert x.shape == grad.shape
        return grad * ctx.k, None


@pytest.mark.behaviour("autograd.custom_function")
@pytest.mark.dtypes("float32_64")
@given(x=specs(), k=st.sampled_from([-2.0, 0.5, 3.0]))
def test_a_custom_function_runs_its_own_backward(device, dtype, x, k):
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    out = Scale.apply(t, k)
    assert type(out.grad_fn).__name__ == "ScaleBackward", type(out.grad_fn).__name__
    assert_close(out.detach(), t.detach() * k)
    out.sum().backward()
    assert_close(t.grad, torch.full_like(t.detach(), k))


@pytest.mark.behaviour("autograd.inplace_on_leaf_raises")
@pytest.mark.dtypes("float32")
@given(x=specs(layouts=WRITABLE_LAYOUTS), lr=st.floats(0.01, 1.0))  # the parameter updated may be strided
def test_in_place_on_a_leaf_needs_no_grad(device, dtype, x, lr):
    w = x.build(dtype=dtype, device=device, requires_grad=True)
    (w * 2).sum().backward()
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w.sub_(lr * w.grad)
    with torch.no_grad():
        w.sub_(lr * w.grad)
    assert w.is_leaf and w.requires_grad and w.grad is not None


@pytest.mark.behaviour("autograd.clone_detach_either_order")
@pytest.mark.dtypes("float32_64")
@given(x=specs())
def test_clone_and_detach_commute(device, dtype, x):
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    for copy in (t.clone().detach(), t.detach().clone()):
        assert copy.is_leaf and copy.grad_fn is None and not copy.requires_grad
        assert_equal(copy, t.detach(), "the copy's values")
        assert_own_storage(copy, t, "the copy")


@pytest.mark.behaviour("autograd.grad_fn_names")
@pytest.mark.dtypes("float32_64")
@given(x=specs(shapes=shapes(min_dims=1)))  # at least one dim: the sum over dim 0 names SumBackward1
def test_grad_fn_names_the_operation(device, dtype, x):
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    y = t + 2
    z = y * y * 2
    for result, name in ((y, "AddBackward0"), (z, "MulBackward0"), (z.mean(), "MeanBackward0"),
                         (z.sum(), "SumBackward0"), (z.sum(0), "SumBackward1")):  # fmt: skip
        assert type(result.grad_fn).__name__ == name, f"{type(result.grad_fn).__name__}, expected {name}"


@pytest.mark.behaviour("autograd.item_leaves_graph")
@pytest.mark.dtypes("float32_64")
@given(w=specs(), b=st.floats(-1e3, 1e3))
def test_a_number_taken_with_item_is_not_tracked(device, dtype, w, b):
    # The notes' update: predict = feature @ weight + bias.item(); loss.backward()
    weight = w.build(dtype=dtype, device=device, requires_grad=True)
    bias = torch.tensor(b, dtype=dtype, device=device, requires_grad=True)
    number = bias.item()
    assert type(number) is float
    (weight * 3 + number).sum().backward()
    assert bias.grad is None, "bias.item() took part in the graph"
    assert_close(weight.grad, torch.full_like(weight, 3))


@st.composite
def mismatched_gradient_shapes(draw):
    """(output shape with more than one element, a gradient shape that differs from it)."""
    # where a gradient is required: "non-scalar (i.e. its data has more than one element)"
    output = draw(shapes().filter(lambda s: math.prod(s) > 1), label="output")
    gradient = draw(
        st.one_of(
            shapes(max_dims=4),
            st.permutations(output).map(tuple),  # same number of elements, other shape
            st.just((math.prod(output),)),  # flattened
            st.just((1, *output)),  # one more leading dimension
        ).filter(lambda s: s != output),
        label="gradient",
    )
    return output, gradient


@pytest.mark.behaviour("autograd.backward_gradient_shape_checked")
@pytest.mark.dtypes("float32_64")
@given(shapes_=mismatched_gradient_shapes(), seed=st.integers(0, 2**16))
def test_backward_refuses_a_gradient_of_another_shape(device, dtype, shapes_, seed):
    output_shape, gradient_shape = shapes_
    x = torch.ones(output_shape, dtype=dtype, device=device, requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="shape"):
        y.backward(torch.ones(gradient_shape, dtype=dtype, device=device))
    assert x.grad is None


@pytest.mark.behaviour("autograd.accumulated_loss_keeps_history")
@pytest.mark.dtypes("float32_64")
@given(w=specs(shapes=shapes(max_dims=2)), steps=st.integers(1, 5), data=st.data())
def test_summing_losses_keeps_every_step_s_history_and_float_does_not(device, dtype, w, steps, data):
    weight = w.build(dtype=dtype, device=device, requires_grad=True)
    inputs = [data.draw(specs(shape=w.shape), label=f"x{i}").build(dtype=dtype, device=device) for i in range(steps)]
    total, total_float = 0, 0
    for x in inputs:  # the FAQ's loop: total_loss += loss
        loss = (weight * x).sum()
        total += loss
        total_float += loss.item()  # the FAQ writes float(loss): the same number, which torch 2.13 warns about once
    assert isinstance(total, torch.Tensor) and total.requires_grad and total.grad_fn is not None
    assert type(total_float) is float
    total.backward()  # the history reaches back through every step
    assert_close(weight.grad, sum(inputs))  # sums of up to five terms in another order: the dtype defaults
