"""Writing (Note [Repros]): the script of a traced failing example, from its inputs to its check."""

from __future__ import annotations

import ast
import builtins
import inspect
import io
import re
import sys
import textwrap
import types

import numpy as np
import torch

from conformance.repro.calls import Record
from conformance.repro.failing import (
    _assignments_of,
    _check_of,
    _contexts_of,
    _finally_lines,
    _frames,
    _is_raises,
    _SpecFacts,
    _Statement,
)
from conformance.repro.run import _verify
from conformance.repro.spelling import Unwritable, _mutates, _storage_literal, _Writer
from conformance.repro.trace import Trace, _contents, _gather, _is_test_frame, _objects, _storage, _tensors

SMALL = 64  # storage elements always written out as a literal


MAX_LITERAL = 4096  # the most written out as a literal where no seeded constructor call makes them


_GRAD_WRITERS = {"torch.autograd.grad", "torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad_value_"}
_ALWAYS_KEPT = {"torch.Tensor.backward", "torch.autograd.backward", "torch.Tensor.retain_grad", "torch.Tensor.register_hook"}


def _made_by(name: str, value, frame, records: list[Record]) -> Record | None:
    """The traced call whose result the test assigned to local `name` (a number or flag torch
    returned, such as torch.cuda.is_available() or t._version); None if there is none. The script
    makes that call where the test made it: a version counter read before a write is not the
    same number read after it."""
    if isinstance(value, torch.Tensor) or not isinstance(value, (bool, int, float, torch.dtype, torch.device, torch._C.Size)):
        return None
    lines = _assignments_of(frame.f_code).get(name, ())
    for record in reversed(records):
        here = bool(record.where) and record.where[0] is frame.f_code and record.where[1] in lines
        if here and type(record.result) is type(value) and record.result == value and record.code is None and record.seed is None:
            return record
    return None


def render(
    trace: Trace,
    exc: BaseException,
    *,
    header: list[str],
    device: str | None,
    backends: list[str],
    fails_with: str,
    on_stock=lambda script: None,
) -> str:
    """The standalone script of `trace`'s failing example, or raise Unwritable saying why not.
    The script is run here before it is returned: it must raise `fails_with` as the test did, and
    `on_stock(script)` (what it raises on stock torch, where a fault is injected) must be None;
    a form of the script that fails there gives way to the next form."""

    def verified(script: str) -> str:
        _verify(script, fails_with)
        stock = on_stock(script)
        if stock is not None:
            raise Unwritable(f"the script also fails on stock torch ({stock})")
        return script

    if trace.problem:
        raise Unwritable(trace.problem)
    trace.sync_arrays()
    if isinstance(exc, BaseExceptionGroup):
        raise Unwritable("the example failed in several distinct ways")
    frames = list(_frames(exc.__traceback__))
    tests = [(f, line) for f, line in frames if _is_test_frame(f)]
    if not tests:
        raise Unwritable("the failure did not come from a test body")
    frame, line = tests[-1]
    frame_names = {}
    for f, _ in tests:
        for name, value in f.f_locals.items():
            if isinstance(value, _TRACED):
                frame_names.setdefault(id(value), name)
    all_names: dict[int, list[str]] = {}
    for f, _ in tests:
        for name, value in f.f_locals.items():
            all_names.setdefault(id(value), []).append(name)
    after = [f for f, _ in frames[[f for f, _ in frames].index(frame) + 1 :]]
    check_frame = next((f for f in reversed(after) if _check_of(f) is not None), None)
    # A public check (torch.testing, numpy.testing) called straight from the test is written as
    # the test wrote it, so that values such as a missing .grad are read, not copied; the
    # check's own arguments are the fallback.
    raises = any(_is_raises(w) for w in _contexts_of(frame.f_code).get(line, ()))
    if id(exc) in trace.raised and trace.raised[id(exc)][0] is exc and not raises:  # a torch call raised what the test did
        return verified(_raising_script(trace, exc, frame_names, all_names, tests, header, device, backends))
    # The test's statement is tried first with the assignments of the values it checks written
    # out (Note [Repros]), then with those values as literals.
    attempts = [(check_frame, False)]
    if check_frame is None:
        attempts.insert(0, (None, True))
    elif after and check_frame is after[0] and "conformance" not in check_frame.f_code.co_filename:
        attempts[:0] = [(None, True), (None, False)]
    tries = [(frame, line, attempt, derive) for attempt, derive in attempts]
    if len(tests) > 1:  # then the statement that called the failing helper of the test module, inlined
        tries += [(*tests[-2], None, True), (*tests[-2], None, False)]
    problem = None
    for at, at_line, attempt, derive in tries:
        try:
            writer = _Writer(trace, frame_names)
            writer.all_names = all_names
            writer.specs = _specs_in([f.f_locals for f, _ in tests], [])
            return verified(_script(trace, at, at_line, exc, attempt, writer, header, device, backends, derive))
        except Unwritable as why:
            # the plain form's reason (the derived form is only an improvement on it), unless a
            # form was written and failed on stock torch
            if not derive or "on stock torch" in str(why):
                problem = why if problem is None or "on stock torch" in str(why) else problem
    raise problem


