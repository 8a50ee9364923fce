"""Automatic API mutants: breakages of every API the catalogue names that nobody fitted to a test.

Note [Automatic API mutants]
The fault catalogue (conformance/faults) is written beside the tests it targets, so killing it
measures fit. Strength is measured here, by mutation testing turned on the library under test:
generic operators (conformance/mutants/operators.py) each break an API one way a real regression
does (a constant result, a value one ulp off, a view returned as a copy, a negative dim off by
one, a default changed, an in-place write that lands in a copy, a hyperparameter cached, an error
not raised, ...), and again for one input class only (calls.CLASSES: a non-contiguous input, a
negative dim, a 0-d or empty input, an integral or half dtype, keywords given or omitted, an
input that requires grad), as regressions usually do.

For every behaviour, each API in its catalogue `apis` is wrapped at its public entry points
(`Tensor.x`, `torch.x`, `F.x`, a module's `forward` and constructor, an optimizer's `step`,
`Module.train`), and the mutant acts only on calls the behaviour's test module makes (its own
code, its declarations' `call`, or torch code those call): the suite's strategies and checks keep
stock torch, so a mutant is killed by the behaviour's checks, not by the machinery breaking.

One mutant's life (conformance/harness/mutants.py runs it, tools/killmatrix.py --auto reports):
  1. the item runs once with every mutant of its behaviour in *dry* mode: at each call, each
     operator computes its broken result and throws it away; what fired, and why the others could
     not (`NotApplicable`), is counted. Mutants that hold state or write in place run for real.
  2. each mutant that fired runs the item again, installed; a failing item kills it.
  3. per behaviour: killed; survived (it fired and nothing failed); unreached (a one-class variant
     whose class the tests never drew where the whole operator applied: a domain gap, listed);
     not applicable (it never fired: the reason); or equivalent, where the catalogue entry says
     why that break cannot change the behaviour (`equivalent = {"operator" = "reason"}`).
"""

from __future__ import annotations

import inspect
import sys
import types
from collections import Counter
from dataclasses import dataclass, field
from functools import cache

import torch

from conformance.mutants.calls import CLASSES, Call, signatures
from conformance.mutants.operators import OPERATORS, NotApplicable, Operator, aliases_input, same

# Frames a call passes through on its way from a test to the API: they neither decide nor block.
_PASS_THROUGH = ("torch", "functools", "contextlib", "conformance.snippets", "conformance.repro", "conformance.faults", "typing")


def called_from_test() -> bool:
    """Whether the API call being made comes from a behaviour test module (conformance.test_*),
    directly or through torch; not from the suite's strategies, checks or this machinery."""
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.startswith("conformance.mutants"):
            return False
        if not module.startswith(_PASS_THROUGH):
            return module.startswith("conformance.test_")
        frame = frame.f_back
    return False


@dataclass(frozen=True)
class Entry:
    """One public entry point of an API: `owner.name`, and the roles operators look for."""

    api: str
    owner: object
    name: str
    roles: tuple[str, ...]
    is_method: bool

    @property
    def function(self):
        return getattr(self.owner, self.name)


_ALIASES = {"F": "torch.nn.functional", "nn": "torch.nn", "Tensor": "torch.Tensor"}


def _resolve(api: str):
    head, _, rest = api.partition(".")
    path = f"{_ALIASES.get(head, head)}.{rest}" if rest else _ALIASES.get(head, head)
    parts = path.split(".")
    obj = sys.modules.get(parts[0]) or __import__(parts[0])
    owner = None
    for part in parts[1:]:
        owner = obj
        obj = getattr(obj, part)
    return owner, parts[-1], obj


@cache
def entry_points(api: str) -> tuple[tuple[Entry, ...], str]:
    """The entry points of `api`, and why there are none where there are none."""
    try:
        owner, name, obj = _resolve(api)
    except (AttributeError, ImportError) as exc:
        return (), f"not found on this torch: {exc}"
    if isinstance(obj, type):
        if issubclass(obj, torch.nn.Module):
            return (Entry(api, obj, "forward", ("call",), True), Entry(api, obj, "__init__", ("init",), True)), ""
        if issubclass(obj, torch.optim.Optimizer):
            return (Entry(api, obj, "step", ("step",), True), Entry(api, obj, "__init__", ("init",), True)), ""
        return (), "a type (a tensor type, a context manager, a data pipeline class): mutants wrap functions and methods"
    if not callable(obj):
        return (), "not callable"
    is_method = isinstance(owner, type)
    roles = ["call"]
    if name.endswith("_") and not name.startswith("__") or name == "__setitem__":
        roles.append("inplace")
    if name == "backward":
        roles.append("backward")
    if owner is torch.nn.Module and name in ("train", "eval"):
        roles.append("mode")
    if isinstance(owner, types.ModuleType) or is_method:
        return (Entry(api, owner, name, tuple(roles), is_method),), ""
    return (), f"owned by {type(owner).__name__}, which cannot be patched"


