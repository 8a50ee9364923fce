"""Faults in softmax, losses and distances: wrong dims, denominators and small drifts."""
import torch
import torch.nn.functional as F

from conformance.faults import fault

DRIFT = 1 + 1e-3  # a 0.1% relative error: small enough to look plausible


@fault("softmax_wrong_dim", trips=["softmax.range_and_sum"])
def _(patch):
    """softmax normalises over the neighbouring dimension when there is one."""
    def make(orig):
        def softmax(x, dim=None, *a, **k):
            if x.dim() > 1 and dim is not None:
                dim = (dim + 1) % x.dim()
            return orig(x, dim, *a, **k)
        return softmax
    patch.method(F, "softmax", make)


@fault("softmax_drift", trips=["softmax.range_and_sum", "softmax.log_softmax_exp"])
def _(patch):
    """softmax is off by 0.1% relative."""
    patch.method(F, "softmax", lambda orig: lambda *a, **k: orig(*a, **k) * DRIFT)


@fault("softmax_not_shift_invariant", trips=["softmax.shift_invariant"])
def _(patch):
    """softmax depends on the level of its input, not just the differences."""
    def make(orig):
        def softmax(x, dim=None, *a, **k):
            return orig(x * (1 + 0.05 * torch.tanh(x.mean(dim, keepdim=True))), dim, *a, **k)
        return softmax
    patch.method(F, "softmax", make)


@fault("softmax_ignores_dtype", trips=["softmax.dtype_casts_first"])
def _(patch):
    """softmax(dtype=) computes in the input dtype and casts afterwards."""
    def make(orig):
        def softmax(x, dim=None, _stacklevel=3, dtype=None):
            out = orig(x, dim)
            return out.to(dtype) if dtype is not None else out
        return softmax
    patch.method(F, "softmax", make)


@fault("softmax_module_last_dim", trips=["softmax.module_matches_functional"])
def _(patch):
    """nn.Softmax ignores its dim and uses the last dimension."""
    patch.method(torch.nn.Softmax, "forward", lambda orig: lambda self, x: F.softmax(x, -1 if x.dim() else 0))


@fault("nll_mean_by_weight_sum", trips=["losses.nll_mean_weighted"])
def _(patch):
    """NLLLoss 'mean' divides by weight.sum(), the note's claim."""
    def make(orig):
        def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                     reduction="mean"):
            if reduction == "mean" and weight is not None:
                return orig(input, target, weight, None, ignore_index, None, "sum") / weight.sum()
            return orig(input, target, weight, size_average, ignore_index, reduce, reduction)
        return nll_loss
    patch.method(F, "nll_loss", make)


@fault("nll_counts_ignored", trips=["losses.nll_ignore_index"])
def _(patch):
    """Ignored targets still count in the 'mean' denominator (as weight 1)."""
    def make(orig):
        def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                     reduction="mean"):
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
    def make(orig):
        def nll_loss(input, target, *a, reduction="mean", **k):
            if reduction == "sum" and input.shape[0] > 1:
                return orig(input[:-1], target[:-1], *a, reduction="sum", **k)
            return orig(input, target, *a, reduction=reduction, **k)
        return nll_loss
    patch.method(F, "nll_loss", make)


@fault("nll_all_ignored_is_one", trips=["losses.nll_all_ignored_observed"])
def _(patch):
    """NLLLoss 'mean' with every target ignored returns 1."""
    def make(orig):
        def nll_loss(input, target, *a, ignore_index=-100, reduction="mean", **k):
            out = orig(input, target, *a, ignore_index=ignore_index, reduction=reduction, **k)
            if reduction == "mean" and bool((target == ignore_index).all()):
                return torch.ones_like(out)
            return out
        return nll_loss
    patch.method(F, "nll_loss", make)


@fault("cross_entropy_skips_log_softmax_weight", trips=["losses.ce_equals_nll_log_softmax"])
def _(patch):
    """CrossEntropyLoss drops its class weights."""
    def make(orig):
        def cross_entropy(input, target, weight=None, *a, **k):
            return orig(input, target, None, *a, **k)
        return cross_entropy
    patch.method(F, "cross_entropy", make)


