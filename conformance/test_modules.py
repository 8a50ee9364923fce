"""Modules: hooks run on __call__, parameters register, state_dict aliases, modes, Conv2d shape."""
import copy

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from conformance.checks import assert_same_storage, private_rng
from strategies import specs


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
        assert torch.equal(state[name], param.detach()), "state_dict did not follow the update"
        assert torch.equal(saved[name] + 1, param.detach()), "deepcopy did not keep the old values"


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
@given(x=specs(low=0.5, high=2), p=st.floats(0.1, 0.9), seed=st.integers(0, 2**32 - 1))
def test_dropout_is_identity_in_eval(device, dtype, x, p, seed):
    t = x.build(dtype=dtype, device=device)
    dropout = nn.Dropout(p)
    assert torch.equal(dropout.eval()(t), t)
    with private_rng(seed, device):
        out = dropout.train()(t)
    kept = out != 0
    assert_close(out[kept], t[kept] / (1 - p))


@pytest.mark.behaviour("modules.eval_batchnorm_running_stats")
@pytest.mark.dtypes("float32")
@given(x=specs(shapes=st.tuples(st.integers(2, 5), st.integers(1, 4))), data=st.data())
def test_batchnorm_in_eval_uses_running_stats(device, dtype, x, data):
    t = x.build(dtype=dtype, device=device)
    bn = nn.BatchNorm1d(x.shape[1]).to(device)
    bn.train()(t)  # one step of running statistics
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    out = bn.eval()(t)
    assert_close(out, (t - mean) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias)
    assert torch.equal(bn.running_mean, mean), "eval() must not update the running statistics"


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
    assert torch.equal(s1[0].weight, s2[0].weight)


@pytest.mark.behaviour("modules.modules_is_dict")
def test_modules_is_a_plain_dict(device):
    model = small_model(device)
    assert type(model._modules) is dict
    assert list(model._modules) == ["0", "1", "2"]


@pytest.mark.behaviour("modules.conv2d_output_shape")
@pytest.mark.dtypes("float32")
@given(groups=st.integers(1, 3), cin_per=st.integers(1, 2), cout_per=st.integers(1, 2),
       k=st.integers(1, 3), stride=st.integers(1, 3), padding=st.integers(0, 2), dilation=st.integers(1, 2),
       h=st.integers(1, 8), w=st.integers(1, 8))
def test_conv2d_output_shape_formula(device, dtype, groups, cin_per, cout_per, k, stride, padding, dilation, h, w):
    def out_size(n):
        return (n + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    with private_rng():
        conv = nn.Conv2d(groups * cin_per, groups * cout_per, k, stride=stride, padding=padding,
                         dilation=dilation, groups=groups).to(device, dtype)
    x = torch.zeros(2, groups * cin_per, h, w, dtype=dtype, device=device)
    if out_size(h) < 1 or out_size(w) < 1:
        with pytest.raises(RuntimeError):
            conv(x)
    else:
        assert conv(x).shape == (2, groups * cout_per, out_size(h), out_size(w))
