"""CUDA semantics: TF32 flags, seeding, deterministic mode, autocast's CUDA lists, streams, events,
pinned memory, CUDA generators, memory statistics and errors (issue 30).

Three behaviours are documented about the CUDA runtime yet checkable anywhere (the TF32 flags, seeding
without CUDA, deterministic mode's refusals); they run on every machine. The others are CUDA's own
(`needs = "cuda"` in the catalogue, `device_types("cuda")` here): they run on a CUDA device only and
are skipped with the reason elsewhere; python -m tools.gpu_acceptance runs them. Every test that
changes a process-wide setting (precision, deterministic mode, generators) restores it.
"""

import contextlib
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks import assert_close_to_reference

SMALL = st.floats(-4, 4, width=16)  # float16-representable; bfloat16 inputs round them again
# Cycles torch.cuda._sleep spins on the device: tens of milliseconds on current GPUs, ages beside
# the microseconds the host takes to queue the work that must wait for it. Private, but the only way
# to hold a stream busy for a known while; it is not what these tests check.
HOLD_CYCLES = 100_000_000


def wide(t: torch.Tensor) -> torch.Tensor:
    """The exact reference's input: a CPU float64 copy of `t`'s values."""
    return t.detach().cpu().to(torch.float64)


@contextlib.contextmanager
def deterministic(mode: bool, warn_only: bool = False):
    """torch.use_deterministic_algorithms(mode, warn_only=...) for the block, then as it was."""
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


# --- TF32 and the float32 matmul precision ---------------------------------------------------------


@pytest.mark.behaviour("cuda.tf32_flags_follow_matmul_precision")
@pytest.mark.device_types("cpu")  # process-wide flags, readable without a GPU: checked once
@given(settings=st.lists(st.sampled_from(["highest", "high", "medium"]), min_size=1, max_size=5))
def test_tf32_flags_follow_the_matmul_precision(device, settings):
    before = torch.get_float32_matmul_precision()
    assert before == "highest", f"the float32 matmul precision is not 'highest' by default: {before!r}"
    assert torch.backends.cuda.matmul.allow_tf32 is False, "torch.backends.cuda.matmul.allow_tf32 does not default to False"
    assert torch.backends.cudnn.allow_tf32 is True, "torch.backends.cudnn.allow_tf32 does not default to True"
    try:
        for precision in settings:
            torch.set_float32_matmul_precision(precision)
            now = torch.get_float32_matmul_precision()
            assert now == precision, f"get_float32_matmul_precision() after set({precision!r}) is {now!r}"
            tf32 = torch.backends.cuda.matmul.allow_tf32
            assert tf32 is (precision != "highest"), f"torch.backends.cuda.matmul.allow_tf32 after set({precision!r}): {tf32}"
            assert torch.backends.cudnn.allow_tf32 is True, (
                f"set_float32_matmul_precision({precision!r}) changed torch.backends.cudnn.allow_tf32"
            )
    finally:
        torch.set_float32_matmul_precision(before)


# --- seeding where CUDA is absent -----------------------------------------------------------------


@pytest.mark.behaviour("cuda.seeding_without_cuda_is_ignored")
@pytest.mark.device_types("cpu")
@given(seed=st.integers(0, 2**32 - 1))
def test_cuda_seeding_is_silently_ignored_without_cuda(device, seed):
    if torch.cuda.is_available():
        pytest.skip("not applicable: CUDA is available here, and the sentence is about machines without it")
    with torch.random.fork_rng(devices=[]):
        state = torch.get_rng_state()
        expected_next = torch.rand(4)  # what the CPU generator draws next, then back to `state`
        torch.set_rng_state(state)
        for name, call in (
            ("manual_seed", lambda: torch.cuda.manual_seed(seed)),
            ("manual_seed_all", lambda: torch.cuda.manual_seed_all(seed)),
            ("seed", torch.cuda.seed),
        ):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    returned = call()
                except Exception as exc:  # "safe to call": no exception of any kind
                    raise AssertionError(f"torch.cuda.{name} without CUDA raised or returned: {exc!r}") from exc
            assert returned is None, f"torch.cuda.{name} without CUDA raised or returned {returned!r}"
            assert not caught, f"torch.cuda.{name} without CUDA warned: {[str(w.message) for w in caught]}"
            assert torch.equal(torch.get_rng_state(), state), f"torch.cuda.{name} changed the CPU generator's state"
        assert torch.equal(torch.rand(4), expected_next), "CUDA seeding changed the CPU's next random numbers"


