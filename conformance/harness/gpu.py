"""GPU robustness: bounded memory per worker, no growth between tests, survival of a poisoned
CUDA context.

Note [Poisoned CUDA contexts]
A device-side assert (an out-of-range index in a kernel, say) leaves the process's CUDA context
unusable: every later CUDA call fails. Under xdist the worker that saw it exits right after the
failing test's report is sent; xdist records the item as crashed and starts a fresh worker with a
fresh context, so the rest of the run goes on. In a serial run the remaining CUDA items skip
with the reason instead. Workers sharing one GPU each get 1/N of its memory
(torch.cuda.set_per_process_memory_fraction), and the caching allocator's blocks are returned
after every CUDA test so usage does not grow across tests.
"""

from __future__ import annotations

import os
import sys

import pytest

from reports.schema import CUDA_PEAK_MB
from reports.schema import POISONED as POISONED_KEY

POISONED = pytest.StashKey[str]()
# Device types whose kernel errors leave the process's context unusable. A backend author whose
# device behaves the same way adds its type here.
POISONABLE_TYPES = {"cuda"}
_POISON_MARKERS = (
    "device-side assert",
    "CUDA error: an illegal memory access",
    "CUDA error: unspecified launch failure",
    "cudaErrorAssert",
    "CUBLAS_STATUS_EXECUTION_FAILED",
)


def _device_type(item) -> str | None:
    callspec = getattr(item, "callspec", None)
    device = callspec.params.get("device") if callspec else None
    return str(device).split(":")[0] if device is not None else None


def is_poisoning(exc: BaseException) -> bool:
    """Whether `exc`, or one it groups or chains (Hypothesis reports several distinct failures
    as an ExceptionGroup whose own text names none of them), says the context is poisoned."""
    seen, todo = set(), [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if any(marker in f"{type(current).__name__}: {current}" for marker in _POISON_MARKERS):
            return True
        todo += [*getattr(current, "exceptions", ()), current.__cause__, current.__context__]
    return False


def pytest_configure(config):
    if not hasattr(config, "workerinput"):
        return
    import torch

    if not torch.cuda.is_available():
        return
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        for index in range(torch.cuda.device_count()):
            torch.cuda.set_per_process_memory_fraction(min(1.0, 0.95 / workers), index)


def pytest_runtest_setup(item):
    reason = item.config.stash.get(POISONED, None)
    if reason and _device_type(item) in POISONABLE_TYPES:
        pytest.skip(f"{_device_type(item)} context poisoned by an earlier test ({reason}); rerun to check this item")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if (
        call.when == "call"
        and call.excinfo is not None
        and _device_type(item) in POISONABLE_TYPES
        and is_poisoning(call.excinfo.value)
    ):
        item.config.stash[POISONED] = item.nodeid
        report.user_properties.append((POISONED_KEY, item.nodeid))
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item):
    if item.config.stash.get(POISONED, None) == item.nodeid and hasattr(item.config, "workerinput"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(75)  # xdist reports the item as crashed and replaces this worker


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    if _device_type(item) != "cuda":
        return (yield)
    import torch

    torch.cuda.reset_peak_memory_stats()
    try:
        result = yield
    except BaseException as exc:
        # A poisoned context fails every CUDA call, empty_cache included: leave it alone.
        _release(item, torch, free=not is_poisoning(exc))
        raise
    # A kernel error reported late (asynchronously) surfaces here and fails this item.
    _release(item, torch, free=True)
    return result


def _release(item, torch, free: bool) -> None:
    item.user_properties.append((CUDA_PEAK_MB, round(torch.cuda.max_memory_allocated() / 2**20, 2)))
    if free:
        torch.cuda.empty_cache()
