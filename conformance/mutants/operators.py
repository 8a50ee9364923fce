"""The generic mutation operators: each breaks any API in one way real regressions do.

An operator is a function of one `Call` (conformance/mutants/calls.py) that returns what the
broken API returns, or raises `NotApplicable` with the reason where this call gives it nothing to
break (a result that is no tensor, a result no view could be, an API that raised nothing). A
mutation that changes nothing a caller can observe (a constant equal to the result, a reversal of
a palindrome) is not applicable to that call either, so "fired" always means "broke something".
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import torch

from conformance.mutants.calls import Call, Parameter, tensors_in


class NotApplicable(Exception):
    """This call gives the operator nothing to break; the message says why."""


@dataclass(frozen=True)
class Operator:
    id: str
    kind: str  # result | arguments | autograd | in place | state | errors
    description: str
    mutate: Callable  # (call, state, param) -> the broken result
    roles: tuple[str, ...] = ("call",)  # which entry points of an API it wraps: call, init, step, mode, backward
    per_parameter: str = ""  # "default" or "given": one mutant per documented parameter
    classes: bool = True  # also one variant per input class


OPERATORS: dict[str, Operator] = {}


def operator(op_id: str, kind: str, *, roles=("call",), per_parameter: str = "", classes: bool = True):
    def register(mutate):
        OPERATORS[op_id] = Operator(op_id, kind, (mutate.__doc__ or "").strip(), mutate, tuple(roles), per_parameter, classes)
        return mutate

    return register


# -- helpers ---------------------------------------------------------------------------------------


def _storage(t: torch.Tensor) -> int | None:
    """The identity of the tensor's storage (its StorageImpl: empty views of one base share it too)."""
    try:
        return t.untyped_storage()._cdata
    except (RuntimeError, NotImplementedError):
        return None


def aliases_input(call: Call, t: torch.Tensor) -> bool:
    mine = _storage(t)
    return mine is not None and any(_storage(i) == mine for i in call.tensors())


def primary(result):
    """The result's first tensor: the result itself, or element 0 of a tuple or list (or of a
    torch.return_types structure) of tensors."""
    if isinstance(result, torch.Tensor):
        return result
    if isinstance(result, list | tuple) and result and isinstance(result[0], torch.Tensor):
        return result[0]
    raise NotApplicable("the result is not a tensor")


def replace_primary(result, new):
    if isinstance(result, torch.Tensor):
        return new
    items = [new, *result[1:]]
    if isinstance(result, list):
        return items
    return type(result)(items) if type(result) is not tuple else tuple(items)


def same(a: torch.Tensor, b: torch.Tensor, values_only: bool = False) -> bool:
    """Nothing a caller can observe tells `a` from `b`: dtype, shape, strides, storage (unless
    `values_only`), values (NaN equal to NaN)."""
    if a is b:
        return True
    if a.dtype != b.dtype or a.shape != b.shape or a.stride() != b.stride():
        return False
    if not values_only and _storage(a) != _storage(b):
        return False
    if a.device != b.device:
        return False
    if a.device.type == "meta":
        return True
    return bool(torch.equal(a, b)) or bool(((a == b) | (a.isnan() & b.isnan()) if a.is_floating_point() else a == b).all())


def _fresh_result(call: Call) -> torch.Tensor:
    r = primary(call.run())
    if aliases_input(call, r):
        raise NotApplicable("the result is a view of an input: its values are the input's")
    if r.device.type == "meta":
        raise NotApplicable("meta tensors hold no values")
    return r


def _changed(call: Call, new_primary):
    old = primary(call.run())
    if aliases_input(call, old) == aliases_input(call, new_primary) and same(old, new_primary, values_only=True):
        raise NotApplicable("the mutation changes nothing observable for this call")
    return replace_primary(call.run(), new_primary)


# -- result ----------------------------------------------------------------------------------------


@operator("result.constant", "result")
def _constant(call, state, param):
    """The result is a constant of the right shape and dtype (zeros, or ones where it is all zero)."""
    r = _fresh_result(call)
    new = torch.zeros_like(r)
    if r.numel() and same(r.contiguous(), new.contiguous(), values_only=True):
        new = torch.ones_like(r)
    return _changed(call, new.as_strided(r.shape, r.stride()) if _dense(r) else new)


def loosest_tolerance(dtype: torch.dtype) -> tuple[float, float]:
    from torch.testing._comparison import default_tolerances

    from conformance.tolerances import TABLE

    rtol, atol = default_tolerances(dtype)
    for row in TABLE.values():
        if dtype in row:
            rtol, atol = max(rtol, row[dtype][0]), max(atol, row[dtype][1])
    return rtol, atol


