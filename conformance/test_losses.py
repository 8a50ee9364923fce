"""Losses: NLLLoss and CrossEntropyLoss reductions with class weights, MSE and KL divergence."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch.testing import assert_close

from conformance.checks import assert_close_to_reference, assert_equal, independent_array
from conformance.harness.declaration import Operation
from conformance.harness.releases import torch_at_least
from conformance.tolerances import tolerance
from strategies import specs
from strategies.samples import Sample, call_forms, option_grid
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
    given = {} if ignore == -100 else {"ignore_index": ignore}  # -100: the default, left out
    return F.cross_entropy(logits, y, weight=w, reduction=reduction, **given)


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


def integer_case(logits, targets, weights, ignore_index, dtype):
    """The same case on integer-valued inputs in [-9, 0] and integer class weights in [1, 5]: the
    terms -weight[y] * x[n, y] are then integers, so their sum and its division by the summed
    weights are decided exactly (the sum exact, the division rounded once in `dtype`)."""
    x = logits.detach().cpu().double().nan_to_num(0.0).round().clamp(-9, 0).to(dtype).to(logits.device)
    w = [float(min(5, max(1, round(v)))) for v in weights] if weights is not None else None
    return tensors_of(x, targets, w, ignore_index)


def exact_quotient(total, weight, dtype):
    """total / weight, two exact integers, divided once in `dtype` (IEEE 754's correctly rounded division)."""
    kind = {torch.float32: np.float32, torch.float64: np.float64}[dtype]
    return torch.tensor(float(kind(total) / kind(weight)), dtype=dtype)


@NLL_NONE.property
def test_nll_none_is_minus_weighted_pick(device, dtype, sample):
    logits, y, w, ignore = unpack(sample.args, dtype, device)
    logp = F.log_softmax(logits, class_dim(logits))
    out = NLL_NONE(sample, dtype=dtype, device=device)
    terms, _ = reference_terms(logp, y, w, ignore)
    assert out.shape == y.shape, f"nll_loss 'none': shape {tuple(out.shape)}, not the target's {tuple(y.shape)}"
    assert out.dtype == dtype, f"nll_loss 'none' gave {out.dtype}, not the input's {dtype}"
    # -weight[y] * x[n, y] is one product, rounded once in the dtype (exact for no weight): exactly
    assert_equal(out.cpu(), terms.to(dtype), "nll_loss 'none' is not -weight[y_n] * x[n, y_n], rounded once")
    # The formula picks -weight[y] * input[n, y] whatever the input holds: log-probabilities are
    # what the loss is meant for, not a condition of the formula (the study notes feed raw scores).
    for form, loss in (
        ("F.nll_loss", lambda x: F.nll_loss(x, y, weight=w, ignore_index=ignore, reduction="none")),
        ("nn.NLLLoss", lambda x: torch.nn.NLLLoss(weight=w, ignore_index=ignore, reduction="none")(x, y)),
    ):
        raw = loss(logits)
        assert raw.dtype == dtype, f"{form} 'none' gave {raw.dtype}, not the input's {dtype}"
        assert_equal(raw.cpu(), reference_terms(logits, y, w, ignore)[0].to(dtype), f"{form} 'none' of raw scores")


@NLL_SUM.property
def test_nll_sum_adds_the_terms(device, dtype, sample):
    logits, y, w, ignore = unpack(sample.args, dtype, device)
    logp = F.log_softmax(logits, class_dim(logits))
    terms, _ = reference_terms(logp, y, w, ignore)
    for form, out in (
        ("F.nll_loss", NLL_SUM(sample, dtype=dtype, device=device)),
        ("nn.NLLLoss", torch.nn.NLLLoss(weight=w, ignore_index=ignore, reduction="sum")(logp, y)),
    ):
        assert out.shape == () and out.dtype == dtype, f"{form} 'sum': not a 0-d {dtype} tensor"
        assert_close_to_reference(out, terms.sum(), msg=lambda m, form=form: f"{form} 'sum' is not the sum of the terms\n{m}")
    # on integer terms the sum is exact
    x, yi, wi, _ = integer_case(logits, *sample.args[1:], dtype)
    exact = reference_terms(x, yi, wi, ignore)[0].sum()
    for form, loss in (
        ("F.nll_loss", lambda: F.nll_loss(x, yi, weight=wi, ignore_index=ignore, reduction="sum")),
        ("nn.NLLLoss", lambda: torch.nn.NLLLoss(weight=wi, ignore_index=ignore, reduction="sum")(x, yi)),
    ):
        assert_equal(loss().cpu(), exact.to(dtype), f"{form} 'sum' of integer terms is not their exact sum")


@NLL_MEAN.property
def test_nll_mean_divides_by_the_weights_of_the_targets(device, dtype, sample):
    logits, y, w, ignore = unpack(sample.args, dtype, device)
    logp = F.log_softmax(logits, class_dim(logits))
    terms, wy = reference_terms(logp, y, w, ignore)
    for form, out in (
        ("F.nll_loss", NLL_MEAN(sample, dtype=dtype, device=device)),
        ("nn.NLLLoss, reduction left out", torch.nn.NLLLoss(weight=w, ignore_index=ignore)(logp, y)),
    ):
        assert out.shape == () and out.dtype == dtype, f"{form} 'mean': not a 0-d {dtype} tensor"
        assert_close_to_reference(
            out, terms.sum() / wy.sum(), msg=lambda m, form=form: f"{form} 'mean' is not sum / sum of weight[y_n]\n{m}"
        )
    # on integer terms and weights: the exact sum over the exact summed weights, divided once
    x, yi, wi, _ = integer_case(logits, *sample.args[1:], dtype)
    terms, wy = reference_terms(x, yi, wi, ignore)
    exact = exact_quotient(terms.sum().item(), wy.sum().item(), dtype)
    for form, loss in (
        ("F.nll_loss", lambda: F.nll_loss(x, yi, weight=wi, ignore_index=ignore)),
        ("nn.NLLLoss, reduction left out", lambda: torch.nn.NLLLoss(weight=wi, ignore_index=ignore)(x, yi)),
    ):
        assert_equal(loss().cpu(), exact, f"{form} 'mean' of integer terms is not the exact sum / summed weights")


def nll_with_ignored(logits, targets, weights, ignore_index):
    """'none' and 'mean' of log_softmax(logits); ignore_index -100 is left out (its default)."""
    logits, y, w, ignore = tensors_of(logits, targets, weights, ignore_index)
    kwargs = {} if ignore == -100 else {"ignore_index": ignore}  # -100: the default, left out
    logp = F.log_softmax(logits, class_dim(logits))
    return F.nll_loss(logp, y, weight=w, reduction="none", **kwargs), F.nll_loss(logp, y, weight=w, **kwargs)


NLL_IGNORE = Operation(
    "losses.nll_ignore_index",
    dtypes="float32_64",
    # one target kept: 'mean' over no target has no documented value (losses.nll_all_ignored_observed)
    samples=classification().map(one_target_kept).map(Sample),
    call=lambda *case: nll_with_ignored(*case),
)


@NLL_IGNORE.property
def test_ignored_targets_contribute_nothing(device, dtype, sample):
    logits, y, w, ignore = unpack(sample.args, dtype, device)
    logp = F.log_softmax(logits, class_dim(logits))
    kept = (y != ignore).cpu()
    none, mean = NLL_IGNORE(sample, dtype=dtype, device=device)
    assert none.dtype == dtype and mean.dtype == dtype, f"nll_loss gave {none.dtype} and {mean.dtype}, not the input's {dtype}"
    assert bool((none.cpu()[~kept] == 0).all()), "an ignored target contributed to the loss"
    terms, wy = reference_terms(logp, y, w, ignore)
    assert_close_to_reference(
        mean, terms[kept].sum() / wy[kept].sum(), msg=lambda m: f"an ignored target counted in the 'mean'\n{m}"
    )
    # ignoring a target is the same as leaving its sample out
    flat_logp = logp.movedim(class_dim(logp), -1)[kept.to(logp.device)]
    left_out = F.nll_loss(flat_logp, y[kept.to(y.device)], weight=w)
    assert_close(mean, left_out, msg=lambda m: f"ignoring a target is not leaving its sample out\n{m}")
    # on integer terms and weights, exactly: the kept terms' exact sum over their exact summed weights
    x, yi, wi, _ = integer_case(logits, *sample.args[1:], dtype)
    terms, wy = reference_terms(x, yi, wi, ignore)
    exact = exact_quotient(terms[kept].sum().item(), wy[kept].sum().item(), dtype)
    given = {} if ignore == -100 else {"ignore_index": ignore}
    assert_equal(
        F.nll_loss(x, yi, weight=wi, reduction="none", **given).cpu(), terms.to(dtype), "an ignored target's term is not 0"
    )
    for form, loss in (
        ("F.nll_loss", lambda: F.nll_loss(x, yi, weight=wi, **given)),
        ("nn.NLLLoss (ignore_index -100 left out: the default)", lambda: torch.nn.NLLLoss(weight=wi, **given)(x, yi)),
    ):
        assert_equal(loss().cpu(), exact, f"{form}: an ignored target counted in the exact 'mean' of integer terms")


@pytest.mark.behaviour("losses.nll_worked_example")
def test_nll_worked_example(device):
    a = torch.tensor([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]], device=device)
    target = torch.tensor([0, 1, 2], device=device)
    weight = torch.tensor([0.2, 0.4, 1.0], device=device)
    log_prob = F.log_softmax(a, 1)
    none = torch.nn.NLLLoss(weight=weight, reduction="none")(log_prob, target)
    four_decimals = tolerance("four_decimals", torch.float32)  # the figures are printed to four decimals
    assert_close(none.cpu(), torch.tensor([0.4815, 0.5630, 0.4076]), **four_decimals, msg="the 'none' losses")
    mean = torch.nn.NLLLoss(weight=weight)(log_prob, target).cpu()
    assert_close(mean, torch.tensor(0.9076), **four_decimals, msg="the 'mean'")