# --- deterministic algorithms ---------------------------------------------------------------------


def refused_ops(device, n, index, values):
    """(name, call, what put_ writes or None) for the ops the docstring lists as throwing on `device`."""
    base = torch.zeros(n, device=device)
    idx = torch.tensor(index, device=device)
    src = torch.tensor(values, device=device)
    unique = dict(zip(index, values))  # put_ without accumulate: the written value at an index named once
    ops = [
        ("put_(accumulate=False)", lambda: base.clone().put_(idx, src), unique),
        (
            "MaxUnpool1d",
            lambda: torch.nn.MaxUnpool1d(1)(src.view(1, 1, -1), torch.arange(len(values), device=device).view(1, 1, -1)),
            None,
        ),
    ]
    if torch.device(device).type == "cuda":
        ops += [
            ("put_(accumulate=True)", lambda: base.clone().put_(idx, src, accumulate=True), None),
            ("histc", lambda: torch.histc(src, bins=4, min=-4, max=4), None),
            ("bincount(weights)", lambda: torch.bincount(idx, weights=src), None),
        ]
    return ops


@pytest.mark.behaviour("cuda.deterministic_mode_refuses_nondeterministic_ops")
@pytest.mark.device_types("cpu", "cuda")
@given(n=st.integers(1, 6), data=st.data())
def test_deterministic_mode_refuses_or_warns_on_the_listed_ops(device, n, data):
    index = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=6), label="index")
    values = data.draw(st.lists(SMALL, min_size=len(index), max_size=len(index)), label="values")
    with deterministic(True):
        assert torch.are_deterministic_algorithms_enabled(), "are_deterministic_algorithms_enabled() after True is not True"
        assert not torch.is_deterministic_algorithms_warn_only_enabled(), (
            "is_deterministic_algorithms_warn_only_enabled() is True"
        )
        for name, call, _ in refused_ops(device, n, index, values):
            with pytest.raises(RuntimeError):
                call()
                raise AssertionError(f"{name} did not raise RuntimeError under use_deterministic_algorithms(True)")
        # index_copy "when called on a CPU or CUDA tensor" acts deterministically: it runs
        copied = torch.zeros(n, device=device).index_copy(
            0, torch.tensor(index, device=device), torch.tensor(values, device=device)
        )
        expected = torch.zeros(n, dtype=torch.float64)
        for i, v in zip(index, values):
            expected[i] = v
        if len(set(index)) == len(index):  # with repeats, which copy lands no doc fixes
            assert_close_to_reference(copied, expected, msg=lambda m: f"index_copy under deterministic mode\n{m}")
    with deterministic(True, warn_only=True):
        assert torch.is_deterministic_algorithms_warn_only_enabled(), (
            "is_deterministic_algorithms_warn_only_enabled() after warn_only=True"
        )
        for name, call, written in refused_ops(device, n, index, values):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                out = call()
            assert any(issubclass(w.category, UserWarning) for w in caught), f"{name} did not warn under warn_only=True"
            for i, v in (written or {}).items():
                if index.count(i) == 1:
                    assert out[i].item() == v, f"{name} under warn_only=True did not write {v} at {i}"
    with deterministic(False):
        assert not torch.are_deterministic_algorithms_enabled(), "are_deterministic_algorithms_enabled() after False is not False"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            refused_ops(device, n, index, values)[0][1]()  # put_, quietly
        assert not caught, f"put_ after use_deterministic_algorithms(False) warned: {[str(w.message) for w in caught]}"


# --- autocast: CUDA's op lists ----------------------------------------------------------------------

FLOAT16_OPS = ("mm", "Tensor.mm", "matmul @", "bmm", "addmm", "baddbmm", "addbmm", "addmv", "addr", "mv", "linear", "conv1d")
LOW = (torch.float32, torch.float16, torch.bfloat16)


