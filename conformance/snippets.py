"""Standalone repros: the torch calls of a failing example, written out as a torch-only script.

Note [Standalone repros]
A failing item's Hypothesis example names our strategies and helpers; a PyTorch bug report needs
a script that runs with nothing but torch (and NumPy where the behaviour concerns NumPy). So the
final, failing run of an example (and only that run: passing examples pay nothing) executes under
a `Trace`, a TorchFunctionMode that records each outermost torch call the test makes: the
function's public name, its arguments and its result. A tensor first seen as an argument without
having been made by a recorded call (what the strategies built, a module's parameters) is
snapshotted there and then: its whole storage as a literal, rebuilt with `as_strided`, so strides,
storage offset and shared storage survive.

The failing check decides what the script asserts:
- a failed assertion helper (torch.testing.assert_close, np.testing.assert_*, the helpers of
  conformance/checks.py) is written out from the arguments it was called with;
- any other failure is written out from the test's own failing statement, its free names bound to
  the values they held (tensors by the recorded calls that made them, the rest as literals), and
  `pytest.raises` spelled with try/except.
Only the calls that the final check depends on are kept: a backward walk from the tensors it
reads, keeping each call that made one of them, wrote into their storage, ran backward, or drew
from the random generator after a seed the test set. Calls made in no_grad or inference mode are
written inside the same context.

A fault (conformance/faults) replaces a public torch function with a Python wrapper, which no
TorchFunctionMode sees; the fault's Patcher therefore reports its wrappers to the trace as the
public function they replace (`public_call`), so the script calls what the test called.

Where an example cannot be written out faithfully (a generator object as an argument, a non-leaf
tensor the trace never saw made), `render` says why instead of guessing.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import copy
import functools
import inspect
import math
import re
import sys
import textwrap
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.overrides import TorchFunctionMode, resolve_name

_HERE = Path(__file__).resolve().parent
SMALL = 64  # storage elements always written out as a literal
MAX_LITERAL = 4096  # the most written out as a literal where no seeded constructor call makes them

_ACTIVE: list[Trace] = []
# torch's global-state setters, which no TorchFunctionMode sees
_STATE_SETTERS = ("set_default_dtype", "set_default_device", "manual_seed", "use_deterministic_algorithms")


class Unwritable(Exception):
    """The failing example holds something a torch-only script cannot rebuild."""


@dataclass
class Record:
    name: str  # public dotted name: torch.add, torch.Tensor.view, torch.Tensor.grad.__get__
    args: tuple
    kwargs: dict
    result: object = None
    grad: bool = True
    inference: bool = False
    rng: bool = False  # the call drew from the CPU generator
    code: Callable | str | None = None  # how a helper call or pseudo-call is written ("{0}": the first argument)
    seed: int | None = None  # a seed point: torch.manual_seed(seed)
    where: tuple | None = None  # (code, line) of the test statement that made the call
    state: bool = False  # a setter of torch's global state: kept in every script
    checking: bool = False  # made inside an assertion helper (assert_close's own work): never written


@dataclass
class Snapshot:
    """An input as it was when the trace first saw it."""

    tensor: torch.Tensor
    storage: int  # index into Trace.storages
    parameter: bool


@dataclass
class Trace(TorchFunctionMode):
    records: list[Record] = field(default_factory=list)
    snapshots: dict[int, Snapshot] = field(default_factory=dict)  # id(tensor) -> its snapshot
    storages: list[torch.Tensor] = field(default_factory=list)  # CPU copies of input storages
    storage_keys: dict[tuple, int] = field(default_factory=dict)
    keep: list = field(default_factory=list)  # every object recorded: ids stay unique
    made: set[int] = field(default_factory=set)  # ids of the tensors recorded calls returned
    arrays: dict[int, tuple] = field(default_factory=dict)  # id -> (array, its values when last seen)
    generators: dict[int, tuple] = field(default_factory=dict)  # id -> (generator, its seed if unused)
    depth: int = 0
    paused: int = 0
    problem: str | None = None

    def __post_init__(self):
        super().__init__()

    def __enter__(self):
        _ACTIVE.append(self)
        self._setters = {name: getattr(torch, name) for name in _STATE_SETTERS if hasattr(torch, name)}
        for name, setter in self._setters.items():
            setattr(torch, name, self._recording(name, setter))
        return super().__enter__()

    def __exit__(self, *exc):
        _ACTIVE.remove(self)
        for name, setter in self._setters.items():
            setattr(torch, name, setter)
        return super().__exit__(*exc)

    def _recording(self, name: str, setter):
        """torch's global state setters are not torch functions: recorded here, kept in every script."""

        def record(*args, **kwargs):
            if not self.depth and not self.paused:
                if name == "manual_seed" and not kwargs and len(args) == 1 and isinstance(args[0], int):
                    self.records.append(Record("torch.manual_seed", args, {}, seed=args[0], where=_test_statement()))
                else:
                    self.records.append(Record(f"torch.{name}", args, kwargs, where=_test_statement(), state=True))
            return setter(*args, **kwargs)

        return record

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        # torch's Python functions dispatch to a mode by their module-global name, which a fault
        # may have replaced: the replacement already ran, so the call here is the original's
        func = getattr(func, "__fault_original__", func)
        name = resolve_name(func)
        if self.depth or self.paused or name is None or _from_strategies():
            return func(*args, **kwargs)
        return self.call(name, func, args, kwargs)

    def call(self, name: str, func, args, kwargs, code: str | None = None):
        self.sync_arrays()
        self._see(args, kwargs)
        with torch._C.DisableTorchFunction():
            state = torch.random.get_rng_state()
        record = Record(
            name, args, dict(kwargs), grad=torch.is_grad_enabled(), inference=torch.is_inference_mode_enabled(), code=code
        )
        record.where = _test_statement()
        record.checking = _inside_a_check()
        self.depth += 1
        try:
            record.result = func(*args, **kwargs)
        finally:
            self.depth -= 1
        # a call that raised made nothing (a script that replayed it would stop there)
        with torch._C.DisableTorchFunction():
            record.rng = not torch.equal(state, torch.random.get_rng_state())
        self.records.append(record)
        self.keep.append(record)
        self.made.update(id(t) for t in _tensors(record.result, []))
        if isinstance(record.result, np.ndarray):
            self.arrays[id(record.result)] = (record.result, record.result.copy(), record.result.flags.writeable)
        return record.result

    def sync_arrays(self) -> None:
        """NumPy writes are not torch calls: an array the trace knows that changed since it was
        last seen is written out as an assignment of its new values, where the change was noticed."""
        for array, seen, writeable in list(self.arrays.values()):
            if array.shape != seen.shape or not np.array_equal(array, seen, equal_nan=array.dtype.kind in "fc"):
                now = array.copy()
                self.records.append(Record("<array write>", (array, now), {}, code=lambda r, a, v: f"{a}[...] = {v}"))
                self.arrays[id(array)] = (array, now, writeable)
                self.keep.append(now)
            if array.flags.writeable != writeable:
                flag = bool(array.flags.writeable)
                self.records.append(
                    Record("<array write>", (array,), {}, code=lambda r, a, flag=flag: f"{a}.setflags(write={flag})")
                )
                self.arrays[id(array)] = (array, self.arrays[id(array)][1], flag)

    @contextlib.contextmanager
    def pause(self):
        self.paused += 1
        try:
            yield
        finally:
            self.paused -= 1

    def _see(self, *values) -> None:
        for value in values:
            if isinstance(value, torch.Tensor):
                if id(value) not in self.snapshots and not self._made(value):
                    self._snapshot(value)
            elif isinstance(value, torch.Generator) and id(value) not in self.generators:
                self.generators[id(value)] = (value, _fresh_seed(value))
                self.keep.append(value)
            elif isinstance(value, np.ndarray) and id(value) not in self.arrays:
                # an array the test made: its values now, as a literal
                first = value.copy()
                try:
                    text = _array_literal(value, _Writer(self, {}))
                except Unwritable as why:
                    self.problem = self.problem or str(why)
                    text = ""
                self.records.append(Record("<array>", (), {}, result=value, code=lambda r, text=text: text))
                self.arrays[id(value)] = (value, first, value.flags.writeable)
                self.keep.extend((value, first))
            elif isinstance(value, (list, tuple)):
                self._see(*value)
            elif isinstance(value, dict):
                self._see(*value.values())

    def _made(self, t: torch.Tensor) -> bool:
        return id(t) in self.made

    def _snapshot(self, t: torch.Tensor) -> None:
        with self.pause(), torch._C.DisableTorchFunction():
            if t.layout != torch.strided or t.is_quantized or t.is_nested:
                self.problem = self.problem or f"an input of layout {t.layout} (only strided tensors are written out)"
                return
            storage = t.untyped_storage()
            key = (t.device, storage.data_ptr(), storage.nbytes(), t.dtype) if storage.nbytes() else (id(t),)
            if key not in self.storage_keys:
                count = storage.nbytes() // t.element_size()
                if t.device.type == "meta":
                    whole = torch.empty(count, dtype=t.dtype, device="meta")
                else:
                    whole = torch.empty(0, dtype=t.dtype, device=t.device).set_(storage, 0, (count,), (1,))
                    whole = whole.detach().cpu().clone()
                self.storage_keys[key] = len(self.storages)
                self.storages.append(whole)
            self.snapshots[id(t)] = Snapshot(t, self.storage_keys[key], isinstance(t, torch.nn.Parameter))
            self.keep.append(t)