def nll_sum_all_ignored(logits):
    """nll_loss 'sum' of log_softmax(logits) with every target ignored (the default -100)."""
    y = torch.full(logits.shape[:1], -100, device=logits.device)
    return F.nll_loss(F.log_softmax(logits, 1), y, reduction="sum")


NLL_ALL_IGNORED = Operation(
    "losses.nll_all_ignored_observed",
    dtypes="float32",
    samples=st.builds(lambda s: Sample((s,)), specs(shapes=st.tuples(st.integers(1, 5), st.integers(1, 4)), magnitudes=True)),
    call=lambda logits: nll_sum_all_ignored(logits),
)


@NLL_ALL_IGNORED.property
def test_nll_with_every_target_ignored(device, dtype, sample, record_observation):
    (x,) = sample.args
    total = NLL_ALL_IGNORED(sample, dtype=dtype, device=device)
    logp = F.log_softmax(x.build(dtype=dtype, device=device), 1)
    ignored = torch.full(x.shape[:1], -100, device=device)
    module = torch.nn.NLLLoss(reduction="sum")(logp, ignored)
    for form, out in (("F.nll_loss", total), ("nn.NLLLoss", module)):
        assert out.shape == () and out.dtype == dtype, f"{form} 'sum' with every target ignored: not a 0-d {dtype} tensor"
        assert out.item() == 0, f"{form} 'sum' with every target ignored is {out.item()}, not 0"
    mean = F.nll_loss(logp, ignored)  # reduction left out: 'mean'
    assert_close(torch.nn.NLLLoss()(logp, ignored), mean, rtol=0, atol=0, equal_nan=True, msg="nn.NLLLoss and F.nll_loss differ")
    assert mean.shape == () and mean.dtype == dtype, f"'mean' with every target ignored: not a 0-d {dtype} tensor"
    assert mean.shape == () and (math.isnan(mean.item()) or mean.item() == 0), f"'mean' with every target ignored: {mean.item()}"
    record_observation("mean with every target ignored", "nan" if math.isnan(mean.item()) else "0")


