"""Losses: NLLLoss and CrossEntropyLoss reductions with class weights, MSE and KL divergence."""

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.testing import assert_close

from conformance.checks import assert_close_to_reference
from conformance.harness.declaration import Operation
from conformance.tolerances import tolerance
from strategies import specs
from strategies.samples import Sample, option_grid
from strategies.shapes import shapes
from strategies.tensors import label


@st.composite
def classification(draw, *, ignore: bool = True):
    """(spec of logits, targets, weights, ignore_index), in each input shape the loss documents:
    (C) unbatched, (N, C), and (N, C, d1, ..., dK). The batch and the extra dims are not empty:
    'mean' over no target has no value (losses.nll_all_ignored_observed)."""
    c = draw(st.integers(1, 5))
    if draw(st.booleans(), label="unbatched"):
        n, extra, shape = 1, (), (c,)
    else:
        n, extra = draw(st.integers(1, 6)), draw(shapes(max_dims=2, min_side=1, max_side=3))  # not empty: see above
        shape = (n, c, *extra)
    label(f"input=({'C' if len(shape) == 1 else 'N, C' + ', d' * len(extra)})")
    x = draw(specs(shape=shape, magnitudes=True), label="logits")
    ignore_index = draw(st.sampled_from([-100, -1, c + 2]) if ignore else st.just(-100))
    choices = st.integers(0, c - 1) | st.just(ignore_index) if ignore else st.integers(0, c - 1)
    size = n * math.prod(extra)
    targets = draw(st.lists(choices, min_size=size, max_size=size), label="targets")
    weights = draw(st.none() | st.lists(st.floats(0.1, 5.0), min_size=c, max_size=c), label="weights")
    return x, targets, weights, ignore_index


def class_dim(logits: torch.Tensor) -> int:
    """The documented class dimension: 0 for unbatched (C) input, 1 otherwise."""
    return 0 if logits.dim() == 1 else 1


def unpack(case, dtype, device):
    """(logits, targets, weights, ignore_index) as tensors from a classification() draw."""
    x, targets, weights, ignore_index = case[:4]
    return tensors_of(x.build(dtype=dtype, device=device), targets, weights, ignore_index)


def tensors_of(logits, targets, weights, ignore_index):
    y = torch.tensor(targets, device=logits.device).view(logits.shape[:1] + logits.shape[2:] if logits.dim() > 1 else ())
    w = torch.tensor(weights, dtype=logits.dtype, device=logits.device) if weights is not None else None
    return logits, y, w, ignore_index


def one_target_kept(case):
    """The 'mean' of a batch whose every target is ignored is device-dependent (see
    losses.nll_all_ignored_observed): keep the first target when the draw ignored them all."""
    x, targets, weights, ignore = case
    if all(t == ignore for t in targets):
        targets = [0, *targets[1:]]
    return x, targets, weights, ignore


def nll_of_log_softmax(logits, targets, weights, ignore_index, reduction):
    logits, y, w, ignore = tensors_of(logits, targets, weights, ignore_index)
    return F.nll_loss(F.log_softmax(logits, class_dim(logits)), y, weight=w, ignore_index=ignore, reduction=reduction)


def nll_operation(behaviour, reduction, cases):
    return Operation(
        behaviour,
        dtypes="float32_64",
        samples=cases.map(Sample),
        call=lambda *case: nll_of_log_softmax(*case, reduction=reduction),
    )


NLL_NONE = nll_operation("losses.nll_none", "none", classification())
NLL_SUM = nll_operation("losses.nll_sum", "sum", classification())
NLL_MEAN = nll_operation("losses.nll_mean_weighted", "mean", classification().map(one_target_kept))


def cross_entropy(logits, targets, weights, ignore_index, reduction):
    logits, y, w, ignore = tensors_of(logits, targets, weights, ignore_index)
    return F.cross_entropy(logits, y, weight=w, ignore_index=ignore, reduction=reduction)


