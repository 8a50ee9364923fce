"""Faults in pointwise operations (catalogue area `pointwise`)."""

import torch
import torch.nn.functional as F

from conformance.faults import DRIFT, fault


@fault("sigmoid_method_drift", trips=["pointwise.sigmoid_formula"])
def _(patch):
    """Tensor.sigmoid is off by 0.1%: only the method spelling is wrong."""
    patch.method(torch.Tensor, "sigmoid", lambda orig: lambda self: orig(self) * DRIFT)


@fault("tanh_module_is_sigmoid_shifted", trips=["pointwise.tanh_formula"])
def _(patch):
    """nn.Tanh computes 2 * sigmoid(x) - 1 in the wrong scale: sigmoid(x) * 2 - 1 of x / 2 (tanh(x / 4))."""
    patch.method(torch.nn.Tanh, "forward", lambda orig: lambda self, x: torch.sigmoid(x / 2) * 2 - 1)


@fault("pow_scalar_exponent_rounded", trips=["pointwise.pow_elementwise"])
def _(patch):
    """torch.pow rounds a float exponent to the nearest integer."""

    @patch.replace(torch, "pow")
    def pow(orig, base, exponent, *a, **k):
        if isinstance(exponent, float) and exponent == exponent and abs(exponent) != float("inf"):
            exponent = float(round(exponent))
        return orig(base, exponent, *a, **k)


@fault("abs_method_keeps_negative_zero", trips=["pointwise.abs_exact"])
def _(patch):
    """Tensor.abs returns -0.0 for -0.0 (computes where(x < 0, -x, x))."""
    patch.method(torch.Tensor, "abs", lambda orig: lambda self: torch.where(self < 0, -self, self))


@fault("sqrt_negative_zero_is_positive", trips=["pointwise.sqrt_rsqrt"])
def _(patch):
    """Tensor.sqrt returns +0.0 for -0.0 (IEEE keeps the sign)."""

    @patch.replace(torch.Tensor, "sqrt")
    def sqrt(orig, self):
        out = orig(self)
        return torch.where(out == 0, torch.zeros_like(out), out) if self.is_floating_point() else out


@fault("rsqrt_drift", trips=["pointwise.sqrt_rsqrt"])
def _(patch):
    """torch.rsqrt is off by 0.1%."""
    patch.method(torch, "rsqrt", lambda orig: lambda x, *a, **k: orig(x, *a, **k) * DRIFT)


@fault("square_in_float32_for_float64", trips=["pointwise.square_exact"])
def _(patch):
    """Tensor.square of float64 computes in float32 and widens."""

    @patch.replace(torch.Tensor, "square")
    def square(orig, self):
        return orig(self.float()).double() if self.dtype == torch.float64 else orig(self)


@fault("cos_is_sin", trips=["pointwise.sin_cos"])
def _(patch):
    """Tensor.cos returns the sine shifted by a wrong quarter period: sin(x + 1.5)."""
    patch.method(torch.Tensor, "cos", lambda orig: lambda self: torch.sin(self + 1.5))


@fault("floor_of_integers_aliases", trips=["pointwise.ceil_floor"])
def _(patch):
    """Tensor.floor of an integer tensor returns the input itself, not a copy."""

    @patch.replace(torch.Tensor, "floor")
    def floor(orig, self):
        return self if not self.is_floating_point() else orig(self)


@fault("ceil_loses_negative_zero", trips=["pointwise.ceil_floor"])
def _(patch):
    """Tensor.ceil gives +0.0 where the result is -0.0 (ceil(-0.5))."""

    @patch.replace(torch.Tensor, "ceil")
    def ceil(orig, self):
        out = orig(self)
        return out + 0.0 if self.is_floating_point() else out


@fault("round_half_away_from_zero", trips=["pointwise.round_half_even"])
def _(patch):
    """Tensor.round breaks ties away from zero (round(2.5) = 3)."""

    @patch.replace(torch.Tensor, "round")
    def round(orig, self, *a, **k):
        if self.is_floating_point() and not a and not k.get("decimals"):
            return torch.where(self - self.trunc() == 0.5 * self.sign(), self + 0.5 * self.sign(), orig(self))
        return orig(self, *a, **k)


@fault("round_ignores_decimals", trips=["pointwise.round_half_even"])
def _(patch):
    """Tensor.round(decimals=d) rounds to an integer."""
    patch.method(torch.Tensor, "round", lambda orig: lambda self, *a, **k: orig(self))


