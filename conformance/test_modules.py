"""Modules: hooks run on __call__, parameters register, state_dict aliases, modes, Conv2d shape."""

import copy
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
from strategies import specs
from strategies.samples import Sample
from strategies.shapes import shapes
from strategies.tensors import WRITABLE_LAYOUTS as WRITABLE


def small_model(device, width=3):
    with private_rng():  # initialisers draw from the global generator
        return nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2)).to(device)


@pytest.mark.behaviour("modules.call_runs_hooks")
@given(width=st.integers(1, 4))
def test_calling_runs_hooks_forward_does_not(device, width):
    model = small_model(device, width)
    events = []
    model.register_forward_pre_hook(lambda m, args: events.append("pre"))
    model.register_forward_hook(lambda m, args, out: events.append("post"))
    x = torch.ones(1, width, device=device)
    out = model(x)
    assert events == ["pre", "post"]
    events.clear()
    direct = model.forward(x)
    assert events == [] and torch.equal(out, direct)


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


@pytest.mark.behaviour("modules.eval_dropout_identity")
@pytest.mark.dtypes("float32")
# nonzero values, so a dropped element (0) is told from a kept one (x / (1 - p)); the scaling is
# linear in x, so neither sign nor magnitude adds a case
@given(x=specs(low=0.5, high=2), p=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))  # p over its whole range
def test_dropout_is_identity_in_eval(device, dtype, x, p, seed):
    t = x.build(dtype=dtype, device=device)
    dropout = nn.Dropout(p)
    assert_equal(dropout.eval()(t), t)
    with private_rng(seed, device):
        out = dropout.train()(t)
    kept = out != 0
    assert_close(out[kept], t[kept] / (1 - p))


def batchnorm_train_then_eval(x):
    """One training step of a fresh BatchNorm1d on x (updating its running statistics), then
    the eval output on x: (module, training output, running mean, running var, eval output)."""
    bn = nn.BatchNorm1d(x.shape[1]).to(x.device, x.dtype)
    trained = bn.train()(x)
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    return bn, trained, mean, var, bn.eval()(x)


BATCHNORM = Operation(
    "modules.eval_batchnorm_running_stats",
    dtypes="float32_64",
    samples=specs(shapes=st.tuples(st.integers(2, 5), st.integers(1, 4))).map(lambda x: Sample((x,))),
    call=lambda x: batchnorm_train_then_eval(x)[1:],
    not_compiled="the module is built inside the call, and Dynamo graph-breaks on building it",
)


@BATCHNORM.property
def test_batchnorm_in_eval_uses_running_stats(device, dtype, sample):
    t = sample.args[0].build(dtype=dtype, device=device)
    bn, _, mean, var, out = batchnorm_train_then_eval(t)
    assert_close(out, (t - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias)
    assert_equal(bn.running_mean, mean, "eval() must not update the running statistics")
    assert_close(BATCHNORM(sample, dtype=dtype, device=device)[3], out)


@pytest.mark.behaviour("modules.modes_independent")
@given(grad_on=st.booleans())
def test_module_mode_and_grad_mode_are_independent(device, grad_on):
    model = small_model(device)
    with torch.set_grad_enabled(grad_on):
        model.eval()
        assert torch.is_grad_enabled() is grad_on
        model.train()
        assert torch.is_grad_enabled() is grad_on
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
        seed=draw(st.integers(0, 2**16), label="init_seed"),
    )


@st.composite
def conv2d_samples(draw, *, fits: bool):
    """Sample(x, **options): an input whose height and width give an output of at least one
    element (fits), or of none in at least one of them (not fits)."""
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
    return Sample((x,), options)


def conv2d(x, *, seed, **options):
    """Conv2d with weights drawn under `seed` on the CPU, moved to x's device and dtype."""
    with private_rng(seed):
        module = nn.Conv2d(**options)
    return module.to(x.device, x.dtype)(x)