def _script(trace, frame, line, exc, check_frame, writer, header, device, backends, derive=False) -> str:
    # calls made in a finally clause ran after the failure (clean-up): not part of the script
    records = [r for r in trace.records if not r.checking and not (r.where and r.where[1] in _finally_lines(r.where[0]))]
    roots, bindings = [], []
    imports, helpers = writer.imports, writer.helpers
    if check_frame is not None:
        roots = _check_of(check_frame)[0]
    else:
        statement = _Statement(frame, line, exc)
        if derive:
            statement.derive(frame.f_locals, lambda name: _derived(name, frame, records), _traced, _operation_call(frame))
            if not statement.prelude:
                raise Unwritable("the failing statement checks no value the test derived")
        statement.node = _SpecFacts(frame.f_locals).visit(statement.node)
        statement.prelude = [_SpecFacts(frame.f_locals).visit(n) for n in statement.prelude]
        drawn = _DrawnValues(frame, writer, trace)
        statement.node = drawn.visit(statement.node)
        statement.prelude = [drawn.visit(n) for n in statement.prelude]
        statement.node = _OperationCalls(frame, writer).visit(statement.node)
        statement.prelude = [_OperationCalls(frame, writer).visit(n) for n in statement.prelude]
        declared = _declared_calls(statement, frame, trace, writer)
        for _, args, kwargs, made in declared:  # written as the call's own source, on its arguments
            records = [r for r in records if id(r) not in made]
            roots.extend(_tensors((list(args), dict(kwargs)), []))
        for name in statement.free_names():
            if name in helpers:
                continue
            if name in frame.f_locals:
                roots.append(frame.f_locals[name])
                bindings.append(name)
            elif name in frame.f_globals:
                imports.add(_global(name, frame.f_globals[name], helpers, imports))
            elif name != "re" and not hasattr(builtins, name):  # re: pytest.raises written out
                raise Unwritable(f"the failing statement names {name!r}, which the test frame does not hold")
        # the statement (and its prelude) is written out whole: the calls it makes are in it
        spans = statement.spans()
        inside = [r for r in records if r.where and r.where[0] is frame.f_code and any(a <= r.where[1] <= b for a, b in spans)]
        records = [r for r in records if not any(r is i for i in inside)]
        made = {id(x.result) for x in records}
        # a statement that reads no local (`not hasattr(torch, "double64")`) is its own script
        if not inside and roots and not _tensors(roots, []) and not any(id(r) in made for r in roots):
            raise Unwritable("the values it checks were not computed by torch calls the trace saw")
    bound = {}  # id(record) -> the local the test bound its result to, written where it was made
    if check_frame is None:
        for name in bindings:
            record = _made_by(name, frame.f_locals[name], frame, records)
            if record is not None and writer.names.get(id(frame.f_locals[name])) != name:
                bound[id(record)] = name
    before = len(trace.records)
    trace._see(roots)  # a tensor no traced call took: as it is now
    everything = records + trace.records[before:]
    kept = _slice(trace, roots, everything)
    # a module is written with its parameters' values (Writer.module): the initializers its
    # constructor ran on them are in those values already
    owned = {id(t) for m in _modules_in(roots) for t in (*m.parameters(), *m.buffers())}
    initializes = lambda r: r.name.startswith("torch.nn.init.") and any(id(t) in owned for t in _tensors((r.args, r.kwargs), []))
    kept = [r for r in kept if not initializes(r)]
    if bound:
        kept_ids = {id(r) for r in kept}
        kept = [r for r in everything if id(r) in kept_ids or id(r) in bound]
    if any(r.where and r.where[2] for r in kept):
        raise Unwritable("it depends on calls torch made back into the test (a custom Function, a hook, a dataset)")
    if check_frame is not None and not any(r.seed is None and not r.name.startswith("<") for r in kept):
        raise Unwritable("the values it checks were not computed by torch calls the trace saw")
    body = _inputs(trace, kept, roots, writer)
    body += _calls(kept, writer, frame.f_locals, bound)
    if check_frame is None:
        for node, args, kwargs, _ in declared:
            node.args = [ast.parse(writer.value(a), mode="eval").body for a in args]
            node.keywords = [ast.keyword(k, ast.parse(writer.value(v), mode="eval").body) for k, v in kwargs.items()]
    final = []
    if check_frame is not None:
        final.append(_check_of(check_frame)[1](writer))
    else:
        for name in bindings:
            value = frame.f_locals[name]
            known = writer.names.get(id(value))
            # one object at several places of a call's result (an input handed back as the
            # result): the test's names for it, in order, are those places, as on another torch
            # they may be different objects
            places = writer.positions.get(id(value), [])
            alike = [n for n, v in frame.f_locals.items() if v is value]
            if len(places) > 1 and len(places) == len(alike):
                known = places[alike.index(name)]
                final.append(f"{name} = {known}")
                continue
            if known != name and name not in writer.assigned:
                text = writer.value(value)  # a module is written under the test's name for it
                if text != name:
                    final.append(f"{name} = {text}")
        final.append(statement.text())
    # the functions it defines first: a kept call may be a declared operation's
    defined = [line for source in helpers.values() for line in [*source.splitlines(), ""]]
    body = defined + body + writer.pending + final
    return _assemble(body, imports, writer, header, device, backends)


