"""Repros: the torch calls of a failing example, written out as a torch-only script.

Note [Repros]
A failing item's Hypothesis example names our strategies and helpers; a PyTorch bug report needs
a script that runs with nothing but torch (and NumPy where the behaviour concerns NumPy). So the
final, failing run of an example (and only that run: passing examples pay nothing) executes under
a `Trace`, a TorchFunctionMode that records each outermost torch call the test makes: the
function's public name, its arguments and its result. A tensor first seen as an argument without
having been made by a recorded call (what the strategies built, a module's parameters) is
snapshotted there and then: its whole storage as a literal, rebuilt with `as_strided`, so strides,
storage offset and shared storage survive.

The failing check decides what the script asserts:
- a failed assertion helper (torch.testing.assert_close, np.testing.assert_*, the helpers of
  conformance/checks.py) is written out from the arguments it was called with;
- any other failure is written out from the test's own failing statement, its free names bound to
  the values they held (tensors by the recorded calls that made them, the rest as literals), and
  `pytest.raises` spelled with try/except.
Only the calls that the final check depends on are kept: a backward walk from the tensors it
reads, keeping each call that made one of them, wrote into their storage, ran backward, or drew
from the random generator after a seed the test set. Calls made in no_grad or inference mode are
written inside the same context.

A fault (conformance/faults) replaces a public torch function with a Python wrapper, which no
TorchFunctionMode sees; the fault's Patcher therefore reports its wrappers to the trace as the
public function they replace (`calls.public_call`), so the script calls what the test called.

Where an example cannot be written out faithfully (a generator object as an argument, a non-leaf
tensor the trace never saw made), `render` says why instead of guessing. The test is then written
from its source instead (source.py): its body through the failing statement, its drawn inputs
built afresh as the tensors they made, its `data` draws as the values drawn, and the helpers and
classes it uses copied in. That covers what a trace cannot see: values computed in Python, a
custom autograd.Function, hook or Dataset the test defines, and a test that compiles (marked
`untraced`, since torch.compile under the trace's mode traces the mode too). Both ways, the script
is shown only once it has failed where the test did and passed on stock torch.

The package, one job a module; each depends only on those above it:

    calls     what the suite's helpers and faults tell a trace (checks.py and faults/ use only this)
    spelling  values and recorded calls as torch-only source; Unwritable
    trace     the Trace: each outermost torch call of the final example, and snapshots of its inputs
    failing   the failing check: the assertion helper or test statement, read from the traceback
    run       running a script here, torch's global state put back
    writing   render: the script, from the inputs through the kept calls to the check
    compared  an execution mode's script (compiled, cross-device): not traced, but the
              declaration's call from its source, each side's inputs, the mode's comparison
    source    a test written from its source: what the trace cannot write, and the distributed
              area's tests (their ranks run in a gloo group the script forks)

conformance/harness/repro.py is the pytest plugin that traces and prints; `python -m tools.repro`
runs the scripts a results file holds.
"""
