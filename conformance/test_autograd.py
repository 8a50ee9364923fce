"""Autograd: who is a leaf, what .to records, how gradients flow, accumulate and get hooked.

A behaviour that computes gradients declares a call that runs the forward and the backward and
returns the gradients (and whatever else the statement is about: results, autograd flags, the
error raised), so the cross-device and compiled modes compare them; the compiled mode's backward
case differentiates through the call again. Behaviours about the leaf status of a tensor as the
test constructs it, about hooks and about grad-mode flags say in their catalogue entries why they
are not declared (`not_declared`)."""

import math
import warnings

import numpy
import pytest
import torch
import torch.autograd.forward_ad as forward_ad
import torch.utils.checkpoint  # a submodule: not an attribute of torch.utils until imported (torch 2.6)
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

from conformance.checks import (
    assert_close_to_reference,
    assert_equal,
    assert_own_storage,
    assert_same_storage,
    dense_non_overlapping,
    independent_array,
    numpy_dtype,
    private_rng,
)
from conformance.harness.declaration import Operation
from conformance.harness.releases import torch_at_least
from strategies import DTYPE_GROUPS, specs
from strategies.samples import Arg, Sample
from strategies.shapes import shapes
from strategies.tensors import WRITABLE_LAYOUTS, label


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
        assert t.requires_grad is False, f"a {t.dtype} tensor made without requires_grad requires grad"
    if dtype.is_floating_point or dtype.is_complex:  # only these can require grad
        for asked in (
            torch.zeros(shape, dtype=dtype, device=device, requires_grad=True),
            torch.ones(shape, dtype=dtype, device=device, requires_grad=True),
            torch.empty(shape, dtype=dtype, device=device, requires_grad=True),
            torch.tensor(0, dtype=dtype, device=device, requires_grad=True),
        ):
            assert asked.requires_grad is True, "a tensor made with requires_grad=True does not require grad"


def requires_grad_called(t, flag):
    """t.requires_grad_() with its argument left out (flag None) or given."""
    return t.requires_grad_() if flag is None else t.requires_grad_(flag)


REQUIRES_GRAD_ = Operation(
    "autograd.requires_grad_default_on",
    dtypes="float_and_complex",
    samples=st.builds(
        lambda x, before, flag: Sample((Arg(x, requires_grad=before), flag)),
        specs(),
        st.booleans(),  # whether it required grad before the call
        st.sampled_from([None, True, False]),  # None: the argument left out
    ),
    call=lambda t, flag: requires_grad_called(t, flag),
    not_compiled="the call is one flag change on an input, on which Dynamo graph-breaks: no graph is left to compile",
)


@REQUIRES_GRAD_.property
def test_requires_grad_underscore_defaults_to_true(device, dtype, sample):
    (t, flag), _ = sample.build(dtype=dtype, device=device)
    out = REQUIRES_GRAD_.call(t, flag)
    assert out is t, "requires_grad_() did not return the tensor itself (it works in place)"
    if flag is False:
        assert t.requires_grad is False, "requires_grad_(False) did not turn requires_grad off"
    else:
        assert t.requires_grad is True, "requires_grad_() (argument left out) did not turn requires_grad on"


@pytest.mark.behaviour("autograd.created_are_leaves")
@pytest.mark.dtypes("float32")
@given(x=specs(), requires_grad=st.booleans())
def test_user_created_tensors_are_leaves(device, dtype, x, requires_grad):
    t = x.build(dtype=dtype, device=device, requires_grad=requires_grad)
    assert t.is_leaf and t.grad_fn is None, "a tensor the user built is not a leaf with grad_fn None"
    made = torch.zeros(x.shape, dtype=dtype, device=device, requires_grad=requires_grad)
    assert made.is_leaf and made.grad_fn is None, "a tensor a factory made is not a leaf with grad_fn None"


# Operations of each kind: arithmetic with a number and with a tensor, a pointwise function, a
# reduction, a view and indexing.
OPERATIONS = {
    "add": lambda t: t + 2,
    "mul": lambda t: t * t,
    "exp": lambda t: t.exp(),
    "sum": lambda t: t.sum(),
    "view": lambda t: t.reshape(-1),
    "getitem": lambda t: t[...],
}

NON_LEAF = Operation(
    "autograd.ops_make_non_leaves",
    dtypes="float32_64",
    samples=st.builds(lambda x, op: Sample((Arg(x, requires_grad=True), op)), specs(), st.sampled_from(sorted(OPERATIONS))),
    call=lambda t, op: OPERATIONS[op](t),
)


@NON_LEAF.property
def test_operations_make_non_leaves_that_require_grad(device, dtype, sample):
    (t, op), _ = sample.build(dtype=dtype, device=device)
    out = NON_LEAF.call(t, op)
    assert out.requires_grad, f"{op} of a tensor that requires grad does not require grad"
    assert not out.is_leaf and out.grad_fn is not None, f"{op} of a tensor that requires grad is a leaf"
    assert (t.detach() + 2).requires_grad is False, "an operation on a tensor without grad requires grad"