_TORCH_DIR = Path(torch.__file__).resolve().parent
_STRATEGIES_DIR = _HERE.parent / "strategies"


def _from_strategies() -> bool:
    """Whether the nearest caller outside torch is strategies/: building what Hypothesis drew
    (its values appear in scripts as literals, not as the calls that made them)."""
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if not path.startswith(str(_TORCH_DIR)):
            return path.startswith(str(_STRATEGIES_DIR))
        frame = frame.f_back
    return False


def _fresh_seed(generator: torch.Generator) -> int | None:
    """The seed that gives `generator` its present state, if nothing has drawn from it since."""
    with torch._C.DisableTorchFunction():
        seed = generator.initial_seed()
        fresh = torch.Generator(generator.device).manual_seed(seed)
        return seed if torch.equal(fresh.get_state(), generator.get_state()) else None


def _inside_a_check() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename.replace("\\", "/")
        if path.endswith(_TORCH_CLOSE[0]) or "numpy/testing" in path:
            return True
        frame = frame.f_back
    return False


def _test_statement() -> tuple | None:
    """(code, line, callback) of the innermost test-module frame making the current call;
    callback: torch itself called that code (a custom Function's forward, a hook, a dataset)."""
    frame = sys._getframe(2)
    while frame is not None:
        if _is_test_frame(frame):
            found, caller = (frame.f_code, frame.f_lineno), frame.f_back
            while caller is not None and not _is_test_frame(caller):
                if caller.f_code.co_filename.startswith(str(_TORCH_DIR)):
                    return (*found, True)
                caller = caller.f_back
            return (*found, False)
        frame = frame.f_back
    return None


def active() -> Trace | None:
    return _ACTIVE[-1] if _ACTIVE else None


def public_call(name: str, function, original=None):
    """`function` (a fault's replacement of the public torch function `name`, `original`) as the
    trace sees it: one call of `name`, the replacement's own torch calls hidden inside it."""
    if not callable(function) or isinstance(function, type):
        return function

    def reported(*args, **kwargs):
        trace = active()
        if trace is None or trace.depth or trace.paused:
            return function(*args, **kwargs)
        return trace.call(name, function, args, kwargs)

    for attribute in ("__name__", "__qualname__", "__doc__", "__module__", "__wrapped__"):
        if hasattr(function, attribute):
            setattr(reported, attribute, getattr(function, attribute))
    if original is not None:
        reported.__fault_original__ = original
    return reported


def helper(code):
    """Decorator: calls of a suite helper appear in scripts as `code`: a format string ("{0}" the
    first argument) or a function of the record and the written arguments."""

    def decorate(function):
        def reported(*args, **kwargs):
            trace = active()
            if trace is None or trace.depth or trace.paused:
                return function(*args, **kwargs)
            return trace.call(function.__qualname__, function, args, kwargs, code=code)

        reported.__name__, reported.__qualname__, reported.__doc__ = function.__name__, function.__qualname__, function.__doc__
        reported.__wrapped__ = function
        return reported

    return decorate


def seed_point(seed: int) -> None:
    """The test seeded torch's generator: a script that draws random numbers seeds it the same."""
    trace = active()
    if trace is not None and not trace.depth:
        trace.records.append(Record("torch.manual_seed", (seed,), {}, seed=seed))


# -- rendering ---------------------------------------------------------------------------------
_BINARY = {
    "add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "mod": "%", "pow": "**",
    "matmul": "@", "and": "&", "or": "|", "xor": "^", "lshift": "<<", "rshift": ">>",
    "eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=",
}  # fmt: skip
_UNARY = {"neg": "-", "pos": "+", "invert": "~"}
_ALWAYS_KEPT = {"torch.Tensor.backward", "torch.autograd.backward", "torch.Tensor.retain_grad", "torch.Tensor.register_hook"}


def _mutates(record: Record) -> bool:
    last = record.name.rsplit(".", 1)[-1]
    if record.args and isinstance(record.args[0], torch.optim.Optimizer):
        return last in ("step", "zero_grad")
    return (
        (last.endswith("_") and not last.endswith("__"))
        or last in ("__setitem__", "__set__")
        or (last.startswith("__i") and last[3:-2] in _BINARY)
        or "out" in record.kwargs
    )


