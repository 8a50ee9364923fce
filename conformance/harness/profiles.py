"""Hypothesis profiles of the suite.

    default   local runs: random inputs, 25 examples per test item
    ci        chosen when the CI variable is set: derandomized (same inputs on every run), 25 examples
    thorough  1000 examples per test item, for release checks
    quick     5 examples per test item, for editing a test
    faults    ci's inputs without shrinking, for fault injection runs

No profile has a deadline: the first CUDA call of a worker takes far longer than the rest, and
a per-test timeout (not a per-example deadline) is what catches a hang.
"""

from hypothesis import HealthCheck, Phase, settings

_COMMON = dict(
    deadline=None,
    print_blob=True,
    # One test item is one (device, dtype) cell; Hypothesis sees the same function many times.
    suppress_health_check=[
        HealthCheck.differing_executors,
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
    ],  # record_observation only appends
)

PROFILES = {
    "default": dict(max_examples=25),
    "ci": dict(max_examples=25, derandomize=True, database=None),
    "thorough": dict(max_examples=1000),
    "quick": dict(max_examples=5),
    # the fault kill matrix: ci's inputs, but stop at the first failure without shrinking it
    "faults": dict(max_examples=25, derandomize=True, database=None, phases=[Phase.explicit, Phase.reuse, Phase.generate]),
}


def register() -> None:
    # Hypothesis' own defaults as the parent, not whatever is loaded: where the CI variable is set,
    # Hypothesis loads its built-in `ci` profile (derandomized), which would leak into `default`.
    base = settings.get_profile("default")
    for name, values in PROFILES.items():
        settings.register_profile(name, parent=base, **{**_COMMON, **values})
