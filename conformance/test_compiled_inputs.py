"""Compiled against eager where compilers break: aliased inputs, mutation inside the compiled
function, backward through it, and shapes that vary without recompiling.

An execution mode, not an area (collected only with --compile, like test_compiled.py). A fresh,
contiguous, non-aliasing tensor built once per call is where compilers rarely go wrong; open
reports of torch.compile silently returning other values than eager code come from these inputs
instead. For each declared Operation, backend and device, one drawn Sample is turned into the
case below, built twice from the same draw, run eagerly and compiled, and compared as
test_compiled.py compares (error type; values, dtype and shape; aliasing; every input after the
call; requires_grad), plus the gradients for `backward`:

    aliased     two tensor arguments of one dtype made to share memory: the same tensor twice,
                a tensor and a view of it, or overlapping slices of one base; after the call the
                function writes into the first (so into the second too), where it can
    mutated     after the call the function writes into its first input in place, directly or
                through a view it makes (`x[...]`): what the result and the input then hold
    backward    floating leaf inputs require grad; the sum of the floating outputs is
                backpropagated, and every input's gradient compared
    dynamic     torch.compile(dynamic=True) run on two samples of different shapes in a row
    composed    the operation chained with two other declared operations in one compiled
                function, which the compiler fuses: its first floating tensor argument squared
                first (matmul.mul_elementwise's call), its floating outputs of a dim or more
                put through log_softmax over the last dim after (softmax.log_softmax_exp's)
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import Phase, given, reject, settings
from hypothesis import strategies as st
from torch.utils._pytree import tree_leaves

from conformance.harness.agreement import assert_outcomes_agree, observe
from conformance.harness.compiled import backend_divergences
from conformance.repro.calls import ComparedExample, compared_example
from conformance.test_compiled import counting_backend

CASES = ("aliased", "mutated", "backward", "dynamic", "composed")


def _tensor_positions(args) -> list[int]:
    return [i for i, a in enumerate(args) if isinstance(a, torch.Tensor)]


def alias(args: list, how: str) -> bool:
    """Make two tensor arguments of one dtype share memory, as `how` says; False where no two
    such arguments exist. Of one shape: the same tensor twice, a tensor and a view of it, or
    overlapping slices of one base one element apart; of two shapes: both laid over the start of
    one buffer (the second's values written last)."""
    at = _tensor_positions(args)
    pairs = [(i, j) for n, i in enumerate(at) for j in at[n + 1 :] if args[i].dtype == args[j].dtype]
    if not pairs:
        return False
    i, j = pairs[0]
    x, y = args[i], args[j]
    if x.shape != y.shape or how == "overlapping":
        shift = 1 if x.shape == y.shape else 0
        base = torch.empty(max(x.numel(), y.numel()) + shift, dtype=x.dtype, device=x.device)
        args[i] = base[: x.numel()].view(x.shape)
        args[i].copy_(x)
        args[j] = base[shift : shift + y.numel()].view(y.shape)
        args[j].copy_(y)
    elif how == "same":
        args[j] = x
    else:
        args[j] = x[...]
    return True


def _floating(t) -> bool:
    return isinstance(t, torch.Tensor) and (t.is_floating_point() or t.is_complex())


def with_backward(fn):
    """`fn`, then backward from the sum of its floating outputs that require grad; returns its
    result and every leaf input's gradient (None where it got none), for the comparison."""

    def run(*args, **kwargs):
        result = fn(*args, **kwargs)
        outputs = [o for o in tree_leaves(result) if _floating(o) and o.requires_grad]
        if outputs:
            sum(o.real.sum() if o.is_complex() else o.sum() for o in outputs).backward()
        leaves = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor) and t.is_leaf]
        return result, tuple(None if t.grad is None else t.grad.detach().clone() for t in leaves)

    return run


def _mutating(call, through_view: bool):
    def mutated(*args, **kwargs):
        out = call(*args, **kwargs)
        target = next(a for a in args if isinstance(a, torch.Tensor))
        if target.dtype != torch.bool and not target.requires_grad:
            (target[...] if through_view else target).mul_(2)
        return out

    return mutated


# The declared operations a composition chains around the one under test.
BEFORE, AFTER = "matmul.mul_elementwise", "softmax.log_softmax_exp"


def _composed(call):
    """`call` between two declared operations: its first floating tensor argument squared
    before (BEFORE's call, x * x), its floating outputs of a dim or more through log_softmax over
    the last dim after (AFTER's call); what is not floating passes through."""
    from torch.utils._pytree import tree_map

    from conformance.harness.declaration import operation_of

    before, after = operation_of(BEFORE).call, operation_of(AFTER).call

    def composed(*args, **kwargs):
        args = list(args)
        first = next((i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.is_floating_point()), None)
        if first is not None:
            args[first] = before(args[first], args[first])
        return tree_map(
            lambda t: after(t, -1) if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dim() else t,
            call(*args, **kwargs),
        )

    return composed


