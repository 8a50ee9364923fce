"""The failing check (Note [Repros]): the assertion helper or test statement that failed, read
from the traceback and the test's source."""

from __future__ import annotations

import ast
import copy
import functools
import inspect
import textwrap
from collections.abc import Callable
from pathlib import Path

import torch

from conformance.repro.spelling import Unwritable, _Writer, keyword_argument
from conformance.repro.trace import _CONFORMANCE, _TORCH_CLOSE

_NUMPY_CHECKS = ("assert_array_equal", "assert_allclose", "assert_equal", "assert_array_almost_equal", "assert_almost_equal")


def _frames(tb):
    while tb is not None:
        yield tb.tb_frame, tb.tb_lineno
        tb = tb.tb_next


def _check_of(frame) -> tuple[list, Callable[[_Writer], str]] | None:
    """The failing assertion helper's call, from the arguments it holds: the values it checked,
    and how a writer spells the call; None if `frame` is no such helper."""
    code, f = frame.f_code, frame.f_locals
    path = code.co_filename.replace("\\", "/")

    def spelled(name, first, second, options):
        def write(writer):
            writer.uses_numpy |= name.startswith("np.")
            parts = [writer.value(f[first]), writer.value(f[second])]
            parts += [keyword_argument(k, writer.value(v)) for k, v in options.items()]
            return f"{name}({', '.join(parts)})"

        return [f[first], f[second]], write

    if path.endswith(_TORCH_CLOSE[0]) and code.co_name == _TORCH_CLOSE[1]:
        defaults = inspect.signature(torch.testing.assert_close).parameters
        keys = ("rtol", "atol", "equal_nan", "check_device", "check_dtype", "check_layout", "check_stride")
        return spelled(
            "torch.testing.assert_close", "actual", "expected", {k: f[k] for k in keys if k in f and f[k] != defaults[k].default}
        )
    if "numpy/testing" in path and code.co_name in _NUMPY_CHECKS:
        first, second = code.co_varnames[:2]
        keys = ("rtol", "atol", "equal_nan", "strict", "decimal")
        return spelled(f"np.testing.{code.co_name}", first, second, {k: f[k] for k in keys if k in f and k in code.co_varnames})
    if Path(path).resolve() == _CONFORMANCE / "checks.py":
        if code.co_name == "assert_equal":
            a, e = f["actual"], f["expected"]
            return [
                a,
                e,
            ], lambda w: f"torch.testing.assert_close({w.value(a)}.cpu(), {w.value(e)}.cpu(), rtol=0, atol=0)  # exactly equal"
        if code.co_name in ("assert_same_storage", "assert_own_storage"):
            a, b = (f["view"], f["base"]) if code.co_name == "assert_same_storage" else (f["copy"], f["source"])
            op = "==" if code.co_name == "assert_same_storage" else "!="
            return [
                a,
                b,
            ], lambda w: f"assert {w.value(a)}.untyped_storage().data_ptr() {op} {w.value(b)}.untyped_storage().data_ptr()"
    return None


