"""Scripts of the distributed area (Note [Repros]): a failing test that ran tasks in a group of
rank processes, written from its source.

A distributed test draws in this process, sends a task to the ranks of a RankPool
(conformance/harness/distributed.py) and checks what they send back; what the ranks compute is
seen by no trace here. So its script is written from source, as the compared modes' are: the
test's body from the statement that runs the ranks through the one that failed, its free names
bound to what they held, and

- `rank_pool.run(world, task, *args)` as `run_ranks(world, task, *args)`: the script forks
  `world` processes that form one gloo group (a FileStore in a temporary directory), each calls
  `task(ctx, *args)` and sends its result back by pipe; a rank that raised makes run_ranks raise
  RankError with each rank's exception, as the pool does. Forking is what makes the ranks run the
  torch of the process that runs the script: a fault patched into torch here is in the ranks too.
  Every wait has a deadline and the ranks are killed on the way out;
- the task and the suite's helpers the check calls copied in from their source;
- each drawn TensorSpec as the tensor it built (its storage as a literal, viewed with its
  strides and offset), so `spec.build(...)` is that tensor (each rank has its own copy: the ranks
  are forked) and `spec.logical_values(...)` its values, contiguous.

Where the test ran no ranks (DistributedSampler's partition, say) the body is written from its
first statement. Anything else the check reads that a script cannot rebuild is refused with the
reason (Unwritable).
"""

from __future__ import annotations

import ast
import builtins
import copy
import inspect
import sys
import textwrap
import types

import torch

from conformance.repro.calls import RankRun
from conformance.repro.failing import _frames, _free_names, _is_raises, _parsed, _RaisesToTry, _SpecFacts
from conformance.repro.spelling import Unwritable, _Writer
from conformance.repro.trace import Trace, _is_test_frame

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
def private_rng(seed):
    """torch's CPU generator seeded with `seed` inside, and put back after"""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield
''',
    ),
}

_SUITE = ("conformance", "strategies")


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
    script = _Script(names, frame.f_globals, runs)
    return script.write(span, header, backends)


class _Script:
    def __init__(self, names: dict, globals_: dict, runs: list[RankRun]):
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

    def write(self, span: list[ast.stmt], header: list[str], backends) -> str:
        span = [_SpecFacts(self.names).visit(s) for s in span]
        span = [_Rewrite(self).visit(s) for s in span]
        if self.runs:
            raise Unwritable(f"the test ran the ranks {len(self.runs)} more time(s) than its source shows")
        bindings = []
        own = self.writer.taken - set(self.names) - {"torch", "np", "math"}
        for name in _free_names(span):
            if name in own:  # a tensor the script made for a value the run was given
                continue
            if name in self.names:
                bindings.append(f"{name} = {self.spell(self.names[name], name)}")
            elif name in ("RankError", "run_ranks"):
                continue
            elif name in self.globals:
                self.define(name, self.globals[name])
            elif not hasattr(builtins, name):
                raise Unwritable(f"the failing check names {name!r}, which the test does not hold")
        code = [ast.unparse(ast.fix_missing_locations(s)) for s in span]
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
        parts.append("\n".join([*self.inputs, *bindings, *code]))
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

        if t.requires_grad or t.layout != torch.strided or t.device.type != "cpu":
            raise Unwritable("a tensor that needs grad, is not strided or not on the CPU")
        with torch._C.DisableTorchFunction():
            t = t.detach()
        self.trace._see([t])
        if self.trace.problem:
            raise Unwritable(self.trace.problem)
        self.writer.specs = specs
        self.inputs += _inputs(self.trace, [], [t], self.writer)
        return self.writer.names[id(t)]

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
        definition.body = [b for b in definition.body if not _is_docstring(b)] or [ast.Pass()]
        self.helpers[function.__name__] = ""  # placeholder against recursion
        definition = _Rewrite(self, calls_ranks=False).visit(definition)
        bound = {a.arg for a in ast.walk(definition) if isinstance(a, ast.arg)}
        bound |= {n.id for n in ast.walk(definition) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        for node in ast.walk(definition):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in bound:
                if node.id in function.__globals__:
                    self.define(node.id, function.__globals__[node.id])
                elif not hasattr(builtins, node.id):
                    raise Unwritable(f"the check calls {function.__name__}, which uses {node.id}")
        self.helpers[function.__name__] = ast.unparse(ast.fix_missing_locations(definition))


class _Rewrite(ast.NodeTransformer):
    """The test's source as a script runs it: the pool's run as run_ranks on the arguments the
    test gave it, pytest.raises as try/except, a spec's build and logical_values as its tensor."""

    def __init__(self, script: _Script, calls_ranks: bool = True):
        self.script, self.calls_ranks = script, calls_ranks

    def visit_With(self, node):
        node = self.generic_visit(node)
        return _RaisesToTry().visit_With(node) if _is_raises(node) else node

    def visit_Attribute(self, node):
        from conformance.harness.distributed import RankPool

        if isinstance(node.value, ast.Name) and isinstance(self.script.names.get(node.value.id), RankPool):
            if node.attr == "backend":
                return ast.copy_location(ast.Constant(self.script.backend), node)
            raise Unwritable(f"the check reads the rank pool's {node.attr}")
        return self.generic_visit(node)

    def visit_Call(self, node):
        if self.calls_ranks and _pool_run(node, self.script.names):
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
        node = self.generic_visit(node)
        if isinstance(node.func, ast.Attribute) and node.func.attr == "build":  # the spec's tensor itself
            return node.func.value
        if isinstance(node.func, ast.Attribute) and node.func.attr == "logical_values":
            return ast.copy_location(ast.Call(ast.Attribute(node.func.value, "contiguous", ast.Load()), [], []), node)
        return node

    def _value(self, value):
        return ast.parse(self.script.spell(value), mode="eval").body


def _built(spec, dtype: torch.dtype) -> torch.Tensor:
    """The tensor `spec.build(dtype=dtype)` makes (without telling Hypothesis about it)."""
    from strategies import tensors

    values = spec._make_values(spec._value_shape(), dtype)
    return tensors._LAYOUT_BUILDERS[spec.layout](spec, values, torch.device("cpu"))


def _is_docstring(node) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _stdlib_first(head: list[str]) -> list[str]:
    """Import lines: the standard library's, then torch's and NumPy's, then the rest (constants)."""
    imports = [h for h in head if h.startswith(("import ", "from "))]
    rest = [h for h in head if h not in imports]
    stdlib = sorted(h for h in imports if h.split()[1].split(".")[0] in sys.stdlib_module_names)
    others = [h for h in imports if h not in stdlib]
    return [*stdlib, *([""] if stdlib else []), *others, *rest]