@pytest.mark.behaviour("autograd.to_makes_non_leaf")
@pytest.mark.dtypes("float32")
@pytest.mark.meta_too
@given(shape=shapes(), other=st.sampled_from([torch.float64, torch.float16]))
def test_to_of_a_leaf_records_a_copy(device, dtype, shape, other):
    leaf = torch.zeros(shape, dtype=dtype, requires_grad=True)
    moved = leaf.to(other)  # a dtype change is a recorded copy on every device
    assert not moved.is_leaf and moved.grad_fn is not None and moved.requires_grad, (
        ".to(dtype) of a leaf that requires grad is a leaf"
    )
    assert_equal(moved.detach(), torch.zeros(shape, dtype=other), "the copy .to(dtype) recorded")
    if torch.device(device).type != "cpu":
        across = leaf.to(device)
        assert not across.is_leaf and across.grad_fn is not None, ".to(device) of a leaf that requires grad is a leaf"
    fixed = leaf.detach().to(device).requires_grad_()
    assert fixed.is_leaf and fixed.grad_fn is None, "moved first, then requires_grad_(): not a leaf"
    direct = torch.zeros(shape, dtype=dtype, device=device, requires_grad=True)
    assert direct.is_leaf, "created with device= and requires_grad=: not a leaf"


@pytest.mark.behaviour("autograd.to_returns_self")
@pytest.mark.dtypes("float32_64")
@pytest.mark.meta_too
@given(x=specs(), requires_grad=st.booleans())
def test_to_returns_self_when_nothing_changes(device, dtype, x, requires_grad):
    t = x.build(dtype=dtype, device=device, requires_grad=requires_grad)
    assert t.to(dtype) is t and t.to(device) is t and t.to(t.device, dtype) is t, (
        ".to() with dtype and device already matching did not return self"
    )
    assert t.is_leaf, ".to() returning self changed its leaf status"
    copied = t.to(dtype, copy=True)
    assert copied is not t, ".to(copy=True) returned self"
    assert_own_storage(copied, t, ".to(copy=True)")
    # "a new Tensor is created even when the Tensor already matches the desired conversion": the
    # conversion's result, t's values in t's dtype, with t's strides (memory_format=torch.preserve_format)
    assert_equal(copied, x.logical_values(dtype), "the values of .to(copy=True)")
    if non_overlapping_and_dense(t):
        assert strides_above_one(copied) == strides_above_one(t), f"the copy's strides {copied.stride()} are not t's"


@pytest.mark.behaviour("autograd.to_not_in_place")
@pytest.mark.dtypes("float32")
@pytest.mark.meta_too
@given(x=specs(), other=st.sampled_from(DTYPE_GROUPS["all"]))
def test_to_leaves_its_input_alone(device, dtype, x, other):
    t = x.build(dtype=dtype, device="cpu")
    before = t.clone()
    out = t.to(device, other)
    assert (t.dtype, t.device.type) == (dtype, "cpu") and torch.equal(t, before), ".to() changed the tensor it is called on"
    assert (out.dtype, out.device.type) == (other, torch.device(device).type), "the result of .to() is not what was asked"


TO_INTEGRAL = Operation(
    "autograd.to_integral_drops_grad",
    dtypes="float32_64",
    samples=st.builds(
        lambda x, target: Sample((Arg(x, requires_grad=True), target)),
        # values in [0, 100): every integral target holds them, so the converted values are
        # defined on every device (a float out of an integer type's range converts to undefined ones)
        specs(low=0, high=100),
        st.sampled_from(DTYPE_GROUPS["integral"] + DTYPE_GROUPS["bool"]),
    ),
    call=lambda t, target: t.to(target),
)


@TO_INTEGRAL.property
def test_integral_conversion_does_not_require_grad(device, dtype, sample):
    x, target = sample.args
    (t, _), _ = sample.build(dtype=dtype, device=device)
    out = TO_INTEGRAL.call(t, target)
    assert out.requires_grad is False, f"{out.dtype} conversion of a tensor that requires grad requires grad"
    # the conversion itself: the target dtype, each value truncated toward zero (nonzero: True for bool)
    values = independent_array(x.spec.logical_values(dtype))
    converted = values != 0 if target == torch.bool else numpy.trunc(values).astype(numpy_dtype(target))
    assert_equal(out, torch.from_numpy(numpy.asarray(converted)), f"the values converted to {target}")
    if non_overlapping_and_dense(t):  # memory_format: "Default: torch.preserve_format"
        assert strides_above_one(out) == strides_above_one(t), f"the converted tensor's strides {out.stride()} are not t's"


def function_of(x):
    return (3 * (x + 2) ** 2).sin().sum() / max(x.numel(), 1)


def grads_of_both_backward_forms(a, rank):
    """The gradient backward() leaves on `a` through a one-element output of `rank` dims, and the
    one backward(ones) leaves on a fresh leaf of a's values."""
    # "non-scalar (i.e. its data has more than one element)": every one-element output, of any
    # rank, is a scalar here, and its implicit gradient is one.
    one_element = (1,) * rank
    b = a.detach().clone().requires_grad_()
    function_of(a).reshape(one_element).backward()
    function_of(b).reshape(one_element).backward(torch.ones(one_element, dtype=b.dtype, device=b.device))
    return a.grad, b.grad


SCALAR_BACKWARD = Operation(
    "autograd.backward_scalar_default",
    dtypes="float32_64",
    samples=st.builds(lambda x, rank: Sample((Arg(x, requires_grad=True), rank)), specs(), st.integers(0, 3)),
    call=lambda a, rank: grads_of_both_backward_forms(a, rank),
)


@SCALAR_BACKWARD.property
def test_scalar_backward_defaults_to_one(device, dtype, sample):
    implicit, explicit = SCALAR_BACKWARD(sample, dtype=dtype, device=device)
    assert_close(implicit, explicit, msg=lambda m: f"backward() differs from backward(ones)\n{m}")
    assert not implicit.requires_grad, "backward() with create_graph left out (default False) built a graph of the derivative"


