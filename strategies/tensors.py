"""Tensor specs: what to build, drawn by Hypothesis; how to build it, done by the test.

Note [Layouts and poison]
A layout is a way to lay the same logical values out in memory. Every non-contiguous layout
that leaves gaps fills its storage with poison first (NaN for floating and complex dtypes,
the dtype's largest value for integers), then copies the logical values in through the
strided view. An operation that reads with the wrong strides picks up poison, so the
mistake shows in the result instead of hiding behind plausible numbers.

    layout          how it is made                                  gaps hold poison
    contiguous      make_tensor                                     -
    transposed      last two dims swapped over a contiguous buffer  -
    permuted        any non-identity permutation                    -
    sliced          x[::k0, ::k1, ...] of a k-times larger buffer   yes
    expanded        a size-1 dim broadcast with stride 0            -
    offset          a view starting `offset` elements into storage  yes (the head)
    channels_last   4-D, memory_format=torch.channels_last          -
    as_strided      permuted order, gaps and offset, via as_strided yes

Note [Replayable values]
`make_tensor` draws from torch's global RNG, which Hypothesis cannot replay or shrink. The
spec carries a drawn `seed`; values are made on the CPU under `torch.random.fork_rng` seeded
with it (so the global RNG is untouched), then moved to the device. The same spec thus gives
bit-identical values on every device. Special values (NaN, +-inf, -0.0) are drawn as
explicit (position, value) pairs so Hypothesis can shrink them away one at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import cache, lru_cache

import torch
from hypothesis import currently_in_test_context, event
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from torch.testing import make_tensor

from strategies.dtypes import dtype_name
from strategies.shapes import shapes as shape_strategy
from strategies.shapes import size_bucket

LAYOUTS = ("contiguous", "transposed", "permuted", "sliced", "expanded", "offset", "channels_last", "as_strided")
# Layouts whose elements each own one memory location, so in-place writes are allowed.
WRITABLE_LAYOUTS = tuple(name for name in LAYOUTS if name != "expanded")

_MIN_NDIM = {"transposed": 2, "permuted": 2, "sliced": 1, "expanded": 1, "channels_last": 4, "as_strided": 1}
_MAX_NDIM = {"channels_last": 4}

SPECIAL_VALUES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "-0.0": -0.0}
# Value classes: the magnitude the values are scaled to (floating and complex dtypes), so that a
# formula is tried where its terms differ (around 0, around 1, large) and not only in make_tensor's
# default band of [-9, 9]. "large" stays far enough below the dtype's limit that the product of two
# values is finite (float16 holds 65504: its large values stay within 72).
MAGNITUDES = ("small", "unit", "large")
_LARGE = {
    torch.float16: 8.0,
    torch.bfloat16: 1e3,
    torch.float32: 1e4,
    torch.float64: 1e6,
    torch.complex64: 1e4,
    torch.complex128: 1e6,
}


def magnitude_factor(name: str, dtype: torch.dtype) -> float:
    """What the values of magnitude class `name` are multiplied by in `dtype`."""
    if name == "small":
        return 1e-3
    if name == "large":
        return _LARGE.get(dtype, 1e3)
    return 1.0


# The dtype's own finite extremes: for floating dtypes the largest and lowest finite values, the
# smallest normal and a subnormal; for integral ones the largest and the smallest.
EXTREMES = ("max", "lowest", "tiny", "subnormal")


def extreme_value(name: str, dtype: torch.dtype) -> float | int | None:
    """The value an extreme stands for in `dtype` (None where the dtype has no such value)."""
    if dtype == torch.bool or dtype.is_complex:
        return None
    if dtype.is_floating_point:
        info = torch.finfo(dtype)
        return {"max": info.max, "lowest": info.min, "tiny": info.tiny, "subnormal": info.tiny / 4}[name]
    info = torch.iinfo(dtype)
    return {"max": info.max, "lowest": info.min}.get(name)


def compact_repr(obj, always: tuple[str, ...] = ()) -> str:
    """A dataclass as its constructor call, with only the fields that differ from their defaults
    (and those in `always`): what a falsifying example prints, still enough to rebuild it."""
    shown = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name in always or value != f.default:
            shown.append(f"{f.name}={value!r}")
    return f"{type(obj).__name__}({', '.join(shown)})"


class CompactRepr:
    """Mixin for the dataclasses a Hypothesis example prints: Hypothesis' printer lists every field
    of a dataclass (and every line of a nested strategy) unless `_repr_pretty_` says otherwise."""

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))


@dataclass(frozen=True, repr=False)
class TensorSpec(CompactRepr):
    """Everything needed to rebuild one generated tensor on any device and dtype (its dtype is the
    item's, or an Arg's)."""

    shape: tuple[int, ...]
    layout: str = "contiguous"
    params: tuple = ()
    seed: int = 0
    specials: tuple[tuple[int, str], ...] = ()
    extremes: tuple[tuple[int, str], ...] = ()
    low: float | None = None
    high: float | None = None
    magnitude: str = ""  # a MAGNITUDES class where one was drawn ("": make_tensor's own range)
    whole: bool = False  # floating values rounded to whole numbers: equal elements (ties) common

    def __repr__(self) -> str:  # TensorSpec(shape=(2, 3), layout='sliced', params=(2, 1), seed=7)
        return compact_repr(self, always=("shape", "seed"))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def strides(self) -> tuple[int, ...]:
        """The strides `build` lays the tensor out with, in elements: the same for every dtype and
        device (worked out on the meta device, so no values are made and nothing is reported)."""
        values = torch.empty(self._value_shape(), device="meta")
        return _LAYOUT_BUILDERS[self.layout](self, values, torch.device("meta")).stride()

    def values(self, dtype: torch.dtype) -> torch.Tensor:
        """The logical values as a contiguous CPU tensor (see Note [Replayable values])."""
        return self._make_values(self._value_shape(), dtype)

    def logical_values(self, dtype: torch.dtype) -> torch.Tensor:
        """What `build` holds, element by element, as a contiguous CPU tensor: the oracle input."""
        return self.values(dtype).expand(self.shape).contiguous()

    def build(self, *, dtype: torch.dtype, device: str | torch.device = "cpu", requires_grad: bool = False) -> torch.Tensor:
        """The tensor this spec describes, laid out as `layout` on `device`."""
        label(f"dtype={dtype_name(dtype)}", f"layout={self.layout}", f"ndim={self.ndim}", f"size={size_bucket(self.numel)}")
        values = self._make_values(self._value_shape(), dtype)
        tensor = _LAYOUT_BUILDERS[self.layout](self, values, torch.device(device))
        if requires_grad:
            tensor.requires_grad_()
        return tensor

    def _value_shape(self) -> tuple[int, ...]:
        if self.layout == "expanded":
            return tuple(1 if d in self.params else s for d, s in enumerate(self.shape))
        return self.shape

    def _make_values(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        with torch.random.fork_rng(devices=[]):
            # torch.manual_seed would also queue seeds for every lazy accelerator module,
            # formatting a stack trace each time: the CPU generator is all make_tensor uses here.
            torch.default_generator.manual_seed(self.seed)
            if self.low is not None and self.low == self.high:  # one value: a tensor of zeros, say
                values = torch.full(shape, self.low, dtype=dtype)
            else:
                values = make_tensor(shape, dtype=dtype, device="cpu", low=self.low, high=self.high)
                if self.whole and (dtype.is_floating_point or dtype.is_complex):
                    parts = (values,) if dtype.is_floating_point else (values.real, values.imag)
                    for part in parts:
                        part.copy_(part.round())
        if self.magnitude and (dtype.is_floating_point or dtype.is_complex):
            label(f"magnitude={self.magnitude}")
            if self.magnitude != "unit":
                values = values * magnitude_factor(self.magnitude, dtype)
        if self.specials and (dtype.is_floating_point or dtype.is_complex) and values.numel():
            flat = values.view(-1)
            for position, name in self.specials:
                flat[position % flat.numel()] = SPECIAL_VALUES[name]
                label(f"special={name}")
        if self.extremes and values.numel():
            flat = values.view(-1)
            for position, name in self.extremes:
                value = extreme_value(name, dtype)
                if value is not None:
                    flat[position % flat.numel()] = value
                    label(f"extreme={name}")
        return values


def label(*labels: str) -> None:
    """Tell Hypothesis (and so the report) what was generated. Outside a test, as when a
    user rebuilds a falsifying spec in a REPL, there is nothing to tell."""
    if currently_in_test_context():
        for label in labels:
            event(label)


def poison(dtype: torch.dtype) -> float | int | bool:
    """The filler for storage gaps: a value a correct read never returns."""
    if dtype.is_floating_point or dtype.is_complex:
        return math.nan
    if dtype == torch.bool:
        return True
    return torch.iinfo(dtype).max


def _poisoned(size: int, like: torch.Tensor, device: torch.device) -> torch.Tensor:
    return torch.full((size,), poison(like.dtype), dtype=like.dtype, device=device)


def _contiguous(spec, values, device):
    return values.to(device)


def _permuted(spec, values, device):
    perm = spec.params
    physical = values.permute(perm).contiguous().to(device)
    inverse = sorted(range(len(perm)), key=perm.__getitem__)
    return physical.permute(inverse)


def _sliced(spec, values, device):
    steps = spec.params
    big_shape = [max(s * k, 1) for s, k in zip(spec.shape, steps)]
    big = _poisoned(math.prod(big_shape), values, device).view(big_shape)
    view = big[tuple(slice(0, s * k, k) for s, k in zip(spec.shape, steps))]
    view.copy_(values)
    return view


def _expanded(spec, values, device):
    return values.to(device).expand(spec.shape)


def _offset(spec, values, device):
    (offset,) = spec.params
    storage = _poisoned(offset + values.numel(), values, device)
    view = storage[offset:].view(spec.shape)
    view.copy_(values)
    return view


def _channels_last(spec, values, device):
    return values.to(device).contiguous(memory_format=torch.channels_last)


def _as_strided(spec, values, device):
    perm, steps, offset = spec.params
    strides = [0] * spec.ndim
    span = 1
    for d in reversed(perm):  # perm[0] is the outermost dimension in memory
        strides[d] = span * steps[d]
        span = strides[d] * max(spec.shape[d], 1)
    extent = 1 + sum((s - 1) * st_ for s, st_ in zip(spec.shape, strides)) if values.numel() else 0
    storage = _poisoned(offset + extent, values, device)
    view = storage.as_strided(spec.shape, strides, offset)
    view.copy_(values)
    return view


_LAYOUT_BUILDERS = {
    "contiguous": _contiguous,
    "transposed": _permuted,
    "permuted": _permuted,
    "sliced": _sliced,
    "expanded": _expanded,
    "offset": _offset,
    "channels_last": _channels_last,
    "as_strided": _as_strided,
}


def layouts_for(ndim: int, allowed=LAYOUTS) -> list[str]:
    return [name for name in allowed if _MIN_NDIM.get(name, 0) <= ndim <= _MAX_NDIM.get(name, ndim)]


# Strategy objects are validated the first time they draw, which costs more than the draw
# itself: every strategy a spec draw needs is built once per distinct argument and reused.
_SEEDS = st.integers(0, 2**32 - 1)
_SPECIALS = st.lists(st.tuples(st.integers(0, 2**16), st.sampled_from(tuple(SPECIAL_VALUES))), max_size=3)
_EXTREMES = st.lists(st.tuples(st.integers(0, 2**16), st.sampled_from(EXTREMES)), max_size=3)


@cache
def _choice(options: tuple) -> st.SearchStrategy:
    return st.sampled_from(options)


@lru_cache(maxsize=4096)
def _layout_params(layout: str, shape: tuple[int, ...]) -> st.SearchStrategy:
    return _layout_params_of(layout, shape)


@st.composite
def _layout_params_of(draw, layout: str, shape: tuple[int, ...]):
    ndim = len(shape)
    if layout == "transposed":
        return tuple(range(ndim - 2)) + (ndim - 1, ndim - 2)
    if layout == "permuted":
        identity = tuple(range(ndim))
        return tuple(draw(st.permutations(identity).filter(lambda p: tuple(p) != identity)))
    if layout == "sliced":
        steps = draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim))
        if max(steps) == 1:
            steps[draw(st.integers(0, ndim - 1))] = 2
        return tuple(steps)
    if layout == "expanded":
        dims = draw(st.sets(st.integers(0, ndim - 1), min_size=1))
        return tuple(sorted(dims))
    if layout == "offset":
        return (draw(st.integers(1, 7)),)
    if layout == "as_strided":
        perm = tuple(draw(st.permutations(range(ndim))))
        steps = tuple(draw(st.lists(st.integers(1, 2), min_size=ndim, max_size=ndim)))
        return (perm, steps, draw(st.integers(0, 3)))
    return ()


@lru_cache(maxsize=4096)
def specs(
    *,
    shapes=None,
    shape: tuple[int, ...] | None = None,
    layouts=LAYOUTS,
    special_values: bool = False,
    extremes: bool = False,
    low: float | None = None,
    high: float | None = None,
    magnitudes: bool = False,
    whole: bool = False,
):
    """A strategy for `TensorSpec`s.

    shapes:         a shape strategy (default: 0-4 dims of 0-5 elements each)
    shape:          one fixed shape instead (shorthand for shapes=st.just(shape))
    layouts:        the layout classes allowed; one that cannot apply to the drawn shape
                    (channels_last needs 4 dims) falls back to those that can
    special_values: also place NaN, +-inf and -0.0 at drawn positions (floating dtypes)
    extremes:       also place the dtype's finite extremes at drawn positions: max, lowest, the
                    smallest normal and a subnormal (floating), max and min (integral)
    low, high:      the value range passed to `make_tensor`; low == high: every value is low
    magnitudes:     also draw a value class (MAGNITUDES: around 0, around 1, large) and scale
                    floating values to it; reported as magnitude=small|unit|large
    whole:          round floating values to whole numbers, so that a small range (low=-2,
                    high=2) makes equal elements common: ties, for the rules about them
    """
    layouts = (layouts,) if isinstance(layouts, str) else tuple(layouts)
    unknown = [name for name in layouts if name not in LAYOUTS]
    if unknown or not layouts:
        problem = f"unknown layout(s) {', '.join(map(repr, unknown))}" if unknown else "no layout"
        raise InvalidArgument(f"specs(layouts={layouts!r}): {problem}; valid: {', '.join(LAYOUTS)}")
    if shape is not None and shapes is not None:
        raise InvalidArgument("specs(): give shape= or shapes=, not both")
    if shapes is not None and not isinstance(shapes, st.SearchStrategy):
        raise InvalidArgument(f"specs(shapes={shapes!r}): expected a strategy of shapes; for one fixed shape use shape=")
    if shape is not None:
        if not all(isinstance(s, int) and s >= 0 for s in tuple(shape)):
            raise InvalidArgument(f"specs(shape={shape!r}): expected a tuple of non-negative ints")
        shapes = st.just(tuple(shape))
    if low is not None and high is not None and low > high:
        raise InvalidArgument(f"specs(low={low!r}, high={high!r}): low must not exceed high")
    if magnitudes and (low is not None or high is not None):
        raise InvalidArgument("specs(): magnitudes=True scales make_tensor's own range; give it without low=/high=")
    shapes = shapes if shapes is not None else _DEFAULT_SHAPES
    return _specs(shapes, tuple(layouts), special_values, extremes, low, high, magnitudes, whole)


_DEFAULT_SHAPES = shape_strategy()


@st.composite
def _specs(draw, shapes, layouts, special_values, extremes, low, high, magnitudes=False, whole=False) -> TensorSpec:
    shape = tuple(draw(shapes))
    layout = draw(_choice(tuple(layouts_for(len(shape), layouts)) or ("contiguous",)))
    params = draw(_layout_params(layout, shape))
    seed = draw(_SEEDS)
    specials = tuple(draw(_SPECIALS)) if special_values else ()
    extreme = tuple(draw(_EXTREMES)) if extremes else ()
    magnitude = draw(_choice(MAGNITUDES)) if magnitudes else ""
    return TensorSpec(
        shape=shape,
        layout=layout,
        params=params,
        seed=seed,
        specials=specials,
        extremes=extreme,
        low=low,
        high=high,
        magnitude=magnitude,
        whole=whole,
    )
