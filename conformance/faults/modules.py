"""Faults in modules (catalogue area `modules`)."""

import copy

import torch
from torch import nn

from conformance.faults import fault


@fault("call_skips_hooks", trips=["modules.call_runs_hooks"])
def _(patch):
    """Calling a module runs forward only, skipping its hooks."""
    patch.method(nn.Module, "__call__", lambda orig: lambda self, *a, **k: self.forward(*a, **k))


@fault("parameter_no_grad", trips=["modules.parameter_is_tensor"])
def _(patch):
    """nn.Parameter defaults to requires_grad=False."""
    patch.method(nn.Parameter, "__new__", lambda orig: lambda cls, data=None, requires_grad=False: orig(cls, data, requires_grad))


@fault("named_parameters_unprefixed", trips=["modules.named_parameters"])
def _(patch):
    """named_parameters() drops the submodule prefix from names."""
    patch.method(
        nn.Module,
        "named_parameters",
        lambda orig: lambda self, *a, **k: ((name.rsplit(".", 1)[-1], p) for name, p in orig(self, *a, **k)),
    )


@fault("state_dict_copies", trips=["modules.state_dict_aliases"])
def _(patch):
    """state_dict() returns copies (the note's reading) instead of aliases."""
    patch.method(
        nn.Module, "state_dict", lambda orig: lambda self, *a, **k: {name: t.clone() for name, t in orig(self, *a, **k).items()}
    )


@fault("load_state_dict_assigns", trips=["modules.load_state_dict_copies"])
def _(patch):
    """load_state_dict swaps in the given tensors instead of copying values into the parameters."""
    patch.method(
        nn.Module,
        "load_state_dict",
        lambda orig: lambda self, state, strict=True, assign=False: orig(self, state, strict=strict, assign=True),
    )


@fault("dropout_ignores_eval", trips=["modules.eval_dropout_identity"])
def _(patch):
    """Dropout keeps dropping in eval() mode."""
    patch.method(nn.Dropout, "forward", lambda orig: lambda self, x: torch.nn.functional.dropout(x, self.p, True))


@fault("dropout_scale_drifts", trips=["modules.eval_dropout_identity"])
def _(patch):
    """Dropout in train() mode scales the kept values by 1 / (1 - p) off by a relative 1e-7 (within assert_close's
    float32 tolerance): one rounding too many in the scale."""

    @patch.replace(nn.Dropout, "forward")
    def forward(orig, self, x):
        out = orig(self, x)
        return out * (1 + 1e-7) if self.training and 0 < self.p < 1 else out


@fault("batchnorm_eval_uses_batch_stats", trips=["modules.eval_batchnorm_running_stats"])
def _(patch):
    """BatchNorm in eval() normalises with the batch statistics."""

    @patch.replace(nn.BatchNorm1d, "forward")
    def forward(orig, self, x):
        if self.training:
            return orig(self, x)
        return torch.nn.functional.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


@fault("eval_disables_grad", trips=["modules.modes_independent"])
def _(patch):
    """eval() also turns grad mode off."""

    @patch.replace(nn.Module, "eval")
    def eval_(orig, self):
        torch.set_grad_enabled(False)
        return orig(self)


@fault("train_returns_none", trips=["modules.train_eval_return_self"])
def _(patch):
    """train() and eval() return None."""
    patch.method(nn.Module, "train", lambda orig: lambda self, mode=True: (orig(self, mode), None)[1])


@fault("sequential_copies_layers", trips=["modules.sequential_shares_layers"])
def _(patch):
    """nn.Sequential deep-copies the modules it is given."""
    patch.method(nn.Sequential, "__init__", lambda orig: lambda self, *args: orig(self, *[copy.deepcopy(a) for a in args]))


@fault("modules_ordered_dict", trips=["modules.modules_is_dict"])
def _(patch):
    """Module._modules is an OrderedDict."""
    from collections import OrderedDict

    @patch.replace(nn.Module, "__init__")
    def init(orig, self, *a, **k):
        orig(self, *a, **k)
        object.__setattr__(self, "_modules", OrderedDict(self._modules))


@fault("conv2d_ceil_mode", trips=["modules.conv2d_output_shape"])
def _(patch):
    """Conv2d rounds its output size up when the stride does not divide evenly."""

    @patch.replace(nn.Conv2d, "forward")
    def forward(orig, self, x):
        s = self.stride[0]
        if s > 1:
            x = torch.nn.functional.pad(x, (0, s - 1, 0, s - 1))
        return orig(self, x)


