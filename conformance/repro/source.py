"""Scripts written from the test's source (Note [Repros]): a failing test the trace cannot write
(what it checks was computed in Python, by a hook or a custom Function the test defined, by a
draw of `data`), and the distributed area's tests, whose ranks run in other processes.

The script is the test's body from its first statement through the one that failed (a
distributed test: from the statement that runs the ranks), its free names bound to what they
held, and

- each drawn TensorSpec's `build(...)` and `logical_values(...)`, and a drawn Sample's `build`,
  as the tensors they made, each built afresh by a function of the script (its storage as a
  literal, viewed with its strides and offset, on the device and dtype the call asked for);
  a declared Operation's `call` as its source (conformance/repro/compared.py's `call`);
- each `data.draw(...)` as the value it drew in the failing run, in order;
- the test module's and the suite's helpers (functions, and classes such as a custom
  autograd.Function or Dataset) copied in from their source;
- `pytest.raises` as try/except;
- `rank_pool.run(world, task, *args)` as `run_ranks(world, task, *args)`: the script forks
  `world` processes that form one gloo group (a FileStore in a temporary directory), each calls
  `task(ctx, *args)` and sends its result back by pipe; a rank that raised makes run_ranks raise
  RankError with each rank's exception, as the pool does. Forking is what makes the ranks run the
  torch of the process that runs the script: a fault patched into torch here is in the ranks too.
  Every wait has a deadline and the ranks are killed on the way out.

Anything else the check reads that a script cannot rebuild is refused with the reason
(Unwritable). Like every script, it is shown only once it has failed where the test did, the same
way, and passed on stock torch.
"""

from __future__ import annotations

import ast
import builtins
import copy
import inspect
import re
import sys
import textwrap
import types

import pytest
import torch

from conformance.harness.declaration import Operation
from conformance.repro.calls import RankRun, RecordedDraws
from conformance.repro.failing import (
    _FailToRaise,
    _frames,
    _free_names,
    _is_fail,
    _is_raises,
    _parsed,
    _RaisesToTry,
    _SpecFacts,
)
from conformance.repro.spelling import Unwritable, _Writer, keyword_argument
from conformance.repro.trace import Trace, _is_test_frame
from strategies.samples import ITEM_DEVICE, ITEM_DTYPE, Arg, Made, Sample
from strategies.tensors import TensorSpec

RUNNER = '''
class RankError(Exception):
    """A task raised in one or more ranks: `errors` maps rank to the exception it raised."""

    def __init__(self, errors):
        self.errors = errors
        first = min(errors)
        super().__init__(f"rank(s) {sorted(errors)} raised; rank {first}: {errors[first]!r}")


def run_ranks(world_size, task, *args, timeout=60.0):
    """task(ctx, *args) in world_size processes forked from this one (so they run the torch this
    process runs) that form one gloo group; their results in rank order. A group that fails to form
    (a connection refused on a busy machine) is formed afresh, three tries in all."""
    for _ in range(3):
        answers = _ranks_once(world_size, task, args, timeout)
        if all(kind != "no group" for kind, _ in answers.values()):
            break
    errors = {rank: value for rank, (kind, value) in answers.items() if kind != "returned"}
    if errors:
        raise RankError(errors)
    return [answers[rank][1] for rank in range(world_size)]


def _ranks_once(world_size, task, args, timeout):
    fork = multiprocessing.get_context("fork")
    with tempfile.TemporaryDirectory() as tmp:
        pipes = [fork.Pipe(duplex=False) for _ in range(world_size)]
        ranks = [
            fork.Process(target=_rank, args=(rank, world_size, f"{tmp}/store", pipes[rank][1], task, args), daemon=True)
            for rank in range(world_size)
        ]
        for process in ranks:
            process.start()
        for _, write in pipes:
            write.close()
        answers, deadline = {}, time.monotonic() + timeout
        try:
            while len(answers) < world_size:
                failed = any(kind != "returned" for kind, _ in answers.values())
                if failed:  # the others may wait for it in a collective: a few seconds more, no longer
                    deadline = min(deadline, time.monotonic() + 5.0)
                waiting = [rank for rank in range(world_size) if rank not in answers]
                ready = multiprocessing.connection.wait(
                    [pipes[rank][0] for rank in waiting] + [ranks[rank].sentinel for rank in waiting],
                    max(0.0, deadline - time.monotonic()),
                )
                if not ready and failed:
                    break
                if not ready:
                    raise TimeoutError(f"ranks {waiting} did not answer within {timeout} s")
                for rank in waiting:
                    if pipes[rank][0].poll():
                        answers[rank] = pickle.loads(pipes[rank][0].recv_bytes())
                    elif ranks[rank].sentinel in ready:
                        answers[rank] = ("died", RuntimeError(f"rank {rank} died (exit code {ranks[rank].exitcode})"))
        finally:
            for process in ranks:
                process.join(max(0.0, min(5.0, deadline - time.monotonic())))
                process.kill()
                process.join()
    return answers


def _rank(rank, world_size, path, pipe, task, args):
    torch.set_num_threads(1)  # as DataLoader's forked workers do
    try:
        store = dist.FileStore(path, world_size)
        dist.init_process_group({backend!r}, store=dist.PrefixStore("default", store), rank=rank, world_size=world_size)
        ctx = types.SimpleNamespace(rank=rank, world_size=world_size, backend={backend!r}, device="cpu", store=store)
    except Exception as error:
        answer = ("no group", error)
    else:
        try:
            answer = ("returned", task(ctx, *args))
        except Exception as error:
            answer = ("raised", error)
    try:
        message = pickle.dumps(answer)
    except Exception:
        message = pickle.dumps((answer[0], RuntimeError(repr(answer[1]))))
    pipe.send_bytes(message)
    if answer[0] != "no group":  # leave the group only once every rank is done with it
        store.add("done", 1)
        deadline = time.monotonic() + 30.0
        while store.add("done", 0) < world_size and time.monotonic() < deadline:
            time.sleep(0.01)
    os._exit(0)
'''