CONV2D = Operation(
    "modules.conv2d_output_shape",
    dtypes="float32_64",
    samples=conv2d_samples(fits=True),
    call=lambda x, **options: conv2d(x, **options),
    not_compiled="the module is built inside the call, with seeded initialisation under fork_rng, which Dynamo does not trace",
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


@CONV2D.property
def test_conv2d_output_shape_formula(device, dtype, sample):
    (x,), options = sample.args, sample.kwargs
    out = CONV2D(sample, dtype=dtype, device=device)
    h, w = x.shape[2:]
    assert out.shape == (2, options["out_channels"], conv2d_output_size(h, **options), conv2d_output_size(w, **options))


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


@pytest.mark.behaviour("modules.init_constant_fills")
@pytest.mark.dtypes("floating")
# Finite values within float16's range, so that every floating dtype can hold them.
@given(x=specs(layouts=WRITABLE), val=st.floats(-6e4, 6e4), as_parameter=st.booleans())
def test_init_constant_fills_in_place(device, dtype, x, val, as_parameter):
    t = x.build(dtype=dtype, device=device)
    if as_parameter:
        t = nn.Parameter(t)
    returned = nn.init.constant_(t, val)
    assert returned is t
    assert_equal(t.detach().cpu(), torch.full(x.shape, val, dtype=dtype), "the filled tensor")
    assert t.grad_fn is None and (t.is_leaf or not as_parameter)


@pytest.mark.behaviour("modules.flatten_keeps_batch")
@pytest.mark.dtypes("representative")
# Two dims at least: the documented input shape (*, S_start, ..., S_end, *) starts at dim 1.
@given(x=specs(shapes=st.lists(st.integers(0, 4), min_size=2, max_size=4).map(tuple)))
def test_flatten_keeps_the_batch_dimension(device, dtype, x):
    out = nn.Flatten()(x.build(dtype=dtype, device=device))
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
    assert nn.init.kaiming_normal_(weight, **options, generator=generator) is weight
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
    assert same(x).shape[-2:] == x.shape[-2:], "padding='same' changed the spatial size"
    assert valid(x).shape[-2:] == (side - d * (k - 1), side + 1 - d * (k - 1)), "padding='valid' padded"
    with pytest.raises(ValueError):
        nn.Conv2d(*channels, stride=2, padding="same")


@st.composite
def linear_cases(draw):
    """(input spec of shape (*, in), in_features, out_features, bias): any number of leading dims."""
    in_features, out_features = draw(st.integers(1, 6), label="in"), draw(st.integers(1, 6), label="out")
    leading = draw(shapes(max_dims=3, max_side=3), label="leading")
    x = draw(specs(shape=(*leading, in_features)), label="x")
    return x, in_features, out_features, draw(st.booleans(), label="bias")


@pytest.mark.behaviour("modules.linear_affine")
@pytest.mark.dtypes("float32_64")
@given(case=linear_cases(), seed=st.integers(0, 2**16))
def test_linear_is_x_times_a_transposed_plus_b(device, dtype, case, seed):
    x_spec, in_features, out_features, bias = case
    with private_rng(seed):
        layer = nn.Linear(in_features, out_features, bias=bias).to(device=device, dtype=dtype)
    assert layer.weight.shape == (out_features, in_features)
    assert (layer.bias is None) == (not bias) and (not bias or layer.bias.shape == (out_features,))
    y = layer(x_spec.build(dtype=dtype, device=device))
    assert y.shape == (*x_spec.shape[:-1], out_features) and y.dtype == dtype
    # y = x A^T + b in float64 from the same values, with the rounding bound of an n-term dot product
    x = independent_array(x_spec.logical_values(dtype)).astype(np.float64)
    a = independent_array(layer.weight.detach().cpu()).astype(np.float64)
    b = independent_array(layer.bias.detach().cpu()).astype(np.float64) if bias else 0.0
    expected = x @ a.T + b
    bound = (in_features + 1) * torch.finfo(dtype).eps * (np.abs(x) @ np.abs(a).T + np.abs(b)) + torch.finfo(dtype).tiny
    error = np.abs(independent_array(y.detach().cpu()).astype(np.float64) - expected)
    assert (error <= bound).all(), f"largest error {error.max()} over the bound"


@st.composite
def layer_norm_cases(draw):
    """(x spec, normalized_shape, eps, elementwise_affine, bias): normalized over the last 1-3 dims."""
    # normalized_shape: one dim at least, none empty (a mean over no element has no value)
    normalized = draw(shapes(min_dims=1, max_dims=3, min_side=1, max_side=4), label="normalized_shape")
    leading = draw(shapes(max_dims=2, max_side=3), label="leading")
    x = draw(specs(shape=(*leading, *normalized)), label="x")
    eps = draw(st.sampled_from([1e-5, 1e-3, 0.5]), label="eps")
    affine = draw(st.booleans(), label="elementwise_affine")
    return x, normalized, eps, affine, draw(st.booleans(), label="bias") if affine else False


@pytest.mark.behaviour("modules.layer_norm_formula")
@pytest.mark.dtypes("float32_64")
@given(case=layer_norm_cases(), seed=st.integers(0, 2**16))
def test_layer_norm_is_the_documented_formula(device, dtype, case, seed):
    x_spec, normalized, eps, affine, bias = case
    layer = nn.LayerNorm(normalized, eps=eps, elementwise_affine=affine, bias=bias, device=device, dtype=dtype)
    if affine:  # documented initial values are 1 and 0; draw others so that gamma and beta matter
        with torch.no_grad(), private_rng(seed, device):
            layer.weight.uniform_(-2, 2)
            if bias:
                layer.bias.uniform_(-2, 2)
    y = layer(x_spec.build(dtype=dtype, device=device))
    x = independent_array(x_spec.logical_values(dtype)).astype(np.float64)
    axes = tuple(range(x.ndim - len(normalized), x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)  # the biased estimator, as documented
    expected = (x - mean) / np.sqrt(var + eps)
    if affine:
        expected = expected * independent_array(layer.weight.detach().cpu()).astype(np.float64)
        if bias:
            expected = expected + independent_array(layer.bias.detach().cpu()).astype(np.float64)
    tol = 1e-4 if dtype == torch.float32 else 1e-10  # a normalised value in O(1) through a handful of roundings
    np.testing.assert_allclose(independent_array(y.detach().cpu()).astype(np.float64), expected, rtol=tol, atol=tol)


def _phi(v: float) -> float:
    return 0.5 * (1 + math.erf(v / math.sqrt(2)))


ACTIVATIONS = {
    # name -> (the call forms, the documented formula)
    # call forms are lambdas, so that torch is looked up when they run (as declarations do)
    "relu": ((lambda t: F.relu(t), lambda t: torch.relu(t), lambda t: nn.ReLU()(t)), lambda v: max(0.0, v)),
    "gelu": ((lambda t: F.gelu(t), lambda t: nn.GELU()(t)), lambda v: v * _phi(v)),
    "gelu_tanh": (
        (lambda t: F.gelu(t, approximate="tanh"), lambda t: nn.GELU(approximate="tanh")(t)),
        lambda v: 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))),
    ),
}


