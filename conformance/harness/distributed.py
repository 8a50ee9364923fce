"""Process groups for the distributed area: a pool of rank processes, started once per test module.

Note [The rank pool]
`torch.distributed` needs one process per rank. Starting them per example (`mp.spawn` in every
test) would cost seconds each, so a test module holds one `RankPool` of up to four processes,
started by the suite itself (`subprocess`, no `multiprocessing` machinery), and feeds it work:

    pool = RankPool(size=4, backend="gloo")
    results = pool.run(3, all_reduce_on_rank, spec, op)   # a group of 3 ranks; ranks 3.. idle

`run(world_size, task, *args)` sends `task` (a module-level function, pickled by name) to every
rank; ranks below `world_size` call `task(ctx, *args)` inside a default process group of exactly
that size (`init_process_group` over a TCPStore the parent hosts; when the size changes, each
rank destroys its group and joins a new one under a fresh store prefix), and the others idle. It
returns the ranks' results in rank order, or raises `RankError` carrying each rank's exception.
Hypothesis draws in the parent; ranks only build their inputs from the drawn spec and call torch.

Clean teardown is the point of the design (issue 28: no stray process, ever):
- every wait has a deadline: a task past `timeout` seconds, or a rank that dies (EOF on its
  pipe) while the others sit in a collective, tears the whole pool down and raises
  `RankFailure` (the next `run` starts a fresh pool);
- tear-down kills each rank's own process group (`start_new_session`), grandchildren included,
  and reaps every process;
- a rank dies with its parent (`PR_SET_PDEATHSIG`, and EOF on its task pipe), so a parent
  killed by a timeout or a crash leaves nothing behind.
A rank installs the run's `--inject-fault` before it joins a group, so a fault that patches
`torch.distributed` reaches the ranks as it reaches the test process.

As a pytest plugin this module adds `--dist-backend` (gloo by default; nccl where every rank has
a GPU, else its items are listed as not run with the reason), the module-scoped `rank_pool`
fixture, and the opt-in: items marked `distributed` start processes and take seconds, so the
default run deselects them and says so; `-m distributed`, `--behaviour` or `--dist-backend`
selects them (CI runs them in their own step).
"""

from __future__ import annotations

import atexit
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
BACKENDS = ("gloo", "nccl")
STARTUP_TIMEOUT = 120.0  # importing torch in four processes at once on two busy cores
GRACE = 5.0  # after one rank raised, how long the others get to finish before the pool is torn down


class RankFailure(RuntimeError):
    """A rank died or the ranks did not answer in time; the pool was torn down."""


class RankError(Exception):
    """A task raised in one or more ranks: `errors` maps rank to the exception it raised."""

    def __init__(self, errors: dict[int, BaseException]):
        self.errors = errors
        first = min(errors)
        super().__init__(f"rank(s) {sorted(errors)} raised; rank {first}: {type(errors[first]).__name__}: {errors[first]}")

    def first(self) -> BaseException:
        return self.errors[min(self.errors)]


@dataclass(frozen=True)
class RankContext:
    """What a task knows about where it runs."""

    rank: int
    world_size: int
    backend: str
    device: str  # where the rank's tensors live: cpu for gloo, its own GPU for nccl
    store: object = None  # the TCPStore client: a task that forms its own group prefixes it afresh


def skip_reason(backend: str, world_size: int = 4) -> str | None:
    """Why `backend` cannot run here (the item is listed as not run), or None."""
    import torch
    import torch.distributed as dist

    if not dist.is_available():
        return "torch.distributed is not available in this build"
    if backend == "nccl":
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not dist.is_nccl_available() or gpus < world_size:
            return f"not run: NCCL needs one CUDA GPU per rank ({world_size}); this machine has {gpus}"
    if backend == "gloo" and not dist.is_gloo_available():
        return "not run: this torch build has no gloo"
    return None


