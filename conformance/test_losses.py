"""Losses: NLLLoss and CrossEntropyLoss reductions with class weights, MSE and KL divergence."""
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

from conformance.checks import assert_close_to_reference
from strategies import specs
from strategies.shapes import shapes


@st.composite
def classification(draw, *, ignore: bool = True):
    """(spec of log-probabilities (N, C, d...), targets, weights, ignore_index)."""
    n, c = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    extra = draw(shapes(max_dims=2, min_side=1, max_side=3))
    x = draw(specs(shape=(n, c, *extra)), label="logits")
    ignore_index = draw(st.sampled_from([-100, -1, c + 2]) if ignore else st.just(-100))
    choices = st.integers(0, c - 1) | st.just(ignore_index) if ignore else st.integers(0, c - 1)
    size = n * math.prod(extra)
    targets = draw(st.lists(choices, min_size=size, max_size=size), label="targets")
    weights = draw(st.none() | st.lists(st.floats(0.1, 5.0), min_size=c, max_size=c), label="weights")
    return x, targets, weights, ignore_index


def unpack(case, dtype, device):
    x, targets, weights, ignore_index = case
    logits = x.build(dtype=dtype, device=device)
    y = torch.tensor(targets, device=device).view(logits.shape[:1] + logits.shape[2:])
    w = torch.tensor(weights, dtype=dtype, device=device) if weights is not None else None
    return logits, y, w, ignore_index


