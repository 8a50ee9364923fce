"""Tracing (Note [Repros]): the torch calls a failing example makes, recorded as they run."""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.overrides import TorchFunctionMode, resolve_name

from conformance.repro.calls import _ACTIVE, Record
from conformance.repro.spelling import Unwritable, _array_literal, _Writer

_CONFORMANCE = Path(__file__).resolve().parent.parent  # the test modules and checks.py

# The trace's own bookkeeping, out of reach of a fault that replaces torch.equal or the generator
# functions (the trace would otherwise record, or recurse into, its own comparisons)
_EQUAL = torch._C._VariableFunctions.equal
_RNG = torch._C.default_generator


# torch's global-state setters, which no TorchFunctionMode sees
_STATE_SETTERS = ("set_default_dtype", "set_default_device", "manual_seed", "use_deterministic_algorithms")


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
    operations: dict[int, tuple] = field(default_factory=dict)  # id(operation) -> its last call (calls.operation_call)
    files: dict[int, tuple] = field(default_factory=dict)  # id(BytesIO) -> (it, its contents when first seen)
    raised: dict[int, tuple] = field(default_factory=dict)  # id(error) -> (error, the call that raised it, records before it)
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

    def call(self, name: str, func, args, kwargs, code: str | None = None, operation=None):
        self.sync_arrays()
        self._see(args, kwargs)
        with torch._C.DisableTorchFunction():
            state = _RNG.get_state()
        record = Record(
            name,
            args,
            dict(kwargs),
            grad=torch.is_grad_enabled(),
            inference=torch.is_inference_mode_enabled(),
            code=code,
            operation=operation,
        )
        record.where = _test_statement()
        record.checking = _inside_a_check()
        # where each in-memory file stood: a script seeks there (the test's seek is no torch call)
        record.positions = {id(f): f.tell() for f in (*args, *kwargs.values()) if isinstance(f, io.BytesIO)}
        # each tensor argument's version counter: one that moved was written by the call, whatever
        # its name says (F.batch_norm's running statistics, a fault that writes in Python)
        with torch._C.DisableTorchFunction():
            versions = [(t, t._version) for t in _tensors((args, kwargs), []) if not t.is_inference()]
        self.depth += 1
        try:
            record.result = func(*args, **kwargs)
        except BaseException as error:
            # A call that raised made nothing: it is no record (a script that replayed it would
            # stop there), but where the test fails with its error, the script ends with it.
            self.raised[id(error)] = (error, record, len(self.records))
            raise
        finally:
            self.depth -= 1
        with torch._C.DisableTorchFunction():
            record.rng = not _EQUAL(state, _RNG.get_state())
            record.wrote = {id(t) for t, version in versions if t._version != version}
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
            elif isinstance(value, io.BytesIO) and id(value) not in self.files:
                self.files[id(value)] = (value, value.getvalue())  # its contents when first seen
                self.keep.append(value)
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
                    # torch's own methods (TensorBase), not the Python ones a fault may have replaced
                    base = torch._C.TensorBase
                    whole = base.set_(torch.empty(0, dtype=t.dtype, device=t.device), storage, 0, (count,), (1,))
                    whole = base.clone(base.cpu(base.detach(whole)))
                self.storage_keys[key] = len(self.storages)
                self.storages.append(whole)
            self.snapshots[id(t)] = Snapshot(t, self.storage_keys[key], isinstance(t, torch.nn.Parameter))
            self.keep.append(t)


_TORCH_DIR = Path(torch.__file__).resolve().parent


_STRATEGIES_DIR = _CONFORMANCE.parent / "strategies"


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
        return seed if _EQUAL(fresh.get_state(), generator.get_state()) else None


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


_TORCH_CLOSE = ("torch/testing/_comparison.py", "assert_close")


def _is_test_frame(frame) -> bool:
    path = Path(frame.f_code.co_filename)
    return path.parent == _CONFORMANCE and path.name.startswith("test_")


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
    """The tensors, arrays, in-memory files and lists in `value` (what a script refers to by name); an optimizer
    stands for the parameters it updates."""

    def pick(v):
        if isinstance(v, (torch.Tensor, np.ndarray, io.BytesIO)):
            return [v], ()
        if isinstance(v, torch.optim.Optimizer):
            return [], [p for group in v.param_groups for p in group["params"]]
        return ([v] if isinstance(v, list) else []), _contents(v)

    return _gather(value, pick, into)