class _Statement:
    """The test's failing statement, its free names bound to what they held."""

    def __init__(self, frame, line: int, exc: BaseException):
        parsed = _parsed(frame.f_code)
        if parsed is None:
            raise Unwritable("the failing code's source is not a whole function")
        tree, first = copy.deepcopy(parsed[0]), parsed[1]  # the parse is cached: edit a copy
        target = line - first + 1
        best = None
        for node in ast.walk(tree):  # the innermost statement that holds the line
            if not isinstance(node, ast.stmt) or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            holds = node.lineno <= target <= (node.end_lineno or node.lineno)
            inside = best is None or (node.lineno >= best.lineno and (node.end_lineno or 0) <= (best.end_lineno or 0))
            if holds and inside:
                best = node
        if best is None:
            raise Unwritable("the failing line is not a statement of the test")
        if _is_fail(best):  # `pytest.fail(...)` closing a `pytest.raises` block: the block failed
            around = [n for n in ast.walk(tree) if _is_raises(n) and n.lineno < best.lineno <= (n.end_lineno or 0)]
            best = max(around, key=lambda n: n.lineno, default=best)
        self._best = best
        self.span = (best.lineno + first - 1, (best.end_lineno or best.lineno) + first - 1)
        self.node = _FailToRaise().visit(_RaisesToTry().visit(best) if _is_raises(best) else best)
        if not isinstance(self.node, (ast.Assert, ast.Try, ast.Expr, ast.Assign, ast.Raise)):
            raise Unwritable(f"the failing statement is a {type(best).__name__}")
        # the conditions it ran under, so that a script for a CUDA check stays silent without CUDA
        for branch in reversed(_enclosing_ifs(tree, best)):
            test = branch[0].test if branch[1] else ast.UnaryOp(ast.Not(), branch[0].test)
            self.node = ast.If(test=test, body=[self.node], orelse=[])
        self.frame = frame
        self.prelude: list[ast.stmt] = []  # assignments of the values it checks, written before it
        self.tree, self.first = tree, first

    def derive(self, names: dict, derivable, traced, operation=lambda node: False) -> None:
        """Write the assignments that made the statement's derived locals (`derivable(name)`: a
        value the test computed, such as `got = (t.shape, t.dtype)`) where they were computed from
        what the trace writes (`traced(value)`: a tensor, a module), instead of their values as
        literals, which would fail on every torch. Only a plain `name = expr` of the test body
        before the statement; a value computed from the drawn inputs alone stays a literal."""
        statements = [n for n in _body_statements(self.tree) if (n.end_lineno or n.lineno) < self.node_line]
        made_by: dict[str, list | None] = {}
        guarded: dict[int, ast.stmt] = {}  # id(assignment) -> it, inside the ifs around it: one node each
        around = {id(i) for i, _ in _enclosing_ifs(self.tree, self._best)}

        def assignment(name) -> list | None:
            """The assignments that made `name`: the last plain one before the statement, and
            before it those it reads `name` from (`x = x[None]`) or that an `if` the statement is
            not under may have skipped (written inside that `if`: its condition decides, as in
            the test); None where no unconditional one is found."""
            if name not in made_by:
                made_by[name] = None
                found = [n for n in statements if name in _assigns(n)]
                chain = []
                for made in reversed(found):
                    ifs = [(i, body) for i, body in _enclosing_ifs(self.tree, made) if id(i) not in around]
                    if ifs and not _ran(ifs[-1], names):
                        continue
                    chain.insert(0, guarded.setdefault(id(made), _guarded(made, ifs)))
                    if not ifs and name not in _loads(made):
                        break
                else:
                    chain = []  # no unconditional assignment: the value may come from elsewhere
                if chain and not _assigns_later(statements, found[-1], name):
                    made_by[name] = chain
            return made_by[name]

        def free_of(name) -> list[str]:
            return [n for node in assignment(name) for n in _free(node) if n in names and n != name]

        depends: dict[str, bool] = {}

        def from_torch(name, seen=()) -> bool:
            if name in depends:
                return depends[name]
            if name in seen or not derivable(name) or assignment(name) is None:
                return False
            calls = any(operation(n) for node in assignment(name) for n in ast.walk(node))  # a declared operation's call
            found = calls or any(traced(names[n]) or from_torch(n, (*seen, name)) for n in free_of(name))
            depends[name] = found
            return found

        wanted = [n for n in self.free_names() if from_torch(n)]
        done = set()
        while wanted:
            name = wanted.pop()
            if name in done:
                continue
            done.add(name)
            for made in assignment(name):
                if not any(made is p for p in self.prelude):
                    self.prelude.append(made)
            wanted += [n for n in free_of(name) if from_torch(n)]
        self.prelude.sort(key=lambda n: n.lineno)

    @property
    def node_line(self) -> int:
        return self.span[0] - self.first + 1

    def spans(self) -> list[tuple[int, int]]:
        """The source lines (absolute) the script writes out whole: the prelude and the statement."""
        return [(n.lineno + self.first - 1, (n.end_lineno or n.lineno) + self.first - 1) for n in self.prelude] + [self.span]

    def free_names(self) -> list[str]:
        return _free_names([*self.prelude, self.node])

    def text(self) -> str:
        return "\n".join(ast.unparse(ast.fix_missing_locations(n)) for n in [*self.prelude, self.node])


