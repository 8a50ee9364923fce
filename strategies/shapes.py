"""Shape strategies: thin wrappers over `hypothesis.extra.numpy`, with zero-size sides on.

Sides are small on purpose: conformance bugs show on small shapes (0, 1, ties, odd sizes),
and a bounded element count keeps every example cheap.
"""

from functools import cache, lru_cache

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

MAX_SIDE = 5
MAX_DIMS = 4


@cache
def shapes(
    *, min_dims: int = 0, max_dims: int = MAX_DIMS, min_side: int = 0, max_side: int = MAX_SIDE
) -> st.SearchStrategy[tuple[int, ...]]:
    """Shapes with `min_dims..max_dims` dimensions, each of `min_side..max_side` elements.
    Invalid bounds raise InvalidArgument here, not in the middle of a test."""
    if not 0 <= min_dims <= max_dims or not 0 <= min_side <= max_side:
        raise InvalidArgument(
            f"shapes(min_dims={min_dims}, max_dims={max_dims}, min_side={min_side}, "
            f"max_side={max_side}): need 0 <= min <= max for both dims and sides"
        )
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def size_bucket(numel: int) -> str:
    """A low-cardinality label for the report's "what was generated" table."""
    if numel <= 1:
        return str(numel)
    if numel <= 16:
        return "2-16"
    if numel <= 128:
        return "17-128"
    return ">128"


SIZE_BUCKETS = ("0", "1", "2-16", "17-128", ">128")


def _prime_factors(n: int) -> list[int]:
    factors, p = [], 2
    while p * p <= n:
        while n % p == 0:
            factors.append(p)
            n //= p
        p += 1
    return factors + ([n] if n > 1 else [])


@lru_cache(maxsize=4096)
def reshapes(shape: tuple[int, ...], *, max_dims: int = MAX_DIMS) -> st.SearchStrategy:
    """Strategy for shapes with as many elements as `shape` (built once per shape)."""
    return _reshapes(tuple(shape), max_dims)


@st.composite
def _reshapes(draw, shape: tuple[int, ...], max_dims: int) -> tuple[int, ...]:
    """A shape with the same number of elements as `shape`.

    Half the draws keep the prime factors in their original order, so merges and splits of
    neighbouring dimensions (the views that can succeed on strided tensors) come up often.
    """
    numel = 1
    for side in shape:
        numel *= side
    if numel == 0:
        sides = draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=1, max_side=MAX_SIDE))
        zero_at = draw(st.integers(0, len(sides) - 1))
        return tuple(0 if i == zero_at else s for i, s in enumerate(sides))
    factors = [f for side in shape for f in _prime_factors(side)]
    if draw(st.booleans()):
        factors = list(draw(st.permutations(factors)))
    ndim = draw(st.integers(0 if numel == 1 else 1, max_dims))
    if ndim == 0:
        return ()
    bins = [1] * ndim
    if draw(st.booleans()):  # consecutive groups: preserves the order of the factors
        cuts = sorted(draw(st.lists(st.integers(0, len(factors)), min_size=ndim - 1, max_size=ndim - 1)))
        for i, factor in enumerate(factors):
            bins[sum(c <= i for c in cuts)] *= factor
    else:
        for factor in factors:
            bins[draw(st.integers(0, ndim - 1))] *= factor
    return tuple(bins)