_RUNNER_IMPORTS = ["import multiprocessing", "import multiprocessing.connection", "import os", "import pickle"]
_RUNNER_IMPORTS += ["import tempfile", "import time", "import types"]

# the suite's helpers a script cannot copy (a closure), spelled with torch alone
_REPLACED = {
    "private_rng": (
        "import contextlib",
        '''
@contextlib.contextmanager
def private_rng(seed=0, device="cpu"):
    """torch's CPU generator (and a CUDA device's) seeded with `seed` inside, and put back after"""
    device = torch.device(device)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.manual_seed(seed)
        yield
''',
    ),
}

_SUITE = ("conformance", "strategies")
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _pool_run(node, names) -> bool:
    """`pool.run(...)` where `pool` is a local holding a RankPool."""
    from conformance.harness.distributed import RankPool

    func = node.func if isinstance(node, ast.Call) else None
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "run"
        and isinstance(func.value, ast.Name)
        and isinstance(names.get(func.value.id), RankPool)
    )


def render(exc: BaseException, runs: list[RankRun], *, header: list[str], backends: list[str] = ()) -> str:
    """The script of a failing example of a distributed test, or raise Unwritable saying why not."""
    tests = [(f, line) for f, line in _frames(exc.__traceback__) if _is_test_frame(f) and f.f_code.co_name.startswith("test_")]
    if not tests:
        raise Unwritable("the failure did not come from a test body")
    frame, line = tests[-1]
    parsed = _parsed(frame.f_code)
    if parsed is None:
        raise Unwritable("the test's source is not available")
    tree, first = copy.deepcopy(parsed[0]), parsed[1]
    function = tree.body[0]
    if not isinstance(function, ast.FunctionDef):
        raise Unwritable("the test's source is not a function")
    names = frame.f_locals
    body = function.body
    failing = next((i for i, s in enumerate(body) if s.lineno <= line - first + 1 <= (s.end_lineno or s.lineno)), None)
    if failing is None:
        raise Unwritable("the failing line is not a statement of the test")
    started = next((i for i, s in enumerate(body) if any(_pool_run(n, names) for n in ast.walk(s))), None)
    if started is not None and started > failing:
        raise Unwritable("the test failed before it ran the ranks")
    span = body[started or 0 : failing + 1]
    if started is None and runs:
        raise Unwritable("the ranks ran where the test's body does not show it")
    if any(run.backend != "gloo" for run in runs):
        raise Unwritable("a script forms gloo groups on the CPU only")
    script = _Script(names, frame.f_globals, runs, frame.f_code, first)
    return script.write(span, header, backends, whole=not started)


# A draw a loop repeats gives the failing run's values in order. The run drew no more: it failed
# before its next draw. Where the script gets that far (torch keeps the behaviour), every check the
# run made has been made and held, so the script ends there, passing.
_IN_ORDER = '''def in_order(values):
    """The values a loop's draw gave in the failing run, in order; past them, the script ends (passing)."""
    yield from values
    print("every check the failing run made holds here")
    sys.exit(0)'''


def _reads_configuration(call: ast.Call, called, script) -> bool:
    """`call` is a helper of the suite given only pytest's request or config (`backends(request.config)`):
    it reads the run's options, which a script has not."""
    if not isinstance(called, types.FunctionType) or not called.__module__.startswith(_SUITE) or call.keywords or not call.args:
        return False
    try:
        given = [script.evaluate(a) for a in call.args]
    except Exception:  # an argument that is no plain name of the test's: not such a call
        return False
    return all(isinstance(g, (pytest.Config, pytest.FixtureRequest)) for g in given)


def _of_test(code, line: int, test_code) -> bool:
    """Whether a draw from `code` at `line` is the test's own: in its body, or in a comprehension
    written there (its own code object before Python 3.12)."""
    if code is test_code:
        return True
    if test_code is None or code.co_name not in ("<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"):
        return False
    lines = [n for _, _, n in test_code.co_lines() if n is not None]
    return code.co_filename == test_code.co_filename and bool(lines) and min(lines) <= line <= max(lines)


