"""The pytest machinery of torch-conformance: options, profiles, devices and dtypes.

Note [Writing a behaviour test]
A behaviour test names its catalogue entry and asks for the parameters it needs:

    @pytest.mark.behaviour("numpy_bridge.numpy_shares_memory")
    @pytest.mark.dtypes("numpy")                 # parametrize `dtype` over a group, per device
    @pytest.mark.device_types("cpu")             # other devices skip with a reason
    @given(x=specs(layouts=WRITABLE_LAYOUTS))
    def test_numpy_shares_memory(device, dtype, x):
        t = x.build(dtype=dtype, device=device)
        ...

`device` and `dtype` are pytest parameters (never Hypothesis draws), so each (device, dtype)
pair is its own test item with an id like `test_numpy_shares_memory[cpu-float32]`; `-k cuda`
selects the CUDA items. Devices come from `--device` (default: cpu, and cuda/mps where
present; cuda is listed as skipped when absent, so a CPU-only run says what it did not check).
"""
from __future__ import annotations

import os
import random

import pytest
from hypothesis import settings

from conformance import devices as device_options
from conformance import profiles

# torch is imported inside the hooks that need it: the xdist controller imports it only after
# its workers have started, so the two imports overlap instead of adding up.

DEVICES = pytest.StashKey[list]()
RUN_SEED = pytest.StashKey[object]()
PROFILE = pytest.StashKey[str]()
FAULT = pytest.StashKey[object]()


def pytest_addoption(parser):
    group = parser.getgroup("torch-conformance")
    group.addoption("--device", action="append", default=None, metavar="DEVICE[,DEVICE...]",
                    help="torch device strings to check (cpu, cuda, cuda:1, mps, meta, ...); "
                         "repeatable or comma-separated. Default: cpu plus cuda and mps where present. "
                         "A device this machine lacks is an error, so a GPU runner can demand CUDA.")
    group.addoption("--max-examples", default=None, metavar="N",
                    help="Hypothesis examples per test item, overriding the profile's count")
    group.addoption("--behaviour", action="append", default=None, metavar="ID[,ID...]",
                    help="run only the tests of these catalogue behaviours; an area name "
                         "(numpy_bridge) selects all of its behaviours")
    group.addoption("--shuffle-seed", default=None, metavar="N",
                    help="run the tests in an order shuffled with this seed (isolation check)")
    group.addoption("--inject-fault", default=None, metavar="FAULT",
                    help="run against torch with one catalogued fault injected "
                         "(see conformance/faults); stock torch is untouched without it")


def _ci_requested() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    profiles.register()
    name = config.getoption("hypothesis_profile", None)
    if name:
        if name not in profiles.PROFILES:
            raise pytest.UsageError(f"--hypothesis-profile {name!r}: unknown profile; "
                                    f"known: {', '.join(profiles.PROFILES)}")
    else:
        name = "ci" if _ci_requested() else "default"
        settings.load_profile(name)
    config.stash[PROFILE] = name

    shuffle = config.getoption("shuffle_seed")
    if shuffle is not None and not str(shuffle).isdigit():
        raise pytest.UsageError(f"--shuffle-seed {shuffle!r}: expected a non-negative whole number")

    raw = config.getoption("max_examples")
    if raw is not None:
        try:
            count = int(raw)
        except ValueError:
            count = -1
        if count < 1:
            raise pytest.UsageError(f"--max-examples {raw!r}: expected a positive whole number")

    fault_id = config.getoption("inject_fault")
    if fault_id:
        from conformance import faults

        try:
            config.stash[FAULT] = faults.inject(fault_id)
        except KeyError:
            raise pytest.UsageError(f"--inject-fault {fault_id!r}: no such fault; list them with "
                                    "python -m conformance.faults.killmatrix --list") from None

    # Two xdist workers on two cores: torch's intra-op threads would fight each other.
    if hasattr(config, "workerinput") and "OMP_NUM_THREADS" not in os.environ:
        import torch

        torch.set_num_threads(1)
    config.pluginmanager.register(_DeviceResolver(), "conformance-devices")


class _DeviceResolver:
    """Works out the devices under test. On the xdist controller this runs after the workers
    were started (trylast sessionstart), and it alone checks that the devices exist: a device
    this machine lacks is a usage error there, before any test runs."""

    @pytest.hookimpl(trylast=True)
    def pytest_sessionstart(self, session):
        config = session.config
        option = config.getoption("device")
        try:
            if option is None:
                config.stash[DEVICES] = device_options.default_devices()
            else:
                names = device_options.parse(option)
                if not hasattr(config, "workerinput"):
                    for name in names:
                        device_options.check_available(name)
                config.stash[DEVICES] = [(name, None) for name in names]
        except device_options.DeviceError as exc:
            raise pytest.UsageError(str(exc)) from None


def pytest_unconfigure(config):
    patcher = config.stash.get(FAULT, None)
    if patcher is not None:
        patcher.undo()


