"""Faults in softmax (catalogue area `softmax`)."""

import torch
import torch.nn.functional as F

from conformance.faults import DRIFT, fault


@fault("softmax_wrong_dim", trips=["softmax.range_and_sum"])
def _(patch):
    """softmax normalises over the neighbouring dimension when there is one."""

    @patch.replace(F, "softmax")
    def softmax(orig, x, dim=None, *a, **k):
        if x.dim() > 1 and dim is not None:
            dim = (dim + 1) % x.dim()
        return orig(x, dim, *a, **k)


@fault("softmax_drift", trips=["softmax.range_and_sum"])
def _(patch):
    """softmax is off by 0.1% relative."""
    patch.method(F, "softmax", lambda orig: lambda *a, **k: orig(*a, **k) * DRIFT)


@fault("softmax_not_shift_invariant", trips=["softmax.shift_invariant"])
def _(patch):
    """softmax depends on the level of its input, not just the differences."""

    @patch.replace(F, "softmax")
    def softmax(orig, x, dim=None, *a, **k):
        return orig(x * (1 + 0.05 * torch.tanh(x.mean(dim, keepdim=True))), dim, *a, **k)


@fault("softmax_ignores_dtype", trips=["softmax.dtype_casts_first"])
def _(patch):
    """softmax(dtype=) computes in the input dtype and casts afterwards."""

    @patch.replace(F, "softmax")
    def softmax(orig, x, dim=None, _stacklevel=3, dtype=None):
        out = orig(x, dim)
        return out.to(dtype) if dtype is not None else out


@fault("softmax_module_last_dim", trips=["softmax.module_matches_functional"])
def _(patch):
    """nn.Softmax ignores its dim and uses the last dimension."""
    patch.method(torch.nn.Softmax, "forward", lambda orig: lambda self, x: F.softmax(x, -1 if x.dim() else 0))


@fault("softmax_wrong_dtype_off_cpu", trips=["softmax.range_and_sum"], devices=("off_cpu",))
def _(patch):
    """softmax returns float64 for inputs that are not on the CPU (caught by the cross-device check)."""

    @patch.replace(F, "softmax")
    def softmax(orig, x, *a, **k):
        out = orig(x, *a, **k)
        return out.double() if x.device.type != "cpu" else out


@fault("softmax_naive_exp", trips=["softmax.range_and_sum"])
def _(patch):
    """softmax computed as exp(x) / exp(x).sum() without subtracting the maximum: overflows to NaN."""

    @patch.replace(F, "softmax")
    def softmax(orig, x, dim=None, *a, **k):
        if dim is None or not x.is_floating_point():
            return orig(x, dim, *a, **k)
        e = x.exp()
        return e / e.sum(dim, keepdim=True)


@fault("softmax_method_ignores_dim_keyword", trips=["softmax.range_and_sum"])
def _(patch):
    """Tensor.softmax(dim=d) normalises over the last dimension: only the keyword method form is wrong."""

    @patch.replace(torch.Tensor, "softmax")
    def softmax(orig, self, *args, **kwargs):
        if "dim" in kwargs and not args:
            kwargs["dim"] = -1
        return orig(self, *args, **kwargs)


@fault("softmax_tempered", trips=["softmax.range_and_sum", "softmax.shift_invariant", "softmax.module_matches_functional"])
def _(patch):
    """softmax computes exp(x_i / 2) / sum_j exp(x_j / 2): still a distribution in [0, 1] summing to
    1, unchanged by a shift, but not the documented formula."""

    @patch.replace(F, "softmax")
    def softmax(orig, x, dim=None, *a, **k):
        return orig(x / 2, dim, *a, **k) if x.is_floating_point() else orig(x, dim, *a, **k)


@fault("log_softmax_shifted", trips=["softmax.log_softmax_exp"])
def _(patch):
    """F.log_softmax subtracts 0.1% of the largest magnitude too: log-probabilities whose exp no
    longer sums to 1 (a wrong log-sum-exp)."""

    @patch.replace(torch.nn.functional, "log_softmax")
    def log_softmax(orig, input, *args, **kwargs):
        out = orig(input, *args, **kwargs)
        return out - 1e-3 * (1 + out.detach().abs().amax()) if out.numel() else out


@fault("categorical_probs_unnormalized", trips=["softmax.categorical_normalizes"])
def _(patch):
    """Categorical(probs=p) keeps p as given instead of normalizing it to sum to 1."""

    @patch.replace(torch.distributions.Categorical, "__init__")
    def init(orig, self, probs=None, logits=None, validate_args=None):
        orig(self, probs, logits, validate_args)
        if probs is not None:
            self.probs = probs
            self.logits = probs.log()


@fault("categorical_logits_unnormalized", trips=["softmax.categorical_normalizes"])
def _(patch):
    """Categorical(logits=l) keeps l as given instead of normalizing it (l - logsumexp(l))."""

    @patch.replace(torch.distributions.Categorical, "__init__")
    def init(orig, self, probs=None, logits=None, validate_args=None):
        orig(self, probs, logits, validate_args)
        if logits is not None:
            self.logits = logits