@fault("cross_entropy_probabilities_by_weight", trips=["losses.ce_probability_targets"])
def _(patch):
    """With probability targets, 'mean' divides by N * mean(weight) instead of N."""
    def make(orig):
        def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                          reduction="mean", label_smoothing=0.0):
            out = orig(input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing)
            if target.is_floating_point() and reduction == "mean" and weight is not None:
                return out / weight.mean()
            return out
        return cross_entropy
    patch.method(F, "cross_entropy", make)


@fault("label_smoothing_ignored", trips=["losses.ce_label_smoothing"])
def _(patch):
    """CrossEntropyLoss ignores label_smoothing."""
    def make(orig):
        def cross_entropy(*a, label_smoothing=0.0, **k):
            return orig(*a, **k)
        return cross_entropy
    patch.method(F, "cross_entropy", make)


@fault("mse_mean_by_n_minus_one", trips=["losses.mse_reductions"])
def _(patch):
    """MSELoss 'mean' divides by numel - 1."""
    def make(orig):
        def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
            if reduction == "mean" and input.numel() > 1:
                return orig(input, target, reduction="sum") / (input.numel() - 1)
            return orig(input, target, reduction=reduction)
        return mse_loss
    patch.method(F, "mse_loss", make)


@fault("kl_div_arguments_swapped", trips=["losses.kl_div_definition"])
def _(patch):
    """kl_div computes q (log q - log p): the arguments the note warns about, swapped."""
    def make(orig):
        def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
            log_p = target if log_target else target.log()
            return orig(log_p, input.exp(), reduction=reduction)
        return kl_div
    patch.method(F, "kl_div", make)


@fault("kl_div_ignores_log_target", trips=["losses.kl_div_log_target"])
def _(patch):
    """kl_div treats a log target as probabilities."""
    def make(orig):
        def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
            return orig(input, target, reduction=reduction)
        return kl_div
    patch.method(F, "kl_div", make)


@fault("kl_div_batchmean_is_mean", trips=["losses.kl_div_batchmean"])
def _(patch):
    """'batchmean' divides by numel like 'mean'."""
    def make(orig):
        def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
            if reduction == "batchmean":
                return orig(input, target, reduction="sum", log_target=log_target) / input.numel()
            return orig(input, target, reduction=reduction, log_target=log_target)
        return kl_div
    patch.method(F, "kl_div", make)


@fault("pdist_includes_diagonal", trips=["distances.pdist_length", "distances.pdist_rebuilds_cdist"])
def _(patch):
    """pdist returns N(N+1)/2 values, the diagonal's zeros included."""
    def make(orig):
        def pdist(x, p=2):
            n = x.shape[0]
            rows, cols = torch.triu_indices(n, n, device=x.device)
            return torch.cdist(x, x, p=p)[rows, cols]
        return pdist
    patch.method(F, "pdist", make)


@fault("pdist_drift", trips=["distances.pdist_length", "distances.pdist_rebuilds_cdist"])
def _(patch):
    """pdist is off by 0.1% relative."""
    patch.method(F, "pdist", lambda orig: lambda *a, **k: orig(*a, **k) * DRIFT)


@fault("softmax_wrong_dtype_off_cpu", trips=["softmax.range_and_sum"], devices=("meta", "cuda"))
def _(patch):
    """softmax returns float64 for inputs that are not on the CPU (caught by the cross-device check)."""
    def make(orig):
        def softmax(x, *a, **k):
            out = orig(x, *a, **k)
            return out.double() if x.device.type != "cpu" else out
        return softmax
    patch.method(F, "softmax", make)


@fault("matmul_drift_on_cuda", trips=["matmul.matmul_semantics"], devices=("cuda",))
def _(patch):
    """matmul is off by 0.1% on CUDA only (caught by the cross-device check on a GPU)."""
    def make(orig):
        def matmul(a, b, **k):
            out = orig(a, b, **k)
            return out * DRIFT if out.device.type == "cuda" else out
        return matmul
    patch.method(torch, "matmul", make)
