"""Unit tests of the oracles the behaviour tests trust: each is checked on cases worked out by
hand and, where torch can answer, against torch itself."""

import math

import pytest
import torch

from conformance.checks import assert_equal
from conformance.test_losses import reference_terms
from conformance.test_views import view_is_possible
from conformance.tolerances import TABLE, tolerance


@pytest.mark.parametrize(
    ("shape", "strides", "new_shape", "possible"),
    [
        ((2, 12), (12, 1), (24,), True),
        ((2, 12), (12, 1), (4, 6), True),
        ((2, 3, 4), (12, 1, 3), (2, 3, 2, 2), True),
        ((2, 3, 4), (12, 1, 3), (6, 4), False),
        ((2, 3, 4), (12, 1, 3), (2, 12), False),
        ((2, 3, 4), (12, 1, 3), (24,), False),
        ((3, 1, 4), (4, 99, 1), (12,), True),  # a size-1 dimension's stride means nothing
        ((0, 5), (1, 7), (5, 0), True),  # no elements: any shape of zero elements views
    ],
)
def test_view_is_possible_matches_hand_worked_cases_and_torch(shape, strides, new_shape, possible):
    assert view_is_possible(shape, strides, new_shape) is possible
    extent = 1 + sum((n - 1) * s for n, s in zip(shape, strides)) if math.prod(shape) else 0
    t = torch.zeros(max(extent, 1)).as_strided(shape, strides)
    try:
        t.view(new_shape)
        torch_says = True
    except RuntimeError:
        torch_says = False
    assert torch_says is possible


def test_nll_reference_terms_by_hand():
    logp = torch.tensor([[0.5, 0.5], [0.25, 0.75], [0.9, 0.1]]).log()
    y = torch.tensor([0, 1, -100])
    w = torch.tensor([1.0, 2.0])
    terms, wy = reference_terms(logp, y, w, -100)
    expected = torch.tensor([-math.log(0.5), -2 * math.log(0.75), 0.0], dtype=torch.float64)
    torch.testing.assert_close(terms, expected)
    assert_equal(wy, torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64))


def test_assert_equal_names_the_difference():
    with pytest.raises(AssertionError, match=r"1 of 3 elements differ \(at \(1,\): got 5, expected 2\)"):
        assert_equal(torch.tensor([1, 5, 3]), torch.tensor([1, 2, 3]), "values")
    with pytest.raises(AssertionError, match="expected torch.int64"):
        assert_equal(torch.tensor([1.0]), torch.tensor([1]))


def test_tolerance_rows_are_assert_close_keywords():
    assert tolerance("tf32", torch.float32) == {"rtol": 2e-3, "atol": 2e-3}
    assert tolerance("tf32", torch.float64) == {}  # not listed: assert_close's own default
    with pytest.raises(KeyError, match="unknown tolerance 'loose'"):
        tolerance("loose", torch.float32)
    assert all(rtol >= 0 and atol >= 0 for row in TABLE.values() for rtol, atol in row.values())