@fault("apply_children_only", trips=["modules.apply_visits_every_module"])
def _(patch):
    """Module.apply calls fn on the direct children only, not recursively."""

    @patch.replace(nn.Module, "apply")
    def apply(orig, self, fn):
        for child in self.children():
            fn(child)
        fn(self)
        return self


@fault("init_constant_copies", trips=["modules.init_constant_fills"])
def _(patch):
    """nn.init.constant_ returns a filled copy and leaves the tensor as it was."""

    @patch.replace(nn.init, "constant_")
    def constant_(orig, tensor, val):
        return torch.full_like(tensor.detach(), val)


@fault("flatten_from_dim_zero", trips=["modules.flatten_keeps_batch"])
def _(patch):
    """nn.Flatten() flattens everything, the batch dimension included."""

    @patch.replace(nn.Flatten, "forward")
    def forward(orig, self, input):
        return input.flatten()


@fault("state_dict_keeps_non_persistent", trips=["modules.state_dict_persistent_buffers"])
def _(patch):
    """state_dict also holds buffers registered with persistent=False."""

    @patch.replace(nn.Module, "state_dict")
    def state_dict(orig, self, *a, **k):
        out = orig(self, *a, **k)
        for name, buffer in self.named_buffers():
            out.setdefault(name, buffer)
        return out


@fault("dataparallel_copies_module", trips=["modules.dataparallel_keeps_module"])
def _(patch):
    """nn.DataParallel keeps a deep copy of the model, not the model itself."""

    @patch.replace(nn.DataParallel, "__init__")
    def __init__(orig, self, module, *a, **k):
        orig(self, copy.deepcopy(module), *a, **k)


@fault("parameter_is_a_variable_subclass", trips=["modules.parameter_not_a_variable_subclass"])
def _(patch):
    """issubclass(nn.Parameter, Variable) holds again (as in torch before 0.4)."""
    meta = type(torch.autograd.Variable)
    patch.attribute(meta, "__subclasscheck__", lambda cls, other: issubclass(other, torch.Tensor))


@fault("kaiming_normal_always_fan_in", trips=["modules.kaiming_normal_std"])
def _(patch):
    """kaiming_normal_ ignores mode='fan_out' and scales by fan_in."""

    @patch.replace(nn.init, "kaiming_normal_")
    def kaiming_normal_(orig, tensor, a=0, mode="fan_in", *rest, **k):
        return orig(tensor, a, "fan_in", *rest, **k)


@fault("kaiming_normal_ignores_slope", trips=["modules.kaiming_normal_std"])
def _(patch):
    """kaiming_normal_ uses relu's gain sqrt(2) whatever the leaky_relu slope a."""

    @patch.replace(nn.init, "kaiming_normal_")
    def kaiming_normal_(orig, tensor, a=0, *rest, **k):
        return orig(tensor, 0, *rest, **k)


