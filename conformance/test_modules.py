"""Modules: hooks run on __call__, parameters register, state_dict aliases, modes, Conv2d shape."""

import copy
import functools
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn
from torch.testing import assert_close

from conformance.checks import assert_equal, assert_same_storage, independent_array, private_rng
from conformance.harness.declaration import Divergence, Operation
from conformance.harness.releases import torch_at_least
from strategies import specs
from strategies.samples import Arg, Made, Sample, call_forms, dims
from strategies.shapes import shapes
from strategies.tensors import WRITABLE_LAYOUTS as WRITABLE
from strategies.tensors import label


def made(cls, *args, seed: int = 0, **kwargs) -> Made:
    """A module argument of a declaration: cls(*args, **kwargs) built on the CPU under `seed`, then
    moved to each side's device and dtype. The options it was made with stay readable, as the
    drawn values they are, in `.make.args` and `.make.keywords`."""
    spelled = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])
    return Made(f"nn.{cls.__name__}({spelled})", functools.partial(cls, *args, **kwargs), seed)


def small_model(device, width=3):
    with private_rng():  # initialisers draw from the global generator
        return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2)).to(device)


@pytest.mark.behaviour("modules.call_runs_hooks")
@given(width=st.integers(1, 4))
def test_calling_runs_hooks_forward_does_not(device, width):
    model = small_model(device, width)
    events = []
    # prepend left out (False): each hook fires after those registered before it
    model.register_forward_pre_hook(lambda m, args: events.append("pre"))
    model.register_forward_pre_hook(lambda m, args: events.append("pre2"))
    model.register_forward_hook(lambda m, args, out: events.append("post"))
    model.register_forward_hook(lambda m, args, out: events.append("post2"))
    x = torch.ones(1, width, device=device)
    out = model(x)
    assert events == ["pre", "pre2", "post", "post2"], "hooks did not run in registration order"
    events.clear()
    direct = model.forward(x)
    assert events == [] and torch.equal(out, direct)
    # always_call left out (False): a forward that raises runs no forward hook
    failing = Raising()
    failing.register_forward_hook(lambda m, args, out: events.append("after a raise"))
    with pytest.raises(LookupError):
        failing(x)
    assert events == [], "a forward hook ran although forward raised"


class Raising(nn.Module):
    def forward(self, x):
        raise LookupError("this forward raises")


@pytest.mark.behaviour("modules.parameter_is_tensor")
@given(shape=st.lists(st.integers(0, 3), max_size=3))
def test_parameter_is_a_registering_tensor_subclass(device, shape):
    p = nn.Parameter(torch.zeros(shape, device=device))
    assert isinstance(p, torch.Tensor) and issubclass(nn.Parameter, torch.Tensor) and p.requires_grad
    module = nn.Module()
    module.weight = p
    plain = torch.zeros(shape, device=device)
    module.plain = plain
    assert dict(module.named_parameters()) == {"weight": p}


@pytest.mark.behaviour("modules.named_parameters")
@given(widths=st.lists(st.integers(1, 3), min_size=2, max_size=4))
def test_named_parameters_use_dotted_paths(device, widths):
    with private_rng():
        layers = [nn.Linear(a, b) for a, b in zip(widths, widths[1:])]
    model = nn.Sequential(*layers).to(device)
    names = [name for name, _ in model.named_parameters()]
    assert names == [f"{i}.{kind}" for i in range(len(layers)) for kind in ("weight", "bias")]
    assert [id(p) for _, p in model.named_parameters()] == [id(p) for p in model.parameters()]
    # remove_duplicate left out (True): a layer held twice gives its parameters once, under the first path
    shared = nn.Sequential(layers[0], layers[0]).to(device)
    assert [name for name, _ in shared.named_parameters()] == ["0.weight", "0.bias"], "a shared parameter came twice"


@pytest.mark.behaviour("modules.state_dict_aliases")
@given(width=st.integers(1, 4))
def test_state_dict_aliases_the_parameters(device, width):
    model = small_model(device, width)
    state = model.state_dict()
    saved = copy.deepcopy(state)
    for name, param in model.named_parameters():
        assert not state[name].requires_grad
        assert_same_storage(state[name], param, f"state_dict()[{name!r}]")
    with torch.no_grad():
        for param in model.parameters():
            param.add_(1)
    for name, param in model.named_parameters():
        assert_equal(state[name], param.detach(), "state_dict did not follow the update")
        assert_equal(saved[name] + 1, param.detach(), "deepcopy did not keep the old values")


@pytest.mark.behaviour("modules.load_state_dict_copies")
@given(width=st.integers(1, 4))
def test_load_state_dict_copies_values_in(device, width):
    model, source = small_model(device, width), small_model(device, width)
    before = {name: p for name, p in model.named_parameters()}
    model.load_state_dict(source.state_dict())
    for name, p in model.named_parameters():
        assert p is before[name] and torch.equal(p, source.state_dict()[name])
    with torch.no_grad():
        for p in source.parameters():
            p.add_(1)
    for name, p in model.named_parameters():
        assert not torch.equal(p, dict(source.named_parameters())[name])
    # strict left out (True): a key the module does not have is refused
    with pytest.raises(RuntimeError):  # the type is observed
        model.load_state_dict({**source.state_dict(), "extra": torch.zeros(1, device=device)})


def eval_dropout(p: float) -> nn.Module:
    return nn.Dropout(p).eval()


@st.composite
def eval_dropout_samples(draw):
    # nonzero values, so a dropped element (0) is told from a kept one; the scaling is linear in x,
    # so neither sign nor magnitude adds a case
    x = draw(specs(low=0.5, high=2), label="x")
    p = draw(st.floats(0, 1), label="p")  # p over its whole range
    return Sample((x, Made(f"nn.Dropout({p!r}).eval()", functools.partial(eval_dropout, p))))


EVAL_DROPOUT = Operation(
    "modules.eval_dropout_identity",
    dtypes="float32",
    samples=eval_dropout_samples(),
    call=lambda x, dropout: dropout(x),
)


@EVAL_DROPOUT.property
def test_dropout_is_identity_in_eval(device, dtype, sample):
    (x, dropout), _ = sample.build(dtype=dtype, device=device)
    assert not dropout.training
    assert_equal(EVAL_DROPOUT.call(x, dropout), x)


@pytest.mark.behaviour("modules.eval_dropout_identity")
@pytest.mark.dtypes("float32")
# Train mode draws which elements to drop: random, so no declaration (the eval case above is one).
@given(x=specs(low=0.5, high=2), p=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))  # as above
def test_dropout_in_train_zeroes_and_scales_the_rest(device, dtype, x, p, seed):
    t = x.build(dtype=dtype, device=device)
    with private_rng(seed, device):
        out = nn.Dropout(p).train()(t)
    kept = out != 0
    assert_close(out[kept], t[kept] / (1 - p))
    # 1 - p a power of two (p = 0.5, or p under 2^-53, where 1 - p is 1.0): 1 / (1 - p) too, so the scaled values are exact
    if 1 - p > 0 and math.frexp(1 - p)[0] == 0.5:
        assert_equal(out[kept], t[kept] * (1 / (1 - p)), f"Dropout(p={p}) did not scale the kept values by exactly {1 / (1 - p)}")
    if p == 0:  # zeroed with probability 0, the rest scaled by 1 / (1 - 0) = 1: x itself
        assert_equal(out, t, "Dropout(p=0) changed its input's values")
    zeroed, n = int((~kept).sum()), t.numel()
    if 0 < p < 1 and n:  # each element zeroed independently with probability p: Binomial(n, p) zeroed
        tail = min(binomial_tails(n, p, zeroed))
        assert tail >= 1e-9, f"{zeroed} of {n} elements zeroed with p={p}: a tail probability {tail:.3g}"


def binomial_tails(n: int, p: float, k: int) -> tuple[float, float]:
    """P(X <= k) and P(X >= k) for X ~ Binomial(n, p), 0 < p < 1."""
    pmf = [
        math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p) + (n - i) * math.log1p(-p))
        for i in range(n + 1)
    ]
    return sum(pmf[: k + 1]), sum(pmf[k:])


def batchnorm_train_then_eval(x, bn):
    """One training step of `bn` on x (updating its running statistics), then its eval output on
    x: (training output, running mean and var after the step, eval output)."""
    trained = bn.train()(x)
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    return trained, mean, var, bn.eval()(x)


@st.composite
def batchnorm_samples(draw):
    x = draw(specs(shapes=st.tuples(st.integers(2, 5), st.integers(1, 4))), label="x")
    return Sample((x, made(nn.BatchNorm1d, x.shape[1])))


BATCHNORM = Operation(
    "modules.eval_batchnorm_running_stats",
    dtypes="float32_64",
    samples=batchnorm_samples(),
    call=lambda x, bn: batchnorm_train_then_eval(x, bn),
)


