"""Softmax: a probability distribution along `dim`, whatever the other dimensions."""

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st
from torch.testing import assert_close

from conformance.checks import assert_equal, contiguous_strides, independent_array
from conformance.harness.declaration import Operation
from conformance.tolerances import tolerance
from strategies import specs
from strategies.samples import Arg, Sample, dims, tensor_and_dim
from strategies.tensors import label


@st.composite
def softmax_samples(draw):
    """Sample(x, dim) over softmax's domain: finite values of every magnitude up to 3e4 (where a
    naive exp overflows), -inf entries and whole rows of -inf, and NaN and +inf entries."""
    magnitude = draw(st.sampled_from([9.0, 1e3, 3e4]), label="magnitude")
    x = draw(specs(low=-magnitude, high=magnitude, special_values=True, extremes=True), label="x")  # and the dtype's limits
    dim = draw(dims(x.ndim), label="dim")
    if x.numel and x.layout != "expanded" and draw(st.booleans(), label="a_row_of_minus_inf"):
        shape = x.shape or (1,)
        d = dim % len(shape)
        at = [draw(st.integers(0, n - 1), label="row") for n in shape]
        strides = contiguous_strides(shape)
        base = sum(i * st_ for k, (i, st_) in enumerate(zip(at, strides)) if k != d)
        row = tuple((base + i * strides[d], "-inf") for i in range(shape[d]))
        x = dataclasses.replace(x, specials=x.specials + row)
    form = draw(st.sampled_from(sorted(SOFTMAX_FORMS)), label="form")
    label(f"form={form}")
    return Sample((x, dim), {"form": form})


# The documented spellings of one softmax: function, keyword, torch namespace, method, module.
SOFTMAX_FORMS = {
    "F.softmax(x, dim)": lambda x, dim: F.softmax(x, dim),
    "F.softmax(x, dim=dim)": lambda x, dim: F.softmax(x, dim=dim),
    "torch.softmax(x, dim)": lambda x, dim: torch.softmax(x, dim),
    "x.softmax(dim)": lambda x, dim: x.softmax(dim),
    "x.softmax(dim=dim)": lambda x, dim: x.softmax(dim=dim),
    "nn.Softmax(dim=dim)(x)": lambda x, dim: torch.nn.Softmax(dim=dim)(x),
}
SOFTMAX = Operation(
    "softmax.range_and_sum", dtypes="floating", samples=softmax_samples(), call=lambda x, dim, form: SOFTMAX_FORMS[form](x, dim)
)
LOG_SOFTMAX = Operation(
    "softmax.log_softmax_exp", dtypes="float32_64", samples=tensor_and_dim(), call=lambda x, dim: F.log_softmax(x, dim)
)
SOFTMAX_IN_FLOAT64 = Operation(
    "softmax.dtype_casts_first",
    dtypes="floating",
    samples=tensor_and_dim(),
    call=lambda x, dim: F.softmax(x, dim, dtype=torch.float64),
)


@SOFTMAX.property
def test_softmax_is_a_distribution_along_dim(device, dtype, sample, record_observation):
    x, dim = sample.args
    drawn = SOFTMAX(sample, dtype=dtype, device=device)
    # the drawn spelling is what the other execution modes compare; here every spelling is checked
    built = x.build(dtype=dtype, device=device)
    outputs = {sample.kwargs["form"]: drawn, **{name: form(built, dim) for name, form in SOFTMAX_FORMS.items()}}
    for form, out in outputs.items():
        probs, rows = assert_a_distribution_along(out, x, dim, dtype, form)
    for name, row_kind in (("all -inf", (rows == -math.inf).all(-1)), ("NaN", rows.isnan().any(-1))):
        if row_kind.any():  # no documented result: shown in the report, not asserted
            record_observation(f"softmax of a row with {name}", str(sorted({str(v) for v in probs[row_kind].flatten().tolist()})))


