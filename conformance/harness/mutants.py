"""--auto-mutants=DIR: measure each item's strength against the automatic API mutants (Note
[Automatic API mutants] in conformance/mutants/__init__.py).

After an item passes on stock torch, it runs once more with every dry mutant of its behaviour's
APIs counting where it would fire, then once per mutant that fired (and per mutant that must be
installed to be measured), with that mutant installed. A failing run kills the mutant; a mutant
killed by one item of a behaviour is not run on its other items. Each worker writes what it
measured to DIR/auto-<worker>.json; `python -m tools.killmatrix --auto` runs this and reports.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from conformance.harness.identity import identity_of
from reports.schema import atomic_write

STATE = pytest.StashKey[dict]()
RUN_SECONDS = 60  # one mutated run of one item; a mutant that hangs the test is killed by this


def pytest_addoption(parser):
    group = parser.getgroup("torch-conformance")
    group.addoption(
        "--auto-mutants",
        default=None,
        metavar="DIR",
        help="after each passing item, run it against every automatic API mutant of its behaviour; write DIR/auto-<worker>.json",
    )
    group.addoption(
        "--auto-operators",
        default=None,
        metavar="ID[,ID...]",
        help="with --auto-mutants: only these operators (conformance/mutants/operators.py), e.g. result.constant",
    )
    group.addoption(
        "--auto-classes",
        default="all",
        choices=["all", "none"],
        help="with --auto-mutants: also the one-input-class variant of each operator (default) or not",
    )


def pytest_configure(config):
    out = config.getoption("auto_mutants", None)
    if not out:
        return
    from conformance.mutants.operators import OPERATORS

    chosen = config.getoption("auto_operators")
    operators = None
    if chosen:
        operators = {name.strip() for name in chosen.split(",") if name.strip()}
        unknown = sorted(operators - set(OPERATORS))
        if unknown:
            raise pytest.UsageError(f"--auto-operators: unknown operator(s) {', '.join(unknown)}; known: {', '.join(OPERATORS)}")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    config.stash[STATE] = {
        "path": Path(out) / f"auto-{worker}.json",
        "operators": operators,
        "classes": config.getoption("auto_classes") == "all",
        "behaviours": {},
    }


def pytest_unconfigure(config):
    state = config.stash.get(STATE, None)
    if state is None:
        return
    state["path"].parent.mkdir(parents=True, exist_ok=True)
    atomic_write(state["path"], json.dumps(state["behaviours"], indent=1, sort_keys=True))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item):
    state = item.config.stash.get(STATE, None)
    identity = identity_of(item)
    if state is None or identity is None:
        return (yield)
    try:
        result = yield
    except BaseException as exc:
        if not isinstance(exc, pytest.skip.Exception):
            _record(state, identity.behaviour)["stock_failures"].append(item.nodeid)
        raise
    _measure(item, identity.behaviour, state)
    return result


def _record(state: dict, behaviour: str) -> dict:
    return state["behaviours"].setdefault(behaviour, {"items": [], "stock_failures": [], "mutants": {}, "no_mutants": {}})


def _measure(item, behaviour_id: str, state: dict) -> None:
    from conformance import catalogue
    from conformance.faults import Patcher
    from conformance.mutants import Tally, install, install_recorder, mutants_for

    behaviour = catalogue.behaviours().get(behaviour_id)
    if behaviour is None:
        return
    record = _record(state, behaviour_id)
    record["items"].append(item.nodeid)
    mutants, none = mutants_for(behaviour.apis)
    record["no_mutants"].update(none)
    mutants = [
        m
        for m in mutants
        if (state["operators"] is None or m.operator.id in state["operators"]) and (state["classes"] or not m.input_class)
    ]
    known = record["mutants"]
    for m in mutants:
        known.setdefault(
            m.id,
            {
                "api": m.entry.api,
                "operator": m.operator.id,
                "kind": m.operator.kind,
                "param": m.param,
                "class": m.input_class,
                "key": m.operator_key,
                "killed_by": None,
                "tally": Tally(),
            },
        )
    alive = [m for m in mutants if known[m.id]["killed_by"] is None]

    dry = [m for m in alive if m.dry]
    tallies = {m.id: Tally() for m in dry}
    patcher = Patcher()
    install_recorder(patcher, dry, tallies)
    try:
        outcome = _run(item)
    finally:
        patcher.undo()
    if outcome is not None:  # the item failed under the recorder alone: nothing can be measured
        record.setdefault("recorder_failures", []).append(f"{item.nodeid}: {outcome}")
        return
    for m in dry:
        known[m.id]["tally"].merge(tallies[m.id])

    for m in alive:
        if m.dry and not tallies[m.id].fired:
            continue
        tally = Tally()
        patcher = Patcher()
        install(patcher, m, tally, {})
        try:
            outcome = _run(item)
        finally:
            patcher.undo()
        if not m.dry:
            known[m.id]["tally"].merge(tally)
        if outcome is not None:
            known[m.id]["killed_by"] = {"item": item.nodeid, "error": outcome}


def _run(item) -> str | None:
    """Run the item once more; None if it passed (or skipped), else the first line of its error."""
    from conformance.harness.isolation import restore, snapshot
    from conformance.harness.seeding import item_examples

    before = snapshot()
    previous = signal.signal(signal.SIGALRM, _timed_out)
    signal.setitimer(signal.ITIMER_REAL, RUN_SECONDS)
    try:
        with item_examples(item):  # the examples the item drew in the run itself
            item.runtest()
    except pytest.skip.Exception:
        return None
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # a failed check, an error, Hypothesis' own failure reports
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[0][:200] if text else ''}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        restore(before)
    return None


class MutantTimeout(Exception):
    pass


def _timed_out(signum, frame):
    raise MutantTimeout(f"the item ran over {RUN_SECONDS} s under the mutant")


def pytest_sessionfinish(session):
    state = session.config.stash.get(STATE, None)
    if state is None:
        return
    for record in state["behaviours"].values():
        for entry in record["mutants"].values():
            if not isinstance(entry["tally"], dict):
                entry["tally"] = entry["tally"].as_dict()
