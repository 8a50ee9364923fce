"""Scripts of a mode's comparison (Note [Repros]): a failing example of the compiled or the
cross-device mode, written as the mode ran it.

A failure of an execution mode is a disagreement between two runs of a declared operation's
`call`: compiled with torch.compile against eager, or on a device against the CPU. Its script is
not a trace of calls (Dynamo traces a TorchFunctionMode's calls differently, and a trace is of
one side) but the declaration's own `call`, copied from its source (a lambda becomes a function;
the suite's torch-only helpers it calls are copied in), the example's inputs as literals for each
side, and the comparison the mode made:

    def call(x, dim):                       # the declaration's call
        return F.softmax(x, dim)

    def inputs():                           # the example, built afresh for each run
        ...
        return (x, -1), {}

    compiled = torch.compile(call, backend='aot_eager')
    same(outcome(compiled, inputs), outcome(call, inputs), ('aot_eager', 'eager'))

`same` compares what the mode compares: the error type, then results and inputs after the call
(on the CPU, at the mode's tolerance), strides where the behaviour documents them, and which
inputs each output shares memory with. Each case of the compiled-inputs mode adds its wrapper
around `call` (a write into the first input after the call, backward from the outputs), and
`dynamic=True` with a second example; the cross-device mode writes `inputs_<device>` and
`inputs_cpu`.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import textwrap
from collections.abc import Callable

import torch

from conformance.repro.calls import ComparedExample
from conformance.repro.spelling import Unwritable, _Writer
from conformance.repro.trace import Trace, _tensors

_WRAPPERS = {
    "mutated": '''
def case(fn):
    """fn, then a write into its first tensor argument"""
    def run(*args, **kwargs):
        out = fn(*args, **kwargs)
        target = next(a for a in args if isinstance(a, torch.Tensor))
        if target.dtype != torch.bool and not target.requires_grad:
            target.mul_(2)
        return out
    return run
''',
    "mutated through a view": '''
def case(fn):
    """fn, then a write into its first tensor argument through a view of it"""
    def run(*args, **kwargs):
        out = fn(*args, **kwargs)
        target = next(a for a in args if isinstance(a, torch.Tensor))
        if target.dtype != torch.bool and not target.requires_grad:
            target[...].mul_(2)
        return out
    return run
''',
    "backward": '''
def case(fn):
    """fn, then backward from the sum of its floating outputs; its result and each leaf input's grad"""
    def run(*args, **kwargs):
        result = fn(*args, **kwargs)
        outputs = [o for o in leaves(result) if isinstance(o, torch.Tensor) and o.requires_grad]
        outputs = [o for o in outputs if o.is_floating_point() or o.is_complex()]
        if outputs:
            sum(o.real.sum() if o.is_complex() else o.sum() for o in outputs).backward()
        inputs = [t for t in leaves((args, kwargs)) if isinstance(t, torch.Tensor) and t.is_leaf]
        return result, tuple(None if t.grad is None else t.grad.detach().clone() for t in inputs)
    return run
''',
}

_WRAPPERS["composed"] = '''
def case(fn):
    """fn between two other operations: its first floating tensor argument squared before, its
    floating outputs of a dim or more through log_softmax over the last dim after"""
    def run(*args, **kwargs):
        args = list(args)
        first = next((i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.is_floating_point()), None)
        if first is not None:
            args[first] = torch.mul(args[first], args[first])
        return after(fn(*args, **kwargs))
    return run


def after(t):
    if isinstance(t, (list, tuple)):
        return type(t)(after(x) for x in t)
    if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dim():
        return torch.nn.functional.log_softmax(t, -1)
    return t
'''

_COMPARISON = '''
def leaves(value):
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else None
    return [value] if items is None else [leaf for v in items for leaf in leaves(v)]