def assert_a_distribution_along(out, x, dim, dtype, form):
    """The documented property of `out` = softmax(x, dim); returns (probs, rows) along `dim`."""
    assert out.shape == x.shape and out.dtype == dtype, f"{form}: not the input's shape and dtype"
    if not x.numel:
        return torch.empty(0, 0), torch.empty(0, 0)
    # One row per index of the other dimensions: the values along `dim`.
    t = x.build(dtype=dtype, device="cpu").double().reshape(x.shape or (1,))
    rows = t.movedim(dim % max(x.ndim, 1), -1).reshape(-1, t.shape[dim % max(x.ndim, 1)])
    probs = out.cpu().double().reshape(t.shape).movedim(dim % max(x.ndim, 1), -1).reshape(rows.shape)
    # The formula exp(x_i) / sum_j exp(x_j) defines a distribution for every row of finite values,
    # -inf entries (probability 0) included, as long as one entry is finite.
    defined = (rows.isfinite() | (rows == -math.inf)).all(-1) & rows.isfinite().any(-1)
    p = probs[defined]
    assert bool(((p >= 0) & (p <= 1)).all()), f"{form} left [0, 1] on finite rows: {p[~((p >= 0) & (p <= 1))][:5]}"
    assert bool((p[rows[defined] == -math.inf] == 0).all()), f"{form} gave a -inf entry a probability other than 0"
    if p.numel():
        # the formula itself, not only a distribution (a uniform one would pass the two checks above)
        expected = torch.from_numpy(numpy_softmax(independent_array(rows[defined]), -1)).to(dtype)
        assert_close(p.to(dtype), expected, msg=lambda m: f"{form}: not exp(x_i) / sum_j exp(x_j) on finite rows\n{m}")
        assert_close(
            p.sum(-1),
            torch.ones(p.shape[0], dtype=torch.float64),
            **tolerance("probability_sum", dtype),
            msg=lambda m: f"{form}: a row does not sum to 1\n{m}",
        )
    return probs, rows


def numpy_softmax(a, dim):
    """softmax along `dim` by its formula, exp(x_i) / sum_j exp(x_j), in float64 NumPy (shifted by
    the row's maximum, which the formula allows); a 0-d input is a row of one."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return np.ones_like(a)
    if a.size == 0:
        return a.copy()
    e = np.exp(a - a.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


def assert_softmax_of(out, a, dim, dtype, what):
    """`out` is softmax(a, dim) (float64 NumPy) at the tolerance of `dtype`, and has that dtype."""
    assert out.dtype == dtype, f"{what}: the result dtype is {out.dtype}, not {dtype}"
    expected = torch.from_numpy(np.asarray(numpy_softmax(a, dim))).to(dtype)
    assert_close(out.detach().cpu(), expected, msg=lambda m: f"{what}: not exp(x_i) / sum_j exp(x_j) along dim {dim}\n{m}")


@st.composite
def shifted_samples(draw):
    """Sample(x, dim, c): c is constant along dim (size 1 there), x's shape elsewhere."""
    x = draw(specs(), label="x")
    dim = draw(dims(x.ndim), label="dim")
    shift_shape = tuple(1 if d == dim % max(x.ndim, 1) else s for d, s in enumerate(x.shape))
    # shifts within +-20: x + c is rounded in the dtype, so a larger shift changes the input itself
    return Sample((x, dim, draw(specs(shape=shift_shape, low=-20, high=20), label="shift")))


SHIFTED = Operation(
    "softmax.shift_invariant", dtypes="float32_64", samples=shifted_samples(), call=lambda x, dim, c: F.softmax(x + c, dim)
)


@SHIFTED.property
def test_softmax_ignores_a_constant_along_dim(device, dtype, sample):
    x, dim, _ = sample.args
    out = SHIFTED(sample, dtype=dtype, device=device)
    # the shifted input's softmax is the unshifted input's, by the formula in float64
    a = independent_array(x.logical_values(dtype))
    assert_softmax_of(out, a, dim, dtype, "softmax(x + c, dim) is not softmax(x, dim)")


# LOG_SOFTMAX is float32/float64 only: in half precision exp() magnifies the rounding of a log
# near -10 past the dtype's own tolerance, so the identity is only meaningful there.
@LOG_SOFTMAX.property
def test_log_softmax_exponentiates_to_softmax(device, dtype, sample):
    x, dim = sample.args
    out = LOG_SOFTMAX(sample, dtype=dtype, device=device)
    assert_softmax_of(out.exp(), independent_array(x.logical_values(dtype)), dim, dtype, "log_softmax(x, dim).exp()")


