"""pytest plugin: record every behaviour result as one JSON line, then render the report.

Workers (and serial runs) attach what only they know to each report's user_properties:
behaviour, device, dtype, Hypothesis examples, generated features, falsifying example. The
controller alone writes <report-dir>/results.jsonl, one line per finished test item, flushed
as it goes, so a run killed halfway keeps what finished. At the end it rewrites the
environment header with the end time (atomically) and renders index.html beside it.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest

from reports import deviations as deviations_mod
from reports import environment
from reports.stats import STATS

DEFAULT_DIR = "conformance-report"
DEVIATIONS_FILE = "known_deviations.toml"
KEY = "conformance"
_BLOB = re.compile(r"@reproduce_failure\('([^']+)', (b'[^']*'|b\"[^\"]*\")\)")
_MAX_TEXT = 4000
_TIMEOUT = re.compile(r"Failed: Timeout \(?>?[\d.]+s")


def pytest_addoption(parser):
    group = parser.getgroup("torch-conformance report")
    group.addoption("--report-dir", default=DEFAULT_DIR, metavar="DIR",
                    help=f"where results.jsonl and index.html go (default: ./{DEFAULT_DIR})")
    group.addoption("--no-report", action="store_true", help="record and render nothing")
    group.addoption("--known-deviations", default=None, metavar="FILE",
                    help=f"TOML file of expected failures (default: ./{DEVIATIONS_FILE} if present)")
    group.addoption("--source-label", default=None, metavar="LABEL",
                    help="name of this run in merged reports (default: host and torch version)")


def _is_worker(config) -> bool:
    return hasattr(config, "workerinput")


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    path = config.getoption("known_deviations")
    default = Path(config.rootpath, DEVIATIONS_FILE)
    if path or default.exists():
        from conformance import catalogue

        try:
            config.stash[DEVIATIONS] = deviations_mod.load(Path(path) if path else default,
                                                           catalogue.behaviours())
        except deviations_mod.DeviationsError as exc:
            raise pytest.UsageError(f"--known-deviations: {exc}") from None
    if _is_worker(config) or config.getoption("no_report") or config.getoption("collectonly"):
        return
    recorder = Recorder(config, Path(config.getoption("report_dir")))
    recorder.check_writable()
    config.pluginmanager.register(recorder, "conformance-recorder")


DEVIATIONS = pytest.StashKey[list]()


def _cell(item):
    from conformance.plugin import behaviour_of
    from strategies.dtypes import dtype_name

    params = getattr(item, "callspec", None)
    params = params.params if params else {}
    dtype = params.get("dtype")
    return behaviour_of(item), params.get("device"), dtype_name(dtype) if dtype is not None else None


def pytest_collection_modifyitems(config, items):
    found = config.stash.get(DEVIATIONS, None)
    if not found:
        return
    import torch

    for item in items:
        behaviour, device, dtype = _cell(item)
        for dev in found:
            if behaviour and dev.matches(behaviour, device, dtype, torch.__version__):
                reason = f"known deviation: {dev.reason}" + (f" ({dev.link})" if dev.link else "")
                item.add_marker(pytest.mark.xfail(reason=reason, strict=False))
                break


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    behaviour, device, dtype = _cell(item)
    if behaviour is None:
        return report
    info = {"behaviour": behaviour, "device": device, "dtype": dtype}
    if report.when == "call":
        info.update(item.stash.get(STATS, {}))
        if report.failed:
            info.update(_failure_details(report))
    report.user_properties.append((KEY, info))
    return report


def _failure_details(report) -> dict:
    text = report.longreprtext or ""
    example, in_example = [], False
    for line in text.splitlines():
        body = line[2:] if line.startswith("E ") else line
        if body.strip().startswith(("Falsifying example", "Failing test case")):
            in_example = True
        if in_example:
            if body.strip().startswith(("You can reproduce", "Explanation:")):
                break
            example.append(body.rstrip())
    error = next((line[2:].strip() for line in text.splitlines() if line.startswith("E ")), "")
    blob = _BLOB.search(text)
    return {
        "error": error[:_MAX_TEXT],
        "example": "\n".join(example).strip()[:_MAX_TEXT] or None,
        "blob": f"@reproduce_failure({blob.group(1)!r}, {blob.group(2)})" if blob else None,
    }


class Recorder:
    """Controller-side writer of results.jsonl and index.html."""

    def __init__(self, config, directory: Path):
        self.config = config
        self.dir = directory
        self.results = directory / "results.jsonl"
        self.pending: dict[str, dict] = {}
        self.file = None
        self.header = None
        self.count = 0

    def check_writable(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.dir, prefix=".probe-"):
                pass
        except OSError as exc:
            raise pytest.UsageError(f"--report-dir {str(self.dir)!r}: not writable "
                                    f"({exc.strerror or exc})") from None

    # -- recording -------------------------------------------------------------------
    def _open(self) -> None:
        from conformance.plugin import DEVICES, run_profile, run_seed

        self.header = environment.describe(
            profile=run_profile(self.config), seed=run_seed(self.config),
            devices=[name for name, _ in self.config.stash[DEVICES]],
            argv=["pytest", *self.config.invocation_params.args])
        if self.config.getoption("source_label"):
            self.header["source"] = self.config.getoption("source_label")
        self.file = open(self.results, "w", encoding="utf-8")
        self._write(self.header)

    def _write(self, record: dict) -> None:
        # ASCII escapes keep any text writable, lone surrogates from undecodable bytes included
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def pytest_runtest_logreport(self, report):
        entry = self.pending.setdefault(report.nodeid, {"nodeid": report.nodeid, "duration": 0.0})
        for key, value in getattr(report, "user_properties", ()):
            if key == KEY:
                entry.update({k: v for k, v in value.items() if v is not None or k not in entry})
            elif key == "observation":
                entry.setdefault("observations", {})[value[0]] = value[1]
            elif key in ("cuda_peak_mb", "poisoned"):
                entry[key] = value
        entry["duration"] = round(entry["duration"] + (getattr(report, "duration", 0.0) or 0.0), 6)
        node = getattr(report, "node", None)
        if node is not None:
            entry["worker"] = node.gateway.id if hasattr(node, "gateway") else str(node)
        status = _status(report)
        if status is not None and _RANK[status] >= _RANK.get(entry.get("status"), -1):
            entry["status"] = status
            if status in ("skipped", "expected failure"):
                entry["reason"] = _skip_reason(report)
            if status in ("error", "crashed", "timeout") and "error" not in entry:
                entry["error"] = _first_error_line(report)
        if getattr(report, "wasxfail", None) is not None and report.passed:
            entry["stale_deviation"] = report.wasxfail
        if report.when in ("teardown", "???"):
            self._finish(self.pending.pop(report.nodeid))

    def _finish(self, entry: dict) -> None:
        if "behaviour" not in entry:
            entry.update(_behaviour_from_nodeid(entry["nodeid"]))
            if entry.get("behaviour") is None:
                return  # not a behaviour test (the suite's own tests)
        if self.file is None:
            self._open()
        entry["type"] = "result"
        entry["repro"] = _repro(entry, self.header)
        self._write(entry)
        self.count += 1

    # -- finishing ---------------------------------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if self.file is None:
            return
        for entry in list(self.pending.values()):  # started but never finished: the worker died
            entry.setdefault("status", "crashed")
            self._finish(entry)
        self.file.close()
        self.header["end"] = environment.now()
        self.header["exit_status"] = int(exitstatus)
        self.header["interrupted"] = bool(session.shouldstop or session.shouldfail) or \
            int(exitstatus) == pytest.ExitCode.INTERRUPTED
        _rewrite_first_line(self.results, self.header)
        from reports import render

        render.write_html([self.results], self.dir / "index.html")

    def pytest_terminal_summary(self, terminalreporter):
        if self.file is not None:
            terminalreporter.write_sep("-", f"conformance report: {self.dir / 'index.html'} "
                                            f"({self.count} results in {self.results})")


_RANK = {"passed": 0, "skipped": 1, "expected failure": 1, "failed": 2, "error": 3, "timeout": 4, "crashed": 5}


def _status(report) -> str | None:
    if report.when == "???":
        return "crashed"
    xfail = getattr(report, "wasxfail", None) is not None
    if report.when == "setup":
        if report.skipped:
            return "expected failure" if xfail else "skipped"
        return "error" if report.failed else None
    if report.when == "call":
        if report.failed and _TIMEOUT.search(report.longreprtext or ""):
            return "timeout"
        if report.skipped:
            return "expected failure" if xfail else "skipped"
        return "failed" if report.failed else "passed"
    return "error" if report.failed else None


def _skip_reason(report) -> str:
    if getattr(report, "wasxfail", None):
        return report.wasxfail
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _first_error_line(report) -> str:
    text = report.longreprtext or ""
    lines = [line[2:].strip() for line in text.splitlines() if line.startswith("E ")]
    return (lines[0] if lines else text.strip().splitlines()[-1] if text.strip() else "")[:_MAX_TEXT]


def _behaviour_from_nodeid(nodeid: str) -> dict:
    """Recover behaviour/device/dtype of an item the controller never saw (a crashed worker)."""
    import importlib

    path, _, rest = nodeid.partition("::")
    name, _, params = rest.partition("[")
    parts = params.rstrip("]").split("-") if params else []
    try:
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        marks = [m for m in getattr(getattr(module, name), "pytestmark", []) if m.name == "behaviour"]
    except (ImportError, AttributeError):
        marks = []
    return {"behaviour": marks[0].args[0] if marks else None,
            "device": parts[0] if parts else None, "dtype": parts[1] if len(parts) > 1 else None}


def _repro(entry: dict, header: dict) -> str:
    args = [f"pytest '{entry['nodeid']}'"]
    if entry.get("device"):
        args.append(f"--device {entry['device']}")
    args.append(f"--hypothesis-profile {header['profile']}")
    if header.get("seed") is not None and header["profile"] not in ("ci", "faults"):
        args.append(f"--hypothesis-seed {header['seed']}")
    return " ".join(args)


def _rewrite_first_line(path: Path, header: dict) -> None:
    """Replace the header line: write a temporary file beside it, then move it into place."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[0] = json.dumps(header) + "\n"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".results-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.writelines(lines)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
