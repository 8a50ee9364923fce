"""pytest plugin: record every behaviour result as one JSON line, then render the report.

Every report of an item carries its identity (behaviour, device, dtype, mode: fixed at
collection by conformance/harness/identity.py); workers (and serial runs) add what only they
know to the call report: Hypothesis examples, generated features, falsifying example.

Each run writes its own file, <report-dir>/runs/<start time>-<pid>.jsonl, on the controller
alone: one line per finished test item, flushed as it goes, so a run killed halfway (even by
SIGKILL) keeps what finished, readable, and two runs in one report directory never write to one
file. At the end the run rewrites its header with the end time, then publishes the complete
file as <report-dir>/results.jsonl and renders index.html from it, each written whole to a
temporary file and moved into place: the published files are always one whole run's.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tempfile
from pathlib import Path

import pytest

from reports import schema
from reports.stats import STATS

DEFAULT_DIR = "conformance-report"
_BLOB = re.compile(r"@reproduce_failure\('([^']+)', (b'[^']*'|b\"[^\"]*\")\)")
_MAX_TEXT = 4000
_TIMEOUT = re.compile(r"Failed: Timeout \(?>?[\d.]+s")


def pytest_addoption(parser):
    group = parser.getgroup("torch-conformance report")
    group.addoption(
        "--report-dir",
        default=DEFAULT_DIR,
        metavar="DIR",
        help=f"where results.jsonl and index.html go (default: ./{DEFAULT_DIR})",
    )
    group.addoption("--no-report", action="store_true", help="record and render nothing")
    group.addoption(
        "--source-label",
        default=None,
        metavar="LABEL",
        help="name of this run in merged reports (default: host and torch version)",
    )


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    if hasattr(config, "workerinput") or config.getoption("no_report") or config.getoption("collectonly"):
        return
    recorder = Recorder(config, Path(config.getoption("report_dir")))
    recorder.check_writable()
    config.pluginmanager.register(recorder, "conformance-recorder")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Worker side: the call phase's Hypothesis figures and failure details travel with its report."""
    report = yield
    if report.when == "call":
        info = dict(item.stash.get(STATS, {}))
        if report.failed:
            info.update(_failure_details(report, call))
        report.user_properties.append((schema.RUN_DETAILS, info))
    return report