def float16_case(op, shape, make):
    """(call, reference on float64 inputs) for one op of CUDA's float16 list; `make(*shape)` builds
    one input of the drawn dtype."""
    b, m, n, p = shape
    if op in ("mm", "Tensor.mm", "matmul @"):
        x, y = make(m, n), make(n, p)
        call = {"mm": lambda: torch.mm(x, y), "Tensor.mm": lambda: x.mm(y), "matmul @": lambda: x @ y}[op]
        return call, lambda w: w(x) @ w(y)
    if op == "bmm":
        x, y = make(b, m, n), make(b, n, p)
        return lambda: torch.bmm(x, y), lambda w: torch.bmm(w(x), w(y))
    if op == "addmm":
        c, x, y = make(m, p), make(m, n), make(n, p)
        return lambda: torch.addmm(c, x, y), lambda w: w(c) + w(x) @ w(y)
    if op == "baddbmm":
        c, x, y = make(b, m, p), make(b, m, n), make(b, n, p)
        return lambda: torch.baddbmm(c, x, y), lambda w: w(c) + torch.bmm(w(x), w(y))
    if op == "addbmm":
        c, x, y = make(m, p), make(b, m, n), make(b, n, p)
        return lambda: torch.addbmm(c, x, y), lambda w: w(c) + torch.bmm(w(x), w(y)).sum(0)
    if op == "addmv":
        c, x, v = make(m), make(m, n), make(n)
        return lambda: torch.addmv(c, x, v), lambda w: w(c) + w(x) @ w(v)
    if op == "addr":
        c, u, v = make(m, p), make(m), make(p)
        return lambda: torch.addr(c, u, v), lambda w: w(c) + torch.outer(w(u), w(v))
    if op == "mv":
        x, v = make(m, n), make(n)
        return lambda: torch.mv(x, v), lambda w: w(x) @ w(v)
    if op == "linear":
        x, weight, bias = make(m, n), make(p, n), make(p)
        return lambda: F.linear(x, weight, bias), lambda w: w(x) @ w(weight).T + w(bias)
    if op == "conv1d":
        x, weight = make(b, 2, n + 1), make(p, 2, 2)
        return lambda: F.conv1d(x, weight), lambda w: F.conv1d(w(x), w(weight))
    raise AssertionError(op)


@pytest.mark.behaviour("cuda.autocast_cuda_float16")
@pytest.mark.device_types("cuda")
@given(
    op=st.sampled_from(FLOAT16_OPS),
    dtype=st.sampled_from([None, torch.float16, torch.bfloat16]),  # None: left out, CUDA's default float16
    shape=st.tuples(*[st.integers(1, 4)] * 4),
    data=st.data(),
)
def test_autocast_runs_the_cuda_float16_list_in_the_autocast_dtype(device, op, dtype, shape, data):
    autocast_dtype = dtype or torch.float16

    def make_of(choose):
        def make(*size):
            values = data.draw(st.lists(SMALL, min_size=torch.Size(size).numel(), max_size=torch.Size(size).numel()))
            return torch.tensor(values, device=device).view(size).to(choose())

        return make

    # each input's dtype drawn on its own: autocast "also handles mixed input types"
    call, reference = float16_case(op, shape, make_of(lambda: data.draw(st.sampled_from(LOW), label="input dtype")))
    given_dtype = {} if dtype is None else {"dtype": dtype}
    with torch.autocast("cuda", **given_dtype):
        out = call()
    assert out.dtype == autocast_dtype, f"{op} under autocast('cuda', {given_dtype}) gave {out.dtype}: not the autocast dtype"
    # the op of the inputs cast to the autocast dtype: the float64 result of the rounded inputs, within
    # the rounding of a sum of products in that dtype (no doc fixes the order or the precision of the
    # accumulation, so each partial sum may round: addbmm adds one batch at a time): the dtype's eps of
    # the result plus (terms + 1) eps of the sum of the products' magnitudes
    expected = reference(lambda t: wide(t.to(autocast_dtype)))
    magnitude = reference(lambda t: wide(t.to(autocast_dtype)).abs())
    eps, terms = torch.finfo(autocast_dtype).eps, shape[0] * shape[2] + 4
    error = (wide(out) - expected).abs()
    bound = eps * expected.abs() + (terms + 1) * eps * magnitude + 1e-5
    assert tuple(out.shape) == tuple(expected.shape) and (error <= bound).all(), (
        f"{op}: not the op of the inputs cast to {autocast_dtype}: "
        f"{wide(out).flatten()[:6].tolist()} vs {expected.flatten()[:6].tolist()}"
    )
    call64, reference64 = float16_case(op, shape, make_of(lambda: torch.float64))
    with torch.autocast("cuda", **given_dtype):
        out64 = call64()
    assert out64.dtype == torch.float64, f"{op} of float64 inputs under autocast gave {out64.dtype}: float64 is not eligible"
    call32, _ = float16_case(op, shape, make_of(lambda: torch.float32))
    with torch.autocast("cuda", **given_dtype), torch.autocast("cuda", enabled=False):
        off = call32()
    assert off.dtype == call32().dtype == torch.float32, (
        f"{op} of float32 inputs outside autocast or in an enabled=False region: {off.dtype}"
    )


