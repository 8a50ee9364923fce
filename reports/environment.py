"""The environment header of a results file: what ran, where, with what."""
from __future__ import annotations

import datetime as _dt
import platform
import socket
import sys


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def describe(*, profile: str, seed, devices: list[str], argv: list[str]) -> dict:
    import hypothesis
    import numpy
    import torch

    gpus = []
    if torch.cuda.is_available():
        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    host = socket.gethostname()
    return {
        "type": "environment",
        "source": f"{host} torch {torch.__version__}",
        "host": host,
        "torch": torch.__version__,
        "torch_git": getattr(torch.version, "git_version", None),
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "gpus": gpus,
        "gpu_count": len(gpus),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": numpy.__version__,
        "hypothesis": hypothesis.__version__,
        "profile": profile,
        "seed": seed,
        "devices": devices,
        "command": " ".join(argv),
        "start": now(),
        "end": None,
    }
