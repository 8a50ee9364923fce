"""One screen per failure: a failing behaviour item's output opens with what a person needs.

Note [One screen per failure]
A failing behaviour item prints, first and in this order:
1. the falsifying example: Hypothesis' "Falsifying example" (or "Failing test case") and its
   draws, which print specs, Samples and Operations compactly (strategies/tensors.py);
2. the failing check's message;
3. the repro line: the pytest command that replays the one item (the report's `repro_line`);
4. the standalone repro script (Note [Repros] in conformance/repro/__init__.py), or why there is none.
Then where it failed: each traceback entry's location and failing line, not the source of every
frame, and captured output as pytest prints it. `-v` (or an explicit --tb) gives pytest's full
traceback after the four, Hypothesis' explanation among it. With torch's compile logs silenced
(conformance/harness/compiled.py) a compiled failure fits in under 80 lines.

The worker that ran the item knows the exception; the controller knows the command line the
repro line replays: the worker puts the example and message on the report, the controller
writes the screen, after every other plugin (JUnit XML, the recorder) has read the report as
pytest made it.
"""

from __future__ import annotations

import pytest

from reports.schema import IDENTITY, RUN_DETAILS

_SCREEN = "conformance_screen"  # report attribute: travels from an xdist worker with the report
# Hypothesis' notes after the example: shown with -v only
_LATER_NOTES = ("Explanation:", "You can reproduce")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed and call.excinfo is not None:
        exc = call.excinfo.value
        notes = [str(n) for n in getattr(exc, "__notes__", ())]
        # Hypothesis starts its reproduce_failure note with a blank line
        cut = next((i for i, n in enumerate(notes) if n.lstrip("\n").startswith(_LATER_NOTES)), len(notes))
        example = _without_fixture_arguments("\n".join(notes[:cut]), item)
        setattr(report, _SCREEN, {"example": example, "message": f"{call.excinfo.typename}: {exc}"})
    return report


def _without_fixture_arguments(example: str, item) -> str:
    """The example without the one-line arguments that carry none of it: pytest fixtures that are
    not parameters (`request=<FixtureRequest ...>`) and `data=data(...)`, whose draws follow."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    noise = {name for name in getattr(item, "fixturenames", ()) if name not in params}
    kept = []
    for line in example.splitlines():
        name, equals, value = line.strip().partition("=")
        if equals and line.startswith("    ") and line.endswith(",") and (name in noise or value == "data(...),"):
            continue
        kept.append(line)
    return _one_line_call("\n".join(kept))


def _one_line_call(example: str, width: int = 160) -> str:
    """Hypothesis' `Failing test case: test(` with one argument a line, on one line where it fits."""
    lines = example.splitlines()
    end = next((i for i, line in enumerate(lines) if line == ")"), None)
    if not lines or not lines[0].endswith("(") or end is None:
        return example
    arguments = [line.strip() for line in lines[1:end]]
    joined = lines[0] + " ".join(arguments).rstrip(",") + ")"
    return "\n".join([joined, *lines[end + 1 :]]) if len(joined) <= width else example


def pytest_configure(config):
    # the controller (or a run without workers) writes what the terminal shows; an explicit --tb
    # or --tb=no/line is the user's choice of output, left alone
    if not hasattr(config, "workerinput") and config.getoption("tbstyle", "auto") == "auto":
        config.pluginmanager.register(ScreenWriter(config), "conformance-screen")


class ScreenWriter:
    def __init__(self, config):
        self.config = config

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report):
        screen = getattr(report, _SCREEN, None)
        if screen is None or report.when != "call" or not report.failed or not hasattr(report.longrepr, "toterminal"):
            return
        properties = {}
        for key, value in report.user_properties:
            properties.setdefault(key, {}).update(value if isinstance(value, dict) else {})
        identity = properties.get(IDENTITY)
        if identity is None:
            return  # not a behaviour test (the suite's own tests)
        from conformance.harness.repro import SECTION
        from reports.recorder import repro_line

        written = properties.get(RUN_DETAILS, {})
        head = [screen["example"], ""] if screen["example"] else []
        head += [screen["message"], "", f"repro line: {repro_line(self.config, report.nodeid, identity.get('device'))}"]
        if "repro" in written or "repro_missing" in written:
            head += ["", f"{SECTION}:", written.get("repro") or f"(none: {written['repro_missing']})"]
            report.sections = [s for s in report.sections if s[0] != SECTION]
        report.longrepr = Screen(head, report.longrepr, full=self.config.getoption("verbose") > 0)


class Screen:
    """A failure's longrepr: the head (Note [One screen per failure]), then where it failed, or
    with `full` the whole traceback pytest made."""

    def __init__(self, head: list[str], original, *, full: bool):
        self.head, self.original, self.full = head, original, full
        self.reprcrash = getattr(original, "reprcrash", None)  # the short summary's one line

    def toterminal(self, tw) -> None:
        for line in "\n".join(self.head).splitlines():
            tw.line(line)
        tw.line("")
        if self.full or not hasattr(self.original, "reprtraceback"):
            self.original.toterminal(tw)
            return
        for line in _where(self.original.reprtraceback.reprentries):
            tw.line(line)

    def __str__(self) -> str:
        import io

        from _pytest._io import TerminalWriter

        out = io.StringIO()
        self.toterminal(TerminalWriter(file=out))
        return out.getvalue()


def _where(entries) -> list[str]:
    """`where it failed:`, one line per traceback entry: location and failing line; the suite's
    harness frames and frames with no failing line (a test's decorators) are left to -v."""
    kept = []
    for i, entry in enumerate(entries):
        location = getattr(entry, "reprfileloc", None)
        # "???" is pytest's stand-in for a source it cannot show (Hypothesis' wrapper)
        lines = [line[1:].strip() for line in getattr(entry, "lines", ()) if line.startswith(">")]
        lines = [line for line in lines if line != "???" and not line.startswith("@")]  # "@": a decorator
        last = i == len(entries) - 1
        if location is None or (not last and (not lines or "conformance/harness/" in str(location.path))):
            continue
        message = f" ({location.message})" if location.message else ""
        kept.append(f"  {location.path}:{location.lineno}{message}" + (f": {lines[0]}" if lines else ""))
    return ["where it failed:", *kept] if kept else []