def _modules_in(value) -> list[torch.nn.Module]:
    """The modules in `value` (a module, or lists, tuples and dicts of them)."""
    if isinstance(value, torch.nn.Module):
        return [value]
    if isinstance(value, (list, tuple, dict)):
        return [m for v in (value.values() if isinstance(value, dict) else value) for m in _modules_in(v)]
    return []


def _assemble(body: list[str], imports: set[str], writer: _Writer, header: list[str], device, backends) -> str:
    """The script: its header comment, the imports it needs, then `body`."""
    text = "\n".join(body)
    head = [f"import {m}" for m in ("io", "math", "re") if re.search(rf"\b{m}\.", text)]
    # the standard library's modules first, as a script's imports go
    stdlib = {i for i in imports if re.fullmatch(r"import (\w+)", i or "") and i.split()[1] in sys.stdlib_module_names}
    head = sorted(set(head) | stdlib)
    imports = imports - stdlib
    head = head + [""] * bool(head) + ["import torch"]
    if writer.uses_numpy or any("np" in i for i in imports) or "np." in text:
        head.insert(len(head) - 1, "import numpy as np")
    # imports first, then the constants a statement names (`IS_A_TENSOR = {...}`)
    head += sorted((i for i in imports if i and i not in head), key=lambda i: (not i.startswith(("import ", "from ")), i))
    head += [f"import {module}  # the out-of-tree backend that registers {device!r}" for module in backends]
    comments = [line for h in header for line in (textwrap.wrap(h, 96) or [""])]
    script = "\n".join(["# " + c if c else "#" for c in comments] + head + [""] + body) + "\n"
    compile(script, "<standalone repro>", "exec")
    return script


_TRACED = (torch.Tensor, np.ndarray, torch.nn.Module, torch.optim.Optimizer, torch.Generator)


def _traced(value) -> bool:
    """A value the trace writes out by the calls that made it (or a snapshot), not as a literal."""
    if isinstance(value, (list, tuple, dict)):
        return any(_traced(v) for v in _contents(value))
    return isinstance(value, _TRACED)


class _OperationCalls(ast.NodeTransformer):
    """`OP.call`, a declared operation's call used directly, as the function the script defines."""

    def __init__(self, frame, writer):
        self.frame, self.writer = frame, writer

    def visit_Attribute(self, node):
        from conformance.harness.declaration import Operation

        if isinstance(node.value, ast.Name) and node.attr == "call" and node.value.id not in self.frame.f_locals:
            operation = self.frame.f_globals.get(node.value.id)
            if isinstance(operation, Operation):
                return ast.copy_location(ast.Name(self.writer.operation(operation), ast.Load()), node)
        return self.generic_visit(node)


class _DrawnValues(ast.NodeTransformer):
    """What the test computed from the drawn specs (`len(parts)`, `p.logical_values(dtype)`,
    `values64(x, dtype)`: the input's own values, the expected side of a check) is written as
    the value it had, a literal: a script holds no spec. Only expressions whose calls are the
    specs' own methods, builtins or the suite's helpers are evaluated (with the trace paused);
    any other leaves the spec to be refused by the writer as before."""

    _BUILTINS = {"len", "tuple", "list", "int", "float", "bool", "sorted", "range"}

    def __init__(self, frame, writer, trace):
        self.frame, self.writer, self.trace = frame, writer, trace

    def _drawn(self, value) -> bool:
        from strategies.samples import Arg, Sample
        from strategies.tensors import TensorSpec

        if isinstance(value, (TensorSpec, Arg, Sample)):
            return True
        return isinstance(value, (list, tuple, dict)) and any(self._drawn(v) for v in _contents(value))

    def _evaluable(self, node) -> bool:
        for inner in ast.walk(node):
            if isinstance(inner, (ast.Lambda, ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom)):
                return False
            if not isinstance(inner, ast.Call):
                continue
            func = inner.func
            if isinstance(func, ast.Name):
                # a plain function of the suite (values64, native), never a declared operation or
                # anything else that would run torch calls under test a second time
                target = self.frame.f_globals.get(func.id)
                helper = target.__module__ if isinstance(target, types.FunctionType) else ""
                if func.id not in self._BUILTINS and not helper.startswith(
                    ("conformance.checks", "strategies", "conformance.test_")
                ):
                    return False
            elif not (isinstance(func, ast.Attribute) and func.attr in ("logical_values", "get", "item", "tolist")):
                return False
        return True

    def generic_visit(self, node):
        if not isinstance(node, ast.expr) or isinstance(node, (ast.Constant, ast.Lambda)):
            return super().generic_visit(node)
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        if not any(n in self.frame.f_locals and self._drawn(self.frame.f_locals[n]) for n in names):
            return node
        bound = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        # what torch computed stays computed: an expression that reads a tensor (or module, array)
        # of the test is not frozen into a literal, nor is a message's f-string as a whole
        reads_torch = any(n in self.frame.f_locals and _traced(self.frame.f_locals[n]) for n in names)
        if bound or reads_torch or isinstance(node, ast.JoinedStr) or not self._evaluable(node):
            return super().generic_visit(node)
        try:
            with self.trace.pause():
                value = eval(
                    compile(ast.Expression(_copy(node)), "<drawn>", "eval"), self.frame.f_globals, dict(self.frame.f_locals)
                )
        except Exception:
            return super().generic_visit(node)
        if self._drawn(value):
            return super().generic_visit(node)
        try:
            text = _tensor_literal(value, self.writer) if isinstance(value, torch.Tensor) else self.writer.value(value)
        except Unwritable:
            return super().generic_visit(node)
        return ast.copy_location(ast.parse(text, mode="eval").body, node)