NONSCALAR_BACKWARD = Operation(
    "autograd.backward_nonscalar_raises",
    dtypes="float32",
    samples=st.builds(
        lambda x: Sample((Arg(x, requires_grad=True),)),
        # "If the tensor is non-scalar (i.e. its data has more than one element)": outputs of more
        # than one element, size-1 sides among them
        specs(shapes=shapes().filter(lambda s: math.prod(s) > 1)),
    ),
    call=lambda t: (t * 2).backward(),
)


@NONSCALAR_BACKWARD.property
def test_nonscalar_backward_needs_a_gradient(device, dtype, sample):
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        NONSCALAR_BACKWARD(sample, dtype=dtype, device=device)


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
    grad = VJP(sample, dtype=dtype, device=device)
    assert_close(grad, x.detach().cos() * (A.T @ v), msg=lambda m: f"y.backward(v) did not leave J^T v in x.grad\n{m}")
    assert not grad.requires_grad, "y.backward(v) with create_graph left out (default False) built a graph of the derivative"


def worked_example_gradient(x):
    """out = (3 (x + 2)^2).mean() and x.grad after out.backward()."""
    y = x + 2
    out = (y * y * 3).mean()
    out.backward()
    return out, x.grad


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
    assert_close(
        worked_example_gradient(x)[1].cpu(),
        torch.full((2, 2), 4.5),
        msg=lambda m: f"the notes' x = ones(2, 2) did not get 4.5 everywhere\n{m}",
    )


@WORKED_EXAMPLE.property
def test_worked_gradient_is_six_times_x_plus_two_over_n(device, dtype, sample):
    # d/dx_i of mean(3 (x + 2)^2) over n elements is 6 (x_i + 2) / n: 3/2 (x_i + 2) for the notes' 2x2.
    (x,), _ = sample.build(dtype=dtype, device=device)
    values = independent_array(sample.args[0].spec.logical_values(dtype)).astype(numpy.float64)
    out, grad = WORKED_EXAMPLE(sample, dtype=dtype, device=device)
    assert out.dtype == dtype, f"out is {out.dtype}, not the {dtype} of x"
    assert_close_to_reference(out, torch.tensor(float((3 * (values + 2) ** 2).mean())), msg=lambda m: f"out is not the mean\n{m}")
    expected = numpy.asarray(6 * (values + 2) / values.size)
    assert_close(
        grad.cpu(), torch.from_numpy(expected).to(dtype), msg=lambda m: f"out.backward() did not leave 6 (x + 2) / n\n{m}"
    )
    assert not grad.requires_grad, "out.backward() with create_graph left out (default False) built a graph of the derivative"


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
    accumulated = GRAD_ACCUMULATES(sample, dtype=dtype, device=device)
    assert_close(accumulated, once * times, msg=lambda m: f"{times} backward passes did not accumulate {times} gradients\n{m}")
    assert not accumulated.requires_grad, "backward() with create_graph left out (default False) built a graph of the derivative"
    t.grad.zero_()
    function_of(t).backward()
    assert_close(t.grad, once, msg=lambda m: f"after zeroing, the next backward did not leave one pass's gradient\n{m}")


@pytest.mark.behaviour("autograd.grad_none_before_backward")
@pytest.mark.dtypes("float32")
@given(x=specs())
def test_grad_is_none_before_backward(device, dtype, x):
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    assert t.grad is None, ".grad of a leaf before any backward is not None"
    with pytest.raises(AttributeError, match="zero_"):
        t.grad.zero_()


# Graphs by whether their backward needs saved tensors: exp(t) * t saves both factors, sin saves its
# input; t + 2, -t and sum save nothing (their gradients do not depend on the values; a product
# with a Python number does save it). Each with its gradient in NumPy, the oracle.
SAVING = {
    "exp(t) * t": (lambda t: (t.exp() * t).sum(), lambda a: numpy.exp(a) * (1 + a)),
    "sin(t)": (lambda t: t.sin().sum(), numpy.cos),
}
SAVING_NOTHING = {
    "(t + 2).sum()": (lambda t: (t + 2).sum(), numpy.ones_like),
    "t.sum()": (lambda t: t.sum(), numpy.ones_like),
    "(-t).sum()": (lambda t: (-t).sum(), lambda a: -numpy.ones_like(a)),
}
GRAPHS = {**SAVING, **SAVING_NOTHING}


def grad_after_two_backwards(t, graph, retain):
    """t.grad after two backward passes through one graph, the first with retain_graph left out
    (retain None: its default, False) or given."""
    out = GRAPHS[graph][0](t)
    out.backward() if retain is None else out.backward(retain_graph=retain)
    out.backward()
    return t.grad


@st.composite
def retain_graph_samples(draw):
    """Sample(t, graph, retain): a graph that saved tensors with retain_graph left out (None, its
    default False), False or True, or one that saved nothing with retain_graph=True: what the docs
    decide. A graph that saved nothing traversed again without it is observed of eager execution
    only (test_a_graph_that_saved_nothing_can_be_traversed_again): a compiled graph saves what it
    chooses to."""
    x = draw(specs(), label="x")
    graph = draw(st.sampled_from(sorted(GRAPHS)), label="graph")
    retain = draw(st.sampled_from([None, False, True]), label="retain_graph") if graph in SAVING else True
    return Sample((Arg(x, requires_grad=True), graph, retain))


