"""What a mutant sees of one call: the API's documented signature, the call's arguments sorted
into parameters, and the input classes the call belongs to.

The signature comes from the API itself: `inspect.signature` for Python functions, else the
signature lines torch's docstrings open with (`sum(input, dim, keepdim=False, *, dtype=None)`),
every overload of them. A parameter is a "dim" parameter when its name says so (dim, dims, dim0,
start_dim, ...), as torch's own argument names do.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import torch

_SIGNATURE_LINE = re.compile(r"^\s*(?:\.\. (?:function|method)::\s*)?([A-Za-z_][\w.]*)\((.*)\)\s*(?:->.*)?$")
_NOT_A_VALUE = object()
EXPRESSION = object()  # a default written as an expression (torch.preserve_format): known to exist, not to us


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any = _NOT_A_VALUE  # a literal default, or _NOT_A_VALUE where none is documented
    keyword_only: bool = False

    @property
    def has_default(self) -> bool:
        return self.default is not _NOT_A_VALUE

    @property
    def literal_default(self) -> bool:
        return self.has_default and self.default is not EXPRESSION

    @property
    def is_dim(self) -> bool:
        return self.name in ("dim", "dims", "dim0", "dim1", "start_dim", "end_dim", "source", "destination") or (
            self.name.endswith("_dim")
        )


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in text:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def _parse_parameters(text: str) -> tuple[Parameter, ...]:
    params, keyword_only = [], False
    for part in _split_top_level(text):
        if part in ("*", "/"):
            keyword_only = keyword_only or part == "*"
            continue
        if part.startswith("*"):  # *size, *args: a variadic positional, no defaults to mutate
            keyword_only = True
            continue
        name, _, default = part.partition("=")
        name = name.split(":")[0].strip()
        if not name.isidentifier():
            continue
        value = _NOT_A_VALUE
        if default:
            try:
                value = ast.literal_eval(default.strip())
            except (ValueError, SyntaxError):
                value = EXPRESSION
        params.append(Parameter(name, value, keyword_only))
    return tuple(params)


@cache
def signatures(function) -> tuple[tuple[Parameter, ...], ...]:
    """Every documented overload of `function`, its parameters in order (`self` left out)."""
    target = getattr(function, "__fault_original__", function)
    if not isinstance(target, type) and inspect.isfunction(inspect.unwrap(target)):
        sig = inspect.signature(inspect.unwrap(target))
        params = []
        for p in sig.parameters.values():
            if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name.startswith("_"):
                continue
            default = _NOT_A_VALUE if p.default is p.empty else p.default if _is_literal(p.default) else EXPRESSION
            params.append(Parameter(p.name, default, p.kind == p.KEYWORD_ONLY))
        return (tuple(params),)
    found = []
    for line in (getattr(target, "__doc__", None) or "").splitlines()[:40]:
        match = _SIGNATURE_LINE.match(line)
        if match and match.group(1).split(".")[-1] == getattr(target, "__name__", "").split(".")[-1]:
            found.append(_parse_parameters(match.group(2)))
    return tuple(found)


def _is_literal(value) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def tensors_in(value, depth: int = 0):
    """The tensors among a call's arguments (one level into lists and tuples)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, list | tuple) and depth == 0:
        for v in value:
            yield from tensors_in(v, 1)


