"""Device, dtype and operation parameters, from markers and declarations.

Note [Writing a behaviour test]
A behaviour test names its catalogue entry and asks for the parameters it needs:

    @pytest.mark.behaviour("numpy_bridge.numpy_shares_memory")
    @pytest.mark.dtypes("numpy")                 # parametrize `dtype` over a group, per device
    @pytest.mark.device_types("cpu")             # other devices skip with a reason
    @given(x=specs(layouts=WRITABLE_LAYOUTS))
    def test_numpy_shares_memory(device, dtype, x):
        t = x.build(dtype=dtype, device=device)
        ...

`device` and `dtype` are pytest parameters (never Hypothesis draws), so each (device, dtype)
pair is its own test item with an id like `test_numpy_shares_memory[cpu-float32]`; `-k cuda`
selects the CUDA items. A test that takes an `operation` argument (an execution mode such as
the cross-device agreement) is parametrized over every declared Operation, each with its own
behaviour and dtype group: `test_device_agrees_with_cpu[softmax.range_and_sum-cuda-float32]`.
A behaviour whose subject is an operation declares it once (conformance/harness/declaration.py)
and its eager test is `@OPERATION.property`, which adds the markers itself.

Note [Meta is honest]
Meta tensors have shapes, dtypes and strides but no values and no memory. An eager test runs on
the meta device only where it is marked `@pytest.mark.meta_too` (it checks shapes, dtypes, device
moves, leaf status or errors, and reads no value); everywhere else its meta item is skipped with
a reason starting "meta tensors hold no values:", so `--device meta` never counts a value check
it could not make as a pass or a failure. The cross-device mode runs on meta and compares what
meta knows (conformance/harness/agreement.py); the compiled mode does not.
"""

from __future__ import annotations

import pytest

from conformance.harness.devices import DEVICES


def _skip_reason(definition, kind: str, unavailable: str | None) -> str | None:
    """Why `definition` does not run on a device of type `kind`, or None if it does."""
    if unavailable:
        return unavailable
    concerned = definition.get_closest_marker("device_types")
    if concerned and kind not in concerned.args:
        return f"not applicable: the behaviour concerns {'/'.join(concerned.args)} tensors"
    if definition.get_closest_marker("off_cpu") and kind == "cpu":
        return "not applicable: the behaviour concerns tensors off the CPU"
    if kind == "meta":
        reason = _meta_skip_reason(definition)
        if reason:
            return reason
    if definition.get_closest_marker("needs_two_cuda"):
        import torch

        if kind != "cuda":
            return "not applicable: the behaviour concerns two CUDA devices"
        if torch.cuda.device_count() < 2:
            return f"needs two CUDA devices; this machine has {torch.cuda.device_count()}"
    return None


META_NO_VALUES = "meta tensors hold no values: "


def _meta_skip_reason(definition) -> str | None:
    """Why a test does not run on the meta device, or None if it does (Note [Meta is honest])."""
    mode = definition.get_closest_marker("execution_mode")
    mode = mode.args[0] if mode else "eager"
    if mode == "cross-device":  # compares only what meta knows: errors, dtypes, shapes, strides, autograd flags
        return None
    if mode == "compiled":
        return META_NO_VALUES + (
            "compiled and eager results could be compared in dtype and shape alone, which Dynamo "
            "computes with the same meta kernels it traces through"
        )
    if definition.get_closest_marker("meta_too"):
        return None
    return META_NO_VALUES + (
        "the test reads values (a test that checks only shapes, dtypes or errors is marked meta_too and runs there)"
    )


def _devices(metafunc) -> list[tuple[str, str | None]]:
    config = metafunc.config
    devices = list(config.stash[DEVICES])
    # A second device for CPU-only machines, where it means something (moves, leaf status).
    if (
        metafunc.definition.get_closest_marker("meta_too")
        and "meta" not in [n for n, _ in devices]
        and config.getoption("device") is None
    ):
        devices.append(("meta", None))
    return devices


def one_dtype_of(group: str, device_type: str):
    """The one dtype a `one_dtype` mode runs a declaration of dtype `group` in: float32 where the
    group has it, else its first."""
    import torch

    from strategies.dtypes import dtypes_for

    dtypes = dtypes_for(group, device_type)
    return torch.float32 if torch.float32 in dtypes else dtypes[0]


def _cells(definition, devices, group: str | None, prefix: tuple = (), id_prefix: str = "", marks=()):
    """pytest params for every device (x dtype of `group`) of one test or operation; for a test
    marked `one_dtype`, one dtype of the group per device."""
    import torch

    from strategies.dtypes import dtype_name, dtypes_for

    params = []
    for name, unavailable in devices:
        kind = torch.device(name).type
        reason = _skip_reason(definition, kind, unavailable)
        cell_marks = [*marks, *([pytest.mark.skip(reason=reason)] if reason else [])]
        if group is None:
            params.append(pytest.param(*prefix, name, id=f"{id_prefix}{name}", marks=cell_marks))
        elif reason:  # one skipped item says it all: no per-dtype items that can never run
            params.append(pytest.param(*prefix, name, None, id=f"{id_prefix}{name}", marks=cell_marks))
        else:
            one = definition.get_closest_marker("one_dtype") is not None
            for dtype in [one_dtype_of(group, kind)] if one else dtypes_for(group, kind):
                params.append(pytest.param(*prefix, name, dtype, id=f"{id_prefix}{name}-{dtype_name(dtype)}", marks=cell_marks))
    return params


def pytest_generate_tests(metafunc):
    names = metafunc.fixturenames
    if "device" not in names:
        return
    definition = metafunc.definition
    devices = _devices(metafunc)
    if "operation" in names:
        from conformance.harness.compiled import compile_modes
        from conformance.harness.declaration import operations

        modes = compile_modes(metafunc.config) if "mode" in names else [None]
        if not modes:  # a compiled-mode module named on the command line without --compile
            reason = "compiled execution was not asked for: add --compile=BACKEND"
            skipped = pytest.param(None, None, None, None, id="no-compile", marks=pytest.mark.skip(reason=reason))
            metafunc.parametrize(("operation", "mode", "device", "dtype"), [skipped])
            return
        params = [
            p
            for op in operations()
            for mode in modes
            for p in _cells(
                definition,
                devices,
                op.dtypes,
                prefix=(op,) if mode is None else (op, mode),
                id_prefix=f"{op.behaviour}-" if mode is None else f"{op.behaviour}-{mode}-",
                marks=[pytest.mark.behaviour(op.behaviour)],
            )
        ]
        argnames = ("operation", "device", "dtype") if modes == [None] else ("operation", "mode", "device", "dtype")
        metafunc.parametrize(argnames, params)
        return
    marker = definition.get_closest_marker("dtypes")
    if ("dtype" in names) != (marker is not None):
        raise pytest.UsageError(f"{definition.nodeid}: a `dtype` argument and @pytest.mark.dtypes(group) go together")
    group = marker.args[0] if marker else None
    metafunc.parametrize(("device", "dtype") if group else "device", _cells(definition, devices, group))