class _Writer:
    def __init__(self, trace: Trace, frame_names: dict[int, str]):
        self.trace = trace
        self.names: dict[int, str] = {}  # id(object) -> variable
        self.taken: set[str] = {"torch", "np", "math"}
        self.frame_names = frame_names
        self.uses_numpy = False
        self.pending: list[str] = []  # statements a value needs before the line that uses it
        self.assigned: set[str] = set()  # variables a written call assigns
        self.all_names: dict[int, list[str]] = {}  # id(object) -> every test local bound to it
        self.specs: list = []  # the TensorSpecs the test frames hold

    def fresh(self, preferred: str | None, stem: str) -> str:
        if preferred and preferred.isidentifier() and preferred not in self.taken and not preferred.startswith("_"):
            self.taken.add(preferred)
            return preferred
        n = 1
        while f"{stem}{n}" in self.taken:
            n += 1
        self.taken.add(f"{stem}{n}")
        return f"{stem}{n}"

    def value(self, v) -> str:
        if id(v) in self.names:
            return self.names[id(v)]
        if isinstance(v, torch.Tensor):
            raise Unwritable(f"a tensor the trace did not see made ({v.dtype}{tuple(v.shape)})")
        if v is None or isinstance(v, (bool, str)):
            return repr(v)
        if isinstance(v, int):
            return repr(int(v))
        if isinstance(v, float):
            return _float(v)
        if isinstance(v, complex):
            return f"complex({_float(v.real)}, {_float(v.imag)})"
        if isinstance(v, (torch.dtype, torch.memory_format, torch.layout)):
            return repr(v)
        if isinstance(v, torch.device):
            return f"torch.device({str(v)!r})"
        if isinstance(v, torch.Size):
            return f"torch.Size({[int(s) for s in v]!r})"
        if v is Ellipsis:
            return "..."
        if isinstance(v, slice):
            return f"slice({self.value(v.start)}, {self.value(v.stop)}, {self.value(v.step)})"
        if isinstance(v, tuple):
            inner = ", ".join(self.value(x) for x in v)
            return f"({inner},)" if len(v) == 1 else f"({inner})"
        if isinstance(v, list):
            return "[" + ", ".join(self.value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{self.value(k)}: {self.value(x)}" for k, x in v.items()) + "}"
        if isinstance(v, np.ndarray):
            self.uses_numpy = True
            if v.dtype.kind not in "biufc":
                raise Unwritable(f"a NumPy array of dtype {v.dtype}")
            return _array_literal(v, self)
        if isinstance(v, np.generic):
            self.uses_numpy = True
            return f"np.{v.dtype.name}({self.value(v.item())})"
        if isinstance(v, range):
            return repr(v)
        if isinstance(v, torch.nn.Module):
            return self.module(v)
        if isinstance(v, torch.optim.Optimizer):
            return self.optimizer(v)
        if isinstance(v, torch.Generator):
            _, seed = self.trace.generators.get(id(v), (None, None))
            if seed is None:
                raise Unwritable("a generator that had been drawn from before the trace saw it")
            name = self.fresh(self.frame_names.get(id(v)), "generator")
            where = "" if v.device.type == "cpu" else f"{str(v.device)!r}"
            self.pending.append(f"{name} = torch.Generator({where}).manual_seed({seed})")
            self.names[id(v)] = name
            return name
        raise Unwritable(f"an argument of type {type(v).__name__}")

    def module(self, m: torch.nn.Module) -> str:
        """A leaf module of torch.nn rebuilt from its constructor arguments (its extra_repr, where
        that reads as them), its mode, and its parameters and buffers as literals."""
        kind = type(m)
        if kind.__module__.split(".")[:2] != ["torch", "nn"] or getattr(torch.nn, kind.__name__, None) is not kind:
            raise Unwritable(f"a module of type {kind.__name__} (not one of torch.nn's)")
        if any(True for _ in m.children()):
            raise Unwritable(f"a {kind.__name__} with submodules")
        call = f"torch.nn.{kind.__name__}({m.extra_repr()})"
        try:
            with torch._C.DisableTorchFunction():
                rebuilt = eval(call, {"torch": torch})
        except Exception:
            raise Unwritable(f"a {kind.__name__} whose arguments its repr does not give") from None
        state = m.state_dict()
        if {k: (v.shape, v.dtype) for k, v in rebuilt.state_dict().items()} != {k: (v.shape, v.dtype) for k, v in state.items()}:
            raise Unwritable(f"a {kind.__name__} that its repr does not rebuild")
        name = self.fresh(self.frame_names.get(id(m)), "module")
        lines = [f"{name} = {call}" + ("" if m.training else ".eval()")]
        floating = next((t.dtype for t in state.values() if t.is_floating_point()), None)
        if floating is not None and floating != torch.get_default_dtype():
            lines.append(f"{name}.to({floating})")  # before its values go in: load_state_dict keeps the module's dtype
        if state:
            entries = ", ".join(
                f"{k!r}: {_storage_literal(v.detach().reshape(-1).cpu(), torch.device('cpu'), self)}.view({tuple(v.shape)!r})"
                for k, v in state.items()
            )
            lines.append(f"{name}.load_state_dict({{{entries}}})")
        device = next((t.device for t in state.values()), torch.device("cpu"))
        if device.type != "cpu":
            lines.append(f"{name}.to({str(device)!r})")
        self.pending.extend(lines)
        self.names[id(m)] = name
        return name

    def optimizer(self, o: torch.optim.Optimizer) -> str:
        """One of torch.optim's optimizers, fresh (no state yet), rebuilt from its parameter groups."""
        kind = type(o)
        if getattr(torch.optim, kind.__name__, None) is not kind:
            raise Unwritable(f"an optimizer of type {kind.__name__} (not one of torch.optim's)")
        if any(o.state.values()):
            raise Unwritable(f"a {kind.__name__} that had already stepped when the trace saw it")
        groups = []
        for group in o.param_groups:
            options = {k: v for k, v in group.items() if k != "params" and v != o.defaults.get(k, object())}
            entries = [f"'params': {self.value(list(group['params']))}"] + [f"{k!r}: {self.value(v)}" for k, v in options.items()]
            groups.append("{" + ", ".join(entries) + "}")
        defaults = ", ".join(f"{k}={self.value(v)}" for k, v in o.defaults.items() if k not in ("params",) and v is not None)
        name = self.fresh(self.frame_names.get(id(o)), "optimizer")
        self.pending.append(f"{name} = torch.optim.{kind.__name__}([{', '.join(groups)}], {defaults})")
        self.names[id(o)] = name
        return name

    def call(self, record: Record) -> str:
        if record.seed is not None:
            return f"torch.manual_seed({record.seed})"
        args = [self.value(a) for a in record.args]
        kwargs = [f"{k}={self.value(v)}" for k, v in record.kwargs.items()]
        if record.code is not None:
            text = record.code(record, *args) if callable(record.code) else record.code.format(*args, *kwargs)
            self.uses_numpy |= "np." in text
            return text
        owner, _, last = record.name.rpartition(".")
        if last in ("__get__", "__set__") and owner.startswith("torch.Tensor."):
            attribute = owner.removeprefix("torch.Tensor.")
            return f"{args[0]}.{attribute}" if last == "__get__" else f"{args[0]}.{attribute} = {args[1]}"
        on_tensor = owner == "torch.Tensor" and record.args and isinstance(record.args[0], torch.Tensor) and not kwargs
        if on_tensor and last == "__getitem__":
            return f"{args[0]}[{args[1]}]"
        if on_tensor and last == "__setitem__":
            return f"{args[0]}[{args[1]}] = {args[2]}"
        if on_tensor and last.startswith("__") and last[2:-2] in _BINARY and len(args) == 2:
            return f"{args[0]} {_BINARY[last[2:-2]]} {args[1]}"
        if on_tensor and last.startswith("__r") and last[3:-2] in _BINARY and len(args) == 2:
            return f"{args[1]} {_BINARY[last[3:-2]]} {args[0]}"
        if on_tensor and last.startswith("__i") and last[3:-2] in _BINARY and len(args) == 2:
            return f"{args[0]} {_BINARY[last[3:-2]]}= {args[1]}"
        if on_tensor and last.startswith("__") and last[2:-2] in _UNARY and len(args) == 1:
            return f"{_UNARY[last[2:-2]]}{args[0]}"
        if owner == "torch.Tensor" and record.args and isinstance(record.args[0], torch.Tensor) and not last.startswith("__"):
            return f"{args[0]}.{last}({', '.join(args[1:] + kwargs)})"
        if record.args and isinstance(record.args[0], (torch.optim.Optimizer, torch.nn.Module)) and not last.startswith("__"):
            return f"{args[0]}.{last}({', '.join(args[1:] + kwargs)})"
        _resolve(record.name)
        return f"{record.name}({', '.join(args + kwargs)})"


