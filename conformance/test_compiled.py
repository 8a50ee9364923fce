"""Compiled against eager: every declared operation gives under torch.compile what it gives eagerly.

An execution mode, not an area (see Note [Compiled execution] in conformance/harness/compiled.py;
collected only with --compile). For each declared Operation, backend and device, one Sample is
built twice, run eagerly and run compiled, and the two outcomes must agree in:
- the type of error raised, if either raised;
- results: structure, dtype and shape exactly, integral and bool values exactly, floating values
  at the dtype's tolerance;
- aliasing: which outputs share memory with which inputs;
- mutations: every input's values after the call;
- autograd: which outputs require grad.
Each item must compile at least one graph (an item that compiled to nothing is no pass), and its
graph breaks are recorded for the report. Compiled items run a third of the profile's examples:
every new shape, dtype or layout compiles afresh.
"""

from dataclasses import dataclass
from functools import cache

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils._pytree import tree_leaves

from conformance.checks import assert_agree


@dataclass
class Outcome:
    error: type | None = None
    result: object = None
    inputs_after: tuple = ()
    aliasing: tuple = ()
    requires_grad: tuple = ()


def _shares_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    if not (a.numel() and b.numel()) or "meta" in (a.device.type, b.device.type):
        return False
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def observe(fn, sample, dtype, device) -> Outcome:
    """Run `fn` on a fresh build of `sample` and record what the comparison needs."""
    args, kwargs = sample.build(dtype=dtype, device=device)
    inputs = [t for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)]
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # the error type is part of the outcome
        return Outcome(error=type(exc))
    outputs = [t for t in tree_leaves(result) if isinstance(t, torch.Tensor)]
    return Outcome(
        result=result if isinstance(result, torch.Tensor) else tuple(outputs),
        inputs_after=tuple(t.detach().clone() for t in inputs),
        aliasing=tuple(tuple(i for i, t in enumerate(inputs) if _shares_memory(out, t)) for out in outputs),
        requires_grad=tuple(out.requires_grad for out in outputs),
    )


class Graphs:
    """Counts the graphs each backend is handed, so an item that compiled nothing shows."""

    compiled = 0


@cache
def counting_backend(mode: str):
    real = torch._dynamo.lookup_backend(mode)

    def backend(graph_module, example_inputs):
        Graphs.compiled += 1
        return real(graph_module, example_inputs)

    return backend


class ItemState:
    nodeid = None
    graphs_before = 0
    breaks_before = 0


def _graph_breaks() -> int:
    from torch._dynamo.utils import counters

    return sum(counters["graph_break"].values())


@pytest.mark.execution_mode("compiled")
@settings(settings.default, max_examples=max(1, settings.default.max_examples // 3))
@given(data=st.data())
def test_compiled_agrees_with_eager(operation, mode, device, dtype, data, request, record_observation):
    if operation.not_compiled:
        pytest.skip(f"not applicable under torch.compile: {operation.not_compiled}")
    if ItemState.nodeid != request.node.nodeid:  # a new item starts from an empty compile cache
        torch._dynamo.reset()
        ItemState.nodeid, ItemState.graphs_before, ItemState.breaks_before = (
            request.node.nodeid,
            Graphs.compiled,
            _graph_breaks(),
        )
    sample = data.draw(operation.samples_for(dtype), label="sample")
    eager = observe(operation.call, sample, dtype, device)
    compiled = observe(torch.compile(operation.call, backend=counting_backend(mode)), sample, dtype, device)
    breaks = _graph_breaks() - ItemState.breaks_before
    record_observation(f"graph breaks under {mode}", str(breaks))
    what = f"{operation.behaviour} under torch.compile(backend={mode!r})"
    assert Graphs.compiled > ItemState.graphs_before, f"{what}: compiled no graph ({breaks} graph breaks): nothing was compared"
    if eager.error or compiled.error:
        assert eager.error and compiled.error and issubclass(compiled.error, eager.error), (
            f"{what}: eager raised {eager.error and eager.error.__name__}, compiled {compiled.error and compiled.error.__name__}"
        )
        return
    assert_agree(compiled.result, eager.result, device=mode, what=f"{what}: result")
    assert_agree(compiled.inputs_after, eager.inputs_after, device=mode, what=f"{what}: inputs after the call")
    assert compiled.aliasing == eager.aliasing, (
        f"{what}: outputs share memory with inputs {compiled.aliasing} (by position), eagerly {eager.aliasing}"
    )
    assert compiled.requires_grad == eager.requires_grad, (
        f"{what}: outputs require grad {compiled.requires_grad}, eagerly {eager.requires_grad}"
    )