@st.composite
def cross_entropy_samples(draw):
    case = draw(classification())  # with and without class weights, ignore_index among the targets or not
    options = draw(option_grid(reduction=["none", "sum", "mean"]), label="options")
    return Sample(one_target_kept(case) if options["reduction"] == "mean" else case, options)


CROSS_ENTROPY = Operation(
    "losses.ce_equals_nll_log_softmax",
    dtypes="float32_64",
    samples=cross_entropy_samples(),
    call=lambda *a, **k: cross_entropy(*a, **k),
)


def cross_entropy_of_probabilities(logits, targets, weights, ignore_index, target_logits):
    logits, _, w, _ = tensors_of(logits, targets, weights, ignore_index)
    p = F.softmax(target_logits, class_dim(target_logits))
    return tuple(F.cross_entropy(logits, p, weight=w, reduction=r) for r in ("none", "sum", "mean"))


@st.composite
def probability_target_samples(draw):
    case = draw(classification(ignore=False))
    return Sample((*case, draw(specs(shape=case[0].shape), label="target_logits")))


CE_PROBABILITIES = Operation(
    "losses.ce_probability_targets",
    dtypes="float32_64",
    samples=probability_target_samples(),
    call=lambda *a: cross_entropy_of_probabilities(*a),
)


def reference_terms(logp, y, w, ignore_index):
    """-weight[y] * logp[n, y] and weight[y] per target, 0 where ignored (float64, CPU)."""
    if logp.dim() == 1:  # unbatched (C): one sample
        terms, wy = reference_terms(logp.unsqueeze(0), y.unsqueeze(0), w, ignore_index)
        return terms[0], wy[0]
    logp, y = logp.double().cpu(), y.cpu()
    c = logp.shape[1]
    weight = w.double().cpu() if w is not None else torch.ones(c, dtype=torch.float64)
    kept = y != ignore_index
    safe = torch.where(kept, y, 0)
    picked = logp.movedim(1, -1).gather(-1, safe.unsqueeze(-1)).squeeze(-1)
    wy = torch.where(kept, weight[safe], 0.0)
    return -wy * picked, wy


@NLL_NONE.property
def test_nll_none_is_minus_weighted_pick(device, dtype, sample):
    logits, y, w, ignore = unpack(sample.args, dtype, device)
    logp = F.log_softmax(logits, class_dim(logits))
    out = NLL_NONE(sample, dtype=dtype, device=device)
    terms, _ = reference_terms(logp, y, w, ignore)
    assert out.shape == y.shape
    assert_close_to_reference(out, terms)
    # The formula picks -weight[y] * input[n, y] whatever the input holds: log-probabilities are
    # what the loss is meant for, not a condition of the formula (the study notes feed raw scores).
    raw = F.nll_loss(logits, y, weight=w, ignore_index=ignore, reduction="none")
    assert_close_to_reference(raw, reference_terms(logits, y, w, ignore)[0])


@NLL_SUM.property
def test_nll_sum_adds_the_terms(device, dtype, sample):
    logits, y, w, ignore = unpack(sample.args, dtype, device)
    out = NLL_SUM(sample, dtype=dtype, device=device)
    terms, _ = reference_terms(F.log_softmax(logits, class_dim(logits)), y, w, ignore)
    assert_close_to_reference(out, terms.sum())


@NLL_MEAN.property
def test_nll_mean_divides_by_the_weights_of_the_targets(device, dtype, sample):
    logits, y, w, ignore = unpack(sample.args, dtype, device)
    logp = F.log_softmax(logits, class_dim(logits))
    terms, wy = reference_terms(logp, y, w, ignore)
    assert_close_to_reference(NLL_MEAN(sample, dtype=dtype, device=device), terms.sum() / wy.sum())
    assert_close_to_reference(torch.nn.NLLLoss(weight=w, ignore_index=ignore)(logp, y), terms.sum() / wy.sum())