def _array_literal(a: np.ndarray, writer: _Writer) -> str:
    """An array with its values, and where it is not a plain C-contiguous writeable array, its
    strides (negative ones included), offset into its base and writeability."""
    plain = f"np.array({writer.value(a.tolist())}, dtype=np.{a.dtype.name}).reshape({tuple(a.shape)!r})"
    if a.flags.c_contiguous and a.flags.writeable:
        return plain
    root = a
    while isinstance(root.base, np.ndarray):
        root = root.base
    if root is a or not root.flags.c_contiguous:
        whole = np.ascontiguousarray(a) if root is a else None
        if whole is None or not a.flags.c_contiguous:
            return plain + ("" if a.flags.writeable else "  # (read-only in the test)")
        root = whole
    flat = root.reshape(-1)
    offset = (a.__array_interface__["data"][0] - flat.__array_interface__["data"][0]) // a.itemsize
    base = f"np.array({writer.value(flat.tolist())}, dtype=np.{a.dtype.name})"
    return (
        f"np.lib.stride_tricks.as_strided({base}[{offset}:], shape={tuple(a.shape)!r}, "
        f"strides={tuple(a.strides)!r}, writeable={bool(a.flags.writeable)})"
    )


def _float(v: float) -> str:
    if math.isnan(v):
        return "math.nan"
    if math.isinf(v):
        return "math.inf" if v > 0 else "-math.inf"
    return repr(v)


def _resolve(dotted: str):
    parts = dotted.split(".")
    if parts[0] != "torch":
        raise Unwritable(f"{dotted} is not a public torch name")
    obj = torch
    for part in parts[1:]:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise Unwritable(f"{dotted} is not reachable from `import torch`") from None
    return obj


# -- the failing check -------------------------------------------------------------------------
_TORCH_CLOSE = ("torch/testing/_comparison.py", "assert_close")
_NUMPY_CHECKS = ("assert_array_equal", "assert_allclose", "assert_equal", "assert_array_almost_equal", "assert_almost_equal")


def _frames(tb):
    while tb is not None:
        yield tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next


def _is_test_frame(frame) -> bool:
    path = Path(frame.f_code.co_filename)
    return path.parent == _HERE and path.name.startswith("test_")


def _check_of(frame) -> tuple[list, Callable[[_Writer], str]] | None:
    """The failing assertion helper's call, from the arguments it holds: the values it checked,
    and how a writer spells the call; None if `frame` is no such helper."""
    code, f = frame.f_code, frame.f_locals
    path = code.co_filename.replace("\\", "/")

    def spelled(name, first, second, options):
        def write(writer):
            writer.uses_numpy |= name.startswith("np.")
            parts = [writer.value(f[first]), writer.value(f[second])] + [f"{k}={writer.value(v)}" for k, v in options.items()]
            return f"{name}({', '.join(parts)})"

        return [f[first], f[second]], write

    if path.endswith(_TORCH_CLOSE[0]) and code.co_name == _TORCH_CLOSE[1]:
        defaults = inspect.signature(torch.testing.assert_close).parameters
        keys = ("rtol", "atol", "equal_nan", "check_device", "check_dtype", "check_layout", "check_stride")
        return spelled(
            "torch.testing.assert_close", "actual", "expected", {k: f[k] for k in keys if k in f and f[k] != defaults[k].default}
        )
    if "numpy/testing" in path and code.co_name in _NUMPY_CHECKS:
        first, second = code.co_varnames[:2]
        keys = ("rtol", "atol", "equal_nan", "strict", "decimal")
        return spelled(f"np.testing.{code.co_name}", first, second, {k: f[k] for k in keys if k in f and k in code.co_varnames})
    if Path(path).resolve() == _HERE / "checks.py":
        if code.co_name == "assert_equal":
            a, e = f["actual"], f["expected"]
            return [
                a,
                e,
            ], lambda w: f"torch.testing.assert_close({w.value(a)}.cpu(), {w.value(e)}.cpu(), rtol=0, atol=0)  # exactly equal"
        if code.co_name in ("assert_same_storage", "assert_own_storage"):
            a, b = (f["view"], f["base"]) if code.co_name == "assert_same_storage" else (f["copy"], f["source"])
            op = "==" if code.co_name == "assert_same_storage" else "!="
            return [
                a,
                b,
            ], lambda w: f"assert {w.value(a)}.untyped_storage().data_ptr() {op} {w.value(b)}.untyped_storage().data_ptr()"
    return None


