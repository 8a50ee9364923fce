"""The pytest harness of torch-conformance: everything between pytest and a behaviour test.

Note [The harness]
Each module here is one small pytest plugin with one job; conftest.py loads them in the order
of PLUGINS. None of them knows any behaviour: they read markers, parameters and declarations.

    devices        --device: parse, check the machine has them, default devices
    seeding        Hypothesis profiles, --max-examples, one seed per run shared by xdist workers
    parametrize    device x dtype (x operation) parameters from markers and declarations
    identity       behaviour, device, dtype and mode of every item, fixed at collection
    selection      --behaviour, --shuffle-seed
    releases       a behaviour's torch range (catalogue since/until): skipped outside it
    deviations     --known-deviations: expected failures of the user's build
    faults         --inject-fault: run against torch with one catalogued fault
    compiled       --compile: an execution mode per torch.compile backend
    isolation      a test that leaks global torch state fails, and the state is restored
    gpu            per-worker GPU memory share, poisoned CUDA contexts
    observations   the record_observation fixture
    fingerprint    each item's result dtypes and warnings, for the upgrade report (reports.diff)
    repro          a torch-only script for every failing item, traced from its final example
    screen         a failure's example, message, repro line and script first, on one screen
    mutants        --auto-mutants: each passing item run against the automatic API mutants
    distributed    --dist-backend, the rank pool of the distributed area, its opt-in

A behaviour test needs none of this in its own code: see Note [Writing a behaviour test] in
conformance/harness/parametrize.py, and conformance/harness/declaration.py for operations that
every execution mode and device consumes.
"""

PLUGINS = [
    f"conformance.harness.{name}"
    for name in (
        "devices",
        "seeding",
        "parametrize",
        "identity",
        "selection",
        "releases",
        "deviations",
        "faults",
        "isolation",
        "gpu",
        "observations",
        "fingerprint",
        "compiled",
        "repro",
        "screen",
        "mutants",
        "distributed",
    )
]