@BATCHNORM.property
def test_batchnorm_in_eval_uses_running_stats(device, dtype, sample):
    (t, bn), _ = sample.build(dtype=dtype, device=device)
    _, mean, var, out = BATCHNORM.call(t, bn)
    assert_close(out, (t - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias)
    assert_equal(bn.running_mean, mean, "eval() must not update the running statistics")


@pytest.mark.behaviour("modules.modes_independent")
@given(grad_on=st.booleans())
def test_module_mode_and_grad_mode_are_independent(device, grad_on):
    model = small_model(device)
    with torch.set_grad_enabled(grad_on):
        model.eval()
        assert torch.is_grad_enabled() is grad_on and model.training is False
        model.train()
        assert torch.is_grad_enabled() is grad_on and model.training is True
        model.train(False)  # "or equivalently module.train(False)"
        assert torch.is_grad_enabled() is grad_on and model.training is False
        model.train()
    with torch.no_grad():
        assert model.training is True
        assert model(torch.ones(1, 3, device=device)).requires_grad is False
    assert model.training is True


@pytest.mark.behaviour("modules.train_eval_return_self")
@given(depth=st.integers(1, 3))
def test_train_and_eval_return_the_module(device, depth):
    model = nn.Sequential(*[small_model(device) for _ in range(depth)])
    assert model.eval() is model and not any(m.training for m in model.modules())
    assert model.train() is model and all(m.training for m in model.modules())


@pytest.mark.behaviour("modules.sequential_shares_layers")
@given(width=st.integers(1, 4))
def test_sequential_of_modules_values_shares_layers(device, width):
    s1 = small_model(device, width)
    s2 = nn.Sequential(*s1._modules.values())
    assert all(a is b for a, b in zip(s1, s2))
    with torch.no_grad():
        s2[0].weight.add_(1)
    assert_equal(s1[0].weight, s2[0].weight)


class Assigned(nn.Module):
    def __init__(self, names):
        super().__init__()
        for name in names:
            setattr(self, name, nn.Identity())


ATTRIBUTE_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(lambda n: not hasattr(nn.Module, n))


@pytest.mark.behaviour("modules.modules_is_dict")
@given(names=st.lists(ATTRIBUTE_NAMES, unique=True, max_size=6))
def test_assigned_submodules_are_registered_in_order_in_a_plain_dict(device, names):
    model = Assigned(names).to(device)
    assert [name for name, _ in model.named_children()] == names
    assert list(model.children()) == [getattr(model, name) for name in names]
    assert type(model._modules) is dict


def conv2d_output_size(n, *, kernel_size, stride, padding, dilation, **_):
    """The documented output size: floor((n + 2 padding - dilation (kernel - 1) - 1) / stride + 1)."""
    return (n + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


@st.composite
def conv2d_options(draw):
    groups, cin_per, cout_per = (
        draw(st.integers(1, n), label=k) for k, n in (("groups", 3), ("in_per_group", 2), ("out_per_group", 2))
    )
    return dict(
        in_channels=groups * cin_per,
        out_channels=groups * cout_per,
        groups=groups,
        kernel_size=draw(st.integers(1, 3), label="kernel_size"),
        stride=draw(st.integers(1, 3), label="stride"),
        padding=draw(st.integers(0, 2), label="padding"),
        dilation=draw(st.integers(1, 2), label="dilation"),
    )


@st.composite
def conv2d_samples(draw, *, fits: bool):
    """Sample(x, conv): an input whose height and width give an output of at least one element
    (fits), or of none in at least one of them (not fits), and a Conv2d made from a seed."""
    options = draw(conv2d_options())
    reach = options["dilation"] * (options["kernel_size"] - 1) + 1 - 2 * options["padding"]  # smallest fitting size
    if fits:
        h, w = (draw(st.integers(max(1, reach), 8), label=k) for k in "hw")
    else:
        if reach < 2:  # every size fits these options: take a kernel that no 1-pixel input fits
            options.update(kernel_size=3, padding=0)
            reach = 2 * options["dilation"] + 1
        small, other = draw(st.integers(1, reach - 1), label="too_small"), draw(st.integers(1, 8), label="other")
        h, w = (small, other) if draw(st.booleans(), label="height_too_small") else (other, small)
    x = draw(specs(shape=(2, options["in_channels"], h, w)), label="x")
    return Sample((x, made(nn.Conv2d, **options, seed=draw(st.integers(0, 2**16), label="init_seed"))))


CONV2D = Operation(
    "modules.conv2d_output_shape",
    dtypes="float32_64",
    samples=conv2d_samples(fits=True),
    call=lambda x, conv: conv(x),
    divergences=(
        Divergence(
            "cuda",
            "tf32",
            applies=lambda: torch.backends.cudnn.allow_tf32,
            reason="cuDNN may use TF32 tensor cores for float32 convolutions on Ampere "
            "and later ('TensorFloat-32 (TF32) on Ampere (and later) devices')",
        ),
    ),
)


def conv2d_reference(x, weight, bias, *, stride, padding, dilation, groups, **_):
    """The documented out(N_i, C_out_j) = bias(C_out_j) + sum_k weight(C_out_j, k) * input(N_i, k), * the
    valid 2D cross-correlation, over the input zero-padded on both sides, each output channel summing over
    the input channels of its group; in NumPy float64."""
    cout, cin_per, k, _ = weight.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho, wo = ((n + 2 * padding - dilation * (k - 1) - 1) // stride + 1 for n in x.shape[2:])
    out = np.zeros((x.shape[0], cout, ho, wo))
    cout_per = cout // groups
    for g in range(groups):
        inputs, kernels = padded[:, g * cin_per : (g + 1) * cin_per], weight[g * cout_per : (g + 1) * cout_per]
        for i in range(k):
            for j in range(k):
                rows = slice(i * dilation, i * dilation + stride * (ho - 1) + 1, stride)
                cols = slice(j * dilation, j * dilation + stride * (wo - 1) + 1, stride)
                products = np.einsum("ncij,oc->noij", inputs[:, :, rows, cols], kernels[:, :, i, j])
                out[:, g * cout_per : (g + 1) * cout_per] += products
    return out if bias is None else out + bias[None, :, None, None]


def assert_conv2d_values(out, x, conv, options, dtype, device):
    """out, conv's result on x (a float64 NumPy array of its values), against the documented
    cross-correlation in float64, within the rounding bound of its sum of products."""
    weight = independent_array(conv.weight.detach().cpu()).astype(np.float64)
    bias = None if conv.bias is None else independent_array(conv.bias.detach().cpu()).astype(np.float64)
    expected = conv2d_reference(x, weight, bias, **options)
    magnitude = conv2d_reference(np.abs(x), np.abs(weight), None if bias is None else np.abs(bias), **options)
    eps = torch.finfo(dtype).eps
    if torch.device(device).type == "cuda" and dtype == torch.float32 and torch.backends.cudnn.allow_tf32:
        eps = 2.0**-10  # "This module supports TensorFloat32": TF32 keeps 10 bits of mantissa
    terms = weight.shape[1] * weight.shape[2] * weight.shape[3] + 1
    bound = (terms + 1) * eps * magnitude + torch.finfo(dtype).tiny
    error = np.abs(independent_array(out.detach().cpu()).astype(np.float64) - expected)
    assert (error <= bound).all(), f"Conv2d is not the documented cross-correlation: largest error {error.max()} over the bound"


@CONV2D.property
def test_conv2d_output_shape_formula(device, dtype, sample):
    x, conv = sample.args
    options = conv.make.keywords  # as drawn
    (x_built, conv_built), _ = sample.build(dtype=dtype, device=device)
    out = CONV2D.call(x_built, conv_built)
    h, w = x.shape[2:]
    assert out.shape == (2, options["out_channels"], conv2d_output_size(h, **options), conv2d_output_size(w, **options))
    assert out.dtype == dtype, "Conv2d's result is not in the input's dtype"
    values = independent_array(x.logical_values(dtype)).astype(np.float64)
    assert_conv2d_values(out, values, conv_built, options, dtype, device)


@pytest.mark.behaviour("modules.conv2d_output_shape")
@pytest.mark.dtypes("float32")
@given(sample=conv2d_samples(fits=False))
def test_conv2d_input_smaller_than_the_kernel_raises(device, dtype, sample):
    with pytest.raises(RuntimeError):
        CONV2D(sample, dtype=dtype, device=device)


def nested_model(depth: int, width: int) -> nn.Module:
    """Sequentials nested `depth` deep, `width` layers wide at each level."""
    if depth == 0:
        return nn.Linear(2, 2)
    return nn.Sequential(*(nested_model(depth - 1, width) for _ in range(width)))


@pytest.mark.behaviour("modules.apply_visits_every_module")
@given(depth=st.integers(0, 3), width=st.integers(1, 3))
def test_apply_visits_every_submodule_and_self(device, depth, width):
    with private_rng():
        model = nested_model(depth, width).to(device)
    visited = []
    assert model.apply(visited.append) is model
    assert sorted(map(id, visited)) == sorted(map(id, model.modules())), "apply missed or repeated a module"


@st.composite
def init_constant_samples(draw):
    # every layout that can be written; finite values within float16's range, so that every
    # floating dtype can hold them; a tensor that requires grad, as a parameter does, or not
    x = draw(specs(layouts=WRITABLE), label="x")
    requires_grad = draw(st.booleans(), label="requires_grad")
    return Sample((Arg(x, requires_grad=requires_grad), draw(st.floats(-6e4, 6e4), label="val")))


INIT_CONSTANT = Operation(
    "modules.init_constant_fills",
    dtypes="floating",
    samples=init_constant_samples(),
    call=lambda t, val: nn.init.constant_(t, val),
)


def saved_for_backward(t):
    """A sum that saved t's values (t.detach(), which shares t's version counter) for a gradient."""
    weight = torch.ones(t.shape, dtype=t.dtype, device=t.device, requires_grad=True)
    return (weight * t.detach()).sum()


def assert_refuses_backward(saved, what):
    """The autograd notes: a tensor "saved for backward ... but modified in-place afterwards", "an error
    will be raised once backward pass is started" (RuntimeError: observed)."""
    with pytest.raises(RuntimeError):
        saved.backward()
        pytest.fail(f"{what} wrote in place, yet a graph that saved the tensor before ran backward")


@INIT_CONSTANT.property
def test_init_constant_fills_in_place(device, dtype, sample):
    (t, val), _ = sample.build(dtype=dtype, device=device)
    saved = saved_for_backward(t)
    returned = INIT_CONSTANT.call(t, val)
    assert returned is t
    assert_refuses_backward(saved, "constant_")
    assert_equal(t.detach().cpu(), torch.full(t.shape, val, dtype=dtype), "the filled tensor")
    assert t.grad_fn is None and t.is_leaf
    parameter = nn.Parameter(sample.args[0].spec.build(dtype=dtype, device=device))
    assert nn.init.constant_(parameter, val) is parameter and parameter.grad_fn is None and parameter.is_leaf
    assert_equal(parameter.detach().cpu(), torch.full(t.shape, val, dtype=dtype), "the filled parameter")


FLATTEN = Operation(
    "modules.flatten_keeps_batch",
    dtypes="representative",
    # Two dims at least: the documented input shape (*, S_start, ..., S_end, *) starts at dim 1.
    samples=specs(shapes=st.lists(st.integers(0, 4), min_size=2, max_size=4).map(tuple)).map(
        lambda x: Sample((x, made(nn.Flatten)))
    ),
    call=lambda x, flatten: flatten(x),
)


@FLATTEN.property
def test_flatten_keeps_the_batch_dimension(device, dtype, sample):
    x, _ = sample.args
    out = FLATTEN(sample, dtype=dtype, device=device)
    rest = 1
    for side in x.shape[1:]:
        rest *= side
    assert tuple(out.shape) == (x.shape[0], rest)
    assert_equal(out.cpu(), x.logical_values(dtype).reshape(x.shape[0], rest), "the flattened values")


class WithBuffers(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm1d(3)
        self.register_buffer("kept", torch.zeros(2))
        self.register_buffer("scratch", torch.zeros(2), persistent=False)


@pytest.mark.behaviour("modules.state_dict_persistent_buffers")
@pytest.mark.meta_too
def test_state_dict_has_parameters_and_persistent_buffers(device):
    with private_rng():
        model = WithBuffers().to(device)
    keys = set(model.state_dict())
    assert {"norm.weight", "norm.bias", "norm.running_mean", "norm.running_var", "norm.num_batches_tracked", "kept"} <= keys
    assert "scratch" not in keys, "a buffer registered with persistent=False is in state_dict"
    # keep_vars left out (False): the tensors are detached from autograd, not the parameters themselves
    state = model.state_dict()
    assert state["norm.weight"] is not model.norm.weight and not state["norm.weight"].requires_grad


@pytest.mark.behaviour("modules.dataparallel_keeps_module")
@pytest.mark.device_types("cpu")  # without GPUs DataParallel only wraps; the GPU case needs two devices
def test_dataparallel_keeps_the_model_under_module(device):
    with private_rng():
        model = nested_model(1, 2)
    model.note = "an attribute of the wrapped model"
    wrapped = nn.DataParallel(model)
    assert wrapped.module is model
    assert wrapped.module.note == model.note
    with pytest.raises(AttributeError):
        wrapped.note  # noqa: B018 - reaching it on the wrapper is the documented mistake


@pytest.mark.behaviour("modules.parameter_not_a_variable_subclass")
@given(x=specs())
def test_parameter_subclasses_tensor_not_variable(device, x):
    p = nn.Parameter(x.build(dtype=torch.float32, device=device))
    assert nn.Parameter.__mro__[1] is torch.Tensor
    assert not issubclass(nn.Parameter, torch.autograd.Variable)
    assert isinstance(p, torch.autograd.Variable) and isinstance(torch.zeros(1), torch.autograd.Variable)


@st.composite
def kaiming_cases(draw):
    """(weight shape, fan_in, fan_out, options): a Linear (out, in) or Conv2d (out, in, k, k) weight of at
    least 4096 elements, so that the sample variance is tight enough to tell the fan modes apart."""
    k = draw(st.sampled_from([1, 3]), label="kernel")
    low = 64 if k == 1 else 22
    out_features, in_features = (draw(st.integers(low, 2 * low), label=n) for n in ("out", "in"))
    shape = (out_features, in_features) if k == 1 else (out_features, in_features, k, k)
    options = dict(
        a=draw(st.floats(0, 1), label="a"),
        mode=draw(st.sampled_from(["fan_in", "fan_out"]), label="mode"),
        nonlinearity=draw(st.sampled_from(["leaky_relu", "relu"]), label="nonlinearity"),
    )
    return shape, in_features * k * k, out_features * k * k, options


@pytest.mark.behaviour("modules.kaiming_normal_std")
@pytest.mark.dtypes("float32_64")
@given(case=kaiming_cases(), seed=st.integers(0, 2**32 - 1))
def test_kaiming_normal_draws_with_the_documented_std(device, dtype, case, seed):
    shape, fan_in, fan_out, options = case
    weight = torch.empty(shape, dtype=dtype, device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    saved = saved_for_backward(weight)
    assert nn.init.kaiming_normal_(weight, **options, generator=generator) is weight
    assert_refuses_backward(saved, "kaiming_normal_")
    again = torch.empty_like(weight)
    nn.init.kaiming_normal_(again, **options, generator=torch.Generator(device=device).manual_seed(seed))
    assert_equal(again, weight, "kaiming_normal_ did not draw from the generator given: the same seed gave other values")
    # gain = sqrt(2 / (1 + a^2)) for leaky_relu (a is its negative slope), sqrt(2) for relu; std = gain / sqrt(fan)
    a = options["a"] if options["nonlinearity"] == "leaky_relu" else 0.0
    std = math.sqrt(2 / (1 + a * a)) / math.sqrt(fan_in if options["mode"] == "fan_in" else fan_out)
    values = weight.double().cpu().numpy().ravel() / std
    n = values.size
    # n * (sample variance about the known mean 0) / std^2 is chi-square with n degrees of freedom: mean n,
    # variance 2n. Six standard deviations on each bound make a false failure about 2e-9 per example (normal
    # approximation, n >= 4096); the mean gets six standard errors likewise.
    assert abs((values**2).mean() - 1) <= 6 * math.sqrt(2 / n), f"variance ratio {(values**2).mean():.4f}"
    assert abs(values.mean()) <= 6 / math.sqrt(n), f"mean {values.mean() * std:.4g}"


@st.composite
def conv2d_call_forms(draw):
    """The notes' signature, Conv2d(in, out, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True),
    called with positional arguments, keywords or defaults."""
    groups = draw(st.integers(1, 3), label="groups")
    values = dict(
        in_channels=groups * draw(st.integers(1, 2), label="in_per_group"),
        out_channels=groups * draw(st.integers(1, 2), label="out_per_group"),
        kernel_size=draw(st.integers(1, 4), label="kernel_size"),
        stride=draw(st.integers(1, 3), label="stride"),
        padding=draw(st.integers(0, 2), label="padding"),
        dilation=draw(st.integers(1, 2), label="dilation"),
        groups=groups,
        bias=draw(st.booleans(), label="bias"),
    )
    names = list(values)
    positional = draw(st.integers(3, len(names)), label="positional")  # the first three have no default
    optional = names[positional:]
    defaulted = draw(st.sets(st.sampled_from(optional)) if optional else st.just(set()), label="defaulted")
    defaults = dict(stride=1, padding=0, dilation=1, groups=1, bias=True)
    expected = {n: (defaults[n] if n in defaulted else v) for n, v in values.items()}
    args = [values[n] for n in names[:positional]]
    kwargs = {n: values[n] for n in names[positional:] if n not in defaulted}
    return args, kwargs, expected


@pytest.mark.behaviour("modules.conv2d_signature")
# even kernels with padding="same" pad a copy of the input, and torch says so: a performance note, not a failure
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")
@pytest.mark.dtypes("float32_64")
@given(form=conv2d_call_forms(), padding_mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
def test_conv2d_takes_the_notes_signature_and_the_newer_arguments(device, dtype, form, padding_mode):
    args, kwargs, expected = form
    with private_rng():
        conv = nn.Conv2d(*args, **kwargs)
    pair = lambda v: (v, v)
    assert (conv.in_channels, conv.out_channels, conv.groups) == (
        expected["in_channels"],
        expected["out_channels"],
        expected["groups"],
    )
    assert (conv.kernel_size, conv.stride, conv.padding, conv.dilation) == tuple(
        pair(expected[n]) for n in ("kernel_size", "stride", "padding", "dilation")
    )
    assert (conv.bias is not None) == expected["bias"] and conv.padding_mode == "zeros"
    # Newer than the notes: padding_mode, device and dtype, and padding="valid" / "same" (stride 1 only).
    with private_rng():
        made_here = nn.Conv2d(*args, **kwargs, padding_mode=padding_mode, device=device, dtype=dtype)
    assert made_here.padding_mode == padding_mode
    assert (made_here.weight.device.type, made_here.weight.dtype) == (torch.device(device).type, dtype)
    k, d = expected["kernel_size"], expected["dilation"]
    side = d * (k - 1) + 1 + 2  # large enough for every kernel, with room to pad
    x = torch.ones(2, expected["in_channels"], side, side + 1, dtype=dtype, device=device)
    channels = (expected["in_channels"], expected["out_channels"], k)
    with private_rng():
        same, valid = (
            nn.Conv2d(*channels, padding=p, dilation=d, groups=expected["groups"], device=device, dtype=dtype)
            for p in ("same", "valid")
        )
    same_out, valid_out = same(x), valid(x)
    assert same_out.shape == (2, expected["out_channels"], *x.shape[-2:]), "padding='same' changed the size"
    assert valid_out.shape == (2, expected["out_channels"], side - d * (k - 1), side + 1 - d * (k - 1)), "padding='valid' padded"
    assert same_out.dtype == valid_out.dtype == dtype, "Conv2d's result is not in its dtype"
    # "padding='valid' is the same as no padding": the cross-correlation of the unpadded input
    options = dict(stride=1, padding=0, dilation=d, groups=expected["groups"])
    assert_conv2d_values(valid_out, np.ones(tuple(x.shape)), valid, options, dtype, device)
    with pytest.raises(ValueError):
        nn.Conv2d(*channels, stride=2, padding="same")
    # device= given: the parameters are made there (the meta device is on every machine)
    assert nn.Conv2d(*channels, device="meta").weight.is_meta, "Conv2d ignored device="


@st.composite
def linear_samples(draw):
    """Sample(x, layer): x of shape (*, in_features), any number of leading dims, and a Linear."""
    in_features, out_features = draw(st.integers(1, 6), label="in"), draw(st.integers(1, 6), label="out")
    leading = draw(shapes(max_dims=3, max_side=3), label="leading")
    x = draw(specs(shape=(*leading, in_features)), label="x")
    bias = draw(st.booleans(), label="bias")
    return Sample((x, made(nn.Linear, in_features, out_features, bias=bias, seed=draw(st.integers(0, 2**16), label="init_seed"))))


LINEAR = Operation("modules.linear_affine", dtypes="float32_64", samples=linear_samples(), call=lambda x, layer: layer(x))


@LINEAR.property
def test_linear_is_x_times_a_transposed_plus_b(device, dtype, sample):
    x_spec, made_layer = sample.args
    (in_features, out_features), bias = made_layer.make.args, made_layer.make.keywords["bias"]  # as drawn
    (x_built, layer), _ = sample.build(dtype=dtype, device=device)
    assert layer.weight.shape == (out_features, in_features)
    assert (layer.bias is None) == (not bias) and (not bias or layer.bias.shape == (out_features,))
    y = LINEAR.call(x_built, layer)
    assert y.shape == (*x_spec.shape[:-1], out_features) and y.dtype == dtype
    # y = x A^T + b in float64 from the same values, with the rounding bound of an n-term dot product
    x = independent_array(x_spec.logical_values(dtype)).astype(np.float64)
    a = independent_array(layer.weight.detach().cpu()).astype(np.float64)
    b = independent_array(layer.bias.detach().cpu()).astype(np.float64) if bias else 0.0
    expected = x @ a.T + b
    bound = (in_features + 1) * torch.finfo(dtype).eps * (np.abs(x) @ np.abs(a).T + np.abs(b)) + torch.finfo(dtype).tiny
    error = np.abs(independent_array(y.detach().cpu()).astype(np.float64) - expected)
    assert (error <= bound).all(), f"largest error {error.max()} over the bound"


def layer_norm_with_drawn_affine(normalized_shape, *, eps, elementwise_affine, bias):
    """nn.LayerNorm whose weight and bias (documented to start at 1 and 0) are drawn from U(-2, 2),
    so that gamma and beta matter."""
    layer = nn.LayerNorm(normalized_shape, eps=eps, elementwise_affine=elementwise_affine, bias=bias)
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.uniform_(-2, 2)
    return layer


@st.composite
def layer_norm_samples(draw):
    """Sample(x, layer): normalized over the last 1-3 dims of x, with or without the affine parameters and bias."""
    # normalized_shape: one dim at least, none empty (a mean over no element has no value)
    normalized = draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), label="normalized_shape")
    leading = draw(shapes(max_dims=2, max_side=3), label="leading")
    x = draw(specs(shape=(*leading, *normalized)), label="x")
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.5]), label="eps")
    # the three documented combinations, each drawn as often (bias only matters with the affine parameters)
    affine, bias = draw(st.sampled_from([(True, False), (True, True), (False, False)]), label="elementwise_affine, bias")
    options = dict(eps=eps, elementwise_affine=affine, bias=bias)
    seed = draw(st.integers(0, 2**16), label="init_seed")
    what = f"nn.LayerNorm({normalized!r}, eps={eps!r}, elementwise_affine={affine}, bias={bias}) with U(-2, 2) parameters"
    return Sample((x, Made(what, functools.partial(layer_norm_with_drawn_affine, normalized, **options), seed)))


LAYER_NORM = Operation(
    "modules.layer_norm_formula", dtypes="float32_64", samples=layer_norm_samples(), call=lambda x, layer: layer(x)
)


@LAYER_NORM.property
def test_layer_norm_is_the_documented_formula(device, dtype, sample):
    x_spec, made_layer = sample.args
    normalized, affine, bias = made_layer.make.args[0], *map(made_layer.make.keywords.get, ("elementwise_affine", "bias"))
    eps = made_layer.make.keywords["eps"]
    (x_built, layer), _ = sample.build(dtype=dtype, device=device)
    y = LAYER_NORM.call(x_built, layer)
    x = independent_array(x_spec.logical_values(dtype)).astype(np.float64)
    axes = tuple(range(x.ndim - len(normalized), x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)  # the biased estimator, as documented
    expected = (x - mean) / np.sqrt(var + eps)
    assert (layer.weight is not None) == affine and (layer.bias is not None) == bias
    if affine:
        expected = expected * independent_array(layer.weight.detach().cpu()).astype(np.float64)
        if bias:
            expected = expected + independent_array(layer.bias.detach().cpu()).astype(np.float64)
    tol = 1e-4 if dtype == torch.float32 else 1e-10  # a normalised value in O(1) through a handful of roundings
    assert y.shape == x.shape and y.dtype == dtype, "LayerNorm: not x's shape and dtype"
    np.testing.assert_allclose(independent_array(y.detach().cpu()).astype(np.float64), expected, rtol=tol, atol=tol)
    # the functional form with the layer's own parameters (None without them), eps given
    functional = F.layer_norm(x_built, normalized, layer.weight, layer.bias, eps)
    assert functional.shape == x.shape and functional.dtype == dtype, "F.layer_norm: not x's shape and dtype"
    # a result of inputs that require grad requires grad (the affine parameters do, when there are any)
    requiring = any(t is not None and t.requires_grad for t in (x_built, layer.weight, layer.bias))
    assert functional.requires_grad == requiring and y.requires_grad == requiring, "LayerNorm's result left the graph"
    np.testing.assert_allclose(
        independent_array(functional.detach().cpu()).astype(np.float64), expected, rtol=tol, atol=tol, err_msg="F.layer_norm"
    )


def _phi(v: float) -> float:
    return 0.5 * (1 + math.erf(v / math.sqrt(2)))


def _tanh_cdf(v: float) -> float:
    return 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))