class RankPool:
    def __init__(self, size: int = 4, backend: str = "gloo", fault: str | None = None, timeout: float = 60.0):
        if not 2 <= size <= 8:
            raise ValueError(f"RankPool(size={size}): between 2 and 8 ranks")
        self.size, self.backend, self.fault, self.timeout = size, backend, fault, timeout
        self._procs: list[subprocess.Popen] = []
        self._tasks: list[Connection] = []
        self._results: list[Connection] = []
        self._logs: list = []
        self._store = None
        self._world = 0  # the size of the group the ranks are in now (0: none)
        self._generation = 0
        self._finalizer = None

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    @property
    def started(self) -> bool:
        return bool(self._procs)

    def start(self) -> None:
        import torch.distributed as dist

        if self.started:
            return
        self._store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False, use_libuv=True)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        env.setdefault("OMP_NUM_THREADS", "1")
        try:
            for rank in range(self.size):
                task_read, task_write = os.pipe()
                result_read, result_write = os.pipe()
                log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close(), with the pool)
                argv = [sys.executable, "-m", "conformance.harness.distributed", str(rank), str(self.size), self.backend]
                argv += [str(self._store.port), str(task_read), str(result_write), str(os.getpid()), self.fault or ""]
                proc = subprocess.Popen(
                    argv,
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    pass_fds=(task_read, result_write),
                    start_new_session=True,  # its own process group: tear-down kills what it started too
                )
                os.close(task_read)
                os.close(result_write)
                self._procs.append(proc)
                self._tasks.append(Connection(task_write, readable=False))
                self._results.append(Connection(result_read, writable=False))
                self._logs.append(log)
            self._finalizer = weakref.finalize(self, _kill, list(self._procs))
            atexit.register(self._finalizer)
            self._collect(range(self.size), STARTUP_TIMEOUT, "start")
        except BaseException:
            self.close()
            raise

    def close(self, polite: bool = True) -> None:
        """Stop every rank: ask (unless they may be stuck), then kill each rank's process group;
        reap all."""
        for conn in self._tasks if polite else ():
            try:
                conn.send_bytes(pickle.dumps(("stop",)))
            except OSError:
                pass
        deadline = time.monotonic() + (2.0 if polite else 0.0)
        for proc in self._procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        _kill(self._procs)
        for conn in (*self._tasks, *self._results):
            conn.close()
        for log in self._logs:
            log.close()
        if self._finalizer is not None:
            atexit.unregister(self._finalizer)
            self._finalizer.detach()
        self._procs, self._tasks, self._results, self._logs = [], [], [], []
        self._store, self._world, self._finalizer = None, 0, None

    def __enter__(self) -> RankPool:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- work -------------------------------------------------------------------------------------

    def run(self, world_size: int, task, *args, timeout: float | None = None) -> list:
        """`task(ctx, *args)` on ranks 0..world_size-1 of a default group of `world_size` ranks;
        their results in rank order. Raises RankError if a rank raised, RankFailure if a rank died
        or the ranks did not finish within `timeout` seconds (the pool is then torn down)."""
        if not 1 <= world_size <= self.size:
            raise ValueError(f"run(world_size={world_size}): this pool has {self.size} ranks")
        self.start()
        from conformance.repro import calls

        calls.ranks_ran(calls.RankRun(world_size, task, args, self.backend))  # what a repro script runs again
        if world_size != self._world:
            self._generation += 1
        message = pickle.dumps(("run", world_size, self._generation, task, args))
        for conn in self._tasks:
            try:
                conn.send_bytes(message)
            except OSError:
                pass  # a dead rank: _collect reports it
        self._world = world_size
        answers = self._collect(range(self.size), self.timeout if timeout is None else timeout, task.__name__)
        errors = {rank: value for rank, (ok, value) in answers.items() if not ok and rank < world_size}
        if errors:
            self._world = 0  # a failed collective may leave the group unusable: the next run forms a new one
            raise RankError(errors)
        return [answers[rank][1] for rank in range(world_size)]

    def _collect(self, ranks, timeout: float, what: str) -> dict[int, tuple[bool, object]]:
        pending = {self._results[rank]: rank for rank in ranks}
        answers: dict[int, tuple[bool, object]] = {}
        deadline = time.monotonic() + timeout
        while pending:
            if any(not ok for ok, _ in answers.values()):  # one rank raised: the rest may be stuck in a collective
                deadline = min(deadline, time.monotonic() + GRACE)
            left = deadline - time.monotonic()
            ready = wait(list(pending), timeout=max(0.0, left)) if left > 0 else []
            if not ready:
                waiting = sorted(pending.values())
                if any(not ok for ok, _ in answers.values()):
                    errors = {r: v for r, (ok, v) in answers.items() if not ok}
                    self.close(polite=False)  # they are stuck in a collective the raising rank never joined
                    raise RankError(errors)
                self._fail(f"{what}: ranks {waiting} did not answer within {timeout:.0f} s")
            for conn in ready:
                rank = pending.pop(conn)
                try:
                    answers[rank] = pickle.loads(conn.recv_bytes())
                except (EOFError, OSError):
                    try:
                        code = self._procs[rank].wait(timeout=5.0)
                    except subprocess.TimeoutExpired:
                        code = None
                    self._fail(f"{what}: rank {rank} died ({_exit_text(code)})", rank)
        return answers

    def _fail(self, message: str, rank: int | None = None):
        tail = self._log_tail(rank) if rank is not None else ""
        self.close(polite=False)
        raise RankFailure(message + (f"\n--- rank {rank}'s output (last lines) ---\n{tail}" if tail else ""))

    def _log_tail(self, rank: int, lines: int = 15) -> str:
        try:
            log = self._logs[rank]
            log.seek(0)
            return "\n".join(log.read().decode(errors="replace").splitlines()[-lines:])
        except (IndexError, OSError, ValueError):
            return ""