class _Statement:
    """The test's failing statement, its free names bound to what they held."""

    def __init__(self, frame, line: int, exc: BaseException):
        parsed = _parsed(frame.f_code)
        if parsed is None:
            raise Unwritable("the failing code's source is not a whole function")
        tree, first = copy.deepcopy(parsed[0]), parsed[1]  # the parse is cached: edit a copy
        target = line - first + 1
        best = None
        for node in ast.walk(tree):  # the innermost statement that holds the line
            if not isinstance(node, ast.stmt) or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            holds = node.lineno <= target <= (node.end_lineno or node.lineno)
            inside = best is None or (node.lineno >= best.lineno and (node.end_lineno or 0) <= (best.end_lineno or 0))
            if holds and inside:
                best = node
        if best is None:
            raise Unwritable("the failing line is not a statement of the test")
        self.span = (best.lineno + first - 1, (best.end_lineno or best.lineno) + first - 1)
        self.node = _RaisesToTry().visit(best) if _is_raises(best) else best
        if not isinstance(self.node, (ast.Assert, ast.Try, ast.Expr, ast.Assign)):
            raise Unwritable(f"the failing statement is a {type(best).__name__}")
        # the conditions it ran under, so that a script for a CUDA check stays silent without CUDA
        for branch in reversed(_enclosing_ifs(tree, best)):
            test = branch[0].test if branch[1] else ast.UnaryOp(ast.Not(), branch[0].test)
            self.node = ast.If(test=test, body=[self.node], orelse=[])
        self.frame = frame

    def free_names(self) -> list[str]:
        bound, loaded = set(), []
        for node in ast.walk(self.node):
            if isinstance(node, ast.Name):
                if isinstance(node.ctx, ast.Store):
                    bound.add(node.id)
                elif node.id not in loaded:
                    loaded.append(node.id)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                bound.add(node.name)
        return [n for n in loaded if n not in bound]

    def text(self) -> str:
        return ast.unparse(ast.fix_missing_locations(self.node))


def _made_by(name: str, value, frame, records: list[Record], writer) -> str | None:
    """The traced call whose result the test assigned to local `name` (a number or flag torch
    returned, such as torch.cuda.is_available()), written as that call; None if there is none."""
    if isinstance(value, torch.Tensor) or not isinstance(value, (bool, int, float, torch.dtype, torch.device, torch.Size)):
        return None
    lines = _assignments_of(frame.f_code).get(name, ())
    for record in reversed(records):
        here = bool(record.where) and record.where[0] is frame.f_code and record.where[1] in lines
        if here and type(record.result) is type(value) and record.result == value and record.code is None and record.seed is None:
            try:
                return writer.call(record)
            except Unwritable:
                return None
    return None


@functools.cache
def _parsed(code):
    """(syntax tree, first line) of the function whose code this is; None for code whose source
    is not a whole statement (a lambda inside a larger expression) or not available."""
    try:
        lines, first = inspect.getsourcelines(code)
        return ast.parse(textwrap.dedent("".join(lines))), first
    except (OSError, SyntaxError):
        return None


@functools.cache
def _finally_lines(code) -> frozenset[int]:
    parsed = _parsed(code)
    if parsed is None:
        return frozenset()
    tree, first = parsed
    found = set()
    for node in ast.walk(tree):
        for statement in getattr(node, "finalbody", []) if isinstance(node, ast.Try) else []:
            found.update(range(statement.lineno + first - 1, (statement.end_lineno or statement.lineno) + first))
    return frozenset(found)


@functools.cache
def _assignments_of(code) -> dict[str, set[int]]:
    """Local name -> the lines of the statements that assign it, in `code`'s source."""
    parsed = _parsed(code)
    if parsed is None:
        return {}
    tree, first = parsed
    found: dict[str, set[int]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for name in (n.id for n in ast.walk(target) if isinstance(n, ast.Name)):
                    found.setdefault(name, set()).update(range(node.lineno + first - 1, (node.end_lineno or node.lineno) + first))
    return found


def _enclosing_ifs(tree, target) -> list[tuple[ast.If, bool]]:
    """The `if` statements around `target`, outermost first, each with whether `target` is in its body."""
    path = []

    def visit(node) -> bool:
        if node is target:
            return True
        for field_name in ("body", "orelse", "handlers", "finalbody"):
            for child in getattr(node, field_name, []) or []:
                if visit(child):
                    if isinstance(node, ast.If):
                        path.append((node, field_name == "body"))
                    return True
        return False

    visit(tree)
    return list(reversed(path))


class _SpecFacts(ast.NodeTransformer):
    """`x.shape`, `x.ndim` and `x.numel` of a drawn TensorSpec `x` are plain values: written as such."""

    def __init__(self, names: dict):
        self.names = names

    def visit_Attribute(self, node):
        from strategies.tensors import TensorSpec

        spec = self.names.get(node.value.id) if isinstance(node.value, ast.Name) else None
        if isinstance(spec, TensorSpec) and node.attr in ("shape", "ndim", "numel"):
            return ast.copy_location(ast.Constant(getattr(self.names[node.value.id], node.attr)), node)
        return self.generic_visit(node)


def _is_raises(node) -> bool:
    if not isinstance(node, ast.With) or len(node.items) != 1:
        return False
    call = node.items[0].context_expr
    return isinstance(call, ast.Call) and ast.unparse(call.func) in ("pytest.raises", "raises")


class _RaisesToTry(ast.NodeTransformer):
    """`with pytest.raises(E, match=m): body` as try/except/else, which needs no pytest."""

    def visit_With(self, node):
        call = node.items[0].context_expr
        error = call.args[0]
        match = next((k.value for k in call.keywords if k.arg == "match"), None)
        handler_body = [ast.Pass()]
        if match is not None:
            handler_body = [
                ast.Assert(
                    test=ast.parse("re.search(M, str(error))", mode="eval").body,
                    msg=ast.Constant("the error message does not match"),
                )
            ]
            handler_body[0].test.args[0] = match
        expected = ast.unparse(error)
        return ast.Try(
            body=node.body,
            handlers=[ast.ExceptHandler(type=error, name="error", body=handler_body)],
            orelse=[
                ast.Raise(exc=ast.Call(ast.Name("AssertionError", ast.Load()), [ast.Constant(f"DID NOT RAISE {expected}")], []))
            ],
            finalbody=[],
        )


# -- the script --------------------------------------------------------------------------------
def render(
    trace: Trace, exc: BaseException, *, header: list[str], device: str | None, backends: list[str], fails_with: str
) -> str:
    """The standalone script of `trace`'s failing example, or raise Unwritable saying why not.
    The script is run here before it is returned: it must raise `fails_with` as the test did."""
    if trace.problem:
        raise Unwritable(trace.problem)
    trace.sync_arrays()
    if isinstance(exc, BaseExceptionGroup):
        raise Unwritable("the example failed in several distinct ways")
    frames = list(_frames(exc.__traceback__))
    tests = [(f, line) for f, line in frames if _is_test_frame(f)]
    if not tests:
        raise Unwritable("the failure did not come from a test body")
    frame, line = tests[-1]
    frame_names = {}
    for f, _ in tests:
        for name, value in f.f_locals.items():
            if isinstance(value, (torch.Tensor, np.ndarray, torch.nn.Module, torch.Generator, torch.optim.Optimizer)):
                frame_names.setdefault(id(value), name)
    all_names: dict[int, list[str]] = {}
    for f, _ in tests:
        for name, value in f.f_locals.items():
            all_names.setdefault(id(value), []).append(name)
    after = [f for f, _ in frames[[f for f, _ in frames].index(frame) + 1 :]]
    check_frame = next((f for f in reversed(after) if _check_of(f) is not None), None)
    # A public check (torch.testing, numpy.testing) called straight from the test is written as
    # the test wrote it, so that values such as a missing .grad are read, not copied; the
    # check's own arguments are the fallback.
    attempts = [check_frame]
    if check_frame is not None and after and check_frame is after[0] and "conformance" not in check_frame.f_code.co_filename:
        attempts.insert(0, None)
    problem = None
    for attempt in attempts:
        try:
            writer = _Writer(trace, frame_names)
            writer.all_names = all_names
            writer.specs = _specs_in([f.f_locals for f, _ in tests], [])
            script = _script(trace, frame, line, exc, attempt, writer, header, device, backends)
            _verify(script, fails_with)
            return script
        except Unwritable as why:
            problem = problem or why
    raise problem


def _verify(script: str, fails_with: str) -> None:
    """Run the script here, where the test just failed: it must fail the same way."""
    raised = run_here(script)
    if raised is None:
        raise Unwritable("the script does not fail where the test did")
    if raised != fails_with:
        raise Unwritable(f"the script raised {raised} where the test raised {fails_with}")


def run_here(script: str) -> str | None:
    """Run a script in this process; the name of the exception it raised, or None. torch's global
    state (grad mode, default dtype, the CPU generator) is put back afterwards."""
    # saved and put back by hand: fork_rng calls torch functions a fault may have replaced
    grad, dtype, generator = torch.is_grad_enabled(), torch.get_default_dtype(), torch.random.get_rng_state()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(script, "<standalone repro>", "exec"), {"__name__": "__main__"})
    except Exception as exc:  # the script's failure is the point
        return type(exc).__name__
    finally:
        torch.set_grad_enabled(grad)
        torch.set_default_dtype(dtype)
        torch.random.set_rng_state(generator)
    return None