@SOFTMAX_IN_FLOAT64.property
def test_softmax_dtype_casts_before_computing(device, dtype, sample):
    x, dim = sample.args
    out = SOFTMAX_IN_FLOAT64(sample, dtype=dtype, device=device)
    # the input's values in its own dtype, cast (exactly) to float64, then softmax in float64
    assert_softmax_of(out, independent_array(x.logical_values(dtype)), dim, torch.float64, "softmax(x, dim, dtype=float64)")


def every_dim(x):
    """The dims of `x`, each one: -ndim <= dim < ndim (a 0-d tensor has 0 and -1)."""
    return range(-max(x.dim(), 1), max(x.dim(), 1))


MODULE = Operation(
    "softmax.module_matches_functional",
    dtypes="float32",
    samples=specs().map(lambda x: Sample((x,))),
    call=lambda x: tuple(torch.nn.Softmax(dim)(x) for dim in every_dim(x)),
)


@MODULE.property
def test_softmax_module_equals_functional(device, dtype, sample):
    (x,) = sample.args
    t = x.build(dtype=dtype, device=device)
    a = independent_array(x.logical_values(dtype))
    modules = MODULE(sample, dtype=dtype, device=device)
    assert len(modules) == len(every_dim(t)), "not one result per dim"
    for dim, module in zip(every_dim(t), modules):
        assert_softmax_of(module, a, dim, dtype, f"nn.Softmax({dim})")
        assert_equal(module, F.softmax(t, dim), f"nn.Softmax({dim})(x) is not F.softmax(x, {dim})")


def categorical(parameter, value, form):
    """torch.distributions.Categorical(probs=parameter) or (logits=parameter): its normalized probs and logits, and
    log_prob(value)."""
    distribution = torch.distributions.Categorical(**{form: parameter})
    return distribution.probs, distribution.logits, distribution.log_prob(value)


@st.composite
def categorical_samples(draw):
    """Sample(parameter, value, form): probs or logits of shape (*batch, K), and category indices of the batch shape."""
    form = draw(st.sampled_from(["probs", "logits"]), label="form")
    label(f"form={form}")
    batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2), label="batch"))
    k = draw(st.integers(1, 5), label="K")
    if form == "probs":
        # "must be non-negative, finite and have a non-zero sum": positive values here (zero ones: multinomial_draws)
        parameter = draw(specs(shape=(*batch, k), low=0.1, high=3), label="probs")
    else:  # "can therefore be any real number"
        parameter = draw(specs(shape=(*batch, k)), label="logits")
    # category indices in [0, K): the support {0, ..., K-1}
    value = draw(specs(shape=batch, low=0, high=k), label="value")
    return Sample((parameter, Arg(value, dtype=torch.int64), form))


CATEGORICAL = Operation(
    "softmax.categorical_normalizes",
    dtypes="float32_64",
    samples=categorical_samples(),
    call=lambda parameter, value, form: categorical(parameter, value, form),
)


@CATEGORICAL.property
def test_categorical_normalizes_probs_and_logits(device, dtype, sample):
    parameter_spec, value_arg, form = sample.args
    probs, logits, log_prob = CATEGORICAL(sample, dtype=dtype, device=device)
    given = independent_array(parameter_spec.logical_values(dtype)).astype(np.float64)
    if form == "probs":  # normalized to sum to 1 along the last dim
        p = given / given.sum(-1, keepdims=True)
    else:  # unnormalized log probabilities: exp, normalized likewise
        shifted = np.exp(given - given.max(-1, keepdims=True))
        p = shifted / shifted.sum(-1, keepdims=True)
    index = independent_array(value_arg.spec.logical_values(torch.int64))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    got = {
        n: independent_array(t.cpu()).astype(np.float64)
        for n, t in (("probs", probs), ("logits", logits), ("log_prob", log_prob))
    }
    np.testing.assert_allclose(got["probs"], p, err_msg="Categorical: probs is not the normalized value", **tol)
    np.testing.assert_allclose(
        np.exp(got["logits"]), p, err_msg="Categorical: logits are not the normalized log probabilities", **tol
    )
    want = np.log(np.take_along_axis(p, index[..., None], -1)[..., 0])
    np.testing.assert_allclose(got["log_prob"], want, err_msg="Categorical: log_prob(value) is not log p[value]", **tol)