FLOAT32_OPS = ("exp", "expm1", "log1p", "sum", "prod", "cumsum", "softmax", "log_softmax", "mse_loss", "l1_loss", "pow")


def float32_case(op, x, y):
    """(call, float64 reference) for one op of CUDA's float32 list on x (and y)."""
    a, b = wide(x), wide(y)
    match op:
        case "exp" | "expm1":
            return lambda: getattr(torch, op)(x), lambda: getattr(torch, op)(a)
        case "log1p":  # its domain: x > -1
            return lambda: torch.log1p(x.abs()), lambda: torch.log1p(a.abs())
        case "sum" | "prod":
            return lambda: getattr(torch, op)(x), lambda: getattr(torch, op)(a)
        case "cumsum":
            return lambda: torch.cumsum(x, 0), lambda: torch.cumsum(a, 0)
        case "softmax" | "log_softmax":
            return lambda: getattr(F, op)(x, dim=0), lambda: getattr(F, op)(a, dim=0)
        case "mse_loss" | "l1_loss":
            return lambda: getattr(F, op)(x, y), lambda: getattr(F, op)(a, b)
        case "pow":  # __pow__
            return lambda: x**2, lambda: a**2
    raise AssertionError(op)


@pytest.mark.behaviour("cuda.autocast_cuda_float32")
@pytest.mark.device_types("cuda")
@given(
    op=st.sampled_from(FLOAT32_OPS),
    low=st.sampled_from([torch.float16, torch.bfloat16]),
    values=st.lists(st.tuples(SMALL, SMALL), min_size=1, max_size=8),
)
def test_autocast_runs_the_cuda_float32_list_in_float32(device, op, low, values):
    x = torch.tensor([v for v, _ in values], device=device).to(low)
    y = torch.tensor([w for _, w in values], device=device).to(low)
    call, reference = float32_case(op, x, y)
    with torch.autocast("cuda"):
        out = call()
        unlisted = torch.relu(x)
        explicit = torch.sum(x, dtype=torch.float16)  # an explicit dtype= is not eligible
    assert out.dtype == torch.float32, f"{op} of {low} inputs under autocast('cuda') gave {out.dtype}, not float32"
    loose = {"rtol": len(values) * torch.finfo(torch.float32).eps, "atol": 1e-5} if op == "prod" else {}
    assert_close_to_reference(out, reference(), msg=lambda m: f"{op}: not the op of the inputs in float32\n{m}", **loose)
    assert unlisted.dtype == low, f"relu (unlisted) of {low} under autocast gave {unlisted.dtype}"
    assert explicit.dtype == torch.float16, (
        f"sum(dtype=float16) under autocast gave {explicit.dtype}: an explicit dtype is not eligible"
    )
    # the widest-type list: float32 when one input is float32, float16 when all are float16
    h, w32 = x.to(torch.float16), y.to(torch.float32)
    v3h, v3f = h.new_tensor([1.0, 2.0, 3.0]), w32.new_tensor([3.0, -1.0, 0.5])
    with torch.autocast("cuda"):
        mixed = {
            "atan2": torch.atan2(h, w32),
            "addcmul": torch.addcmul(h, h, w32),
            "addcdiv": torch.addcdiv(h, h, w32.abs() + 1),
            "dot": torch.dot(h, w32),
            "cross": torch.cross(v3h, v3f, dim=0),
        }
        halves = {
            "atan2": torch.atan2(h, h),
            "addcmul": torch.addcmul(h, h, h),
            "addcdiv": torch.addcdiv(h, h, h.abs() + 1),
            "dot": torch.dot(h, h),
            "cross": torch.cross(v3h, v3h, dim=0),
        }
    for name in mixed:
        assert mixed[name].dtype == torch.float32, f"{name} with a float32 input under autocast gave {mixed[name].dtype}"
        assert halves[name].dtype == torch.float16, f"{name} of float16 inputs under autocast gave {halves[name].dtype}"


