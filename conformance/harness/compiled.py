"""--compile: an execution mode per torch.compile backend, over every declared operation.

Note [Compiled execution]
`pytest --compile=aot_eager[,inductor]` adds conformance/test_compiled.py's items: every declared
Operation (conformance/harness/declaration.py) run compiled with each backend and compared with
the same Sample run eagerly (see that module for what is compared). Without --compile the module
is not collected, so the default run is unchanged. The backend name is the item's execution
mode: in its test id (`[softmax.range_and_sum-aot_eager-cpu-float32]`), in -k, in the report
(its own column group), and in known deviations (`mode = "aot_eager"`).

No silent fallback: Dynamo's recompile limit (8 by default, reached within a few dozen examples
of different shapes, after which it silently runs eager code) is raised for the run and hitting
it fails the item; every example must compile at least one graph, and graph breaks are counted
per item and shown in the report. Compile caches go to a directory of this run.

A backend's documented numerics that differ from eager's on every operation are `Divergence`
data here (`backend_divergences()`, with the documented reason quoted), read after an operation's
own divergences; one that a single operation shows goes into its declaration.

Quiet by default: torch's structured trace log (`torch.__trace`, always at DEBUG) and Dynamo's,
AOTAutograd's and Inductor's own logs below ERROR would fill a failure's captured log with
hundreds of lines (pytest captures non-propagating loggers too). `TORCH_TRACE` or `TORCH_LOGS`
in the environment keeps torch's own settings.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile

import pytest

from reports.schema import RUN

MODES = pytest.StashKey[list]()


def _inductor_elides_low_precision_casts() -> bool:
    import torch._inductor.config

    return not torch._inductor.config.emulate_precision_casts


@functools.cache
def backend_divergences() -> tuple:
    """Divergences of whole backends (imported lazily: the plugin loads before torch is needed)."""
    from conformance.harness.declaration import Divergence

    return (
        Divergence(
            device_type=None,
            mode="inductor",
            tolerance="inductor_fused_low_precision",
            reason="torch._inductor.config.emulate_precision_casts: 'PyTorch eager computes bf16/fp16 by upcasting "
            "inputs to fp32 and downcasting after. When two low precision operators are fused together, Inductor "
            "will elide the downcast-upcast pairs (effectively a precision truncation) that would occur between "
            "these two operators.'",
            applies=_inductor_elides_low_precision_casts,
        ),
    )


def pytest_addoption(parser):
    parser.getgroup("torch-conformance").addoption(
        "--compile",
        action="append",
        default=None,
        metavar="BACKEND[,BACKEND...]",
        help="also run every declared operation under torch.compile with these backends "
        "(aot_eager, inductor, ...) and compare it with eager execution",
    )


_COMPILER_LOGS = ("torch._dynamo", "torch._functorch", "torch._inductor", "torch.fx.experimental.symbolic_shapes")


def quiet_torch_logs() -> None:
    """Silence what torch logs while it compiles, unless the user asked for it."""
    if not os.environ.get("TORCH_TRACE") and not os.environ.get("TORCH_COMPILE_DEBUG"):
        from torch._logging._internal import trace_log

        trace_log.setLevel(logging.CRITICAL + 1)  # torch tests this level, not logging.disable
    if not os.environ.get("TORCH_LOGS"):
        for name in _COMPILER_LOGS:
            logging.getLogger(name).setLevel(logging.ERROR)


def pytest_configure(config):
    quiet_torch_logs()
    values = config.getoption("compile") or ()
    modes = list(dict.fromkeys(m.strip() for v in values for m in v.split(",") if m.strip()))
    config.stash[MODES] = modes
    if not modes:
        return
    import torch._dynamo

    known = torch._dynamo.list_backends(exclude_tags=())
    unknown = [m for m in modes if m not in known]
    if unknown:
        raise pytest.UsageError(
            f"--compile {','.join(unknown)!r}: not a torch.compile backend; known: {', '.join(sorted(known))}"
        )
    config.stash.setdefault(RUN, {})["compile"] = modes
    torch._dynamo.config.recompile_limit = 100_000
    torch._dynamo.config.accumulated_recompile_limit = 1_000_000
    torch._dynamo.config.fail_on_recompile_limit_hit = True
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:  # one cache per run, shared by its workers
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="conformance-compile-")


def pytest_ignore_collect(collection_path, config):
    if collection_path.name in ("test_compiled.py", "test_compiled_inputs.py") and not config.getoption("compile"):
        return True
    return None


def compile_modes(config) -> list[str]:
    return config.stash.get(MODES, [])
