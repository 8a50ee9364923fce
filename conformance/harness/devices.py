"""Which devices a run checks: the --device option, parsed and checked against this machine."""

from __future__ import annotations

import pytest

from reports.schema import RUN

DEVICES = pytest.StashKey[list]()  # [(device string, skip reason or None)]


class DeviceError(ValueError):
    """A --device value that names no usable device; the message is the one-line usage error."""


def parse(values: list[str]) -> list[str]:
    """Split repeated and comma-separated --device values; keep order, drop repeats."""
    names: list[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if name and name not in names:
                names.append(name)
    if not names:
        raise DeviceError("--device: no device given")
    return names


def check_available(name: str) -> None:
    """Raise DeviceError unless `name` is a device string this machine has."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise DeviceError(f"--device {name!r}: not a torch device string ({_first_line(exc)})") from None
    kind, index = device.type, device.index
    if kind in ("cpu", "meta"):
        return
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                f"--device {name!r}: CUDA is not available here (torch {torch.__version__}, built with CUDA {torch.version.cuda})"
            )
        count = torch.cuda.device_count()
        if index is not None and index >= count:
            raise DeviceError(f"--device {name!r}: this machine has {count} CUDA device(s), indices 0..{count - 1}")
        return
    if kind == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"--device {name!r}: MPS is not available here")
    try:  # any other backend (xpu, privateuse1, ...) must be able to hold a tensor
        torch.empty(0, device=device)
    except Exception as exc:
        raise DeviceError(f"--device {name!r}: cannot create a tensor there ({_first_line(exc)})") from None


def default_devices() -> list[tuple[str, str | None]]:
    """(device, skip reason or None): cpu, and cuda/mps; cuda is listed even when absent so that
    its tests show as skipped with the reason instead of vanishing."""
    import torch

    devices: list[tuple[str, str | None]] = [("cpu", None)]
    if torch.cuda.is_available():
        devices.append(("cuda", None))
    else:
        devices.append(("cuda", f"CUDA is not available (torch {torch.__version__}, CUDA build: {torch.version.cuda or 'none'})"))
    if torch.backends.mps.is_available():
        devices.append(("mps", None))
    return devices


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def pytest_addoption(parser):
    parser.getgroup("torch-conformance").addoption(
        "--backend",
        action="append",
        default=None,
        metavar="MODULE",
        help="import MODULE before devices are resolved: an out-of-tree backend that registers its "
        "device (PrivateUse1 and the like); repeatable. Its device is then checked by default "
        "and can be named with --device.",
    )
    parser.getgroup("torch-conformance").addoption(
        "--device",
        action="append",
        default=None,
        metavar="DEVICE[,DEVICE...]",
        help="torch device strings to check (cpu, cuda, cuda:1, mps, meta, ...); repeatable or "
        "comma-separated. Default: cpu plus cuda and mps where present. A device this machine "
        "lacks is an error, so a GPU runner can demand CUDA.",
    )


def load_backend(module_name: str) -> dict:
    """Import a backend module; return what the environment header records of it. Raises
    DeviceError (a one-line usage error) when it cannot be imported or registers no device."""
    import importlib

    import torch

    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a backend fails to load in its own ways (build errors too)
        raise DeviceError(f"--backend {module_name!r}: cannot import it ({type(exc).__name__}: {_first_line(exc)})") from None
    # The module names its device type, or it renamed the PrivateUse1 backend (the usual way).
    renamed = torch._C._get_privateuse1_backend_name()
    device = getattr(module, "DEVICE_TYPE", None) or (renamed if renamed != "privateuseone" else None)
    if device is None:
        raise DeviceError(
            f"--backend {module_name!r}: imported, but it registered no device (it renamed no "
            "PrivateUse1 backend and names no DEVICE_TYPE)"
        )
    if getattr(module, "EXIT_BEFORE_FINALIZATION", False):
        _EXIT_EARLY.append(module_name)
    return {"module": module_name, "version": str(getattr(module, "__version__", "unknown")), "device": device}


# Backends whose autograd device thread can abort the process while Python finalizes (the thread
# re-acquires the GIL after finalization: pytorch issues 38228 and 38230) ask to end the process
# once pytest has finished, with pytest's exit status, before finalization starts.
_EXIT_EARLY: list[str] = []
_EXIT_STATUS = pytest.StashKey[int]()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    import sys

    status = config.stash.get(_EXIT_STATUS, None)
    # Only where pytest is the program (or an xdist worker): a program that runs pytest in-process
    # (the kill matrix) has an exit status of its own, and ends early itself (exit_before_finalization).
    pytest_is_the_program = hasattr(config, "workerinput") or "pytest" in sys.argv[0].replace("\\", "/").split("/")[-2:]
    if _EXIT_EARLY and status is not None and pytest_is_the_program:
        exit_before_finalization(status)


def exit_before_finalization(status: int) -> None:
    """End the process with `status` once the interpreter starts to shut down, before the
    finalization in which a backend's autograd thread can abort it (see _EXIT_EARLY)."""
    import atexit
    import os
    import sys

    def exit_now():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)

    atexit.register(exit_now)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    backends = []
    for value in config.getoption("backend") or ():
        for name in (n.strip() for n in value.split(",")):
            if name:
                try:
                    backends.append(load_backend(name))
                except DeviceError as exc:
                    raise pytest.UsageError(str(exc)) from None
    config.stash.setdefault(RUN, {})["backends"] = backends


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    """On the xdist controller this runs after the workers were started (trylast), and it alone
    checks that the devices exist: a device this machine lacks is a usage error there, before
    any test runs. Workers trust the controller's check."""
    config = session.config
    option = config.getoption("device")
    try:
        if option is None:
            extra = [b["device"] for b in config.stash[RUN]["backends"]]
            config.stash[DEVICES] = default_devices() + [(name, None) for name in dict.fromkeys(extra)]
        else:
            names = parse(option)
            if not hasattr(config, "workerinput"):
                for name in names:
                    check_available(name)
            config.stash[DEVICES] = [(name, None) for name in names]
    except DeviceError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash.setdefault(RUN, {})["devices"] = [name for name, _ in config.stash[DEVICES]]
