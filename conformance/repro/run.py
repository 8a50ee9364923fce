"""Running a script (Note [Repros]): here, where the test failed, with torch's global state put back."""

from __future__ import annotations

import warnings

import torch

from conformance.harness.isolation import default_device, restore_default_device
from conformance.repro.spelling import Unwritable


def _verify(script: str, fails_with: str) -> None:
    """Run the script here, where the test just failed: it must fail the same way."""
    raised = run_here(script)
    if raised is None:
        raise Unwritable("the script does not fail where the test did")
    if raised != fails_with:
        raise Unwritable(f"the script raised {raised} where the test raised {fails_with}")


def run_here(script: str) -> str | None:
    """Run a script in this process; the name of the exception it raised, or None. torch's global
    state (grad mode, default dtype and device, the CPU generator, deterministic algorithms) is put
    back afterwards."""
    # saved and put back by hand: fork_rng calls torch functions a fault may have replaced
    grad, dtype, generator = torch.is_grad_enabled(), torch.get_default_dtype(), torch.random.get_rng_state()
    device = default_device()
    # a script may turn deterministic algorithms on (what torch.empty holds under them is documented)
    deterministic = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    fill = torch._C._get_deterministic_fill_uninitialized_memory()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(script, "<standalone repro>", "exec"), {"__name__": "__main__"})
    except Exception as exc:  # the script's failure is the point
        return type(exc).__name__
    except SystemExit as exc:  # a script that ends early (past the failing run's draws) passes if it exits 0
        return None if exc.code in (0, None) else "SystemExit"
    finally:
        torch.set_grad_enabled(grad)
        torch.set_default_dtype(dtype)
        restore_default_device(device)  # a script that set it and failed before setting it back
        torch.random.set_rng_state(generator)
        now = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
        if now != deterministic:  # only then: it imports torch._inductor, whose import a fault may break
            torch.use_deterministic_algorithms(deterministic[0], warn_only=deterministic[1])
        torch._C._set_deterministic_fill_uninitialized_memory(fill)
    return None