@pytest.mark.behaviour("losses.nll_ignore_index")
@pytest.mark.dtypes("float32_64")
@given(case=classification())
def test_ignored_targets_contribute_nothing(device, dtype, case):
    logits, y, w, ignore = unpack(case, dtype, device)
    logp = F.log_softmax(logits, class_dim(logits))
    kept = y != ignore
    none = F.nll_loss(logp, y, weight=w, ignore_index=ignore, reduction="none")
    assert bool((none[~kept] == 0).all()), "an ignored target contributed to the loss"
    if kept.any():  # ignoring a target is the same as leaving its sample out
        flat_logp = logp.movedim(class_dim(logp), -1)[kept]
        expected = F.nll_loss(flat_logp, y[kept], weight=w)
        assert_close(F.nll_loss(logp, y, weight=w, ignore_index=ignore), expected)


@pytest.mark.behaviour("losses.nll_worked_example")
def test_nll_worked_example(device):
    a = torch.tensor([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]], device=device)
    target = torch.tensor([0, 1, 2], device=device)
    weight = torch.tensor([0.2, 0.4, 1.0], device=device)
    log_prob = F.log_softmax(a, 1)
    none = torch.nn.NLLLoss(weight=weight, reduction="none")(log_prob, target)
    four_decimals = tolerance("four_decimals", torch.float32)  # the figures are printed to four decimals
    assert_close(none.cpu(), torch.tensor([0.4815, 0.5630, 0.4076]), **four_decimals)
    assert_close(torch.nn.NLLLoss(weight=weight)(log_prob, target).cpu(), torch.tensor(0.9076), **four_decimals)


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


@CROSS_ENTROPY.property
def test_cross_entropy_is_nll_of_log_softmax(device, dtype, sample):
    logits, y, w, ignore = unpack(sample.args, dtype, device)
    reduction = sample.kwargs["reduction"]
    nll = torch.nn.NLLLoss(weight=w, ignore_index=ignore, reduction=reduction)(F.log_softmax(logits, class_dim(logits)), y)
    assert_close(CROSS_ENTROPY(sample, dtype=dtype, device=device), nll)
    assert_close(torch.nn.CrossEntropyLoss(weight=w, ignore_index=ignore, reduction=reduction)(logits, y), nll)


@CE_PROBABILITIES.property
def test_cross_entropy_with_probability_targets(device, dtype, sample):
    logits, _, w, _ = unpack(sample.args, dtype, device)
    k = class_dim(logits)
    p = F.softmax(sample.args[4].build(dtype=dtype, device=device), k)
    weight = (w if w is not None else torch.ones(logits.shape[k], dtype=dtype, device=device)).double().cpu()
    shape = [1] * k + [-1] + [1] * (logits.dim() - k - 1)
    per_sample = -(weight.view(shape) * p.double().cpu() * F.log_softmax(logits.double().cpu(), k)).sum(k)
    expected = (per_sample, per_sample.sum(), per_sample.sum() / per_sample.numel())
    for actual, reference in zip(CE_PROBABILITIES(sample, dtype=dtype, device=device), expected):
        assert_close_to_reference(actual, reference)


@pytest.mark.behaviour("losses.ce_label_smoothing")
@pytest.mark.dtypes("float32_64")
@given(case=classification(ignore=False), eps=st.floats(0.0, 1.0))
def test_cross_entropy_label_smoothing(device, dtype, case, eps):
    logits, y, _, _ = unpack(case, dtype, device)
    out = F.cross_entropy(logits, y, label_smoothing=eps)
    logp = F.log_softmax(logits.double().cpu(), class_dim(logits))
    nll = F.nll_loss(logp, y.cpu(), reduction="none")
    uniform = -logp.mean(class_dim(logits))
    assert_close_to_reference(out, ((1 - eps) * nll + eps * uniform).mean())


@st.composite
def same_shape_pairs(draw):
    a = draw(specs(magnitudes=True), label="input")
    return Sample((a, draw(specs(shape=a.shape, magnitudes=True), label="target")))


MSE = Operation(
    "losses.mse_reductions",
    dtypes="floating",
    samples=same_shape_pairs(),
    call=lambda x, y: tuple(torch.nn.MSELoss(reduction=r)(x, y) for r in ("none", "sum", "mean")),
)