def _first_failure(call):
    """The exception a failed call raised; of several distinct failures (Hypothesis raises an
    ExceptionGroup when one test fails in two ways), the first."""
    exc = call.excinfo.value if call is not None and call.excinfo is not None else None
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _failure_details(report, call=None) -> dict:
    text = report.longreprtext or ""
    first = _first_failure(call)
    if first is not None and not any(line.startswith("E ") for line in text.splitlines()):
        # no pytest "E" lines (an exception group): read the first failure and the notes
        # Hypothesis attached to it (its falsifying example) instead
        message = str(first).strip().splitlines()
        notes = "\n".join(getattr(first, "__notes__", ()))
        text = f"E {type(first).__name__}: {message[0] if message else ''}\n" + "\n".join(f"E {n}" for n in notes.splitlines())
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
        self.results = directory / "results.jsonl"  # the last finished run's, published whole
        self.run_file: Path | None = None  # this run's own file, written as it goes
        self.pending: dict[str, dict] = {}
        self.file = None
        self.header = None
        self.count = 0
        self.failed = 0  # results that failed, errored, crashed or timed out

    def check_writable(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.dir, prefix=".probe-"):
                pass
        except OSError as exc:
            raise pytest.UsageError(f"--report-dir {str(self.dir)!r}: not writable ({exc.strerror or exc})") from None

    # -- recording -------------------------------------------------------------------
    def _open(self) -> None:
        run = self.config.stash.get(schema.RUN, {})
        self.header = schema.environment(
            profile=run.get("profile", "default"),
            seed=run.get("seed"),
            devices=run.get("devices", []),
            argv=["pytest", *self.config.invocation_params.args],
        )
        self.header.update({k: run[k] for k in ("backends", "fault", "max_examples") if run.get(k)})
        self.header["replay"] = replay_arguments(self.config)
        if self.config.getoption("source_label"):
            self.header["source"] = self.config.getoption("source_label")
        runs = self.dir / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        stamp = self.header["start"].replace("-", "").replace(":", "").split(".")[0].split("+")[0]
        self.run_file = runs / f"{stamp}-{os.getpid()}.jsonl"
        # "x": a name already taken is never written over (a pid reused within the same second)
        self.file = open(self.run_file, "x", encoding="utf-8")  # noqa: SIM115 - open for the whole run, closed at its end
        self._write(self.header)

    def _write(self, record: dict) -> None:
        # ASCII escapes keep any text writable, lone surrogates from undecodable bytes included
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def pytest_runtest_logreport(self, report):
        entry = self.pending.setdefault(report.nodeid, {"nodeid": report.nodeid, "duration": 0.0})
        for key, value in getattr(report, "user_properties", ()):
            if key in (schema.IDENTITY, schema.RUN_DETAILS):
                entry.update({k: v for k, v in value.items() if v is not None or k not in entry})
            elif key == schema.OBSERVATION:
                entry.setdefault("observations", {})[value[0]] = value[1]
            elif key == schema.FINGERPRINT:
                entry["fingerprint"] = value
            elif key in (schema.CUDA_PEAK_MB, schema.POISONED):
                entry[key] = value
        entry["duration"] = round(entry["duration"] + (getattr(report, "duration", 0.0) or 0.0), 6)
        node = getattr(report, "node", None)
        if node is not None:
            entry["worker"] = node.gateway.id if hasattr(node, "gateway") else str(node)
        status = _status(report)
        if status is not None and schema.more_severe(status, entry.get("status")):
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
        if "behaviour" not in entry and entry.get("status") != "crashed":
            return  # not a behaviour test (the suite's own tests)
        # A worker that died before its item's setup report left no identity: the item is
        # recorded all the same, as crashed, with what its node id says.
        entry.setdefault("behaviour", None)
        if self.file is None:
            self._open()
        entry["type"] = "result"
        entry["repro_line"] = _repro_line(entry, self.header)
        self._write(entry)
        self.count += 1
        self.failed += entry.get("status") in schema.BAD

    # -- finishing ---------------------------------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if self.file is None:
            return
        for entry in list(self.pending.values()):  # started but never finished: the worker died
            entry.setdefault("status", "crashed")
            self._finish(entry)
        self.file.close()
        if self.failed and not self.header.get("fault") and not self.config.getoption("auto_mutants", None):
            # a real failure: the environment a PyTorch bug report asks for (the report's issue block)
            self.header["collect_env"] = _collect_env()
        self.header["end"] = schema.now()
        self.header["exit_status"] = int(exitstatus)
        self.header["interrupted"] = (
            bool(session.shouldstop or session.shouldfail) or int(exitstatus) == pytest.ExitCode.INTERRUPTED
        )
        _rewrite_first_line(self.run_file, self.header)
        schema.atomic_write(self.results, self.run_file.read_text(encoding="utf-8"))
        from reports import render
        from reports.strength import StrengthError

        # a strength file left in the report directory (tools.killmatrix --auto --json) is shown too
        strength = self.dir / "strength.json"
        try:
            render.write_html([self.run_file], self.dir / "index.html", strength if strength.exists() else None)
        except StrengthError as exc:
            render.write_html([self.run_file], self.dir / "index.html")
            self.strength_error = str(exc)

    def pytest_terminal_summary(self, terminalreporter):
        if self.file is not None:
            terminalreporter.write_sep(
                "-",
                f"conformance report: {self.dir / 'index.html'} ({self.count} results in {self.results};"
                f" this run's own file: {self.run_file})",
            )
        if getattr(self, "strength_error", None):
            terminalreporter.write_line(f"strength not shown: {self.strength_error}")


def _collect_env() -> str | None:
    """torch.utils.collect_env's summary (what PyTorch's issue template asks for), or None where
    it cannot run here."""
    try:
        from torch.utils import collect_env

        return collect_env.get_pretty_env_info()
    except Exception:  # a missing tool (pip, nvidia-smi) must not cost the report
        return None


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