@fault("conv2d_same_pads_half_the_kernel", trips=["modules.conv2d_signature"])
def _(patch):
    """Conv2d(padding='same') pads kernel_size // 2 on every side, which is too much for even kernels."""

    @patch.replace(nn.Conv2d, "__init__")
    def init(orig, self, in_channels, out_channels, kernel_size, *a, padding=0, dilation=1, **k):
        if padding == "same":
            padding = dilation * (kernel_size // 2)
        orig(self, in_channels, out_channels, kernel_size, *a, padding=padding, dilation=dilation, **k)


@fault("linear_drops_bias", trips=["modules.linear_affine"])
def _(patch):
    """nn.Linear computes x A^T and forgets the bias."""
    patch.method(nn.Linear, "forward", lambda orig: lambda self, x: x @ self.weight.T)


@fault("layer_norm_unbiased_variance", trips=["modules.layer_norm_formula"])
def _(patch):
    """LayerNorm divides by sqrt of the unbiased (n - 1) variance."""

    def forward(self, x):
        dims = tuple(range(-len(self.normalized_shape), 0))
        mean = x.mean(dims, keepdim=True)
        var = x.var(dims, keepdim=True, correction=1)
        y = (x - mean) / torch.sqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight
        if self.bias is not None:
            y = y + self.bias
        return y

    patch.method(nn.LayerNorm, "forward", lambda orig: forward)


@fault("gelu_always_tanh", trips=["modules.activation_formulas"])
def _(patch):
    """F.gelu uses the tanh approximation even when approximate='none'."""
    import torch.nn.functional as F

    @patch.replace(F, "gelu")
    def gelu(orig, x, approximate="none"):
        return orig(x, approximate="tanh")


@fault("gelu_module_ignores_approximate", trips=["modules.activation_formulas"])
def _(patch):
    """nn.GELU(approximate='tanh') computes the exact erf GELU: the module drops its approximate argument."""

    @patch.replace(nn.GELU, "__init__")
    def init(orig, self, approximate="none"):
        orig(self)


@fault("clip_grad_norm_amplifies", trips=["modules.clip_grad_norm"])
def _(patch):
    """clip_grad_norm_ scales by max_norm / total_norm without clamping to 1, so small gradients grow."""

    @patch.replace(nn.utils, "clip_grad_norm_")
    def clip(orig, parameters, max_norm, norm_type=2.0, **k):
        parameters = list(parameters)
        total = orig(parameters, float("inf"), norm_type, **k)
        with torch.no_grad():
            for p in parameters:
                p.grad.mul_(max_norm / (total + 1e-6))
        return total


@fault("embedding_ignores_padding_idx", trips=["modules.embedding_lookup"])
def _(patch):
    """nn.Embedding drops padding_idx: the padding row is random and gets gradients."""

    @patch.replace(nn.Embedding, "__init__")
    def init(orig, self, num_embeddings, embedding_dim, padding_idx=None, *a, **k):
        orig(self, num_embeddings, embedding_dim, None, *a, **k)


@fault("module_list_append_unregistered", trips=["modules.module_list_registers"])
def _(patch):
    """ModuleList.append keeps the module in a plain list: it is neither indexed nor registered."""

    @patch.replace(nn.ModuleList, "append")
    def append(orig, self, module):
        self.__dict__.setdefault("_unregistered", []).append(module)
        return self


@fault("identity_copies", trips=["modules.identity_passes_through"])
def _(patch):
    """nn.Identity returns a copy of its input."""
    patch.method(nn.Identity, "forward", lambda orig: lambda self, x: x.clone())


@fault("attention_ignores_scale", trips=["modules.scaled_dot_product_attention"])
def _(patch):
    """scaled_dot_product_attention leaves the scores unscaled (scale 1) whatever E or scale= say."""
    import torch.nn.functional as F

    @patch.replace(F, "scaled_dot_product_attention")
    def sdpa(orig, q, k, v, *a, scale=None, **kw):
        return orig(q, k, v, *a, scale=1.0, **kw)


@fault("init_normal_uses_variance_as_std", trips=["modules.init_normal_moments"])
def _(patch):
    """nn.init.normal_(t, mean, std) draws with standard deviation std squared."""

    @patch.replace(nn.init, "normal_")
    def normal_(orig, tensor, mean=0.0, std=1.0, *a, **k):
        return orig(tensor, mean, std * std, *a, **k)


@fault("module_dict_sorted_keys", trips=["modules.module_dict_registers"])
def _(patch):
    """nn.ModuleDict gives its keys sorted, not in the order of insertion."""
    patch.method(nn.ModuleDict, "keys", lambda orig: lambda self: sorted(orig(self)))


@fault("functional_dropout_ignores_training", trips=["modules.functional_dropout"])
def _(patch):
    """F.dropout(training=False) drops elements all the same."""

    @patch.replace(torch.nn.functional, "dropout")
    def dropout(orig, input, p=0.5, training=True, inplace=False):
        return orig(input, p, True, inplace)


@fault("functional_dropout_unscaled", trips=["modules.functional_dropout"])
def _(patch):
    """F.dropout zeroes elements but does not scale the kept ones by 1 / (1 - p)."""

    @patch.replace(torch.nn.functional, "dropout")
    def dropout(orig, input, p=0.5, training=True, inplace=False):
        out = orig(input, p, training, inplace)
        return out * (1 - p) if training and p < 1 else out


@fault("normalize_adds_eps", trips=["modules.normalize_formula"])
def _(patch):
    """F.normalize divides by ||v||_p + eps instead of max(||v||_p, eps)."""

    @patch.replace(torch.nn.functional, "normalize")
    def normalize(orig, input, p=2.0, dim=1, eps=1e-12, out=None):
        return input / (input.norm(p, dim, keepdim=True) + eps)


@fault("functional_layer_norm_ignores_eps", trips=["modules.layer_norm_formula"])
def _(patch):
    """F.layer_norm uses the default eps 1e-5 whatever eps it is given."""

    @patch.replace(torch.nn.functional, "layer_norm")
    def layer_norm(orig, input, normalized_shape, weight=None, bias=None, eps=1e-5):
        return orig(input, normalized_shape, weight, bias, 1e-5)


@fault("max_pool2d_default_stride_one", trips=["modules.max_pool2d_windows"])
def _(patch):
    """Max pooling with stride left out slides by 1, not by kernel_size."""

    @patch.replace(torch.nn.functional, "max_pool2d")
    def max_pool2d(orig, input, kernel_size, stride=None, *args, **kwargs):
        return orig(input, kernel_size, stride if stride not in (None, ()) else 1, *args, **kwargs)

    @patch.replace(nn.MaxPool2d, "__init__")
    def init(orig, self, kernel_size, stride=None, *args, **kwargs):
        orig(self, kernel_size, 1 if stride is None else stride, *args, **kwargs)


@fault("max_pool2d_ignores_ceil_mode", trips=["modules.max_pool2d_windows"])
def _(patch):
    """Max pooling always rounds its output size down."""

    @patch.replace(torch.nn.functional, "max_pool2d")
    def max_pool2d(orig, input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        return orig(input, kernel_size, stride, padding, dilation, ceil_mode=False, return_indices=return_indices)


@fault("avg_pool2d_ignores_count_include_pad", trips=["modules.avg_pool2d_windows"])
def _(patch):
    """Average pooling counts the zero padding in the divisor even with count_include_pad=False."""

    @patch.replace(torch.nn.functional, "avg_pool2d")
    def avg_pool2d(orig, input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, **kwargs):
        return orig(input, kernel_size, stride, padding, ceil_mode, True, **kwargs)


@fault("avg_pool2d_module_ignores_count_include_pad", trips=["modules.avg_pool2d_windows"])
def _(patch):
    """nn.AvgPool2d drops the count_include_pad it is built with (F.avg_pool2d keeps its own): the module counts the
    zero padding in every divisor."""

    @patch.replace(nn.AvgPool2d, "__init__")
    def init(orig, self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, **kwargs):
        orig(self, kernel_size, stride, padding, ceil_mode, True, **kwargs)


@fault("avg_pool2d_ignores_divisor_override", trips=["modules.avg_pool2d_windows"])
def _(patch):
    """Average pooling divides by the window's size even when divisor_override is given."""

    @patch.replace(torch.nn.functional, "avg_pool2d")
    def avg_pool2d(orig, input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, *rest, **kwargs):
        kwargs.pop("divisor_override", None)
        return orig(input, kernel_size, stride, padding, ceil_mode, count_include_pad, **kwargs)


@fault("adaptive_avg_pool2d_none_as_one", trips=["modules.adaptive_avg_pool2d_size"])
def _(patch):
    """AdaptiveAvgPool2d takes a None output side as 1 instead of the input's size."""

    @patch.replace(nn.AdaptiveAvgPool2d, "forward")
    def forward(orig, self, input):
        size = self.output_size
        if isinstance(size, tuple):
            size = tuple(1 if s is None else s for s in size)
        return torch.nn.functional.adaptive_avg_pool2d(input, size)


@fault("convolution_flips_the_kernel", trips=["modules.convolution_cross_correlation"])
def _(patch):
    """Convolutions compute a true convolution (the kernel flipped), not the documented cross-correlation."""
    for name in ("conv1d", "conv2d", "conv3d"):

        @patch.replace(torch.nn.functional, name)
        def conv(orig, input, weight, *args, **kwargs):
            return orig(input, weight.flip(list(range(2, weight.ndim))), *args, **kwargs)


@fault("convolution_drops_the_bias", trips=["modules.convolution_cross_correlation"])
def _(patch):
    """Convolutions leave the bias out."""
    for name in ("conv1d", "conv2d", "conv3d"):

        @patch.replace(torch.nn.functional, name)
        def conv(orig, input, weight, bias=None, *args, **kwargs):
            return orig(input, weight, None, *args, **kwargs)


@fault("conv_transpose2d_ignores_output_padding", trips=["modules.conv_transpose2d_scatter"])
def _(patch):
    """ConvTranspose2d leaves output_padding out of its output size."""

    @patch.replace(torch.nn.functional, "conv_transpose2d")
    def conv_transpose2d(orig, input, weight, bias=None, stride=1, padding=0, output_padding=0, *args, **kwargs):
        return orig(input, weight, bias, stride, padding, 0, *args, **kwargs)


@fault("conv_transpose2d_drifts", trips=["modules.conv_transpose2d_scatter"])
def _(patch):
    """ConvTranspose2d drifts by 0.1%."""
    patch.method(torch.nn.functional, "conv_transpose2d", lambda orig: lambda *a, **k: orig(*a, **k) * 1.001)


@fault("batch_norm_momentum_inverted", trips=["modules.batch_norm_formula"])
def _(patch):
    """Batch norm's running statistics keep momentum of the new value's weight on the old one (the optimizer's
    notion of momentum), not the documented (1 - momentum) x + momentum x_t."""

    @patch.replace(torch.nn.functional, "batch_norm")
    def batch_norm(orig, input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
        return orig(input, running_mean, running_var, weight, bias, training, 1 - momentum, eps)


@fault("batch_norm_ignores_eps", trips=["modules.batch_norm_formula"])
def _(patch):
    """Batch norm adds its default eps, 1e-5, whatever eps it is given."""

    @patch.replace(torch.nn.functional, "batch_norm")
    def batch_norm(orig, input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
        return orig(input, running_mean, running_var, weight, bias, training, momentum, 1e-5)


@fault("batch_norm_module_ignores_bias_flag", trips=["modules.batch_norm_formula"])
def _(patch):
    """nn.BatchNorm2d(..., bias=False) learns an additive bias all the same: the module drops its bias argument."""
    patch.keyword_ignored(nn.BatchNorm2d, "__init__", "bias")


@fault("group_norm_ignores_bias_flag", trips=["modules.group_norm_formula"])
def _(patch):
    """nn.GroupNorm(..., bias=False) learns an additive bias all the same: the module drops its bias argument."""
    patch.keyword_ignored(nn.GroupNorm, "__init__", "bias")


@fault("group_norm_empty_batch_in_default_dtype", trips=["modules.group_norm_formula"])
def _(patch):
    """nn.GroupNorm of an empty batch returns an empty tensor of the default dtype, not of the input's."""

    @patch.replace(nn.GroupNorm, "forward")
    def forward(orig, self, input):
        out = orig(self, input)
        return torch.empty(out.shape, device=out.device) if input.numel() == 0 else out


@fault("group_norm_per_channel", trips=["modules.group_norm_formula"])
def _(patch):
    """GroupNorm takes its statistics over each channel (instance norm), not over each group."""

    @patch.replace(torch.nn.functional, "group_norm")
    def group_norm(orig, input, num_groups, weight=None, bias=None, eps=1e-5):
        return orig(input, input.shape[1], weight, bias, eps)


@fault("clip_grad_value_upper_only", trips=["modules.clip_grad_value"])
def _(patch):
    """clip_grad_value_ clips the gradients from above only, leaving values below -clip_value."""

    @patch.replace(nn.utils, "clip_grad_value_")
    def clip_grad_value_(orig, parameters, clip_value, foreach=None):
        parameters = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
        for p in parameters:
            if p.grad is not None:
                p.grad.clamp_(max=clip_value)


@fault("pad_sequence_ignores_padding_side", trips=["modules.pad_sequence"])
def _(patch):
    """pad_sequence pads on the right whatever padding_side says."""

    @patch.replace(nn.utils.rnn, "pad_sequence")
    def pad_sequence(orig, sequences, batch_first=False, padding_value=0.0, padding_side="right"):
        return orig(sequences, batch_first, padding_value, "right")


@fault("lstm_ignores_initial_state", trips=["modules.lstm_equations"])
def _(patch):
    """nn.LSTM starts from zeros whatever (h_0, c_0) it is given."""

    @patch.replace(nn.LSTM, "forward")
    def forward(orig, self, input, hx=None):
        return orig(self, input)


@fault("lstm_forget_gate_is_input_gate", trips=["modules.lstm_equations"])
def _(patch):
    """nn.LSTM reads its stacked gate weights in the order (f, i, g, o), not the documented (i, f, g, o)."""

    @patch.replace(nn.LSTM, "forward")
    def forward(orig, self, input, hx=None):
        saved = [(p, p.detach().clone()) for name, p in self.named_parameters() if "_ih_" in name or "_hh_" in name]
        with torch.no_grad():
            for p, old in saved:
                i, f, g, o = old.chunk(4, 0)
                p.copy_(torch.cat([f, i, g, o]))
        try:
            return orig(self, input, hx)
        finally:
            with torch.no_grad():
                for p, old in saved:
                    p.copy_(old)


@fault("multihead_weights_per_head_by_default", trips=["modules.multihead_attention"])
def _(patch):
    """MultiheadAttention returns per-head attention weights when average_attn_weights is left out."""

    @patch.replace(nn.MultiheadAttention, "forward")
    def forward(orig, self, query, key, value, *args, average_attn_weights=None, **kwargs):
        return orig(self, query, key, value, *args, average_attn_weights=bool(average_attn_weights), **kwargs)


@fault("multihead_drops_out_projection_bias", trips=["modules.multihead_attention"])
def _(patch):
    """MultiheadAttention leaves the output projection's bias out."""

    @patch.replace(nn.MultiheadAttention, "forward")
    def forward(orig, self, *args, **kwargs):
        output, weights = orig(self, *args, **kwargs)
        if self.out_proj.bias is not None:
            output = output - self.out_proj.bias
        return output, weights
