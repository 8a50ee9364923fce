"""A standalone, torch-only script for every failing behaviour item (Note [Repros] in
conformance/repro/__init__.py): printed with the failure, recorded for the report.

Only the final run of a failing Hypothesis example is traced (Hypothesis marks it `is_final`), so
passing examples cost nothing; a failing test without Hypothesis is run once more under the trace.
An execution mode's item (compiled, cross-device) is not traced: its script is written from the
comparison it made (conformance/repro/compared.py). A test marked `untraced(reason)` (one that
compiles: torch.compile under the trace's TorchFunctionMode traces the mode too and fails) is not
traced either; its failure says the reason instead of a script.
"""

from __future__ import annotations

import functools

import pytest
import torch

from conformance.harness.identity import identity_of
from reports.schema import RUN, RUN_DETAILS

SCRIPT = pytest.StashKey[dict]()
# what a failing check raises: errors, and pytest.fail's (pytest.raises that saw nothing raised);
# not skips or expected failures
_FAILURES = (Exception, pytest.fail.Exception)
SECTION = "standalone repro (torch only)"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    identity = identity_of(item)
    hypothesis = getattr(getattr(item, "obj", None), "hypothesis", None)
    if identity is None:
        return (yield)
    if identity.mode != "eager":  # an execution mode: written from what it compared, not traced
        return (yield from _compared(item, identity, hypothesis))
    if "rank_pool" in getattr(item, "fixturenames", ()):  # its ranks run in other processes: written from source
        return (yield from _ranks(item, identity, hypothesis))
    untraced = item.get_closest_marker("untraced")
    if untraced is not None:  # a test the trace would change (it compiles): written from its source
        try:
            return (yield from _on_final_run(hypothesis, lambda exc: _write_from_source(item, identity, exc, untraced.args[0])))
        except _FAILURES:
            item.stash.setdefault(SCRIPT, {"repro_missing": untraced.args[0]})
            raise
    from conformance.repro.trace import Trace

    if hypothesis is not None:
        inner = hypothesis.inner_test

        @functools.wraps(inner)  # Hypothesis names the test after the function it calls
        def traced(*args, **kwargs):
            from hypothesis.control import current_build_context

            if not current_build_context().is_final:
                return inner(*args, **kwargs)
            trace = Trace()
            args, kwargs = tuple(map(_recorded, args)), {k: _recorded(v) for k, v in kwargs.items()}
            try:
                with trace:
                    return inner(*args, **kwargs)
            except _FAILURES as exc:
                _write(item, identity, trace, exc)
                raise

        hypothesis.inner_test = traced
        try:
            return (yield)
        finally:
            hypothesis.inner_test = inner
    try:
        return (yield)
    except _FAILURES:
        trace = Trace()
        try:
            with trace:
                item.runtest()
        except _FAILURES as exc:
            _write(item, identity, trace, exc)
        raise


def _recorded(value):
    """A test's `data` keeps what it drew, for a script written from the test's source."""
    from hypothesis.strategies import DataObject

    from conformance.repro.calls import RecordedDraws

    return RecordedDraws(value) if isinstance(value, DataObject) else value


def _compared(item, identity, hypothesis):
    """An execution mode's item (compiled, cross-device): the final run of a failing example says
    what it compared (conformance.repro.calls.compared_example), and its script is written from
    that (conformance/repro/compared.py). torch.compile under a TorchFunctionMode traces
    differently, and a trace sees one side of the comparison."""
    from conformance.repro import calls

    def failed(exc):
        example = calls.current_compared_example()
        if example is not None and isinstance(exc, AssertionError):
            _write_compared(item, identity, example)
        else:  # the mode failed before or beside its comparison: nothing compared to write
            why = "no comparison was made" if example is None else f"it raised {type(exc).__name__}, not an AssertionError"
            item.stash[SCRIPT] = {"repro_missing": f"the failure is not the mode's comparison ({why}): {str(exc)[:200]}"}

    return (yield from _on_final_run(hypothesis, failed, calls.forget_compared_example))


def _ranks(item, identity, hypothesis):
    """A distributed item that runs tasks in rank processes: the final run of a failing example
    notes each run of the ranks (conformance.repro.calls.ranks_ran), and its script is written from
    the test's source and those runs (conformance/repro/source.py)."""
    from conformance.repro import calls

    def failed(exc):
        _write_ranks(item, identity, exc, calls.rank_runs())

    return (yield from _on_final_run(hypothesis, failed, calls.forget_rank_runs))


def _on_final_run(hypothesis, failed, forget=lambda: None):
    """Run the item with `failed(exc)` called where the final run of a Hypothesis example fails;
    `forget()` clears what a run noted, before the final run and after the item. The final run's
    `data` keeps what it drew."""
    if hypothesis is None:
        return (yield)
    inner = hypothesis.inner_test

    @functools.wraps(inner)
    def final_run_written(*args, **kwargs):
        from hypothesis.control import current_build_context

        if not current_build_context().is_final:
            return inner(*args, **kwargs)
        forget()
        args, kwargs = tuple(map(_recorded, args)), {k: _recorded(v) for k, v in kwargs.items()}
        try:
            return inner(*args, **kwargs)
        except _FAILURES as exc:
            failed(exc)
            raise

    hypothesis.inner_test = final_run_written
    try:
        return (yield)
    finally:
        hypothesis.inner_test = inner
        forget()