@CROSS_ENTROPY.property
def test_cross_entropy_is_nll_of_log_softmax(device, dtype, sample):
    logits, y, w, ignore = unpack(sample.args, dtype, device)
    reduction = sample.kwargs["reduction"]
    logp = F.log_softmax(logits, class_dim(logits))
    # "equivalent to applying LogSoftmax on an input, followed by NLLLoss": the same values, exactly
    nll = torch.nn.NLLLoss(weight=w, ignore_index=ignore, reduction=reduction)(logp, y)
    for form, out in (
        ("F.cross_entropy", CROSS_ENTROPY(sample, dtype=dtype, device=device)),
        (
            "nn.CrossEntropyLoss (ignore_index -100 left out: the default)",
            torch.nn.CrossEntropyLoss(weight=w, reduction=reduction, **({} if ignore == -100 else {"ignore_index": ignore}))(
                logits, y
            ),
        ),
    ):
        assert out.dtype == dtype and out.shape == nll.shape, f"{form}: not NLLLoss's {dtype}{tuple(nll.shape)}"
        assert_equal(out, nll, f"{form} is not NLLLoss(log_softmax(x)) (reduction={reduction!r})")
        # and the formula, in float64 from the logits: -weight[y] log_softmax(x)[n, y], reduced
        terms, wy = reference_terms(F.log_softmax(logits.double().cpu(), class_dim(logits)), y, w, ignore)
        expected = {"none": terms, "sum": terms.sum(), "mean": terms.sum() / wy.sum()}[reduction]
        assert_close_to_reference(
            out, expected, msg=lambda m, form=form: f"{form} is not -weight[y] log_softmax(x)[y], reduced\n{m}"
        )


