"""Fault catalogue: deliberate breakages of documented torch behaviour, to prove the suite
catches them.

Note [Writing a fault]
A fault breaks exactly one documented behaviour inside the test process and names the
behaviour(s) whose tests must then fail. Faults live in the module of the catalogue area of
the first behaviour they trip (conformance/faults/<area>.py, found by glob), and the body is
only the broken replacement:

    @fault("numpy_returns_copy", trips=["numpy_bridge.numpy_shares_memory"])
    def _(patch):
        # Tensor.numpy() returns a copy (the docstring describes the fault)
        @patch.replace(torch.Tensor, "numpy")
        def numpy(orig, self, *args, **kwargs):
            return orig(self, *args, **kwargs).copy()

`@patch.replace(owner, name)` installs the function below it as `owner.name`, called with the
original first, until the fault is removed; `patch.method(owner, name, make)` installs
`make(original)` for the one-line cases. Faults that only fire for one dtype, layout or device
type test that inside the replacement. `devices` lists the device types the fault can fire on:
"cpu", "cuda", "meta", or "off_cpu" (every device but the CPU, meta and out-of-tree backends
included) or "accelerator" (every device but the CPU that holds values: not meta)
(CUDA-only faults are proved on a GPU). Run one with `pytest --inject-fault ID`; run them all
with `python -m tools.killmatrix`.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DRIFT = 1 + 1e-3  # a 0.1% relative error: small enough to look plausible


@dataclass(frozen=True)
class Fault:
    id: str
    trips: tuple[str, ...]
    description: str
    install: Callable[[Patcher], None]
    devices: tuple[str, ...] = ("cpu",)
    gpus: int = 0  # CUDA devices the fault needs to be observable
    modes: tuple[str, ...] = ()  # torch.compile backends it needs (--compile), if it fires in compiled code only

    def fires_on(self, device_type: str) -> bool:
        if device_type in self.devices:
            return True
        if device_type == "cpu":
            return False
        return "off_cpu" in self.devices or ("accelerator" in self.devices and device_type != "meta")


@dataclass
class Patcher:
    """Records every replacement so that `undo` restores stock torch exactly."""

    _undo: list = field(default_factory=list)

    def method(self, owner, name: str, make: Callable) -> None:
        original = owner.__dict__[name] if name in vars(owner) else getattr(owner, name)
        self._undo.append((owner, name, original, name in vars(owner)))
        setattr(owner, name, _reported(owner, name, make(getattr(owner, name)), getattr(owner, name)))

    def attribute(self, owner, name: str, value) -> None:
        """Set `owner.name` to `value` (adding it if torch has no such name) until undone."""
        self.method(owner, name, lambda original: value) if hasattr(owner, name) else self._add(owner, name, value)

    def _add(self, owner, name: str, value) -> None:
        self._undo.append((owner, name, None, False))
        setattr(owner, name, value)

    def replace(self, owner, name: str) -> Callable:
        """Decorator: `broken(original, *args, **kwargs)` becomes `owner.name`."""

        def install(broken: Callable) -> Callable:
            def make(original):
                @functools.wraps(original)
                def replacement(*args, **kwargs):
                    return broken(original, *args, **kwargs)

                return replacement

            self.method(owner, name, make)
            return broken

        return install

    def keyword_ignored(self, owner, name: str, keyword: str) -> None:
        """`owner.name` drops the keyword argument `keyword` and runs with that argument's default:
        the bug of a signature that accepts an option and never passes it on."""

        @self.replace(owner, name)
        def ignoring(original, *args, **kwargs):
            kwargs.pop(keyword, None)
            return original(*args, **kwargs)

    def strided_writes_lost(self, owner, name: str) -> None:
        """`owner.name`, an in-place method, works on a contiguous copy of a non-contiguous self and
        returns self unchanged: the bug of a kernel that ignores the layout of the tensor it writes."""

        @self.replace(owner, name)
        def lost(original, target, *args, **kwargs):
            if not target.is_contiguous():
                original(target.contiguous(), *args, **kwargs)
                return target
            return original(target, *args, **kwargs)

    def undo(self) -> None:
        while self._undo:
            owner, name, original, owned = self._undo.pop()
            if owned:
                setattr(owner, name, original)
            else:
                delattr(owner, name)


def _reported(owner, name: str, replacement, original):
    """A standalone repro's trace sees the replacement as the public function it replaces (Note
    [Repros] in conformance/repro/__init__.py): a real bug would be inside that function."""
    import types

    from conformance.repro.calls import public_call

    public = owner.__name__ if isinstance(owner, types.ModuleType) else f"{owner.__module__}.{owner.__qualname__}"
    public = {"torch._tensor.Tensor": "torch.Tensor", "torch._C.TensorBase": "torch.Tensor"}.get(public, public)
    if isinstance(replacement, property) and replacement.fget is not None:
        getter = public_call(f"{public}.{name}.__get__", replacement.fget, getattr(original, "__get__", None))
        return property(getter, replacement.fset, replacement.fdel, replacement.__doc__)
    return public_call(f"{public}.{name}", replacement, original)


_REGISTRY: dict[str, Fault] = {}


def fault(fault_id: str, *, trips: list[str], devices: tuple[str, ...] = ("cpu",), gpus: int = 0, modes: tuple[str, ...] = ()):
    def register(install):
        if fault_id in _REGISTRY:
            raise ValueError(f"fault {fault_id!r} registered twice")
        _REGISTRY[fault_id] = Fault(fault_id, tuple(trips), (install.__doc__ or "").strip(), install, devices, gpus, modes)
        return install

    return register


def catalogue() -> dict[str, Fault]:
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.stem != "__init__":
            importlib.import_module(f"conformance.faults.{path.stem}")
    return dict(_REGISTRY)


def inject(fault_id: str) -> Patcher:
    """Install one fault; returns the patcher whose `undo()` removes it."""
    faults = catalogue()
    if fault_id not in faults:
        raise KeyError(fault_id)
    patcher = Patcher()
    faults[fault_id].install(patcher)
    return patcher