# --- deterministic CUDA ops -------------------------------------------------------------------------


@pytest.mark.behaviour("cuda.deterministic_cuda_ops_repeat")
@pytest.mark.device_types("cuda")
@given(n=st.integers(1, 4), data=st.data())
def test_listed_cuda_ops_repeat_bitwise_under_deterministic_mode(device, n, data):
    index = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=64), label="index")
    # magnitudes far apart, so that the order of the additions shows in the float32 sum
    magnitudes = st.builds(lambda m, e: m * 2.0**e, st.floats(-1, 1, width=32), st.integers(-20, 20))
    values = data.draw(st.lists(magnitudes, min_size=len(index), max_size=len(index)), label="values")
    idx, src = torch.tensor(index, device=device), torch.tensor(values, device=device)
    terms = wide(src)  # the float32 values the ops add, exactly
    sums = torch.zeros(n, dtype=torch.float64).index_add(0, torch.tensor(index), terms)
    ops = {
        "scatter_add_": lambda: torch.zeros(n, device=device).scatter_add_(0, idx, src),
        "index_add": lambda: torch.index_add(torch.zeros(n, device=device), 0, idx, src),
        "scatter_reduce(sum)": lambda: torch.zeros(n, device=device).scatter_reduce(0, idx, src, reduce="sum"),
        "index_copy": lambda: torch.zeros(n, device=device).index_copy(0, idx, src),
    }
    with deterministic(True):
        for name, call in ops.items():
            try:
                runs = [call() for _ in range(3)]
            except RuntimeError as exc:
                raise AssertionError(f"{name} raised under use_deterministic_algorithms(True): {exc}") from exc
            for again in runs[1:]:
                same = torch.equal(again, runs[0]) and torch.equal(torch.signbit(again), torch.signbit(runs[0]))
                assert same, f"{name} differs between runs under deterministic mode: {runs[0].tolist()} vs {again.tolist()}"
            if name == "index_copy":
                if len(set(index)) == len(index):  # with repeats, which copy lands no doc fixes
                    expected = torch.zeros(n, dtype=torch.float64)
                    expected[torch.tensor(index)] = terms
                    assert_close_to_reference(runs[0], expected, msg=lambda m: f"index_copy is not the reference\n{m}")
            else:
                # a float32 sum of float32 terms, any order: within one float32 eps per term of their magnitudes
                magnitude = torch.zeros(n, dtype=torch.float64).index_add(0, torch.tensor(index), terms.abs())
                error = (wide(runs[0]) - sums).abs()
                assert (error <= (len(index) + 1) * torch.finfo(torch.float32).eps * magnitude).all(), (
                    f"{name} is not the reference: {runs[0].tolist()} vs {sums.tolist()}"
                )


# --- streams, events, record_stream -----------------------------------------------------------------


@pytest.mark.behaviour("cuda.stream_ordering")
@pytest.mark.device_types("cuda")
@given(values=st.lists(SMALL, min_size=1, max_size=16))
def test_wait_stream_orders_a_side_stream_after_the_current_one(device, values):
    expected = torch.tensor(values)
    # NaN until written: a read before the write shows. The source is on the device already, so that
    # the write is a device copy queued behind the sleep (a host copy would wait for the sleep).
    x, source = torch.full((len(values),), float("nan"), device=device), expected.to(device)
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    torch.cuda._sleep(HOLD_CYCLES)  # the current stream is busy when the side stream's work is queued
    x.copy_(source)
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        doubled = x * 2
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    assert torch.cuda.current_stream().query() and side.query(), "a stream still has work after torch.cuda.synchronize()"
    got = doubled.cpu()
    assert torch.equal(got, expected * 2), (
        f"the side stream did not wait for the current stream's work, or was read after synchronize wrongly: {got.tolist()}"
    )