@CE_PROBABILITIES.property
def test_cross_entropy_with_probability_targets(device, dtype, sample):
    logits, _, w, _ = unpack(sample.args, dtype, device)
    k = class_dim(logits)
    p = F.softmax(sample.args[4].build(dtype=dtype, device=device), k)
    weight = (w if w is not None else torch.ones(logits.shape[k], dtype=dtype, device=device)).double().cpu()
    shape = [1] * k + [-1] + [1] * (logits.dim() - k - 1)
    per_sample = -(weight.view(shape) * p.double().cpu() * F.log_softmax(logits.double().cpu(), k)).sum(k)
    expected = {"none": per_sample, "sum": per_sample.sum(), "mean": per_sample.sum() / per_sample.numel()}
    functional = dict(zip(("none", "sum", "mean"), CE_PROBABILITIES(sample, dtype=dtype, device=device)))
    for reduction, reference in expected.items():
        module = torch.nn.CrossEntropyLoss(weight=w, **({} if reduction == "mean" else {"reduction": reduction}))(logits, p)
        for form, actual in (("F.cross_entropy", functional[reduction]), ("nn.CrossEntropyLoss", module)):
            what = f"{form} of probabilities, reduction={reduction!r}"
            assert actual.dtype == dtype and actual.shape == reference.shape, f"{what}: not {dtype}{tuple(reference.shape)}"
            assert_close_to_reference(
                actual, reference, msg=lambda m, what=what: f"{what}: not -sum_c w_c p_c log_softmax(x)_c\n{m}"
            )


def smoothed_cross_entropy(logits, targets, weights, ignore_index, eps):
    logits, y, _, _ = tensors_of(logits, targets, weights, ignore_index)
    return F.cross_entropy(logits, y, label_smoothing=eps)  # reduction left out: 'mean'


CE_SMOOTHING = Operation(
    "losses.ce_label_smoothing",
    dtypes="float32_64",
    samples=st.builds(lambda case, eps: Sample((*case, eps)), classification(ignore=False), st.floats(0.0, 1.0)),
    call=lambda *a: smoothed_cross_entropy(*a),
)


@CE_SMOOTHING.property
def test_cross_entropy_label_smoothing(device, dtype, sample):
    logits, y, _, _ = unpack(sample.args[:4], dtype, device)
    eps = sample.args[4]
    logp = F.log_softmax(logits.double().cpu(), class_dim(logits))
    nll = reference_terms(logp, y, None, -100)[0]
    uniform = -logp.mean(class_dim(logits))
    expected = ((1 - eps) * nll + eps * uniform).mean()
    for form, out in (
        ("F.cross_entropy", CE_SMOOTHING(sample, dtype=dtype, device=device)),
        ("nn.CrossEntropyLoss", torch.nn.CrossEntropyLoss(label_smoothing=eps)(logits, y)),
    ):
        assert out.shape == () and out.dtype == dtype, f"{form}(label_smoothing={eps}): not a 0-d {dtype} tensor"
        assert_close_to_reference(
            out, expected, msg=lambda m, form=form: f"{form}(label_smoothing={eps}) is not (1 - e) nll + e uniform\n{m}"
        )


