"""Samples: the drawn arguments of one call of an operation, tensors still unbuilt.

A Sample holds TensorSpecs (built on the item's device, in the item's dtype), `Arg`s (a spec
with a dtype of its own, or one that requires grad), `Made` objects (a module built from a seed,
then moved to the item's device and dtype), ITEM_DEVICE and ITEM_DTYPE (the item's device and
dtype themselves, for factories) and plain values (dims, sizes, options).
The same Sample built on two devices gives the same values in the same layouts, so the
eager property test, the cross-device agreement and any other execution mode compare like
with like; a falsifying example prints as the Sample itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

from strategies.tensors import CompactRepr, TensorSpec, compact_repr, label, specs


@dataclass(frozen=True, repr=False)
class Arg(CompactRepr):
    """A tensor argument that does not follow the item's dtype, or that requires grad."""

    spec: TensorSpec
    dtype: torch.dtype | None = None
    requires_grad: bool = False

    def __repr__(self) -> str:  # Arg(spec=TensorSpec(shape=(3,), seed=1), dtype=torch.float64)
        return compact_repr(self, always=("spec",))


@dataclass(frozen=True, eq=False, repr=False)
class Made(CompactRepr):
    """An argument made anew on each side of a comparison, outside the operation's call: an
    nn.Module, say, which `make()` builds on the CPU under `seed` (so both sides start from the
    same parameters) and which is then moved to the item's device, and to its dtype where that
    is floating. The compiled mode compiles only the call, so Dynamo never traces the building."""

    what: str  # how the falsifying example and the repro spell it: "nn.Conv2d(3, 4, kernel_size=3)"
    make: Callable[[], Any]
    seed: int = 0

    def __repr__(self) -> str:
        return f"Made({self.what}, seed={self.seed})"

    def build(self, *, dtype: torch.dtype, device):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            made = self.make()
        if isinstance(made, torch.nn.Module):
            made = made.to(device=device, dtype=dtype if dtype.is_floating_point else None)
        return made


class ItemValue:
    """The item's device or dtype, given to a call that takes no tensor to learn it from (a
    factory: `torch.zeros(size, device=ITEM_DEVICE)`): each side of a comparison builds it as
    its own device (a torch.device) or dtype. A dtype the docs fix is written as itself."""

    def __init__(self, what: str):
        self.what = what

    def __repr__(self) -> str:
        return self.what


ITEM_DEVICE = ItemValue("ITEM_DEVICE")
ITEM_DTYPE = ItemValue("ITEM_DTYPE")


