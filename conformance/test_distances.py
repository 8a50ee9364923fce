"""Distances: pdist is the upper triangle of cdist; 1 / (1 + distance) is a similarity."""

import itertools

import numpy
import torch
from hypothesis import strategies as st
from torch.testing import assert_close

from conformance.checks import assert_close_to_reference, assert_equal
from conformance.harness.declaration import Operation
from conformance.tolerances import tolerance
from strategies import specs
from strategies.samples import Sample


@st.composite
def point_sets(draw):
    """Sample(points): n points of m coordinates as an (n, m) tensor."""
    n, m = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    return Sample((draw(specs(shape=(n, m)), label="points"),))


PDIST = Operation(
    "distances.pdist_length", dtypes="float32_64", samples=point_sets(), call=lambda x: torch.nn.functional.pdist(x)
)


def pdist_as_matrix(x):
    """pdist's values scattered into the upper triangle of an (n, n) matrix, then mirrored."""
    n = x.shape[0]
    dist = torch.zeros(n, n, dtype=x.dtype, device=x.device)
    rows, cols = torch.triu_indices(n, n, offset=1, device=x.device)
    dist[rows, cols] = torch.nn.functional.pdist(x)
    return dist + dist.T


PDIST_MATRIX = Operation(
    "distances.pdist_rebuilds_cdist", dtypes="float32_64", samples=point_sets(), call=lambda x: pdist_as_matrix(x)
)


@PDIST.property
def test_pdist_returns_the_pairs_above_the_diagonal(device, dtype, sample):
    (x,) = sample.args
    out = PDIST(sample, dtype=dtype, device=device)
    n = x.shape[0]
    assert out.shape == (n * (n - 1) // 2,)
    assert out.dtype == dtype, f"pdist of {dtype} points gave {out.dtype}"
    points = x.build(dtype=dtype, device="cpu").double()
    expected = [torch.dist(points[i], points[j]) for i, j in itertools.combinations(range(n), 2)]
    if expected:
        assert_close_to_reference(out, torch.stack(expected))


@PDIST_MATRIX.property
def test_pdist_scattered_into_triu_rebuilds_cdist(device, dtype, sample):
    t = sample.args[0].build(dtype=dtype, device=device).double()
    n = t.shape[0]
    # triu_indices' documented default dtype is torch.long; cdist keeps its inputs' dtype
    assert torch.triu_indices(n, n, offset=1).dtype == torch.int64, "triu_indices did not default to torch.long"
    assert torch.cdist(t, t).dtype == torch.float64, "cdist of float64 points is not float64"
    assert_close_to_reference(
        PDIST_MATRIX(sample, dtype=dtype, device=device), torch.cdist(t, t).cpu(), **tolerance("distance_float32", dtype)
    )


def similarity(x):
    """1 / (1 + cdist(x, x)) in the notes' two forms: out of place, and in place on a fresh matrix."""
    return torch.cdist(x, x).add(1).pow(-1), torch.cdist(x, x).add_(1).pow_(-1)


SIMILARITY = Operation(
    "distances.similarity_from_distance", dtypes="float32_64", samples=point_sets(), call=lambda x: similarity(x)
)


@SIMILARITY.property
def test_one_over_one_plus_distance_is_a_similarity(device, dtype, sample):
    (x,) = sample.args
    out, in_place = SIMILARITY(sample, dtype=dtype, device=device)
    points = x.build(dtype=dtype, device="cpu").double().numpy()
    expected = 1 / (1 + numpy.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)))
    assert_close(out.cpu(), torch.from_numpy(expected).to(dtype), **tolerance("distance_float32", dtype))
    assert bool(((out > 0) & (out <= 1)).all())
    assert_close(out.diagonal().cpu(), torch.ones(x.shape[0], dtype=dtype))
    assert_equal(in_place, out, "the in-place form")