@st.composite
def same_shape_pairs(draw):
    a = draw(specs(magnitudes=True), label="input")
    return Sample((a, draw(specs(shape=a.shape, magnitudes=True), label="target")))


# The two documented spellings of the loss, each called with every reduction and with it left out
# (None: its default 'mean'). Lambdas, so that torch is looked up when they run.
MSE_FORMS = {
    "nn.MSELoss": lambda x, y, r: torch.nn.MSELoss()(x, y) if r is None else torch.nn.MSELoss(reduction=r)(x, y),
    "F.mse_loss": lambda x, y, r: F.mse_loss(x, y) if r is None else F.mse_loss(x, y, reduction=r),
}


def mse_reductions(x, y, form):
    """'none', 'sum', 'mean' and the reduction left out, in one spelling of the loss."""
    return tuple(MSE_FORMS[form](x, y, r) for r in ("none", "sum", "mean", None))


# mse_loss has a bfloat16 CPU kernel from torch 2.6: "Extend CPU implementation of MSELoss to BF16",
# https://github.com/pytorch/pytorch/pull/139959 (merged 2024-11, after 2.5's release). torch 2.5.1
# raises RuntimeError '"mse_cpu" not implemented for 'BFloat16'' for every reduction on the CPU.
MSE_HAS_CPU_BFLOAT16 = torch_at_least("2.6")

MSE = Operation(
    "losses.mse_reductions",
    dtypes="floating",
    samples=st.builds(lambda s, form: Sample(s.args, {"form": form}), same_shape_pairs(), call_forms(MSE_FORMS)),
    call=lambda x, y, form: mse_reductions(x, y, form),
)


@MSE.property
def test_mse_reductions(device, dtype, sample):
    x, y = (spec.logical_values(dtype) for spec in sample.args)
    form = sample.kwargs["form"]
    if dtype == torch.bfloat16 and torch.device(device).type == "cpu" and not MSE_HAS_CPU_BFLOAT16:
        with pytest.raises(RuntimeError, match="not implemented for 'BFloat16'"):  # no kernel yet (above)
            MSE(sample, dtype=dtype, device=device)
        return
    none, total, mean, default = MSE(sample, dtype=dtype, device=device)
    for name, out, shape in (("none", none, x.shape), ("sum", total, ()), ("mean", mean, ()), ("left out", default, ())):
        assert out.dtype == dtype and out.shape == shape, f"{form} MSELoss(reduction {name}): not {dtype}{tuple(shape)}"
    sq = (x.double() - y.double()) ** 2
    if dtype in (torch.float32, torch.float64):
        # (x - y)^2 in the dtype: a difference and a square, each rounded once by IEEE 754, exactly
        kind = {torch.float32: np.float32, torch.float64: np.float64}[dtype]
        d = independent_array(x).astype(kind) - independent_array(y).astype(kind)
        assert_equal(none.cpu(), torch.from_numpy(np.asarray(d * d)), f"{form}: MSELoss 'none' is not (x - y)^2 elementwise")
    if not x.numel():  # the sum of no squared difference: 0, exactly
        assert_equal(total.cpu(), torch.zeros((), dtype=dtype), f"{form}: MSELoss 'sum' of empty inputs is not 0")
    # against the float64 formula rounded to the dtype (where a half-precision sum overflows, the
    # rounded reference is inf too), at two roundings' tolerance
    tol = tolerance("two_roundings", dtype)
    assert_close(none.cpu(), sq.to(dtype), **tol, msg=lambda m: f"{form}: MSELoss 'none' is not (x - y)^2\n{m}")
    assert_close(total.cpu(), sq.sum().to(dtype), **tol, msg=lambda m: f"{form}: MSELoss 'sum' is not the sum of (x - y)^2\n{m}")
    # 'mean': the sum divided by the number of elements; of no element, 0 / 0 = NaN
    expected = (sq.sum() / x.numel() if x.numel() else torch.tensor(math.nan, dtype=torch.float64)).to(dtype)
    for name, out in (("mean", mean), ("left out", default)):
        message = lambda m, name=name: f"MSELoss({name}) is not sum / numel\n{m}"
        assert_close(out.cpu(), expected, **tol, equal_nan=True, msg=message)


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