def _kill(procs) -> None:
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    for proc in procs:
        try:
            proc.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            pass


def _exit_text(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


# -- the pytest plugin ---------------------------------------------------------------------------

DESELECTED = pytest.StashKey[int]()


def pytest_addoption(parser):
    parser.getgroup("torch-conformance").addoption(
        "--dist-backend",
        default=None,
        choices=BACKENDS,
        help="the torch.distributed backend of the distributed area's process groups (default gloo); "
        "naming it also selects the area, which the default run leaves out",
    )


def _opted_in(config) -> bool:
    return bool(config.getoption("markexpr") or config.getoption("behaviour") or config.getoption("dist_backend"))


def pytest_collection_modifyitems(config, items):
    if _opted_in(config):
        return
    drop = [item for item in items if item.get_closest_marker("distributed")]
    if drop:
        config.stash[DESELECTED] = len(drop)
        config.hook.pytest_deselected(items=drop)
        items[:] = [item for item in items if not item.get_closest_marker("distributed")]


def pytest_terminal_summary(terminalreporter, config):
    left_out = config.stash.get(DESELECTED, 0)
    if left_out and not hasattr(config, "workerinput"):
        terminalreporter.write_line(
            f"torch-conformance: {left_out} distributed item(s) not run: they start process groups "
            "(run them with `pytest -m distributed`)"
        )


def pool_size(backend: str) -> int:
    return 4  # the largest group the area draws; nccl runs only where each of the 4 ranks has a GPU


@pytest.fixture(scope="module")
def rank_pool(request):
    """One RankPool for the test module, started at its first use and torn down after its last
    test; a test whose backend cannot run here skips with the reason."""
    backend = request.config.getoption("dist_backend") or "gloo"
    reason = skip_reason(backend)
    if reason:
        pytest.skip(reason)
    pool = RankPool(size=pool_size(backend), backend=backend, fault=request.config.getoption("inject_fault"))
    try:
        yield pool
    finally:
        pool.close()


# -- the rank side --------------------------------------------------------------------------------


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def _rank_main(argv: list[str]) -> None:
    rank, size, backend, port, task_fd, result_fd, parent, fault = argv
    rank, size, port, parent = int(rank), int(size), int(port), int(parent)
    _die_with_parent(parent)
    tasks, results = Connection(int(task_fd), writable=False), Connection(int(result_fd), readable=False)

    import datetime

    import torch
    import torch.distributed as dist

    # The pool's own calls are stock torch's, taken before the fault patches the module: a fault
    # breaks what the tasks call, never the machinery that forms their groups.
    init, destroy, initialized = dist.init_process_group, dist.destroy_process_group, dist.is_initialized
    if fault:
        from conformance import faults

        faults.inject(fault)
    store = dist.TCPStore("127.0.0.1", port, is_master=False, timeout=datetime.timedelta(seconds=60))
    device = f"cuda:{rank % max(1, torch.cuda.device_count())}" if backend == "nccl" else "cpu"
    results.send_bytes(pickle.dumps((True, "ready")))
    world, generation = 0, 0
    while True:
        try:
            message = pickle.loads(tasks.recv_bytes())
        except EOFError:  # the parent is gone
            os._exit(0)
        if message[0] == "stop":
            break
        _, world_size, wanted, task, args = message
        try:
            if (world_size, wanted) != (world, generation):
                if initialized():
                    destroy()
                world, generation = world_size, wanted
                if rank < world_size:
                    group_store = dist.PrefixStore(f"generation{generation}", store)
                    init(backend, store=group_store, rank=rank, world_size=world_size, timeout=datetime.timedelta(seconds=60))
            context = RankContext(rank, world_size, backend, device, store)
            answer = (True, task(context, *args) if rank < world_size else None)
        except BaseException as exc:  # sent back to the test, which decides what it means
            generation = -1  # the group may be broken: the next task forms a new one
            answer = (False, _picklable(exc))
        try:
            results.send_bytes(pickle.dumps(answer))
        except BrokenPipeError:
            os._exit(0)
    if initialized():
        destroy()
    os._exit(0)


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    _rank_main(sys.argv[1:])