def _dense(r: torch.Tensor) -> bool:
    from torch._prims_common import is_non_overlapping_and_dense_or_false

    return bool(is_non_overlapping_and_dense_or_false(r))


def _bumped(x: torch.Tensor) -> torch.Tensor:
    """`x`, a 0-d tensor, moved by one ulp (floating) or by one (integral, bool flipped)."""
    if x.dtype == torch.bool:
        return ~x
    if x.is_complex():
        return x + torch.finfo(x.real.dtype).eps * (abs(x.real) + 1)
    if x.is_floating_point():
        up = torch.nextafter(x, torch.tensor(math.inf, dtype=x.dtype, device=x.device))
        return up if not torch.equal(up, x) else torch.nextafter(x, torch.tensor(-math.inf, dtype=x.dtype, device=x.device))
    return x - 1 if x.item() == torch.iinfo(x.dtype).max else x + 1


@operator("result.off_by_one", "result")
def _off_by_one(call, state, param):
    """One element of the result (the last in row-major order) is off by one ulp, or by one for
    integers (a flipped bool)."""
    r = _fresh_result(call)
    if r.numel() == 0:
        raise NotApplicable("an empty result has no element to change")
    new = r.detach().clone()
    flat_index = tuple(int(i) for i in torch.unravel_index(torch.tensor(r.numel() - 1), r.shape)) if r.dim() else ()
    new[flat_index] = _bumped(new[flat_index])
    return _changed(call, new.requires_grad_(r.requires_grad) if r.is_leaf else new + 0 * r)


@operator("result.off_by_tolerance", "result")
def _off_by_tolerance(call, state, param):
    """One floating element of the result (the last in row-major order) is off by twice the
    loosest tolerance the suite allows its dtype (assert_close's default, conformance/tolerances):
    small, and outside every documented comparison."""
    r = _fresh_result(call)
    if not (r.is_floating_point() or r.is_complex()) or r.numel() == 0:
        raise NotApplicable("not a non-empty floating result")
    rtol, atol = loosest_tolerance(r.dtype)
    new = r.detach().clone()
    at = tuple(int(i) for i in torch.unravel_index(torch.tensor(r.numel() - 1), r.shape)) if r.dim() else ()
    x = new[at]
    if not torch.isfinite(x).all():
        raise NotApplicable("the element is not finite")
    new[at] = x + 2 * (atol + rtol * x.abs()) + (torch.finfo(r.dtype if r.is_floating_point() else r.real.dtype).tiny)
    return _changed(call, new.requires_grad_(r.requires_grad) if r.is_leaf else new + 0 * r)


@operator("result.copy_not_view", "result")
def _copy_not_view(call, state, param):
    """A view is returned as a copy (it no longer shares memory with its base)."""
    r = primary(call.run())
    if not aliases_input(call, r):
        raise NotApplicable("the result shares no memory with an input")
    return _changed(call, r.clone(memory_format=torch.preserve_format))


@operator("result.contiguous", "result")
def _contiguous(call, state, param):
    """A non-contiguous result (channels_last, transposed, ...) is returned contiguous."""
    r = _fresh_result(call)
    if r.is_contiguous():
        raise NotApplicable("the result is contiguous already")
    return _changed(call, r.contiguous())


_OTHER_DTYPE = {
    torch.float32: torch.float64,
    torch.float64: torch.float32,
    torch.float16: torch.float32,
    torch.bfloat16: torch.float32,
    torch.int64: torch.int32,
    torch.int32: torch.int64,
    torch.int16: torch.int64,
    torch.int8: torch.int64,
    torch.uint8: torch.int64,
    torch.bool: torch.uint8,
    torch.complex64: torch.complex128,
    torch.complex128: torch.complex64,
}


@operator("result.dtype", "result")
def _dtype(call, state, param):
    """The result comes back in another dtype (float32 <-> float64, int64 <-> int32, bool -> uint8, ...)."""
    r = _fresh_result(call)
    if r.dtype not in _OTHER_DTYPE:
        raise NotApplicable(f"no other dtype is listed for {r.dtype}")
    return _changed(call, r.to(_OTHER_DTYPE[r.dtype]))


