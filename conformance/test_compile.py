"""torch.compile's own promises, and automatic mixed precision on the CPU.

torch.compile: a graph break keeps eager results (the compiler runs what it cannot trace in
regular Python), fullgraph=True raises on one, disable=True compiles nothing, and
torch.compiler.is_compiling() tells traced code from eager code. These tests compile, and each
compile costs about half a second to a second on 2 cores (the first in a process also imports
Dynamo, about 3 s), so the default run compiles few examples: dynamic=True, so one graph serves
several shapes, and small max_examples where each example compiles afresh (each says why). The
default backend here is aot_eager (Dynamo and AOTAutograd with eager kernels: inductor needs a
C++ toolchain and is slow); `--compile=BACKEND[,...]` runs them with those backends instead and
adds a heavier graph-break test (dynamic=False, a recompile per new shape), which otherwise skips
with its reason.

Autocast (torch.amp.autocast on the CPU, bfloat16) and gradient scaling (torch.amp.GradScaler on
the CPU) are the amp page's CPU promises: the op lists of the Autocast Op Reference, and the
scale/unscale_/step/update protocol of the GradScaler docstrings.

None of these is a declared Operation: each catalogue entry says why (not_declared)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from torch.testing import assert_close

from conformance.checks import assert_close_to_reference, assert_equal, independent_array
from conformance.harness.compiled import compile_modes
from conformance.harness.releases import torch_at_least
from conformance.test_losses import MSE_HAS_CPU_BFLOAT16
from strategies import specs
from strategies.samples import call_forms, option_grid
from strategies.shapes import shapes
from strategies.tensors import label

DEFAULT_BACKEND = "aot_eager"
# torch.compile under the repro trace's TorchFunctionMode traces the mode as well and fails, so a
# failing compiling test gives this reason instead of a script
UNTRACED = pytest.mark.untraced(
    "the test compiles: torch.compile under the repro trace (a TorchFunctionMode) traces the mode too, so no script is traced"
)


def backends(config) -> list[str]:
    """The backends a compiling test uses: those given with --compile, else aot_eager."""
    return compile_modes(config) or [DEFAULT_BACKEND]


def exact(a) -> torch.Tensor:
    """A float64 reference tensor of NumPy values (0-dim results included)."""
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def wide(t: torch.Tensor) -> np.ndarray:
    """An exact float64 NumPy copy of a CPU tensor's values (made without the NumPy bridge)."""
    return independent_array(t.detach().cpu().to(torch.float64))


class CountingBackend:
    """A torch.compile backend that counts the graphs it is handed and compiles them with `real`."""

    def __init__(self, real: str):
        self.real = torch._dynamo.lookup_backend(real)
        self.graphs = 0

    def __call__(self, graph_module, example_inputs):
        self.graphs += 1
        return self.real(graph_module, example_inputs)


def graph_breaks() -> int:
    from torch._dynamo.utils import counters

    return sum(counters["graph_break"].values())


# --- graph breaks ---------------------------------------------------------------------------------


def branchy(x):
    """Code Dynamo cannot trace whole: `.item()` and `.tolist()` in the middle, a Python branch on
    the value `.item()` read, then more tensor code. The branch reads an exact count (how many
    elements are positive), so every backend takes the branch eager code takes."""
    positive = x > 0
    n = positive.sum().item()  # .item(): a graph break (capture_scalar_outputs is off by default)
    signs = positive.tolist()  # .tolist(): a graph break
    if n * 2 > x.numel():  # a Python branch on the tensor's values
        y = x * 2
    else:
        y = x - 1
    return y * (n + 1), signs


def branchy_reference(x: torch.Tensor):
    """branchy's results from the documented Python semantics, computed in NumPy (float64)."""
    a = wide(x)
    positive = a > 0
    n = int(positive.sum())
    y = a * 2 if n * 2 > a.size else a - 1
    return exact(y * (n + 1)), positive.tolist()


