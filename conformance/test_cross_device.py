"""Cross-device agreement: the same generated inputs give the same results on every device.

Each case re-runs one numeric behaviour's operation on the CPU and on the device under test from
one drawn spec (same values, same layout) and compares: dtype and shape exactly, integer and
bool results exactly, floating results with torch.testing.assert_close at the result dtype's
tolerance. On the meta device (only with --device meta) just dtype and shape are compared;
tests/test_cross_device_machinery.py runs it so that CPU-only CI exercises the comparison code. Where the docs say devices
may differ (max(dim) indices on ties; TF32 convolutions on Ampere and later), the case compares
what is documented to agree and says why.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch.testing import assert_close

from conformance.checks import private_rng
from conformance.test_autograd import function_of
from conformance.test_losses import classification, unpack
from strategies import DTYPE_GROUPS, specs, supported_on
from strategies.shapes import shapes

FLOATING = DTYPE_GROUPS["floating"]
F32_64 = DTYPE_GROUPS["float32_64"]


@dataclass(frozen=True)
class Case:
    behaviour: str
    dtypes: tuple
    # (data, dtype) -> run, where run(device) returns the result(s) to compare
    make: Callable
    rtol_atol: Callable | None = None  # (device) -> dict of tolerances, where documented looser
    meta: bool = True  # False where the output's shape depends on the values (meta has none)

    @property
    def name(self):
        return self.behaviour


def _dim(data, ndim):
    return data.draw(st.integers(-max(ndim, 1), max(ndim, 1) - 1), label="dim")


def nll_case(reduction):
    def make(data, dtype):
        case = data.draw(classification(), label="case")
        if reduction == "mean":  # every target ignored is device-dependent: not compared
            case = case[:1] + ([t if t != case[3] else 0 for t in case[1]],) + case[2:]

        def run(device):
            logits, y, w, ignore = unpack(case, dtype, device)
            return F.nll_loss(F.log_softmax(logits, 1), y, weight=w, ignore_index=ignore, reduction=reduction)
        return run
    return make


def cross_entropy_case(data, dtype):
    case = data.draw(classification(ignore=False), label="case")
    eps = data.draw(st.sampled_from([0.0, 0.1]), label="label_smoothing")

    def run(device):
        logits, y, w, _ = unpack(case, dtype, device)
        return F.cross_entropy(logits, y, weight=w, label_smoothing=eps)
    return run


def probability_targets_case(data, dtype):
    case = data.draw(classification(ignore=False), label="case")
    target = data.draw(specs(shape=case[0].shape), label="target_logits")

    def run(device):
        logits, _, w, _ = unpack(case, dtype, device)
        p = F.softmax(target.build(dtype=dtype, device=device), 1)
        return tuple(F.cross_entropy(logits, p, weight=w, reduction=r) for r in ("none", "sum", "mean"))
    return run


def kl_case(**kwargs):
    def make(data, dtype):
        shape = data.draw(shapes(min_dims=1, min_side=1), label="shape")
        q, p = (data.draw(specs(shape=shape), label=k) for k in "qp")

        def run(device):
            log_q = F.log_softmax(q.build(dtype=dtype, device=device), -1)
            log_p = F.log_softmax(p.build(dtype=dtype, device=device), -1)
            return F.kl_div(log_q, log_p if kwargs.get("log_target") else log_p.exp(), **kwargs)
        return run
    return make


def pair(data, shape_a=None, shape_b=None):
    a = data.draw(specs() if shape_a is None else specs(shape=shape_a), label="a")
    b = data.draw(specs(shape=a.shape if shape_b is None else shape_b), label="b")
    return a, b


def mse_case(data, dtype):
    a, b = pair(data)
    return lambda device: F.mse_loss(a.build(dtype=dtype, device=device), b.build(dtype=dtype, device=device),
                                     reduction="sum")


def unary(fn, **spec_kwargs):
    def make(data, dtype):
        x = data.draw(specs(**spec_kwargs), label="x")
        dim = _dim(data, x.ndim)
        return lambda device: fn(x.build(dtype=dtype, device=device), dim)
    return make


def max_case(data, dtype):
    x = data.draw(specs(shapes=shapes(min_dims=1, min_side=1), low=-2, high=2), label="x")
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1), label="dim")

    def run(device):
        t = x.build(dtype=dtype, device=device)
        values, indices = torch.max(t, dim)
        # indices may differ on ties between devices (documented): compare what they point at
        return values, t.gather(dim, indices.unsqueeze(dim)).squeeze(dim)
    return run


def clamp_case(data, dtype):
    x = data.draw(specs(), label="x")
    lo, hi = data.draw(st.tuples(st.integers(-9, 9), st.integers(-9, 9)), label="bounds")
    if dtype == torch.uint8:
        lo, hi = abs(lo), abs(hi)
    return lambda device: torch.clamp(x.build(dtype=dtype, device=device), lo, hi)


def where_case(data, dtype):
    s = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, max_side=3), label="shapes")
    c, a, b = (data.draw(specs(shape=shape), label=f"arg{i}") for i, shape in enumerate(s.input_shapes))
    return lambda device: torch.where(c.build(dtype=torch.bool, device=device), a.build(dtype=dtype, device=device),
                                      b.build(dtype=dtype, device=device))


def binary(fn, signature=None, max_dims=2):
    def make(data, dtype):
        if signature:
            s = data.draw(hnp.mutually_broadcastable_shapes(signature=signature, max_dims=max_dims, max_side=4),
                          label="shapes")
        else:
            s = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4), label="shapes")
        a, b = (data.draw(specs(shape=shape), label=f"arg{i}") for i, shape in enumerate(s.input_shapes))
        return lambda device: fn(a.build(dtype=dtype, device=device), b.build(dtype=dtype, device=device))
    return make


def bmm_case(data, dtype):
    b, m, n, p = (data.draw(st.integers(1, 4), label=k) for k in "bmnp")
    x, y = data.draw(specs(shape=(b, m, n)), label="x"), data.draw(specs(shape=(b, n, p)), label="y")
    return lambda device: torch.bmm(x.build(dtype=dtype, device=device), y.build(dtype=dtype, device=device))


def points_case(fn):
    def make(data, dtype):
        x = data.draw(specs(shape=(data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4)))), label="points")
        return lambda device: fn(x.build(dtype=dtype, device=device))
    return make


def cat_case(data, dtype):
    base = data.draw(shapes(min_dims=1, max_dims=3), label="shape")
    parts = [data.draw(specs(shape=base), label=f"t{i}") for i in range(data.draw(st.integers(1, 3)))]
    dim = data.draw(st.integers(0, len(base) - 1), label="dim")
    return lambda device: (torch.cat([p.build(dtype=dtype, device=device) for p in parts], dim),
                           torch.stack([p.build(dtype=dtype, device=device) for p in parts], dim))


def repeat_case(data, dtype):
    x = data.draw(specs(shapes=shapes(min_dims=1, max_dims=3, max_side=3)), label="x")
    reps = data.draw(st.lists(st.integers(0, 3), min_size=x.ndim, max_size=x.ndim + 1), label="reps")
    r = data.draw(st.integers(0, 3), label="interleave")
    return lambda device: (x.build(dtype=dtype, device=device).repeat(*reps),
                           x.build(dtype=dtype, device=device).repeat_interleave(r, 0))


def nonzero_case(data, dtype):
    x = data.draw(specs(low=-2, high=2), label="x")
    return lambda device: torch.nonzero(x.build(dtype=dtype, device=device))


def sum_case(data, dtype):
    x = data.draw(specs(), label="x")
    return lambda device: x.build(dtype=dtype, device=device).sum()


def mean_case(data, dtype):
    x = data.draw(specs(shapes=shapes(min_side=1)), label="x")
    return lambda device: x.build(dtype=dtype, device=device).mean()


def reshape_case(data, dtype):
    from strategies.shapes import reshapes

    x = data.draw(specs(), label="x")
    new = data.draw(reshapes(x.shape), label="new_shape")
    return lambda device: x.build(dtype=dtype, device=device).reshape(new)


def conv_case(data, dtype):
    groups, k, stride, padding = (data.draw(st.integers(lo, hi), label=name) for name, lo, hi in
                                  [("groups", 1, 2), ("k", 1, 3), ("stride", 1, 2), ("padding", 0, 1)])
    h, w = data.draw(st.integers(k, 6), label="h"), data.draw(st.integers(k, 6), label="w")
    x = data.draw(specs(shape=(2, 2 * groups, h, w)), label="x")
    with private_rng(data.draw(st.integers(0, 2**16), label="init_seed")):
        conv = torch.nn.Conv2d(2 * groups, 2 * groups, k, stride=stride, padding=padding, groups=groups)
    return lambda device: conv.to(device, dtype)(x.build(dtype=dtype, device=device))


def tf32_conv_tolerance(device):
    """cuDNN may run float32 convolutions in TF32 on Ampere and later (allow_tf32 defaults to True,
    as documented under 'TensorFloat-32 (TF32) on Ampere (and later) devices')."""
    if torch.device(device).type == "cuda" and torch.backends.cudnn.allow_tf32:
        return {torch.float32: dict(rtol=2e-3, atol=2e-3)}
    return {}


def batchnorm_case(data, dtype):
    x = data.draw(specs(shapes=st.tuples(st.integers(2, 5), st.integers(1, 4))), label="x")

    def run(device):
        t = x.build(dtype=dtype, device=device)
        bn = torch.nn.BatchNorm1d(x.shape[1]).to(device, dtype)
        trained = bn.train()(t)
        return trained, bn.running_mean, bn.running_var, bn.eval()(t)
    return run


def accumulated_grad_case(data, dtype):
    x = data.draw(specs(), label="x")
    times = data.draw(st.integers(2, 3), label="times")

    def run(device):
        t = x.build(dtype=dtype, device=device, requires_grad=True)
        for _ in range(times):
            function_of(t).backward()
        return t.grad
    return run


def vjp_case(data, dtype):
    m, n = data.draw(st.integers(1, 4), label="m"), data.draw(st.integers(1, 4), label="n")
    A, v, x = (data.draw(specs(shape=s), label=k) for k, s in (("A", (m, n)), ("v", (m,)), ("x", (n,))))

    def run(device):
        xt = x.build(dtype=dtype, device=device, requires_grad=True)
        (A.build(dtype=dtype, device=device) @ xt.sin()).backward(v.build(dtype=dtype, device=device))
        return xt.grad
    return run


def sgd_case(data, dtype):
    x = data.draw(specs(layouts=("contiguous",)), label="w")
    lr = data.draw(st.floats(1e-3, 1.0), label="lr")

    def run(device):
        w = x.build(dtype=dtype, device=device).requires_grad_()
        opt = torch.optim.SGD([w], lr=lr)
        (w.sin() * 3).sum().backward()
        opt.step()
        return w.detach()
    return run


CASES = [
    Case("softmax.range_and_sum", FLOATING, unary(F.softmax)),
    Case("softmax.log_softmax_exp", F32_64, unary(F.log_softmax)),
    Case("softmax.dtype_casts_first", FLOATING, unary(lambda t, d: F.softmax(t, d, dtype=torch.float64))),
    Case("losses.nll_none", F32_64, nll_case("none")),
    Case("losses.nll_sum", F32_64, nll_case("sum")),
    Case("losses.nll_mean_weighted", F32_64, nll_case("mean")),
    Case("losses.ce_equals_nll_log_softmax", F32_64, cross_entropy_case),
    Case("losses.ce_probability_targets", F32_64, probability_targets_case),
    Case("losses.mse_reductions", FLOATING, mse_case),
    Case("losses.kl_div_definition", F32_64, kl_case(reduction="sum")),
    Case("losses.kl_div_log_target", F32_64, kl_case(reduction="sum", log_target=True)),
    Case("losses.kl_div_batchmean", F32_64, kl_case(reduction="batchmean")),
    Case("reductions.max_dim_values_indices", DTYPE_GROUPS["real"], max_case),
    Case("reductions.argmax_first_on_ties", DTYPE_GROUPS["real"],
         unary(lambda t, d: torch.argmax(t, d) if t.dim() else torch.argmax(t),
               shapes=shapes(min_dims=1, min_side=1), low=-2, high=2)),
    Case("reductions.sum_promotes_integral", DTYPE_GROUPS["integral"], sum_case),
    Case("reductions.mean_is_sum_over_numel", FLOATING, mean_case),
    Case("reductions.clamp_matches_clip", DTYPE_GROUPS["real"], clamp_case),
    Case("reductions.nonzero_shape", DTYPE_GROUPS["all"], nonzero_case, meta=False),
    Case("reductions.where_broadcasts", FLOATING, where_case),
    Case("reductions.add_out", DTYPE_GROUPS["numeric"],
         binary(lambda a, b: torch.add(a, b, out=a.new_empty(torch.broadcast_shapes(a.shape, b.shape))))),
    Case("matmul.mul_elementwise", DTYPE_GROUPS["float_and_complex"], binary(torch.mul)),
    Case("matmul.matmul_semantics", F32_64, binary(torch.matmul, "(m?,n),(n,p?)->(m?,p?)")),
    Case("matmul.mm_2d_only", F32_64, binary(torch.mm, "(m,n),(n,p)->(m,p)", max_dims=0)),
    Case("matmul.bmm_batches", F32_64, bmm_case),
    Case("distances.pdist_length", F32_64, points_case(F.pdist)),
    Case("distances.pdist_rebuilds_cdist", F32_64, points_case(lambda t: torch.cdist(t, t))),
    Case("joining.cat_existing_dim", DTYPE_GROUPS["representative"], cat_case),
    Case("shape_ops.repeat_tiles", DTYPE_GROUPS["representative"], repeat_case),
    Case("views.reshape_view_or_copy", DTYPE_GROUPS["representative"], reshape_case),
    Case("modules.conv2d_output_shape", F32_64, conv_case, tf32_conv_tolerance),
    Case("modules.eval_batchnorm_running_stats", F32_64, batchnorm_case),
    Case("autograd.grad_accumulates", F32_64, accumulated_grad_case),
    Case("autograd.vector_jacobian_product", F32_64, vjp_case),
    Case("optim.sgd_step", F32_64, sgd_case),
]


def _compare(cpu, other, device, tolerances, what):
    if isinstance(cpu, tuple):
        assert isinstance(other, tuple) and len(other) == len(cpu), f"{what}: {device} gave {type(other)}"
        for i, (a, b) in enumerate(zip(cpu, other)):
            _compare(a, b, device, tolerances, f"{what}[{i}]")
        return
    assert (other.dtype, tuple(other.shape)) == (cpu.dtype, tuple(cpu.shape)), \
        f"{what}: {device} gave {other.dtype}{tuple(other.shape)}, cpu {cpu.dtype}{tuple(cpu.shape)}"
    if torch.device(device).type == "meta":
        return  # meta tensors carry no values
    if cpu.dtype.is_floating_point or cpu.dtype.is_complex:
        assert_close(other.cpu(), cpu, equal_nan=True, **tolerances.get(cpu.dtype, {}))
    else:
        assert torch.equal(other.cpu(), cpu), f"{what}: {device} and cpu differ"


@pytest.mark.off_cpu
@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=pytest.mark.behaviour(c.behaviour))
                                  for c in CASES])
@given(data=st.data())
def test_device_agrees_with_cpu(device, case, data):
    kind = torch.device(device).type
    if kind == "meta" and not case.meta:
        pytest.skip("not applicable on meta: the output's shape depends on values meta tensors lack")
    dtypes = [d for d in case.dtypes if supported_on(kind, d)]  # no float64 on MPS, say
    if not dtypes:
        pytest.skip(f"not applicable: {kind} supports none of {', '.join(map(str, case.dtypes))}")
    dtype = data.draw(st.sampled_from(dtypes), label="dtype")
    run = case.make(data, dtype)
    cpu = run("cpu")
    other = run(device)
    tolerances = case.rtol_atol(device) if case.rtol_atol else {}
    _compare(cpu, other, device, tolerances, case.behaviour)