def _tensor_literal(t: torch.Tensor, writer) -> str:
    """A tensor the test computed from a drawn spec (its values, on the CPU), as a literal."""
    if t.device.type != "cpu" or t.layout != torch.strided or t.numel() > MAX_LITERAL:
        raise Unwritable("a drawn value too large or not on the CPU")
    flat = _storage_literal(t.detach().reshape(-1).clone(), t.device, writer)
    return flat if t.ndim == 1 else f"{flat}.reshape({tuple(t.shape)!r})"


def _operation_call(frame):
    """node -> whether it is a call of a declared operation the test module holds (`OP(sample, ...)`)."""
    from conformance.harness.declaration import Operation

    def check(node) -> bool:
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)) or node.func.id in frame.f_locals:
            return False
        return isinstance(frame.f_globals.get(node.func.id), Operation)

    return check


def _raising_script(trace, exc, frame_names, all_names, tests, header, device, backends) -> str:
    """The script of an example whose failure is an error a traced torch call raised (not a
    check): the calls its arguments depend on, then that call, which raises."""
    _, record, before = trace.raised[id(exc)]
    if record.where and record.where[2]:
        raise Unwritable("it depends on calls torch made back into the test (a custom Function, a hook, a dataset)")
    writer = _Writer(trace, frame_names)
    writer.all_names = all_names
    writer.specs = _specs_in([f.f_locals for f, _ in tests], [])
    records = [r for r in trace.records[:before] if not r.checking]
    roots = [list(record.args), dict(record.kwargs)]
    kept = _slice(trace, roots, records)
    body = _inputs(trace, kept, roots, writer)
    body += _calls(kept, writer, tests[-1][0].f_locals)
    last = writer.call(record)
    context = _context(record, tests[-1][0].f_locals, writer)
    final = [f"with {context}:", f"    {last}"] if context else [last]
    final[-1] += f"  # raises {type(exc).__name__}"
    defined = [line for source in writer.helpers.values() for line in [*source.splitlines(), ""]]
    return _assemble(defined + body + writer.pending + final, writer.imports, writer, header, device, backends)


_ARRAYS: dict[int, tuple[list, set[int]]] = {}  # id(records) -> (records, the arrays they took or made)


def _arrays_of(records: list[Record]) -> set[int]:
    """The ids of the NumPy arrays the recorded calls took or returned (computed once per list)."""
    held = _ARRAYS.get(id(records))
    if held is None or held[0] is not records:
        arrays = {id(o) for r in records for o in _objects((r.args, r.kwargs, r.result), []) if isinstance(o, np.ndarray)}
        _ARRAYS.clear()
        held = _ARRAYS[id(records)] = (records, arrays)
    return held[1]


def _derived(name: str, frame, records: list[Record]) -> bool:
    """Whether test local `name` holds a value the test computed from others (a number, a flag, a
    tuple of a tensor's attributes, NumPy's arithmetic on a result), which the script should
    compute again, not copy: not a tensor, module, optimizer or generator, nor an array a traced
    call made or took (the trace writes those), and not a number a traced call returned (written
    where it was made)."""
    if name not in frame.f_locals:
        return False
    value = frame.f_locals[name]
    if isinstance(value, np.ndarray):  # NumPy's arithmetic on what torch returned: computed again
        return id(value) not in _arrays_of(records)
    return not _traced(value) and _made_by(name, value, frame, records) is None


def _declared_calls(statement, frame, trace: Trace, writer: _Writer) -> list[tuple]:
    """The calls of declared operations (`OP(sample, dtype=..., device=...)`) in the failing
    statement, each rewritten as a call of the declaration's own `call`, defined by the writer
    (its arguments are filled in once the inputs have names): [(call node, args, kwargs, ids of
    the records the call made)]."""

    found = []
    is_operation = _operation_call(frame)
    for node in [n for root in [*statement.prelude, statement.node] for n in ast.walk(root)]:
        if not is_operation(node):
            continue
        operation = frame.f_globals[node.func.id]
        called = trace.operations.get(id(operation))
        if called is None:
            raise Unwritable(f"the failing statement calls {node.func.id}, which the trace did not see run")
        _, args, kwargs, start, end = called
        node.func, node.args, node.keywords = ast.Name(writer.operation(operation), ast.Load()), [], []
        found.append((node, args, kwargs, {id(r) for r in trace.records[start:end]}))
    return found