RETAIN_GRAPH = Operation(
    "autograd.retain_graph",
    dtypes="float32",
    samples=retain_graph_samples(),
    call=lambda t, graph, retain: grad_after_two_backwards(t, graph, retain),
)


@RETAIN_GRAPH.property
def test_second_backward_through_saved_tensors_needs_retain_graph(device, dtype, sample):
    x, graph, retain = sample.args
    if not retain:
        with pytest.raises(RuntimeError, match="second time|already been freed"):
            RETAIN_GRAPH(sample, dtype=dtype, device=device)
        return
    twice = 2 * GRAPHS[graph][1](independent_array(x.spec.logical_values(dtype)).astype(numpy.float64))
    assert_close_to_reference(
        RETAIN_GRAPH(sample, dtype=dtype, device=device),
        torch.from_numpy(numpy.asarray(twice)),
        msg=lambda m: f"the gradient after two backward passes with retain_graph=True is not twice the gradient\n{m}",
    )


@pytest.mark.behaviour("autograd.retain_graph")
@pytest.mark.dtypes("float32")
@given(x=specs(), graph=st.sampled_from(sorted(SAVING_NOTHING)))
def test_a_graph_that_saved_nothing_can_be_traversed_again(device, dtype, x, graph):
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    twice = 2 * SAVING_NOTHING[graph][1](independent_array(x.logical_values(dtype)).astype(numpy.float64))
    assert_close_to_reference(  # nothing was saved, so nothing was freed (observed)
        grad_after_two_backwards(t, graph, None),
        torch.from_numpy(numpy.asarray(twice)),
        msg=lambda m: f"the gradient after two backward passes through a graph that saved nothing\n{m}",
    )


def non_leaf_grads(t):
    """.grad of two non-leaves after a backward through both, retain_grad() called on the second."""
    hidden, kept = t * 2, t * 3
    kept.retain_grad()
    (hidden.sum() + kept.sum()).backward()
    return hidden.grad, kept.grad


NON_LEAF_GRAD = Operation(
    "autograd.non_leaf_grad_none",
    dtypes="float32",
    samples=specs().map(lambda x: Sample((Arg(x, requires_grad=True),))),
    call=lambda t: non_leaf_grads(t),
)


@NON_LEAF_GRAD.property
def test_non_leaf_grad_needs_retain_grad(device, dtype, sample):
    (x,) = sample.args
    with pytest.warns(UserWarning, match="not a leaf Tensor"):  # the warning the statement promises
        hidden, kept = NON_LEAF_GRAD(sample, dtype=dtype, device=device)
    assert hidden is None, "a non-leaf without retain_grad() got a .grad"
    assert_equal(kept, torch.ones(x.spec.shape, dtype=dtype), "the .grad of the non-leaf with retain_grad()")


DETACH = Operation(
    "autograd.detach_shares",
    dtypes="float32_64",
    samples=specs().map(lambda x: Sample((Arg(x, requires_grad=True),))),
    call=lambda t: t.detach(),
)


@DETACH.property
def test_detach_shares_storage(device, dtype, sample):
    (t,), _ = sample.build(dtype=dtype, device=device)
    x = sample.args[0].spec
    d = DETACH.call(t)
    assert d.requires_grad is False and d.is_leaf, "detach() gave a tensor that requires grad"
    assert_same_storage(d, t, "detach()")
    assert_equal(d, x.logical_values(dtype), "the values of detach()")
    if x.numel and x.layout != "expanded":
        with torch.no_grad():
            t.add_(1)
        assert_equal(d, t.detach(), "a write into t seen through detach()")


def detached_in_place(t):
    """y = t * 2, a result autograd recorded; y.detach_(), and what it returned."""
    y = t * 2
    return y, y.detach_()


DETACH_ = Operation(
    "autograd.detach_in_place_leaf",
    dtypes="float32_64",
    samples=specs().map(lambda x: Sample((Arg(x, requires_grad=True),))),
    call=lambda t: detached_in_place(t),
)


@DETACH_.property
def test_detach_underscore_makes_a_leaf_in_place(device, dtype, sample):
    (t,), _ = sample.build(dtype=dtype, device=device)
    x = sample.args[0].spec
    y, returned = DETACH_.call(t)
    assert returned is y, "detach_() did not return the tensor itself"
    assert y.is_leaf and y.grad_fn is None and not y.requires_grad, (
        f"detach_() left a non-leaf: is_leaf {y.is_leaf}, grad_fn {y.grad_fn}, requires_grad {y.requires_grad}"
    )
    expected = numpy.asarray(independent_array(x.logical_values(dtype))) * 2
    numpy.testing.assert_array_equal(independent_array(y.cpu()), expected, "detach_() changed the values")
    # "Views cannot be detached in-place": a view of a recorded result, made by view or slicing
    with pytest.raises(RuntimeError):
        (t * 2).view(x.shape).detach_()
    if x.ndim:
        with pytest.raises(RuntimeError):
            (t * 2)[:].detach_()
    # "the result will never have forward mode AD gradients"
    with forward_ad.dual_level():
        primal = t.detach().clone()  # a dense primal: make_dual of an expanded (stride-0) one raises
        dual = forward_ad.make_dual(primal, torch.ones_like(primal)) * 2
        dual.detach_()
        assert forward_ad.unpack_dual(dual).tangent is None, "detach_() kept a forward-mode gradient"


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
    assert out.requires_grad is False and out.grad_fn is None, f"a result computed under {mode} requires grad"