def kl_reference(log_q, log_p, reduction):
    """KL's documented formula in float64 from log q and log p (torch's log_softmax of the logits,
    the loss's inputs): p (log p - log q) pointwise, then 'none', 'sum', 'mean' (over every
    element) or 'batchmean' (over input.size(0))."""
    log_q, log_p = log_q.double().cpu(), log_p.double().cpu()
    pointwise = log_p.exp() * (log_p - log_q)
    return {
        "none": pointwise,
        "sum": pointwise.sum(),
        "mean": pointwise.sum() / pointwise.numel(),
        "batchmean": pointwise.sum() / pointwise.shape[0],
    }[reduction]


def log_distributions(sample, dtype, device):
    return [F.log_softmax(spec.build(dtype=dtype, device=device), -1) for spec in sample.args[:2]]


KL_DIV = Operation(
    "losses.kl_div_definition",
    dtypes="float32_64",
    samples=distributions(),
    call=lambda q, p: (kl_div(q, p, reduction="none"), kl_div(q, p, reduction="sum")),
)


@KL_DIV.property
def test_kl_div_is_p_times_log_p_over_q(device, dtype, sample):
    log_q, log_p = log_distributions(sample, dtype, device)
    none, total = KL_DIV(sample, dtype=dtype, device=device)
    for reduction, out in (("none", none), ("sum", total)):
        expected = kl_reference(log_q, log_p, reduction)
        assert out.dtype == dtype and out.shape == expected.shape, (
            f"kl_div {reduction!r}: not in x's dtype and shape, {dtype}{tuple(expected.shape)}"
        )
        assert_close_to_reference(
            out, expected, msg=lambda m, r=reduction: f"kl_div {r!r} is not p (log p - log q), reduced\n{m}"
        )


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
    log_q, log_p = log_distributions(sample, dtype, device)
    reduction = sample.kwargs["reduction"]
    out = KL_DIV_LOG_TARGET(sample, dtype=dtype, device=device)
    # the documented formula from log p itself (not kl_div of p: that would compare kl_div with itself)
    expected = kl_reference(log_q, log_p, reduction)
    assert out.dtype == dtype and out.shape == expected.shape, f"kl_div(log_target=True): not {dtype}{tuple(expected.shape)}"
    assert_close_to_reference(
        out, expected, msg=lambda m: f"kl_div(log_target=True, reduction={reduction!r}) is not p (log p - log q)\n{m}"
    )


@KL_DIV_BATCHMEAN.property
def test_kl_div_batchmean_divides_by_batch_size(device, dtype, sample):
    log_q, log_p = log_distributions(sample, dtype, device)
    p = log_p.exp()
    batchmean = kl_reference(log_q, log_p, "batchmean")
    for form, out in (
        ("F.kl_div", KL_DIV_BATCHMEAN(sample, dtype=dtype, device=device)),
        ("nn.KLDivLoss", torch.nn.KLDivLoss(reduction="batchmean")(log_q, p)),
    ):
        assert out.shape == () and out.dtype == dtype, f"{form} 'batchmean': not a 0-d {dtype} tensor"
        assert_close_to_reference(out, batchmean, msg=lambda m, form=form: f"{form} 'batchmean' is not sum / input.size(0)\n{m}")
    with pytest.warns(UserWarning, match="batchmean"):  # torch points users to 'batchmean'
        mean = torch.nn.KLDivLoss(reduction="mean")(log_q, p)
    assert_close_to_reference(mean, kl_reference(log_q, log_p, "mean"), msg=lambda m: f"'mean' is not sum / numel\n{m}")


# The two documented spellings of the loss; r None: reduction left out (its default 'mean').
BCE_FORMS = {
    "F.binary_cross_entropy_with_logits": lambda x, y, r, **k: (
        F.binary_cross_entropy_with_logits(x, y, **k) if r is None else F.binary_cross_entropy_with_logits(x, y, reduction=r, **k)
    ),
    "nn.BCEWithLogitsLoss": lambda x, y, r, **k: (
        torch.nn.BCEWithLogitsLoss(**k)(x, y) if r is None else torch.nn.BCEWithLogitsLoss(reduction=r, **k)(x, y)
    ),
}