@fault("round_integers_aliases", trips=["pointwise.round_integers_copy"])
def _(patch):
    """Tensor.round of an integer tensor returns the input itself, not a copy."""

    @patch.replace(torch.Tensor, "round")
    def round(orig, self, *a, **k):
        return self if not self.is_floating_point() else orig(self, *a, **k)


@fault("round_decimals_zero_aliases", trips=["pointwise.round_integers_decimals_zero"])
def _(patch):
    """Tensor.round(decimals=0) of an integer tensor returns the input itself, not a copy (on a
    torch whose integer round(decimals=0) works at all)."""

    @patch.replace(torch.Tensor, "round")
    def round(orig, self, *a, **k):
        return self if not self.is_floating_point() and "decimals" in k else orig(self, *a, **k)


@fault("clip_omitted_max_is_zero", trips=["pointwise.clip_bounds"])
def _(patch):
    """Tensor.clip(min=...) with max omitted clips at 0 above."""

    @patch.replace(torch.Tensor, "clip")
    def clip(orig, self, min=None, max=None):
        if max is None and min is not None and not isinstance(min, torch.Tensor):
            max = 0
        return orig(self, min, max)


@fault("clamp_min_above_max_gives_min", trips=["pointwise.clip_bounds"])
def _(patch):
    """torch.clamp with min > max gives min (max(min(x, max), min)), not max."""

    @patch.replace(torch, "clamp")
    def clamp(orig, x, min=None, max=None, **k):
        if min is None or max is None:
            return orig(x, min, max, **k)
        return orig(orig(x, None, max), min, None)


@fault("div_floor_truncates", trips=["pointwise.div_rounding_modes"])
def _(patch):
    """Tensor.div(rounding_mode='floor') truncates toward zero."""

    @patch.replace(torch.Tensor, "div")
    def div(orig, self, other, *, rounding_mode=None, **k):
        return orig(self, other, rounding_mode="trunc" if rounding_mode == "floor" else rounding_mode, **k)


@fault("div_number_as_reciprocal", trips=["pointwise.div_rounding_modes"])
def _(patch):
    """Tensor.div by a Python number multiplies by its reciprocal (not IEEE division)."""

    @patch.replace(torch.Tensor, "div")
    def div(orig, self, other, *a, **k):
        if isinstance(other, float) and other != 0.0 and not a and k.get("rounding_mode") is None:
            return self * (1.0 / other)
        return orig(self, other, *a, **k)


@fault("integer_div_keeps_dtype", trips=["pointwise.div_integers"])
def _(patch):
    """Integer Tensor.div(y) floors and keeps the integer dtype instead of promoting."""

    @patch.replace(torch.Tensor, "div")
    def div(orig, self, other, *, rounding_mode=None, **k):
        if rounding_mode is None and not self.is_floating_point() and not self.is_complex():
            return orig(self, other, rounding_mode="floor", **k)
        return orig(self, other, rounding_mode=rounding_mode, **k)


@fault("div_in_place_writes_a_copy", trips=["pointwise.div_in_place"])
def _(patch):
    """Tensor.div_ on a non-contiguous tensor writes the quotient into a copy."""
    patch.strided_writes_lost(torch.Tensor, "div_")


@fault("div_in_place_ignores_rounding_mode", trips=["pointwise.div_in_place"])
def _(patch):
    """Tensor.div_ ignores rounding_mode."""
    patch.method(torch.Tensor, "div_", lambda orig: lambda self, other, **k: orig(self, other))


@fault("mul_float64_through_float32", trips=["pointwise.mul_exact"])
def _(patch):
    """Tensor.mul of float64 by a tensor rounds the product through float32."""

    @patch.replace(torch.Tensor, "mul")
    def mul(orig, self, other):
        out = orig(self, other)
        return out.float().double() if out.dtype == torch.float64 else out


@fault("eq_nan_equals_nan", trips=["pointwise.eq_elementwise"])
def _(patch):
    """Tensor.eq counts NaN as equal to NaN."""

    @patch.replace(torch.Tensor, "eq")
    def eq(orig, self, other):
        out = orig(self, other)
        if isinstance(other, torch.Tensor) and (self.is_floating_point() or self.is_complex()):
            return out | (self.isnan() & other.isnan())
        return out


@fault("isfinite_counts_nan", trips=["pointwise.isnan_isfinite"])
def _(patch):
    """torch.isfinite is ~isinf: NaN counts as finite."""
    patch.method(torch, "isfinite", lambda orig: lambda x: ~torch.isinf(x))


