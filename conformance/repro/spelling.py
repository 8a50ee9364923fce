"""Spelling (Note [Repros]): values, inputs and recorded calls as torch-only Python source."""

from __future__ import annotations

import io
import keyword
import math
import re
from typing import TYPE_CHECKING

import numpy as np
import torch

from conformance.repro.calls import Record

if TYPE_CHECKING:
    from conformance.repro.trace import Trace


MAX_FILE = 65536  # bytes of an in-memory file written out as a literal


class Unwritable(Exception):
    """The failing example holds something a torch-only script cannot rebuild."""


_BINARY = {
    "add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "mod": "%", "pow": "**",
    "matmul": "@", "and": "&", "or": "|", "xor": "^", "lshift": "<<", "rshift": ">>",
    "eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">=",
}  # fmt: skip


_UNARY = {"neg": "-", "pos": "+", "invert": "~"}


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
        self.positions: dict[int, list[str]] = {}  # id(tensor) -> the places of call results that held it
        self.taken: set[str] = {"torch", "np", "math"}
        self.frame_names = frame_names
        self.uses_numpy = False
        self.pending: list[str] = []  # statements a value needs before the line that uses it
        self.assigned: set[str] = set()  # variables a written call assigns
        self.all_names: dict[int, list[str]] = {}  # id(object) -> every test local bound to it
        self.specs: list = []  # the TensorSpecs the test frames hold
        self.helpers: dict[str, str] = {}  # name -> source of a function the script defines
        self.imports: set[str] = set()  # import lines the helpers need

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
        if isinstance(v, torch._C.Size):  # the class itself: a fault may replace the name torch.Size
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
        if isinstance(v, io.BytesIO):
            _, first = self.trace.files.get(id(v), (None, None))
            if first is None or len(first) > MAX_FILE:
                raise Unwritable("an in-memory file the trace did not see first, or too large to write out")
            name = self.fresh(self.frame_names.get(id(v)), "buffer")
            self.pending.append(f"{name} = io.BytesIO({first!r})" if first else f"{name} = io.BytesIO()")
            self.names[id(v)] = name
            return name
        if isinstance(v, torch.UntypedStorage) and (owner := self._storage_owner(v)) is not None:
            return f"{owner}.untyped_storage()"  # one storage answers with one object while it is held
        raise Unwritable(f"an argument of type {type(v).__name__}")

    def _storage_owner(self, storage) -> str | None:
        """The name of a tensor the script holds whose untyped_storage() is `storage`."""
        with torch._C.DisableTorchFunction():
            for obj in self.trace.keep:
                if isinstance(obj, torch.Tensor) and id(obj) in self.names and obj.untyped_storage() is storage:
                    return self.names[id(obj)]
        return None

    def module(self, m: torch.nn.Module) -> str:
        """A leaf module of torch.nn rebuilt from its constructor arguments (its extra_repr, where
        that reads as them), its mode, and its parameters and buffers as literals."""
        kind = type(m)
        if kind.__module__.split(".")[:2] != ["torch", "nn"] or getattr(torch.nn, kind.__name__, None) is not kind:
            raise Unwritable(f"a module of type {kind.__name__} (not one of torch.nn's)")
        containers = (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)
        if isinstance(m, containers) and not list(m.parameters(recurse=False)):
            return self._container(m)
        if any(True for _ in m.children()):
            raise Unwritable(f"a {kind.__name__} with submodules")
        # an option the repr prints bare (`padding=same`, `padding_mode=reflect`) is a string
        arguments = re.sub(r"=(?!True\b|False\b|None\b)([A-Za-z_]\w*)(?=,|$)", r"='\1'", m.extra_repr())
        call = f"torch.nn.{kind.__name__}({arguments})"
        state_of_generator = torch.default_generator.get_state()  # a constructor draws its initial values
        try:
            with torch._C.DisableTorchFunction():
                rebuilt = eval(call, {"torch": torch})
        except Exception:
            raise Unwritable(f"a {kind.__name__} whose arguments its repr does not give") from None
        finally:
            torch.default_generator.set_state(state_of_generator)
        state = m.state_dict()
        floating = next((t.dtype for t in state.values() if t.is_floating_point()), None)

        def kinds(values):  # the floating dtype is set below, with .to(dtype)
            return {k: (v.shape, v.dtype if not v.is_floating_point() else None) for k, v in values.items()}

        if kinds(rebuilt.state_dict()) != kinds(state) or any(
            t.is_floating_point() and t.dtype != floating for t in state.values()
        ):
            raise Unwritable(f"a {kind.__name__} that its repr does not rebuild")
        name = self.fresh(self.frame_names.get(id(m)), "module")
        lines = [f"{name} = {call}" + ("" if m.training else ".eval()")]
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

    def _container(self, m: torch.nn.Module) -> str:
        """A Sequential, ModuleList or ModuleDict of modules the writer rebuilds (its children first);
        a child that appears twice is one module twice, as in the test."""
        kind = type(m).__name__
        if list(m.buffers(recurse=False)) or any(not n.isidentifier() and kind == "ModuleDict" for n, _ in m.named_children()):
            raise Unwritable(f"a {kind} that its children do not rebuild")
        children = {key: self.module(child) for key, child in m._modules.items() if child is not None}
        if len(children) != len(m._modules) or (kind == "Sequential" and list(m._modules) != [str(i) for i in range(len(m))]):
            raise Unwritable(f"a {kind} that its children do not rebuild")
        inner = ", ".join(children.values())
        if kind == "ModuleList":
            inner = f"[{inner}]"
        elif kind == "ModuleDict":
            inner = "{" + ", ".join(f"{k!r}: {v}" for k, v in children.items()) + "}"
        name = self.fresh(self.frame_names.get(id(m)), "module")
        self.pending.append(f"{name} = torch.nn.{kind}({inner})" + ("" if m.training else ".eval()"))
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
        kwargs = [keyword_argument(k, self.value(v)) for k, v in record.kwargs.items()]
        if record.operation is not None:
            return f"{self.operation(record.operation)}({', '.join(args + kwargs)})"
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

    def operation(self, operation) -> str:
        """The name under which the script defines a declared operation's call (its source)."""
        from conformance.repro.compared import _call_source

        name = operation.behaviour.rpartition(".")[2]
        if name not in self.helpers:
            source = _call_source(operation.call, self.imports, self.helpers)
            named = source.replace("call = ", f"{name} = ", 1) if source.startswith("call = ") else None
            self.helpers[name] = named or source.replace("def call(", f"def {name}(", 1)
            self.taken.add(name)
        return name


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


def _storage_literal(whole: torch.Tensor, device: torch.device, writer: _Writer) -> str:
    where = "" if device.type == "cpu" else f", device={str(device)!r}"
    if device.type == "meta":
        return f"torch.empty({whole.numel()}, dtype={whole.dtype}, device='meta')"
    values = torch._C.TensorBase.tolist(whole)  # not Tensor.tolist, which a fault may have replaced
    return f"torch.tensor({writer.value(values)}, dtype={whole.dtype}{where})"


def keyword_argument(name: str, value: str) -> str:
    """`name=value`, or `**{'from': value}` where the name is a Python keyword (uniform_'s `from`)."""
    return f"{name}={value}" if name.isidentifier() and not keyword.iskeyword(name) else f"**{{{name!r}: {value}}}"