@dataclass
class Call:
    """One call of a mutated API: its arguments, and the original run at most once."""

    api: str
    original: Any
    args: tuple
    kwargs: dict
    is_method: bool  # the first positional argument is self (Tensor.x, nn.Module.x)
    _result: Any = field(default=_NOT_A_VALUE, repr=False)

    def run(self, *args, **kwargs):
        """The original on these arguments (the call's own when none are given), once."""
        if args or kwargs:
            return self.original(*args, **kwargs)
        if self._result is _NOT_A_VALUE:
            self._result = self.original(*self.args, **self.kwargs)
        return self._result

    @property
    def ran(self) -> bool:
        return self._result is not _NOT_A_VALUE

    def tensors(self) -> list[torch.Tensor]:
        found = []
        for value in (*self.args, *self.kwargs.values()):
            found.extend(tensors_in(value))
        return found

    def first_tensor(self) -> torch.Tensor | None:
        for value in self.args:
            for t in tensors_in(value):
                return t
        return None

    def overload(self) -> tuple[Parameter, ...]:
        """The documented overload these arguments fit best: enough positional parameters, and
        every keyword known to it."""
        positional = len(self.args) - (1 if self.is_method else 0)
        best = ()
        for params in signatures(self.original):
            names = {p.name for p in params}
            takes = [p for p in params if not p.keyword_only]
            if len(takes) >= positional and set(self.kwargs) <= names | {"out"}:
                return params
            best = best or params
        return best

    def bound(self) -> dict[str, tuple[str, Any]]:
        """Parameter name -> ("pos", index) or ("kw", name), for the arguments this call gives."""
        params = self.overload()
        offset = 1 if self.is_method else 0
        given: dict[str, tuple[str, Any]] = {}
        takes = [p for p in params if not p.keyword_only]
        for i in range(offset, len(self.args)):
            if i - offset < len(takes):
                given[takes[i - offset].name] = ("pos", i)
        for name in self.kwargs:
            given[name] = ("kw", name)
        return given

    def value(self, where: tuple[str, Any]):
        kind, key = where
        return self.args[key] if kind == "pos" else self.kwargs[key]

    def with_value(self, where: tuple[str, Any], value) -> tuple[tuple, dict]:
        args, kwargs = list(self.args), dict(self.kwargs)
        kind, key = where
        if kind == "pos":
            args[key] = value
        else:
            kwargs[key] = value
        return tuple(args), kwargs

    def without(self, where: tuple[str, Any]) -> tuple[tuple, dict] | None:
        """The call without this argument, or None where leaving it out would shift others."""
        args, kwargs = list(self.args), dict(self.kwargs)
        kind, key = where
        if kind == "kw":
            del kwargs[key]
        elif key == len(args) - 1:
            del args[key]
        else:
            return None
        return tuple(args), kwargs

    def dims(self) -> list[tuple[tuple[str, Any], Any]]:
        """(where, value) of every dim argument given (an int or a tuple of ints)."""
        params = {p.name: p for p in self.overload()}
        found = []
        for name, where in self.bound().items():
            param = params.get(name, Parameter(name))
            value = self.value(where)
            is_int = isinstance(value, int) and not isinstance(value, bool)
            ints = (
                isinstance(value, list | tuple) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            )
            if param.is_dim and (is_int or ints):
                found.append((where, value))
        return found


# Input classes: the one-class variant of an operator fires only on calls in that class.
def _noncontiguous(call: Call) -> bool:
    return any(not t.is_contiguous() for t in call.tensors())


def _negative_dim(call: Call) -> bool:
    return any((v < 0) if isinstance(v, int) else any(d < 0 for d in v) for _, v in call.dims())


def _zero_d(call: Call) -> bool:
    return any(t.dim() == 0 for t in call.tensors())


def _empty(call: Call) -> bool:
    return any(t.numel() == 0 for t in call.tensors())


def _dtypes(call: Call) -> list[torch.dtype]:
    found = [t.dtype for t in call.tensors()]
    if isinstance(call.kwargs.get("dtype"), torch.dtype):
        found.append(call.kwargs["dtype"])
    return found


def _integral(call: Call) -> bool:
    return any(not d.is_floating_point and not d.is_complex and d != torch.bool for d in _dtypes(call))


def _half(call: Call) -> bool:
    return any(d in (torch.float16, torch.bfloat16) for d in _dtypes(call))


def _keyword_given(call: Call) -> bool:
    return bool(call.kwargs)


def _keyword_omitted(call: Call) -> bool:
    given = set(call.bound())
    return any(p.has_default and p.name not in given for p in call.overload())


def _requires_grad(call: Call) -> bool:
    return any(t.requires_grad for t in call.tensors())


CLASSES = {
    "noncontiguous": _noncontiguous,
    "negative_dim": _negative_dim,
    "zero_d": _zero_d,
    "empty": _empty,
    "integral": _integral,
    "half": _half,
    "keyword_given": _keyword_given,
    "keyword_omitted": _keyword_omitted,
    "requires_grad": _requires_grad,
}
