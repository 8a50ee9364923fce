"""Compiled against eager: every declared operation gives under torch.compile what it gives eagerly.

An execution mode, not an area (see Note [Compiled execution] in conformance/harness/compiled.py;
collected only with --compile). For each declared Operation, backend and device, one Sample is
built twice, run eagerly and run compiled, and the two outcomes are compared with the comparison
every mode shares (Note [Comparing two runs of an operation] in conformance/harness/agreement.py):
the error raised, results, strides where documented, aliasing, every input after the call, and
autograd flags, on whatever device the item runs. Where both sides raise the same error type the
item passes that example, whether or not a graph was compiled; otherwise each item must compile
at least one graph (an item that compiled to nothing is no pass), and its graph breaks are
recorded for the report. Compiled items run a twelfth of the profile's examples (see below).
"""

from functools import cache

import pytest
import torch
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from conformance.harness.agreement import run_and_compare
from conformance.harness.compiled import backend_divergences
from conformance.repro.calls import ComparedExample, compared_example


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
# A twelfth of the profile's examples (2 of ci's 25): each example of a new shape, dtype or layout
# compiles afresh, and from the second shape on Dynamo recompiles with dynamic shapes, which costs
# seconds per example (measured on 2 cores: about 0.7 s for one example, 5 s for three). Across
# items the catalogue is still covered every run; `--hypothesis-profile=thorough` draws 83.
# No shrinking either: every shrink step compiles afresh, so a failing item (the known SGD
# divergence) ran into the 300 s per-test timeout instead of reporting its failure.
@settings(
    settings.default,
    max_examples=max(1, settings.default.max_examples // 12),
    phases=[phase for phase in settings.default.phases if phase != Phase.shrink],
)
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
    what = f"{operation.behaviour} under torch.compile(backend={mode!r})"
    tolerance = operation.tolerance(device, dtype, mode=mode, also=backend_divergences())
    compared_example(  # what a failing example's script compares
        ComparedExample(
            operation.call,
            [lambda: sample.build(dtype=dtype, device=device)],
            (mode, "eager"),
            backend=mode,
            tolerance=tolerance,
            strides=operation.compare_strides,
        )
    )
    compiled, eager = run_and_compare(
        operation,
        sample,
        dtype=dtype,
        actual=(mode, device, torch.compile(operation.call, backend=counting_backend(mode))),
        expected=("eager", device, operation.call),
        what=what,
        **tolerance,
    )
    breaks = _graph_breaks() - ItemState.breaks_before
    record_observation(f"graph breaks under {mode}", str(breaks))
    if compiled.error is None:  # (an error both sides raised is agreement, whether a graph was compiled or not)
        assert Graphs.compiled > ItemState.graphs_before, (
            f"{what}: compiled no graph ({breaks} graph breaks): nothing was compared"
        )