@MSE.property
def test_mse_reductions(device, dtype, sample):
    x, y = (spec.build(dtype=dtype, device=device) for spec in sample.args)
    none, total, mean = MSE(sample, dtype=dtype, device=device)
    sq = (x.double() - y.double()) ** 2
    tol = tolerance("two_roundings", dtype)
    assert_close(none.double(), sq, **tol)
    assert_close(total.double(), sq.sum(), **tol)
    if x.numel():
        assert_close(mean.double(), sq.sum() / x.numel(), **tol)


@st.composite
def distributions(draw, min_dims=1):  # softmax along the last dim: one at least
    """Sample(q, p): two specs of logits with the same shape; softmax along the last dim gives
    the distributions q and p."""
    # non-empty: 'mean' and 'batchmean' of no element have no value
    shape = draw(shapes(min_dims=min_dims, min_side=1))
    return Sample((draw(specs(shape=shape, magnitudes=True), label="q"), draw(specs(shape=shape, magnitudes=True), label="p")))


def kl_div(q_logits, p_logits, **kwargs):
    """F.kl_div of log q against p (or log p, with log_target=True)."""
    log_p = F.log_softmax(p_logits, -1)
    return F.kl_div(F.log_softmax(q_logits, -1), log_p if kwargs.get("log_target") else log_p.exp(), **kwargs)


KL_DIV = Operation(
    "losses.kl_div_definition",
    dtypes="float32_64",
    samples=distributions(),
    call=lambda q, p: (kl_div(q, p, reduction="none"), kl_div(q, p, reduction="sum")),
)


@KL_DIV.property
def test_kl_div_is_p_times_log_p_over_q(device, dtype, sample):
    log_q, log_p = (F.log_softmax(spec.build(dtype=dtype, device=device), -1) for spec in sample.args)
    pointwise = log_p.exp() * (log_p - log_q)
    none, total = KL_DIV(sample, dtype=dtype, device=device)
    assert_close(none, pointwise)
    assert_close(total, pointwise.sum())


REDUCTIONS = st.sampled_from(["none", "sum", "mean", "batchmean"])
KL_DIV_LOG_TARGET = Operation(
    "losses.kl_div_log_target",
    dtypes="float32_64",
    samples=st.builds(lambda s, r: Sample(s.args, {"reduction": r}), distributions(), REDUCTIONS),
    call=lambda q, p, reduction: kl_div(q, p, reduction=reduction, log_target=True),
)
KL_DIV_BATCHMEAN = Operation(
    "losses.kl_div_batchmean",
    dtypes="float32_64",
    samples=distributions(min_dims=2),  # batchmean divides by the batch size: a batch dim and another
    call=lambda q, p: kl_div(q, p, reduction="batchmean"),
)


@KL_DIV_LOG_TARGET.property
def test_kl_div_log_target(device, dtype, sample):
    q, p = sample.args
    expected = kl_div(
        q.build(dtype=dtype, device=device), p.build(dtype=dtype, device=device), reduction=sample.kwargs["reduction"]
    )
    assert_close(KL_DIV_LOG_TARGET(sample, dtype=dtype, device=device), expected)


@KL_DIV_BATCHMEAN.property
def test_kl_div_batchmean_divides_by_batch_size(device, dtype, sample):
    log_q, p = (F.log_softmax(spec.build(dtype=dtype, device=device), -1) for spec in sample.args)
    p = p.exp()
    total = F.kl_div(log_q, p, reduction="sum")
    assert_close(KL_DIV_BATCHMEAN(sample, dtype=dtype, device=device), total / log_q.shape[0])
    assert_close(torch.nn.KLDivLoss(reduction="batchmean")(log_q, p), total / log_q.shape[0])
    with pytest.warns(UserWarning, match="batchmean"):  # torch points users to 'batchmean'
        mean = torch.nn.KLDivLoss(reduction="mean")(log_q, p)
    assert_close(mean, total / log_q.numel())
