"""The results vocabulary: one module that everything writing or reading results uses.

A results file (`results.jsonl`) is one JSON object per line: an environment header first,
then one result record per test item.

    {"type": "environment", "source": ..., "torch": ..., "profile": ..., "seed": ..., ...}
    {"type": "result", "nodeid": ..., "behaviour": ..., "device": ..., "dtype": ...,
     "mode": ..., "status": ..., "repro_line": "pytest ...", ...}

An item that ran also carries its `fingerprint` (Note [Fingerprints] in
conformance/harness/fingerprint.py): the sorted set of its declared operation's result dtypes or
raised error types (`result`) and of the warnings raised while it ran (`warnings`), recorded for
the upgrade report (reports.diff), never asserted.

A failing item also carries its standalone script (Note [Repros] in conformance/repro/__init__.py):
`repro` (the script), `repro_fails_with` (what it raises) or `repro_missing` (why there is none).
Files written before these names (`snippet`, `snippet_fails_with`, `snippet_missing`, and the
repro line as `repro`) are read under the new names.

The recorder (reports.recorder), the renderer and merge (reports.render), the kill matrix and
the tools in tools/ all read and write through the names here. Importing this module never
imports torch: the renderer runs on machines without it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Statuses, most severe first: an item's status is the most severe of its phases' outcomes.
SEVERITY = ("crashed", "timeout", "error", "failed", "expected failure", "passed", "skipped", "not run")
STATUSES = ("passed", "failed", "error", "crashed", "timeout", "expected failure", "skipped", "not run")
BAD = ("failed", "error", "crashed", "timeout")
assert set(SEVERITY) == set(STATUSES)


def more_severe(status: str, than: str | None) -> bool:
    """Whether `status` should replace `than` (None: nothing recorded yet) as an item's status:
    it is at least as severe. Skipped and expected failure rank alike."""
    if than is None:
        return True
    rank = {s: i for i, s in enumerate(SEVERITY)}
    rank["skipped"] = rank["expected failure"]
    return rank[status] <= rank[than]


# user_properties keys a test item's reports carry (see conformance.harness.identity).
IDENTITY = "conformance.identity"  # {"behaviour", "device", "dtype", "mode"}, set at collection
RUN_DETAILS = "conformance.run"  # Hypothesis figures and failure details of the call phase
OBSERVATION = "observation"  # (what, value): torch behaviour no doc promises
FINGERPRINT = "conformance.fingerprint"  # {"result": [...], "warnings": [...]}: Note [Fingerprints]
CUDA_PEAK_MB = "cuda_peak_mb"
POISONED = "poisoned"

# What the harness knows of the run, for the recorder's environment header.
RUN = pytest.StashKey[dict]()


class ResultsError(ValueError):
    """A results file that cannot be read; the message names the file and the line."""


@dataclass
class Source:
    label: str
    header: dict
    results: list[dict] = field(default_factory=list)

    @property
    def incomplete(self) -> bool:
        return not self.header.get("end") or bool(self.header.get("interrupted"))


def load(path: Path) -> Source:
    """Read and validate one results file; a problem raises ResultsError naming the line."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ResultsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ResultsError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    lines = text.splitlines()
    if not lines:
        raise ResultsError(f"{path}: empty, not a results file")
    records = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            last = number == len(lines) and not text.endswith("\n")
            if last and number > 1 and records[0].get("type") == "environment" and not records[0].get("end"):
                break  # a run killed while writing its last line: what it finished stays readable
            raise ResultsError(f"{path}: line {number} is {'truncated' if last else 'not JSON'}") from None
        if not isinstance(record, dict):
            raise ResultsError(f"{path}: line {number} is not a JSON object")
        records.append(_renamed(record))
    header = records[0]
    if header.get("type") != "environment":
        raise ResultsError(f"{path}: line 1 is not an environment header")
    for number, record in enumerate(records[1:], 2):
        if record.get("type") != "result" or record.get("status") not in STATUSES or not isinstance(record.get("nodeid"), str):
            raise ResultsError(f"{path}: line {number} is not a result record")
    return Source(label=str(header.get("source") or path), header=header, results=records[1:])


# the names of older results files: old -> new
_OLD_NAMES = {"snippet": "repro", "snippet_fails_with": "repro_fails_with", "snippet_missing": "repro_missing"}


def _renamed(record: dict) -> dict:
    """A result record under today's field names. A record written before the script was called
    a repro has no `repro_line`: its `repro` is the repro line, and its `snippet` the script."""
    if record.get("type") != "result" or "repro_line" in record or not ({"repro", *_OLD_NAMES} & record.keys()):
        return record
    renamed = {k: v for k, v in record.items() if k != "repro" and k not in _OLD_NAMES}
    if "repro" in record:
        renamed["repro_line"] = record["repro"]
    renamed.update({new: record[old] for old, new in _OLD_NAMES.items() if old in record})
    return renamed


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then move it into place: a reader sees
    the old file or the new one, never half of either."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        # errors="replace": a lone surrogate (from bytes that were not UTF-8) becomes "?"
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def environment(*, profile: str, seed, devices: list[str], argv: list[str]) -> dict:
    """The environment header of a results file: what ran, where, with what."""
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