@operator("result.narrow_then_widened", "result")
def _narrow(call, state, param):
    """A result wider than its input is computed in the input's narrow dtype, then widened."""
    r = _fresh_result(call)
    inputs = [t for t in call.tensors() if t.dtype != r.dtype]
    narrower = [
        t.dtype for t in inputs if t.dtype.itemsize < r.dtype.itemsize or (r.is_floating_point() and not t.is_floating_point())
    ]
    if not narrower:
        raise NotApplicable("the result is no wider than its inputs")
    return _changed(call, r.to(narrower[0]).to(r.dtype))


@operator("result.first_only", "result")
def _first_only(call, state, param):
    """Only the first element of a sequence result, or only the first sample of a batch (every
    entry along dim 0 equal to the first)."""
    result = call.run()
    if isinstance(result, list) or type(result) is tuple:
        if len(result) < 2:
            raise NotApplicable("a sequence of fewer than two elements")
        return type(result)(result[:1])
    r = _fresh_result(call)
    if r.dim() == 0 or r.shape[0] < 2:
        raise NotApplicable("no batch of two or more along dim 0")
    new = r.detach().clone()
    new[1:] = new[:1]
    return _changed(call, new.requires_grad_(r.requires_grad) if r.is_leaf else new + 0 * r)


@operator("result.last_dropped", "result")
def _last_dropped(call, state, param):
    """The last element of a sequence result (or the last entry along dim 0) is dropped."""
    result = call.run()
    if isinstance(result, list) or type(result) is tuple:
        if not result:
            raise NotApplicable("an empty sequence")
        return type(result)(result[:-1])
    r = primary(result)
    if r.dim() == 0 or r.shape[0] == 0:
        raise NotApplicable("no entry along dim 0 to drop")
    return _changed(call, r[:-1])


@operator("result.reversed", "result")
def _reversed(call, state, param):
    """The result is reversed along a dim (the call's dim where it names one, else dim 0)."""
    r = _fresh_result(call)
    dims = [v for _, v in call.dims() if isinstance(v, int)]
    dim = dims[0] if dims and r.dim() and -r.dim() <= dims[0] < r.dim() else 0
    if r.dim() == 0 or r.shape[dim] < 2:
        raise NotApplicable("no dim of two or more entries to reverse")
    return _changed(call, r.flip(dim))


# -- arguments -------------------------------------------------------------------------------------

_OTHER_STRING = {"mean": "sum", "sum": "mean", "none": "mean", "batchmean": "sum", "zeros": "reflect", "constant": "reflect"}


def other_value(param: Parameter):
    """A documented default replaced by another value of its kind, or NotApplicable."""
    d = param.default
    if isinstance(d, bool):
        return not d
    if isinstance(d, int):
        return d + 1 if d != -1 else 0
    if isinstance(d, float):
        return d * 2 + 0.5 if math.isfinite(d) else 0.0
    if isinstance(d, str) and d in _OTHER_STRING:
        return _OTHER_STRING[d]
    if d is None and param.is_dim:
        return 0
    raise NotApplicable(f"no other value to give for a default of {d!r}")


@operator("args.default_changed", "arguments", per_parameter="default", classes=False)
def _default_changed(call, state, param):
    """An omitted keyword takes a different default."""
    spec = {p.name: p for p in call.overload()}.get(param)
    if spec is None or not spec.literal_default:
        raise NotApplicable(f"this overload documents no literal default for {param}")
    if param in call.bound():
        raise NotApplicable(f"{param} is given")
    kwargs = {**call.kwargs, param: other_value(spec)}
    return call.run(*call.args, **kwargs)


@operator("args.given_ignored", "arguments", per_parameter="given", classes=False)
def _given_ignored(call, state, param):
    """A given keyword (or trailing positional) argument is ignored: the default is used."""
    where = call.bound().get(param)
    if where is None:
        raise NotApplicable(f"{param} is not given")
    spec = {p.name: p for p in call.overload()}.get(param)
    if spec is not None and spec.literal_default and _equal_value(call.value(where), spec.default):
        raise NotApplicable(f"{param} is given as its default")
    left = call.without(where)
    if left is None:
        raise NotApplicable(f"{param} is given positionally before other arguments")
    return call.run(*left[0], **left[1])


def _equal_value(a, b) -> bool:
    return type(a) is type(b) and a == b


@operator("args.negative_dim_off_by_one", "arguments")
def _negative_dim(call, state, param):
    """A negative dim is normalised off by one (against the input's rank minus one)."""
    x = call.first_tensor()
    rank = x.dim() if x is not None else 0
    for where, value in call.dims():

        def shifted(d):
            return d if d >= 0 else (d + rank - 1 if d + rank - 1 >= 0 else rank - 1)

        if isinstance(value, int) and value < 0:
            new = shifted(value)
        elif isinstance(value, list | tuple) and any(d < 0 for d in value):
            new = type(value)(shifted(d) for d in value)
        else:
            continue
        if new == value:
            continue
        args, kwargs = call.with_value(where, new)
        return call.run(*args, **kwargs)
    raise NotApplicable("no negative dim is given")