def _global(name: str, value, helpers: dict | None = None, imports: set | None = None) -> str:
    """An import line that binds `name` to `value` in a torch-only script; a helper of the suite
    it names is copied into `helpers` (with the imports it needs added to `imports`, where given)."""
    if isinstance(value, types.ModuleType):
        module = value.__name__
        if module.split(".")[0] not in ("torch", "numpy", *sys.stdlib_module_names):
            raise Unwritable(f"the failing statement uses the module {module}")
        if module == "numpy":
            return "" if name == "np" else f"import numpy as {name}"
        if "." in module:
            parent, _, last = module.rpartition(".")
            return f"from {parent} import {last}" + (f" as {name}" if name != last else "")
        return f"import {module}" + (f" as {name}" if name != module else "")
    module = getattr(value, "__module__", "") or ""
    qualname = getattr(value, "__qualname__", "")
    if module.split(".")[0] in ("torch", "numpy", "math") and qualname and "." not in qualname:
        public = {"torch.testing._comparison": "torch.testing"}.get(module, module)
        try:
            same = getattr(__import__(public, fromlist=[qualname]), qualname) is value
        except (ImportError, AttributeError):
            same = False
        if same:
            return f"from {public} import {qualname}" + (f" as {name}" if name != qualname else "")
    if isinstance(value, (int, float, str, bool)):
        return f"{name} = {value!r}"
    if isinstance(value, (set, frozenset, tuple, list, dict)) and (_plain(value) or _dtypes_table(value)):  # a table of constants
        return f"{name} = {value!r}"
    from conformance.repro.compared import _is_lambda_table, _lambda_table

    if _is_lambda_table(value):
        if helpers is None:
            raise Unwritable(f"the failing statement uses {name}, a table of the suite")
        _lambda_table(name, value, imports if imports is not None else set(), helpers)
        return ""
    if helpers is not None and isinstance(value, types.FunctionType) and name == value.__name__:
        _inline(getattr(value, "__wrapped__", value), helpers, imports)
        return ""
    raise Unwritable(f"the failing statement calls {name}, a helper of the suite")


def _dtypes_table(value) -> bool:
    """Whether `value` is a table of plain constants and torch's dtypes (`{"float": torch.float32}`),
    whose repr is its source in a script that imports torch."""
    if isinstance(value, (torch.dtype, torch.layout, torch.memory_format)):
        return True
    if isinstance(value, dict):
        return all(_dtypes_table(k) and _dtypes_table(v) for k, v in value.items())
    if isinstance(value, (set, frozenset, tuple, list)):
        return all(_dtypes_table(v) for v in value)
    return _plain(value)


def _plain(value) -> bool:
    """Whether `value` is written exactly by its repr (numbers, strings, flags and containers of them)."""
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError, TypeError):
        return False


