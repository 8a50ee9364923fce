"""Operations declared once, consumed by every execution mode and device.

Note [Declaring an operation]
A behaviour whose subject is an operation over generated inputs declares that operation once,
next to its test, in the spirit of PyTorch's OpInfo (but one per behaviour, and public):

    SOFTMAX = Operation(
        "softmax.range_and_sum", dtypes="floating",
        samples=tensor_and_dim(),                      # a strategy of Samples (or dtype -> one)
        call=lambda x, dim: F.softmax(x, dim),         # the subject, looked up at call time
    )

    @SOFTMAX.property                                  # behaviour and dtypes markers, @given
    def test_softmax_is_a_distribution_along_dim(device, dtype, sample):
        out = SOFTMAX(sample, dtype=dtype, device=device)
        ...

A `Sample` (strategies/samples.py) holds the drawn arguments: TensorSpecs, `Arg`s and plain
values, built on each device from the same draw. The eager property test, the cross-device
agreement (conformance/test_cross_device.py) and the compiled mode (conformance/test_compiled.py)
run the same declaration on the same samples; none of them is edited to add a behaviour, and an
area module is not edited to add a mode or a device kind (beyond a declaration saying, once, why
a mode does not apply to it).

`call` is a lambda or function that names torch where it runs (`F.softmax`, not a captured
`F.softmax` object), so a fault injected after import is seen. Documented ways a device may
differ (TF32 convolutions on CUDA) are `Divergence` data; tolerances come from
conformance/tolerances.py; a divergence of a torch.compile backend names it (`mode="inductor"`).
`compare_strides` says the behaviour documents its result's strides, so every mode compares
them. `shape_depends_on_values` marks operations (nonzero) whose result
shape meta tensors cannot know; `not_compiled` says why an operation is not run under
torch.compile (conformance/harness/compiled.py), where it is not.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance.harness import fingerprint
from conformance.repro.calls import operation_call
from strategies.samples import Sample
from strategies.tensors import CompactRepr


@dataclass(frozen=True)
class Divergence:
    """A documented way results may differ: on one device type from the CPU's (mode None, the
    cross-device mode), or under one torch.compile backend from eager execution (mode the backend;
    device_type None: on every device)."""

    device_type: str | None
    tolerance: str  # a name in conformance.tolerances.TABLE
    reason: str  # the documented sentence, quoted
    applies: Callable[[], bool] = lambda: True  # a backend setting that turns it on
    mode: str | None = None  # a torch.compile backend: compiled against eager

    def matches(self, device, mode: str | None) -> bool:
        kind = torch.device(device).type
        return self.mode == mode and self.device_type in (None, kind) and self.applies()


@dataclass(frozen=True, eq=False, repr=False)
class Operation(CompactRepr):
    behaviour: str
    dtypes: str  # a dtype group (strategies.DTYPE_GROUPS)
    samples: Any  # a strategy of Samples, or dtype -> one
    call: Callable[..., Any]
    divergences: tuple[Divergence, ...] = ()
    shape_depends_on_values: bool = False
    not_compiled: str = ""  # why compiled execution does not apply, where it does not
    compare_strides: bool = False  # the behaviour documents its result's strides: every mode compares them

    def __post_init__(self):
        from strategies.dtypes import DTYPE_GROUPS

        if self.dtypes not in DTYPE_GROUPS:
            raise ValueError(f"{self.behaviour}: unknown dtype group {self.dtypes!r}; known: {', '.join(DTYPE_GROUPS)}")
        _register(self)

    def __repr__(self) -> str:  # what a falsifying example and a test id show
        return f"Operation({self.behaviour!r})"

    def samples_for(self, dtype: torch.dtype) -> st.SearchStrategy:
        return self.samples if isinstance(self.samples, st.SearchStrategy) else self.samples(dtype)

    def __call__(self, sample: Sample, *, dtype: torch.dtype, device):
        args, kwargs = sample.build(dtype=dtype, device=device)
        try:
            out = operation_call(self, args, kwargs, lambda: self.call(*args, **kwargs))
        except Exception as error:
            fingerprint.note_result(error=error)
            raise
        fingerprint.note_result(out)  # Note [Fingerprints]: recorded for the upgrade report, never asserted
        return out

    def tolerance(self, device, dtype: torch.dtype, mode: str | None = None, also: tuple[Divergence, ...] = ()) -> dict:
        """assert_close keywords for comparing results on `device` with the CPU's (mode None), or
        compiled with backend `mode` against eager on `device`; `also`: divergences of a whole
        backend (conformance/harness/compiled.py), after the declaration's own."""
        from conformance.tolerances import tolerance

        for divergence in (*self.divergences, *also):
            if divergence.matches(device, mode):
                found = tolerance(divergence.tolerance, dtype)
                if found:
                    return found
        return {}

    def property(self, test: Callable) -> Callable:
        """Turn `test(device, dtype, sample[, data][, fixtures...])` into the eager property test
        of this operation: behaviour and dtypes markers, and a Sample drawn for the item's dtype.
        Other parameters of `test` are pytest fixtures (record_observation, say)."""
        parameters = inspect.signature(test).parameters
        wants_data = "data" in parameters
        fixtures = [p for name, p in parameters.items() if name not in ("device", "dtype", "sample", "data")]
        operation = self

        def run(device, dtype, data, **fixture_values):
            sample = data.draw(operation.samples_for(dtype), label="sample")
            return test(device, dtype, sample, **({"data": data} if wants_data else {}), **fixture_values)

        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        run.__signature__ = inspect.Signature(
            [inspect.Parameter(name, kind) for name in ("device", "dtype", "data")]
            + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in fixtures]
        )

        run.__name__, run.__qualname__, run.__doc__ = test.__name__, test.__qualname__, test.__doc__
        run.__module__ = test.__module__
        run.pytestmark = list(getattr(test, "pytestmark", []))  # markers written below @OP.property
        run = given(data=st.data())(run)
        run.place_as = test  # pytest reports the item at the test's own file and line
        return pytest.mark.dtypes(self.dtypes)(pytest.mark.behaviour(self.behaviour)(run))


_REGISTRY: dict[str, Operation] = {}


def _register(operation: Operation) -> None:
    """One declaration per behaviour. A module imported twice re-declares the same behaviours
    from the same module (the call's own module), which replaces them; another module may not."""
    earlier = _REGISTRY.get(operation.behaviour)
    if earlier is not None and earlier.call.__module__ != operation.call.__module__:
        raise ValueError(f"{operation.behaviour}: declared in {earlier.call.__module__} and again in {operation.call.__module__}")
    _REGISTRY[operation.behaviour] = operation


def operation_of(behaviour: str) -> Operation:
    """The operation `behaviour` declares (its area module imported)."""
    if behaviour not in _REGISTRY:
        importlib.import_module(f"conformance.test_{behaviour.split('.')[0]}")
    return _REGISTRY[behaviour]


def operations() -> list[Operation]:
    """Every declared operation, in catalogue-id order (the area modules are imported)."""
    here = Path(__file__).resolve().parent.parent
    for path in sorted(here.glob("test_*.py")):
        importlib.import_module(f"conformance.{path.stem}")
    return [_REGISTRY[b] for b in sorted(_REGISTRY)]