@pytest.mark.behaviour("modules.activation_formulas")
@pytest.mark.dtypes("floating")
# [-30, 30] reaches both saturated tails of GELU's Phi and tanh; the formulas are checked on finite values
@given(x=specs(low=-30, high=30), name=st.sampled_from(sorted(ACTIVATIONS)))
def test_relu_and_gelu_follow_their_formulas(device, dtype, x, name):
    forms, formula = ACTIVATIONS[name]
    t = x.build(dtype=dtype, device=device)
    values = independent_array(x.logical_values(dtype)).astype(np.float64)
    expected = np.vectorize(formula, otypes=[np.float64])(values) if values.size else values
    for form in forms:
        out = form(t)
        assert out.shape == t.shape and out.dtype == dtype
        got = independent_array(out.cpu()).astype(np.float64)
        # the dtype's own rounding of an O(|x|) result, a few ulps
        eps = torch.finfo(dtype).eps
        np.testing.assert_allclose(got, expected, rtol=8 * eps, atol=8 * eps * 30, err_msg=f"{name} via {form}")


@pytest.mark.behaviour("modules.clip_grad_norm")
@pytest.mark.dtypes("float32_64")
@given(
    # gradients are modified in place: every layout that can be written
    grads=st.lists(specs(shapes=shapes(min_dims=1, max_dims=2, min_side=1), layouts=WRITABLE), min_size=1, max_size=3),
    max_norm=st.floats(0.01, 50),
    norm_type=st.sampled_from([1.0, 2.0, 3.0, math.inf]),
)
def test_clip_grad_norm_scales_by_the_documented_coefficient(device, dtype, grads, max_norm, norm_type):
    params = [nn.Parameter(torch.zeros(g.shape, dtype=dtype, device=device)) for g in grads]
    for p, g in zip(params, grads):
        p.grad = g.build(dtype=dtype, device=device)
    values = [independent_array(g.logical_values(dtype)).astype(np.float64).ravel() for g in grads]
    # the norm of the per-gradient norms, "as if ... concatenated into a single vector"
    flat = np.concatenate(values)
    total = np.abs(flat).max() if norm_type == math.inf else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    returned = nn.utils.clip_grad_norm_(params, max_norm, norm_type=norm_type)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(float(returned), total, **tol)
    coefficient = min(max_norm / (total + 1e-6), 1.0)  # grad * min(max_norm / (total_norm + 1e-6), 1)
    for p, v in zip(params, values):
        np.testing.assert_allclose(independent_array(p.grad.cpu()).astype(np.float64).ravel(), v * coefficient, **tol)


@pytest.mark.behaviour("modules.embedding_lookup")
@pytest.mark.dtypes("float32_64")
@given(num=st.integers(1, 8), dim=st.integers(1, 5), data=st.data(), seed=st.integers(0, 2**16))
def test_embedding_returns_the_weight_rows_and_padding_gets_no_gradient(device, dtype, num, dim, data, seed):
    padding = data.draw(st.one_of(st.none(), st.integers(-num, num - 1)), label="padding_idx")
    with private_rng(seed):
        table = nn.Embedding(num, dim, padding_idx=padding, device=device, dtype=dtype)
    shape = data.draw(shapes(max_dims=3, max_side=4), label="index_shape")
    idx = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, num - 1)), label="indices")
    out = table(torch.from_numpy(idx).to(device))
    weight = independent_array(table.weight.detach().cpu())
    assert out.shape == (*shape, dim)
    np.testing.assert_array_equal(independent_array(out.detach().cpu()), weight[idx])
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