def reference_terms(logp, y, w, ignore_index):
    """-weight[y] * logp[n, y] and weight[y] per target, 0 where ignored (float64, CPU)."""
    logp, y = logp.double().cpu(), y.cpu()
    c = logp.shape[1]
    weight = w.double().cpu() if w is not None else torch.ones(c, dtype=torch.float64)
    kept = y != ignore_index
    safe = torch.where(kept, y, 0)
    picked = logp.movedim(1, -1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    wy = torch.where(kept, weight[safe], 0.0)
    return -wy * picked, wy


@pytest.mark.behaviour("losses.nll_none")
@pytest.mark.dtypes("float32_64")
@given(case=classification())
def test_nll_none_is_minus_weighted_pick(device, dtype, case):
    logits, y, w, ignore = unpack(case, dtype, device)
    logp = F.log_softmax(logits, 1)
    out = F.nll_loss(logp, y, weight=w, ignore_index=ignore, reduction="none")
    terms, _ = reference_terms(logp, y, w, ignore)
    assert out.shape == y.shape
    assert_close_to_reference(out, terms)


@pytest.mark.behaviour("losses.nll_sum")
@pytest.mark.dtypes("float32_64")
@given(case=classification())
def test_nll_sum_adds_the_terms(device, dtype, case):
    logits, y, w, ignore = unpack(case, dtype, device)
    logp = F.log_softmax(logits, 1)
    out = F.nll_loss(logp, y, weight=w, ignore_index=ignore, reduction="sum")
    terms, _ = reference_terms(logp, y, w, ignore)
    assert_close_to_reference(out, terms.sum())


@pytest.mark.behaviour("losses.nll_mean_weighted")
@pytest.mark.dtypes("float32_64")
@given(case=classification())
def test_nll_mean_divides_by_the_weights_of_the_targets(device, dtype, case):
    logits, y, w, ignore = unpack(case, dtype, device)
    logp = F.log_softmax(logits, 1)
    terms, wy = reference_terms(logp, y, w, ignore)
    if wy.sum() == 0:
        return  # every target ignored: see losses.nll_all_ignored_observed
    out = torch.nn.NLLLoss(weight=w, ignore_index=ignore)(logp, y)
    assert_close_to_reference(out, terms.sum() / wy.sum())


@pytest.mark.behaviour("losses.nll_ignore_index")
@pytest.mark.dtypes("float32_64")
@given(case=classification())
def test_ignored_targets_contribute_nothing(device, dtype, case):
    logits, y, w, ignore = unpack(case, dtype, device)
    logp = F.log_softmax(logits, 1)
    kept = y != ignore
    none = F.nll_loss(logp, y, weight=w, ignore_index=ignore, reduction="none")
    assert bool((none[~kept] == 0).all()), "an ignored target contributed to the loss"
    if kept.any():  # ignoring a target is the same as leaving its sample out
        flat_logp = logp.movedim(1, -1)[kept]
        expected = F.nll_loss(flat_logp, y[kept], weight=w)
        assert_close(F.nll_loss(logp, y, weight=w, ignore_index=ignore), expected)


@pytest.mark.behaviour("losses.nll_worked_example")
def test_nll_worked_example(device):
    a = torch.tensor([[1., 2, 3], [4, 5, 6], [7, 8, 9]], device=device)
    target = torch.tensor([0, 1, 2], device=device)
    weight = torch.tensor([0.2, 0.4, 1.0], device=device)
    log_prob = F.log_softmax(a, 1)
    none = torch.nn.NLLLoss(weight=weight, reduction="none")(log_prob, target)
    assert_close(none.cpu(), torch.tensor([0.4815, 0.5630, 0.4076]), atol=1e-4, rtol=0)
    assert_close(torch.nn.NLLLoss(weight=weight)(log_prob, target).cpu(), torch.tensor(0.9076),
                 atol=1e-4, rtol=0)


@pytest.mark.behaviour("losses.nll_all_ignored_observed")
@pytest.mark.dtypes("float32")
@given(n=st.integers(1, 5), c=st.integers(1, 4))
def test_nll_with_every_target_ignored(device, dtype, n, c, record_observation):
    logp = torch.zeros(n, c, dtype=dtype, device=device)
    y = torch.full((n,), -100, device=device)
    assert F.nll_loss(logp, y, reduction="sum").item() == 0
    mean = F.nll_loss(logp, y, reduction="mean")
    assert mean.shape == () and (math.isnan(mean.item()) or mean.item() == 0)
    record_observation("mean with every target ignored", "nan" if math.isnan(mean.item()) else "0")


@pytest.mark.behaviour("losses.ce_equals_nll_log_softmax")
@pytest.mark.dtypes("float32_64")
@given(case=classification(), reduction=st.sampled_from(["none", "sum", "mean"]))
def test_cross_entropy_is_nll_of_log_softmax(device, dtype, case, reduction):
    logits, y, w, ignore = unpack(case, dtype, device)
    if reduction == "mean" and not (y != ignore).any():
        return  # every target ignored: see losses.nll_all_ignored_observed
    ce = torch.nn.CrossEntropyLoss(weight=w, ignore_index=ignore, reduction=reduction)(logits, y)
    nll = torch.nn.NLLLoss(weight=w, ignore_index=ignore, reduction=reduction)(F.log_softmax(logits, 1), y)
    assert_close(ce, nll)


@pytest.mark.behaviour("losses.ce_probability_targets")
@pytest.mark.dtypes("float32_64")
@given(case=classification(ignore=False), data=st.data())
def test_cross_entropy_with_probability_targets(device, dtype, case, data):
    logits, _, w, _ = unpack(case, dtype, device)
    p = F.softmax(data.draw(specs(shape=case[0].shape), label="target_logits")
                  .build(dtype=dtype, device=device), 1)
    weight = (w if w is not None else torch.ones(logits.shape[1], dtype=dtype, device=device)).double().cpu()
    shape = [1, -1] + [1] * (logits.dim() - 2)
    per_sample = -(weight.view(shape) * p.double().cpu() * F.log_softmax(logits.double().cpu(), 1)).sum(1)
    expected = {"none": per_sample, "sum": per_sample.sum(), "mean": per_sample.sum() / per_sample.numel()}
    for reduction, reference in expected.items():
        assert_close_to_reference(F.cross_entropy(logits, p, weight=w, reduction=reduction), reference)


@pytest.mark.behaviour("losses.ce_label_smoothing")
@pytest.mark.dtypes("float32_64")
@given(case=classification(ignore=False), eps=st.floats(0.0, 1.0))
def test_cross_entropy_label_smoothing(device, dtype, case, eps):
    logits, y, _, _ = unpack(case, dtype, device)
    out = F.cross_entropy(logits, y, label_smoothing=eps)
    logp = F.log_softmax(logits.double().cpu(), 1)
    nll = F.nll_loss(logp, y.cpu(), reduction="none")
    uniform = -logp.mean(1)
    assert_close_to_reference(out, ((1 - eps) * nll + eps * uniform).mean())


@pytest.mark.behaviour("losses.mse_reductions")
@pytest.mark.dtypes("floating")
@given(a=specs(), data=st.data())
def test_mse_reductions(device, dtype, a, data):
    b = data.draw(specs(shape=a.shape), label="b")
    x, y = a.build(dtype=dtype, device=device), b.build(dtype=dtype, device=device)
    sq = (x.double() - y.double()) ** 2
    assert_close(torch.nn.MSELoss(reduction="none")(x, y).double(), sq, **_tol(dtype))
    assert_close(torch.nn.MSELoss(reduction="sum")(x, y).double(), sq.sum(), **_tol(dtype))
    if a.numel:
        assert_close(torch.nn.MSELoss()(x, y).double(), sq.sum() / a.numel, **_tol(dtype))


def _tol(dtype):
    """Tolerance for a result computed in `dtype` against an exact float64 reference: the
    difference and the square each round once, so allow 4 ulps of the input dtype."""
    eps = torch.finfo(dtype).eps
    return dict(rtol=4 * eps, atol=4 * eps)


@st.composite
def distributions(draw, min_dims=1):
    """Two specs of logits with the same shape; softmax along the last dim gives q and p."""
    shape = draw(shapes(min_dims=min_dims, min_side=1))
    return draw(specs(shape=shape), label="q"), draw(specs(shape=shape), label="p")


@pytest.mark.behaviour("losses.kl_div_definition")
@pytest.mark.dtypes("float32_64")
@given(pair=distributions())
def test_kl_div_is_p_times_log_p_over_q(device, dtype, pair):
    log_q = F.log_softmax(pair[0].build(dtype=dtype, device=device), -1)
    p = F.softmax(pair[1].build(dtype=dtype, device=device), -1)
    pointwise = p * (p.log() - log_q)
    assert_close(F.kl_div(log_q, p, reduction="none"), pointwise)
    assert_close(F.kl_div(log_q, p, reduction="sum"), pointwise.sum())


@pytest.mark.behaviour("losses.kl_div_log_target")
@pytest.mark.dtypes("float32_64")
@given(pair=distributions(), reduction=st.sampled_from(["none", "sum", "mean", "batchmean"]))
def test_kl_div_log_target(device, dtype, pair, reduction):
    log_q = F.log_softmax(pair[0].build(dtype=dtype, device=device), -1)
    log_p = F.log_softmax(pair[1].build(dtype=dtype, device=device), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 'mean' warns that it differs from 'batchmean'
        assert_close(F.kl_div(log_q, log_p, reduction=reduction, log_target=True),
                     F.kl_div(log_q, log_p.exp(), reduction=reduction))


@pytest.mark.behaviour("losses.kl_div_batchmean")
@pytest.mark.dtypes("float32_64")
@given(pair=distributions(min_dims=2))
def test_kl_div_batchmean_divides_by_batch_size(device, dtype, pair):
    log_q = F.log_softmax(pair[0].build(dtype=dtype, device=device), -1)
    p = F.softmax(pair[1].build(dtype=dtype, device=device), -1)
    total = F.kl_div(log_q, p, reduction="sum")
    assert_close(torch.nn.KLDivLoss(reduction="batchmean")(log_q, p), total / log_q.shape[0])
    with pytest.warns(UserWarning, match="batchmean"):  # torch points users to 'batchmean'
        mean = torch.nn.KLDivLoss(reduction="mean")(log_q, p)
    assert_close(mean, total / log_q.numel())
