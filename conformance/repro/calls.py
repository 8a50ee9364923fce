"""What the suite's own code tells a repro trace (Note [Repros] in conformance/repro/__init__.py).

The helpers of conformance/checks.py and the faults of conformance/faults use these to appear in a
script as what they stand for; nothing here knows how a script is written, so they depend on this
small module, not on the writer.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conformance.repro.trace import Trace

_ACTIVE: list[Trace] = []  # the traces running now, innermost last


@dataclass
class Record:
    name: str  # public dotted name: torch.add, torch.Tensor.view, torch.Tensor.grad.__get__
    args: tuple
    kwargs: dict
    result: object = None
    grad: bool = True
    inference: bool = False
    rng: bool = False  # the call drew from the CPU generator
    code: Callable | str | None = None  # how a helper call or pseudo-call is written ("{0}": the first argument)
    seed: int | None = None  # a seed point: torch.manual_seed(seed)
    where: tuple | None = None  # (code, line) of the test statement that made the call
    state: bool = False  # a setter of torch's global state: kept in every script
    checking: bool = False  # made inside an assertion helper (assert_close's own work): never written
    positions: dict = field(default_factory=dict)  # id(an in-memory file argument) -> its position at the call
    operation: object = None  # a declared Operation's call: written as its declared source, may write any argument
    wrote: set = field(default_factory=set)  # ids of the tensor arguments whose version counter the call moved


def active() -> Trace | None:
    return _ACTIVE[-1] if _ACTIVE else None


def public_call(name: str, function, original=None):
    """`function` (a fault's replacement of the public torch function `name`, `original`) as the
    trace sees it: one call of `name`, the replacement's own torch calls hidden inside it."""
    if not callable(function) or isinstance(function, type):
        return function

    def reported(*args, **kwargs):
        trace = active()
        if trace is None or trace.depth or trace.paused:
            return function(*args, **kwargs)
        return trace.call(name, function, args, kwargs)

    for attribute in ("__name__", "__qualname__", "__doc__", "__module__", "__wrapped__"):
        if hasattr(function, attribute):
            setattr(reported, attribute, getattr(function, attribute))
    if original is not None:
        reported.__fault_original__ = original
    return reported


def helper(code):
    """Decorator: calls of a suite helper appear in scripts as `code`: a format string ("{0}" the
    first argument) or a function of the record and the written arguments."""

    def decorate(function):
        def reported(*args, **kwargs):
            trace = active()
            if trace is None or trace.depth or trace.paused:
                return function(*args, **kwargs)
            return trace.call(function.__qualname__, function, args, kwargs, code=code)

        reported.__name__, reported.__qualname__, reported.__doc__ = function.__name__, function.__qualname__, function.__doc__
        reported.__wrapped__ = function
        return reported

    return decorate


def operation_call(operation, args: tuple, kwargs: dict, run: Callable[[], object]):
    """`run()`: a declared operation's call on the arguments its Sample built. A trace notes the
    arguments and which of its records the call made, so that a failing statement that calls the
    declaration (inside pytest.raises, say) is written with the call's own source."""
    trace = active()
    if trace is None or trace.depth or trace.paused:
        return run()
    start = len(trace.records)
    try:
        if not _writable(operation):  # its torch calls are recorded one by one instead
            return run()
        # One record: a script calls the declaration's own source, as the test did, so what the
        # call builds inside (a module, its defaults) is built again in the script.
        return trace.call(f"<operation {operation.behaviour}>", lambda *a, **k: run(), args, kwargs, operation=operation)
    finally:
        trace.operations[id(operation)] = (operation, args, kwargs, start, len(trace.records))
        trace.keep.append((operation, args, kwargs))


@functools.cache  # declarations live as long as their modules: one verdict each
def _writable(operation) -> bool:
    """Whether a script can spell the declaration's call from its source (not a closure, say)."""
    from conformance.repro.compared import _call_source
    from conformance.repro.spelling import Unwritable

    try:
        _call_source(operation.call, set(), {})
        return True
    except Unwritable:
        return False


def seed_point(seed: int) -> None:
    """The test seeded torch's generator: a script that draws random numbers seeds it the same."""
    trace = active()
    if trace is not None and not trace.depth:
        trace.records.append(Record("torch.manual_seed", (seed,), {}, seed=seed))


@dataclass
class ComparedExample:
    """What an execution mode compared (two runs of a declared operation's call), as a script
    needs it: set by the mode's test before it compares, read by the plugin when the example
    fails. Compiled: `torch.compile(call, backend)` against `call`, on `builds`' inputs;
    cross-device (no backend): `call` on `builds`' inputs (the device) against `call` on
    `expected_builds`' (the CPU)."""

    call: Callable  # the declaration's call, as declared
    builds: list[Callable[[], tuple]]  # per example run in a row: () -> fresh (args, kwargs)
    labels: tuple[str, str]  # the two sides: ("aot_eager", "eager"), ("testdev", "cpu")
    backend: str | None = None
    expected_builds: list[Callable[[], tuple]] | None = None
    dynamic: bool | None = None
    wrapper: str = ""  # "mutated", "mutated through a view", "backward": the case's wrapper
    tolerance: dict = field(default_factory=dict)
    strides: bool = False


_COMPARED: list[ComparedExample] = []


def compared_example(example: ComparedExample) -> None:
    """The example a mode is about to compare (the last one counts)."""
    _COMPARED[:] = [example]


def current_compared_example() -> ComparedExample | None:
    return _COMPARED[-1] if _COMPARED else None


def forget_compared_example() -> None:
    _COMPARED.clear()


@dataclass
class RankRun:
    """One `RankPool.run` of a distributed test (conformance/harness/distributed.py), as a script
    needs it: the group's size, the task (a module-level function) and its arguments."""

    world_size: int
    task: Callable
    args: tuple
    backend: str = "gloo"


_RANK_RUNS: list[RankRun] = []


def ranks_ran(run: RankRun) -> None:
    """A test ran a task in a group of rank processes (every run of an example is noted, in order)."""
    _RANK_RUNS.append(run)


def rank_runs() -> list[RankRun]:
    return list(_RANK_RUNS)


def forget_rank_runs() -> None:
    _RANK_RUNS.clear()


class RecordedDraws:
    """A test's `data` (Hypothesis's st.data()) in the final run of a failing example: it draws as
    `data` does and keeps each value it drew, in order, with the code and line that drew it (the
    test's own draws, not the harness's draw of a declared operation's sample), for a script written from
    the test's source (conformance/repro/source.py)."""

    def __init__(self, data):
        self._data, self.drawn = data, []

    def draw(self, strategy, label=None):
        value = self._data.draw(strategy, label=label)
        caller = sys._getframe(1)
        self.drawn.append((value, caller.f_code, caller.f_lineno))
        return value

    def __getattr__(self, name):
        return getattr(self._data, name)

    def __repr__(self) -> str:
        return repr(self._data)