def _body_statements(tree) -> list[ast.stmt]:
    """The statements of the test function's own body, nested blocks included, nested functions not."""
    found = []

    def visit(node):
        for field_name in ("body", "orelse", "handlers", "finalbody"):
            for child in getattr(node, field_name, []) or []:
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                    continue
                if isinstance(child, ast.stmt):
                    found.append(child)
                visit(child)

    for root in tree.body:
        visit(root)
    return found


def _assigns(node) -> set[str]:
    """The names a plain assignment statement binds (empty for any other statement)."""
    if not isinstance(node, ast.Assign):
        return set()
    names = set()
    for target in node.targets:
        if not isinstance(target, (ast.Name, ast.Tuple)):
            return set()
        for n in ast.walk(target):
            if isinstance(n, ast.Name):
                names.add(n.id)
            elif not isinstance(n, (ast.Tuple, ast.Store)):
                return set()
    return names


def _assigns_later(statements, made, name) -> bool:
    """Whether a statement between `made` and the failing one rebinds, augments or calls a method of
    `name` (`expected.insert(...)`): then the assignment alone no longer gives its value."""
    later = [n for n in statements if n.lineno > (made.end_lineno or made.lineno)]
    rebinds = any(
        isinstance(n, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.With))
        and any(isinstance(t, ast.Name) and t.id == name and isinstance(t.ctx, ast.Store) for t in ast.walk(n))
        for n in later
    )
    mutates = any(
        isinstance(c, ast.Call)
        and isinstance(c.func, ast.Attribute)
        and isinstance(c.func.value, ast.Name)
        and c.func.value.id == name
        for n in later
        for c in ast.walk(n)
    )
    return rebinds or mutates


def _free_names(statements: list[ast.stmt]) -> list[str]:
    """The names the statements read that they do not bind themselves, in order of first use."""
    bound, loaded = set(), []
    for node in (n for s in statements for n in ast.walk(s)):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Store):
                bound.add(node.id)
            elif node.id not in loaded:
                loaded.append(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler)) and node.name:
            bound.add(node.name)  # an exception's name, or a function or class the statements define
    return [n for n in loaded if n not in bound]


def _free(node) -> list[str]:
    return [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]


@functools.cache
def _parsed(code):
    """(syntax tree, first line) of the function whose code this is; None for code whose source
    is not a whole statement (a lambda inside a larger expression) or not available."""
    try:
        lines, first = inspect.getsourcelines(code)
        return ast.parse(textwrap.dedent("".join(lines))), first
    except (OSError, SyntaxError):
        return None


@functools.cache
def _finally_lines(code) -> frozenset[int]:
    parsed = _parsed(code)
    if parsed is None:
        return frozenset()
    tree, first = parsed
    found = set()
    for node in ast.walk(tree):
        for statement in getattr(node, "finalbody", []) if isinstance(node, ast.Try) else []:
            found.update(range(statement.lineno + first - 1, (statement.end_lineno or statement.lineno) + first))
    return frozenset(found)