@dataclass(frozen=True)
class Mutant:
    entry: Entry
    operator: Operator
    param: str = ""  # the parameter a per-parameter operator breaks
    input_class: str = ""  # the one input class the variant fires on ("" = every call)

    @property
    def id(self) -> str:
        return (
            f"{self.entry.api}"
            + (f".{self.entry.name}" if self.entry.name in ("forward", "__init__", "step") else "")
            + f":{self.operator.id}"
            + (f"[{self.param}]" if self.param else "")
            + (f"@{self.input_class}" if self.input_class else "")
        )

    @property
    def operator_key(self) -> str:
        """How the catalogue names it in `equivalent`: the operator, with its parameter and class."""
        return self.id.split(":", 1)[1]

    @property
    def dry(self) -> bool:
        """Whether its firing can be measured without installing it (Note [Automatic API mutants]):
        operators that only transform the stock result (result, partly detached) or its error, on
        any call; operators that run the original again on other arguments, only on an entry
        point that writes nothing and keeps no state."""
        op, entry = self.operator, self.entry
        if op.kind in ("result", "errors") or op.id == "autograd.partly_detached":
            return "call" in entry.roles or op.kind == "errors"
        if op.kind != "arguments" or not _pure(entry):
            return False
        # on an in-place API the original runs again on clones of self (never on another argument)
        return entry.roles == ("call",) or set(entry.roles) == {"call", "inplace"} and op.id != "args.tensors_swapped"


# Entry points whose calls change state (a module's buffers, a hook list, a global setting): the
# original is never run twice for a dry measurement there.
_STATEFUL = {
    "backward", "register_hook", "retain_grad", "requires_grad_", "manual_seed", "set_default_dtype",
    "set_grad_enabled", "load_state_dict", "register_buffer", "register_forward_hook",
    "register_forward_pre_hook", "apply", "train", "eval", "to", "cpu", "cuda", "zero_grad",
    "fork_rng", "save", "load", "empty_cache", "set_rng_state", "seed", "initial_seed",
}  # fmt: skip


def _pure(entry: Entry) -> bool:
    return not (
        entry.name in _STATEFUL
        or entry.name in ("forward", "__init__", "step")
        or entry.owner is torch.nn.Module
        or isinstance(entry.owner, type)
        and issubclass(entry.owner, torch.nn.Module)
    )


def _parameters(entry: Entry) -> list[str]:
    names = []
    for params in signatures(entry.function):
        for p in params:
            if p.has_default and p.name not in ("out", "dtype") and p.name not in names:
                names.append(p.name)
    return names


# Argument operators that need a documented parameter of a kind: none is made for an API whose
# documented signatures lack it (an API with no signature to read keeps them all).
_NEEDS = {
    "args.negative_dim_off_by_one": lambda p: p.is_dim,
    "args.out_ignored": lambda p: p.name == "out",
    "args.dtype_ignored": lambda p: p.name == "dtype",
}


def _takes(entry: Entry, op: Operator) -> bool:
    overloads = signatures(entry.function)
    if op.id not in _NEEDS or not overloads:
        return True
    return any(_NEEDS[op.id](p) for params in overloads for p in params)


def _possible_classes(entry: Entry) -> list[str]:
    """The input classes an API's documented parameters allow: keyword classes need a parameter
    with a default, the negative-dim class a dim parameter; the tensor classes any tensor input."""
    params = [p for overload in signatures(entry.function) for p in overload]
    possible = []
    for name in CLASSES:
        if name in ("keyword_given", "keyword_omitted") and not any(p.has_default for p in params):
            continue
        if name == "negative_dim" and not any(p.is_dim for p in params):
            continue
        possible.append(name)
    return possible