@fault("isnan_misses_complex_imaginary", trips=["pointwise.isnan_isfinite"])
def _(patch):
    """torch.isnan of a complex tensor looks at the real part only."""
    patch.method(torch, "isnan", lambda orig: lambda x: orig(x.real) if x.is_complex() else orig(x))


@fault("softplus_ignores_threshold", trips=["pointwise.softplus_formula"])
def _(patch):
    """F.softplus never reverts to the linear function."""

    @patch.replace(F, "softplus")
    def softplus(orig, input, beta=1.0, threshold=20.0):
        return orig(input, beta, float("inf"))


@fault("softplus_default_beta_two", trips=["pointwise.softplus_formula"])
def _(patch):
    """F.softplus's beta defaults to 2."""

    @patch.replace(F, "softplus")
    def softplus(orig, input, beta=2.0, threshold=20.0):
        return orig(input, beta, threshold)


@fault("logsigmoid_naive_overflows", trips=["pointwise.logsigmoid_formula"])
def _(patch):
    """F.logsigmoid computed as log(sigmoid(x)): -inf for very negative x."""
    patch.method(F, "logsigmoid", lambda orig: lambda x: torch.log(torch.sigmoid(x)))


@fault("leaky_relu_default_slope_0_1", trips=["pointwise.leaky_relu_module"])
def _(patch):
    """nn.LeakyReLU's negative_slope defaults to 0.1, not 1e-2."""
    original = torch.nn.LeakyReLU.__init__

    def init(self, negative_slope=0.1, inplace=False):
        original(self, negative_slope, inplace)

    patch.attribute(torch.nn.LeakyReLU, "__init__", init)


@fault("silu_is_sigmoid", trips=["pointwise.silu_module"])
def _(patch):
    """nn.SiLU returns sigmoid(x) without the factor x."""
    patch.method(torch.nn.SiLU, "forward", lambda orig: lambda self, x: torch.sigmoid(x))


@fault("addcmul_in_place_ignores_value", trips=["pointwise.addcmul_in_place"])
def _(patch):
    """Tensor.addcmul_ ignores value (uses 1)."""
    patch.method(torch.Tensor, "addcmul_", lambda orig: lambda self, t1, t2, **k: orig(self, t1, t2))


@fault("addcmul_in_place_writes_a_copy", trips=["pointwise.addcmul_in_place"])
def _(patch):
    """Tensor.addcmul_ on a non-contiguous tensor writes into a copy."""
    patch.strided_writes_lost(torch.Tensor, "addcmul_")


@fault("byte_saturates", trips=["pointwise.byte_is_uint8"])
def _(patch):
    """Tensor.byte clamps integers to [0, 255] instead of wrapping modulo 256."""
    patch.method(torch.Tensor, "byte", lambda orig: lambda self, *a, **k: orig(self.clamp(0, 255), *a, **k))


@fault("is_floating_point_counts_complex", trips=["pointwise.is_floating_point"])
def _(patch):
    """torch.is_floating_point is True for complex dtypes too."""
    patch.method(torch, "is_floating_point", lambda orig: lambda x: orig(x) or x.is_complex())


@fault("equal_nan_equals_nan", trips=["pointwise.equal_sizes_and_elements"])
def _(patch):
    """torch.equal treats NaN as equal to NaN."""

    @patch.replace(torch, "equal")
    def equal(orig, a, b):
        if a.shape != b.shape:
            return False
        return bool(((a == b) | (a.isnan() & b.isnan())).all()) if a.is_floating_point() else orig(a, b)


@fault("equal_compares_dtypes", trips=["pointwise.equal_sizes_and_elements"])
def _(patch):
    """torch.equal is False for tensors of different dtypes."""
    patch.method(torch, "equal", lambda orig: lambda a, b: a.dtype == b.dtype and orig(a, b))


@fault("pow_half_exponent_drift", trips=["pointwise.pow_half_exponents"])
def _(patch):
    """torch.pow(x, 0.5) and torch.pow(x, -0.5) are off by 0.1% (stock torch already breaks this
    behaviour at -0.0 and -inf, a known deviation: the fault is seen only where that is fixed)."""

    @patch.replace(torch, "pow")
    def pow(orig, base, exponent, *a, **k):
        out = orig(base, exponent, *a, **k)
        return out * DRIFT if exponent in (0.5, -0.5) and isinstance(exponent, float) else out