class _Script:
    def __init__(self, names: dict, globals_: dict, runs: list[RankRun], test_code=None, first: int = 1):
        self.names, self.globals, self.runs = names, globals_, list(runs)
        self.trace = Trace()
        self.writer = _Writer(self.trace, {})
        self.writer.taken |= set(names)  # the script's own names (x1, storage1) stay clear of the test's
        self.inputs: list[str] = []  # the lines that make the drawn tensors
        self.spelled: dict[int, str] = {}  # id(a spec or tensor) -> the script's name for it
        self.helpers: dict[str, str] = {}  # name -> source of a function the script defines
        self.imports: set[str] = set()
        self.backend = runs[0].backend if runs else "gloo"
        self.dtype = names.get("dtype") if isinstance(names.get("dtype"), torch.dtype) else None
        self.makers: dict[tuple, str] = {}  # (id(spec), dtype, device, requires_grad) -> its function's name
        self.calls: dict[int, str] = {}  # id(a declared Operation) -> the name of its call in the script
        self.stores: list[str] = []  # each binding of a name in the written statements
        self.assigned: set[str] = set()  # names the written statements bind
        self.looped: set[str] = set()  # names a loop of the written statements binds (held: the last value only)
        drawn = next((v for v in names.values() if isinstance(v, RecordedDraws)), None)
        # each value the test drew, with its line in the test's source (as the span's lines count)
        self.drawn = (
            [(v, line - first + 1) for v, code, line in drawn.drawn if _of_test(code, line, test_code)]
            if drawn is not None
            else None
        )
        self.in_loops: set[int] = set()  # id() of the draws a loop of the written statements repeats

    def write(self, span: list[ast.stmt], header: list[str], backends, whole: bool = True) -> str:
        """The script of `span`; `whole`: it is the test's body from its first statement, so every
        value the test drew from `data` is drawn in it (else its draws are the run's last ones)."""
        self.stores = [n.id for s in span for n in ast.walk(s) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
        self.assigned = set(self.stores)
        targets = [n.target for s in span for n in ast.walk(s) if isinstance(n, (ast.For, ast.comprehension))]
        self.looped = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        if self.drawn and not whole:  # the draws of the statements written; those before are the run's
            lines = [(s.lineno, s.end_lineno or s.lineno) for s in span]
            self.drawn = [(v, line) for v, line in self.drawn if any(a <= line <= b for a, b in lines)]
        span = [_SpecFacts(self.names).visit(s) for s in span]
        repeated = [
            part
            for s in span
            for n in ast.walk(s)
            for part in (
                [*n.body, *n.orelse] if isinstance(n, (ast.For, ast.While)) else [n] if isinstance(n, _COMPREHENSIONS) else []
            )
        ]
        self.in_loops = {id(c) for part in repeated for c in ast.walk(part) if isinstance(c, ast.Call) and self._draws(c)}
        rewritten = [_Rewrite(self).visit(s) for s in span]  # a statement may become several
        span = [s for r in rewritten for s in (r if isinstance(r, list) else [r]) if not isinstance(s, ast.Pass)]
        if self.runs:
            raise Unwritable(f"the test ran the ranks {len(self.runs)} more time(s) than its source shows")
        if self.drawn:
            raise Unwritable(f"the test drew {len(self.drawn)} more value(s) from data than its source shows")
        bindings = []
        own = self.writer.taken - set(self.names) - {"torch", "np", "math"}
        for name in _free_names(span):
            if name in own:  # a tensor the script made for a value the run was given
                continue
            if name in self.names:
                bindings.append(f"{name} = {self.spell(self.names[name], name)}")
            elif name in ("RankError", "run_ranks"):
                continue
            elif name in ("re", "unittest", "warnings"):  # what the written pytest.raises, warns and skip use
                self.imports.add(f"import {name}")
            elif name in self.globals:
                self.define(name, self.globals[name])
            elif not hasattr(builtins, name):
                raise Unwritable(f"the failing check names {name!r}, which the test does not hold")
        code = [ast.unparse(ast.fix_missing_locations(s)) for s in span]
        if _returns(span):  # the test returns early on a branch: its body as a function the script calls
            code = ["def test():", *(textwrap.indent(c, "    ") for c in code), "", "", "test()"]
        uses_ranks = any("run_ranks(" in c for c in code)
        head = sorted({i for i in self.imports if i})
        if uses_ranks:
            head = sorted({*head, *_RUNNER_IMPORTS, "import torch.distributed as dist"})
        text = "\n".join([*self.helpers.values(), *code, *self.inputs])
        plain = ["import math"] * ("math." in text) + ["import numpy as np"] * ("np." in text or self.writer.uses_numpy)
        head = [i for i in head if i not in ("import torch", "import numpy as np", "import math")]
        head = (
            plain
            + ["import torch"]
            + [i for i in head if i.startswith(("import ", "from "))]
            + [i for i in head if not i.startswith(("import ", "from "))]
        )
        head += [f"import {module}  # an out-of-tree backend of the run" for module in backends]
        comments = [c for h in header for c in (textwrap.wrap(h, 96) or [""])]
        parts = ["\n".join(["# " + c if c else "#" for c in comments] + _stdlib_first(head))]
        if uses_ranks:
            parts.append(RUNNER.replace("{backend!r}", repr(self.backend)).strip("\n"))
        parts += [source.strip("\n") for source in self.helpers.values() if source]
        used = "\n".join([*bindings, *code, *self.helpers.values()])
        parts.append("\n".join([*_needed([*self.inputs, *self.writer.pending], used), *bindings, *code]))
        script = "\n\n\n".join(parts) + "\n"
        compile(script, "<standalone repro>", "exec")
        return script

    # -- values -------------------------------------------------------------------------------------

    def spell(self, value, name: str | None = None) -> str:
        """`value` as script source: a drawn spec as the tensor it built, a tensor by its storage,
        containers item by item, the rest as literals."""
        from strategies.tensors import TensorSpec

        if isinstance(value, TensorSpec):
            if id(value) not in self.spelled:
                if self.dtype is None:
                    raise Unwritable("a drawn tensor without the test's dtype")
                self.spelled[id(value)] = self.tensor(_built(value, self.dtype), [value])
            return self.spelled[id(value)]
        if value is ITEM_DEVICE or value is ITEM_DTYPE:  # a Sample's place for the item's device or dtype
            held = self.names.get("device" if value is ITEM_DEVICE else "dtype")
            if held is None:
                raise Unwritable(f"a Sample's {value!r} in a test without it")
            return f"torch.device({str(held)!r})" if value is ITEM_DEVICE else str(held)
        if isinstance(value, Arg):  # a drawn argument: the tensor it builds
            if self.dtype is None:
                raise Unwritable("a drawn tensor without the test's dtype")
            return self.maker(value.spec, value.dtype or self.dtype, "cpu", value.requires_grad)
        if isinstance(value, Made):  # a made argument (a module): what it makes
            if self.dtype is None:
                raise Unwritable("a made argument without the test's dtype")
            return self.spell(value.build(dtype=self.dtype, device="cpu"))
        if isinstance(value, torch.Tensor):
            if id(value) not in self.spelled:
                self.spelled[id(value)] = self.tensor(value, [])
            return self.spelled[id(value)]
        if isinstance(value, list):
            return "[" + ", ".join(self.spell(v) for v in value) + "]"
        if isinstance(value, tuple):
            inner = ", ".join(self.spell(v) for v in value)
            return f"({inner},)" if len(value) == 1 else f"({inner})"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{self.spell(k)}: {self.spell(v)}" for k, v in value.items()) + "}"
        if callable(value) and getattr(value, "__name__", "") in self.globals and self.globals[value.__name__] is value:
            self.define(value.__name__, value)  # a task passed by value
            return value.__name__
        try:
            return self.writer.value(value)
        except Unwritable:
            raise Unwritable(f"the failing check reads {name or 'a value'} of type {type(value).__name__}") from None

    def tensor(self, t: torch.Tensor, specs: list) -> str:
        from conformance.repro.writing import _inputs

        if t.requires_grad or t.layout != torch.strided:
            raise Unwritable("a tensor that needs grad or is not strided")
        with torch._C.DisableTorchFunction():
            t = t.detach()
        self.trace._see([t])
        if self.trace.problem:
            raise Unwritable(self.trace.problem)
        self.writer.specs = specs
        self.inputs += _inputs(self.trace, [], [t], self.writer)
        return self.writer.names[id(t)]

    def _draws(self, call: ast.Call) -> bool:
        """Whether `call` is `data.draw(...)` of the test's `data`."""
        func = call.func
        held = self.names.get(func.value.id) if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else None
        return isinstance(held, RecordedDraws) and func.attr == "draw"

    def maker(self, spec, dtype: torch.dtype, device, requires_grad: bool = False) -> str:
        """A call of a function of the script that builds `spec` as `spec.build(dtype=dtype,
        device=device, requires_grad=requires_grad)` did: a fresh tensor on each call, as each
        build is."""
        from conformance.repro.writing import _inputs

        key = (id(spec), dtype, str(device), requires_grad)
        if key not in self.makers:
            t = _built(spec, dtype, device)
            trace = Trace()
            trace._see([t])
            if trace.problem:
                raise Unwritable(trace.problem)
            writer = _Writer(trace, {})
            writer.specs = [spec]
            lines = _inputs(trace, [], [t], writer)
            lines += [*writer.pending, f"return {writer.names[id(t)]}" + (".requires_grad_()" if requires_grad else "")]
            self.imports |= writer.imports
            stem = next((n for n, v in self.names.items() if v is spec and not n.startswith("_")), "x")
            name = self.writer.fresh(f"make_{stem}", f"make_{stem}_")
            self.helpers[name] = f"def {name}():\n" + "\n".join("    " + line for line in lines)
            self.makers[key] = name
        return f"{self.makers[key]}()"

    def built_sample(self, sample, dtype: torch.dtype, device) -> tuple[list[str], dict[str, str]]:
        """A drawn Sample's `build(dtype=dtype, device=device)`: its arguments as script source."""

        def one(value) -> str:
            if value is ITEM_DEVICE:
                return f"torch.device({str(device)!r})"
            if value is ITEM_DTYPE:
                return str(dtype)
            if isinstance(value, TensorSpec):
                return self.maker(value, dtype, device)
            if isinstance(value, Arg):
                return self.maker(value.spec, value.dtype or dtype, device, value.requires_grad)
            if isinstance(value, Made):
                return self.spell(value.build(dtype=dtype, device=device))
            if isinstance(value, list) and any(isinstance(v, (TensorSpec, Arg)) for v in value):
                return "[" + ", ".join(map(one, value)) + "]"
            if isinstance(value, tuple) and any(isinstance(v, (TensorSpec, Arg)) for v in value):
                return "(" + "".join(one(v) + ", " for v in value) + ")"
            return self.spell(value)

        return [one(a) for a in sample.args], {k: one(v) for k, v in sample.kwargs.items()}

    def operation_call(self, operation) -> str:
        """The name of a declared Operation's `call` in the script, defined from its source (a
        lambda as a function), with what it names defined too."""
        from conformance.repro.compared import _lambda_node

        if id(operation) not in self.calls:
            function = getattr(operation.call, "__wrapped__", operation.call)
            if function.__name__ != "<lambda>":
                self.define(function.__name__, function)
                self.calls[id(operation)] = function.__name__
                return function.__name__
            if function.__closure__:
                raise Unwritable("the declaration's call closes over local values")
            node = _lambda_node(function)
            bound = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
            for free in sorted({n.id for n in ast.walk(node.body) if isinstance(n, ast.Name) and n.id not in bound}):
                if free in function.__globals__:
                    self.define(free, function.__globals__[free])
                elif not hasattr(builtins, free):
                    raise Unwritable(f"the declaration's call names {free!r}, which its module does not hold")
            name = self.writer.fresh("call", "call")
            self.helpers[name] = f"def {name}({ast.unparse(node.args)}):\n    return {ast.unparse(node.body)}"
            self.calls[id(operation)] = name
        return self.calls[id(operation)]

    def evaluate(self, node: ast.expr):
        """The value a plain expression of the test (names, attributes, constants) had in the run;
        a name the written statements rebind has no one value."""
        simple = (ast.Name, ast.Attribute, ast.Constant, ast.Load)
        if not all(isinstance(n, simple) for n in ast.walk(node)):
            raise Unwritable(f"a drawn input built with {ast.unparse(node)}, an expression")
        if any(isinstance(n, ast.Name) and n.id in self.assigned for n in ast.walk(node)):
            raise Unwritable(f"a drawn input built with {ast.unparse(node)}, which the test rebinds")
        return eval(compile(ast.Expression(node), "<argument>", "eval"), dict(self.globals), dict(self.names))

    def draws_at(self, call: ast.Call) -> list:
        """The values the draw `call` gave in the run, in order: the first only, unless a loop repeats it."""
        here = [i for i, (_, line) in enumerate(self.drawn or ()) if call.lineno <= line <= (call.end_lineno or call.lineno)]
        if not here:
            raise Unwritable("the test's source draws from data more often than the test did")
        taken = here if id(call) in self.in_loops else here[:1]
        values = [self.drawn[i][0] for i in taken]
        self.drawn = [d for i, d in enumerate(self.drawn) if i not in taken]
        return values

    def next_draw(self, call: ast.Call, spelled=None) -> str:
        """The draw `call` as script source: its value, or in a loop the next of its values (each
        spelled by `spelled`, which defaults to the value as a literal)."""
        values = self.draws_at(call)
        spelled = spelled or self.spell
        if id(call) not in self.in_loops:
            return spelled(values[0])
        name = self.writer.fresh("drawn", "drawn_")
        self.helpers.setdefault("in_order", _IN_ORDER)
        self.imports.add("import sys")
        self.inputs.append(f"{name} = in_order([{', '.join(map(spelled, values))}])  # a draw its loop repeats")
        return f"next({name})"

    # -- functions ----------------------------------------------------------------------------------

    def define(self, name: str, value) -> None:
        """Make the global `name` of the test module available to the script: an import, a
        constant, or a function of the suite copied from its source."""
        from conformance.repro.writing import _global

        if name in self.helpers:
            return
        if name in _REPLACED:
            line, source = _REPLACED[name]
            self.imports.add(line)
            self.helpers[name] = source
            return
        function = getattr(value, "__wrapped__", value)
        if isinstance(function, types.FunctionType) and function.__module__.startswith(_SUITE):
            self.copy_function(function)
            return
        if isinstance(value, type) and value.__module__.startswith(_SUITE) and value.__name__ == name:
            self.copy_class(value)
            return
        if isinstance(value, types.ModuleType):
            if value.__name__.split(".")[0] not in (*sys.stdlib_module_names, "torch", "numpy"):
                raise Unwritable(f"the check uses the module {value.__name__}")
            if value.__name__ == "numpy" and name == "np":
                return
            self.imports.add(f"import {value.__name__}" + (f" as {name}" if name != value.__name__ else ""))
            return
        self.imports.add(_global(name, value, self.helpers, self.imports))

    def copy_function(self, function) -> None:
        try:
            source = textwrap.dedent(inspect.getsource(function))
        except (OSError, TypeError):
            raise Unwritable(f"the check calls {function.__name__}, whose source is not available") from None
        definition = ast.parse(source).body[0]
        if not isinstance(definition, ast.FunctionDef) or function.__closure__:
            raise Unwritable(f"the check calls {function.__name__}, a helper of the suite")
        definition.decorator_list = [d for d in definition.decorator_list if not ast.unparse(d).startswith("calls.helper")]
        if definition.decorator_list:
            raise Unwritable(f"the check calls {function.__name__}, a decorated helper of the suite")
        definition.body = [b for b in definition.body if not _is_docstring(b) and not _hides_traceback(b)] or [ast.Pass()]
        self.helpers[function.__name__] = ""  # placeholder against recursion
        definition = _Rewrite(self, in_body=False).visit(definition)
        bound = {a.arg for a in ast.walk(definition) if isinstance(a, ast.arg)}
        bound |= {n.id for n in ast.walk(definition) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        bound |= {n.name for n in ast.walk(definition) if isinstance(n, ast.ExceptHandler) and n.name}
        for node in ast.walk(definition):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in bound:
                if node.id in function.__globals__:
                    self.define(node.id, function.__globals__[node.id])
                elif node.id == "re":  # pytest.raises(match=...) written as try/except
                    self.imports.add("import re")
                elif not hasattr(builtins, node.id):
                    raise Unwritable(f"the check calls {function.__name__}, which uses {node.id}")
        self.helpers[function.__name__] = ast.unparse(ast.fix_missing_locations(definition))

    def copy_class(self, cls: type) -> None:
        """A class of the suite (a custom autograd.Function, a Dataset, a Module) copied from its source."""
        try:
            source = textwrap.dedent(inspect.getsource(cls))
        except (OSError, TypeError):
            raise Unwritable(f"the check uses {cls.__name__}, whose source is not available") from None
        definition = ast.parse(source).body[0]
        if not isinstance(definition, ast.ClassDef) or definition.decorator_list:
            raise Unwritable(f"the check uses {cls.__name__}, a decorated class of the suite")
        for node in ast.walk(definition):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                node.body = [b for b in node.body if not _is_docstring(b)] or [ast.Pass()]
        self.helpers[cls.__name__] = ""  # placeholder against recursion
        definition = _Rewrite(self, in_body=False).visit(definition)
        bound = {a.arg for a in ast.walk(definition) if isinstance(a, ast.arg)}
        bound |= {n.id for n in ast.walk(definition) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        bound |= {n.name for n in ast.walk(definition) if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n is not definition}
        bound |= {n.name for n in ast.walk(definition) if isinstance(n, ast.ExceptHandler) and n.name}
        module = sys.modules[cls.__module__].__dict__
        for node in ast.walk(definition):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in bound:
                if node.id in module:
                    self.define(node.id, module[node.id])
                elif node.id == "re":  # pytest.raises(match=...) written as try/except
                    self.imports.add("import re")
                elif not hasattr(builtins, node.id):
                    raise Unwritable(f"the check uses {cls.__name__}, which uses {node.id}")
        self.helpers[cls.__name__] = ast.unparse(ast.fix_missing_locations(definition))


class _Rewrite(ast.NodeTransformer):
    """The test's source as a script runs it (see the module's docstring): drawn inputs, draws and
    declared calls replaced, pytest's raises, warns, fail and skip without pytest, the pool's run
    as run_ranks. In a helper copied in (`in_body=False`) no name is the test's: a spec it is
    given is its tensor."""

    def __init__(self, script: _Script, in_body: bool = True):
        self.script, self.in_body = script, in_body  # the test's body, or a helper copied in

    def visit_With(self, node):
        node = self.generic_visit(node)
        if _is_warns(node):
            self.script.imports |= {"import re", "import warnings"}
            return _warns_as_record(node)
        return _RaisesToTry().visit_With(node) if _is_raises(node) else node

    def visit_Attribute(self, node):
        from conformance.harness.distributed import RankPool

        if isinstance(node.value, ast.Name) and isinstance(self.script.names.get(node.value.id), RankPool):
            if node.attr == "backend":
                return ast.copy_location(ast.Constant(self.script.backend), node)
            raise Unwritable(f"the check reads the rank pool's {node.attr}")
        if isinstance(self._held(node.value), Operation) and node.attr == "call":
            return ast.copy_location(ast.Name(self.script.operation_call(self._held(node.value)), ast.Load()), node)
        if isinstance(self._held(node.value), Sample) and node.attr in ("args", "kwargs"):
            return self._expression(node, self.script.spell(getattr(self._held(node.value), node.attr)))
        fact = self._fact(node)
        if fact is not None:  # a plain value a drawn input holds (a Made module's constructor arguments)
            return ast.copy_location(ast.parse(repr(fact), mode="eval").body, node)
        return self.generic_visit(node)

    def visit_Subscript(self, node):
        fact = self._fact(node)
        if fact is not None:  # a Sample's plain argument: sample.kwargs["form"]
            return ast.copy_location(ast.parse(repr(fact), mode="eval").body, node)
        return self.generic_visit(node)

    def _fact(self, node):
        """The value of `name.a.b` where `name` holds a drawn input (a spec, Sample, Arg or Made)
        and the value is written exactly by its repr; else None."""
        from conformance.repro.writing import _plain

        path = []
        while isinstance(node, ast.Attribute) and self._held(node) is None:
            path.append(node.attr)
            node = node.value
        value = self._held(node)
        drawn = isinstance(value, (TensorSpec, Sample, Arg, Made)) or (isinstance(node, ast.Subscript) and value is not None)
        if not drawn or any(p.startswith("_") for p in path):
            return None
        for attribute in reversed(path):
            value = getattr(value, attribute, None)
        return value if value is not None and not callable(value) and _plain(value) else None

    def visit_Assign(self, node):
        # `x = spec_of(arg)`: a drawn input computed from drawn inputs is held as it was in the run,
        # so the script reads it there (x.shape, x.build(...)) and needs not the computation
        (target,) = node.targets if len(node.targets) == 1 else (None,)
        held = self._held(target) if isinstance(target, ast.Name) else None
        if (
            isinstance(held, (TensorSpec, Arg, Sample))
            and self.script.stores.count(target.id) == 1
            and not any(isinstance(n, ast.Call) and self.script._draws(n) for n in ast.walk(node.value))
        ):
            return ast.copy_location(ast.Pass(), node)
        return self.generic_visit(node)

    def visit_Expr(self, node):
        import hypothesis

        if _is_fail(node):  # pytest.fail(m) as raise AssertionError(m)
            return _FailToRaise().visit_Expr(node)
        call = node.value
        if isinstance(call, ast.Call) and ast.unparse(call.func) == "pytest.skip":  # on a branch the run did not take
            self.script.imports.add("import unittest")
            skip = ast.Call(ast.parse("unittest.SkipTest", mode="eval").body, call.args[:1], [])
            return ast.copy_location(ast.Raise(exc=skip), node)
        if isinstance(call, ast.Call) and self._held(call.func) is hypothesis.assume:  # it held, or the test stopped there
            return ast.copy_location(ast.Pass(), node)
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "record_observation":
            return ast.copy_location(ast.Pass(), node)  # the report's record of what torch did, not a check
        return self.generic_visit(node)

    def visit_Call(self, node):
        if self.in_body and _pool_run(node, self.script.names):
            if not self.script.runs:
                raise Unwritable("the test's source runs the ranks more often than the test did")
            run = self.script.runs.pop(0)
            given = [node.args[0], *node.args[2:]] if len(node.args) >= 2 and not node.keywords else None
            args = [run.world_size, *run.args]
            if given is None or len(given) != len(args):
                raise Unwritable("the ranks' run is not written with positional arguments")
            # an argument the test names is written by its name (bound before); any other as its value
            spelled = [
                g if isinstance(g, ast.Name) and self.script.names.get(g.id, object()) is a else self._value(a)
                for g, a in zip(given, args)
            ]
            self.script.define(run.task.__name__, run.task)
            task = ast.Name(run.task.__name__, ast.Load())
            return ast.copy_location(ast.Call(ast.Name("run_ranks", ast.Load()), [spelled[0], task, *spelled[1:]], []), node)
        # a drawn input's build, a draw, a declared operation's call: replaced whole (their parts
        # are read as they were in the run, never spelled)
        owner = self._held(node.func.value) if isinstance(node.func, ast.Attribute) else None
        method = node.func.attr if isinstance(node.func, ast.Attribute) else None
        called = self._held(node.func)
        script = self.script
        if self.in_body and method in ("build", "logical_values") and getattr(node.func.value, "id", None) in script.looped:
            raise Unwritable(f"a drawn input built from a loop's variable ({ast.unparse(node)})")
        if isinstance(owner, TensorSpec) and method == "build" and not node.args:  # the tensor it built, built afresh
            given = self._keywords(node, {"dtype": None, "device": "cpu", "requires_grad": False})
            return self._expression(node, script.maker(owner, given["dtype"], given["device"], given["requires_grad"]))
        if isinstance(owner, TensorSpec) and method == "logical_values" and len(node.args) == 1 and not node.keywords:
            return self._expression(node, script.maker(owner, script.evaluate(node.args[0]), "cpu") + ".contiguous()")
        if isinstance(owner, Sample) and method == "build" and not node.args:
            given = self._keywords(node, {"dtype": None, "device": None})
            args, kwargs = script.built_sample(owner, given["dtype"], given["device"])
            return self._expression(node, f"([{', '.join(args)}], {{{', '.join(f'{k!r}: {v}' for k, v in kwargs.items())}}})")
        if isinstance(owner, RecordedDraws) and method == "draw":
            return self._expression(node, script.next_draw(node))
        drawn = node.func.value if method in ("build", "logical_values") else None
        if isinstance(drawn, ast.Call) and self.in_body and script._draws(drawn):  # data.draw(specs(...)).build(...)
            if method == "build" and not node.args:
                given = self._keywords(node, {"dtype": None, "device": "cpu", "requires_grad": False})
                made = (given["dtype"], given["device"], given["requires_grad"])
            elif method == "logical_values" and len(node.args) == 1 and not node.keywords:
                made = (script.evaluate(node.args[0]), "cpu", False)
            else:
                raise Unwritable(f"a drawn input built as {ast.unparse(node)}")

            def maker(spec) -> str:  # the function that builds the drawn spec as the test did (not called)
                if not isinstance(spec, TensorSpec):
                    raise Unwritable(f"{ast.unparse(node)} of a drawn {type(spec).__name__}")
                return script.maker(spec, *made).removesuffix("()")

            built = f"{script.next_draw(drawn, maker)}()"
            return self._expression(node, built + (".contiguous()" if method == "logical_values" else ""))
        if self.in_body and _reads_configuration(node, called, script):  # its answer, as the run had it
            return self._expression(node, script.spell(called(*(script.evaluate(a) for a in node.args))))
        if isinstance(called, Operation) and len(node.args) == 1 and isinstance(self._held(node.args[0]), Sample):
            given = self._keywords(node, {"dtype": None, "device": None})  # Operation(sample, dtype=, device=)
            args, kwargs = script.built_sample(self._held(node.args[0]), given["dtype"], given["device"])
            spelled = [*args, *(keyword_argument(k, v) for k, v in kwargs.items())]
            return self._expression(node, f"{script.operation_call(called)}({', '.join(spelled)})")
        node = self.generic_visit(node)
        if not self.in_body and isinstance(node.func, ast.Attribute):  # in a helper, a spec is given as its tensor
            if node.func.attr == "build":
                return node.func.value
            if node.func.attr == "logical_values":
                return ast.copy_location(ast.Call(ast.Attribute(node.func.value, "contiguous", ast.Load()), [], []), node)
        return node

    def _held(self, node):
        """What the name `node` held in the run (a local of the test, else a global), or None; an
        Arg's spec, and a Sample's argument by its place (`sample.args[0]`, `sample.kwargs["k"]`).
        A helper's names are its own: none is read there."""
        if not self.in_body:
            return None
        if isinstance(node, ast.Attribute) and node.attr == "spec":
            arg = self._held(node.value)
            return arg.spec if isinstance(arg, Arg) else None
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and isinstance(node.slice, ast.Constant):
            sample = self._held(node.value.value)
            if isinstance(sample, Sample) and node.value.attr in ("args", "kwargs"):
                try:
                    return getattr(sample, node.value.attr)[node.slice.value]
                except (IndexError, KeyError, TypeError):
                    return None
            return None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, (ast.Name, ast.Constant)):
            items = self._held(node.value)  # one of a list of drawn inputs (`specs[src]`)
            try:
                return items[self.script.evaluate(node.slice)] if isinstance(items, (list, tuple)) else None
            except (Unwritable, IndexError, TypeError):
                return None
        if not isinstance(node, ast.Name) or node.id in self.script.looped:
            return None
        return self.script.names.get(node.id, self.script.globals.get(node.id))

    def _keywords(self, call: ast.Call, defaults: dict) -> dict:
        if any(k.arg not in defaults for k in call.keywords):
            raise Unwritable(f"a drawn input built as {ast.unparse(call)}")
        given = dict(defaults) | {k.arg: self.script.evaluate(k.value) for k in call.keywords}
        if any(v is None for v in given.values()):
            raise Unwritable(f"a drawn input built as {ast.unparse(call)}, without its dtype or device")
        return given

    @staticmethod
    def _expression(node, source: str):
        return ast.copy_location(ast.parse(source, mode="eval").body, node)

    def _value(self, value):
        return ast.parse(self.script.spell(value), mode="eval").body


def _built(spec, dtype: torch.dtype, device="cpu") -> torch.Tensor:
    """The tensor `spec.build(dtype=dtype, device=device)` makes (without telling Hypothesis about it)."""
    from strategies import tensors

    values = spec._make_values(spec._value_shape(), dtype)
    return tensors._LAYOUT_BUILDERS[spec.layout](spec, values, torch.device(device))


def _needed(lines: list[str], used: str) -> list[str]:
    """The lines that make inputs, less those whose name nothing else uses (an argument a check
    read only for its plain facts): `name = ...` and `name.method(...)` go with `name`, a line of
    torch's own (a seed) with the line after it."""
    kept, text, next_kept = [], used, False
    for line in reversed(lines):
        named = re.match(r"(\w+)\s*(=|\.)", line)
        if named and named.group(1) != "torch":
            next_kept = re.search(rf"\b{named.group(1)}\b", text) is not None
        if next_kept:
            kept.insert(0, line)
            text += "\n" + line
    return kept


def _is_warns(node) -> bool:
    if not isinstance(node, ast.With) or len(node.items) != 1 or node.items[0].optional_vars is not None:
        return False
    call = node.items[0].context_expr
    return isinstance(call, ast.Call) and ast.unparse(call.func) == "pytest.warns" and len(call.args) == 1


def _warns_as_record(node: ast.With) -> list[ast.stmt]:
    """`with pytest.warns(W, match=m): body` as warnings recorded around body and a check that
    one of them is a W whose message m matches, which needs no pytest."""
    call = node.items[0].context_expr
    category = ast.unparse(call.args[0])
    match = next((ast.unparse(k.value) for k in call.keywords if k.arg == "match"), None)
    matches = f" and re.search({match}, str(w.message))" if match else ""
    record = ast.parse(
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    pass\n"
        f"assert any(issubclass(w.category, {category}){matches} for w in caught), 'DID NOT WARN {category}'"
    ).body
    record[0].body[1:] = node.body
    return [ast.copy_location(s, node) for s in record]


def _returns(statements: list[ast.stmt]) -> bool:
    """Whether `return` appears among `statements` outside the functions they define."""

    def visit(node) -> bool:
        if isinstance(node, ast.Return):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            return False
        return any(visit(child) for child in ast.iter_child_nodes(node))

    return any(visit(s) for s in statements)


def _hides_traceback(node) -> bool:
    """`__tracebackhide__ = True`: pytest's, nothing to a script."""
    return isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["__tracebackhide__"]


def _is_docstring(node) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _stdlib_first(head: list[str]) -> list[str]:
    """Import lines: the standard library's, then torch's and NumPy's, then the rest (constants)."""
    imports = [h for h in head if h.startswith(("import ", "from "))]
    rest = [h for h in head if h not in imports]
    stdlib = sorted(h for h in imports if h.split()[1].split(".")[0] in sys.stdlib_module_names)
    others = [h for h in imports if h not in stdlib]
    return [*stdlib, *([""] if stdlib else []), *others, *rest]
