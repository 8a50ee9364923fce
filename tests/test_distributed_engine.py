"""The rank pool (conformance/harness/distributed.py) ends cleanly whatever its ranks do: a rank
killed in the middle of a collective, a task past its deadline, a task that raises in one rank.
Afterwards no rank process is left, and the pool starts afresh on its next task."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import torch.distributed as dist

from conformance.harness.distributed import RankError, RankFailure, RankPool

pytestmark = pytest.mark.distributed


# What the ranks run: module-level functions, pickled by name.
def identity(ctx):
    return dist.get_rank(), dist.get_world_size(), dist.get_backend(), os.getpid()


def stuck_in_all_reduce_unless_rank_1(ctx, seconds):
    """Every rank but 1 enters an all_reduce that cannot finish without rank 1, which sleeps."""
    import torch

    if ctx.rank == 1:
        time.sleep(seconds)
    dist.all_reduce(torch.ones(3))


def sleep(ctx, seconds):
    time.sleep(seconds)


def raise_in_rank_1_while_the_others_all_reduce(ctx):
    import torch

    if ctx.rank == 1:
        raise ValueError("rank 1 refuses")
    dist.all_reduce(torch.ones(3))


def raise_in_every_rank(ctx):
    raise ValueError(f"rank {ctx.rank} refuses")


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children() -> set[int]:
    me = str(os.getpid())
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[1] == me:
                        found.add(int(entry))
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
    return found


@pytest.fixture(scope="module")
def pool():
    pool = RankPool(size=3, timeout=60)
    yield pool
    pool.close()


def test_groups_of_every_size_reuse_the_same_ranks(pool):
    for world_size in (2, 3, 2):
        answers = pool.run(world_size, identity)
        assert [a[:3] for a in answers] == [(r, world_size, "gloo") for r in range(world_size)]
    assert [a[3] for a in answers] == pool.pids[:2], "the ranks were restarted between tasks"


def test_a_rank_killed_mid_collective_ends_the_others_and_leaves_no_process(pool):
    before = children()
    pool.start()
    pids = pool.pids
    killer = threading.Timer(1.5, os.kill, (pids[1], signal.SIGKILL))  # rank 1 dies; 0 and 2 wait in all_reduce
    killer.start()
    start = time.monotonic()
    try:
        with pytest.raises(RankFailure, match="rank 1 died"):
            pool.run(3, stuck_in_all_reduce_unless_rank_1, 600)
    finally:
        killer.cancel()
    assert time.monotonic() - start < 30, "the pool waited for a dead rank"
    assert not [pid for pid in pids if alive(pid)], "rank processes outlived the failure"
    assert not pool.started
    assert not (children() - before), "the failure left child processes behind"
    assert [a[:2] for a in pool.run(2, identity)] == [(0, 2), (1, 2)], "the pool did not start afresh"


def test_an_error_in_every_rank_comes_back_and_the_pool_goes_on(pool):
    pool.start()
    pids = pool.pids
    with pytest.raises(RankError) as raised:
        pool.run(3, raise_in_every_rank)
    assert sorted(raised.value.errors) == [0, 1, 2]
    assert isinstance(raised.value.first(), ValueError) and "rank 0 refuses" in str(raised.value.first())
    assert [a[3] for a in pool.run(3, identity)] == pids, "an error that every rank raised restarted the pool"


def test_an_error_in_one_rank_ends_the_ranks_it_left_in_a_collective(pool):
    pool.start()
    pids = pool.pids
    start = time.monotonic()
    with pytest.raises(RankError) as raised:
        pool.run(3, raise_in_rank_1_while_the_others_all_reduce)
    assert sorted(raised.value.errors) == [1] and isinstance(raised.value.first(), ValueError)
    assert time.monotonic() - start < 30, "the pool waited on ranks stuck in a collective"
    assert not [pid for pid in pids if alive(pid)], "the ranks left in the collective outlived the error"


def test_a_task_past_its_deadline_tears_the_pool_down(pool):
    pool.start()
    pids = pool.pids
    with pytest.raises(RankFailure, match="did not answer within"):
        pool.run(2, sleep, 600, timeout=2)
    assert not [pid for pid in pids if alive(pid)]


def test_closing_leaves_no_process():
    before = children()
    pool = RankPool(size=2)
    pool.start()
    pids = pool.pids
    pool.close()
    assert not [pid for pid in pids if alive(pid)]
    assert not (children() - before)