@pytest.mark.behaviour("cuda.events_order_and_time")
@pytest.mark.device_types("cuda")
@given(values=st.lists(SMALL, min_size=1, max_size=16))
def test_events_order_a_waiting_stream_and_measure_time(device, values):
    expected = torch.tensor(values)
    x, source = torch.full((len(values),), float("nan"), device=device), expected.to(device)
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    start, end, written = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True), torch.cuda.Event()
    start.record()
    torch.cuda._sleep(HOLD_CYCLES)
    x.copy_(source)
    written.record()
    end.record()
    side.wait_event(written)
    with torch.cuda.stream(side):
        plus_one = x + 1
    side.synchronize()
    assert written.query() and side.query(), "query() after Stream.synchronize: the event or the stream is not done"
    got = plus_one.cpu()
    assert torch.equal(got, expected + 1), (
        f"the side stream did not wait for the event, or was read after Stream.synchronize wrongly: {got.tolist()}"
    )
    torch.cuda.synchronize()
    elapsed = start.elapsed_time(end)
    assert isinstance(elapsed, float) and elapsed >= 0, f"elapsed_time between two timing events is {elapsed!r}"


@pytest.mark.behaviour("cuda.record_stream_keeps_memory")
@pytest.mark.device_types("cuda")
def test_record_stream_keeps_a_freed_block_from_reuse_while_the_stream_works(device):
    size = 2**20  # 1 MiB: a block of its own size class
    torch.cuda.synchronize()
    side = torch.cuda.Stream()
    x = torch.ones(size, dtype=torch.uint8, device=device)
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        torch.cuda._sleep(HOLD_CYCLES)
        total = x.sum()
    x.record_stream(side)
    freed = x.data_ptr()
    del x
    assert not side.query(), "the side stream's work finished before the tensor was deleted: nothing to observe"
    y = torch.empty(size, dtype=torch.uint8, device=device)
    reused = y.data_ptr() == freed
    torch.cuda.synchronize()
    assert not reused, "record_stream: the memory was reused for another tensor while the side stream's work was queued"
    assert total.item() == size


# --- pinned memory and non_blocking copies -----------------------------------------------------------


@pytest.mark.behaviour("cuda.pinned_and_non_blocking_copies")
@pytest.mark.device_types("cuda")
@given(values=st.lists(SMALL, min_size=1, max_size=64))
def test_pinned_memory_and_non_blocking_copies(device, values):
    t = torch.tensor(values)
    assert not t.is_pinned(), "an ordinary CPU tensor reports pinned memory"
    pinned = t.pin_memory()
    assert pinned.is_pinned() and pinned.data_ptr() != t.data_ptr() and torch.equal(pinned, t), (
        "pin_memory() did not give a pinned copy with the same values"
    )
    assert pinned.pin_memory().data_ptr() == pinned.data_ptr(), "pin_memory() copied a tensor already pinned"
    on_device = pinned.to(device, non_blocking=True)
    back = torch.zeros_like(t).pin_memory()
    back.copy_(on_device, non_blocking=True)
    torch.cuda.synchronize()
    assert torch.equal(on_device.cpu(), t) and torch.equal(back, t), (
        f"a non_blocking copy read after synchronize: {back.tolist()} vs {t.tolist()}"
    )


# --- CUDA generators -------------------------------------------------------------------------------


@pytest.mark.behaviour("cuda.cuda_generator_replays")
@pytest.mark.device_types("cuda")
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 16))
def test_cuda_generator_seeding_and_state_replay(device, seed, n):
    with torch.random.fork_rng(devices=[torch.cuda.current_device()]):
        cpu_state = torch.get_rng_state()
        torch.cuda.manual_seed(seed)
        first = torch.rand(n, device=device)
        assert torch.equal(torch.get_rng_state(), cpu_state), "seeding CUDA changed the CPU generator"
        for name, reseed in (
            ("torch.cuda.manual_seed", torch.cuda.manual_seed),
            ("torch.cuda.manual_seed_all", torch.cuda.manual_seed_all),
            ("torch.manual_seed", torch.manual_seed),
        ):
            reseed(seed)
            assert torch.equal(torch.rand(n, device=device), first), f"{name}({seed}) did not replay the CUDA numbers"
        state = torch.cuda.get_rng_state()
        assert state.dtype == torch.uint8 and state.device.type == "cpu", (
            f"get_rng_state() is not a uint8 CPU tensor: {state.dtype}, {state.device}"
        )
        following = torch.rand(n, device=device)
        torch.rand(3, device=device)  # move on
        torch.cuda.set_rng_state(state)
        assert torch.equal(torch.rand(n, device=device), following), (
            "set_rng_state did not replay the numbers drawn after the state was taken"
        )