def tensor_of_tensor(t):
    """torch.tensor(t), torch.tensor(t, requires_grad=True) and t.clone()."""
    return torch.tensor(t), torch.tensor(t, requires_grad=True), t.clone()


TENSOR_OF_TENSOR = Operation(
    "autograd.tensor_of_tensor_copies",
    dtypes="float32_64",
    samples=specs().map(lambda x: Sample((Arg(x, requires_grad=True),))),
    call=lambda t: tensor_of_tensor(t),
)


@TENSOR_OF_TENSOR.property
def test_torch_tensor_of_a_tensor_is_a_detached_clone(device, dtype, sample):
    (t,), _ = sample.build(dtype=dtype, device=device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        copied, fresh_leaf, cloned = TENSOR_OF_TENSOR.call(t)
    recommending = [w for w in caught if issubclass(w.category, UserWarning) and "clone" in str(w.message)]
    assert len(recommending) == 2, f"torch.tensor(t) warned {len(recommending)} times recommending clone(), not twice"
    values = sample.args[0].spec.logical_values(dtype)
    assert copied.is_leaf and not copied.requires_grad, "torch.tensor(t) is not a leaf without grad"
    assert_own_storage(copied, t, "torch.tensor(t)")
    assert_equal(copied, values, "the values of torch.tensor(t)")
    assert fresh_leaf.is_leaf and fresh_leaf.requires_grad and fresh_leaf.grad_fn is None, (
        "torch.tensor(t, requires_grad=True) is not a new leaf that requires grad"
    )
    assert_own_storage(fresh_leaf, t, "torch.tensor(t, requires_grad=True)")
    assert_equal(fresh_leaf.detach(), values, "the values of torch.tensor(t, requires_grad=True)")
    assert cloned.requires_grad and cloned.grad_fn is not None, "t.clone() left the graph"


def manual_update(w, lr):
    """A backward, then w.sub_(lr * w.grad) under no_grad; returns w, its gradient as it was
    before the update, and the rebound w - lr * w.grad."""
    function_of(w).backward()
    grad = w.grad.clone()
    with torch.no_grad():
        w.sub_(w.grad * lr)
    return w, grad, w - lr * w.grad


MANUAL_UPDATE = Operation(
    "autograd.manual_update",
    dtypes="float32_64",
    samples=st.builds(
        lambda x, lr: Sample((Arg(x, requires_grad=True), lr)),
        specs(layouts=WRITABLE_LAYOUTS),  # the parameter updated may be strided
        st.floats(0.01, 1.0),
    ),
    call=lambda w, lr: manual_update(w, lr),
)


@MANUAL_UPDATE.property
def test_in_place_updates_keep_the_leaf(device, dtype, sample):
    (w, lr), _ = sample.build(dtype=dtype, device=device)
    before, version = w.detach().clone(), w._version
    updated, grad, rebound = MANUAL_UPDATE.call(w, lr)
    assert updated is w and w.is_leaf and torch.equal(w.grad, grad), "the update in place did not keep w a leaf with its .grad"
    # "every tensor keeps a version counter, that is incremented every time it is marked dirty"
    assert w._version > version, "the in-place update did not bump w's version counter"
    assert_close(w.detach(), before - lr * grad, msg=lambda m: f"the update is not w - lr * grad\n{m}")
    assert not rebound.is_leaf, "w - lr * w.grad is a leaf"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert rebound.grad is None, "the rebound w - lr * w.grad has a .grad"


@pytest.mark.behaviour("autograd.hooks_receive_grad")
@pytest.mark.dtypes("float32_64")
@given(x=specs(), scale=st.floats(-3, 3))
def test_hooks_see_and_replace_the_gradient(device, dtype, x, scale):
    seen = []
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    t.register_hook(lambda g: seen.append(g.clone()) or g * scale)
    (t * t).sum().backward()
    assert len(seen) == 1, f"the hook ran {len(seen)} times in one backward"
    assert_close(seen[0], 2 * t.detach(), msg=lambda m: f"the hook did not receive the gradient\n{m}")
    assert_close(t.grad, 2 * t.detach() * scale, msg=lambda m: f"the tensor the hook returned did not replace the gradient\n{m}")


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
    assert len(logged) == 2 * layers and set(logged) == {last}, f"hooks in a loop logged {logged}, not the last name only"


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


def through_scale(t, k):
    """Scale.apply(t, k), then a backward from its sum: the output and t's gradient."""
    out = Scale.apply(t, k)
    out.sum().backward()
    return out, t.grad


CUSTOM_FUNCTION = Operation(
    "autograd.custom_function",
    dtypes="float32_64",
    samples=st.builds(lambda x, k: Sample((Arg(x, requires_grad=True), k)), specs(), st.sampled_from([-2.0, 0.5, 3.0])),
    call=lambda t, k: through_scale(t, k),
)


@CUSTOM_FUNCTION.property
def test_a_custom_function_runs_its_own_backward(device, dtype, sample):
    (t, k), _ = sample.build(dtype=dtype, device=device)
    out, grad = CUSTOM_FUNCTION.call(t, k)
    assert type(out.grad_fn).__name__ == "ScaleBackward", type(out.grad_fn).__name__
    assert_close(out.detach(), t.detach() * k, msg=lambda m: f"Scale.apply did not return forward's result\n{m}")
    assert_close(grad, torch.full_like(t.detach(), k), msg=lambda m: f"backward() did not run the given backward\n{m}")


def in_place_update(w, lr, no_grad):
    """A backward through (2 w).sum(), then w.sub_(lr * w.grad) with grad mode on, or under
    torch.no_grad(); returns w."""
    (w * 2).sum().backward()
    if no_grad:
        with torch.no_grad():
            w.sub_(lr * w.grad)
    else:
        w.sub_(lr * w.grad)
    return w


IN_PLACE_ON_LEAF = Operation(
    "autograd.inplace_on_leaf_raises",
    dtypes="float32",
    samples=st.builds(
        lambda x, lr, no_grad: Sample((Arg(x, requires_grad=True), lr, no_grad)),
        specs(layouts=WRITABLE_LAYOUTS),  # the parameter updated may be strided
        st.floats(0.01, 1.0),
        st.booleans(),
    ),
    call=lambda w, lr, no_grad: in_place_update(w, lr, no_grad),
)


@IN_PLACE_ON_LEAF.property
def test_in_place_on_a_leaf_needs_no_grad(device, dtype, sample):
    (w, lr, no_grad), _ = sample.build(dtype=dtype, device=device)
    if not no_grad:
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            IN_PLACE_ON_LEAF.call(w, lr, no_grad)
        return
    before = w.detach().clone()
    assert IN_PLACE_ON_LEAF.call(w, lr, no_grad) is w
    assert w.is_leaf and w.requires_grad and w.grad is not None, "under no_grad the updated leaf lost its leaf status or .grad"
    assert_close(w.detach(), before - lr * 2, msg=lambda m: f"the update under no_grad is not w - lr * grad\n{m}")


def strides_above_one(t) -> list:
    """(size, stride) of t's dims of more than one element: the strides that mean something."""
    return [(n, s) for n, s in zip(t.shape, t.stride()) if n > 1]


def non_overlapping_and_dense(t) -> bool:
    return t.numel() == 0 or dense_non_overlapping(t.shape, t.stride())


CLONE_DETACH = Operation(
    "autograd.clone_detach_either_order",
    dtypes="float32_64",
    samples=specs().map(lambda x: Sample((Arg(x, requires_grad=True),))),
    call=lambda t: (t.clone().detach(), t.detach().clone()),
    compare_strides=True,  # clone's memory_format=torch.preserve_format documents its strides
)


@CLONE_DETACH.property
def test_clone_and_detach_commute(device, dtype, sample):
    (t,), _ = sample.build(dtype=dtype, device=device)
    for copy in CLONE_DETACH.call(t):
        assert copy.is_leaf and copy.grad_fn is None and not copy.requires_grad, "the copy is not a leaf without grad"
        assert_equal(copy, t.detach(), "the copy's values")
        assert_own_storage(copy, t, "the copy")
        if non_overlapping_and_dense(t):  # "If the tensor is non-overlapping and dense, output strides are the same"
            assert strides_above_one(copy) == strides_above_one(t), f"the copy's strides {copy.stride()} are not t's {t.stride()}"


def grad_fn_names(t):
    """The grad_fn class names of y = t + 2, z = y * y * 2, z.mean(), z.sum() and z.sum(0)."""
    y = t + 2
    z = y * y * 2
    return tuple(type(r.grad_fn).__name__ for r in (y, z, z.mean(), z.sum(), z.sum(0)))


GRAD_FN_NAMES = Operation(
    "autograd.grad_fn_names",
    dtypes="float32_64",
    # at least one dim: the sum over dim 0 names SumBackward1
    samples=specs(shapes=shapes(min_dims=1)).map(lambda x: Sample((Arg(x, requires_grad=True),))),
    call=lambda t: grad_fn_names(t),
    not_compiled="a compiled function's results get the compiled graph's backward node as grad_fn "
    "(CompiledFunctionBackward), not the eager operation's: the node names are observed of eager execution",
)


@GRAD_FN_NAMES.property
def test_grad_fn_names_the_operation(device, dtype, sample):
    names = GRAD_FN_NAMES(sample, dtype=dtype, device=device)
    expected = ("AddBackward0", "MulBackward0", "MeanBackward0", "SumBackward0", "SumBackward1")
    for name, want in zip(names, expected):
        assert name == want, f"{name}, expected {want}"


def grads_with_item(weight, b):
    """The notes' update: weight * 3 + bias.item(), bias a 0-d leaf holding b, then backward;
    returns the number item() gave, bias.grad and weight.grad."""
    bias = torch.tensor(b, dtype=weight.dtype, device=weight.device, requires_grad=True)
    number = bias.item()
    (weight * 3 + number).sum().backward()
    return number, bias.grad, weight.grad


ITEM = Operation(
    "autograd.item_leaves_graph",
    dtypes="float32_64",
    samples=st.builds(lambda w, b: Sample((Arg(w, requires_grad=True), b)), specs(), st.floats(-1e3, 1e3)),
    call=lambda weight, b: grads_with_item(weight, b),
)


@ITEM.property
def test_a_number_taken_with_item_is_not_tracked(device, dtype, sample):
    w, b = sample.args
    number, bias_grad, weight_grad = ITEM(sample, dtype=dtype, device=device)
    assert type(number) is float, f"item() returned a {type(number).__name__}"
    assert bias_grad is None, "bias.item() took part in the graph"
    assert_close(
        weight_grad,
        torch.full(w.spec.shape, 3, dtype=dtype, device=weight_grad.device),
        msg=lambda m: f"w did not get the gradient 3\n{m}",
    )


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


def backward_with_gradient_of_shape(x, gradient_shape):
    (x * 2).backward(torch.ones(gradient_shape, dtype=x.dtype, device=x.device))
    return x.grad


GRADIENT_SHAPE = Operation(
    "autograd.backward_gradient_shape_checked",
    dtypes="float32_64",
    samples=mismatched_gradient_shapes().flatmap(
        lambda shapes_: specs(shape=shapes_[0]).map(lambda x: Sample((Arg(x, requires_grad=True), shapes_[1])))
    ),
    call=lambda x, gradient_shape: backward_with_gradient_of_shape(x, gradient_shape),
)


@GRADIENT_SHAPE.property
def test_backward_refuses_a_gradient_of_another_shape(device, dtype, sample):
    (x, gradient_shape), _ = sample.build(dtype=dtype, device=device)
    with pytest.raises(RuntimeError, match="shape"):
        GRADIENT_SHAPE.call(x, gradient_shape)
    assert x.grad is None, "a refused backward touched the leaf's .grad"


def accumulated_losses(weight, inputs):
    """The FAQ's loop, total_loss += loss, beside total_loss += loss.item(); then a backward through
    the accumulated tensor: (total, total of the numbers, weight.grad)."""
    total, total_float = 0, 0
    for x in inputs:
        loss = (weight * x).sum()
        total += loss
        total_float += loss.item()  # the FAQ writes float(loss): the same number, which torch 2.13 warns about once
    total.backward()  # the history reaches back through every step
    return total, total_float, weight.grad


@st.composite
def loss_loops(draw):
    w = draw(specs(shapes=shapes(max_dims=2)), label="w")
    steps = draw(st.integers(1, 5), label="steps")
    return Sample((Arg(w, requires_grad=True), [draw(specs(shape=w.shape), label=f"x{i}") for i in range(steps)]))


ACCUMULATED_LOSS = Operation(
    "autograd.accumulated_loss_keeps_history",
    dtypes="float32_64",
    samples=loss_loops(),
    call=lambda weight, inputs: accumulated_losses(weight, inputs),
    not_compiled="Dynamo graph-breaks at loss.item() inside the FAQ's loop, and a graph break inside a loop makes it "
    "run the whole function eagerly: no graph is left to compile",
)


@ACCUMULATED_LOSS.property
def test_summing_losses_keeps_every_step_s_history_and_float_does_not(device, dtype, sample):
    (weight, inputs), _ = sample.build(dtype=dtype, device=device)
    total, total_float, grad = ACCUMULATED_LOSS.call(weight, inputs)
    assert isinstance(total, torch.Tensor) and total.requires_grad and total.grad_fn is not None, (
        "total_loss += loss lost the autograd history"
    )
    assert type(total_float) is float, "total_loss += loss.item() is not a Python float"
    assert_close(  # sums of up to five terms in another order: the dtype defaults
        grad, sum(inputs), msg=lambda m: f"the backward through the total did not reach every step's weight\n{m}"
    )
    assert not grad.requires_grad, "total.backward() with create_graph left out (default False) built a graph of the derivative"


def doubled_under_enable_grad(t, form, outer):
    """(t * 2).sum() computed with gradients enabled by torch.enable_grad() (as a context manager
    or as a decorator) inside a grad-free context `outer`."""

    @torch.enable_grad()
    def decorated(t):
        return (t * 2).sum()

    disable = {"no_grad": torch.no_grad, "set_grad_enabled(False)": lambda: torch.set_grad_enabled(False)}[outer]
    with disable():
        if form == "decorator":
            return decorated(t)
        with torch.enable_grad():
            return (t * 2).sum()


@pytest.mark.behaviour("autograd.enable_grad_inside_no_grad")
@pytest.mark.dtypes("float32_64")
@given(
    x=specs(),
    form=st.sampled_from(["context manager", "decorator"]),
    outer=st.sampled_from(["no_grad", "set_grad_enabled(False)"]),
)
def test_enable_grad_turns_gradients_back_on(device, dtype, x, form, outer):
    t = x.build(dtype=dtype, device=device, requires_grad=True)
    out = doubled_under_enable_grad(t, form, outer)
    assert out.requires_grad and out.grad_fn is not None, (
        f"a result computed under enable_grad ({form}) inside {outer} does not require grad"
    )
    out.backward()
    # d/dt sum(2 t) = 2 everywhere, exactly
    assert_equal(t.grad, torch.full(x.shape, 2.0, dtype=dtype, device=device), "the gradient of sum(2 t) is not 2")
    assert torch.is_grad_enabled(), "grad mode was not restored on leaving the contexts"


# inputs given as a dict ("the result is returned as a dict with matching keys") is new: "Enable dict inputs
# for torch.autograd.grad and torch.autograd.backward", https://github.com/pytorch/pytorch/pull/178140
# (opened 2026-03; torch 2.6 refuses a dict, "all inputs have to be Tensors or GradientEdges, but got
# str"). Its date places it in 2.12 or 2.13; drawn from 2.13, the first release this suite has seen it in.
GRAD_FORMS = ("sequence", "dict") if torch_at_least("2.13") else ("sequence",)


@st.composite
def autograd_grad_samples(draw):
    """Sample(x, z, u, v, inputs=, materialize=): y = x * x * z elementwise, u an input unused by y,
    v a vector for grad_outputs (None: left out, y summed to a scalar)."""
    x = draw(specs(), label="x")
    z, u = (draw(specs(shape=x.shape), label=n) for n in ("z", "u"))
    v = draw(st.none() | specs(shape=x.shape), label="v")
    label("grad_outputs=" + ("omitted" if v is None else "given"))
    inputs = draw(st.sampled_from(GRAD_FORMS), label="inputs")
    materialize = draw(st.booleans(), label="materialize_grads")
    label(f"inputs={inputs}", f"materialize_grads={materialize}")
    spec = [Arg(s, requires_grad=True) for s in (x, z, u)]
    return Sample((*spec, v), {"inputs": inputs, "materialize": materialize})


def grads_of_product(x, z, u, v, *, inputs, materialize):
    """torch.autograd.grad of x * x * z (summed when v is None, else with grad_outputs v) with
    respect to (x, z, u), u unused: allow_unused=True, or materialize_grads=True (which allows it)."""
    y = x * x * z
    if v is None:
        y = y.sum()
    asked = (x, z, u) if inputs == "sequence" else {"x": x, "z": z, "u": u}
    unused = {"materialize_grads": True} if materialize else {"allow_unused": True}
    given = {} if v is None else {"grad_outputs": v}
    got = torch.autograd.grad(y, asked, **given, **unused)
    return tuple(got[k] for k in ("x", "z", "u")) if inputs == "dict" else tuple(got)


AUTOGRAD_GRAD = Operation(
    "autograd.grad_returns_vjp",
    dtypes="float32_64",
    samples=autograd_grad_samples(),
    call=lambda *a, **k: grads_of_product(*a, **k),
)


@AUTOGRAD_GRAD.property
def test_autograd_grad_returns_the_vector_jacobian_product(device, dtype, sample, record_observation):
    x, z, u, v = (
        None if s is None else independent_array(getattr(s, "spec", s).logical_values(dtype)).astype(numpy.float64)
        for s in sample.args
    )
    (xt, zt, ut, vt), kwargs = sample.build(dtype=dtype, device=device)
    dx, dz, du = AUTOGRAD_GRAD.call(xt, zt, ut, vt, **kwargs)
    ones = numpy.ones_like(x) if v is None else v  # a summed output: the vector of ones
    assert_close_to_reference(
        dx, torch.from_numpy(numpy.array(ones * 2 * x * z)), msg=lambda m: f"d/dx of v . (x x z) is not 2 v x z\n{m}"
    )
    assert_close_to_reference(
        dz, torch.from_numpy(numpy.array(ones * x * x)), msg=lambda m: f"d/dz of v . (x x z) is not v x^2\n{m}"
    )
    if kwargs["materialize"]:
        assert du is not None and bool((du == 0).all()), "materialize_grads=True did not give zeros for an unused input"
    else:
        assert du is None, "allow_unused=True did not give None for an unused input"
    assert xt.grad is None and zt.grad is None and ut.grad is None, "torch.autograd.grad accumulated into .grad"
    # create_graph left out: its default False, no graph of the derivative
    assert not dx.requires_grad and not dz.requires_grad, "create_graph left out (False) built a graph of the derivative"
    record_observation("gradient dtype is the input's", str(dx.dtype == xt.dtype and dz.dtype == zt.dtype))


def checkpoint_body(x, w):
    """The checkpointed function: intermediate activations sin(x) * w and its tanh."""
    return (x.sin() * w).tanh()


def checkpointed_gradients(x, w):
    """torch.utils.checkpoint.checkpoint(checkpoint_body, x, w, use_reentrant=False), then backward of its sum: the
    output and the gradients of x and w."""
    out = torch.utils.checkpoint.checkpoint(checkpoint_body, x, w, use_reentrant=False)
    out.sum().backward()
    return out.detach(), x.grad, w.grad


@st.composite
def checkpoint_samples(draw):
    x = draw(specs(), label="x")
    w = draw(specs(shape=x.shape), label="w")
    return Sample((Arg(x, requires_grad=True), Arg(w, requires_grad=True)))


CHECKPOINT = Operation(
    "autograd.checkpoint_same_gradients",
    dtypes="float32_64",
    samples=checkpoint_samples(),
    call=lambda x, w: checkpointed_gradients(x, w),
)


@CHECKPOINT.property
def test_checkpoint_recomputes_and_gives_the_same_values_and_gradients(device, dtype, sample):
    (x_arg, w_arg), _ = sample.args, sample.kwargs
    (x, w), _ = sample.build(dtype=dtype, device=device)
    out, grad_x, grad_w = CHECKPOINT.call(x, w)
    xv, wv = (independent_array(a.spec.logical_values(dtype)).astype(numpy.float64) for a in (x_arg, w_arg))
    y = numpy.tanh(numpy.sin(xv) * wv)  # the forward, and its derivatives by the chain rule
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    for got, want, what in (
        (out, y, "the output is not the function's value"),
        (grad_x, (1 - y**2) * numpy.cos(xv) * wv, "the gradient of x is not the function's"),
        (grad_w, (1 - y**2) * numpy.sin(xv), "the gradient of w is not the function's"),
    ):
        numpy.testing.assert_allclose(
            independent_array(got.cpu()).astype(numpy.float64), want, err_msg=f"checkpoint: {what}", **tol
        )
    # the function is invoked again in the backward pass to recompute what was not kept
    calls = []

    def counted(a, b):
        calls.append(torch.is_grad_enabled())
        return checkpoint_body(a, b)

    again = [a.spec.build(dtype=dtype, device=device, requires_grad=True) for a in (x_arg, w_arg)]
    result = torch.utils.checkpoint.checkpoint(counted, *again, use_reentrant=False)
    assert len(calls) == 1, "checkpoint: the function did not run once in the forward pass"
    result.sum().backward()
    assert len(calls) == 2, "checkpoint: the function was not re-invoked in the backward pass"