@functools.cache
def _assignments_of(code) -> dict[str, set[int]]:
    """Local name -> the lines of the statements that assign it, in `code`'s source."""
    parsed = _parsed(code)
    if parsed is None:
        return {}
    tree, first = parsed
    found: dict[str, set[int]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for name in (n.id for n in ast.walk(target) if isinstance(n, ast.Name)):
                    found.setdefault(name, set()).update(range(node.lineno + first - 1, (node.end_lineno or node.lineno) + first))
    return found


def _loads(node) -> set[str]:
    """The names a statement reads."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _ran(branch, names: dict) -> bool:
    """Whether an `if` branch may have run: False where a name it binds is not a local of the test."""
    node, in_body = branch
    stored = {
        n.id
        for b in (node.body if in_body else node.orelse)
        for n in ast.walk(b)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    return stored <= names.keys()


def _guarded(statement, ifs):
    """`statement` inside the `if`s (outermost first, each with whether it is in the body) around it."""
    for branch, in_body in reversed(ifs):
        test = branch.test if in_body else ast.UnaryOp(ast.Not(), branch.test)
        statement = ast.copy_location(ast.If(test=test, body=[statement], orelse=[]), statement)
    return statement


def _enclosing_ifs(tree, target) -> list[tuple[ast.If, bool]]:
    """The `if` statements around `target`, outermost first, each with whether `target` is in its body."""
    path = []

    def visit(node) -> bool:
        if node is target:
            return True
        for field_name in ("body", "orelse", "handlers", "finalbody"):
            for child in getattr(node, field_name, []) or []:
                if visit(child):
                    if isinstance(node, ast.If):
                        path.append((node, field_name == "body"))
                    return True
        return False

    visit(tree)
    return list(reversed(path))


class _SpecFacts(ast.NodeTransformer):
    """`x.shape`, `x.ndim` and `x.numel` of a drawn TensorSpec `x` are plain values: written as such."""

    def __init__(self, names: dict):
        self.names = names

    def visit_Attribute(self, node):
        from strategies.tensors import TensorSpec

        spec = self.names.get(node.value.id) if isinstance(node.value, ast.Name) else None
        if isinstance(spec, TensorSpec) and node.attr in ("shape", "ndim", "numel"):
            return ast.copy_location(ast.Constant(getattr(self.names[node.value.id], node.attr)), node)
        return self.generic_visit(node)


def _is_raises(node) -> bool:
    if not isinstance(node, ast.With) or len(node.items) != 1:
        return False
    call = node.items[0].context_expr
    return isinstance(call, ast.Call) and ast.unparse(call.func) in ("pytest.raises", "raises")


def _is_fail(node) -> bool:
    """Whether `node` is the statement `pytest.fail(...)`."""
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and ast.unparse(node.value.func) == "pytest.fail"


class _FailToRaise(ast.NodeTransformer):
    """`pytest.fail(message)` as `raise AssertionError(message)`, which needs no pytest (the
    script's failure is compared as AssertionError, pytest.fail's)."""

    def visit_Expr(self, node):
        if not _is_fail(node):
            return self.generic_visit(node)
        call = ast.Call(ast.Name("AssertionError", ast.Load()), node.value.args[:1], [])
        return ast.copy_location(ast.Raise(exc=call), node)


class _RaisesToTry(ast.NodeTransformer):
    """`with pytest.raises(E, match=m): body` as try/except/else, which needs no pytest."""

    def visit_With(self, node):
        call = node.items[0].context_expr
        error = call.args[0]
        match = next((k.value for k in call.keywords if k.arg == "match"), None)
        handler_body = [ast.Pass()]
        if match is not None:
            handler_body = [
                ast.Assert(
                    test=ast.parse("re.search(M, str(error))", mode="eval").body,
                    msg=ast.Constant("the error message does not match"),
                )
            ]
            handler_body[0].test.args[0] = match
        expected = ast.unparse(error)
        return ast.Try(
            body=node.body,
            handlers=[ast.ExceptHandler(type=error, name="error", body=handler_body)],
            orelse=[
                ast.Raise(exc=ast.Call(ast.Name("AssertionError", ast.Load()), [ast.Constant(f"DID NOT RAISE {expected}")], []))
            ],
            finalbody=[],
        )


@functools.cache
def _contexts_of(code) -> dict[int, tuple]:
    """Line -> the `with` statements around it in `code`'s source, outermost first."""
    parsed = _parsed(code)
    if parsed is None:
        return {}
    tree, first = parsed
    found: dict[int, list] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            for n in range(node.body[0].lineno, (node.end_lineno or node.lineno) + 1):
                found.setdefault(n + first - 1, []).append(node)
    return {line: tuple(sorted(nodes, key=lambda w: w.lineno)) for line, nodes in found.items()}