def check_graph_break_results(device, dtype, x, backend: str, dynamic: bool, compiled_counter: CountingBackend):
    compiled = torch.compile(branchy, backend=compiled_counter, dynamic=dynamic)
    for inputs in (x, -x):  # both branches, one after the other on the same compiled function
        assert compiled is not branchy, "the same compiled function is called on both branches"
        out, signs = compiled(inputs)
        eager_out, eager_signs = branchy(inputs)
        expected, expected_signs = branchy_reference(inputs)
        assert out.dtype == dtype and out.device == inputs.device, (
            f"compiled ({backend}): another dtype or device than the input's: {out.dtype} on {out.device}"
        )
        assert signs == expected_signs == eager_signs, f"compiled ({backend}): .tolist() in the middle gave another list"
        # the result rounds twice (x*2 or x-1, then the product): at the dtype's tolerance
        assert_close_to_reference(
            out, expected, equal_nan=True, msg=lambda m: f"compiled ({backend}) across graph breaks: not the eager result\n{m}"
        )
        assert_close(out, eager_out, equal_nan=True, msg=lambda m: f"compiled ({backend}) differs from eager\n{m}")
    assert compiled_counter.graphs > 0, f"compiled ({backend}): no graph was compiled, so nothing was compared"


@pytest.fixture
def fresh_compiles():
    """An empty compile cache for the item, and the graph breaks counted from there."""
    torch._dynamo.reset()
    return graph_breaks()


@UNTRACED
@pytest.mark.behaviour("compile.graph_breaks_keep_eager_results")
@pytest.mark.dtypes("float32")
@pytest.mark.device_types("cpu", "cuda")
# Two examples, one dtype: dynamic=True lets one compiled function serve every size of one rank and
# layout, but a new rank or layout compiles its graphs again (about 1 s on 2 cores); every floating
# dtype and many more examples run under --compile (the test below).
@settings(max_examples=2)
@given(x=specs(special_values=True))
def test_graph_breaks_keep_eager_results(request, device, dtype, x, fresh_compiles, record_observation):
    t = x.build(dtype=dtype, device=device)
    for backend in backends(request.config):
        counter = CountingBackend(backend)
        check_graph_break_results(device, dtype, t, backend, True, counter)
    breaks = graph_breaks() - fresh_compiles
    record_observation("graph breaks", str(breaks))
    assert breaks > 0, "branchy compiled without a graph break: the test no longer checks one"


