"""Fault catalogue: deliberate breakages of documented torch behaviour, to prove the suite
catches them.

Note [Writing a fault]
A fault breaks exactly one documented behaviour inside the test process and names the
behaviour(s) whose tests must then fail:

    @fault("numpy_returns_copy", trips=["numpy_bridge.numpy_shares_memory"])
    def _(patch):
        patch.method(torch.Tensor, "numpy", lambda orig: lambda self, *a, **k: orig(self, *a, **k).copy())

`patch.method(owner, name, make)` replaces `owner.name` with `make(original)` until the fault
is removed. Faults that only fire for one dtype, layout or device type test that inside the
replacement. `devices` lists the device types the fault can fire on (CUDA-only faults are
proved on a GPU). Run one with `pytest --inject-fault ID`; run them all with
`python -m conformance.faults.killmatrix`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

AREA_MODULES = ("numpy_bridge", "views", "numerics", "tensors", "autograd", "devices", "data")


@dataclass(frozen=True)
class Fault:
    id: str
    trips: tuple[str, ...]
    description: str
    install: Callable[["Patcher"], None]
    devices: tuple[str, ...] = ("cpu",)
    gpus: int = 0  # CUDA devices the fault needs to be observable


@dataclass
class Patcher:
    """Records every replacement so that `undo` restores stock torch exactly."""

    _undo: list = field(default_factory=list)

    def method(self, owner, name: str, make: Callable) -> None:
        original = owner.__dict__[name] if name in vars(owner) else getattr(owner, name)
        self._undo.append((owner, name, original, name in vars(owner)))
        setattr(owner, name, make(getattr(owner, name)))

    def undo(self) -> None:
        while self._undo:
            owner, name, original, owned = self._undo.pop()
            if owned:
                setattr(owner, name, original)
            else:
                delattr(owner, name)


_REGISTRY: dict[str, Fault] = {}


def fault(fault_id: str, *, trips: list[str], devices: tuple[str, ...] = ("cpu",), gpus: int = 0):
    def register(install):
        if fault_id in _REGISTRY:
            raise ValueError(f"fault {fault_id!r} registered twice")
        _REGISTRY[fault_id] = Fault(fault_id, tuple(trips), (install.__doc__ or "").strip(),
                                    install, devices, gpus)
        return install
    return register


def catalogue() -> dict[str, Fault]:
    for name in AREA_MODULES:
        importlib.import_module(f"conformance.faults.{name}")
    return dict(_REGISTRY)


def inject(fault_id: str) -> Patcher:
    """Install one fault; returns the patcher whose `undo()` removes it."""
    faults = catalogue()
    if fault_id not in faults:
        raise KeyError(fault_id)
    patcher = Patcher()
    faults[fault_id].install(patcher)
    return patcher