def outcome(fn, inputs):
    """fn's result and inputs after the call (on the CPU), the inputs each output tensor shares memory with; or its error"""
    args, kwargs = inputs()
    try:
        result = fn(*args, **kwargs)
    except Exception as error:
        return None, None, error
    memory = lambda t: t.untyped_storage().data_ptr() if t.numel() and not t.is_meta else None
    given = [memory(t) for t in leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
    outs = [memory(o) for o in leaves(result) if isinstance(o, torch.Tensor)]
    shares = [[i for i, m in enumerate(given) if m is not None and m == o] for o in outs]
    values = [v.detach().cpu() if isinstance(v, torch.Tensor) and not v.is_meta else v for v in leaves((result, args, kwargs))]
    return values, shares, None

def same(actual, expected, labels):
    """The same error type, or the same results and inputs after the call, sharing memory with the same inputs"""
    (got, got_shares, got_error), (want, want_shares, want_error) = actual, expected
    if got_error or want_error:
        assert want_error and isinstance(got_error, type(want_error)), f"{labels}: raised {got_error!r}, {want_error!r}"
        return
{meta}    compared = [(g, w) for g, w in zip(got, want) if isinstance(w, (torch.Tensor, int, float))]
    torch.testing.assert_close([g for g, _ in compared], [w for _, w in compared], equal_nan=True{tolerance})
    assert got_shares == want_shares, f"{labels}: outputs share memory with inputs {got_shares}, {want_shares}"
'''

# written only where a side runs on meta
_META = """    if any(isinstance(v, torch.Tensor) and v.is_meta for v in got + want):  # meta holds no values: what it knows
        kinds = [[(v.dtype, v.shape) for v in side if isinstance(v, torch.Tensor)] for side in (got, want)]
        assert kinds[0] == kinds[1], f"{labels}: dtypes or shapes differ: {kinds[0]}, {kinds[1]}"
        return
"""

_STRIDES = """    for g, w in compared:
        kept = [(a, b) for n, a, b in zip(w.shape, g.stride(), w.stride()) if n > 1] if isinstance(w, torch.Tensor) else []
        assert all(a == b for a, b in kept) or not w.numel(), f"{labels}: strides differ: {g.stride()}, {w.stride()}"
"""


def render(example: ComparedExample, *, header: list[str], device: str | None, backends: list[str]) -> str:
    """The script of a failing example of a mode, or raise Unwritable saying why not."""
    imports: set[str] = set()
    helpers: dict[str, str] = {}
    call = _call_source(example.call, imports, helpers)
    actual, expected = example.labels
    several = len(example.builds) > 1
    if example.expected_builds is None:  # one set of inputs, two ways of running the call
        builders = [_inputs_source(f"inputs{i + 1}" if several else "inputs", b) for i, b in enumerate(example.builds)]
        pairs = [(name, name) for name, _ in builders]
    else:  # the same inputs built on two devices
        sides = [_identifier(actual), _identifier(expected)]
        builders, pairs = [], []
        for i, pair in enumerate(zip(example.builds, example.expected_builds)):
            names = [f"inputs{i + 1}_{side}" if several else f"inputs_{side}" for side in sides]
            builders += [_inputs_source(name, b) for name, b in zip(names, pair)]
            pairs.append(tuple(names))
    tolerance = "".join(f", {k}={v!r}" for k, v in sorted(example.tolerance.items()))
    on_meta = any(str(side).split(":")[0] == "meta" for side in (device, actual, expected))
    comparison = _COMPARISON.replace("{tolerance}", tolerance).replace("{meta}", _META if on_meta else "")
    comparison = comparison.rstrip("\n") + "\n"
    if example.strides:
        comparison += _STRIDES
    body = [*(source for source in helpers.values() if source), call]
    subject = "call"
    if example.wrapper:
        body.append(_WRAPPERS[example.wrapper].strip("\n"))
        subject = "case(call)"
    labels = repr((actual, expected))
    if example.backend is not None:
        options = f"backend={example.backend!r}" + (", dynamic=True" if example.dynamic else "")
        runs = [f"compiled = torch.compile({subject}, {options})"]
        runs += [f"same(outcome(compiled, {a}), outcome({subject}, {e}), {labels})" for a, e in pairs]
    else:
        runs = [f"same(outcome({subject}, {a}), outcome({subject}, {e}), {labels})" for a, e in pairs]
    text = "\n".join([*body, *(source for _, source in builders)])
    head = ["import math"] * ("math." in text) + ["import numpy as np"] * ("np." in text) + ["import torch"]
    head += sorted(i for i in imports if i and i not in head)
    head += [f"import {module}  # the out-of-tree backend that registers {device!r}" for module in backends]
    comments = [line for h in header for line in (textwrap.wrap(h, 116) or [""])]
    parts = [
        "\n".join(["# " + c if c else "#" for c in comments] + head),
        *body,
        *(source for _, source in builders),
        comparison.strip("\n"),
        "\n".join(runs),
    ]
    script = "\n\n".join(parts) + "\n"
    compile(script, "<standalone repro>", "exec")
    return script


def _identifier(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label)


def _call_source(call: Callable, imports: set[str], helpers: dict[str, str]) -> str:
    """`def call(...)`: the declaration's call as written (a lambda's body returned), with the
    imports and the suite's helpers it needs."""
    from conformance.repro.writing import _inline

    function = getattr(call, "__wrapped__", call)
    if function.__name__ != "<lambda>":
        _inline(function, helpers, imports)
        return f"call = {function.__name__}"
    node = _lambda_node(function)
    _free_names(function, node, imports, helpers)
    if _forwards(node):  # `lambda w, lr: step(w, lr)`: the script calls `step` itself
        return f"call = {ast.unparse(node.body.func)}"
    return f"def call({ast.unparse(node.args)}):\n    return {ast.unparse(node.body)}"


def _forwards(node: ast.Lambda) -> bool:
    """Whether the lambda only passes its parameters on, in order, to a named function."""
    a, body = node.args, node.body
    if a.posonlyargs or a.vararg or a.kwonlyargs or a.defaults or not isinstance(body, ast.Call):
        return False
    named = isinstance(body.func, ast.Name) or (isinstance(body.func, ast.Attribute) and isinstance(body.func.value, ast.Name))
    passed = [arg.id if isinstance(arg, ast.Name) else None for arg in body.args]
    keywords = [(k.arg, k.value.id if isinstance(k.value, ast.Name) else None) for k in body.keywords]
    return named and passed == [p.arg for p in a.args] and keywords == ([(None, a.kwarg.arg)] if a.kwarg else [])


def _free_names(function, node: ast.Lambda, imports: set[str], helpers: dict[str, str]) -> None:
    """What a lambda's body names besides its parameters, made available to the script: imports,
    the suite's helpers, and tables of lambdas (the documented spellings of one call)."""
    from conformance.repro.writing import _global

    if function.__closure__:
        raise Unwritable("the declaration's call closes over local values")
    bound = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
    for name in sorted({n.id for n in ast.walk(node.body) if isinstance(n, ast.Name) and n.id not in bound}):
        value = function.__globals__.get(name)
        if _is_lambda_table(value):
            _lambda_table(name, value, imports, helpers)
        elif name in function.__globals__:
            imports.add(_global(name, value, helpers, imports))
        elif not hasattr(builtins, name):
            raise Unwritable(f"the declaration's call names {name!r}, which its module does not hold")


def _lambda_table(name: str, value: dict, imports: set[str], helpers: dict[str, str]) -> None:
    """A table of lambdas (the documented spellings of one call, or calls with their references)
    copied into the script as `name`."""
    if name in helpers:
        return
    helpers[name] = "\n".join(
        [f"{name} = {{", *(f"    {k!r}: {_table_entry(v, imports, helpers)}," for k, v in value.items()), "}"]
    )


def _is_lambda_table(value) -> bool:
    """A dict whose every value is a lambda, or a tuple of lambdas and NumPy's or torch's own
    functions (a call and its reference)."""

    def entry(v) -> bool:
        if isinstance(v, tuple):
            return bool(v) and all(entry(i) for i in v) and any(_is_lambda(i) for i in v)
        return _is_lambda(v) or _library_function(v) is not None

    return isinstance(value, dict) and bool(value) and all(entry(v) for v in value.values())


def _is_lambda(v) -> bool:
    return getattr(v, "__name__", "") == "<lambda>"


def _library_function(v) -> str | None:
    """`np.cos` for NumPy's cos (a ufunc too), `torch.sin` for torch's sin: a public function by its
    module's name, or None."""
    import numpy as np

    name = getattr(v, "__name__", "")
    for module, spelled in ((np, "np"), (torch, "torch")):
        if name and not name.startswith("_") and getattr(module, name, None) is v:
            return f"{spelled}.{name}"
    return None


def _table_entry(value, imports: set[str], helpers: dict[str, str]) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_table_entry(v, imports, helpers) for v in value) + ("," if len(value) == 1 else "") + ")"
    if _is_lambda(value):
        inner = _lambda_node(value)
        _free_names(value, inner, imports, helpers)
        return ast.unparse(inner)
    spelled = _library_function(value)
    if spelled is None:
        raise Unwritable(f"a table of the suite holds {value!r}")
    imports.add("import numpy as np" if spelled.startswith("np.") else "import torch")
    return spelled


def _lambda_node(function) -> ast.Lambda:
    """The lambda expression that made `function`, found in its module's source by its line and
    parameters."""
    try:
        source = inspect.getsource(inspect.getmodule(function))
    except (OSError, TypeError):
        raise Unwritable("the declaration's call has no source to copy") from None
    code = function.__code__
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    tree = ast.parse(source)
    found = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Lambda)
        and n.lineno == code.co_firstlineno
        and tuple(a.arg for a in [*n.args.posonlyargs, *n.args.args, *n.args.kwonlyargs]) == names
    ]
    if len(found) > 1:  # two lambdas of one line and parameters (a call and its reference): by the columns its code spans
        columns = [(c, e) for line, _, c, e in code.co_positions() if line == code.co_firstlineno and c is not None and e > c]
        found = [n for n in found if columns and all(n.col_offset <= c and e <= n.end_col_offset for c, e in columns)] or found
    if len(found) > 1:  # `samples=...map(lambda x: ...), call=lambda x: ...` on one line: the call's
        calls = {id(k.value) for k in ast.walk(tree) if isinstance(k, ast.keyword) and k.arg == "call"}
        found = [n for n in found if id(n) in calls]
    if len(found) != 1:
        raise Unwritable("the declaration's call is a lambda that its source line does not single out")
    return found[0]


def _inputs_source(name: str, build: Callable[[], tuple]) -> tuple[str, str]:
    """(name, `def name(): ... return args, kwargs`): one example's inputs as literals, built
    afresh on each call, storage shared where the example's tensors share it."""
    from conformance.repro.writing import _inputs

    args, kwargs = build()
    trace = Trace()
    trace._see(list(args), dict(kwargs))
    if trace.problem:
        raise Unwritable(trace.problem)
    writer = _Writer(trace, {})
    roots = _tensors((list(args), dict(kwargs)), [])
    lines = _inputs(trace, [], roots, writer)
    returned = f"return {writer.value(tuple(args))}, {writer.value(dict(kwargs))}"
    lines = [*lines, *writer.pending, returned]
    return name, f"def {name}():\n" + "\n".join("    " + line for line in lines)


def verify_on_this_torch(script: str) -> None:
    """Run the script here, where the example failed: it must fail as the comparison did (an
    AssertionError), with Dynamo's errors raised rather than suppressed."""
    from conformance.repro.run import _verify

    with torch._dynamo.config.patch(suppress_errors=False):
        _verify(script, "AssertionError")