def _build(sample, dtype, device, case: str, how: str):
    args, kwargs = sample.build(dtype=dtype, device=device)
    args = list(args)
    if case == "aliased" and not alias(args, how):
        return None
    if case == "aliased" and not _writable(args[_tensor_positions(args)[0]]):
        return None
    if case == "mutated":
        if not (args and isinstance(args[0], torch.Tensor) and args[0].dtype != torch.bool):
            return None
        if not _writable(args[0]):
            args[0] = args[0].contiguous()  # an expanded input cannot be written in place

    if case == "backward":
        leaves = [t for t in tree_leaves((args, kwargs)) if _floating(t) and t.is_leaf]
        if not leaves:
            return None
        for t in leaves:
            t.requires_grad_()
    return args, kwargs


def _writable(t: torch.Tensor) -> bool:
    return all(s != 0 or n <= 1 for n, s in zip(t.shape, t.stride()))


STARTED = pytest.StashKey[bool]()  # on an item of this session: its first example has run
_NOT_APPLICABLE = {
    "aliased": "the operation takes no two tensors of one dtype",
    "mutated": "the operation's first argument is no tensor that can be written",
    "backward": "the operation takes no floating tensor to differentiate",
    "dynamic": "no sample",
    "composed": "no sample",
}


@pytest.mark.execution_mode("compiled")
# Every example compiles afresh (`dynamic` compiles once for four samples), so the cases run one dtype per operation
# and backend (float32 where its group has it) and a twelfth of the profile's examples (2 of ci's
# 25, 83 under thorough); test_compiled.py covers every dtype of the group with plain inputs.
# No shrinking: each shrink step compiles afresh; the failure is reported as first found.
@pytest.mark.one_dtype
@pytest.mark.parametrize("case", CASES)
@settings(
    settings.default,
    max_examples=max(1, settings.default.max_examples // 12),
    phases=[phase for phase in settings.default.phases if phase != Phase.shrink],
)
@given(data=st.data())
def test_compiled_agrees_with_eager_where_compilers_break(operation, mode, device, dtype, case, data, request):
    if operation.not_compiled:
        pytest.skip(f"not applicable under torch.compile: {operation.not_compiled}")
    if torch.device(device).type == "meta":
        pytest.skip("meta tensors hold no values to compare")
    torch._dynamo.reset()
    what = f"{operation.behaviour} under torch.compile(backend={mode!r}), {case} inputs"
    samples = [data.draw(operation.samples_for(dtype), label="sample")]
    how = data.draw(st.sampled_from(["same", "view", "overlapping"]), label="alias") if case == "aliased" else ""
    through_view = case in ("mutated", "aliased") and data.draw(st.booleans(), label="through_view")
    if case == "dynamic":
        # One graph compiled with dynamic shapes serves the later samples' shapes without a
        # recompile (a guard failure recompiles), so three more samples cost little.
        samples += [data.draw(operation.samples_for(dtype), label=f"sample_{n}") for n in (2, 3, 4)]
    call = _mutating(operation.call, through_view) if case in ("mutated", "aliased") else operation.call
    if case == "composed":
        call = _composed(operation.call)
    compiled_fn = torch.compile(call, backend=counting_backend(mode), dynamic=True if case == "dynamic" else None)
    tolerance = operation.tolerance(device, dtype, mode=mode, also=backend_divergences())
    wrapper = {"backward": "backward", "dynamic": "", "composed": "composed"}.get(
        case, "mutated through a view" if through_view else "mutated"
    )
    compared_example(  # what a failing example's script compares
        ComparedExample(
            operation.call,
            [lambda s=s: _build(s, dtype, device, case, how) for s in samples],
            (mode, "eager"),
            backend=mode,
            dynamic=True if case == "dynamic" else None,
            wrapper=wrapper,
            tolerance=tolerance,
            strides=operation.compare_strides,
        )
    )
    compared = 0
    for sample in samples:
        built = _build(sample, dtype, device, case, how)
        if built is None:
            continue
        eager_fn, compiled_run = (with_backward(call), with_backward(compiled_fn)) if case == "backward" else (call, compiled_fn)
        eager = observe(eager_fn, *built, label="eager")
        compiled = observe(compiled_run, *_build(sample, dtype, device, case, how), label=mode)
        assert_outcomes_agree(
            compiled,
            eager,
            what=what,
            strides=operation.compare_strides,
            **tolerance,
        )
        compared += 1
    first = not request.node.stash.get(STARTED, False)
    request.node.stash[STARTED] = True  # on the item, not by node id: a later session (the kill matrix's) starts afresh
    if not compared:
        # The first example decides whether the case applies to the operation at all (its
        # arguments' kinds are its declaration's); a later example that cannot be made into the
        # case is rejected, not passed.
        if first:
            pytest.skip(f"not applicable: {_NOT_APPLICABLE[case]}")
        reject()
