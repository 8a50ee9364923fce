"""The suite's own test device: a minimal out-of-tree backend named `testdev`.

    pytest --backend tests.testdevice --device cpu,testdev

It exists to test the suite (every path that concerns a device other than the CPU runs on it on
every CI run) and is not installed for users. Its memory is host memory, its operators are the
CPU's (testdevice.cpp), so where it differs from the CPU either the suite or torch's PrivateUse1
machinery is at fault. Importing this module builds the C++ extension once per torch version into
a cache directory (TESTDEV_CACHE, default ~/.cache/torch-conformance) and registers the device.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch
import torch.utils.cpp_extension

NAME = DEVICE_TYPE = "testdev"  # DEVICE_TYPE: what --backend looks for
# After a backward pass on the device, torch's autograd device thread can abort the process while
# Python finalizes (pytorch issues 38228, 38230): the harness ends a pytest run just before that.
EXIT_BEFORE_FINALIZATION = True
__version__ = "0.1"
SOURCE = Path(__file__).with_name("testdevice.cpp")


def _build_directory() -> Path:
    root = Path(os.environ.get("TESTDEV_CACHE") or Path.home() / ".cache" / "torch-conformance")
    directory = root / f"testdev-torch-{torch.__version__}"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


STALE_LOCK_SECONDS = 600  # a build takes under a minute; a lock this old was left by a killed build


def _load():
    # cpp_extension.load rebuilds only when the source or the build flags changed. It waits for
    # as long as its lock file exists, and a build that was killed leaves one behind: every later
    # import would hang. A lock older than any build is removed (with a word on stderr).
    lock = _build_directory() / "lock"
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        age = 0.0
    if age > STALE_LOCK_SECONDS:
        print(f"tests.testdevice: removing a stale build lock ({age:.0f} s old): {lock}", file=sys.stderr)
        lock.unlink(missing_ok=True)
    return torch.utils.cpp_extension.load(
        name="conformance_testdev",
        sources=[str(SOURCE)],
        build_directory=str(_build_directory()),
        extra_cflags=["-O1"],
        verbose=False,
    )


_extension = _load()


class _DeviceModule:
    """torch.testdev: what torch and the suite ask a device module."""

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def device_count() -> int:
        return 1

    @staticmethod
    def current_device() -> int:
        return 0

    @staticmethod
    def _is_in_bad_fork() -> bool:
        return False

    @staticmethod
    def get_amp_supported_dtype() -> list:  # torch.amp.autocast asks it (checkpoint's recomputation opens one)
        return [torch.float16, torch.bfloat16]

    @staticmethod
    def is_initialized() -> bool:  # fake tensors ask it of a factory call's device under torch.compile
        return True

    @staticmethod
    def manual_seed_all(seed: int) -> None:
        _extension.manual_seed(int(seed) & 0xFFFF_FFFF_FFFF_FFFF)

    manual_seed = manual_seed_all

    class device:
        """torch.testdev.device(d): the current-device context torch enters when it moves a storage
        (torch.load among others); with one device there is nothing to switch."""

        def __init__(self, device):
            self.device = device

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            return False


if torch._C._get_privateuse1_backend_name() != NAME:
    torch.utils.rename_privateuse1_backend(NAME)
    torch._register_device_module(NAME, _DeviceModule)
    torch.utils.generate_methods_for_privateuse1_backend(for_tensor=True, for_module=True, for_storage=True)