@UNTRACED
@pytest.mark.behaviour("compile.graph_breaks_keep_eager_results")
@pytest.mark.dtypes("floating")
@pytest.mark.device_types("cpu", "cuda")
# Every example of a new shape compiles afresh (dynamic=False): a quarter of the profile's examples,
# without shrinking (each shrink step compiles again).
@settings(
    settings.default,
    max_examples=max(1, settings.default.max_examples // 4),
    phases=[phase for phase in settings.default.phases if phase != Phase.shrink],
)
@given(x=specs(special_values=True))
def test_graph_breaks_keep_eager_results_recompiling(request, device, dtype, x):
    if not compile_modes(request.config):
        pytest.skip("the heavier compiled run (a recompile per new shape): only with --compile=BACKEND")
    t = x.build(dtype=dtype, device=device)
    for backend in compile_modes(request.config):
        check_graph_break_results(device, dtype, t, backend, False, CountingBackend(backend))


# --- fullgraph=True ------------------------------------------------------------------------------


def branch_on_values(x):
    if x.sum() > 0:  # a data-dependent Python branch: a graph break
        return x * 2
    return x - 1


def traceable(x):
    return torch.where(x.sum() > 0, x * 2, x - 1)


@UNTRACED
@pytest.mark.behaviour("compile.fullgraph_raises_on_graph_break")
@pytest.mark.dtypes("float32")
@pytest.mark.device_types("cpu", "cuda")
# Two examples: each call of the fullgraph=True function that breaks traces it again until the
# break (0.2 s), and the traceable one compiles for each new rank and layout (0.3 s).
@settings(max_examples=2)
@given(x=specs())
def test_fullgraph_raises_on_a_graph_break(request, device, dtype, x, fresh_compiles, record_observation):
    t = x.build(dtype=dtype, device=device)
    a = wide(t)
    for backend in backends(request.config):
        with pytest.raises(Exception) as raised:  # "this will raise an error" (no type documented)
            torch.compile(branch_on_values, backend=backend, fullgraph=True)(t)
        record_observation("error raised on a graph break under fullgraph=True", type(raised.value).__name__)
        counter = CountingBackend(backend)
        out = torch.compile(traceable, backend=counter, fullgraph=True, dynamic=True)(t)
        expected = exact(a * 2 if a.sum() > 0 else a - 1)
        assert_close_to_reference(out, expected, msg=lambda m: f"fullgraph=True ({backend}): not the function's result\n{m}")
        assert counter.graphs == 1, f"fullgraph=True ({backend}): {counter.graphs} graphs for a function without breaks"


# --- disable=True --------------------------------------------------------------------------------


@UNTRACED
@pytest.mark.behaviour("compile.disable_is_a_no_op")
@pytest.mark.dtypes("float32")
@given(x=specs(special_values=True), options=option_grid(fullgraph=[False, True], dynamic=[None, False, True]))
def test_disable_makes_compile_a_no_op(device, dtype, x, options, record_observation):
    t = x.build(dtype=dtype, device=device)
    handed = []

    def backend(graph_module, example_inputs):
        handed.append(graph_module)
        return graph_module.forward

    def body(x):
        out, signs = branchy(x)  # graph breaks, which fullgraph=True would refuse if it compiled
        return out, signs, torch.compiler.is_compiling()

    compiled = torch.compile(body, backend=backend, disable=True, **options)
    record_observation("torch.compile(fn, disable=True) returns", "fn itself" if compiled is body else type(compiled).__name__)
    out, signs, compiling = compiled(t)
    expected, expected_signs = branchy_reference(t)
    assert not handed, f"disable=True with {options}: a graph was still handed to the backend"
    assert compiling is False, f"disable=True with {options}: torch.compiler.is_compiling() was True inside"
    assert signs == expected_signs
    assert_close_to_reference(out, expected, equal_nan=True, msg=lambda m: f"disable=True with {options}: not fn's result\n{m}")


# --- torch.compiler.is_compiling -----------------------------------------------------------------


def tagged(x):
    return x + 1, torch.compiler.is_compiling()


class Tagged(torch.nn.Module):
    def forward(self, x):
        return x + 1 if torch.compiler.is_compiling() else x - 1


@UNTRACED
@pytest.mark.behaviour("compile.is_compiling")
@pytest.mark.dtypes("float32")
@pytest.mark.device_types("cpu", "cuda")
# Two examples: one compile and one export per rank and layout (about 0.3 s each).
@settings(max_examples=2)
@given(x=specs(shapes=shapes(min_dims=1)))  # torch.export takes no 0-dim input here: shapes of 1 or more dims
def test_is_compiling_only_while_traced(request, device, dtype, x, fresh_compiles):
    t = x.build(dtype=dtype, device=device)
    expected = exact(wide(t) + 1)
    assert torch.compiler.is_compiling() is False, "is_compiling() is True in eager code"
    out, compiling = tagged(t)
    assert compiling is False, "is_compiling() is True in a function run eagerly"
    for backend in backends(request.config):
        out, compiling = torch.compile(tagged, backend=backend, fullgraph=True, dynamic=True)(t)
        assert compiling is True, f"is_compiling() is False in a function traced by torch.compile(backend={backend!r})"
        assert_close_to_reference(out, expected)
    exported = torch.export.export(Tagged(), (t,))
    assert_close_to_reference(exported.module()(t), expected, msg=lambda m: f"is_compiling() was False under torch.export\n{m}")
    assert_close_to_reference(Tagged()(t), exact(wide(t) - 1), msg=lambda m: f"is_compiling() eagerly\n{m}")


# --- autocast on the CPU -------------------------------------------------------------------------

LOW = torch.bfloat16


def region(form: str, **kwargs):
    """An autocast region on the CPU in one documented spelling: the dtype given, or left out (the
    CPU's default, bfloat16)."""
    if form == "torch.amp.autocast":
        return torch.amp.autocast("cpu", dtype=LOW, **kwargs)
    if form == "torch.amp.autocast(dtype omitted)":
        return torch.amp.autocast(device_type="cpu", **kwargs)
    return torch.autocast("cpu", dtype=LOW, **kwargs)


REGIONS = {"torch.amp.autocast": None, "torch.amp.autocast(dtype omitted)": None, "torch.autocast": None}


@st.composite
def sizes(draw):
    return {k: draw(st.integers(0, 3), label=k) for k in "bmnp"}


def lower_precision_case(name: str, s: dict, device, dtype, data):
    """(call, reference in float64 of the inputs as given) for one op of the CPU bfloat16 list,
    called as the amp page says: as a function, a Tensor method or part of an nn.Module."""
    b, m, n, p = (max(1, s["b"]), s["m"], s["n"], s["p"])

    def draw(*shape):
        return data.draw(specs(shape=shape), label=f"{name} operand").build(dtype=dtype, device=device)

    if name in ("mm", "Tensor.mm", "matmul @"):
        x, y = draw(m, n), draw(n, p)
        call = {"mm": lambda: torch.mm(x, y), "Tensor.mm": lambda: x.mm(y), "matmul @": lambda: x @ y}[name]
        return call, lambda w: w(x) @ w(y), (x, y)
    if name == "bmm":
        x, y = draw(b, m, n), draw(b, n, p)
        return lambda: torch.bmm(x, y), lambda w: np.matmul(w(x), w(y)), (x, y)
    if name == "addmm":
        c, x, y = draw(m, p), draw(m, n), draw(n, p)
        return lambda: torch.addmm(c, x, y), lambda w: w(c) + w(x) @ w(y), (c, x, y)
    if name == "baddbmm":
        c, x, y = draw(b, m, p), draw(b, m, n), draw(b, n, p)
        return lambda: torch.baddbmm(c, x, y), lambda w: w(c) + np.matmul(w(x), w(y)), (c, x, y)
    if name == "addbmm":
        c, x, y = draw(m, p), draw(b, m, n), draw(b, n, p)
        return lambda: torch.addbmm(c, x, y), lambda w: w(c) + np.matmul(w(x), w(y)).sum(0), (c, x, y)
    if name in ("linear", "nn.Linear"):
        x, weight, bias = draw(m, n), draw(p, n), draw(p)
        if name == "linear":
            return lambda: F.linear(x, weight, bias), lambda w: w(x) @ w(weight).T + w(bias), (x, weight, bias)
        module = torch.nn.utils.skip_init(torch.nn.Linear, n, p, device=device, dtype=dtype)  # no init: no RNG draw
        with torch.no_grad():
            module.weight.copy_(weight)
            module.bias.copy_(bias)
        return lambda: module(x), lambda w: w(x) @ w(weight).T + w(bias), (x, weight, bias)
    if name == "linalg.vecdot":
        x, y = draw(m, n), draw(m, n)
        return lambda: torch.linalg.vecdot(x, y), lambda w: (w(x) * w(y)).sum(-1), (x, y)
    if name == "conv1d":
        length, k = n + 2, 1 + s["p"] % 2  # a kernel of 1 or 2 over a length of at least 2
        x, weight = draw(b, 2, length), draw(p or 1, 2, k)

        def conv(w):
            a, f = w(x), w(weight)
            out = np.zeros((a.shape[0], f.shape[0], length - k + 1))
            for i in range(length - k + 1):
                out[:, :, i] = np.einsum("bck,ock->bo", a[:, :, i : i + k], f)
            return out

        return lambda: F.conv1d(x, weight), conv, (x, weight)
    raise AssertionError(name)


LOWER_PRECISION_OPS = (
    "mm",
    "Tensor.mm",
    "matmul @",
    "bmm",
    "addmm",
    "baddbmm",
    "addbmm",
    "linear",
    "nn.Linear",
    "linalg.vecdot",
    "conv1d",
)


def assert_within_sum_rounding(out: torch.Tensor, expected, magnitude, terms: int, what: str) -> None:
    """`out` (bfloat16) is `expected` within bfloat16's relative tolerance of the result plus
    (terms + 1) bfloat16 eps of `magnitude` (the sum of the products' absolute values), elementwise."""
    __tracebackhide__ = True
    eps = torch.finfo(LOW).eps
    got = wide(out)
    expected, magnitude = np.asarray(expected, dtype=np.float64), np.asarray(magnitude, dtype=np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    bound = 1.6e-2 * np.abs(expected) + (terms + 1) * eps * magnitude + 1e-5
    worst = np.abs(got - expected) - bound
    assert not (worst > 0).any(), (
        f"{what}: {int((worst > 0).sum())} of {got.size} elements beyond the rounding of a bfloat16 sum "
        f"(got {got.ravel()[:6].tolist()}, expected {expected.ravel()[:6].tolist()})"
    )


def bf16_rounded(t: torch.Tensor) -> np.ndarray:
    """The exact values of `t` rounded once to bfloat16, as float64."""
    return wide(t.to(LOW))


@pytest.mark.behaviour("compile.autocast_cpu_lower_precision")
@pytest.mark.device_types("cpu")
@given(
    op=call_forms(dict.fromkeys(LOWER_PRECISION_OPS)),
    form=call_forms(REGIONS),
    s=sizes(),
    data=st.data(),
)
def test_autocast_runs_the_cpu_lower_precision_list_in_bfloat16(device, op, form, s, data):
    call, reference, inputs = lower_precision_case(op, s, device, torch.float32, data)
    with region(form):
        out = call()
        assert torch.is_autocast_enabled("cpu"), f"{form}: autocast is not enabled inside the region"
    assert out.dtype == LOW, f"{op} of float32 inputs inside {form} gave {out.dtype}, not bfloat16"
    # the op runs on its inputs cast to bfloat16: the float64 result of the rounded inputs, within
    # the rounding of a sum of products in bfloat16 (no doc fixes the order or the precision of the
    # accumulation, so each partial sum may round): bfloat16's relative tolerance of the result plus
    # (terms + 1) bfloat16 eps of the sum of the products' magnitudes, where one output element sums
    # at most b * n + 1 products (addbmm; conv1d 4)
    expected = reference(bf16_rounded)
    magnitude = reference(lambda t: np.abs(bf16_rounded(t)))
    terms = max(1, s["b"]) * s["n"] + 4
    assert_within_sum_rounding(out, expected, magnitude, terms, f"{op} under {form}: not the op of the inputs cast to bfloat16")
    # not eligible: float64 runs in float64 inside the region; outside the region, or with
    # enabled=False, float32 stays float32
    call64, reference64, _ = lower_precision_case(op, s, device, torch.float64, data)
    with region(form):
        out64 = call64()
        with region(form, enabled=False):
            off = call()
    assert out64.dtype == torch.float64, f"{op} of float64 inputs inside {form} gave {out64.dtype}: float64 is not eligible"
    assert_close_to_reference(out64, exact(reference64(wide)))
    assert off.dtype == torch.float32, f"{op} in an enabled=False region nested in {form} gave {off.dtype}"
    assert call().dtype == torch.float32, f"{op} after leaving {form} no longer runs in float32"
    if op == "mm":  # in place or with out= the op is allowed but not autocast: float32 stays float32
        x, y = inputs
        written = torch.empty(x.shape[0], y.shape[1], dtype=torch.float32, device=device)
        with region(form):
            torch.mm(x, y, out=written)
            summed = written.clone().addmm_(x, y)
            not_listed = torch.add(x, x)  # an unlisted op runs in its inputs' type
        assert written.dtype == summed.dtype == torch.float32, "mm(out=float32) or addmm_ was autocast"
        assert_close_to_reference(written, exact(wide(x) @ wide(y)))
        assert not_listed.dtype == torch.float32, f"add (unlisted) of float32 inputs inside {form} gave {not_listed.dtype}"


def float32_case(name: str, x: torch.Tensor, y: torch.Tensor):
    """(call, NumPy reference in float64) for one op of the CPU float32 list, on bfloat16 x and y of
    one shape."""
    a, b = wide(x), wide(y)
    match name:
        case "prod":
            return lambda: torch.prod(x), lambda: np.prod(a)
        case "Tensor.prod":
            return lambda: x.prod(), lambda: np.prod(a)
        case "mse_loss":
            return lambda: F.mse_loss(x, y), lambda: np.mean((a - b) ** 2) if a.size else np.nan
        case "l1_loss":
            return lambda: F.l1_loss(x, y), lambda: np.mean(np.abs(a - b)) if a.size else np.nan
        case "huber_loss":
            d = np.abs(a - b)
            return lambda: F.huber_loss(x, y), lambda: np.mean(np.where(d < 1, 0.5 * d**2, d - 0.5)) if a.size else np.nan
        case "nn.MSELoss":
            return lambda: torch.nn.MSELoss()(x, y), lambda: np.mean((a - b) ** 2) if a.size else np.nan
        case "binary_cross_entropy_with_logits":
            t = (b > 0).astype(np.float64)
            target = exact(t).to(LOW)
            loss = np.maximum(a, 0) - a * t + np.log1p(np.exp(-np.abs(a)))
            return lambda: F.binary_cross_entropy_with_logits(x, target), lambda: np.mean(loss) if a.size else np.nan
        case "cdist":
            a2, b2 = a.reshape(-1, 1), b.reshape(-1, 1)
            return lambda: torch.cdist(x.reshape(-1, 1), y.reshape(-1, 1)), lambda: np.abs(a2 - b2.T)
        case "trace":
            m = a.reshape(1, -1) if a.ndim != 2 else a
            return lambda: torch.trace(x.reshape(1, -1) if x.ndim != 2 else x), lambda: np.trace(m)
    raise AssertionError(name)


# trace has a bfloat16 CPU kernel from torch 2.13: "Add Half and BFloat16 dispatch support for torch.trace
# on CPU", https://github.com/pytorch/pytorch/pull/184874 (merged 2026-05, after 2.12's release). Before it,
# trace of bfloat16 inputs outside an autocast region raises (torch 2.6: '"trace" not implemented for
# 'BFloat16''), as cdist's always does; inside one it runs in float32 on every release.
TRACE_HAS_CPU_BFLOAT16 = torch_at_least("2.13")
# mse_loss has one from torch 2.6 (https://github.com/pytorch/pytorch/pull/139959; torch 2.5.1:
# '"mse_cpu" not implemented for 'BFloat16''), the same as losses.mse_reductions narrows.
NO_CPU_BFLOAT16_KERNEL = {"trace"} if not TRACE_HAS_CPU_BFLOAT16 else set()
if not MSE_HAS_CPU_BFLOAT16:
    NO_CPU_BFLOAT16_KERNEL |= {"mse_loss", "nn.MSELoss"}

FLOAT32_OPS = (
    "prod",
    "Tensor.prod",
    "mse_loss",
    "l1_loss",
    "huber_loss",
    "nn.MSELoss",
    "binary_cross_entropy_with_logits",
    "cdist",
    "trace",
)


@pytest.mark.behaviour("compile.autocast_cpu_float32")
@pytest.mark.device_types("cpu")
@given(
    op=call_forms(dict.fromkeys(FLOAT32_OPS)),
    form=call_forms(REGIONS),
    shape=shapes(max_dims=2),
    data=st.data(),
)
def test_autocast_runs_the_cpu_float32_list_in_float32(device, op, form, shape, data):
    x, y = (data.draw(specs(shape=shape), label=n).build(dtype=LOW, device=device) for n in "xy")
    call, reference = float32_case(op, x, y)
    with region(form):
        out = call()
        unlisted = torch.relu(x)  # unlisted: runs in its input's type
    assert out.dtype == torch.float32, f"{op} of bfloat16 inputs inside {form} gave {out.dtype}, not float32"
    # the op runs on its bfloat16 inputs cast (exactly) to float32: float32's tolerance against
    # float64, except prod, which rounds once per factor (up to 25 here): that many float32 eps
    loose = {"rtol": max(1, x.numel()) * torch.finfo(torch.float32).eps, "atol": 1e-5} if "prod" in op else {}
    assert_close_to_reference(
        out,
        torch.as_tensor(reference(), dtype=torch.float64),
        equal_nan=True,
        msg=lambda m: f"{op} under {form}: not the op of the inputs in float32\n{m}",
        **loose,
    )
    assert unlisted.dtype == LOW, f"relu (unlisted) of a bfloat16 input inside {form} gave {unlisted.dtype}"
    assert not torch.is_autocast_enabled("cpu"), f"autocast outlived {form}"
    if op in NO_CPU_BFLOAT16_KERNEL:  # no bfloat16 CPU kernel yet: refused outside the region
        with pytest.raises(RuntimeError, match="not implemented for 'BFloat16'"):
            call()
    elif op != "cdist":  # cdist has no bfloat16 CPU kernel outside autocast (it raises: observed)
        assert call().dtype == LOW, f"{op} of bfloat16 inputs outside the region: not bfloat16 but {call().dtype}"
    # the CPU list of ops that promote to the widest input type: cat and stack
    wider = x.to(torch.float32)
    with region(form):
        mixed = {"cat": torch.cat([x, wider]) if x.ndim else None, "stack": torch.stack([x, wider])}
        low = {"cat": torch.cat([x, y]) if x.ndim else None, "stack": torch.stack([x, y])}
    for name in ("cat", "stack"):
        if mixed[name] is None:  # cat takes no 0-dim tensors
            continue
        assert mixed[name].dtype == torch.float32, f"{name} of bfloat16 and float32 inside {form} gave {mixed[name].dtype}"
        assert low[name].dtype == LOW, f"{name} of bfloat16 inputs inside {form} gave {low[name].dtype}"
    assert_equal(mixed["stack"], torch.stack([wider, wider]), "stack of the widened inputs")


# --- GradScaler on the CPU -----------------------------------------------------------------------


def scaler_options(draw):
    given_ = draw(st.booleans(), label="options given")
    label(f"options given={given_}")
    if not given_:  # every option left out: its documented default
        return {}, dict(init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000)
    options = dict(
        init_scale=2.0 ** draw(st.integers(-2, 20), label="log2 init_scale"),
        growth_factor=draw(st.sampled_from([2.0, 4.0, 1.5]), label="growth_factor"),
        backoff_factor=draw(st.sampled_from([0.5, 0.25, 0.75]), label="backoff_factor"),
        growth_interval=draw(st.integers(1, 3), label="growth_interval"),
    )
    return options, options


@st.composite
def scaler_runs(draw):
    options, effective = scaler_options(draw)
    steps = draw(st.lists(st.sampled_from(["finite", "inf", "nan"]), min_size=1, max_size=5), label="steps")
    return options, effective, steps


@pytest.mark.behaviour("compile.grad_scaler_cpu")
@pytest.mark.device_types("cpu")
@given(
    run=scaler_runs(),
    w0=specs(shapes=shapes(min_dims=1, max_dims=2, min_side=1)),  # a skipped step needs an element to make inf or NaN
    explicit_unscale=st.booleans(),
    lr=st.sampled_from([0.5, 0.125]),
    data=st.data(),
)
def test_grad_scaler_scales_unscales_skips_and_updates(device, run, w0, explicit_unscale, lr, data):
    options, effective, steps = run
    w = w0.build(dtype=torch.float32, device=device).detach().clone().requires_grad_()
    opt = torch.optim.SGD([w], lr=lr)
    scaler = torch.amp.GradScaler("cpu", **options)
    scale, unskipped = effective["init_scale"], 0
    for kind in steps:
        assert scaler.get_scale() == scale, f"get_scale() did not return the scale: {scaler.get_scale()}, expected {scale}"
        before = w.detach().clone()
        opt.zero_grad()
        grad = data.draw(specs(shape=tuple(w.shape)), label="grad").build(dtype=torch.float32, device=device)
        if kind != "finite":
            grad[(0,) * grad.ndim] = math.inf if kind == "inf" else math.nan
        loss = (w * grad).sum()
        scaled = scaler.scale(loss)
        assert_close(scaled, loss.detach() * scale, equal_nan=True, msg=lambda m: f"scale(loss) is not loss * {scale}\n{m}")
        scaled.backward()
        if explicit_unscale:
            scaler.unscale_(opt)
            assert_close(w.grad, grad, equal_nan=True, msg=lambda m: f"unscale_ did not divide the grads by {scale}\n{m}")
        scaler.step(opt)
        if kind == "finite":  # optimizer.step() with the unscaled gradients: SGD's w - lr * g
            expected = exact(wide(before) - lr * wide(grad))
            assert_close_to_reference(
                w.detach(), expected, msg=lambda m: f"step(optimizer) did not step with unscaled grads\n{m}"
            )
            unskipped += 1
            if unskipped == effective["growth_interval"]:
                scale, unskipped = scale * effective["growth_factor"], 0
        else:  # infs/NaNs found: optimizer.step() skipped, the params uncorrupted
            assert_equal(w.detach(), before, f"step(optimizer) with {kind} grads did not skip optimizer.step()")
            scale, unskipped = scale * effective["backoff_factor"], 0
        scaler.update()
    assert scaler.get_scale() == scale, f"after update(): scale {scaler.get_scale()}, expected {scale}"