def _write_ranks(item, identity, exc, runs) -> None:
    from conformance.repro.run import _verify
    from conformance.repro.source import render

    header, backends = _header(item, identity)
    fails_with = _fails_with(exc)

    def write():
        script = render(exc, runs, header=header, backends=backends)
        _verify(script, fails_with)
        return script

    _stash(item, write, fails_with)


def _fails_with(exc) -> str:
    """What a script must raise: a script spells pytest.raises with try/except, which raises AssertionError."""
    return "AssertionError" if isinstance(exc, pytest.fail.Exception) else type(exc).__name__


def _stash(item, write, fails_with: str, checked_on_stock: bool = False) -> None:
    """The item's script: `write()` (which verified it where the test failed), then checked on
    stock torch unless `write` did; or why there is none. The writer's own failure never hides
    the test's."""
    from conformance.repro.spelling import Unwritable

    try:
        script = write()
        stock = None if checked_on_stock else _on_stock_torch(item.config, script)
        if stock is not None:
            raise Unwritable(f"the script also fails on stock torch ({stock})")
        item.stash[SCRIPT] = {"repro": script, "repro_fails_with": fails_with}
    except Unwritable as why:
        item.stash[SCRIPT] = {"repro_missing": str(why)}
    except Exception as bug:
        item.stash[SCRIPT] = {"repro_missing": f"the script writer failed ({type(bug).__name__}: {bug})"}


def _from_source(exc, header, backends, fails_with) -> str:
    """A test the trace cannot write (what it checks was computed in Python, or by code of the
    test that torch called back): its body written from its source (conformance/repro/source.py)."""
    from conformance.repro.run import _verify
    from conformance.repro.source import render

    script = render(exc, [], header=header, backends=backends)
    _verify(script, fails_with)
    return script


def _write_from_source(item, identity, exc, untraced: str) -> None:
    """A test marked untraced: its script written from its source, or the marker's reason and
    the source writer's for why there is none."""
    from conformance.repro.spelling import Unwritable

    header, backends = _header(item, identity)
    fails_with = _fails_with(exc)

    def write():
        try:
            return _from_source(exc, header, backends, fails_with)
        except Unwritable as source:
            raise Unwritable(f"{untraced}; written from the test's source: {source}") from None

    _stash(item, write, fails_with)


def _header(item, identity, backend: str | None = None) -> tuple[list[str], list[str]]:
    """The script's header comment lines and the backend modules it imports; `backend`: a
    torch.compile backend the script compiles with."""
    from conformance import catalogue

    behaviour = catalogue.behaviours().get(identity.behaviour)
    backends = item.config.stash.get(RUN, {}).get("backends", [])
    where = f"{identity.device or 'cpu'}"
    if backend:
        where += f", compiled with backend {backend!r} against eager"
    elif identity.mode == "cross-device":
        where += " against the CPU"
    versions = "".join(f", {b['module']} {b['version']}" for b in backends if b.get("version"))
    header = [f"Standalone repro: {identity.behaviour} on {where}"]
    keeps = "It raises where torch breaks the documented behaviour, runs through where it keeps it."
    header += [f"torch {torch.__version__}{versions}. {keeps}"]
    if behaviour is not None:
        documented = f'Documented: "{behaviour.quote}" ' if behaviour.quote else ""
        header += [behaviour.statement, f"{documented}{behaviour.doc}"]
    return [line for line in header if line is not None], [b["module"] for b in backends]


def _write_compared(item, identity, example) -> None:
    from conformance.repro.compared import render, verify_on_this_torch

    header, backends = _header(item, identity, example.backend)

    def write():
        script = render(example, header=header, device=identity.device, backends=backends)
        verify_on_this_torch(script)
        return script

    _stash(item, write, "AssertionError")


def _write(item, identity, trace, exc) -> None:
    from conformance.repro.spelling import Unwritable
    from conformance.repro.writing import render

    header, backends = _header(item, identity)
    fails_with = _fails_with(exc)

    def on_stock(script):
        return _on_stock_torch(item.config, script)

    def write():
        try:  # each form the writer tries is checked on stock torch as it is written
            return render(
                trace, exc, header=header, device=identity.device, backends=backends, fails_with=fails_with, on_stock=on_stock
            )
        except Unwritable as traced:
            try:
                script = _from_source(exc, header, backends, fails_with)
            except Unwritable as source:
                raise Unwritable(f"{traced}; written from the test's source: {source}") from None
            stock = on_stock(script)
            if stock is not None:
                raise Unwritable(f"the script also fails on stock torch ({stock})") from None
            return script

    _stash(item, write, fails_with, checked_on_stock=True)


def _on_stock_torch(config, script: str) -> str | None:
    """In a run with a catalogued fault injected, the script run with the fault taken out: what it
    raised, or None. Without a fault there is no stock torch to compare with."""
    from conformance import faults
    from conformance.harness.faults import PATCHER
    from conformance.repro.run import run_here

    patcher = config.stash.get(PATCHER, None)
    if patcher is None:
        return None
    patcher.undo()
    try:
        return run_here(script)
    finally:
        config.stash[PATCHER] = faults.inject(config.stash[RUN]["fault"])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed and SCRIPT in item.stash:
        written = item.stash[SCRIPT]
        report.sections.append((SECTION, written.get("repro") or f"(none: {written['repro_missing']})"))
        report.user_properties.append((RUN_DETAILS, written))
    return report
