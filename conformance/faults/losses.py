"""Faults in losses (catalogue area `losses`)."""

import torch
import torch.nn.functional as F

from conformance.faults import DRIFT, fault


@fault("nll_mean_by_weight_sum", trips=["losses.nll_mean_weighted"])
def _(patch):
    """NLLLoss 'mean' divides by weight.sum(), the note's claim."""

    def make(orig):
        def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
            if reduction == "mean" and weight is not None:
                return orig(input, target, weight, None, ignore_index, None, "sum") / weight.sum()
            return orig(input, target, weight, size_average, ignore_index, reduce, reduction)

        return nll_loss

    patch.method(F, "nll_loss", make)


@fault("nll_counts_ignored", trips=["losses.nll_ignore_index"])
def _(patch):
    """Ignored targets still count in the 'mean' denominator (as weight 1)."""

    def make(orig):
        def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
            if reduction != "mean":
                return orig(input, target, weight, size_average, ignore_index, reduce, reduction)
            total = orig(input, target, weight, None, ignore_index, None, "sum")
            kept = target != ignore_index
            w = weight if weight is not None else torch.ones(input.shape[1], dtype=input.dtype, device=input.device)
            return total / (w[torch.where(kept, target, 0)] * kept).sum().add((~kept).sum())

        return nll_loss

    patch.method(F, "nll_loss", make)


@fault("nll_drift", trips=["losses.nll_none", "losses.nll_worked_example"])
def _(patch):
    """NLLLoss is off by 0.1% relative."""
    patch.method(F, "nll_loss", lambda orig: lambda *a, **k: orig(*a, **k) * DRIFT)


@fault("nll_sum_drops_last", trips=["losses.nll_sum"])
def _(patch):
    """NLLLoss 'sum' leaves out the last sample."""

    @patch.replace(F, "nll_loss")
    def nll_loss(orig, input, target, *a, reduction="mean", **k):
        if reduction == "sum" and input.shape[0] > 1:
            return orig(input[:-1], target[:-1], *a, reduction="sum", **k)
        return orig(input, target, *a, reduction=reduction, **k)


@fault("nll_all_ignored_is_one", trips=["losses.nll_all_ignored_observed"])
def _(patch):
    """NLLLoss 'mean' with every target ignored returns 1."""

    @patch.replace(F, "nll_loss")
    def nll_loss(orig, input, target, *a, ignore_index=-100, reduction="mean", **k):
        out = orig(input, target, *a, ignore_index=ignore_index, reduction=reduction, **k)
        if reduction == "mean" and bool((target == ignore_index).all()):
            return torch.ones_like(out)
        return out


@fault("cross_entropy_skips_log_softmax_weight", trips=["losses.ce_equals_nll_log_softmax"])
def _(patch):
    """CrossEntropyLoss drops its class weights."""

    @patch.replace(F, "cross_entropy")
    def cross_entropy(orig, input, target, weight=None, *a, **k):
        return orig(input, target, None, *a, **k)


@fault("cross_entropy_probabilities_by_weight", trips=["losses.ce_probability_targets"])
def _(patch):
    """With probability targets, 'mean' divides by N * mean(weight) instead of N."""

    def make(orig):
        def cross_entropy(
            input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean", label_smoothing=0.0
        ):
            out = orig(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing)
            if target.is_floating_point() and reduction == "mean" and weight is not None:
                return out / weight.mean()
            return out

        return cross_entropy

    patch.method(F, "cross_entropy", make)


@fault("label_smoothing_ignored", trips=["losses.ce_label_smoothing"])
def _(patch):
    """CrossEntropyLoss ignores label_smoothing."""

    @patch.replace(F, "cross_entropy")
    def cross_entropy(orig, *a, label_smoothing=0.0, **k):
        return orig(*a, **k)


@fault("mse_mean_by_n_minus_one", trips=["losses.mse_reductions"])
def _(patch):
    """MSELoss 'mean' divides by numel - 1."""

    @patch.replace(F, "mse_loss")
    def mse_loss(orig, input, target, size_average=None, reduce=None, reduction="mean", weight=None):
        if reduction == "mean" and input.numel() > 1:
            return orig(input, target, reduction="sum") / (input.numel() - 1)
        return orig(input, target, reduction=reduction)