def _script(trace, frame, line, exc, check_frame, writer, header, device, backends) -> str:
    # calls made in a finally clause ran after the failure (clean-up): not part of the script
    records = [r for r in trace.records if not r.checking and not (r.where and r.where[1] in _finally_lines(r.where[0]))]
    roots, bindings, imports, helpers = [], [], set(), {}
    if check_frame is not None:
        roots = _check_of(check_frame)[0]
    else:
        statement = _Statement(frame, line, exc)
        statement.node = _SpecFacts(frame.f_locals).visit(statement.node)
        for name in statement.free_names():
            if name in frame.f_locals:
                roots.append(frame.f_locals[name])
                bindings.append(name)
            elif name in frame.f_globals:
                imports.add(_global(name, frame.f_globals[name], helpers))
            elif name != "re" and not hasattr(builtins, name):  # re: pytest.raises written out
                raise Unwritable(f"the failing statement names {name!r}, which the test frame does not hold")
        first, last = statement.span  # the statement is written out whole: the calls it makes are in it
        inside = [r for r in records if r.where and r.where[0] is frame.f_code and first <= r.where[1] <= last]
        records = [r for r in records if not any(r is i for i in inside)]
        made = {id(x.result) for x in records}
        if not inside and not any(isinstance(r, torch.Tensor) or id(r) in made for r in roots):
            raise Unwritable("the values it checks were not computed by torch calls the trace saw")
    before = len(trace.records)
    trace._see(roots)  # a tensor no traced call took: as it is now
    kept = _slice(trace, roots, records + trace.records[before:])
    if any(r.where and r.where[2] for r in kept):
        raise Unwritable("it depends on calls torch made back into the test (a custom Function, a hook, a dataset)")
    if check_frame is not None and not any(r.seed is None and not r.name.startswith("<") for r in kept):
        raise Unwritable("the values it checks were not computed by torch calls the trace saw")
    body = _inputs(trace, kept, roots, writer)
    body += _calls(kept, writer, frame.f_locals)
    final = []
    if check_frame is not None:
        final.append(_check_of(check_frame)[1](writer))
    else:
        for name in bindings:
            value = frame.f_locals[name]
            known = writer.names.get(id(value))
            if known != name and name not in writer.assigned:
                final.append(f"{name} = {_made_by(name, value, frame, records, writer) or writer.value(value)}")
        final.append(statement.text())
    body += writer.pending + [line for source in helpers.values() for line in ["", *source.splitlines(), ""]] + final
    text = "\n".join(body)
    head = [f"import {m}" for m in ("math", "re") if re.search(rf"\b{m}\.", text)]
    head = head + [""] * bool(head) + ["import torch"]
    if writer.uses_numpy or any("np" in i for i in imports) or "np." in text:
        head.insert(len(head) - 1, "import numpy as np")
    head += sorted(i for i in imports if i and i not in head)
    head += [f"import {module}  # the out-of-tree backend that registers {device!r}" for module in backends]
    comments = [line for h in header for line in (textwrap.wrap(h, 96) or [""])]
    script = "\n".join(["# " + c if c else "#" for c in comments] + head + [""] + body) + "\n"
    compile(script, "<standalone repro>", "exec")
    return script


def _global(name: str, value, helpers: dict | None = None) -> str:
    """An import line that binds `name` to `value` in a torch-only script."""
    if isinstance(value, types.ModuleType):
        module = value.__name__
        if module.split(".")[0] not in ("torch", "numpy", "math"):
            raise Unwritable(f"the failing statement uses the module {module}")
        if module == "numpy":
            return "" if name == "np" else f"import numpy as {name}"
        if "." in module:
            parent, _, last = module.rpartition(".")
            return f"from {parent} import {last}" + (f" as {name}" if name != last else "")
        return f"import {module}" + (f" as {name}" if name != module else "")
    module = getattr(value, "__module__", "") or ""
    qualname = getattr(value, "__qualname__", "")
    if module.split(".")[0] in ("torch", "numpy", "math") and qualname and "." not in qualname:
        public = {"torch.testing._comparison": "torch.testing"}.get(module, module)
        try:
            same = getattr(__import__(public, fromlist=[qualname]), qualname) is value
        except (ImportError, AttributeError):
            same = False
        if same:
            return f"from {public} import {qualname}" + (f" as {name}" if name != qualname else "")
    if isinstance(value, (int, float, str, bool)):
        return f"{name} = {value!r}"
    if helpers is not None and isinstance(value, types.FunctionType) and name == value.__name__:
        _inline(getattr(value, "__wrapped__", value), helpers)
        return ""
    raise Unwritable(f"the failing statement calls {name}, a helper of the suite")