FORMULAS = {
    "relu": lambda v: max(0.0, v),
    "gelu": lambda v: v * _phi(v),
    "gelu_tanh": lambda v: v * _tanh_cdf(v),
}
# 1 - the CDF each GELU multiplies x by, computed without cancellation: where it is under eps / 8, x
# times it is under a quarter of an ulp of x, so the formula's value rounded to the dtype is x itself.
TAILS = {
    "gelu": lambda v: 0.5 * math.erfc(v / math.sqrt(2)),
    "gelu_tanh": lambda v: 0.5 * (1 - math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))),
}


def _logistic(z: float) -> float:
    """1 / (1 + e^-z), without overflow: 0.5 (1 + tanh(y)) is _logistic(2 y)."""
    if z < 0:
        e = math.exp(z)
        return e / (1 + e)
    return 1 / (1 + math.exp(-z))


# The CDF itself, computed without cancellation where it is tiny (x very negative): where |x| times it is
# under a quarter of the dtype's smallest subnormal, the formula's value rounded to the dtype is 0.
CDFS = {
    "gelu": lambda v: 0.5 * math.erfc(-v / math.sqrt(2)),
    "gelu_tanh": lambda v: _logistic(2 * math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)),
}
# The documented spellings of each activation -> the formula it computes. Lambdas, so that torch
# is looked up when they run (as declarations do).
ACTIVATION_FORMS = {
    "F.relu(x)": lambda x: F.relu(x),
    "torch.relu(x)": lambda x: torch.relu(x),
    "nn.ReLU()(x)": lambda x: nn.ReLU()(x),
    "F.gelu(x)": lambda x: F.gelu(x),
    "nn.GELU()(x)": lambda x: nn.GELU()(x),
    "F.gelu(x, approximate='tanh')": lambda x: F.gelu(x, approximate="tanh"),
    "nn.GELU(approximate='tanh')(x)": lambda x: nn.GELU(approximate="tanh")(x),
}
FORMULA_OF = {form: "gelu_tanh" if "tanh" in form else "relu" if "relu" in form.lower() else "gelu" for form in ACTIVATION_FORMS}


@st.composite
def activation_samples(draw):
    # [-30, 30] reaches both saturated tails of GELU's Phi and tanh; [-4.5, 30] puts a quarter of the values
    # where GELU's two formulas (erf and tanh) differ by far more than the float32 and float64 bound below (up to
    # 4e-4, for |x| < 4.5), so a GELU that computes the other one is told apart, and most of the rest in the
    # saturated upper tail, where the result is x exactly; the formulas are checked on finite values
    low = draw(st.sampled_from([-30, -4.5]), label="range")
    label(f"range=[{low}, 30]")
    x = draw(specs(low=low, high=30), label="x")
    form = draw(st.sampled_from(sorted(ACTIVATION_FORMS)), label="form")
    label(f"form={form}")
    return Sample((x,), {"form": form})


ACTIVATION = Operation(
    "modules.activation_formulas",
    dtypes="floating",
    samples=activation_samples(),
    call=lambda x, form: ACTIVATION_FORMS[form](x),
)


@ACTIVATION.property
def test_relu_and_gelu_follow_their_formulas(device, dtype, sample):
    (x,), form = sample.args, sample.kwargs["form"]
    (x_built,), kwargs = sample.build(dtype=dtype, device=device)
    out = ACTIVATION.call(x_built, **kwargs)
    values = independent_array(x.logical_values(dtype)).astype(np.float64)
    formula = FORMULA_OF[form]
    expected = np.vectorize(FORMULAS[formula], otypes=[np.float64])(values) if values.size else values
    assert out.shape == x.shape and out.dtype == dtype, f"{form}: not x's shape and dtype"
    # inplace left out (its default False): x keeps its values
    assert_equal(x_built.cpu(), x.logical_values(dtype), f"{form} wrote into its input")
    got = independent_array(out.cpu()).astype(np.float64)
    if formula == "relu":  # max(0, x) is x or 0: no rounding, so exactly
        np.testing.assert_array_equal(got, expected, err_msg=f"{form} is not max(0, x)")
        return
    # x * CDF(x) computed in the dtype: the CDF's rounding, a few ulps of 1, scaled by |x|
    eps = torch.finfo(dtype).eps
    bound = 8 * eps * np.abs(values) + torch.finfo(dtype).tiny
    error = np.abs(got - expected)
    assert (error <= bound).all(), f"{form}: largest error {error.max()} over the bound"
    # exactly where the formula leaves no rounding: GELU(0) = 0, and x where the CDF is within eps / 8 of 1
    tail = np.vectorize(TAILS[formula], otypes=[np.float64])(values) if values.size else values
    exact = (values == 0) | ((values > 0) & (tail < eps / 8))
    np.testing.assert_array_equal(got[exact], values[exact], err_msg=f"{form} is not exact where the formula rounds to x")
    # and 0 where x very negative makes |x| CDF(x) under a quarter of the dtype's smallest subnormal
    cdf = np.vectorize(CDFS[formula], otypes=[np.float64])(values) if values.size else values
    subnormal = torch.finfo(dtype).smallest_normal * eps
    zero = (values < 0) & (np.abs(values) * cdf < subnormal / 4)
    np.testing.assert_array_equal(got[zero], 0 * values[zero], err_msg=f"{form} is not 0 where the formula rounds to 0")


def clip_gradients(grads, max_norm, norm_type):
    """clip_grad_norm_ over tensors whose gradients are `grads` (which it scales in place); its total norm."""
    parameters = [torch.zeros_like(g).requires_grad_() for g in grads]
    for p, g in zip(parameters, grads):
        p.grad = g
    return nn.utils.clip_grad_norm_(parameters, max_norm, norm_type=norm_type)


@st.composite
def clip_samples(draw):
    # gradients are modified in place: every layout that can be written
    grads = draw(st.lists(specs(shapes=shapes(min_dims=1, max_dims=2, min_side=1), layouts=WRITABLE), min_size=1, max_size=3))
    max_norm = draw(st.floats(0.01, 50), label="max_norm")
    return Sample((grads, max_norm), {"norm_type": draw(st.sampled_from([1.0, 2.0, 3.0, math.inf]), label="norm_type")})


CLIP_GRAD_NORM = Operation(
    "modules.clip_grad_norm",
    dtypes="float32_64",
    samples=clip_samples(),
    call=lambda grads, max_norm, norm_type: clip_gradients(grads, max_norm, norm_type),
)


@CLIP_GRAD_NORM.property
def test_clip_grad_norm_scales_by_the_documented_coefficient(device, dtype, sample):
    (specs_of_grads, max_norm), norm_type = sample.args, sample.kwargs["norm_type"]
    (grads, _), kwargs = sample.build(dtype=dtype, device=device)
    values = [independent_array(g.logical_values(dtype)).astype(np.float64).ravel() for g in specs_of_grads]
    # the norm of the per-gradient norms, "as if ... concatenated into a single vector"
    flat = np.concatenate(values)
    total = np.abs(flat).max() if norm_type == math.inf else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    returned = CLIP_GRAD_NORM.call(grads, max_norm, **kwargs)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(float(returned), total, **tol)
    coefficient = min(max_norm / (total + 1e-6), 1.0)  # grad * min(max_norm / (total_norm + 1e-6), 1)
    for g, v in zip(grads, values):
        np.testing.assert_allclose(independent_array(g.cpu()).astype(np.float64).ravel(), v * coefficient, **tol)


@st.composite
def embedding_samples(draw):
    """Sample(indices, table): int64 indices in [0, num) of any shape and layout, an Embedding with padding_idx or none."""
    num, dim = draw(st.integers(1, 8), label="num_embeddings"), draw(st.integers(1, 5), label="embedding_dim")
    padding = draw(st.one_of(st.none(), st.integers(-num, num - 1)), label="padding_idx")
    # indices in [0, num): the documented domain of the lookup (an index outside the table raises)
    indices = draw(specs(shapes=shapes(max_dims=3, max_side=4), low=0, high=num), label="indices")
    table = made(nn.Embedding, num, dim, padding_idx=padding, seed=draw(st.integers(0, 2**16), label="init_seed"))
    return Sample((Arg(indices, dtype=torch.int64), table))


EMBEDDING = Operation(
    "modules.embedding_lookup", dtypes="float32_64", samples=embedding_samples(), call=lambda indices, table: table(indices)
)


@EMBEDDING.property
def test_embedding_returns_the_weight_rows_and_padding_gets_no_gradient(device, dtype, sample):
    (indices, made_table) = sample.args
    (num, dim), padding = made_table.make.args, made_table.make.keywords["padding_idx"]  # as drawn
    (idx, table), _ = sample.build(dtype=dtype, device=device)
    out = EMBEDDING.call(idx, table)
    weight = independent_array(table.weight.detach().cpu())
    idx_values = independent_array(indices.spec.logical_values(torch.int64))
    assert out.shape == (*indices.spec.shape, dim)
    assert out.dtype == table.weight.dtype == dtype, "the looked-up rows are not in the weight's dtype"
    np.testing.assert_array_equal(independent_array(out.detach().cpu()), weight[idx_values])
    if padding is not None:
        row = padding % num
        assert not bool(table.weight[row].any()), "the padding_idx row is not initialised to zeros"
        out.sum().backward()
        assert not bool(table.weight.grad[row].any()), "the padding_idx entry received a gradient"