def _inline(function, helpers: dict[str, str], imports: set | None = None) -> None:
    """Copy a small helper of the suite into the script, with the helpers it calls, where all it
    needs besides them is torch, NumPy, math and builtins (and, where `imports` collects their
    import lines, torch's submodules under any name, `nn`, `F`, and the standard library's modules)."""
    if function.__name__ in helpers:
        return
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        raise Unwritable(f"the failing statement calls {function.__name__}, whose source is not available") from None
    tree = ast.parse(source)
    definition = tree.body[0]
    if isinstance(definition, ast.FunctionDef):  # the suite's tracing decorator does not go into a script
        definition.decorator_list = [d for d in definition.decorator_list if not ast.unparse(d).startswith("calls.helper")]
    if not isinstance(definition, ast.FunctionDef) or definition.decorator_list or function.__closure__:
        raise Unwritable(f"the failing statement calls {function.__name__}, a helper of the suite")
    helpers[function.__name__] = ""  # placeholder against recursion
    bound = {a.arg for a in ast.walk(definition) if isinstance(a, ast.arg)}
    bound |= {n.id for n in ast.walk(definition) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    for node in ast.walk(definition):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in bound:
            value = function.__globals__.get(node.id)
            if node.id in function.__globals__ and isinstance(value, types.ModuleType):
                plain = value.__name__ in ("torch", "numpy", "math") and node.id in ("torch", "np", "math")
                # torch's submodules (nn, F) and the standard library's modules (sys, itertools)
                importable = value.__name__.split(".")[0] in ("torch", *sys.stdlib_module_names)
                if imports is not None and not plain and importable:
                    imports.add(_global(node.id, value))
                elif not plain:
                    raise Unwritable(f"the failing statement calls {function.__name__}, which uses {value.__name__}")
            elif isinstance(value, types.FunctionType) and value.__module__.startswith(("conformance", "strategies")):
                _inline(getattr(value, "__wrapped__", value), helpers, imports)
            elif node.id not in function.__globals__ and hasattr(builtins, node.id):
                continue
            else:
                raise Unwritable(f"the failing statement calls {function.__name__}, which uses {node.id}")
    definition.body = [b for b in definition.body if not _is_docstring(b)]
    helpers[function.__name__] = ast.unparse(definition)


def _is_docstring(node) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _slice(trace: Trace, roots: list, records: list[Record]) -> list[Record]:
    """The records the final check depends on (Note [Repros]). A call that takes or
    returns both a tensor and an array (numpy(), from_numpy) ties them: where one is needed, a
    write through the other matters too; the walk repeats until no new tie is found."""
    needed_ids: set[int] = set()
    for _ in range(4):
        before = len(needed_ids)
        kept = _walk(records, roots, needed_ids)
        if len(needed_ids) == before:
            break
    # a seed point matters only where a kept call after it draws random numbers
    return [r for i, r in enumerate(kept) if r.seed is None or any(k.rng for k in kept[i + 1 :])]


# calls documented to update some of their arguments in place without moving their version
# counters: batch norm's running statistics (running_mean, running_var), in training
_RUNNING_STATISTICS = {"torch.nn.functional.batch_norm": 1, "torch.nn.functional.instance_norm": 1, "torch.batch_norm": 3}


def _running_statistics(record: Record) -> list:
    first = _RUNNING_STATISTICS.get(record.name)
    if first is None:
        return []
    found = [record.args[i] for i in (first, first + 1) if i < len(record.args)]
    found += [record.kwargs[k] for k in ("running_mean", "running_var") if k in record.kwargs]
    return [t for t in found if isinstance(t, torch.Tensor)]


def _walk(records: list[Record], roots: list, needed_ids: set[int]) -> list[Record]:
    needed_storage = set()

    def need(values):
        for v in _objects(values, []):
            needed_ids.add(id(v))
            if isinstance(v, torch.Tensor) and (s := _storage(v)) is not None:
                needed_storage.add(s)

    need(roots)
    kept = []
    seeded_after = any(r.seed is not None for r in records)
    for record in reversed(records):
        made = _objects(record.result, [])
        used = _objects((record.args, record.kwargs), [])
        makes = any(id(o) in needed_ids for o in made)
        targets = _objects(
            (record.args, record.kwargs) if record.operation is not None else (record.args[:1], record.kwargs.get("out")), []
        )
        writes = (_mutates(record) or record.name == "<array write>" or record.operation is not None) and any(
            id(o) in needed_ids or (isinstance(o, torch.Tensor) and _storage(o) in needed_storage) for o in targets
        )
        writes = writes or any(isinstance(o, io.BytesIO) and id(o) in needed_ids for o in used)  # torch.save into it
        written = [o for o in used if isinstance(o, torch.Tensor) and id(o) in record.wrote] + _running_statistics(record)
        writes = writes or any(id(o) in needed_ids or _storage(o) in needed_storage for o in written)
        # a call that may set the .grad of tensors it takes (what a check of .grad reads)
        grads = record.name in _GRAD_WRITERS and any(
            id(o) in needed_ids or (isinstance(o, torch.Tensor) and o.grad is not None and id(o.grad) in needed_ids) for o in used
        )
        writes = writes or grads
        always = record.name in _ALWAYS_KEPT or record.state or record.seed is not None
        if makes or writes or always or (record.rng and seeded_after):
            kept.append(record)
            need((record.args, record.kwargs))
            need(record.result)
        both = made + used
        tie = any(isinstance(o, torch.Tensor) for o in both) and any(isinstance(o, np.ndarray) for o in both)
        if tie and record.name != "<array write>" and any(id(o) in needed_ids for o in both):
            need(both)
    kept.reverse()
    return kept


def _inputs(trace: Trace, kept: list[Record], roots: list, writer: _Writer) -> list[str]:
    used = _tensors([(r.args, r.kwargs) for r in kept] + [roots], [])
    made = {id(t) for r in kept for t in _tensors(r.result, []) if not any(t is a for a in _tensors(r.args, []))}
    lines, bases = [], {}
    users: dict[int, set] = {}  # storage -> the inputs written from it
    for t in used:
        if id(t) not in made and id(t) not in writer.names and id(t) in trace.snapshots:
            users.setdefault(trace.snapshots[id(t)].storage, set()).add(id(t))
    for t in used:
        if id(t) in made or id(t) in writer.names:
            continue
        snap = trace.snapshots.get(id(t))
        if snap is None:
            raise Unwritable(f"a {t.dtype}{tuple(t.shape)} tensor the trace did not see before its use")
        if t.grad_fn is not None and not snap.parameter:
            raise Unwritable("a non-leaf input that was made outside the traced calls")
        whole = trace.storages[snap.storage]
        alone = len(users[snap.storage]) == 1 and _is_whole(t, whole) and t.ndim != 1 and whole.numel() <= SMALL
        if alone and t.device.type != "meta":  # its own storage, all of it: the tensor's literal, no view call
            base = torch._C.TensorBase
            where = "" if t.device.type == "cpu" else f", device={str(t.device)!r}"
            view = f"torch.tensor({writer.value(base.tolist(base.reshape(whole, tuple(t.shape))))}, dtype={t.dtype}{where})"
        elif snap.storage not in bases:
            base = writer.fresh(None, "storage")
            bases[snap.storage] = base
            seeded = _seeded(t, whole, writer.specs) if whole.numel() > SMALL else None
            if seeded is None and whole.numel() > MAX_LITERAL:
                raise Unwritable(f"an input whose storage holds {whole.numel()} elements (more than {MAX_LITERAL})")
            lines += (
                [f"{base} = {_storage_literal(whole, t.device, writer)}"]
                if seeded is None
                else [
                    f"torch.manual_seed({seeded[0]})",
                    f"{base} = {seeded[1]}" + (f".to({str(t.device)!r})" if t.device.type != "cpu" else "") + ".view(-1)",
                ]
            )
        name = writer.fresh(writer.frame_names.get(id(t)), "x")
        if alone and t.device.type != "meta":
            pass
        elif _is_whole(t, whole):
            view = f"{bases[snap.storage]}.view({tuple(t.shape)!r})" if t.ndim != 1 else bases[snap.storage]
        else:
            view = f"{bases[snap.storage]}.as_strided({tuple(t.shape)!r}, {tuple(t.stride())!r}, {t.storage_offset()})"
        if snap.parameter:
            view = f"torch.nn.Parameter({view}" + (", requires_grad=False)" if not t.requires_grad else ")")
        elif t.requires_grad:
            view += ".requires_grad_()"
        lines.append(f"{name} = {view}")
        writer.names[id(t)] = name
    return lines


def _seeded(t: torch.Tensor, whole: torch.Tensor, specs: list) -> tuple[int, str] | None:
    """(seed, call): the make_tensor call that, after torch.manual_seed(seed), gives exactly the
    values of `whole`, the storage of a contiguous generated input, found among the specs the test
    drew (`specs`); None where none does."""
    if whole.device.type == "meta":
        return None
    for spec in specs:
        if spec.layout != "contiguous" or spec.specials or spec.extremes or spec.numel != whole.numel():
            continue  # values made then rearranged, or another size
        bounds = f"low={spec.low!r}, high={spec.high!r}"
        call = f"torch.testing.make_tensor({tuple(spec.shape)!r}, dtype={t.dtype}, device='cpu', {bounds})"
        with torch._C.DisableTorchFunction(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            again = eval(call, {"torch": torch})
        if again.reshape(-1).equal(whole):
            return spec.seed, call
    return None


def _specs_in(value, into: list) -> list:
    """The TensorSpecs a test frame holds, directly or inside Samples, Args and containers."""
    from strategies.samples import Arg, Sample
    from strategies.tensors import TensorSpec

    def pick(v):
        if isinstance(v, TensorSpec):
            return [v], ()
        if isinstance(v, Arg):
            return [v.spec], ()
        if isinstance(v, Sample):
            return [], (v.args, v.kwargs)
        return [], _contents(v)

    return _gather(value, pick, into)


def _is_whole(t: torch.Tensor, whole: torch.Tensor) -> bool:
    return t.is_contiguous() and t.storage_offset() == 0 and t.numel() == whole.numel() and t.numel() > 0


_GRAD_CONTEXTS = ("no_grad", "enable_grad", "inference_mode", "set_grad_enabled")


def _source_context(where, names: dict, writer) -> str | None:
    """The `with` statements the test wrote around the line that made a call, as a script writes
    them: grad-mode contexts and torch.autocast as written (so a torch whose no_grad does nothing
    still gets the script the test meant; a context held in a local, `ctx = torch.no_grad`, is
    looked up in the test frame's `names`), contexts that do not change what torch computes
    (pytest.raises, warnings, the suite's seeded generator) left out; any other is refused."""
    if where is None:
        return None
    written = []
    for node in _contexts_of(where[0]).get(where[1], ()):
        call = node.items[0].context_expr if len(node.items) == 1 else None
        name = ast.unparse(call.func) if isinstance(call, ast.Call) else ""
        last = name.split(".")[-1]
        if last in _TRANSPARENT_CONTEXTS:
            continue
        if not isinstance(call, ast.Call):
            raise Unwritable(f"a call made inside `with {ast.unparse(node.items[0].context_expr)}`")
        call = _copy(call)
        call.keywords = [k for splat in call.keywords for k in _spread(splat, names, call, writer)]
        if "." not in name and name in names:  # a context held in a local
            local = names[name]
            known = next((n for n in _GRAD_CONTEXTS if local is getattr(torch, n, None)), getattr(local, "__name__", ""))
            if known == "<lambda>" and not call.args and not call.keywords:  # `disable = lambda: torch.set_grad_enabled(False)`
                written.append(_lambda_context(local, call))
                continue
            if known not in _GRAD_CONTEXTS or call.args or call.keywords:
                raise Unwritable(f"a call made inside `with {ast.unparse(call)}`")
            written.append(f"torch.{known}()")
            continue
        if last not in (*_GRAD_CONTEXTS, "autocast", "device") or not name.startswith("torch."):
            raise Unwritable(f"a call made inside `with {ast.unparse(call)}`")
        written.append(ast.unparse(_Literals(names, writer).visit(call)))
    return ", ".join(written) or None


def _spread(keyword, names: dict, call, writer) -> list:
    """A keyword of a context's call; `**expr` as the keywords its value held (`**{"dtype": d} if
    explicit else {}`), evaluated from the test's locals."""
    if keyword.arg is not None:
        return [keyword]
    try:
        value = eval(compile(ast.Expression(keyword.value), "<context>", "eval"), {"torch": torch}, dict(names))
    except Exception:
        raise Unwritable(f"a call made inside `with {ast.unparse(call)}`") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise Unwritable(f"a call made inside `with {ast.unparse(call)}`")
    return [ast.keyword(k, ast.parse(writer.value(v), mode="eval").body) for k, v in value.items()]


def _lambda_context(local, call) -> str:
    """A context the test made by calling a local lambda of no arguments: its body."""
    from conformance.repro.compared import _lambda_node

    body = _lambda_node(local).body
    names = {n.id for n in ast.walk(body) if isinstance(n, ast.Name)}
    if names - {"torch"} or local.__code__.co_argcount:
        raise Unwritable(f"a call made inside `with {ast.unparse(call)}`")
    return ast.unparse(body)


def _context(record: Record, names: dict, writer) -> str | None:
    """The `with` a recorded call is written inside: the test's own, or the grad mode it ran in."""
    return _source_context(record.where, names, writer) or (
        ("torch.inference_mode()" if record.inference else None) or ("torch.no_grad()" if not record.grad else None)
    )


# contexts that change nothing torch computes (np.errstate: NumPy's warnings, for the expected side)
_TRANSPARENT_CONTEXTS = (
    "raises",
    "warns",
    "catch_warnings",
    "private_rng",
    "fork_rng",
    "deprecated_call",
    "suppress",
    "errstate",
)


def _copy(node):
    return ast.parse(ast.unparse(node), mode="eval").body


class _Literals(ast.NodeTransformer):
    """Names of the test's locals inside a context's arguments, replaced by their values."""

    def __init__(self, names: dict, writer):
        self.names, self.writer = names, writer

    def visit_Name(self, node):
        if node.id in self.names and node.id not in ("torch",):
            return ast.parse(self.writer.value(self.names[node.id]), mode="eval").body
        return node


def _name_places(result, name: str, writer: _Writer, depth: int = 0) -> None:
    """The tensors inside a call's result (`name[0]`, `name['torch.sort'][1]`), by the place that
    holds each; an object at several places is noted at each (writer.positions)."""
    items = enumerate(result) if isinstance(result, (list, tuple)) else result.items() if isinstance(result, dict) else ()
    for key, r in items:
        if not isinstance(key, (int, str)):
            continue
        place = f"{name}[{key!r}]"
        if isinstance(r, torch.Tensor):
            writer.positions.setdefault(id(r), []).append(place)
            if id(r) not in writer.names:
                writer.names[id(r)] = place
        elif depth < 3:
            _name_places(r, place, writer, depth + 1)


def _calls(kept: list[Record], writer: _Writer, names: dict, bound: dict | None = None) -> list[str]:
    lines, context = [], None
    for record in kept:
        text = writer.call(record)
        for f in (*record.args, *record.kwargs.values()):
            if isinstance(f, io.BytesIO) and id(f) in record.positions:
                writer.pending.append(f"{writer.value(f)}.seek({record.positions[id(f)]})")
        if bound and id(record) in bound:  # a number the test kept from this call, under its name
            text = f"{bound[id(record)]} = {text}"
            writer.assigned.add(bound[id(record)])
        lines.extend(("    " if context else "") + line for line in writer.pending)
        writer.pending.clear()
        result = record.result
        statement = (
            record.seed is not None
            or record.state
            or record.name == "<array write>"
            or record.name.rsplit(".", 1)[-1] in ("__set__", "__setitem__")
            or (record.name.rsplit(".", 1)[-1].startswith("__i") and _mutates(record))
        )
        returns_self = isinstance(result, torch.Tensor) and any(result is a for a in record.args)
        named = isinstance(result, torch.Tensor) or bool(_tensors(result, [])) or isinstance(result, (np.ndarray, list))
        if not statement and named and not (returns_self and _mutates(record)):
            # A call that handed back its own argument (t.float() of a float tensor) gets a name of
            # its own all the same: on another torch it may not be the same object.
            preferred = writer.frame_names.get(id(result))
            if returns_self:
                preferred = next((n for n in writer.all_names.get(id(result), ()) if n not in writer.taken), None)
            name = writer.fresh(preferred, "t")
            text = f"{name} = {text}"
            writer.assigned.add(name)
            if not returns_self:
                writer.names[id(result)] = name
            _name_places(result, name, writer)
        wanted = _context(record, names, writer)
        if wanted != context:
            context = wanted
            if wanted:
                lines.append(f"with {wanted}:")
        lines.append(("    " if context else "") + text)
    return lines
