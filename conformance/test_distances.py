"""Distances: pdist is the upper triangle of cdist."""
import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks import assert_close_to_reference
from strategies import specs


@st.composite
def point_sets(draw):
    n, m = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    return draw(specs(shape=(n, m)))


@pytest.mark.behaviour("distances.pdist_length")
@pytest.mark.dtypes("float32_64")
@given(x=point_sets())
def test_pdist_returns_the_pairs_above_the_diagonal(device, dtype, x):
    out = torch.nn.functional.pdist(x.build(dtype=dtype, device=device))
    n = x.shape[0]
    assert out.shape == (n * (n - 1) // 2,)
    points = x.build(dtype=dtype, device="cpu").double()
    expected = [torch.dist(points[i], points[j]) for i, j in itertools.combinations(range(n), 2)]
    if expected:
        assert_close_to_reference(out, torch.stack(expected))


@pytest.mark.behaviour("distances.pdist_rebuilds_cdist")
@pytest.mark.dtypes("float32_64")
@given(x=point_sets())
def test_pdist_scattered_into_triu_rebuilds_cdist(device, dtype, x):
    t = x.build(dtype=dtype, device=device)
    n = x.shape[0]
    dist = torch.zeros(n, n, dtype=dtype, device=device)
    rows, cols = torch.triu_indices(n, n, offset=1, device=device)
    dist[rows, cols] = torch.nn.functional.pdist(t)
    dist = dist + dist.T
    assert_close_to_reference(dist, torch.cdist(t.double(), t.double()).cpu(), atol=1e-4, rtol=1e-4) \
        if dtype == torch.float32 else assert_close_to_reference(dist, torch.cdist(t, t).cpu())