@fault("kl_div_arguments_swapped", trips=["losses.kl_div_definition"])
def _(patch):
    """kl_div computes q (log q - log p): the arguments the note warns about, swapped."""

    @patch.replace(F, "kl_div")
    def kl_div(orig, input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
        log_p = target if log_target else target.log()
        return orig(log_p, input.exp(), reduction=reduction)


@fault("kl_div_ignores_log_target", trips=["losses.kl_div_log_target"])
def _(patch):
    """kl_div treats a log target as probabilities."""

    @patch.replace(F, "kl_div")
    def kl_div(orig, input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
        return orig(input, target, reduction=reduction)


@fault("kl_div_batchmean_is_mean", trips=["losses.kl_div_batchmean"])
def _(patch):
    """'batchmean' divides by numel like 'mean'."""

    @patch.replace(F, "kl_div")
    def kl_div(orig, input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
        if reduction == "batchmean":
            return orig(input, target, reduction="sum", log_target=log_target) / input.numel()
        return orig(input, target, reduction=reduction, log_target=log_target)


@fault("nll_normalises_its_input", trips=["losses.nll_none"])
def _(patch):
    """NLLLoss applies log_softmax to inputs that are not log-probabilities (it assumes it must)."""

    @patch.replace(F, "nll_loss")
    def nll_loss(orig, input, target, *a, **k):
        if input.dim() >= 2 and input.is_floating_point():
            sums = input.exp().sum(1)
            if not torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
                input = F.log_softmax(input, 1)
        return orig(input, target, *a, **k)


@fault("nll_unbatched_drops_class_weights", trips=["losses.nll_none", "losses.nll_sum", "losses.ce_equals_nll_log_softmax"])
def _(patch):
    """nll_loss of unbatched (C) input picks the target's entry but drops its class weight."""

    @patch.replace(F, "nll_loss")
    def nll_loss(orig, input, target, weight=None, *args, **kwargs):
        if input.dim() == 1:
            weight = None
        return orig(input, target, weight, *args, **kwargs)


@fault("cross_entropy_default_ignore_index_shifted", trips=["losses.ce_equals_nll_log_softmax"])
def _(patch):
    """cross_entropy's default ignore_index is -99, not -100: a target -100 left to the default is not ignored."""

    @patch.replace(F, "cross_entropy")
    def cross_entropy(orig, input, target, weight=None, size_average=None, ignore_index=-99, *a, **k):
        return orig(input, target, weight, size_average, ignore_index, *a, **k)


@fault("nll_none_widened", trips=["losses.nll_none"])
def _(patch):
    """nll_loss with reduction='none' returns float64 losses for float32 input."""

    @patch.replace(F, "nll_loss")
    def nll_loss(orig, input, target, *a, reduction="mean", **k):
        out = orig(input, target, *a, reduction=reduction, **k)
        return out.double() if reduction == "none" else out


@fault("mse_sum_of_nothing_is_nan", trips=["losses.mse_reductions"])
def _(patch):
    """MSELoss 'sum' of empty inputs is NaN (0 / 0 leaking from 'mean'), not 0."""

    @patch.replace(F, "mse_loss")
    def mse_loss(orig, input, target, size_average=None, reduce=None, reduction="mean", weight=None):
        out = orig(input, target, reduction=reduction)
        return torch.full_like(out, float("nan")) if reduction == "sum" and input.numel() == 0 else out


@fault("mse_loss_default_sum", trips=["losses.mse_reductions"])
def _(patch):
    """F.mse_loss with reduction left out sums instead of taking the documented default 'mean'."""

    @patch.replace(F, "mse_loss")
    def mse_loss(orig, input, target, size_average=None, reduce=None, reduction="sum", weight=None):
        return orig(input, target, size_average, reduce, reduction, weight)


@fault("bce_with_logits_pos_weight_on_negatives", trips=["losses.bce_with_logits_formula"])
def _(patch):
    """binary_cross_entropy_with_logits weighs the negative term (1 - y) log(1 - sigma(x)) by pos_weight, not the positive one."""

    @patch.replace(F, "binary_cross_entropy_with_logits")
    def bce(orig, input, target, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None):
        if pos_weight is None:
            return orig(input, target, weight, size_average, reduce, reduction)
        positive = -target * F.logsigmoid(input)
        negative = -(1 - target) * F.logsigmoid(-input) * pos_weight
        terms = positive + negative if weight is None else (positive + negative) * weight
        return {"none": terms, "sum": terms.sum(), "mean": terms.mean()}[reduction]


@fault("bce_with_logits_mean_over_batch", trips=["losses.bce_with_logits_formula"])
def _(patch):
    """binary_cross_entropy_with_logits 'mean' divides the sum by the batch size input.size(0), not by the element count."""

    @patch.replace(F, "binary_cross_entropy_with_logits")
    def bce(orig, input, target, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None):
        if reduction == "mean" and input.dim() > 1:
            return orig(input, target, weight, reduction="sum", pos_weight=pos_weight) / input.shape[0]
        return orig(input, target, weight, size_average, reduce, reduction, pos_weight)
