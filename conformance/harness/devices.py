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
        "--device",
        action="append",
        default=None,
        metavar="DEVICE[,DEVICE...]",
        help="torch device strings to check (cpu, cuda, cuda:1, mps, meta, ...); repeatable or "
        "comma-separated. Default: cpu plus cuda and mps where present. A device this machine "
        "lacks is an error, so a GPU runner can demand CUDA.",
    )


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    """On the xdist controller this runs after the workers were started (trylast), and it alone
    checks that the devices exist: a device this machine lacks is a usage error there, before
    any test runs. Workers trust the controller's check."""
    config = session.config
    option = config.getoption("device")
    try:
        if option is None:
            config.stash[DEVICES] = default_devices()
        else:
            names = parse(option)
            if not hasattr(config, "workerinput"):
                for name in names:
                    check_available(name)
            config.stash[DEVICES] = [(name, None) for name in names]
    except DeviceError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash.setdefault(RUN, {})["devices"] = [name for name, _ in config.stash[DEVICES]]
