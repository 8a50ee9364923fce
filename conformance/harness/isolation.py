"""Isolation: every test leaves torch's global state as it found it.

Around each test call the plugin takes a snapshot of the process-wide settings a test could
change by accident (default dtype and device, grad/inference/anomaly modes, deterministic
algorithms, intra-op threads, warning filters, the CPU random generator). A test that changes
any of them fails with the list of what it changed (a test that failed anyway keeps its own
error, with the list added as a note), and the state is put back so the rest of
the run is unaffected. Tests that need randomness draw a seed from Hypothesis and use their own
torch.Generator or torch.random.fork_rng (see conformance.checks.private_rng).
"""

from __future__ import annotations

import sys
import warnings

import pytest
import torch

# taken when the plugin loads, before a fault can replace it (a fault may make it a no-op)
_set_default_device = torch.set_default_device


def default_device() -> str | None:
    """The default device a test set, read where torch keeps it (a fault may replace
    get_default_device): None where none is set. A device set to the CPU is not None: torch keeps it
    as a function mode that every later torch call passes through."""
    holder = getattr(torch, "_GLOBAL_DEVICE_CONTEXT", None)
    if holder is None:  # a torch that keeps it elsewhere: the CPU read as none set
        device = str(torch.get_default_device())
        return None if device == "cpu" else device
    context = getattr(holder, "device_context", None)
    return None if context is None else str(context.device)


def restore_default_device(device: str | None) -> None:
    """Make `device` (as default_device() read it) the default again, where it is not."""
    if default_device() != device:
        _set_default_device(device)


def snapshot() -> dict:
    return {
        "default dtype": torch.get_default_dtype(),
        "default device": default_device(),
        "grad mode": torch.is_grad_enabled(),
        "inference mode": torch.is_inference_mode_enabled(),
        "anomaly mode": torch.is_anomaly_enabled(),
        "deterministic algorithms": (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
        ),
        "intra-op threads": torch.get_num_threads(),
        "warning filters": list(warnings.filters),
        "CPU random generator": torch.get_rng_state(),
        "_modules": len(sys.modules),
    }


def _same(key, a, b) -> bool:
    if key == "CPU random generator":
        return torch.equal(a, b)
    return a == b


def _torch_own(warning_filter) -> bool:
    """An ignore filter for warnings raised in torch's own modules."""
    action, _, _, module, _ = warning_filter
    return action == "ignore" and module is not None and module.pattern.startswith("torch")


def restore(state: dict) -> None:
    torch.set_default_dtype(state["default dtype"])
    restore_default_device(state["default device"])
    torch.set_grad_enabled(state["grad mode"])
    torch.autograd.set_detect_anomaly(state["anomaly mode"])
    torch.use_deterministic_algorithms(state["deterministic algorithms"][0], warn_only=state["deterministic algorithms"][1])
    torch.set_num_threads(state["intra-op threads"])
    warnings.filters[:] = state["warning filters"]
    torch.set_rng_state(state["CPU random generator"])


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item):
    before = snapshot()
    failure = None
    try:
        return (yield)
    except BaseException as exc:
        failure = None if isinstance(exc, pytest.skip.Exception) else exc
        raise
    finally:
        after = snapshot()
        changed = [key for key in before if not key.startswith("_") and not _same(key, before[key], after[key])]
        if "warning filters" in changed and after["_modules"] > before["_modules"]:
            # Some libraries add filters when first imported, and torch imports them lazily
            # (sympy for symbolic shapes on meta tensors): a test that triggered a first import
            # is not blamed for the importer's filters.
            changed.remove("warning filters")
        elif "warning filters" in changed and all(
            _torch_own(f) for f in after["warning filters"] if f not in before["warning filters"]
        ):
            # torch silencing warnings of its own modules while it runs (torch 2.6's compiler adds
            # an ignore filter for torch.distributed on first use): torch's doing, not the test's
            changed.remove("warning filters")
        if changed:
            if "warning filters" in changed:
                added = [f for f in after["warning filters"] if f not in before["warning filters"]]
                changed[changed.index("warning filters")] = f"warning filters (added {added[:3]})"
            restore(before)
            if "inference mode" in changed:
                changed.remove("inference mode")  # cannot be left on by a with-block; reported if so
            message = "the test changed torch's global state and did not restore it: " + ", ".join(changed)
            if failure is None:
                raise AssertionError(message)
            # the test's own failure is what its report leads with; the leak is restored and noted
            failure.add_note(message)