@dataclass(frozen=True, repr=False)
class Sample(CompactRepr):
    """One drawn input of an operation: positional and keyword arguments, specs unbuilt."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def __repr__(self) -> str:  # as the call it stands for: Sample(TensorSpec(shape=(2,), seed=0), 1, keepdim=True)
        return f"Sample({', '.join([*map(repr, self.args), *(f'{k}={v!r}' for k, v in self.kwargs.items())])})"

    def build(self, *, dtype: torch.dtype, device) -> tuple[list, dict]:
        make = functools.partial(_build, dtype=dtype, device=device)
        return [make(a) for a in self.args], {k: make(v) for k, v in self.kwargs.items()}


def _build(value, *, dtype, device):
    if value is ITEM_DEVICE:
        return torch.device(device)
    if value is ITEM_DTYPE:
        return dtype
    if isinstance(value, TensorSpec):
        return value.build(dtype=dtype, device=device)
    if isinstance(value, Made):
        return value.build(dtype=dtype, device=device)
    if isinstance(value, Arg):
        return value.spec.build(dtype=value.dtype or dtype, device=device, requires_grad=value.requires_grad)
    if isinstance(value, (list, tuple)) and any(isinstance(v, (TensorSpec, Arg)) for v in value):
        return type(value)(_build(v, dtype=dtype, device=device) for v in value)
    return value


def dims(ndim: int, *, inserting: bool = False) -> st.SearchStrategy[int]:
    """A dim of a tensor of `ndim` dims over its whole documented range: -ndim <= dim < ndim (a
    0-d tensor accepts 0 and -1), or -(ndim + 1) <= dim <= ndim for an operation that inserts a
    dimension (unsqueeze, stack). Reports the domain class it drew: "dim<0" or "dim>=0"."""
    if not isinstance(ndim, int) or ndim < 0:
        raise InvalidArgument(f"dims(ndim={ndim!r}): expected a non-negative int")
    span = ndim + 1 if inserting else max(ndim, 1)
    return st.integers(-span, span - 1).map(_noted_dim)


def _noted_dim(dim: int) -> int:
    label("dim<0" if dim < 0 else "dim>=0")
    return dim


@st.composite
def tensor_and_dim(draw, **spec_kwargs) -> Sample:
    """Sample(x, dim): one tensor and a dim over its whole documented range."""
    x = draw(specs(**spec_kwargs), label="x")
    return Sample((x, draw(dims(x.ndim), label="dim")))


@st.composite
def broadcast_operands(
    draw, count: int = 2, *, signature: str | None = None, max_dims: int = 3, max_side: int = 4, magnitudes: bool = False
) -> Sample:
    """`count` tensors whose shapes broadcast together (or match a gufunc `signature`); with
    `magnitudes`, values of a drawn magnitude class (specs(magnitudes=True))."""
    if signature:
        shapes = draw(
            hnp.mutually_broadcastable_shapes(signature=signature, max_dims=max_dims, max_side=max_side), label="shapes"
        )
    else:
        shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=count, max_dims=max_dims, max_side=max_side), label="shapes")
    return Sample(tuple(draw(specs(shape=s, magnitudes=magnitudes), label=f"arg{i}") for i, s in enumerate(shapes.input_shapes)))


# The documented ways of giving a size: "a variable number of arguments or a collection like a
# list or tuple" (torch.zeros and the other factories; view and reshape take the same forms).
# Each maps a shape to the positional arguments that spell it.
SIZE_FORMS = {
    "separate ints": lambda shape: tuple(shape) or ((),),  # no arguments at all is no size: a 0-d shape goes as ()
    "a tuple": lambda shape: (tuple(shape),),
    "a list": lambda shape: (list(shape),),
    "a torch.Size": lambda shape: (torch.Size(shape),),
}


def index_lists(n: int, *, unique: bool = False, min_size: int = 0, max_size: int | None = None) -> st.SearchStrategy[list]:
    """Indices into a dim of `n` elements over their documented domain, -n <= i < n: unsorted,
    negative, repeated (unless `unique`, which keeps one index per element, counting i and i - n
    as the same), and empty unless `min_size` says otherwise. Reports the classes it drew:
    "index<0", "index=repeated", "index=unsorted", "index=empty"."""
    if not isinstance(n, int) or n < 0:
        raise InvalidArgument(f"index_lists(n={n!r}): expected a non-negative int")
    if min_size and not n:
        raise InvalidArgument(f"index_lists(n=0, min_size={min_size}): a dim of no element has no index")
    if unique and max_size is None:
        max_size = n
    elements = st.integers(-n, n - 1) if n else st.nothing()
    drawn = st.lists(elements, min_size=min_size, max_size=max_size, unique_by=(lambda i: i % n) if unique else None)
    return drawn.map(_noted_indices)


def _noted_indices(index: list) -> list:
    if not index:
        label("index=empty")
    if any(i < 0 for i in index):
        label("index<0")
    if len(set(index)) < len(index):
        label("index=repeated")
    if index != sorted(index):
        label("index=unsorted")
    return index


def option_grid(**options) -> st.SearchStrategy[dict]:
    """One value for each keyword option, every combination reachable: the documented values of
    options that interact (a loss's reduction with its weights and ignore_index, a DataLoader's
    batch_size with drop_last and shuffle). Each value is a list of the documented ones. Reports
    "name=value" for each."""
    if not options:
        raise InvalidArgument("option_grid(): name at least one option")
    for name, values in options.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise InvalidArgument(f"option_grid({name}=...): expected a non-empty list of its documented values")
    return st.fixed_dictionaries({name: st.sampled_from(list(values)) for name, values in options.items()}).map(_noted_options)


def _noted_options(chosen: dict) -> dict:
    label(*(f"{name}={value!r}" for name, value in chosen.items()))
    return chosen


def call_forms(forms: dict) -> st.SearchStrategy[str]:
    """The name of one of `forms` (the documented spellings of one call: function, method,
    keyword arguments, module), each reachable; the test looks the form up at call time, so a
    fault injected after import is seen. Reports "form=name"."""
    if not isinstance(forms, dict) or not forms:
        raise InvalidArgument("call_forms(): expected a non-empty dict of name -> call")
    return st.sampled_from(sorted(forms)).map(lambda name: (label(f"form={name}"), name)[1])