@pytest.mark.behaviour("modules.identity_passes_through")
@given(x=specs(), args=st.lists(st.integers(), max_size=3))
def test_identity_returns_its_input_whatever_it_was_built_with(device, x, args):
    t = x.build(dtype=torch.float32, device=device)
    assert nn.Identity(*args, unused=1)(t) is t


@st.composite
def attention_cases(draw):
    """query (*, L, E), key (*, S, E), value (*, S, Ev) and the options of the documented reference."""
    batch = draw(shapes(max_dims=2, max_side=2), label="batch")
    L, S, E, Ev = (draw(st.integers(1, 4), label=n) for n in ("L", "S", "E", "Ev"))
    # values within +-3: the reference (the docstring's formula in float64) and the kernel agree at the
    # dtype's tolerance; the formula itself holds for any value
    q, k, v = (
        draw(specs(shape=(*batch, *s), low=-3, high=3), label=n) for n, s in (("q", (L, E)), ("k", (S, E)), ("v", (S, Ev)))
    )
    mask_kind = draw(st.sampled_from(["none", "causal", "bool", "float"]), label="mask")
    mask = None
    if mask_kind == "bool":  # keep one allowed key per query: an all-False row has no documented value
        mask = draw(hnp.arrays(np.bool_, (L, S)), label="bool_mask")
        mask[:, 0] = True
    elif mask_kind == "float":
        mask = draw(hnp.arrays(np.float64, (L, S), elements=st.floats(-3, 3)), label="float_mask")
    scale = draw(st.one_of(st.none(), st.floats(0.1, 2)), label="scale")
    return q, k, v, mask_kind, mask, scale


def attention_reference(q, k, v, mask_kind, mask, scale):
    """The docstring's reference implementation, in NumPy float64."""
    L, S = q.shape[-2], k.shape[-2]
    factor = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    bias = np.zeros((L, S))
    if mask_kind == "causal":
        bias[~np.tril(np.ones((L, S), dtype=bool))] = -np.inf
    elif mask_kind == "bool":
        bias[~mask] = -np.inf
    elif mask_kind == "float":
        bias = bias + mask
    weight = q @ np.swapaxes(k, -2, -1) * factor + bias
    weight = np.exp(weight - weight.max(-1, keepdims=True))
    return (weight / weight.sum(-1, keepdims=True)) @ v


@pytest.mark.behaviour("modules.scaled_dot_product_attention")
@pytest.mark.dtypes("float32_64")
@given(case=attention_cases())
def test_attention_matches_the_documented_reference(device, dtype, case):
    q, k, v, mask_kind, mask, scale = case
    arrays = [independent_array(s.logical_values(dtype)).astype(np.float64) for s in (q, k, v)]
    kwargs = {"is_causal": mask_kind == "causal", "scale": scale}
    if mask is not None:
        kwargs["attn_mask"] = torch.from_numpy(mask if mask_kind == "bool" else mask.astype(np.float64)).to(
            device, dtype if mask_kind == "float" else torch.bool
        )
    out = F.scaled_dot_product_attention(*(s.build(dtype=dtype, device=device) for s in (q, k, v)), **kwargs)
    expected = attention_reference(*arrays, mask_kind, mask, scale)
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    np.testing.assert_allclose(independent_array(out.cpu()).astype(np.float64), expected, rtol=tol, atol=tol)


@pytest.mark.behaviour("modules.init_normal_moments")
@pytest.mark.dtypes("float32_64")
@given(mean=st.floats(-5, 5), std=st.floats(0.01, 5), seed=st.integers(0, 2**32 - 1))
def test_init_normal_draws_with_the_given_mean_and_std(device, dtype, mean, std, seed):
    t = torch.empty(64, 128, dtype=dtype, device=device)  # 8192 samples
    generator = torch.Generator(device=device).manual_seed(seed)
    assert nn.init.normal_(t, mean, std, generator=generator) is t
    values = (t.double().cpu().numpy().ravel() - mean) / std
    n = values.size
    # As for kaiming_normal_: six standard errors on the mean and on the variance ratio, a false
    # failure about 2e-9 per example.
    assert abs(values.mean()) <= 6 / math.sqrt(n), f"mean off by {values.mean() * std:.4g}"
    assert abs((values**2).mean() - 1) <= 6 * math.sqrt(2 / n) + 6 / n, f"variance ratio {(values**2).mean():.4f}"
