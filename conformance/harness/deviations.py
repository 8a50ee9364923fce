"""Known deviations: behaviours a user expects to fail on their build.

    [[deviation]]
    behaviour = "losses.nll_all_ignored"   # required: a catalogue id
    device = "cuda"                         # optional: a device type or string (default: any)
    dtype = "float16"                       # optional (default: any)
    mode = "cross-device"                   # optional: an execution mode (default: any)
    test = "backward"                       # optional: a fragment of the test id (one case of a mode)
    torch = ">=2.11,<2.14"                  # optional: PEP 440 range of torch versions
    reason = "returns 0 instead of NaN"     # required
    link = "https://github.com/pytorch/pytorch/issues/..."   # optional

A matching test is marked as an expected failure (non-strict xfail): if it fails the report
says "expected failure"; if it passes anyway the report flags the deviation as stale.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from conformance.harness.identity import identity_of

DEFAULT_FILE = "known_deviations.toml"
DEVIATIONS = pytest.StashKey[list]()

FIELDS = {"behaviour", "device", "dtype", "mode", "test", "torch", "reason", "link"}


class DeviationsError(ValueError):
    pass


@dataclass(frozen=True)
class Deviation:
    behaviour: str
    reason: str
    device: str | None = None
    dtype: str | None = None
    mode: str | None = None
    torch: str | None = None
    link: str | None = None
    test: str | None = None

    def matches(
        self, behaviour: str, device: str | None, dtype: str | None, torch_version: str, mode: str = "eager", nodeid: str = ""
    ) -> bool:
        if behaviour != self.behaviour or (self.mode and mode != self.mode) or (self.test and self.test not in nodeid):
            return False
        if self.device and device and self.device not in (device, device.split(":")[0]):
            return False
        if self.dtype and dtype != self.dtype:
            return False
        if self.torch:
            return Version(torch_version.split("+")[0]) in SpecifierSet(self.torch)
        return True


def load(path: Path, known_behaviours) -> list[Deviation]:
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeviationsError(f"{where}: no such file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DeviationsError(f"{where}: not valid TOML ({exc})") from None
    entries = data.get("deviation", [])
    if set(data) - {"deviation"} or not isinstance(entries, list):
        raise DeviationsError(f"{where}: expected only [[deviation]] tables")
    out = []
    for n, entry in enumerate(entries, 1):
        label = f"{where}: deviation {n}"
        if not isinstance(entry, dict):
            raise DeviationsError(f"{label}: expected a table")
        unknown = set(entry) - FIELDS
        if unknown:
            raise DeviationsError(f"{label}: unknown field(s) {sorted(unknown)}")
        for required in ("behaviour", "reason"):
            if not isinstance(entry.get(required), str) or not entry[required].strip():
                raise DeviationsError(f"{label}: needs a non-empty {required!r}")
        if not all(isinstance(v, str) for v in entry.values()):
            raise DeviationsError(f"{label}: every field must be a string")
        if entry["behaviour"] not in known_behaviours:
            raise DeviationsError(f"{label}: unknown behaviour {entry['behaviour']!r}")
        if "torch" in entry:
            try:
                SpecifierSet(entry["torch"])
            except InvalidSpecifier:
                raise DeviationsError(
                    f"{label}: torch range {entry['torch']!r} is not a version specifier like '>=2.11,<2.14'"
                ) from None
        out.append(Deviation(**entry))
    return out


def pytest_addoption(parser):
    parser.getgroup("torch-conformance").addoption(
        "--known-deviations",
        action="append",
        default=None,
        metavar="FILE",
        help=f"TOML file of expected failures, repeatable (one per device or torch version, say); "
        f"default: ./{DEFAULT_FILE} if present",
    )


def pytest_configure(config):
    paths = [Path(p) for p in config.getoption("known_deviations") or ()]
    default = Path(config.rootpath, DEFAULT_FILE)
    if not paths and default.exists():
        paths = [default]
    if not paths:
        return
    from conformance import catalogue

    try:
        config.stash[DEVIATIONS] = [d for path in paths for d in load(path, catalogue.behaviours())]
    except DeviationsError as exc:
        raise pytest.UsageError(f"--known-deviations: {exc}") from None


def pytest_collection_modifyitems(config, items):
    found = config.stash.get(DEVIATIONS, None)
    if not found:
        return
    import torch

    for item in items:
        identity = identity_of(item)
        if identity is None:
            continue
        for dev in found:
            if dev.matches(identity.behaviour, identity.device, identity.dtype, torch.__version__, identity.mode, item.nodeid):
                reason = f"known deviation: {dev.reason}" + (f" ({dev.link})" if dev.link else "")
                item.add_marker(pytest.mark.xfail(reason=reason, strict=False))
                break


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """An item expected to fail stops at its first failing example: shrinking it costs seconds
    (hundreds of collectives for a distributed item, a compile per step for a compiled one), and
    the deviation's reason holds the minimal repro already. A stale deviation still shows: the
    item then passes every example."""
    test = getattr(item, "obj", None)
    before = getattr(test, "_hypothesis_internal_use_settings", None)
    if before is None or item.get_closest_marker("xfail") is None:
        return (yield)
    from hypothesis import Phase, settings

    test._hypothesis_internal_use_settings = settings(
        before, phases=[p for p in before.phases if p not in (Phase.shrink, Phase.explain)]
    )
    try:
        return (yield)
    finally:
        test._hypothesis_internal_use_settings = before