# --- memory statistics and errors ------------------------------------------------------------------


@pytest.mark.behaviour("cuda.memory_statistics")
@pytest.mark.device_types("cuda")
@given(size=st.integers(1, 2**22), spike=st.integers(2**20, 2**24))
def test_memory_statistics_follow_allocations(device, size, spike):
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    t = torch.empty(size, dtype=torch.uint8, device=device)
    grown = torch.cuda.memory_allocated()
    assert grown - before >= size, f"memory_allocated() did not grow by the tensor's bytes: {before} -> {grown} for {size}"
    peak_tensor = torch.empty(spike, dtype=torch.uint8, device=device)
    peak = torch.cuda.memory_allocated()
    del peak_tensor
    assert torch.cuda.max_memory_allocated() >= peak, "max_memory_allocated() is below the peak of memory_allocated()"
    torch.cuda.reset_peak_memory_stats()
    after_reset = torch.cuda.max_memory_allocated()
    assert after_reset == torch.cuda.memory_allocated() < peak, (
        f"max_memory_allocated() after reset_peak_memory_stats is {after_reset}, not the current {torch.cuda.memory_allocated()}"
    )
    del t
    assert torch.cuda.memory_allocated() == before, "memory_allocated() did not return after del"
    free, total = torch.cuda.mem_get_info()
    expected_total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    assert 0 <= free <= total == expected_total, f"mem_get_info() = {(free, total)}, device total {expected_total}"


@pytest.mark.behaviour("cuda.out_of_memory_error")
@pytest.mark.device_types("cuda")
def test_out_of_memory_raises_the_documented_error_and_the_process_goes_on(device):
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
    try:
        torch.empty(2 * total, dtype=torch.uint8, device=device)
    except torch.OutOfMemoryError as exc:  # any other error fails the test as it is
        raised = exc
    else:
        raise AssertionError("asking for twice the device's memory did not raise torch.OutOfMemoryError")
    assert isinstance(raised, torch.cuda.OutOfMemoryError) and isinstance(raised, RuntimeError), (
        f"{type(raised)} is not a torch.cuda.OutOfMemoryError and a RuntimeError"
    )
    assert torch.cuda.memory_allocated() == before, "the failed request changed memory_allocated()"
    assert (torch.arange(4.0, device=device) * 2).tolist() == [0.0, 2.0, 4.0, 6.0], (
        "CUDA computes wrong after the out-of-memory error"
    )


DEVICE_SIDE_ASSERT = """
import sys
import torch
{inject}
x = torch.zeros(4, device="cuda")
try:
    x[torch.tensor([10], device="cuda")]  # past the end: checked inside the kernel
    torch.cuda.synchronize()
except BaseException as exc:
    print("RAISED", isinstance(exc, torch.AcceleratorError), isinstance(exc, RuntimeError), "device-side assert" in str(exc))
    print(type(exc).__name__)
    sys.exit(0)
print("RAISED nothing")
"""


@pytest.mark.behaviour("cuda.device_side_assert_error")
@pytest.mark.device_types("cuda")
def test_a_device_side_assert_raises_accelerator_error(device, request):
    # A device-side assert leaves the CUDA context unusable: the child process takes it. It runs
    # under the fault this run injects, if any, so that a broken torch breaks it there too.
    fault = request.config.getoption("inject_fault", None)
    inject = f"from conformance.faults import inject\ninject({fault!r})" if fault else ""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DEVICE_SIDE_ASSERT.format(inject=inject))],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=request.config.rootpath,
    )
    lines = done.stdout.splitlines()
    assert lines and lines[0].startswith("RAISED"), f"the child process failed: {done.stdout[-1000:]}{done.stderr[-2000:]}"
    assert lines[0] != "RAISED nothing", "an index past the end of a CUDA tensor raised nothing by synchronize()"
    _, accelerator, runtime, says = lines[0].split()
    assert accelerator == "True" and runtime == "True", f"the error ({lines[1]}) is not torch.AcceleratorError, a RuntimeError"
    assert says == "True", "the error does not say device-side assert"