@pytest.mark.behaviour("modules.module_list_registers")
@given(count=st.integers(0, 5), extra=st.integers(0, 3))
def test_module_list_indexes_like_a_list_and_registers_its_modules(device, count, extra):
    with private_rng():
        layers = [nn.Linear(2, 2) for _ in range(count)]
        holder = nn.Module()
        holder.layers = nn.ModuleList(layers)
        for _ in range(extra):
            holder.layers.append(nn.Linear(2, 2))
    assert len(holder.layers) == count + extra
    assert all(holder.layers[i] is layers[i] for i in range(count)) and list(holder.layers)[:count] == layers
    assert sum(1 for _ in holder.parameters()) == 2 * (count + extra), "a module in the list is not registered"
    names = [name for name, _ in holder.named_parameters()]
    assert names[:2] == (["layers.0.weight", "layers.0.bias"] if count + extra else [])
    holder.to(device)
    assert all(p.device.type == torch.device(device).type for p in holder.parameters())


@st.composite
def identity_samples(draw):
    x = draw(specs(), label="x")
    args = draw(st.lists(st.integers(), max_size=3), label="args")
    what = f"nn.Identity({', '.join(map(repr, args)) + ', ' if args else ''}unused=1)"
    return Sample((x, Made(what, functools.partial(nn.Identity, *args, unused=1))))


IDENTITY = Operation(
    "modules.identity_passes_through",
    dtypes="float32",
    samples=identity_samples(),
    call=lambda x, identity: identity(x),
    not_compiled="nn.Identity runs no operation: Dynamo returns the input itself and hands no graph to the "
    "backend, so nothing compiled runs to compare",
)


@IDENTITY.property
def test_identity_returns_its_input_whatever_it_was_built_with(device, dtype, sample):
    (t, identity), _ = sample.build(dtype=dtype, device=device)
    assert IDENTITY.call(t, identity) is t


def attention(q, k, v, *, attn_mask, is_causal, scale):
    """F.scaled_dot_product_attention, a boolean mask given as rows of bools made a tensor on q's device."""
    if isinstance(attn_mask, tuple):
        attn_mask = torch.tensor(attn_mask, dtype=torch.bool, device=q.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale)


@st.composite
def attention_samples(draw):
    """Sample(query (*, L, E), key (*, S, E), value (*, S, Ev), attn_mask=, is_causal=, scale=)."""
    batch = draw(shapes(max_dims=2, max_side=2), label="batch")
    L, S, E, Ev = (draw(st.integers(1, 4), label=n) for n in ("L", "S", "E", "Ev"))
    # values within +-3: the reference (the docstring's formula in float64) and the kernel agree at the
    # dtype's tolerance; the formula itself holds for any value
    q, k, v = (
        draw(specs(shape=(*batch, *s), low=-3, high=3), label=n) for n, s in (("q", (L, E)), ("k", (S, E)), ("v", (S, Ev)))
    )
    mask_kind = draw(st.sampled_from(["none", "causal", "bool", "float"]), label="mask")
    label(f"mask={mask_kind}")
    mask = None
    if mask_kind == "bool":  # keep one allowed key per query: an all-False row has no documented value
        rows = draw(hnp.arrays(np.bool_, (L, S)), label="bool_mask")
        rows[:, 0] = True
        mask = tuple(tuple(map(bool, row)) for row in rows)
    elif mask_kind == "float":
        # within +-3, as q, k and v above: the reference and the kernel agree at the dtype's tolerance
        mask = draw(specs(shape=(L, S), low=-3, high=3), label="float_mask")
    scale = draw(st.one_of(st.none(), st.floats(0.1, 2)), label="scale")
    return Sample((q, k, v), {"attn_mask": mask, "is_causal": mask_kind == "causal", "scale": scale})


ATTENTION = Operation(
    "modules.scaled_dot_product_attention",
    dtypes="float32_64",
    samples=attention_samples(),
    call=lambda q, k, v, **options: attention(q, k, v, **options),
)


def attention_reference(q, k, v, *, attn_mask, is_causal, scale):
    """The docstring's reference implementation, in NumPy float64 (attn_mask: None, a bool or a float array)."""
    L, S = q.shape[-2], k.shape[-2]
    factor = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    bias = np.zeros((L, S))
    if is_causal:
        bias[~np.tril(np.ones((L, S), dtype=bool))] = -np.inf
    if attn_mask is not None and attn_mask.dtype == np.bool_:
        bias[~attn_mask] = -np.inf
    elif attn_mask is not None:
        bias = bias + attn_mask
    weight = q @ np.swapaxes(k, -2, -1) * factor + bias
    weight = np.exp(weight - weight.max(-1, keepdims=True))
    return (weight / weight.sum(-1, keepdims=True)) @ v


@ATTENTION.property
def test_attention_matches_the_documented_reference(device, dtype, sample):
    arrays = [independent_array(s.logical_values(dtype)).astype(np.float64) for s in sample.args]
    options = dict(sample.kwargs)
    mask = options["attn_mask"]
    if isinstance(mask, tuple):
        options["attn_mask"] = np.array(mask, dtype=np.bool_)
    elif mask is not None:
        options["attn_mask"] = independent_array(mask.logical_values(dtype)).astype(np.float64)
    out = ATTENTION(sample, dtype=dtype, device=device)
    expected = attention_reference(*arrays, **options)
    assert out.shape == expected.shape and out.dtype == dtype, "not (*, L, Ev) in the inputs' dtype"
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    np.testing.assert_allclose(independent_array(out.cpu()).astype(np.float64), expected, rtol=tol, atol=tol)


@pytest.mark.behaviour("modules.init_normal_moments")
@pytest.mark.dtypes("float32_64")
@given(mean=st.floats(-5, 5), std=st.floats(0.01, 5), seed=st.integers(0, 2**32 - 1))
def test_init_normal_draws_with_the_given_mean_and_std(device, dtype, mean, std, seed):
    t = torch.empty(64, 128, dtype=dtype, device=device)  # 8192 samples
    generator = torch.Generator(device=device).manual_seed(seed)
    saved = saved_for_backward(t)
    assert nn.init.normal_(t, mean, std, generator=generator) is t
    assert_refuses_backward(saved, "normal_")
    again = torch.empty_like(t)
    nn.init.normal_(again, mean, std, generator=torch.Generator(device=device).manual_seed(seed))
    assert_equal(again, t, "normal_ did not draw from the generator given: the same seed gave other values")
    values = (t.double().cpu().numpy().ravel() - mean) / std
    n = values.size
    # As for kaiming_normal_: six standard errors on the mean and on the variance ratio, a false
    # failure about 2e-9 per example.
    assert abs(values.mean()) <= 6 / math.sqrt(n), f"mean off by {values.mean() * std:.4g}"
    assert abs((values**2).mean() - 1) <= 6 * math.sqrt(2 / n) + 6 / n, f"variance ratio {(values**2).mean():.4f}"


@pytest.mark.behaviour("modules.module_dict_registers")
@given(names=st.lists(ATTRIBUTE_NAMES, unique=True, max_size=5), extra=st.lists(ATTRIBUTE_NAMES, unique=True, max_size=3))
def test_module_dict_indexes_like_a_dict_in_insertion_order_and_registers(device, names, extra):
    extra = [n for n in extra if n not in names]
    with private_rng():
        layers = {name: nn.Linear(2, 2) for name in names}
        holder = nn.Module()
        holder.table = nn.ModuleDict(layers)
        for name in extra:
            holder.table[name] = nn.Linear(2, 2)
    assert list(holder.table.keys()) == names + extra, "ModuleDict does not keep the order of insertion"
    assert all(holder.table[name] is layers[name] for name in names), "ModuleDict does not index its modules by key"
    assert len(holder.table) == len(names) + len(extra) and all(name in holder.table for name in names + extra)
    got = [name for name, _ in holder.named_parameters()]
    want = [f"table.{name}.{kind}" for name in names + extra for kind in ("weight", "bias")]
    assert got == want, "a module in the ModuleDict is not registered under its key"
    holder.to(device)
    assert all(p.device.type == torch.device(device).type for p in holder.parameters())


DROPOUT_FORMS = ("training=False", "p=0", "p=1")


def functional_dropout(x, case, p, inplace):
    """F.dropout in one of its deterministic cases: training=False (any p), p=0 or p=1 with
    training left out (its default True); inplace left out (False) or True."""
    given = {"inplace": True} if inplace else {}
    if case == "training=False":
        return F.dropout(x, p, training=False, **given)
    return F.dropout(x, 0.0 if case == "p=0" else 1.0, **given)


@st.composite
def functional_dropout_samples(draw):
    # inplace writes x: every layout that can be written
    x = draw(specs(layouts=WRITABLE, special_values=True), label="x")
    case = draw(st.sampled_from(DROPOUT_FORMS), label="case")
    inplace = draw(st.booleans(), label="inplace")
    label(f"case={case}", f"inplace={inplace}")
    return Sample((x, case, draw(st.floats(0, 1), label="p"), inplace))


FUNCTIONAL_DROPOUT = Operation(
    "modules.functional_dropout",
    dtypes="floating",
    samples=functional_dropout_samples(),
    call=lambda x, case, p, inplace: functional_dropout(x, case, p, inplace),
    not_compiled="with training on, F.dropout draws its mask from the global CPU generator even at p=0 and p=1, which "
    "the compiled harness's global-state check refuses; and F.dropout(training=False) returns its input itself in eager "
    "mode but a copy under aot_eager (aliasing no doc fixes): not yet split into a compiled-safe declaration",
)


@FUNCTIONAL_DROPOUT.property
def test_functional_dropout_identity_and_zeros(device, dtype, sample):
    x_spec, case, _, inplace = sample.args
    (x, *_), _ = sample.build(dtype=dtype, device=device)
    values = x_spec.logical_values(dtype)
    out = FUNCTIONAL_DROPOUT.call(x, *sample.args[1:])
    assert out.shape == values.shape and out.dtype == dtype, f"F.dropout ({case}): not x's shape and dtype"
    if case == "p=1":  # every element zeroed (NaN and +-inf: test_functional_dropout_p1_zeroes_non_finite_elements)
        finite = values.isfinite()
        assert_equal(
            out.cpu()[finite], torch.zeros_like(values)[finite], f"F.dropout(p=1) did not zero every element (inplace={inplace})"
        )
    else:  # nothing zeroed, nothing scaled (1 / (1 - 0) = 1)
        assert_close(out.cpu(), values, rtol=0, atol=0, equal_nan=True, msg=f"F.dropout ({case}) is not the identity")
    if inplace:
        assert_close(x.cpu(), out.cpu(), rtol=0, atol=0, equal_nan=True, msg="F.dropout(inplace=True) did not write x")


@pytest.mark.behaviour("modules.functional_dropout")
@pytest.mark.dtypes("float32_64")
# Train mode draws which elements to drop: random, so no declaration (the deterministic cases above are one).
@given(
    x=specs(low=0.5, high=2), p=st.floats(0, 0.99), seed=st.integers(0, 2**32 - 1)
)  # nonzero values: a kept one is told from a dropped one; p < 1: 1 / (1 - p) finite
def test_functional_dropout_scales_the_kept_values(device, dtype, x, p, seed):
    t = x.build(dtype=dtype, device=device)
    with private_rng(seed, device):
        out = F.dropout(t, p)  # training left out: True
    kept = out != 0
    assert_close(out[kept], t[kept] / (1 - p), msg=lambda m: f"F.dropout did not scale the kept values by 1 / (1 - p)\n{m}")
    zeroed, n = int((~kept).sum()), t.numel()
    if p > 0 and n:  # each element zeroed independently with probability p: Binomial(n, p) zeroed
        tail = min(binomial_tails(n, p, zeroed))
        assert tail >= 1e-9, f"F.dropout zeroed {zeroed} of {n} elements with p={p}: a tail probability {tail:.3g}"


@pytest.mark.behaviour("modules.functional_dropout")
@pytest.mark.dtypes("float32_64")
@given(x=specs(special_values=True), inplace=st.booleans())
def test_functional_dropout_p1_zeroes_non_finite_elements(device, dtype, x, inplace):
    t = x.build(dtype=dtype, device=device)
    out = F.dropout(t, 1.0, inplace=inplace)  # training left out: True; every element zeroed
    assert_equal(out.cpu(), torch.zeros(x.shape, dtype=dtype), "F.dropout(p=1) did not zero every element, NaN and inf too")


NORMALIZE_P = [None, 1.0, 2.0, 3.0, math.inf]  # None: left out, its default 2


@st.composite
def normalize_samples(draw):
    """Sample(x, p=, dim=, eps=): a norm along a dim needs one dim at least; dim left out (its
    default 1) where x has two."""
    x = draw(specs(shapes=shapes(min_dims=1)), label="x")  # a norm along a dim: one dim at least
    dim = draw(st.one_of(st.none(), dims(x.ndim)) if x.ndim >= 2 else dims(x.ndim), label="dim")
    p = draw(st.sampled_from(NORMALIZE_P), label="p")
    eps = draw(st.sampled_from([None, 1e-12, 0.5, 100.0]), label="eps")  # None: left out, its default 1e-12
    label(f"p={p}", "dim=omitted" if dim is None else "dim=given", f"eps={eps}")
    kwargs = {k: v for k, v in (("p", p), ("dim", dim), ("eps", eps)) if v is not None}
    return Sample((x,), kwargs)


NORMALIZE = Operation(
    "modules.normalize_formula", dtypes="float32_64", samples=normalize_samples(), call=lambda x, **k: F.normalize(x, **k)
)