# Options that choose which items run, or how their output looks, but not what an item does:
# the repro line names one item and leaves these out. Every other option on the command line
# (devices, backends, plugins, faults, profiles, example counts, execution modes, and any option
# added later) is carried over as given.
_NOT_REPLAYED = frozenset(
    {
        "keyword", "markexpr", "numprocesses", "maxprocesses", "dist", "tx", "rsyncdir", "looponfail",
        "report_dir", "no_report", "exitfirst", "maxfail", "verbose", "capture", "tbstyle", "showlocals",
        "reportchars", "lf", "failedfirst", "last_failed_no_failures", "cacheclear", "cacheshow", "durations",
        "durations_min", "xmlpath", "color", "code_highlight", "collectonly", "splits", "group",
        "splitting_algorithm", "store_durations", "durations_path", "clean_durations", "hypothesis_verbosity",
        "hypothesis_show_statistics", "usepdb", "trace", "pastebin", "deselect", "ignore", "ignore_glob",
        "behaviour", "area",
    }
)  # fmt: skip


def replay_arguments(config) -> list[str]:
    """The command line's options that change what an item does, as given (parsed with pytest's
    own option table): devices, backends, -p plugins, --inject-fault, profiles, seeds, counts..."""
    parser = getattr(config._parser, "optparser", None)
    if parser is None:
        return []
    actions = {s: a for a in parser._actions for s in a.option_strings}
    tokens, kept = list(config.invocation_params.args), []
    i = 0
    while i < len(tokens):
        token, i = str(tokens[i]), i + 1
        if not token.startswith("-") or token == "-":
            continue  # a test path or node id: the repro line names its own
        name, value = token.split("=", 1) if token.startswith("--") and "=" in token else (token, None)
        action = actions.get(name)
        if action is None and not name.startswith("--") and len(name) > 2:  # -pNAME, -n2, -xvs
            action, value = actions.get(name[:2]), name[2:]
            name = name[:2]
            if action is not None and action.nargs == 0:
                continue  # a cluster of flags such as -xvs: none of them changes an item
        if action is None:
            kept.append(token)  # unknown to the table (a plugin's): carried over as given
            continue
        takes_value = action.nargs != 0
        if takes_value and value is None and i < len(tokens):
            value, i = str(tokens[i]), i + 1
        if action.dest in _NOT_REPLAYED:
            continue
        # --name=value: pytest would read a separate value that looks like a path as a test path
        kept.extend(([f"{name}={value}"] if name.startswith("--") else [name, value]) if takes_value else [name])
    return kept


def repro_line(config, nodeid: str, device: str | None) -> str:
    """The repro line of one item of this run, as its result record will carry it."""
    run = config.stash.get(schema.RUN, {})
    header = {"replay": replay_arguments(config), "profile": run.get("profile", "default"), "seed": run.get("seed")}
    return _repro_line({"nodeid": nodeid, "device": device}, header)


def _repro_line(entry: dict, header: dict) -> str:
    replay = header.get("replay")
    if replay is None:  # a results file from before the replay arguments were recorded
        replay = [f"--backend={b['module']}" for b in header.get("backends") or ()]
        replay += [f"--inject-fault={header['fault']}"] if header.get("fault") else []
        replay += [f"--max-examples={header['max_examples']}"] if header.get("max_examples") else []
    args = [a for a in replay if not a.startswith("--device=")]  # the item's own device, not the run's list
    if entry.get("device"):
        args.append(f"--device={entry['device']}")
    if not any(a.startswith("--hypothesis-profile=") for a in args):
        args.append(f"--hypothesis-profile={header['profile']}")
    seeded = any(a.startswith("--hypothesis-seed=") for a in args)
    if header.get("seed") is not None and header["profile"] not in ("ci", "faults") and not seeded:
        args.append(f"--hypothesis-seed={header['seed']}")
    return " ".join(["pytest", shlex.quote(entry["nodeid"]), *map(shlex.quote, args)])


def _rewrite_first_line(path: Path, header: dict) -> None:
    """Replace the header line; the file is replaced whole (schema.atomic_write)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[0] = json.dumps(header) + "\n"
    schema.atomic_write(path, "".join(lines))