def mutants_for(apis) -> tuple[list[Mutant], dict[str, str]]:
    """Every mutant of these APIs, and the APIs that get none, with the reason."""
    found, none = [], {}
    for api in apis:
        entries, reason = entry_points(api)
        if not entries:
            none[api] = reason
            continue
        for entry in entries:
            for op in OPERATORS.values():
                if not set(op.roles) & set(entry.roles) and not (op.kind in ("arguments", "errors") and "init" in entry.roles):
                    continue
                if op.per_parameter:
                    found.extend(Mutant(entry, op, param=p) for p in _parameters(entry))
                    continue
                if not _takes(entry, op):
                    continue
                found.append(Mutant(entry, op))
                if op.classes:
                    found.extend(Mutant(entry, op, input_class=c) for c in _possible_classes(entry))
    return found, none


@dataclass
class Tally:
    """What one mutant did over the calls of one or more runs."""

    calls: int = 0  # calls from the test
    in_class: int = 0  # of those, calls in the mutant's input class
    fired: int = 0  # of those, calls where it broke something
    reasons: Counter = field(default_factory=Counter)

    def merge(self, other: Tally) -> None:
        self.calls += other.calls
        self.in_class += other.in_class
        self.fired += other.fired
        self.reasons.update(other.reasons)

    def as_dict(self) -> dict:
        return {"calls": self.calls, "in_class": self.in_class, "fired": self.fired, "reasons": dict(self.reasons.most_common(3))}


def _call_of(entry: Entry, original, args, kwargs) -> Call:
    return Call(entry.api, original, args, kwargs, entry.is_method)


def install(patcher, mutant: Mutant, tally: Tally, state: dict) -> None:
    """Install `mutant` for real: it breaks the calls a test makes, and counts them in `tally`."""
    entry = mutant.entry
    in_class = CLASSES.get(mutant.input_class)

    def make(original):
        def mutated(*args, **kwargs):
            if not called_from_test():
                return original(*args, **kwargs)
            tally.calls += 1
            call = _call_of(entry, original, args, kwargs)
            if in_class is not None and not in_class(call):
                return original(*args, **kwargs)
            tally.in_class += 1
            try:
                result = mutant.operator.mutate(call, state, mutant.param)
            except NotApplicable as why:
                tally.reasons[str(why)] += 1
                return call.run() if not call.ran else call._result
            tally.fired += 1
            return result

        return mutated

    patcher.method(entry.owner, entry.name, make)


def install_recorder(patcher, mutants: list[Mutant], tallies: dict[str, Tally]) -> None:
    """Install every dry mutant of these entry points at once, in dry mode: each call runs stock
    torch, and each mutant's broken result is computed and thrown away, to count where it fires."""
    by_entry: dict[tuple[int, str], list[Mutant]] = {}
    for m in mutants:
        if m.dry:
            by_entry.setdefault((id(m.entry.owner), m.entry.name), []).append(m)
    for group in by_entry.values():
        entry = group[0].entry

        def make(original, group=group, entry=entry):
            def recorded(*args, **kwargs):
                if not called_from_test():
                    return original(*args, **kwargs)
                call = _call_of(entry, original, args, kwargs)
                stock_error = None
                before = None  # self as it was, for measuring an in-place API on clones of it
                if "inplace" in entry.roles and args and isinstance(args[0], torch.Tensor):
                    before = args[0].detach().clone(memory_format=torch.preserve_format)
                try:
                    call.run()
                except Exception as exc:
                    stock_error = exc  # the error operators see it; run() raises it again for them
                classes = {name: test(call) for name, test in CLASSES.items()}
                whole: dict[tuple[str, str], object] = {}  # an operator fires or not whatever the class
                for m in group:
                    tally = tallies[m.id]
                    tally.calls += 1
                    if m.input_class and not classes[m.input_class]:
                        continue
                    tally.in_class += 1
                    key = (m.operator.id, m.param)
                    if key not in whole:
                        whole[key] = _dry_fire(m, call, stock_error, before)
                    if whole[key] is True:
                        tally.fired += 1
                    else:
                        tally.reasons[whole[key]] += 1
                if call.ran:
                    return call._result
                return original(*args, **kwargs)  # it raised: raise it again where the test sees it

            return recorded

        patcher.method(entry.owner, entry.name, make)


def _run_broken(mutant: Mutant, probe: Call, stock_error: Exception | None):
    """(verdict, broken result): verdict is None where the broken call returned, else True (it
    raised where stock torch did not) or the reason it does not fire. The global CPU generator and
    any generator passed in are put back, so a probe draws nothing the test would see."""
    generators = [(g, g.get_state()) for g in (*probe.args, *probe.kwargs.values()) if isinstance(g, torch.Generator)]
    try:
        with torch.random.fork_rng(devices=[]):
            return None, mutant.operator.mutate(probe, {}, mutant.param)
    except NotApplicable as why:
        return str(why), None
    except Exception as exc:
        if stock_error is not None and type(exc) is type(stock_error):
            return "the call raises on stock torch too", None
        return True, None  # the broken call raises where stock torch does not: that breaks it too
    finally:
        for g, state in generators:
            g.set_state(state)