def _inline(function, helpers: dict[str, str]) -> None:
    """Copy a small helper of the suite into the script, with the helpers it calls, where all it
    needs besides them is torch, NumPy, math and builtins."""
    if function.__name__ in helpers:
        return
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        raise Unwritable(f"the failing statement calls {function.__name__}, whose source is not available") from None
    tree = ast.parse(source)
    definition = tree.body[0]
    if isinstance(definition, ast.FunctionDef):  # the suite's tracing decorator does not go into a script
        definition.decorator_list = [d for d in definition.decorator_list if not ast.unparse(d).startswith("snippets.helper")]
    if not isinstance(definition, ast.FunctionDef) or definition.decorator_list or function.__closure__:
        raise Unwritable(f"the failing statement calls {function.__name__}, a helper of the suite")
    helpers[function.__name__] = ""  # placeholder against recursion
    bound = {a.arg for a in ast.walk(definition) if isinstance(a, ast.arg)}
    bound |= {n.id for n in ast.walk(definition) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    for node in ast.walk(definition):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in bound:
            value = function.__globals__.get(node.id)
            if node.id in function.__globals__ and isinstance(value, types.ModuleType):
                if value.__name__ not in ("torch", "numpy", "math") or node.id not in ("torch", "np", "math"):
                    raise Unwritable(f"the failing statement calls {function.__name__}, which uses {value.__name__}")
            elif isinstance(value, types.FunctionType) and value.__module__.startswith(("conformance", "strategies")):
                _inline(getattr(value, "__wrapped__", value), helpers)
            elif node.id not in function.__globals__ and hasattr(builtins, node.id):
                continue
            else:
                raise Unwritable(f"the failing statement calls {function.__name__}, which uses {node.id}")
    definition.body = [b for b in definition.body if not _is_docstring(b)]
    helpers[function.__name__] = ast.unparse(definition)


def _is_docstring(node) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _tensors(value, into: list) -> list:
    """The tensors in `value` (an optimizer's parameters among them)."""
    into.extend(o for o in _objects(value, []) if isinstance(o, torch.Tensor))
    return into


def _storage(t: torch.Tensor):
    try:
        s = t.untyped_storage()
        return (t.device, s.data_ptr()) if s.nbytes() else None
    except (RuntimeError, NotImplementedError):
        return None


def _slice(trace: Trace, roots: list, records: list[Record]) -> list[Record]:
    """The records the final check depends on (Note [Standalone repros]). A call that takes or
    returns both a tensor and an array (numpy(), from_numpy) ties them: where one is needed, a
    write through the other matters too; the walk repeats until no new tie is found."""
    needed_ids: set[int] = set()
    for _ in range(4):
        before = len(needed_ids)
        kept = _walk(records, roots, needed_ids)
        if len(needed_ids) == before:
            break
    # a seed point matters only where a kept call after it draws random numbers
    return [r for i, r in enumerate(kept) if r.seed is None or any(k.rng for k in kept[i + 1 :])]


def _walk(records: list[Record], roots: list, needed_ids: set[int]) -> list[Record]:
    needed_storage = set()

    def need(values):
        for v in _objects(values, []):
            needed_ids.add(id(v))
            if isinstance(v, torch.Tensor) and (s := _storage(v)) is not None:
                needed_storage.add(s)

    need(roots)
    kept = []
    seeded_after = any(r.seed is not None for r in records)
    for record in reversed(records):
        made = _objects(record.result, [])
        used = _objects((record.args, record.kwargs), [])
        makes = any(id(o) in needed_ids for o in made)
        targets = _objects((record.args[:1], record.kwargs.get("out")), [])
        writes = (_mutates(record) or record.name == "<array write>") and any(
            id(o) in needed_ids or (isinstance(o, torch.Tensor) and _storage(o) in needed_storage) for o in targets
        )
        always = record.name in _ALWAYS_KEPT or record.state or record.seed is not None
        if makes or writes or always or (record.rng and seeded_after):
            kept.append(record)
            need((record.args, record.kwargs))
            need(record.result)
        both = made + used
        tie = any(isinstance(o, torch.Tensor) for o in both) and any(isinstance(o, np.ndarray) for o in both)
        if tie and record.name != "<array write>" and any(id(o) in needed_ids for o in both):
            need(both)
    kept.reverse()
    return kept


def _gather(value, pick, into: list) -> list:
    """What `pick` finds in `value` and in the values it says to look inside, in order:
    pick(v) -> (found, to look inside)."""
    found, inside = pick(value)
    into.extend(found)
    for child in inside:
        _gather(child, pick, into)
    return into


def _contents(value) -> tuple:
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return tuple(value.values()) if isinstance(value, dict) else ()


def _objects(value, into: list) -> list:
    """The tensors, arrays and lists in `value` (what a script refers to by name); an optimizer
    stands for the parameters it updates."""

    def pick(v):
        if isinstance(v, (torch.Tensor, np.ndarray)):
            return [v], ()
        if isinstance(v, torch.optim.Optimizer):
            return [], [p for group in v.param_groups for p in group["params"]]
        return ([v] if isinstance(v, list) else []), _contents(v)

    return _gather(value, pick, into)


def _inputs(trace: Trace, kept: list[Record], roots: list, writer: _Writer) -> list[str]:
    used = _tensors([(r.args, r.kwargs) for r in kept] + [roots], [])
    made = {id(t) for r in kept for t in _tensors(r.result, []) if not any(t is a for a in _tensors(r.args, []))}
    lines, bases = [], {}
    for t in used:
        if id(t) in made or id(t) in writer.names:
            continue
        snap = trace.snapshots.get(id(t))
        if snap is None:
            raise Unwritable(f"a {t.dtype}{tuple(t.shape)} tensor the trace did not see before its use")
        if t.grad_fn is not None and not snap.parameter:
            raise Unwritable("a non-leaf input that was made outside the traced calls")
        whole = trace.storages[snap.storage]
        if snap.storage not in bases:
            base = writer.fresh(None, "storage")
            bases[snap.storage] = base
            seeded = _seeded(t, whole, writer.specs) if whole.numel() > SMALL else None
            if seeded is None and whole.numel() > MAX_LITERAL:
                raise Unwritable(f"an input whose storage holds {whole.numel()} elements (more than {MAX_LITERAL})")
            lines += (
                [f"{base} = {_storage_literal(whole, t.device, writer)}"]
                if seeded is None
                else [
                    f"torch.manual_seed({seeded[0]})",
                    f"{base} = {seeded[1]}" + (f".to({str(t.device)!r})" if t.device.type != "cpu" else "") + ".view(-1)",
                ]
            )
        name = writer.fresh(writer.frame_names.get(id(t)), "x")
        view = f"{bases[snap.storage]}.as_strided({tuple(t.shape)!r}, {tuple(t.stride())!r}, {t.storage_offset()})"
        if _is_whole(t, whole):
            view = f"{bases[snap.storage]}.view({tuple(t.shape)!r})" if t.ndim != 1 else bases[snap.storage]
        if snap.parameter:
            view = f"torch.nn.Parameter({view}" + (", requires_grad=False)" if not t.requires_grad else ")")
        elif t.requires_grad:
            view += ".requires_grad_()"
        lines.append(f"{name} = {view}")
        writer.names[id(t)] = name
    return lines


def _seeded(t: torch.Tensor, whole: torch.Tensor, specs: list) -> tuple[int, str] | None:
    """(seed, call): the make_tensor call that, after torch.manual_seed(seed), gives exactly the
    values of `whole`, the storage of a contiguous generated input, found among the specs the test
    drew (`specs`); None where none does."""
    if whole.device.type == "meta":
        return None
    for spec in specs:
        if spec.layout != "contiguous" or spec.specials or spec.extremes or spec.numel != whole.numel():
            continue  # values made then rearranged, or another size
        bounds = f"low={spec.low!r}, high={spec.high!r}"
        call = f"torch.testing.make_tensor({tuple(spec.shape)!r}, dtype={t.dtype}, device='cpu', {bounds})"
        with torch._C.DisableTorchFunction(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            again = eval(call, {"torch": torch})
        if again.reshape(-1).equal(whole):
            return spec.seed, call
    return None


def _specs_in(value, into: list) -> list:
    """The TensorSpecs a test frame holds, directly or inside Samples, Args and containers."""
    from strategies.samples import Arg, Sample
    from strategies.tensors import TensorSpec

    def pick(v):
        if isinstance(v, TensorSpec):
            return [v], ()
        if isinstance(v, Arg):
            return [v.spec], ()
        if isinstance(v, Sample):
            return [], (v.args, v.kwargs)
        return [], _contents(v)

    return _gather(value, pick, into)


def _is_whole(t: torch.Tensor, whole: torch.Tensor) -> bool:
    return t.is_contiguous() and t.storage_offset() == 0 and t.numel() == whole.numel() and t.numel() > 0


def _storage_literal(whole: torch.Tensor, device: torch.device, writer: _Writer) -> str:
    where = "" if device.type == "cpu" else f", device={str(device)!r}"
    if device.type == "meta":
        return f"torch.empty({whole.numel()}, dtype={whole.dtype}, device='meta')"
    values = whole.tolist()
    return f"torch.tensor({writer.value(values)}, dtype={whole.dtype}{where})"


_GRAD_CONTEXTS = ("no_grad", "enable_grad", "inference_mode", "set_grad_enabled")


def _source_context(where, names: dict, writer) -> str | None:
    """The `with` statements the test wrote around the line that made a call, as a script writes
    them: grad-mode contexts and torch.autocast as written (so a torch whose no_grad does nothing
    still gets the script the test meant; a context held in a local, `ctx = torch.no_grad`, is
    looked up in the test frame's `names`), contexts that do not change what torch computes
    (pytest.raises, warnings, the suite's seeded generator) left out; any other is refused."""
    if where is None:
        return None
    written = []
    for node in _contexts_of(where[0]).get(where[1], ()):
        call = node.items[0].context_expr if len(node.items) == 1 else None
        name = ast.unparse(call.func) if isinstance(call, ast.Call) else ""
        last = name.split(".")[-1]
        if last in _TRANSPARENT_CONTEXTS:
            continue
        if not isinstance(call, ast.Call) or any(isinstance(k.arg, type(None)) for k in call.keywords):
            raise Unwritable(f"a call made inside `with {ast.unparse(node.items[0].context_expr)}`")
        if "." not in name and name in names:  # a context held in a local
            local = names[name]
            known = next((n for n in _GRAD_CONTEXTS if local is getattr(torch, n, None)), getattr(local, "__name__", ""))
            if known not in _GRAD_CONTEXTS or call.args or call.keywords:
                raise Unwritable(f"a call made inside `with {ast.unparse(call)}`")
            written.append(f"torch.{known}()")
            continue
        if last not in (*_GRAD_CONTEXTS, "autocast") or not name.startswith("torch."):
            raise Unwritable(f"a call made inside `with {ast.unparse(call)}`")
        written.append(ast.unparse(_Literals(names, writer).visit(_copy(call))))
    return ", ".join(written) or None


_TRANSPARENT_CONTEXTS = ("raises", "warns", "catch_warnings", "private_rng", "fork_rng", "deprecated_call", "suppress")


def _copy(node):
    return ast.parse(ast.unparse(node), mode="eval").body


class _Literals(ast.NodeTransformer):
    """Names of the test's locals inside a context's arguments, replaced by their values."""

    def __init__(self, names: dict, writer):
        self.names, self.writer = names, writer

    def visit_Name(self, node):
        if node.id in self.names and node.id not in ("torch",):
            return ast.parse(self.writer.value(self.names[node.id]), mode="eval").body
        return node


@functools.cache
def _contexts_of(code) -> dict[int, tuple]:
    """Line -> the `with` statements around it in `code`'s source, outermost first."""
    parsed = _parsed(code)
    if parsed is None:
        return {}
    tree, first = parsed
    found: dict[int, list] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            for n in range(node.body[0].lineno, (node.end_lineno or node.lineno) + 1):
                found.setdefault(n + first - 1, []).append(node)
    return {line: tuple(sorted(nodes, key=lambda w: w.lineno)) for line, nodes in found.items()}


def _calls(kept: list[Record], writer: _Writer, names: dict) -> list[str]:
    lines, context = [], None
    for record in kept:
        text = writer.call(record)
        lines.extend(("    " if context else "") + line for line in writer.pending)
        writer.pending.clear()
        result = record.result
        statement = (
            record.seed is not None
            or record.state
            or record.name == "<array write>"
            or record.name.rsplit(".", 1)[-1] in ("__set__", "__setitem__")
            or (record.name.rsplit(".", 1)[-1].startswith("__i") and _mutates(record))
        )
        returns_self = isinstance(result, torch.Tensor) and any(result is a for a in record.args)
        named = isinstance(result, torch.Tensor) or bool(_tensors(result, [])) or isinstance(result, (np.ndarray, list))
        if not statement and named and not (returns_self and _mutates(record)):
            # A call that handed back its own argument (t.float() of a float tensor) gets a name of
            # its own all the same: on another torch it may not be the same object.
            preferred = writer.frame_names.get(id(result))
            if returns_self:
                preferred = next((n for n in writer.all_names.get(id(result), ()) if n not in writer.taken), None)
            name = writer.fresh(preferred, "t")
            text = f"{name} = {text}"
            writer.assigned.add(name)
            if not returns_self:
                writer.names[id(result)] = name
            if isinstance(result, (list, tuple)):
                for i, r in enumerate(result):
                    if isinstance(r, torch.Tensor) and id(r) not in writer.names:
                        writer.names[id(r)] = f"{name}[{i}]"
        wanted = _source_context(record.where, names, writer) or (
            ("torch.inference_mode()" if record.inference else None) or ("torch.no_grad()" if not record.grad else None)
        )
        if wanted != context:
            context = wanted
            if wanted:
                lines.append(f"with {wanted}:")
        lines.append(("    " if context else "") + text)
    return lines