@NORMALIZE.property
def test_normalize_divides_by_the_clamped_p_norm(device, dtype, sample):
    (x_spec,), kwargs = sample.args, sample.kwargs
    p, dim, eps = kwargs.get("p", 2.0), kwargs.get("dim", 1), kwargs.get("eps", 1e-12)
    if p == math.inf and x_spec.shape[dim] == 0:  # the largest of no element has no value (observed: raises)
        with pytest.raises(RuntimeError, match="empty"):
            NORMALIZE(sample, dtype=dtype, device=device)
        return
    out = NORMALIZE(sample, dtype=dtype, device=device)
    x = independent_array(x_spec.logical_values(dtype)).astype(np.float64)
    a = np.abs(x)
    norm = a.max(axis=dim, keepdims=True, initial=0.0) if p == math.inf else (a**p).sum(axis=dim, keepdims=True) ** (1 / p)
    expected = x / np.maximum(norm, eps)  # v / max(||v||_p, eps)
    assert out.shape == x.shape and out.dtype == dtype, "F.normalize: not x's shape and dtype"
    tol = 1e-5 if dtype == torch.float32 else 1e-12  # a norm and a quotient, a few roundings
    np.testing.assert_allclose(
        independent_array(out.cpu()).astype(np.float64),
        expected,
        rtol=tol,
        atol=tol,
        err_msg="F.normalize is not v / max(||v||_p, eps)",
    )


def pair(value) -> tuple[int, int]:
    """A pooling or convolution argument as (height, width): an int for both, a 1-tuple for both, or a pair."""
    if isinstance(value, int):
        return value, value
    return (value[0], value[0]) if len(value) == 1 else tuple(value)


def pooled_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """The documented output size floor((n + 2p - d (k - 1) - 1) / s + 1), `ceil` instead of `floor` with ceil_mode,
    less the last window where it would start in the right padding ((out - 1) s >= n + p)."""
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def pooling_windows(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> list[list[int]]:
    """For each output position along one dim, the input positions of its window (start s i - p, spacing d): those
    inside [-p, n + p), padding included (negative and >= n positions are padding)."""
    windows = []
    for i in range(pooled_size(n, k, s, p, d, ceil_mode)):
        windows.append([j for j in (s * i - p + d * m for m in range(k)) if -p <= j < n + p])
    return windows


@st.composite
def pooling_options(draw, *, dilation: bool, one_tuple: bool, padded: bool = False):
    """kernel_size, stride (left out: its default kernel_size), padding and (max pooling) dilation, each an int or a
    tuple (a 1-tuple where the docs allow one), with padding at most half the kernel, as documented; `padded`:
    a padding of one at least along H (so a kernel of two at least there)."""

    def spelled(h, w, name):
        forms = ["int", "pair", "one"] if one_tuple else ["int", "pair"]
        form = draw(st.sampled_from(forms if h == w else ["pair"]), label=f"{name}_form")
        label(f"{name}={form}")
        return h if form == "int" else (h,) if form == "one" else (h, w)

    kh, kw = draw(st.integers(2 if padded else 1, 3), label="kernel_h"), draw(st.integers(1, 3), label="kernel_w")
    options = {"kernel_size": spelled(kh, kw, "kernel_size")}
    if draw(st.booleans(), label="stride_given"):
        options["stride"] = spelled(*(draw(st.integers(1, 3), label=f"stride_{n}") for n in "hw"), "stride")
    else:
        label("stride=omitted")
    # "padding ... must be >= 0 and <= kernel_size / 2" (F.max_pool2d); "pad should be at most half of effective
    # kernel size" (AvgPool2d)
    ph, pw = draw(st.integers(1 if padded else 0, kh // 2), label="padding_h"), draw(st.integers(0, kw // 2), label="padding_w")
    if ph or pw or draw(st.booleans(), label="padding_given"):
        options["padding"] = spelled(ph, pw, "padding")
    if dilation and draw(st.booleans(), label="dilation_given"):
        options["dilation"] = spelled(*(draw(st.integers(1, 2), label=f"dilation_{n}") for n in "hw"), "dilation")
    options["ceil_mode"] = draw(st.booleans(), label="ceil_mode")
    label(f"ceil_mode={options['ceil_mode']}")
    return options


@st.composite
def pooled_input(draw, options):
    """x of shape (N, C, H, W) or (C, H, W), any layout, with H and W large enough for one window at least."""
    (kh, kw), (ph, pw) = pair(options["kernel_size"]), pair(options.get("padding", 0))
    (dh, dw) = pair(options.get("dilation", 1))
    # the documented output size is at least 1 only where H + 2 padding >= dilation (kernel - 1) + 1
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 7), label="H")
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 7), label="W")
    # channels: one at least ("3D or 4D (batch mode) tensor with optional 0 dim batch size", the error torch raises);
    # the batch may be empty
    lead = (draw(st.integers(1, 2), label="C"),)
    if draw(st.booleans(), label="batched"):
        lead = (draw(st.integers(0, 2), label="N"), *lead)
    label(f"input_dims={len(lead) + 2}")
    return draw(specs(shape=(*lead, h, w)), label="x")


MAX_POOL_FORMS = {
    "F.max_pool2d": lambda x, **options: F.max_pool2d(x, **options),
    "nn.MaxPool2d": lambda x, **options: nn.MaxPool2d(**options)(x),
}


def max_pool(x, form, *, keep_indices=False, **options):
    """F.max_pool2d or nn.MaxPool2d. With return_indices: the maxima and the input values at the returned indices
    (flat positions in each H x W plane), which the docs fix where a window holds its maximum twice and the index
    does not (a window wholly in the -inf padding has -inf at no index: its value is kept); keep_indices: the
    indices too."""
    out = MAX_POOL_FORMS[form](x, **options)
    if not options.get("return_indices"):
        return out
    values, indices = out
    plane = x.flatten(-2)
    at = plane.gather(-1, indices.flatten(-2).clamp(0, max(plane.shape[-1] - 1, 0))).view_as(values)
    at = torch.where(values == -math.inf, values, at)
    return (values, indices, at) if keep_indices else (values, at)


@st.composite
def max_pool_samples(draw):
    options = draw(pooling_options(dilation=True, one_tuple=False))
    x = draw(pooled_input(options))
    if draw(st.booleans(), label="return_indices_given"):
        options["return_indices"] = draw(st.booleans(), label="return_indices")
    form = draw(call_forms(MAX_POOL_FORMS), label="form")
    return Sample((x, form), options)


MAX_POOL = Operation(
    "modules.max_pool2d_windows",
    dtypes="float32_64",
    samples=max_pool_samples(),
    call=lambda x, form, **options: max_pool(x, form, **options),
)