@st.composite
def bce_with_logits_samples(draw):
    """Sample(x, y, weight, pos_weight, form=, reduction=): logits of any shape and magnitude,
    targets in [0, 1] of the same shape (the documented range), a weight that broadcasts to the
    input (its trailing dims, some of them 1) or none, a pos_weight along the last (class) dim or none."""
    x = draw(specs(magnitudes=True), label="input")
    # the docs: "the targets t[i] should be numbers between 0 and 1"
    y = draw(specs(shape=x.shape, low=0, high=1), label="target")
    weight = pos_weight = None
    if draw(st.booleans(), label="weighted"):
        # a count of x's trailing dims, not a dim: 0 (a 0-d weight) to all of them
        kept = draw(st.integers(0, x.ndim), label="weight_dims")
        shape = tuple(s if draw(st.booleans()) else 1 for s in x.shape[x.ndim - kept :])
        weight = draw(specs(shape=shape), label="weight")
        label("weight=given")
    if draw(st.booleans(), label="pos_weighted"):
        pos_weight = draw(specs(shape=x.shape[-1:]), label="pos_weight")
        label("pos_weight=given")
    options = draw(option_grid(form=sorted(BCE_FORMS), reduction=["none", "sum", "mean", None]), label="options")
    return Sample((x, y, weight, pos_weight), options)


def bce_with_logits(x, y, weight, pos_weight, form, reduction):
    given = {k: v for k, v in (("weight", weight), ("pos_weight", pos_weight)) if v is not None}  # None: left out
    return BCE_FORMS[form](x, y, reduction, **given)


BCE_WITH_LOGITS = Operation(
    "losses.bce_with_logits_formula",
    dtypes="float32_64",
    samples=bce_with_logits_samples(),
    call=lambda *a, **k: bce_with_logits(*a, **k),
)


@BCE_WITH_LOGITS.property
def test_bce_with_logits_is_the_documented_formula(device, dtype, sample):
    x, y, w, p = (None if s is None else independent_array(s.logical_values(dtype)).astype(np.float64) for s in sample.args)
    form, reduction = sample.kwargs["form"], sample.kwargs["reduction"]
    out = BCE_WITH_LOGITS(sample, dtype=dtype, device=device)
    # l = -w [p y log sigma(x) + (1 - y) log(1 - sigma(x))]; -log sigma(x) = log(1 + e^-x) and
    # -log(1 - sigma(x)) = log(1 + e^x), both log-sum-exps, in float64
    positive = (1.0 if p is None else p) * y * np.logaddexp(0, -x)
    terms = (1.0 if w is None else w) * (positive + (1 - y) * np.logaddexp(0, x))
    terms = np.broadcast_to(terms, x.shape)
    expected = {"none": terms, "sum": terms.sum(), "mean": terms.sum() / terms.size if terms.size else np.nan}
    want = torch.from_numpy(np.array(expected[reduction or "mean"], dtype=np.float64))
    what = f"{form}(reduction={reduction!r}{', weight' if w is not None else ''}{', pos_weight' if p is not None else ''})"
    assert out.dtype == dtype and out.shape == want.shape, (
        f"{what}: not in x's dtype and the reduction's shape, {dtype}{tuple(want.shape)}"
    )
    # the loss's terms reach |x| in size (log(1 + e^x) ~ x): the float64 formula rounded to the
    # dtype, at the dtype's tolerance scaled by the largest term the formula adds
    scale = float(np.abs(x).max(initial=1.0)) * float(np.abs(1.0 if w is None else w).max(initial=1.0))
    scale *= max(1.0, float(np.abs(1.0 if p is None else p).max(initial=1.0)))
    eps = torch.finfo(dtype).eps
    assert_close(
        out.cpu(),
        want.to(dtype),
        rtol=16 * eps,
        atol=16 * eps * scale * (terms.size if reduction != "none" else 1),
        equal_nan=True,
        msg=lambda m: f"{what} is not -w [p y log sigma(x) + (1 - y) log(1 - sigma(x))], reduced\n{m}",
    )