@operator("args.out_ignored", "arguments")
def _out_ignored(call, state, param):
    """out= is ignored: the result is computed into a new tensor and out is left untouched."""
    if not isinstance(call.kwargs.get("out"), torch.Tensor | tuple | list):
        raise NotApplicable("no out= is given")
    kwargs = {k: v for k, v in call.kwargs.items() if k != "out"}
    return call.run(*call.args, **kwargs)


@operator("args.dtype_ignored", "arguments")
def _dtype_ignored(call, state, param):
    """dtype= is ignored."""
    if call.kwargs.get("dtype") is None:
        raise NotApplicable("no dtype= is given")
    kwargs = {k: v for k, v in call.kwargs.items() if k != "dtype"}
    return call.run(*call.args, **kwargs)


@operator("args.tensors_swapped", "arguments")
def _swapped(call, state, param):
    """The first two positional tensor arguments are swapped."""
    at = [i for i, a in enumerate(call.args) if isinstance(a, torch.Tensor)][:2]
    if len(at) < 2:
        raise NotApplicable("fewer than two positional tensors")
    a, b = call.args[at[0]], call.args[at[1]]
    if a is b:
        raise NotApplicable("the same tensor twice")
    args = list(call.args)
    args[at[0]], args[at[1]] = b, a
    return call.run(*args, **call.kwargs)


# -- autograd --------------------------------------------------------------------------------------


@operator("autograd.partly_detached", "autograd")
def _partly_detached(call, state, param):
    """The result is detached when only some of the tensor inputs require grad."""
    flags = [t.requires_grad for t in call.tensors()]
    if not (any(flags) and not all(flags)):
        raise NotApplicable("not a mix of inputs that require grad and inputs that do not")
    r = primary(call.run())
    if not r.requires_grad:
        raise NotApplicable("the result does not require grad")
    return replace_primary(call.run(), r.detach())


def _leaves(root: torch.Tensor) -> list[torch.Tensor]:
    seen, stack, leaves = set(), [root.grad_fn], []
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        variable = getattr(fn, "variable", None)
        if variable is not None:
            leaves.append(variable)
        stack.extend(f for f, _ in fn.next_functions)
    return leaves


@operator("autograd.grad_assigned", "autograd", roles=("backward",))
def _grad_assigned(call, state, param):
    """backward assigns the gradient to .grad instead of accumulating into it."""
    root = call.args[0]
    leaves = [leaf for leaf in _leaves(root) if leaf.grad is not None]
    if not leaves:
        raise NotApplicable("no leaf holds a gradient to accumulate into")
    for leaf in leaves:
        leaf.grad = None
    return call.run()


@operator("autograd.second_backward_noop", "autograd", roles=("backward",))
def _second_backward(call, state, param):
    """A second backward through the same graph does nothing."""
    root = call.args[0]
    seen = state.setdefault("graphs", weakref.WeakSet())
    if root.grad_fn is None or root.grad_fn not in seen:
        if root.grad_fn is not None:
            seen.add(root.grad_fn)
        raise NotApplicable("a first backward through this graph")
    return None


# -- in place --------------------------------------------------------------------------------------


# In-place methods that change only self's metadata (shape, strides, autograd flags), never its
# values: there is no write to misplace.
_METADATA_ONLY = {
    "t_", "transpose_", "swapdims_", "swapaxes_", "squeeze_", "unsqueeze_", "as_strided_", "resize_",
    "resize_as_", "set_", "requires_grad_", "detach_", "share_memory_",
}  # fmt: skip


def _self(call) -> torch.Tensor:
    if not call.args or not isinstance(call.args[0], torch.Tensor):
        raise NotApplicable("no tensor is written")
    return call.args[0]


def _written(call) -> torch.Tensor:
    """self of an in-place call that writes values."""
    if getattr(call.original, "__name__", "") in _METADATA_ONLY:
        raise NotApplicable("the in-place method changes only metadata: no values are written")
    return _self(call)


@operator("inplace.lands_in_copy", "in place", roles=("inplace",))
def _lands_in_copy(call, state, param):
    """The in-place write lands in a copy: the result is right, self is untouched."""
    target = _written(call)
    if target.numel() == 0:
        raise NotApplicable("an empty tensor holds nothing to write")
    copy = target.detach().clone()
    result = call.run(copy, *call.args[1:], **call.kwargs)
    return copy if result is copy else result