@MAX_POOL.property
def test_max_pool2d_takes_the_largest_value_of_each_window(device, dtype, sample):
    (x_spec, form), options = sample.args, sample.kwargs
    (kh, kw), (ph, pw) = pair(options["kernel_size"]), pair(options.get("padding", 0))
    (sh, sw), (dh, dw) = pair(options.get("stride", options["kernel_size"])), pair(options.get("dilation", 1))
    ceil_mode = options["ceil_mode"]
    (x_built, _), built_options = sample.build(dtype=dtype, device=device)
    result = max_pool(x_built, form, keep_indices=True, **built_options)
    x = independent_array(x_spec.logical_values(dtype)).astype(np.float64)
    h, w = x.shape[-2:]
    rows, cols = pooling_windows(h, kh, sh, ph, dh, ceil_mode), pooling_windows(w, kw, sw, pw, dw, ceil_mode)
    padded = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)], constant_values=-np.inf)  # -inf padding
    expected = np.empty((*x.shape[:-2], len(rows), len(cols)))
    for i, window_rows in enumerate(rows):
        for j, window_cols in enumerate(cols):
            window = padded[..., [r + ph for r in window_rows], :][..., [c + pw for c in window_cols]]
            expected[..., i, j] = window.reshape(*x.shape[:-2], -1).max(-1) if x.size else 0
    values = result[0] if options.get("return_indices") else result
    assert values.shape == expected.shape and values.dtype == dtype, f"{form}: not the documented output shape"
    np.testing.assert_array_equal(
        independent_array(values.cpu()).astype(np.float64), expected, err_msg=f"{form}: not each window's largest value"
    )
    if options.get("return_indices"):
        _, indices, at_indices = result
        assert indices.dtype == torch.int64 and indices.shape == values.shape
        assert_equal(at_indices, values, f"{form}(return_indices=True): the input at an index is not its window's max")
        flat = independent_array(indices.cpu())
        for i, window_rows in enumerate(rows):
            for j, window_cols in enumerate(cols):
                if not any(0 <= r < h for r in window_rows) or not any(0 <= c < w for c in window_cols):
                    continue  # a window wholly in the padding: its maximum, -inf, is at no input index
                at = flat[..., i, j]
                assert np.all(np.isin(at // w, window_rows) & np.isin(at % w, window_cols)), (
                    f"{form}(return_indices=True): an index outside its window"
                )


AVG_POOL_FORMS = {
    "F.avg_pool2d": lambda x, **options: F.avg_pool2d(x, **options),
    "nn.AvgPool2d": lambda x, **options: nn.AvgPool2d(**options)(x),
}


@st.composite
def avg_pool_samples(draw):
    # count_include_pad given: padded along H, so that the windows at the edge hold padding and the two divisors
    # (counting the padding or not) differ
    count_given = draw(st.booleans(), label="count_include_pad_given")
    options = draw(pooling_options(dilation=False, one_tuple=True, padded=count_given))
    x = draw(pooled_input(options))
    if count_given:
        options["count_include_pad"] = draw(st.booleans(), label="count_include_pad")
    label(f"count_include_pad={options.get('count_include_pad', 'omitted')}")
    if draw(st.booleans(), label="divisor_override_given"):
        options["divisor_override"] = draw(st.integers(1, 5), label="divisor_override")
        label("divisor_override=given")
    else:
        label("divisor_override=omitted")
    form = draw(call_forms(AVG_POOL_FORMS), label="form")
    return Sample((x, form), options)


AVG_POOL = Operation(
    "modules.avg_pool2d_windows",
    dtypes="float32_64",
    samples=avg_pool_samples(),
    call=lambda x, form, **options: AVG_POOL_FORMS[form](x, **options),
)


@AVG_POOL.property
def test_avg_pool2d_averages_each_window(device, dtype, sample):
    (x_spec, form), options = sample.args, sample.kwargs
    (kh, kw), (ph, pw) = pair(options["kernel_size"]), pair(options.get("padding", 0))
    (sh, sw), ceil_mode = pair(options.get("stride", options["kernel_size"])), options["ceil_mode"]
    out = AVG_POOL(sample, dtype=dtype, device=device)
    x = independent_array(x_spec.logical_values(dtype)).astype(np.float64)
    h, w = x.shape[-2:]
    rows, cols = pooling_windows(h, kh, sh, ph, 1, ceil_mode), pooling_windows(w, kw, sw, pw, 1, ceil_mode)
    expected = np.zeros((*x.shape[:-2], len(rows), len(cols)))
    for i, window_rows in enumerate(rows):
        for j, window_cols in enumerate(cols):
            inside_rows, inside_cols = [r for r in window_rows if 0 <= r < h], [c for c in window_cols if 0 <= c < w]
            total = x[..., inside_rows, :][..., inside_cols].sum(axis=(-2, -1))  # the zero padding adds nothing
            if "divisor_override" in options:
                divisor = options["divisor_override"]
            elif options.get("count_include_pad", True):  # its default: the zero padding counts, off-bounds do not
                divisor = len(window_rows) * len(window_cols)
            else:
                divisor = len(inside_rows) * len(inside_cols)
            expected[..., i, j] = total / divisor
    assert out.shape == expected.shape and out.dtype == dtype, f"{form}: not the documented output shape"
    tol = 1e-5 if dtype == torch.float32 else 1e-12  # a sum of at most 9 values and a quotient
    np.testing.assert_allclose(
        independent_array(out.cpu()).astype(np.float64),
        expected,
        rtol=tol,
        atol=tol,
        err_msg=f"{form}: not each window's sum over the documented divisor",
    )


@st.composite
def adaptive_avg_pool_samples(draw):
    """Sample(x, output_size): an int (a square output), an (H, W) pair, or a pair with None (that side kept)."""
    # H and W one at least: an average over a window of no element has no value
    h, w = draw(st.integers(1, 6), label="H"), draw(st.integers(1, 6), label="W")
    lead = (draw(st.integers(1, 2), label="C"),)  # channels: one at least, as for the other 2-D pooling layers
    if draw(st.booleans(), label="batched"):
        lead = (draw(st.integers(0, 2), label="N"), *lead)
    label(f"input_dims={len(lead) + 2}")
    x = draw(specs(shape=(*lead, h, w)), label="x")
    form = draw(st.sampled_from(["int", "pair", "None"]), label="output_size_form")
    label(f"output_size={form}")
    sides = [draw(st.integers(1, 7), label=f"out_{n}") for n in "hw"]
    if form == "int":
        output_size = sides[0]
    elif form == "pair":
        output_size = tuple(sides)
    else:
        output_size = tuple(draw(st.sampled_from([(None, sides[1]), (sides[0], None), (None, None)]), label="None_at"))
    return Sample((x, made(nn.AdaptiveAvgPool2d, output_size)))


ADAPTIVE_AVG_POOL = Operation(
    "modules.adaptive_avg_pool2d_size",
    dtypes="float32_64",
    samples=adaptive_avg_pool_samples(),
    call=lambda x, pool: pool(x),
)


@ADAPTIVE_AVG_POOL.property
def test_adaptive_avg_pool2d_gives_the_asked_size(device, dtype, sample, record_observation):
    x_spec, made_pool = sample.args
    (output_size,) = made_pool.make.args  # as drawn
    out = ADAPTIVE_AVG_POOL(sample, dtype=dtype, device=device)
    x = independent_array(x_spec.logical_values(dtype)).astype(np.float64)
    h, w = x.shape[-2:]
    size = (output_size, output_size) if isinstance(output_size, int) else output_size
    want = (h if size[0] is None else size[0], w if size[1] is None else size[1])  # None: the input's size
    assert out.shape == (*x.shape[:-2], *want) and out.dtype == dtype, "AdaptiveAvgPool2d: not the asked output size"
    got = independent_array(out.cpu()).astype(np.float64)
    # an average over each plane's own elements: between the plane's smallest and largest element
    low, high = x.min(axis=(-2, -1), keepdims=True), x.max(axis=(-2, -1), keepdims=True)
    slack = 4 * torch.finfo(dtype).eps * np.abs(x).max(initial=0)
    assert np.all((got >= low - slack) & (got <= high + slack)), "AdaptiveAvgPool2d: an output outside its plane's range"
    # No doc gives the windows; what torch computes is recorded against floor(i In / Out) .. ceil((i + 1) In / Out).
    windows = [[(i * n // m, -(-(i + 1) * n // m)) for i in range(m)] for n, m in zip((h, w), want)]
    reference = np.zeros(got.shape)
    for i, (r0, r1) in enumerate(windows[0]):
        for j, (c0, c1) in enumerate(windows[1]):
            reference[..., i, j] = x[..., r0:r1, c0:c1].mean(axis=(-2, -1))
    same = np.allclose(got, reference, rtol=1e-5, atol=1e-5)
    record_observation("windows floor(i In / Out) .. ceil((i + 1) In / Out)", "match" if same else "differ")


def cross_correlation(x, weight, bias, *, stride, padding, dilation, groups):
    """The documented N-d convolution in NumPy float64: bias(C_out_j) + sum over the group's input channels k of
    weight(C_out_j, k) cross-correlated with input(N_i, k), the input zero-padded by padding[d] (or (before, after))
    on each side of spatial dim d. x: (N, C_in, *spatial); weight: (C_out, C_in / groups, *kernel). Also the
    absolute terms' sum, for a rounding bound."""
    spatial = x.ndim - 2
    pads = [p if isinstance(p, tuple) else (p, p) for p in padding]
    x = np.pad(x, [(0, 0), (0, 0), *pads])
    kernel = weight.shape[2:]
    out_sizes = [(x.shape[2 + d] - dilation[d] * (kernel[d] - 1) - 1) // stride[d] + 1 for d in range(spatial)]
    n, c_out = x.shape[0], weight.shape[0]
    x = x.reshape(n, groups, x.shape[1] // groups, *x.shape[2:])
    w = weight.reshape(groups, c_out // groups, *weight.shape[1:])
    out, magnitude = np.zeros((n, groups, c_out // groups, *out_sizes)), np.zeros((n, groups, c_out // groups, *out_sizes))
    for offset in itertools.product(*(range(k) for k in kernel)):
        taps = tuple(
            slice(offset[d] * dilation[d], offset[d] * dilation[d] + stride[d] * (out_sizes[d] - 1) + 1, stride[d])
            for d in range(spatial)
        )
        window = x[(slice(None), slice(None), slice(None), *taps)]  # (N, G, C_in / G, *out)
        tap = w[(slice(None), slice(None), slice(None), *offset)]  # (G, C_out / G, C_in / G)
        out += np.einsum("ngc...,goc->ngo...", window, tap)
        magnitude += np.einsum("ngc...,goc->ngo...", np.abs(window), np.abs(tap))
    out, magnitude = out.reshape(n, c_out, *out_sizes), magnitude.reshape(n, c_out, *out_sizes)
    if bias is not None:
        out += bias.reshape(c_out, *[1] * spatial)
        magnitude += np.abs(bias).reshape(c_out, *[1] * spatial)
    return out, magnitude


CONV_FORMS = {1: ("nn.Conv1d",), 2: ("F.conv2d", "nn.Conv2d"), 3: ("nn.Conv3d",)}


@st.composite
def convolution_samples(draw):
    """Sample(x, weight or module, form, options): a Conv1d, F.conv2d or Conv2d, or Conv3d over a batched or
    unbatched input, with drawn stride, padding (an int, per-dim ints, 'valid' or 'same'), dilation, groups and bias."""
    spatial = draw(st.sampled_from(sorted(CONV_FORMS)), label="spatial_dims")
    form = draw(st.sampled_from(CONV_FORMS[spatial]), label="form")
    label(f"form={form}")
    groups = draw(st.integers(1, 2), label="groups")
    c_in, c_out = (groups * draw(st.integers(1, 2), label=n) for n in ("in_per_group", "out_per_group"))
    top = 3 if spatial < 3 else 2  # small 3-d kernels and inputs keep the reference cheap
    kernel = tuple(draw(st.integers(1, top), label=f"kernel_{d}") for d in range(spatial))
    dilation = tuple(draw(st.integers(1, 2), label=f"dilation_{d}") for d in range(spatial))
    padding_kind = draw(st.sampled_from(["ints", "valid", "same"]), label="padding_kind")
    label(f"padding={padding_kind}")
    if padding_kind == "same":  # "this mode doesn't support any stride values other than 1"
        padding, stride = "same", (1,) * spatial
    else:
        padding = (
            (0,) * spatial
            if padding_kind == "valid"
            else tuple(draw(st.integers(0, 2), label=f"pad_{d}") for d in range(spatial))
        )
        stride = tuple(draw(st.integers(1, 3), label=f"stride_{d}") for d in range(spatial))
    reach = [dilation[d] * (kernel[d] - 1) + 1 - (0 if padding == "same" else 2 * padding[d]) for d in range(spatial)]
    # each spatial side fits one kernel at least: a smaller input has no output element (it raises)
    sides = tuple(
        draw(st.integers(max(1, reach[d]), max(1, reach[d]) + (3 if spatial < 3 else 1)), label=f"side_{d}")
        for d in range(spatial)
    )
    batched = draw(st.booleans(), label="batched")
    label(f"batched={batched}")
    x = draw(specs(shape=((2,) if batched else ()) + (c_in, *sides)), label="x")
    has_bias = draw(st.booleans(), label="bias")
    options = dict(stride=stride, padding="valid" if padding_kind == "valid" else padding, dilation=dilation, groups=groups)
    if form == "F.conv2d":
        weight = draw(specs(shape=(c_out, c_in // groups, *kernel)), label="weight")
        bias = draw(specs(shape=(c_out,)), label="bias_values") if has_bias else None
        return Sample((x, weight, bias, form), options)
    cls = {"nn.Conv1d": nn.Conv1d, "nn.Conv2d": nn.Conv2d, "nn.Conv3d": nn.Conv3d}[form]
    module = made(cls, c_in, c_out, kernel, bias=has_bias, **options, seed=draw(st.integers(0, 2**16), label="init_seed"))
    return Sample((x, module, None, form))


def convolution(x, weight, bias, form, **options):
    """F.conv2d(x, weight, bias, **options), or the module `weight` applied to x."""
    if form == "F.conv2d":
        return F.conv2d(x, weight, bias, **options)
    return weight(x)


TF32_CONVOLUTION = Divergence(
    "cuda",
    "tf32",
    applies=lambda: torch.backends.cudnn.allow_tf32,
    reason="cuDNN may use TF32 tensor cores for float32 convolutions on Ampere "
    "and later ('TensorFloat-32 (TF32) on Ampere (and later) devices')",
)

CONVOLUTION = Operation(
    "modules.convolution_cross_correlation",
    dtypes="float32_64",
    samples=convolution_samples(),
    call=lambda x, weight, bias, form, **options: convolution(x, weight, bias, form, **options),
    divergences=(TF32_CONVOLUTION,),
)


@CONVOLUTION.property
def test_convolution_is_the_documented_cross_correlation(device, dtype, sample, record_observation):
    (x_spec, weight_arg, bias_arg, form), options = sample.args, sample.kwargs
    (x_built, weight_built, bias_built, _), built_options = sample.build(dtype=dtype, device=device)
    out = CONVOLUTION.call(x_built, weight_built, bias_built, form, **built_options)
    if form == "F.conv2d":
        weight = independent_array(weight_arg.logical_values(dtype)).astype(np.float64)
        bias = None if bias_arg is None else independent_array(bias_arg.logical_values(dtype)).astype(np.float64)
    else:
        options = {k: weight_arg.make.keywords[k] for k in ("stride", "padding", "dilation", "groups")}  # as drawn
        weight = independent_array(weight_built.weight.detach().cpu()).astype(np.float64)
        bias = None if weight_built.bias is None else independent_array(weight_built.bias.detach().cpu()).astype(np.float64)
    x = independent_array(x_spec.logical_values(dtype)).astype(np.float64)
    batched = x.ndim == weight.ndim
    x = x if batched else x[None]
    spatial, kernel = x.ndim - 2, weight.shape[2:]
    padding = options["padding"]
    if padding == "valid":
        padding = (0,) * spatial
    elif padding == "same":  # the output as large as the input: dilation (kernel - 1) in all, split over both sides
        totals = [options["dilation"][d] * (kernel[d] - 1) for d in range(spatial)]
        padding = tuple((t // 2, t - t // 2) for t in totals)
        uneven = any(t % 2 for t in totals)
    expected, magnitude = cross_correlation(
        x, weight, bias, stride=options["stride"], padding=padding, dilation=options["dilation"], groups=options["groups"]
    )
    if not batched:
        expected, magnitude = expected[0], magnitude[0]
    if options["padding"] == "same":
        assert out.shape[-spatial:] == x.shape[-spatial:], f"{form}(padding='same'): not the input's spatial size"
    assert out.shape == expected.shape and out.dtype == dtype, f"{form}: not the documented output shape"
    got = independent_array(out.detach().cpu()).astype(np.float64)
    # the rounding bound of a sum of products: (terms + 1) eps times the sum of the terms' magnitudes
    terms = weight.shape[1] * math.prod(kernel) + 1
    bound = (terms + 1) * torch.finfo(dtype).eps * magnitude + torch.finfo(dtype).tiny
    error = np.abs(got - expected)
    if options["padding"] == "same" and uneven:  # no doc says which side takes the odd padding element
        record_observation(
            "padding='same' with an odd total puts the extra element", "after" if (error <= bound).all() else "before"
        )
        return
    assert (error <= bound).all(), f"{form}: not the documented cross-correlation (largest error {error.max(initial=0)})"


@st.composite
def conv_transpose_samples(draw):
    """Sample(x, ConvTranspose2d): batched or unbatched x, drawn stride, padding, output_padding, dilation, groups, bias."""
    groups = draw(st.integers(1, 2), label="groups")
    c_in, c_out = (groups * draw(st.integers(1, 2), label=n) for n in ("in_per_group", "out_per_group"))
    kernel, stride, dilation = (
        tuple(draw(st.integers(1, 3 if n != "dilation" else 2), label=f"{n}_{d}") for d in "hw")
        for n in ("kernel", "stride", "dilation")
    )
    # "output_padding must be smaller than either stride or dilation" (torch raises otherwise)
    output_padding = tuple(draw(st.integers(0, max(stride[d], dilation[d]) - 1), label=f"output_padding_{d}") for d in range(2))
    padding = tuple(draw(st.integers(0, 2), label=f"padding_{d}") for d in "hw")
    # sides whose documented output size is one at least: padding crops the full output
    sides = []
    for d in range(2):
        reach = dilation[d] * (kernel[d] - 1) + output_padding[d] + 1 - 2 * padding[d]  # the size of one input element
        smallest = next(n for n in range(1, 10) if (n - 1) * stride[d] + reach >= 1)
        sides.append(draw(st.integers(smallest, smallest + 3), label=f"side_{d}"))
    batched = draw(st.booleans(), label="batched")
    label(f"batched={batched}")
    x = draw(specs(shape=((2,) if batched else ()) + (c_in, *sides)), label="x")
    options = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)
    options["bias"] = draw(st.booleans(), label="bias")
    return Sample(
        (x, made(nn.ConvTranspose2d, c_in, c_out, kernel, **options, seed=draw(st.integers(0, 2**16), label="init_seed")))
    )


CONV_TRANSPOSE = Operation(
    "modules.conv_transpose2d_scatter",
    dtypes="float32_64",
    samples=conv_transpose_samples(),
    call=lambda x, layer: layer(x),
    divergences=(TF32_CONVOLUTION,),
)


@CONV_TRANSPOSE.property
def test_conv_transpose2d_is_the_gradient_of_conv2d(device, dtype, sample):
    x_spec, made_layer = sample.args
    c_in, c_out, kernel = made_layer.make.args
    o = made_layer.make.keywords  # as drawn
    (x_built, layer), _ = sample.build(dtype=dtype, device=device)
    out = CONV_TRANSPOSE.call(x_built, layer)
    weight = independent_array(layer.weight.detach().cpu()).astype(np.float64)  # (C_in, C_out / groups, kH, kW)
    x = independent_array(x_spec.logical_values(dtype)).astype(np.float64)
    batched = x.ndim == 4
    x = x if batched else x[None]
    n, (h, w) = x.shape[0], x.shape[2:]
    (sh, sw), (dh, dw), (ph, pw), (oh, ow) = o["stride"], o["dilation"], o["padding"], o["output_padding"]
    # the gradient of Conv2d with respect to its input: each input element scatters weight * x into the output at
    # stride * i + dilation * k, the full output cropped by padding on both sides; output_padding adds to one side
    full = (n, c_out, (h - 1) * sh + dh * (kernel[0] - 1) + 1 + oh, (w - 1) * sw + dw * (kernel[1] - 1) + 1 + ow)
    expected, magnitude = np.zeros(full), np.zeros(full)
    g_in, g_out = c_in // o["groups"], c_out // o["groups"]
    for g in range(o["groups"]):
        xs, ws = x[:, g * g_in : (g + 1) * g_in], weight[g * g_in : (g + 1) * g_in]
        for a, b in itertools.product(range(kernel[0]), range(kernel[1])):
            rows = slice(a * dh, a * dh + sh * (h - 1) + 1, sh)
            cols = slice(b * dw, b * dw + sw * (w - 1) + 1, sw)
            expected[:, g * g_out : (g + 1) * g_out, rows, cols] += np.einsum("nchw,co->nohw", xs, ws[:, :, a, b])
            magnitude[:, g * g_out : (g + 1) * g_out, rows, cols] += np.einsum(
                "nchw,co->nohw", np.abs(xs), np.abs(ws[:, :, a, b])
            )
    h_out = (h - 1) * sh - 2 * ph + dh * (kernel[0] - 1) + oh + 1
    w_out = (w - 1) * sw - 2 * pw + dw * (kernel[1] - 1) + ow + 1
    expected, magnitude = expected[:, :, ph : ph + h_out, pw : pw + w_out], magnitude[:, :, ph : ph + h_out, pw : pw + w_out]
    if o["bias"]:
        bias = independent_array(layer.bias.detach().cpu()).astype(np.float64).reshape(c_out, 1, 1)
        expected, magnitude = expected + bias, magnitude + np.abs(bias)
    if not batched:
        expected, magnitude = expected[0], magnitude[0]
    assert out.shape == expected.shape and out.dtype == dtype, "ConvTranspose2d: not the documented output shape"
    terms = g_in * kernel[0] * kernel[1] + 1
    bound = (terms + 1) * torch.finfo(dtype).eps * magnitude + torch.finfo(dtype).tiny
    error = np.abs(independent_array(out.detach().cpu()).astype(np.float64) - expected)
    assert (error <= bound).all(), f"ConvTranspose2d: not the gradient of Conv2d (largest error {error.max(initial=0)})"


def normalized(x, axes, eps, mean=None, var=None):
    """(x - E[x]) / sqrt(Var[x] + eps) in float64 over `axes` (the biased variance), or with the given statistics,
    and a rounding bound per element for a dtype of unit roundoff 1: terms of the mean times |x| / sqrt(var + eps)."""
    if mean is None:
        mean = x.mean(axis=axes, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)  # the biased estimator, as documented
    count = math.prod(x.shape[a] for a in axes) if mean is None or axes else 1
    scale = np.sqrt(var + eps)
    largest = np.abs(x).max(axis=axes, keepdims=True) if axes else np.abs(x)
    return (x - mean) / scale, (count + 8) * (1 + (largest + np.abs(mean)) / scale)


# bias= on nn.BatchNorm*d and nn.GroupNorm (a beta only where bias=True, as nn.LayerNorm's) is new: "Adding
# bias argument to NN normalization methods", https://github.com/pytorch/pytorch/pull/176573 (2026-03;
# torch 2.6's constructors take no bias=). Its date places it in 2.12 or 2.13: drawn from 2.13, the first
# release this suite has seen it in, and left out before it (a beta whenever affine, the old signature).
NORM_TAKES_BIAS = torch_at_least("2.13")


def affine_bound(expected, bound, weight, bias, eps_dtype, shape):
    """expected * gamma + beta (channel vectors broadcast along dim 1) and the rounding bound carried through it."""
    if weight is not None:
        gamma = weight.reshape(shape)
        expected, bound = expected * gamma, bound * (np.abs(gamma) + 1)
    if bias is not None:
        beta = bias.reshape(shape)
        expected, bound = expected + beta, bound + 4 * np.abs(beta)
    return expected, bound * eps_dtype


def assert_within(got, expected, bound, what):
    error = np.abs(independent_array(got.detach().cpu()).astype(np.float64) - expected)
    assert got.shape == expected.shape and (error <= bound).all(), f"{what} (largest error {error.max(initial=0)})"


def with_drawn_affine(cls, *args, **kwargs):
    """cls(*args, **kwargs) whose weight and bias (documented to start at 1 and 0) are drawn from U(-2, 2), so that
    gamma and beta matter."""
    layer = cls(*args, **kwargs)
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.uniform_(-2, 2)
    return layer


def batch_norm_steps(x, norm, form, *stats, **options):
    """nn.BatchNorm2d `norm`: a training step on x, one on 2 x + 1, then eval on x: (the training outputs, the
    running statistics after them where tracked, the eval output). F.batch_norm: its output and the running
    statistics after the call (written in place where given)."""
    if form == "F.batch_norm":
        out = F.batch_norm(x, *stats, **options)
        return (out, *(s.clone() for s in stats[:2] if s is not None))
    first, second = norm.train()(x), norm(2 * x + 1)
    running = () if norm.running_mean is None else (norm.running_mean.clone(), norm.running_var.clone())
    return (first, second, *running, norm.eval()(x))


@st.composite
def batch_norm_samples(draw):
    form = draw(st.sampled_from(["nn.BatchNorm2d", "F.batch_norm"]), label="form")
    label(f"form={form}")
    c = draw(st.integers(1, 3), label="C")
    spatial = (draw(st.integers(1, 3), label="H"), draw(st.integers(1, 3), label="W"))
    if form == "F.batch_norm":  # (N, C, *): any number of trailing dims
        spatial = spatial[: draw(st.integers(0, 2), label="trailing_dims")]
    # more than one value per channel: training raises otherwise ("Expected more than 1 value per channel")
    n = draw(st.integers(1 if math.prod(spatial) > 1 else 2, 3), label="N")
    x = draw(specs(shape=(n, c, *spatial)), label="x")
    momentum = draw(st.sampled_from(["omitted", 0.3, None]), label="momentum")
    eps = draw(st.sampled_from(["omitted", 1e-3, 0.5]), label="eps")
    label(f"momentum={momentum}", f"eps={eps}")
    options = {k: v for k, v in (("momentum", momentum), ("eps", eps)) if v != "omitted"}
    if form == "nn.BatchNorm2d":
        affine, tracked = draw(st.booleans(), label="affine"), draw(st.booleans(), label="track_running_stats")
        label(f"track_running_stats={tracked}")
        options.update(affine=affine, track_running_stats=tracked)
        if NORM_TAKES_BIAS:
            options["bias"] = draw(st.booleans(), label="bias") if affine else True
        spelled = ", ".join(f"{k}={v!r}" for k, v in options.items())
        layer = Made(
            f"nn.BatchNorm2d({c}, {spelled}) with U(-2, 2) parameters",
            functools.partial(with_drawn_affine, nn.BatchNorm2d, c, **options),
            draw(st.integers(0, 2**16), label="init_seed"),
        )
        return Sample((x, layer, form))
    training = draw(st.booleans(), label="training")
    label(f"training={training}")
    options["training"] = training
    if momentum is None:  # F.batch_norm takes a float momentum: None is the module's cumulative average
        options.pop("momentum")
    # running statistics: written in place in training (any writable layout); a variance is positive; None only in
    # training, where the batch's own statistics are used
    given = not training or draw(st.booleans(), label="running_given")
    label(f"running_given={given}")
    mean = draw(specs(shape=(c,), layouts=WRITABLE), label="running_mean") if given else None
    var = draw(specs(shape=(c,), layouts=WRITABLE, low=0.5, high=4), label="running_var") if given else None  # > 0
    weight, bias = (draw(st.one_of(st.none(), specs(shape=(c,))), label=n) for n in ("weight", "bias"))
    return Sample((x, None, form, mean, var, weight, bias), options)


BATCH_NORM = Operation(
    "modules.batch_norm_formula",
    dtypes="float32_64",
    samples=batch_norm_samples(),
    call=lambda x, norm, form, *stats, **options: batch_norm_steps(x, norm, form, *stats, **options),
)


@BATCH_NORM.property
def test_batch_norm_normalizes_by_the_batch_and_updates_running_statistics(device, dtype, sample):
    (x_spec, norm_arg, form, *stat_specs), options = sample.args, dict(sample.kwargs)
    (x_built, norm, _, *stats), built = sample.build(dtype=dtype, device=device)
    result = BATCH_NORM.call(x_built, norm, form, *stats, **built)
    eps_dtype = torch.finfo(dtype).eps
    x = independent_array(x_spec.logical_values(dtype)).astype(np.float64)
    axes, channel = (0, *range(2, x.ndim)), (1, -1, *[1] * (x.ndim - 2))
    count = x.size // x.shape[1]

    def values(spec):
        return None if spec is None else independent_array(spec.logical_values(dtype)).astype(np.float64)

    def batch_stats(v):
        mean = v.mean(axis=axes)
        return mean, ((v - mean.reshape(channel)) ** 2).sum(axis=axes)

    eps = options.get("eps", 1e-5)
    if form == "F.batch_norm":
        mean0, var0, weight, bias = map(values, stat_specs)
        out, *running = result
        if options["training"]:  # the batch's statistics, the biased variance
            expected, bound = normalized(x, axes, eps)
        else:  # the running statistics given
            expected, bound = normalized(x, (), eps, mean0.reshape(channel), var0.reshape(channel))
        expected, bound = affine_bound(expected, bound, weight, bias, eps_dtype, channel)
        assert_within(out, expected, bound, "F.batch_norm: not (x - E[x]) / sqrt(Var[x] + eps) * gamma + beta")
        if options["training"] and mean0 is not None:
            momentum = options.get("momentum", 0.1)
            batch_mean, squares = batch_stats(x)
            for got, old, new, what in (
                (running[0], mean0, batch_mean, "mean"),
                (running[1], var0, squares / (count - 1), "var"),
            ):
                want = (1 - momentum) * old + momentum * new  # the unbiased variance goes into the running var
                tolerance = (count + 8) * eps_dtype * (np.abs(old) + np.abs(new) + np.abs(x).max() ** 2)
                assert_within(got, want, tolerance, f"F.batch_norm(training=True): running_{what} not updated by momentum")
        elif mean0 is not None:
            assert_equal(
                running[0].cpu(), stat_specs[0].logical_values(dtype), "F.batch_norm(training=False) changed running_mean"
            )
        return
    module = norm_arg.make.keywords  # as drawn
    momentum, tracked, eps = module.get("momentum", 0.1), module["track_running_stats"], module.get("eps", 1e-5)
    # bias=False: "the layer will not learn an additive bias (only relevant if affine is True)"
    learns_beta = module["affine"] and module.get("bias", True)  # not drawn (NORM_TAKES_BIAS): a beta whenever affine
    assert (norm.weight is not None) == module["affine"], "BatchNorm2d: affine does not say whether gamma is learned"
    assert (norm.bias is not None) == learns_beta, "BatchNorm2d: bias does not say whether beta is learned"
    weight = None if not module["affine"] else independent_array(norm.weight.detach().cpu()).astype(np.float64)
    bias = independent_array(norm.bias.detach().cpu()).astype(np.float64) if learns_beta else None
    first, second, *running, evaluated = result
    y = 2 * x + 1
    for got, v, step in ((first, x, "first"), (second, y, "second")):
        expected, bound = affine_bound(*normalized(v, axes, eps), weight, bias, eps_dtype, channel)
        assert_within(got, expected, bound, f"BatchNorm2d in training ({step} step): not normalized by the batch statistics")
    if not tracked:  # no running estimates: eval uses the batch's statistics too
        assert not running, "track_running_stats=False kept running statistics"
        expected, bound = affine_bound(*normalized(x, axes, eps), weight, bias, eps_dtype, channel)
        assert_within(evaluated, expected, bound, "BatchNorm2d(track_running_stats=False) in eval: not the batch statistics")
        return
    mean, var = np.zeros(x.shape[1]), np.ones(x.shape[1])  # the documented initial running statistics
    (m1, s1), (m2, s2) = batch_stats(x), batch_stats(y)
    if momentum is None:  # a cumulative moving average: the simple average of the two steps
        mean, var = (m1 + m2) / 2, (s1 + s2) / (2 * (count - 1))
    else:
        for m, s in ((m1, s1), (m2, s2)):
            mean, var = (1 - momentum) * mean + momentum * m, (1 - momentum) * var + momentum * s / (count - 1)
    tolerance = (count + 8) * eps_dtype * 4 * (1 + np.abs(y).max() ** 2)
    assert_within(running[0], mean, tolerance, "BatchNorm2d: running_mean is not the documented momentum average")
    assert_within(running[1], var, tolerance, "BatchNorm2d: running_var is not the documented average of unbiased variances")
    expected, bound = normalized(x, (), eps, mean.reshape(channel), var.reshape(channel))
    expected, bound = affine_bound(expected, bound, weight, bias, eps_dtype, channel)
    assert_within(evaluated, expected, bound, "BatchNorm2d in eval: not normalized by the running statistics")


@st.composite
def group_norm_samples(draw):
    """Sample(x, GroupNorm): x of shape (N, C, *), C = groups x channels per group, with or without the affine
    parameters and bias."""
    groups, per_group = draw(st.integers(1, 3), label="num_groups"), draw(st.integers(1, 2), label="per_group")
    trailing = draw(shapes(max_dims=2, min_side=1, max_side=3), label="trailing")  # a group of no element has no mean
    x = draw(specs(shape=(draw(st.integers(0, 2), label="N"), groups * per_group, *trailing)), label="x")
    eps = draw(st.sampled_from(["omitted", 1e-3, 0.5]), label="eps")
    affine = draw(st.sampled_from(["omitted", True, False]), label="affine")
    bias = {"bias": draw(st.booleans(), label="bias") if affine is not False else True} if NORM_TAKES_BIAS else {}
    label(f"eps={eps}", f"affine={affine}")
    options = {k: v for k, v in (("eps", eps), ("affine", affine)) if v != "omitted"} | bias
    spelled = ", ".join(f"{k}={v!r}" for k, v in options.items())
    return Sample(
        (
            x,
            Made(
                f"nn.GroupNorm({groups}, {groups * per_group}, {spelled}) with U(-2, 2) parameters",
                functools.partial(with_drawn_affine, nn.GroupNorm, groups, groups * per_group, **options),
                draw(st.integers(0, 2**16), label="init_seed"),
            ),
        )
    )


GROUP_NORM = Operation(
    "modules.group_norm_formula", dtypes="float32_64", samples=group_norm_samples(), call=lambda x, norm: norm(x)
)


@GROUP_NORM.property
def test_group_norm_normalizes_each_group(device, dtype, sample):
    x_spec, made_norm = sample.args
    options = made_norm.make.keywords  # as drawn
    (x_built, norm), _ = sample.build(dtype=dtype, device=device)
    groups = norm.num_groups
    x = independent_array(x_spec.logical_values(dtype)).astype(np.float64)
    per_group = x.shape[1] // groups * math.prod(x.shape[2:])
    if x.shape[0] * per_group == 1:  # one sample, one element per group: raises (observed; no doc says so)
        with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
            GROUP_NORM.call(x_built, norm)
        return
    out = GROUP_NORM.call(x_built, norm)
    assert out.shape == x.shape and out.dtype == dtype, "GroupNorm: not x's shape and dtype"
    grouped = x.reshape(x.shape[0], groups, per_group)  # each group's channels and positions together
    expected, bound = normalized(grouped, (2,), options.get("eps", 1e-5))
    expected, bound = expected.reshape(x.shape), np.broadcast_to(bound, grouped.shape).reshape(x.shape)
    affine = options.get("affine", True)
    # bias=False: "the layer will not learn an additive bias (only relevant if affine is True)"
    learns_beta = affine and options.get("bias", True)  # not drawn (NORM_TAKES_BIAS): a beta whenever affine
    assert (norm.weight is not None) == affine, "GroupNorm: affine does not say whether gamma is learned"
    assert (norm.bias is not None) == learns_beta, "GroupNorm: bias does not say whether beta is learned"
    weight = independent_array(norm.weight.detach().cpu()).astype(np.float64) if affine else None
    bias = independent_array(norm.bias.detach().cpu()).astype(np.float64) if learns_beta else None
    expected, bound = affine_bound(expected, bound, weight, bias, torch.finfo(dtype).eps, (1, -1, *[1] * (x.ndim - 2)))
    assert_within(out, expected, bound, "GroupNorm: not (x - E[x]) / sqrt(Var[x] + eps) * gamma + beta over each group")


def clip_values(grads, clip_value, form, foreach):
    """clip_grad_value_ over tensors whose gradients are `grads` (clipped in place): given as a list or, for one
    gradient, as the single tensor; foreach left out (None) or given. Its return value."""
    parameters = [torch.zeros_like(g).requires_grad_() for g in grads]
    for p, g in zip(parameters, grads):
        p.grad = g
    given = parameters[0] if form == "a tensor" else parameters
    options = {} if foreach == "omitted" else {"foreach": foreach}
    return nn.utils.clip_grad_value_(given, clip_value, **options)


@st.composite
def clip_value_samples(draw):
    form = draw(st.sampled_from(["a list", "a tensor"]), label="parameters_form")
    count = 1 if form == "a tensor" else draw(st.integers(1, 3), label="count")
    # gradients are clipped in place: every layout that can be written
    grads = [draw(specs(layouts=WRITABLE), label=f"grad_{i}") for i in range(count)]
    clip_value = draw(st.floats(0, 12), label="clip_value")  # values reach +-9: some clipped, some not
    foreach = draw(st.sampled_from(["omitted", True, False]), label="foreach")
    label(f"parameters={form}", f"foreach={foreach}")
    return Sample((grads, clip_value, form, foreach))


CLIP_GRAD_VALUE = Operation(
    "modules.clip_grad_value",
    dtypes="floating",
    samples=clip_value_samples(),
    call=lambda grads, clip_value, form, foreach: clip_values(grads, clip_value, form, foreach),
)


@CLIP_GRAD_VALUE.property
def test_clip_grad_value_clamps_every_gradient_in_place(device, dtype, sample):
    grad_specs, clip_value, form, foreach = sample.args
    (grads, *_), _ = sample.build(dtype=dtype, device=device)
    CLIP_GRAD_VALUE.call(grads, clip_value, form, foreach)
    c = float(torch.tensor(clip_value, dtype=dtype))  # the bound as the gradient's dtype holds it
    for spec, g in zip(grad_specs, grads):
        before = independent_array(spec.logical_values(dtype)).astype(np.float64)
        expected = np.minimum(np.maximum(before, -c), c)
        np.testing.assert_array_equal(
            independent_array(g.cpu()).astype(np.float64),
            expected,
            err_msg="a gradient not clipped to [-clip_value, clip_value] in place",
        )


@st.composite
def pad_sequence_samples(draw):
    count = draw(st.integers(1, 4), label="count")  # one sequence at least: no list of none has a length
    trailing = draw(shapes(max_dims=2, max_side=3), label="trailing")
    sequences = [draw(specs(shape=(draw(st.integers(0, 4), label=f"L{i}"), *trailing)), label=f"seq{i}") for i in range(count)]
    options = {}
    for name, values in (
        ("batch_first", st.booleans()),
        ("padding_value", st.integers(-5, 5).map(float)),
        ("padding_side", st.sampled_from(["left", "right"])),
    ):
        if draw(st.booleans(), label=f"{name}_given"):
            options[name] = draw(values, label=name)
            label(f"{name}={options[name]}" if name != "padding_value" else "padding_value=given")
        else:
            label(f"{name}=omitted")
    return Sample((sequences,), options)


PAD_SEQUENCE = Operation(
    "modules.pad_sequence",
    dtypes="float32_64",
    samples=pad_sequence_samples(),
    call=lambda sequences, **options: nn.utils.rnn.pad_sequence(sequences, **options),
)


@PAD_SEQUENCE.property
def test_pad_sequence_stacks_and_pads_to_the_longest(device, dtype, sample):
    (sequence_specs,), options = sample.args, sample.kwargs
    out = PAD_SEQUENCE(sample, dtype=dtype, device=device)
    values = [independent_array(s.logical_values(dtype)).astype(np.float64) for s in sequence_specs]
    longest, trailing = max(v.shape[0] for v in values), values[0].shape[1:]
    expected = np.full((len(values), longest, *trailing), options.get("padding_value", 0.0))  # B x T x *
    for b, v in enumerate(values):
        if options.get("padding_side", "right") == "right":
            expected[b, : v.shape[0]] = v
        else:
            expected[b, longest - v.shape[0] :] = v
    if not options.get("batch_first", False):  # T x B x *, its default
        expected = np.swapaxes(expected, 0, 1)
    assert out.dtype == dtype and tuple(out.shape) == expected.shape, "pad_sequence: not T x B x * (or B x T x *)"
    np.testing.assert_array_equal(
        independent_array(out.cpu()).astype(np.float64),
        expected,
        err_msg="pad_sequence: not the sequences padded on the documented side",
    )


def lstm_reference(lstm, x, state, *, num_layers, bidirectional, proj_size):
    """The documented LSTM equations in NumPy float64 over x of shape (L, N, H_in), with the layer's own weights
    (W_ii|W_if|W_ig|W_io stacked in weight_ih_l[k], likewise weight_hh_l[k]; h_t = W_hr h_t with projections):
    output (L, N, D * H_out), h_n and c_n (D * num_layers, N, H)."""

    def weight(name):
        found = getattr(lstm, name, None)
        return None if found is None else independent_array(found.detach().cpu()).astype(np.float64)

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    directions = 2 if bidirectional else 1
    h0, c0 = state
    layer_input, h_n, c_n = x, [], []
    for layer in range(num_layers):
        outputs = []
        for direction in range(directions):
            suffix = f"l{layer}" + ("_reverse" if direction else "")
            w_ih, w_hh = weight(f"weight_ih_{suffix}"), weight(f"weight_hh_{suffix}")
            b = (weight(f"bias_ih_{suffix}") + weight(f"bias_hh_{suffix}")) if lstm.bias else 0.0
            w_hr = weight(f"weight_hr_{suffix}") if proj_size else None
            h, c = h0[layer * directions + direction], c0[layer * directions + direction]
            steps = range(x.shape[0] - 1, -1, -1) if direction else range(x.shape[0])
            out = np.zeros((x.shape[0], x.shape[1], h.shape[-1]))
            for t in steps:
                gates = layer_input[t] @ w_ih.T + h @ w_hh.T + b
                i, f, g, o = np.split(gates, 4, axis=-1)
                c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
                h = sigmoid(o) * np.tanh(c)
                if w_hr is not None:
                    h = h @ w_hr.T
                out[t] = h
            outputs.append(out)
            h_n.append(h)
            c_n.append(c)
        layer_input = np.concatenate(outputs, axis=-1)  # forward and reverse hidden states, concatenated
    return layer_input, np.stack(h_n), np.stack(c_n)


@st.composite
def lstm_samples(draw):
    """Sample(x, lstm, state): a batched (batch_first or not) or unbatched sequence, 1 or 2 layers, one or two
    directions, with or without bias and projections, (h_0, c_0) given or left out (zeros)."""
    input_size, hidden = draw(st.integers(1, 3), label="input_size"), draw(st.integers(1, 3), label="hidden_size")
    options = dict(
        num_layers=draw(st.integers(1, 2), label="num_layers"),
        bias=draw(st.booleans(), label="bias"),
        batch_first=draw(st.booleans(), label="batch_first"),
        bidirectional=draw(st.booleans(), label="bidirectional"),
        proj_size=draw(st.integers(0, hidden - 1), label="proj_size"),  # "proj_size should be smaller than hidden_size"
    )
    batched = draw(st.booleans(), label="batched")
    label(*(f"{k}={v}" for k, v in options.items() if k in ("batch_first", "bidirectional")), f"batched={batched}")
    length, n = draw(st.integers(1, 3), label="L"), draw(st.integers(1, 2), label="N")
    # values within +-2: the gates' sigmoids and tanhs away from saturation, where the equations are checked
    if batched:
        shape = (n, length, input_size) if options["batch_first"] else (length, n, input_size)
    else:
        shape = (length, input_size)
    x = draw(specs(shape=shape, low=-2, high=2), label="x")  # within +-2: see above
    state = None
    if draw(st.booleans(), label="state_given"):
        layers = options["num_layers"] * (2 if options["bidirectional"] else 1)
        h_out = options["proj_size"] or hidden
        rest = (n,) if batched else ()
        # within +-2 as x above
        state = tuple(draw(specs(shape=(layers, *rest, s), low=-2, high=2), label=k) for k, s in (("h0", h_out), ("c0", hidden)))
    label(f"state={'given' if state else 'omitted'}")
    return Sample((x, made(nn.LSTM, input_size, hidden, **options, seed=draw(st.integers(0, 2**16), label="init_seed")), state))


LSTM = Operation(
    "modules.lstm_equations",
    dtypes="float32_64",
    samples=lstm_samples(),
    call=lambda x, lstm, state: lstm(x) if state is None else lstm(x, state),
)


@LSTM.property
def test_lstm_follows_the_documented_equations(device, dtype, sample):
    x_spec, made_lstm, state_specs = sample.args
    (_, hidden), o = made_lstm.make.args, made_lstm.make.keywords  # as drawn
    output, (h_n, c_n) = LSTM(sample, dtype=dtype, device=device)
    (_, lstm, _), _ = sample.build(dtype=dtype, device=device)  # the same seed: the same weights
    x = independent_array(x_spec.logical_values(dtype)).astype(np.float64)
    batched = x.ndim == 3
    if not batched:
        x = x[:, None]
    elif o["batch_first"]:
        x = x.swapaxes(0, 1)
    directions = 2 if o["bidirectional"] else 1
    h_out = o["proj_size"] or hidden
    if state_specs is None:  # "Defaults to zeros if (h_0, c_0) is not provided"
        state = (
            np.zeros((directions * o["num_layers"], x.shape[1], h_out)),
            np.zeros((directions * o["num_layers"], x.shape[1], hidden)),
        )
    else:
        state = tuple(independent_array(s.logical_values(dtype)).astype(np.float64) for s in state_specs)
        state = state if batched else tuple(s[:, None] for s in state)
    want_output, want_h, want_c = lstm_reference(
        lstm, x, state, num_layers=o["num_layers"], bidirectional=o["bidirectional"], proj_size=o["proj_size"]
    )
    if not batched:
        want_output, want_h, want_c = want_output[:, 0], want_h[:, 0], want_c[:, 0]
    elif o["batch_first"]:
        want_output = want_output.swapaxes(0, 1)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    for got, want, what in ((output, want_output, "output"), (h_n, want_h, "h_n"), (c_n, want_c, "c_n")):
        assert tuple(got.shape) == want.shape, f"LSTM: {what} of shape {tuple(got.shape)}, not the documented {want.shape}"
        np.testing.assert_allclose(
            independent_array(got.detach().cpu()).astype(np.float64),
            want,
            err_msg=f"LSTM: {what} not by the documented equations",
            **tol,
        )


@st.composite
def multihead_samples(draw):
    """Sample(query, key, value, mha, options): (L, N, E) or batch_first (N, L, E) query, key and value of S
    positions, E = heads x head dim, need_weights and average_attn_weights given or left out."""
    heads, head_dim = draw(st.integers(1, 2), label="num_heads"), draw(st.integers(1, 2), label="head_dim")
    e, n = heads * head_dim, draw(st.integers(1, 2), label="N")
    length, s = draw(st.integers(1, 3), label="L"), draw(st.integers(1, 3), label="S")
    batch_first, bias = draw(st.booleans(), label="batch_first"), draw(st.booleans(), label="bias")
    label(f"batch_first={batch_first}")

    def shaped(t):
        return (n, t, e) if batch_first else (t, n, e)

    # values within +-2 as for the attention reference above: the softmax away from saturation
    q, k, v = (
        draw(specs(shape=shaped(t), low=-2, high=2), label=name) for name, t in (("query", length), ("key", s), ("value", s))
    )
    options = {}
    for name in ("need_weights", "average_attn_weights"):
        if draw(st.booleans(), label=f"{name}_given"):
            options[name] = draw(st.booleans(), label=name)
        label(f"{name}={options.get(name, 'omitted')}")
    mha = Made(
        f"nn.MultiheadAttention({e}, {heads}, bias={bias}, batch_first={batch_first}) with U(-1, 1) biases",
        functools.partial(multihead_with_drawn_biases, e, heads, bias=bias, batch_first=batch_first),
        draw(st.integers(0, 2**16), label="init_seed"),
    )
    return Sample((q, k, v, mha), options)


def multihead_with_drawn_biases(*args, **kwargs):
    """nn.MultiheadAttention whose biases (which start at 0) are drawn from U(-1, 1), so that they matter."""
    layer = nn.MultiheadAttention(*args, **kwargs)
    with torch.no_grad():
        for name, parameter in layer.named_parameters():
            if "bias" in name:
                parameter.uniform_(-1, 1)
    return layer


MULTIHEAD = Operation(
    "modules.multihead_attention",
    dtypes="float32_64",
    samples=multihead_samples(),
    call=lambda q, k, v, mha, **options: mha(q, k, v, **options),
)


@MULTIHEAD.property
def test_multihead_attention_concatenates_the_heads(device, dtype, sample):
    (q_spec, k_spec, v_spec, made_mha), options = sample.args, sample.kwargs
    (e, heads), o = made_mha.make.args, made_mha.make.keywords  # as drawn
    output, weights = MULTIHEAD(sample, dtype=dtype, device=device)
    (*_, mha), _ = sample.build(dtype=dtype, device=device)  # the same seed: the same parameters
    q, k, v = (independent_array(s.logical_values(dtype)).astype(np.float64) for s in (q_spec, k_spec, v_spec))
    if not o["batch_first"]:  # to (N, L, E)
        q, k, v = (a.swapaxes(0, 1) for a in (q, k, v))

    def param(t):
        return independent_array(t.detach().cpu()).astype(np.float64)

    w_in = param(mha.in_proj_weight)
    b_in = param(mha.in_proj_bias) if o["bias"] else np.zeros(3 * e)
    w_out, b_out = param(mha.out_proj.weight), (param(mha.out_proj.bias) if o["bias"] else np.zeros(e))
    d = e // heads
    # head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V), Attention = softmax(q k^T / sqrt(d)) v; MultiHead = Concat(heads) W^O
    projected = [x @ w_in[i * e : (i + 1) * e].T + b_in[i * e : (i + 1) * e] for i, x in enumerate((q, k, v))]
    split = [p.reshape(p.shape[0], p.shape[1], heads, d).transpose(0, 2, 1, 3) for p in projected]  # (N, h, T, d)
    scores = split[0] @ split[1].swapaxes(-1, -2) / math.sqrt(d)
    attention = np.exp(scores - scores.max(-1, keepdims=True))
    attention /= attention.sum(-1, keepdims=True)
    concat = (attention @ split[2]).transpose(0, 2, 1, 3).reshape(q.shape[0], q.shape[1], e)
    expected = concat @ w_out.T + b_out
    if not o["batch_first"]:
        expected = expected.swapaxes(0, 1)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
    assert tuple(output.shape) == expected.shape, "MultiheadAttention: not the documented output shape"
    np.testing.assert_allclose(
        independent_array(output.detach().cpu()).astype(np.float64),
        expected,
        err_msg="MultiheadAttention: not Concat(heads) W^O",
        **tol,
    )
    if not options.get("need_weights", True):  # left out: True
        assert weights is None, "MultiheadAttention(need_weights=False) returned weights"
        return
    want = attention.mean(1) if options.get("average_attn_weights", True) else attention  # left out: averaged
    np.testing.assert_allclose(
        independent_array(weights.detach().cpu()).astype(np.float64),
        want,
        err_msg="MultiheadAttention: not the documented attention weights",
        **tol,
    )
