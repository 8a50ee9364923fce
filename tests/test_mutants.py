"""The automatic API mutants (conformance/mutants, Note [Automatic API mutants]): each operator
breaks what it says and only that; verdicts and figures come out as documented; a fixed sample of
the catalogue runs end to end (the CI sample of `python -m tools.killmatrix --auto`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conformance.faults import Patcher
from conformance.mutants import Tally, entry_points, install, mutants_for
from conformance.mutants.calls import CLASSES, Call, signatures
from conformance.mutants.operators import OPERATORS, NotApplicable
from reports import strength

ROOT = Path(__file__).resolve().parent.parent


def _call(function, *args, is_method=False, **kwargs) -> Call:
    return Call("test", function, args, kwargs, is_method)


def test_signatures_come_from_the_docstrings_of_c_functions_and_from_python_signatures():
    sum_overloads = signatures(torch.sum)
    assert any([p.name for p in params] == ["input", "dim", "keepdim", "dtype"] for params in sum_overloads)
    method = signatures(torch.Tensor.transpose)[0]
    assert [p.name for p in method] == ["dim0", "dim1"] and all(p.is_dim for p in method)
    softmax = signatures(torch.nn.functional.softmax)[0]
    assert {p.name for p in softmax} >= {"dim", "dtype"} and not any(p.name.startswith("_") for p in softmax)


def test_a_call_binds_positional_and_keyword_arguments_to_documented_parameters():
    x = torch.zeros(2, 3)
    call = _call(torch.sum, x, -1, keepdim=True)
    assert call.bound() == {"input": ("pos", 0), "dim": ("pos", 1), "keepdim": ("kw", "keepdim")}
    assert call.dims() == [(("pos", 1), -1)]
    method = _call(torch.Tensor.transpose, x, 0, -1, is_method=True)
    assert [v for _, v in method.dims()] == [0, -1]


def test_input_classes_say_what_they_name():
    x = torch.zeros(2, 3)
    assert CLASSES["noncontiguous"](_call(torch.exp, x.t())) and not CLASSES["noncontiguous"](_call(torch.exp, x))
    assert CLASSES["negative_dim"](_call(torch.sum, x, -1)) and not CLASSES["negative_dim"](_call(torch.sum, x, 1))
    assert CLASSES["zero_d"](_call(torch.exp, torch.tensor(1.0))) and CLASSES["empty"](_call(torch.exp, torch.zeros(0)))
    assert CLASSES["integral"](_call(torch.abs, torch.zeros(2, dtype=torch.int8)))
    assert CLASSES["half"](_call(torch.exp, torch.zeros(2, dtype=torch.bfloat16)))
    assert CLASSES["keyword_given"](_call(torch.sum, x, dim=0)) and CLASSES["keyword_omitted"](_call(torch.sum, x, 0))
    assert CLASSES["requires_grad"](_call(torch.exp, torch.zeros(2, requires_grad=True)))


def _break(op_id: str, call: Call, param: str = ""):
    return OPERATORS[op_id].mutate(call, {}, param)


def test_result_operators_break_a_fresh_result_and_refuse_where_nothing_would_change():
    x = torch.arange(6.0).reshape(2, 3)
    stock = torch.exp(x)
    for op_id in ("result.constant", "result.off_by_one", "result.off_by_tolerance", "result.dtype", "result.reversed"):
        broken = _break(op_id, _call(torch.exp, x))
        assert not (broken.dtype == stock.dtype and torch.equal(broken, stock)), op_id
    assert _break("result.off_by_one", _call(torch.exp, x)).ne(stock).sum() == 1
    assert torch.equal(_break("result.first_only", _call(torch.exp, x))[1], stock[0])
    with pytest.raises(NotApplicable, match="view"):
        _break("result.constant", _call(torch.Tensor.t, x, is_method=True))  # a view's values are its base's
    with pytest.raises(NotApplicable, match="nothing observable"):
        _break("result.reversed", _call(torch.zeros_like, torch.zeros(3)))  # a palindrome reversed
    with pytest.raises(NotApplicable, match="no wider"):
        _break("result.narrow_then_widened", _call(torch.exp, x))


def test_a_view_is_returned_as_a_copy_and_a_narrow_computation_wraps_around():
    x = torch.arange(6.0).reshape(2, 3)
    copy = _break("result.copy_not_view", _call(torch.Tensor.t, x, is_method=True))
    assert copy.untyped_storage().data_ptr() != x.untyped_storage().data_ptr() and torch.equal(copy, x.t())
    small = torch.full((4,), 100, dtype=torch.int8)
    assert _break("result.narrow_then_widened", _call(torch.sum, small)).item() == (400 + 128) % 256 - 128


def test_argument_operators_change_the_argument_they_name():
    x = torch.arange(24.0).reshape(2, 3, 4)
    assert _break("args.default_changed", _call(torch.sum, x, 0), "keepdim").shape == (1, 3, 4)
    assert _break("args.given_ignored", _call(torch.sum, x, 0, keepdim=True), "keepdim").shape == (3, 4)
    assert _break("args.negative_dim_off_by_one", _call(torch.sum, x, -1)).shape == (2, 4)  # -1 read as dim 1
    out = torch.empty(3, 4)
    _break("args.out_ignored", _call(torch.sum, x, 0, out=out.fill_(7)))
    assert torch.equal(out, torch.full((3, 4), 7.0))
    assert _break("args.dtype_ignored", _call(torch.sum, x, dtype=torch.float64)).dtype == torch.float32
    a, b = torch.tensor([1.0]), torch.tensor([3.0])
    assert _break("args.tensors_swapped", _call(torch.sub, a, b)).item() == 2.0


def test_in_place_operators_leave_self_wrong_and_the_version_unbumped():
    x = torch.zeros(3)
    result = _break("inplace.lands_in_copy", _call(torch.Tensor.add_, x, 1, is_method=True))
    assert torch.equal(result, torch.ones(3)) and torch.equal(x, torch.zeros(3))
    base = torch.zeros(2, 3)
    target = base.t()  # memory order differs from row-major order
    _break("inplace.memory_order", _call(torch.Tensor.copy_, target, torch.arange(6.0).reshape(3, 2), is_method=True))
    # every value written, in the wrong places
    assert not torch.equal(target, torch.arange(6.0).reshape(3, 2)) and torch.equal(
        target.flatten().sort().values, torch.arange(6.0)
    )
    stepped = torch.zeros(6)[::2]  # not contiguous, but its memory order is its row-major order
    with pytest.raises(NotApplicable, match="row-major"):
        _break("inplace.memory_order", _call(torch.Tensor.copy_, stepped, torch.arange(3.0), is_method=True))
    y = torch.zeros(3)
    version = y._version
    _break("inplace.version_not_bumped", _call(torch.Tensor.add_, y, 1, is_method=True))
    assert y._version == version and torch.equal(y, torch.ones(3))


def test_error_operators_swallow_or_retype_an_error_and_refuse_a_call_that_raised_nothing():
    bad = _call(torch.Tensor.view, torch.zeros(2, 3).t(), 6, is_method=True)
    assert _break("errors.not_raised", bad) is bad.args[0]
    with pytest.raises(ValueError, match="was RuntimeError"):
        _break("errors.other_type", _call(torch.Tensor.view, torch.zeros(2, 3).t(), 6, is_method=True))
    with pytest.raises(NotApplicable):
        _break("errors.not_raised", _call(torch.exp, torch.zeros(2)))


def test_optimizer_hyperparameters_are_read_once_when_cached():
    p = torch.nn.Parameter(torch.zeros(1))
    sgd = torch.optim.SGD([p], lr=1.0)
    state, patcher, tally = {}, Patcher(), Tally()
    (step,) = [
        m for m in mutants_for(["torch.optim.SGD"])[0] if m.operator.id == "state.hyperparameter_cached" and not m.input_class
    ]
    import conformance.mutants as mutants

    try:
        mutants.called_from_test, original = (lambda: True), mutants.called_from_test
        install(patcher, step, tally, state)
        for lr in (1.0, 10.0):
            sgd.param_groups[0]["lr"] = lr
            p.grad = torch.ones(1)
            sgd.step()
    finally:
        patcher.undo()
        mutants.called_from_test = original
    assert p.item() == -2.0 and tally.fired == 1  # the second step still used lr=1.0


def test_mutants_act_only_on_calls_a_behaviour_test_makes():
    """The suite's own strategies and checks keep stock torch: a mutant is killed by a behaviour's
    checks, never by the machinery that builds its inputs breaking."""
    (constant,) = [m for m in mutants_for(["torch.exp"])[0] if m.operator.id == "result.constant" and not m.input_class]
    patcher, tally = Patcher(), Tally()
    install(patcher, constant, tally, {})
    try:
        assert torch.equal(torch.exp(torch.zeros(2)), torch.ones(2))  # called from tests/, not conformance.test_*
    finally:
        patcher.undo()
    assert tally.calls == 0


def test_every_catalogue_api_has_mutants_or_says_why_not():
    from conformance import catalogue

    for behaviour in catalogue.behaviours().values():
        mutants, none = mutants_for(behaviour.apis)
        for api in behaviour.apis:
            entries, reason = entry_points(api)
            assert entries or reason, f"{behaviour.id}: {api} has neither entry points nor a reason"
        assert mutants or none, behaviour.id


def _worker_file(tmp_path: Path, mutants: dict) -> Path:
    path = tmp_path / "auto-gw0.json"
    record = {"items": ["t[cpu]"], "stock_failures": [], "no_mutants": {}, "mutants": mutants}
    path.write_text(json.dumps({"views.transpose_shares": record}))
    return path


def _mutant(op: str, key: str, fired: int, killed: bool = False, cls: str = "", in_class: int = 0) -> dict:
    return {
        "api": "Tensor.transpose",
        "operator": op,
        "kind": "result",
        "param": "",
        "class": cls,
        "key": key,
        "killed_by": {"item": "t[cpu]", "error": "AssertionError: x"} if killed else None,
        "tally": {
            "calls": 5,
            "in_class": in_class or fired,
            "fired": fired,
            "reasons": {} if fired else {"the result is not a tensor": 5},
        },
    }


def test_verdicts_and_the_kill_rate_follow_the_documented_rules(tmp_path):
    _worker_file(
        tmp_path,
        {
            "Tensor.transpose:result.constant": _mutant("result.constant", "result.constant", 3, killed=True),
            "Tensor.transpose:result.dtype": _mutant("result.dtype", "result.dtype", 2),
            "Tensor.transpose:result.constant@zero_d": _mutant("result.constant", "result.constant@zero_d", 0, cls="zero_d"),
            "Tensor.transpose:errors.not_raised": _mutant("errors.not_raised", "errors.not_raised", 0),
        },
    )
    rows = strength.verdicts(strength.load_workers([tmp_path]))["views.transpose_shares"]
    statuses = {m: r["status"] for m, r in rows["mutants"].items()}
    assert statuses == {
        "Tensor.transpose:result.constant": "killed",
        "Tensor.transpose:result.dtype": "survived",
        "Tensor.transpose:result.constant@zero_d": "unreached",
        "Tensor.transpose:errors.not_raised": "not applicable",
    }
    assert rows["strength"] == 0.5
    summary = strength.summarise({"views.transpose_shares": rows})
    assert summary["areas"]["views"]["kill_rate"] == 0.5 and summary["overall"]["unreached"] == 1


def test_a_corrupt_mutants_or_strength_file_is_named_in_one_line_and_exit_2(tmp_path):
    (tmp_path / "auto-gw0.json").write_text("{not json")
    with pytest.raises(strength.StrengthError, match="auto-gw0.json"):
        strength.load_workers([tmp_path])
    bad = tmp_path / "strength.json"
    bad.write_text('{"summary": {}}')
    run = subprocess.run(
        [sys.executable, "-m", "tools.killmatrix", "--auto-merge", str(bad)], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 2 and "not a strength file" in run.stderr and len(run.stderr.strip().splitlines()) == 1


# The CI sample of the full run: one behaviour per kind of operator the sample must show killed.
SAMPLE = "views.transpose_shares,reductions.inplace_underscore,optim.sgd_step"


@pytest.mark.timeout(600)
def test_a_fixed_sample_of_the_catalogue_runs_end_to_end(tmp_path):
    out = tmp_path / "strength.json"
    run = subprocess.run(
        [sys.executable, "-m", "tools.killmatrix", "--auto", "--behaviour", SAMPLE, "-n", "0", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    data = strength.load(out)
    status = {m: r["status"] for b in data["behaviours"].values() for m, r in b["mutants"].items()}
    for killed in (
        "Tensor.transpose:result.copy_not_view",
        "Tensor.transpose:args.negative_dim_off_by_one",
        "Tensor.add_:inplace.lands_in_copy",
        "Tensor.mul_:inplace.memory_order",
    ):
        assert status.get(killed) == "killed", (killed, status.get(killed))
    assert data["summary"]["overall"]["kill_rate"] is not None