@operator("inplace.memory_order", "in place", roles=("inplace",))
def _memory_order(call, state, param):
    """On a non-contiguous self the write goes in memory order: the row-major values land in the
    elements sorted by their offset in memory."""
    target = _written(call)
    if target.is_contiguous() or _overlaps(target):
        raise NotApplicable("self is contiguous (or overlaps itself)")
    offsets = torch.as_strided(
        torch.arange(target.untyped_storage().nbytes() // target.element_size(), device=target.device),
        target.shape,
        target.stride(),
        target.storage_offset(),
    ).reshape(-1)
    order = offsets.argsort()
    if bool((order == torch.arange(order.numel(), device=order.device)).all()):
        # a stepped 1-D slice, an offset, a size-1 dim transposed: memory order is row-major order
        raise NotApplicable("self's memory order is its row-major order: the write lands where it should")
    written = target.detach().contiguous()
    result = call.run(written, *call.args[1:], **call.kwargs)
    scattered = torch.empty_like(written.reshape(-1))
    scattered[order] = written.reshape(-1)
    with torch.no_grad():
        torch.Tensor.copy_(target, scattered.view(target.shape))
    return target if result is written else result


def _overlaps(t: torch.Tensor) -> bool:
    return any(s == 0 and n > 1 for n, s in zip(t.shape, t.stride()))


@operator("inplace.version_not_bumped", "in place", roles=("inplace",))
def _version_not_bumped(call, state, param):
    """The in-place write does not bump the tensor's version counter."""
    target = _self(call)
    before = target._version
    result = call.run()
    if target._version == before:
        raise NotApplicable("the write did not bump the version")
    torch._C._autograd._unsafe_set_version_counter((target,), (before,))
    return result


# -- state -----------------------------------------------------------------------------------------


def _hyperparameters(group: dict) -> dict:
    return {k: v for k, v in group.items() if k != "params" and isinstance(v, int | float) and not isinstance(v, bool)}


@operator("state.hyperparameter_cached", "state", roles=("step",))
def _cached(call, state, param):
    """An optimizer reads its hyperparameters (lr, momentum, ...) at the first step and caches them."""
    optimizer = call.args[0]
    cache = state.setdefault("first", weakref.WeakKeyDictionary())
    if optimizer not in cache:
        cache[optimizer] = [_hyperparameters(g) for g in optimizer.param_groups]
        raise NotApplicable("the first step reads the hyperparameters")
    now = [_hyperparameters(g) for g in optimizer.param_groups]
    if now == cache[optimizer]:
        raise NotApplicable("the hyperparameters did not change since the first step")
    try:
        for group, first in zip(optimizer.param_groups, cache[optimizer]):
            group.update(first)
        return call.run()
    finally:
        for group, current in zip(optimizer.param_groups, now):
            group.update(current)


@operator("state.mode_side_effect", "state", roles=("mode",))
def _mode_side_effect(call, state, param):
    """A mode switch (train/eval) also drops the parameters' gradients: a side effect on unrelated state."""
    module = call.args[0]
    held = [p for p in module.parameters() if p.grad is not None]
    result = call.run()
    if not held:
        raise NotApplicable("no parameter holds a gradient")
    for p in held:
        p.grad = None
    return result


# -- errors ----------------------------------------------------------------------------------------


@operator("errors.not_raised", "errors")
def _not_raised(call, state, param):
    """A documented error is not raised: the call returns its first tensor argument instead."""
    try:
        call.run()
    except Exception:
        return call.first_tensor()
    raise NotApplicable("the call raised nothing")


_OTHER_ERROR = {RuntimeError: ValueError, ValueError: RuntimeError, TypeError: RuntimeError, IndexError: RuntimeError}


@operator("errors.other_type", "errors")
def _other_type(call, state, param):
    """A documented error is raised as another type (RuntimeError <-> ValueError, TypeError or
    IndexError -> RuntimeError)."""
    try:
        call.run()
    except Exception as exc:
        other = next((o for t, o in _OTHER_ERROR.items() if isinstance(exc, t)), RuntimeError)
        if isinstance(exc, other):
            other = ValueError
        raise other(f"(mutant: was {type(exc).__name__}) {exc}") from None
    raise NotApplicable("the call raised nothing")


def describe(op_id: str) -> str:
    return OPERATORS[op_id].description


__all__ = ["OPERATORS", "NotApplicable", "Operator", "aliases_input", "describe", "primary", "tensors_in"]
