"""One comparison for every execution mode: what a declared operation did on one side against the other.

Note [Comparing two runs of an operation]
The cross-device mode (a device against the CPU) and the compiled mode (compiled against eager,
on one device) ask the same question: did the same Sample, run two ways, give the same
outcome? Both observe each run with `observe` and compare the two `Outcome`s with
`assert_outcomes_agree`, which knows nothing of modes or devices:

- the error: if either side raised, both must have raised the same type (and then nothing else
  is compared: a must-raise declaration passes when both sides raise it);
- the result's structure (pytree spec), and per tensor its dtype and shape exactly, its values
  (both moved to the CPU first, so any pair of devices compares; integral and bool exactly,
  floating and complex at the dtype's assert_close tolerance or the declaration's), and its
  strides where the operation documents them (`Operation.compare_strides`; sizes <= 1 and empty
  tensors carry no stride);
- non-tensor leaves (numbers, bools, sizes) by value;
- aliasing: which inputs each output shares storage with, and which earlier output it shares
  storage with, by position;
- every input tensor's values after the call (in-place writes), a module argument's parameters
  and buffers among them, and the gradients the call left on any of them;
- requires_grad and is_leaf of every output tensor.

Meta tensors hold no values and no memory: on a meta side values, mutations and aliasing are not
observable, and only what meta knows (structure, dtype, shape, strides, autograd flags) is
compared. Messages name what differs and each side by its label ("testdev", "cpu",
"aot_eager", "eager").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch.testing import assert_close
from torch.utils._pytree import tree_flatten, tree_leaves


@dataclass
class Outcome:
    """What one run of an operation did, as the comparison needs it."""

    label: str  # how messages name this side: a device, or a backend
    error: type[BaseException] | None = None
    error_message: str = ""
    spec: Any = None  # the result's pytree structure
    leaves: tuple = ()  # the result's leaves, tensors detached
    inputs_after: tuple[torch.Tensor, ...] = ()  # every input tensor, copied after the call
    aliases_inputs: tuple[tuple[int, ...], ...] = ()  # per output tensor: inputs sharing its storage
    aliases_outputs: tuple[tuple[int, ...], ...] = ()  # per output tensor: earlier outputs sharing its storage
    requires_grad: tuple[bool, ...] = ()
    is_leaf: tuple[bool, ...] = ()
    meta: bool = False  # a side on the meta device: no values, no memory
    extra: dict = field(default_factory=dict)

    @property
    def outputs(self) -> list[torch.Tensor]:
        return [t for t in self.leaves if isinstance(t, torch.Tensor)]


def _input_tensors(args, kwargs, *, grads: bool = False) -> list[torch.Tensor]:
    """The call's input tensors: its tensor arguments, and the parameters and buffers of a module
    among them (running statistics a forward updates); with `grads`, after the call, also the
    gradients the call left on any of them (`.grad`, which a backward inside the call writes)."""
    found = []
    for leaf in tree_leaves((args, kwargs)):
        if isinstance(leaf, torch.Tensor):
            found.append(leaf)
        elif isinstance(leaf, torch.nn.Module):
            found += [*leaf.parameters(), *leaf.buffers()]
    if grads:
        found += [t.grad for t in list(found) if t.is_leaf and t.grad is not None]
    return found


def _storage(t: torch.Tensor) -> int | None:
    """The identity of the memory `t` lives in, or None where it has none to share (meta, empty)."""
    if t.device.type == "meta" or t.numel() == 0:
        return None
    return t.untyped_storage().data_ptr()


def observe(fn: Callable, args: tuple, kwargs: dict, *, label: str) -> Outcome:
    """Run `fn(*args, **kwargs)` on freshly built arguments and record its Outcome."""
    inputs = _input_tensors(args, kwargs)
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # the error type is part of the outcome
        return Outcome(label=label, error=type(exc), error_message=str(exc).split("\n", 1)[0][:200])
    leaves, spec = tree_flatten(result)
    outputs = [t for t in leaves if isinstance(t, torch.Tensor)]
    in_storages = [_storage(t) for t in inputs]
    out_storages = [_storage(t) for t in outputs]
    return Outcome(
        label=label,
        spec=spec,
        leaves=tuple(t.detach() if isinstance(t, torch.Tensor) else t for t in leaves),
        inputs_after=tuple(t.detach().clone() for t in _input_tensors(args, kwargs, grads=True)),
        aliases_inputs=tuple(
            tuple(i for i, s in enumerate(in_storages) if s is not None and s == out) if out is not None else ()
            for out in out_storages
        ),
        aliases_outputs=tuple(
            tuple(j for j in range(k) if out is not None and out_storages[j] == out) for k, out in enumerate(out_storages)
        ),
        requires_grad=tuple(t.requires_grad for t in outputs),
        is_leaf=tuple(t.is_leaf for t in outputs),
        meta=any(t.device.type == "meta" for t in [*inputs, *outputs]),
    )


def _failure(what: str, detail: str) -> AssertionError:
    from conformance.harness.identity import current_behaviour

    behaviour = current_behaviour()
    prefix = f"{behaviour}: " if behaviour and not what.startswith(behaviour) else ""
    return AssertionError(f"{prefix}{what}: {detail}")


def _meaningful_strides(t: torch.Tensor) -> tuple[int | None, ...]:
    """Strides that mean something: None for a size of 0 or 1, and everywhere in an empty tensor."""
    empty = t.numel() == 0
    return tuple(None if empty or n <= 1 else s for n, s in zip(t.shape, t.stride()))


def assert_tensors_agree(
    actual: torch.Tensor,
    expected: torch.Tensor,
    *,
    what: str,
    labels: tuple[str, str],
    values: bool = True,
    strides: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """`actual` (side labels[0]) agrees with `expected` (side labels[1]) in dtype and shape, in
    strides if asked, and in values (on the CPU) if `values` and neither side is on meta."""
    __tracebackhide__ = True
    a_name, e_name = labels
    if (actual.dtype, tuple(actual.shape)) != (expected.dtype, tuple(expected.shape)):
        raise _failure(
            what, f"{a_name} gave {actual.dtype}{tuple(actual.shape)}, {e_name} {expected.dtype}{tuple(expected.shape)}"
        )
    if strides and _meaningful_strides(actual) != _meaningful_strides(expected):
        raise _failure(
            what,
            f"strides differ: {a_name} {actual.stride()}, {e_name} {expected.stride()} "
            f"(shape {tuple(actual.shape)}; sizes 0 and 1 ignored)",
        )
    if not values or "meta" in (actual.device.type, expected.device.type):
        return
    a, e = actual.detach().cpu(), expected.detach().cpu()  # one device, whatever the pair
    if e.dtype.is_floating_point or e.dtype.is_complex:
        assert_close(
            a,
            e,
            equal_nan=True,
            rtol=rtol,
            atol=atol,
            msg=lambda m: str(_failure(what, f"{a_name} and {e_name} differ\n{m}")),
        )
    elif not torch.equal(a, e):
        differ = a != e
        shown = ", ".join(
            f"at {tuple(i)}: {a_name} {a[tuple(i)].item()!r}, {e_name} {e[tuple(i)].item()!r}"
            for i in differ.nonzero()[:3].tolist()
        )
        raise _failure(what, f"{int(differ.sum())} of {a.numel()} elements differ ({shown})")


def assert_outcomes_agree(
    actual: Outcome,
    expected: Outcome,
    *,
    what: str,
    strides: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """The run `actual` did what the run `expected` did (Note [Comparing two runs of an operation])."""
    __tracebackhide__ = True
    a_name, e_name = actual.label, expected.label
    labels = (a_name, e_name)
    if actual.error or expected.error:
        if not (actual.error and expected.error and issubclass(actual.error, expected.error)):

            def said(o: Outcome) -> str:
                return f"raised {o.error.__name__} ({o.error_message})" if o.error else "raised nothing"

            raise _failure(what, f"{a_name} {said(actual)}, {e_name} {said(expected)}")
        return
    if actual.spec != expected.spec:
        raise _failure(what, f"results differ in structure: {a_name} {actual.spec}, {e_name} {expected.spec}")
    for i, (a, e) in enumerate(zip(actual.leaves, expected.leaves)):
        where = f"{what}: result leaf {i}" if len(actual.leaves) > 1 else f"{what}: result"
        if isinstance(e, torch.Tensor) and isinstance(a, torch.Tensor):
            assert_tensors_agree(a, e, what=where, labels=labels, strides=strides, rtol=rtol, atol=atol)
        elif isinstance(e, torch.Tensor) or isinstance(a, torch.Tensor):
            raise _failure(where, f"{a_name} gave {type(a).__name__}, {e_name} {type(e).__name__}")
        elif isinstance(e, float) and isinstance(a, float):
            assert_close(
                a,
                e,
                equal_nan=True,
                rtol=rtol,
                atol=atol,
                msg=lambda m: str(_failure(where, f"{a_name} and {e_name} differ\n{m}")),
            )
        elif a != e or type(a) is not type(e):
            raise _failure(where, f"{a_name} gave {a!r}, {e_name} {e!r}")
    if len(actual.inputs_after) != len(expected.inputs_after):
        raise _failure(
            what, f"{a_name} left {len(actual.inputs_after)} input tensors and gradients, {e_name} {len(expected.inputs_after)}"
        )
    for i, (a, e) in enumerate(zip(actual.inputs_after, expected.inputs_after)):
        assert_tensors_agree(a, e, what=f"{what}: input {i} after the call", labels=labels, rtol=rtol, atol=atol)
    if not (actual.meta or expected.meta):  # meta tensors have no memory to share
        if actual.aliases_inputs != expected.aliases_inputs:
            raise _failure(
                what,
                f"outputs share memory with inputs {actual.aliases_inputs} on {a_name}, {expected.aliases_inputs} on "
                f"{e_name} (per output tensor, the positions of the input tensors it shares storage with)",
            )
        if actual.aliases_outputs != expected.aliases_outputs:
            raise _failure(
                what,
                f"outputs share memory with earlier outputs {actual.aliases_outputs} on {a_name}, "
                f"{expected.aliases_outputs} on {e_name} (per output tensor, by position)",
            )
    if actual.requires_grad != expected.requires_grad:
        raise _failure(what, f"outputs require grad {actual.requires_grad} on {a_name}, {expected.requires_grad} on {e_name}")
    if actual.is_leaf != expected.is_leaf:
        raise _failure(what, f"outputs are leaves {actual.is_leaf} on {a_name}, {expected.is_leaf} on {e_name}")


def run_and_compare(
    operation, sample, *, dtype, actual: tuple, expected: tuple, what: str, **tolerance
) -> tuple[Outcome, Outcome]:
    """Build `sample` for each side, run it, compare: `actual` and `expected` are
    (label, device, function). Returns both Outcomes (the compiled mode asks about graphs)."""
    __tracebackhide__ = True
    outcomes = []
    for label, device, fn in (expected, actual):
        args, kwargs = sample.build(dtype=dtype, device=device)
        outcomes.append(observe(fn, args, kwargs, label=label))
    e, a = outcomes
    if torch.device(actual[1]).type == "meta" and a.error is not None and e.error is None:
        _skip_what_meta_cannot_know(a)
    assert_outcomes_agree(a, e, what=what, strides=operation.compare_strides, **tolerance)
    return a, e


# What torch raises where a call needs what meta tensors do not hold: their values (item(),
# copying out, a value-dependent result) or a meta kernel (aten::equal's result is a value).
_META_CANNOT = {
    "cannot be called on meta tensors": "the call reads values, which meta tensors do not hold",
    "Cannot copy out of meta tensor": "the call copies values out, which meta tensors do not hold",
    "no fake impl or Meta kernel registered": "torch has no meta kernel for an operator the call uses",
    # foreach=True: "use the foreach implementation"; None falls back on devices without one (clip_grad_*)
    "can't use the foreach API on meta tensors": "the call asks for the foreach implementation, which meta lacks",
}


def _skip_what_meta_cannot_know(outcome: Outcome) -> None:
    for fragment, why in _META_CANNOT.items():
        if fragment in outcome.error_message:
            pytest.skip(f"not applicable on meta: {why} ({outcome.error.__name__}: {fragment})")