def _dry_fire(mutant: Mutant, call: Call, stock_error: Exception | None, before: torch.Tensor | None = None):
    """True where the mutant would break this call, else the reason it would not."""
    if before is not None and mutant.operator.kind == "arguments":
        return _dry_fire_in_place(mutant, call, before)
    probe = Call(call.api, call.original, call.args, call.kwargs, call.is_method, call._result)
    kept = _inputs_as_they_are(call) if mutant.operator.kind == "arguments" else []
    verdict, broken = _run_broken(mutant, probe, stock_error)
    if _put_back(kept):
        return True  # the changed argument (inplace=True, say) wrote into an input stock torch left alone
    if verdict is not None:
        return verdict
    if stock_error is not None:
        return True  # stock torch raised; the broken call returned
    if mutant.operator.kind == "arguments" and observably_same(broken, call._result, call):
        return "the changed argument changes nothing observable for this call"
    return True


def _inputs_as_they_are(call: Call) -> list[tuple[torch.Tensor, torch.Tensor, int]]:
    """Each tensor argument with a copy of its values and its version, for _put_back."""
    kept = []
    for t in call.tensors():
        if t.device.type == "meta" or t.layout != torch.strided or t.is_quantized or t.is_nested:
            continue  # no values to compare (meta), or none that == compares elementwise
        kept.append((t, t.detach().clone(memory_format=torch.preserve_format), t._version))
    return kept


def _put_back(kept) -> bool:
    """Put back the values and versions of inputs a dry probe wrote into (an argument operator runs
    the original again on the test's own tensors: inplace=True would write them); whether any was."""
    wrote = False
    for t, values, version in kept:
        if _equal_values(t.detach(), values):
            continue
        wrote = True
        try:
            with torch.no_grad():
                t.copy_(values)
        except RuntimeError:
            continue  # resized, or overlapping memory: left as the probe made it (the item then fails, and says so)
        torch._C._autograd._unsafe_set_version_counter((t,), (version,))
    return wrote


def _equal_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    equal = a == b
    if a.is_floating_point() or a.is_complex():
        equal = equal | (a.isnan() & b.isnan())
    return bool(equal.all())


def _dry_fire_in_place(mutant: Mutant, call: Call, before: torch.Tensor):
    """An argument operator on an in-place API, measured on two clones of self as it was: stock
    torch writes one, the broken call the other; it fires where they or the results differ."""
    rest = call.args[1:]
    stock_self = before.clone(memory_format=torch.preserve_format)
    broken_self = before.clone(memory_format=torch.preserve_format)
    stock_call = Call(call.api, call.original, (stock_self, *rest), call.kwargs, call.is_method)
    try:
        with torch.random.fork_rng(devices=[]):
            stock, stock_error = stock_call.run(), None
    except Exception as exc:
        stock, stock_error = None, exc
    probe = Call(call.api, call.original, (broken_self, *rest), call.kwargs, call.is_method)
    verdict, broken = _run_broken(mutant, probe, stock_error)
    if verdict is not None:
        return verdict
    if stock_error is not None or not same(stock_self, broken_self, values_only=True):
        return True
    if isinstance(stock, torch.Tensor) and isinstance(broken, torch.Tensor):
        if (stock is stock_self) != (broken is broken_self) or not same(stock, broken, values_only=True):
            return True
        return "the changed argument changes nothing observable for this call"
    return True if not observably_same(stock, broken, probe) else "the changed argument changes nothing observable for this call"


def observably_same(a, b, call: Call) -> bool:
    """Nothing a caller could check tells `a` from `b`: tensors by dtype, shape, strides, values,
    grad requirement and whether they alias an input of `call`; sequences element by element;
    other values by ==."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.requires_grad != b.requires_grad or aliases_input(call, a) != aliases_input(call, b):
            return False
        return a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride() and same(a, b, values_only=True)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(observably_same(x, y, call) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return False
    try:
        return bool(a == b)
    except Exception:
        return a is b


def signature_text(entry: Entry) -> str:
    try:
        return str(inspect.signature(entry.function))
    except (TypeError, ValueError):
        return ""