def behaviour_of(item) -> str | None:
    marker = item.get_closest_marker("behaviour")
    return marker.args[0] if marker else None


def pytest_report_header(config):
    seed = config.getoption("shuffle_seed")
    return f"torch-conformance: tests shuffled with seed {seed}" if seed is not None else None


def pytest_terminal_summary(terminalreporter, config):
    seed = config.getoption("shuffle_seed")
    if seed is not None:
        terminalreporter.write_line(f"torch-conformance: tests shuffled with seed {seed}")


def pytest_collection_modifyitems(config, items):
    seed = config.getoption("shuffle_seed")
    if seed is not None:  # every xdist worker shuffles the same way, so their collections agree
        random.Random(int(seed)).shuffle(items)
    wanted = config.getoption("behaviour")
    if not wanted:
        return
    names = {n.strip() for value in wanted for n in value.split(",") if n.strip()}
    keep, drop = [], []
    for item in items:
        bid = behaviour_of(item)
        selected = bid is not None and (bid in names or bid.split(".")[0] in names)
        (keep if selected else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(optionalhook=True)  # an xdist hook: unknown when xdist is absent or disabled
def pytest_configure_node(node):
    """xdist controller: every worker runs with the controller's seed."""
    node.workerinput["conformance_seed"] = node.config.stash.get(RUN_SEED, None)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    config = session.config
    # Applied here, after Hypothesis' own plugin has loaded --hypothesis-profile.
    raw = config.getoption("max_examples")
    if raw is not None:
        settings.register_profile("cli", parent=settings.default, max_examples=int(raw))
        settings.load_profile("cli")
    from hypothesis import core

    seed = config.getoption("hypothesis_seed", None)
    if hasattr(config, "workerinput"):
        seed = config.workerinput.get("conformance_seed")
    elif seed is None and not settings.default.derandomize:
        # One seed for the whole run, so every failure replays with --hypothesis-seed.
        seed = random.randrange(2**32)
    if seed is not None and not settings.default.derandomize:
        core.global_force_seed = int(seed) if str(seed).isdigit() else seed
    config.stash[RUN_SEED] = seed


def run_seed(config):
    return config.stash.get(RUN_SEED, None)


def run_profile(config) -> str:
    return config.stash.get(PROFILE, "default")


@pytest.fixture
def record_observation(request):
    """Record what torch did where the docs promise nothing (version- or device-dependent
    behaviour): the report shows it beside the behaviour instead of asserting a value."""
    def record(what: str, value: str) -> None:
        props = request.node.user_properties
        props[:] = [p for p in props if not (p[0] == "observation" and p[1][0] == what)]
        props.append(("observation", (what, value)))
    return record


def pytest_generate_tests(metafunc):
    if "device" not in metafunc.fixturenames:
        return
    import torch

    from strategies.dtypes import dtype_name, dtypes_for

    config = metafunc.config
    concerned = metafunc.definition.get_closest_marker("device_types")
    off_cpu = metafunc.definition.get_closest_marker("off_cpu")
    dtype_marker = metafunc.definition.get_closest_marker("dtypes")
    wants_dtype = "dtype" in metafunc.fixturenames
    if wants_dtype != (dtype_marker is not None):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: a `dtype` argument and "
                                "@pytest.mark.dtypes(group) go together")
    params = []
    devices = list(config.stash[DEVICES])
    # A second device for CPU-only machines, where it means something (moves, leaf status).
    if metafunc.definition.get_closest_marker("meta_too") and "meta" not in [n for n, _ in devices] \
            and config.getoption("device") is None:
        devices.append(("meta", None))
    two_gpus = metafunc.definition.get_closest_marker("needs_two_cuda")
    for name, unavailable in devices:
        kind = torch.device(name).type
        marks = []
        if unavailable:
            marks.append(pytest.mark.skip(reason=unavailable))
        elif concerned and kind not in concerned.args:
            marks.append(pytest.mark.skip(
                reason=f"not applicable: the behaviour concerns {'/'.join(concerned.args)} tensors"))
        elif off_cpu and kind == "cpu":
            marks.append(pytest.mark.skip(reason="not applicable: the behaviour concerns tensors off the CPU"))
        elif two_gpus and (kind != "cuda" or torch.cuda.device_count() < 2):
            marks.append(pytest.mark.skip(reason=f"needs two CUDA devices; this machine has "
                                                 f"{torch.cuda.device_count()}" if kind == "cuda"
                                          else "not applicable: the behaviour concerns two CUDA devices"))
        if not wants_dtype:
            params.append(pytest.param(name, id=name, marks=marks))
            continue
        if unavailable:  # one skipped item says it all: no per-dtype items that can never run
            params.append(pytest.param(name, None, id=name, marks=marks))
            continue
        for dtype in dtypes_for(dtype_marker.args[0], kind):
            params.append(pytest.param(name, dtype, id=f"{name}-{dtype_name(dtype)}", marks=marks))
    metafunc.parametrize(("device", "dtype") if wants_dtype else "device", params)
