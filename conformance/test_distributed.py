"""torch.distributed: process groups, collectives, DistributedDataParallel and DistributedSampler.

The collectives run in groups of 2 to 4 rank processes of one pool per module (Note [The rank
pool], conformance/harness/distributed.py), on the backend `--dist-backend` names (gloo by
default: CPU tensors; nccl: each rank's own GPU). Hypothesis draws in this process: the group
size, one TensorSpec per rank (the ranks' inputs differ), the op, the source rank. Each rank
builds its own input from its spec and calls torch; the test checks what the ranks send back
against NumPy over every rank's input, built here from the same specs. The tests that need a
group are marked `distributed` and run in their own CI step; DistributedSampler's partition
needs none (num_replicas and rank given) and runs in the default run.

Not Operations (harness/declaration.py): a collective's subject is several processes' calls
that meet in a process group, which no single-process execution mode (another device, a
compiled graph) can run; each entry says so in `not_declared`.
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
from hypothesis import given
from hypothesis import strategies as st
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from conformance.checks import independent_array, private_rng
from conformance.harness.distributed import RankError
from conformance.harness.releases import torch_at_least
from strategies import specs
from strategies.shapes import shapes
from strategies.tensors import LAYOUTS, WRITABLE_LAYOUTS, TensorSpec

# The pytest device is the CPU's: where a group's tensors live is the backend's (gloo: the CPU;
# nccl: each rank's GPU), chosen by --dist-backend.
pytestmark = pytest.mark.device_types("cpu")
in_ranks = pytest.mark.distributed  # the test starts a process group (its own CI step)

WORLDS = st.integers(2, 4)  # groups of 2 to 4 ranks on one machine
SEEDS = st.integers(0, 2**32 - 1)
# Layouts a collective that writes its tensor in place can take: not `expanded` (writing through
# a stride-0 view is undefined: Tensor.expand says to clone before writing), and not the layouts
# with gaps between elements, which distributed.noncontiguous_tensors checks on its own.
DENSE_LAYOUTS = ("contiguous", "transposed", "permuted", "offset", "channels_last")
GAPPED_LAYOUTS = ("sliced", "as_strided")  # views whose elements leave gaps in their storage
NONCONTIGUOUS_LAYOUTS = ("transposed", "permuted", "channels_last", *GAPPED_LAYOUTS)
CONTIGUOUS_LAYOUTS = ("contiguous", "offset")

FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

# What gloo lacks before a release (each found by running a two-rank gloo group on every release
# from 2.5.1 to 2.15.0, docs/upgrades.md; NCCL is not narrowed):
# - reduce_scatter: "ProcessGroupGloo does not support reduce_scatter" through 2.7, added in 2.8 by
#   https://github.com/pytorch/pytorch/pull/149869 (which also updated the docs' backend table);
# - ReduceOp.AVG: "Cannot use ReduceOp.AVG with Gloo" through 2.7 (ReduceOp's docstring then said AVG
#   is only available with NCCL), added in 2.8 by https://github.com/pytorch/pytorch/pull/149781;
# - complex tensors in broadcast and reduce_scatter: "Invalid scalar type" through 2.8, added in 2.9
#   by https://github.com/pytorch/pytorch/pull/156633 (all_reduce and all_gather of complex tensors
#   worked before: they went through a real view).
GLOO_REDUCE_SCATTER = torch_at_least("2.8")
GLOO_AVG = torch_at_least("2.8")
GLOO_COMPLEX = torch_at_least("2.9")


def gloo_lacks(backend: str, collective: str, dtype: torch.dtype) -> str | None:
    """Why this release's gloo cannot run `collective` on `dtype` (the releases above), or None."""
    if backend != "gloo":
        return None
    if collective == "reduce_scatter" and not GLOO_REDUCE_SCATTER:
        return f"gloo has no reduce_scatter before torch 2.8 (pytorch#149869); this is torch {torch.__version__}"
    if collective in ("broadcast", "reduce_scatter") and dtype.is_complex and not GLOO_COMPLEX:
        return f"gloo has no complex {collective} before torch 2.9 (pytorch#156633); this is torch {torch.__version__}"
    return None


def ops_for(dtype: torch.dtype, backend: str) -> list[str]:
    """The ReduceOps the docs give `dtype` on `backend` (ReduceOp's docstring): MAX, MIN and PRODUCT
    are not supported for complex tensors; BAND, BOR and BXOR are bitwise (integers and bool) and
    not available with NCCL; AVG divides by the world size (a mean, for floating and complex
    tensors). PREMUL_SUM is documented for NCCL and XCCL only. gloo has AVG from torch 2.8 (above)."""
    avg = ["AVG"] if backend != "gloo" or GLOO_AVG else []
    if dtype.is_complex:
        return ["SUM", *avg]
    if dtype.is_floating_point:
        return ["SUM", "PRODUCT", "MIN", "MAX", *avg]
    return ["SUM", "PRODUCT", "MIN", "MAX"] + ([] if backend == "nccl" else ["BAND", "BOR", "BXOR"])


def per_rank(spec, seeds):
    """One spec per rank: the drawn shape and layout, each rank's own values."""
    return [dataclasses.replace(spec, seed=seed) for seed in seeds]


def logical(spec, dtype) -> np.ndarray:
    """A rank's input values, built here from its spec (the oracle's input)."""
    return independent_array(spec.logical_values(dtype))


def bits(t: torch.Tensor) -> bytes:
    """The tensor's elements as bytes, in logical order: equal bits, not merely equal values."""
    flat = t.detach().cpu().reshape(-1).clone(memory_format=torch.contiguous_format)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def reduced(op: str, arrays: list[np.ndarray], dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The element-wise reduction of every rank's input with `op`, and the rounding it may carry.

    Integers and bool are exact in their own dtype (sums and products wrap; bool sums are
    logical or, as `+` on bool tensors); MIN and MAX are exact. Floating sums, means and products
    are computed in float64 (complex128) and may differ from the result by the rounding of a
    sequence of n operations in the input dtype: n * eps * (sum of |x|), or n * eps * |product|,
    in whatever order the backend adds (a ring adds in a different order on each chunk)."""
    stack = np.stack(arrays)
    n = len(arrays)
    if not (dtype.is_floating_point or dtype.is_complex):
        ufunc = {
            "SUM": np.add,
            "PRODUCT": np.multiply,
            "MIN": np.minimum,
            "MAX": np.maximum,
            "BAND": np.bitwise_and,
            "BOR": np.bitwise_or,
            "BXOR": np.bitwise_xor,
        }[op]
        return ufunc.reduce(stack, axis=0, dtype=stack.dtype), np.zeros(stack.shape[1:])
    wide = stack.astype(np.complex128 if dtype.is_complex else np.float64)
    eps, tiny = torch.finfo(dtype).eps, torch.finfo(dtype).tiny
    if op == "MIN":
        return np.minimum.reduce(wide, axis=0), np.zeros(stack.shape[1:])
    if op == "MAX":
        return np.maximum.reduce(wide, axis=0), np.zeros(stack.shape[1:])
    if op == "PRODUCT":
        exact = np.multiply.reduce(wide, axis=0)
        return exact, n * eps * np.abs(exact) + tiny * np.abs(wide).max(axis=0, initial=1.0) ** (n - 1)
    if op == "AVG":  # "divides values by the world size before summing across ranks"
        return np.add.reduce(wide / n, axis=0), (n + 1) * eps * np.add.reduce(np.abs(wide), axis=0) / n + tiny
    return np.add.reduce(wide, axis=0), n * eps * np.add.reduce(np.abs(wide), axis=0) + tiny


def as_array(t: torch.Tensor) -> np.ndarray:
    return independent_array(t.detach().cpu())


def assert_reduction(got: torch.Tensor, op: str, arrays, dtype, what: str) -> None:
    expected, slack = reduced(op, arrays, dtype)
    actual = as_array(got).astype(expected.dtype)
    if dtype.is_floating_point or dtype.is_complex:
        wrong = ~(np.abs(actual - expected) <= slack)  # NaN is wrong too
    else:
        wrong = actual != expected
    assert not wrong.any(), (
        f"{what} is not the {op} of the ranks' inputs: at {np.argwhere(wrong)[:3].tolist()} got "
        f"{actual[wrong][:3].tolist()}, expected {expected[wrong][:3].tolist()} (within {slack[wrong][:3].tolist()})"
    )


# -- what the ranks run (module-level: a task is pickled by name) -------------------------------


def all_reduce_on_rank(ctx, rank_specs, dtype, op):
    t = rank_specs[ctx.rank].build(dtype=dtype, device=ctx.device)
    address, strides = t.data_ptr(), t.stride()
    if op == "left out":
        returned = dist.all_reduce(t)
    else:
        returned = dist.all_reduce(t, op=getattr(dist.ReduceOp, op))
    return t.cpu(), returned, t.data_ptr() == address and t.stride() == strides


def broadcast_on_rank(ctx, rank_specs, dtype, src):
    t = rank_specs[ctx.rank].build(dtype=dtype, device=ctx.device)
    address = t.data_ptr()
    returned = dist.broadcast(t, src=src)
    return t.cpu(), returned, t.data_ptr() == address


def all_gather_on_rank(ctx, rank_specs, out_specs, dtype):
    t = rank_specs[ctx.rank].build(dtype=dtype, device=ctx.device)
    outputs = [spec.build(dtype=dtype, device=ctx.device) for spec in out_specs]
    addresses = [o.data_ptr() for o in outputs]
    returned = dist.all_gather(outputs, t)
    return [o.cpu() for o in outputs], returned, [o.data_ptr() for o in outputs] == addresses


def reduce_scatter_on_rank(ctx, input_specs, out_spec, dtype, op):
    inputs = [spec.build(dtype=dtype, device=ctx.device) for spec in input_specs[ctx.rank]]
    out = out_spec.build(dtype=dtype, device=ctx.device)
    address = out.data_ptr()
    returned = dist.reduce_scatter(out, inputs, op=getattr(dist.ReduceOp, op))
    return out.cpu(), returned, out.data_ptr() == address


def with_room(t: torch.Tensor) -> torch.Tensor:
    """`t`'s view, values and storage gaps alike, in a storage with t.numel() spare elements after
    its end: a backend that reads or writes numel contiguous elements from the view's first one
    stays inside the storage, where the test sees it, instead of corrupting the heap."""
    storage = torch.empty(0, dtype=t.dtype, device=t.device).set_(t.untyped_storage())
    roomy = torch.cat([storage, storage.new_zeros(t.numel())])
    return roomy.as_strided(t.shape, t.stride(), t.storage_offset())


def noncontiguous_on_rank(ctx, rank_specs, out_spec, dtype, collective, src):
    """A collective on a non-contiguous tensor, and its whole storage before and after."""
    world = ctx.world_size
    if collective == "reduce_scatter":
        mine = rank_specs[ctx.rank * world : (ctx.rank + 1) * world]
        inputs = [with_room(s.build(dtype=dtype, device=ctx.device)) for s in mine]
        t = with_room(out_spec.build(dtype=dtype, device=ctx.device))
    else:
        t = with_room(rank_specs[ctx.rank].build(dtype=dtype, device=ctx.device))
    storage = torch.empty(0, dtype=dtype, device=ctx.device).set_(t.untyped_storage())
    before = storage.clone()
    if collective == "all_reduce":
        dist.all_reduce(t)
    elif collective == "broadcast":
        dist.broadcast(t, src=src)
    else:
        dist.reduce_scatter(t, inputs)
    return t.cpu(), before.cpu(), storage.clone().cpu(), t.storage_offset(), t.stride()


def barrier_on_rank(ctx, delays):
    time.sleep(delays[ctx.rank])
    entered = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process of the machine
    dist.barrier()
    return entered, time.monotonic()


def process_group_on_rank(ctx, prefix, form):
    seen = {"initialized before": dist.is_initialized()}
    dist.destroy_process_group()
    seen["initialized after destroy"] = dist.is_initialized()
    backend = ctx.backend if form == "string" else getattr(dist.Backend, ctx.backend.upper())
    dist.init_process_group(backend, store=dist.PrefixStore(prefix, ctx.store), rank=ctx.rank, world_size=ctx.world_size)
    seen.update(
        initialized=dist.is_initialized(),
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        backend=dist.get_backend(),
        available=dist.is_available(),
    )
    return seen


def build_model(seed, sizes, dtype):
    with private_rng(seed):
        layers = [torch.nn.Linear(sizes[0], sizes[1]), torch.nn.Tanh(), torch.nn.Linear(sizes[1], sizes[2])]
        return torch.nn.Sequential(*layers).to(dtype)


def ddp_gradients_on_rank(ctx, seed, sizes, rank_specs, dtype):
    model = DistributedDataParallel(build_model(seed, sizes, dtype).to(ctx.device))
    x = rank_specs[ctx.rank].build(dtype=dtype, device=ctx.device)
    model(x).sum().backward()
    return [p.grad.cpu() for p in model.module.parameters()]


def sampler_on_rank(ctx, n, epoch):
    sampler = DistributedSampler(range(n))  # num_replicas, rank, shuffle, seed, drop_last left out
    sampler.set_epoch(epoch)
    return list(sampler)


# -- process groups ---------------------------------------------------------------------------


@in_ranks
@pytest.mark.behaviour("distributed.process_group_lifecycle")
@given(world=WORLDS, form=st.sampled_from(["string", "attribute"]))
def test_init_process_group_forms_the_default_group_and_destroy_ends_it(device, rank_pool, world, form):
    answers = rank_pool.run(world, process_group_on_rank, f"lifecycle-{os.urandom(8).hex()}", form)
    for rank, seen in enumerate(answers):
        assert seen["initialized before"], f"rank {rank}: is_initialized() is False inside a group"
        assert not seen["initialized after destroy"], f"rank {rank}: is_initialized() after destroy_process_group()"
        assert seen["initialized"], f"rank {rank}: is_initialized() is False after init_process_group"
        assert seen["available"], f"rank {rank}: is_available() is False with a group running"


@in_ranks
@pytest.mark.behaviour("distributed.get_backend")
@given(world=WORLDS, form=st.sampled_from(["string", "attribute"]))
def test_get_backend_names_the_backend_in_lower_case(device, rank_pool, world, form):
    answers = rank_pool.run(world, process_group_on_rank, f"backend-{os.urandom(8).hex()}", form)
    for rank, seen in enumerate(answers):
        assert seen["backend"] == rank_pool.backend.lower(), f"rank {rank}: get_backend() gave {seen['backend']!r}"


@in_ranks
@pytest.mark.behaviour("distributed.rank_and_world_size")
@given(world=WORLDS)
def test_ranks_are_the_consecutive_integers_below_world_size(device, rank_pool, world):
    answers = rank_pool.run(world, process_group_on_rank, f"ranks-{os.urandom(8).hex()}", "string")
    assert [seen["rank"] for seen in answers] == list(range(world)), "get_rank() is not the rank each process joined with"
    assert all(seen["world_size"] == world for seen in answers), "get_world_size() is not the group's size"


@pytest.mark.behaviour("distributed.is_available")
def test_is_available_on_linux(device):
    assert dist.is_available(), "is_available() is False on Linux, where the default build has USE_DISTRIBUTED=1"
    assert callable(dist.init_process_group) and callable(dist.all_reduce), "is_available() yet the APIs are missing"


# -- collectives --------------------------------------------------------------------------------


@in_ranks
@pytest.mark.behaviour("distributed.all_reduce")
@pytest.mark.dtypes("all")
@given(world=WORLDS, spec=specs(layouts=DENSE_LAYOUTS), seeds=st.lists(SEEDS, min_size=4, max_size=4), data=st.data())
def test_all_reduce_leaves_the_reduction_in_every_rank(device, dtype, rank_pool, world, spec, seeds, data):
    op = data.draw(st.sampled_from([*ops_for(dtype, rank_pool.backend), "left out"]), label="op")
    rank_specs = per_rank(spec, seeds[:world])
    answers = rank_pool.run(world, all_reduce_on_rank, rank_specs, dtype, op)
    arrays = [logical(s, dtype) for s in rank_specs]
    for rank, (out, returned, in_place) in enumerate(answers):
        assert returned is None, f"rank {rank}: all_reduce returned {returned!r} without async_op"
        assert in_place, f"rank {rank}: all_reduce did not write the tensor it was given"
        assert out.shape == spec.shape and out.dtype == dtype, f"rank {rank}: shape or dtype changed"
        # op left out: ReduceOp.SUM, the signature's default
        assert_reduction(out, "SUM" if op == "left out" else op, arrays, dtype, f"rank {rank}'s tensor after all_reduce")
        assert bits(out) == bits(answers[0][0]), f"rank {rank}'s result is not bitwise identical to rank 0's"


@in_ranks
@pytest.mark.behaviour("distributed.all_reduce_complex_ops_rejected")
@pytest.mark.dtypes("complex")
@given(world=WORLDS, spec=specs(layouts=DENSE_LAYOUTS), op=st.sampled_from(["MAX", "MIN", "PRODUCT"]))
def test_all_reduce_rejects_min_max_product_of_complex_tensors(device, dtype, rank_pool, world, spec, op):
    with pytest.raises(RankError) as raised:  # an error in a rank comes back as RankError
        rank_pool.run(world, all_reduce_on_rank, per_rank(spec, range(world)), dtype, op)
    assert sorted(raised.value.errors) == list(range(world)), "not every rank refused the complex reduction"


@in_ranks
@pytest.mark.behaviour("distributed.broadcast")
@pytest.mark.dtypes("all")
@given(
    world=WORLDS,
    spec=specs(layouts=DENSE_LAYOUTS, special_values=True),
    seeds=st.lists(SEEDS, min_size=4, max_size=4),
    data=st.data(),
)
def test_broadcast_copies_the_source_rank_tensor_to_every_rank(device, dtype, rank_pool, world, spec, seeds, data):
    if reason := gloo_lacks(rank_pool.backend, "broadcast", dtype):
        pytest.skip(reason)
    src = data.draw(st.integers(0, world - 1), label="src")
    rank_specs = per_rank(spec, seeds[:world])
    answers = rank_pool.run(world, broadcast_on_rank, rank_specs, dtype, src)
    sent = rank_specs[src].logical_values(dtype)
    for rank, (out, returned, in_place) in enumerate(answers):
        assert returned is None, f"rank {rank}: broadcast returned {returned!r} without async_op"
        assert in_place, f"rank {rank}: broadcast did not write the tensor it was given"
        assert bits(out) == bits(sent), f"rank {rank}'s tensor after broadcast is not src rank {src}'s input"


def check_all_gather(answers, rank_specs, dtype):
    for rank, (outputs, returned, in_place) in enumerate(answers):
        assert returned is None, f"rank {rank}: all_gather returned {returned!r} without async_op"
        assert in_place, f"rank {rank}: all_gather did not write the tensors of tensor_list"
        for i, (out, spec) in enumerate(zip(outputs, rank_specs)):
            assert bits(out) == bits(spec.logical_values(dtype)), f"rank {rank}: tensor_list[{i}] is not rank {i}'s tensor"


@in_ranks
@pytest.mark.behaviour("distributed.all_gather")
@pytest.mark.dtypes("all")
@given(world=WORLDS, data=st.data())
def test_all_gather_lists_every_rank_tensor_in_rank_order(device, dtype, rank_pool, world, data):
    # The input is only read: any layout, stride-0 expand included; the outputs are written.
    shape = data.draw(shapes(), label="shape")
    rank_specs = [data.draw(specs(shape=shape, layouts=LAYOUTS)) for _ in range(world)]
    out_specs = [data.draw(specs(shape=shape, layouts=WRITABLE_LAYOUTS)) for _ in range(world)]
    check_all_gather(rank_pool.run(world, all_gather_on_rank, rank_specs, out_specs, dtype), rank_specs, dtype)


@in_ranks
@pytest.mark.behaviour("distributed.all_gather_uneven")
@pytest.mark.dtypes("float32")
@given(world=WORLDS, data=st.data())
def test_all_gather_of_uneven_sizes_lists_every_rank_tensor(device, dtype, rank_pool, world, data):
    # one ndim for every rank, sizes of their own (the docs' uneven sizes), at least two of them differing
    sizes = data.draw(st.lists(st.integers(0, 5), min_size=world, max_size=world, unique=True), label="sizes")
    rest = data.draw(shapes(max_dims=2), label="rest")
    rank_specs = [data.draw(specs(shape=(n, *rest), layouts=LAYOUTS)) for n in sizes]
    out_specs = [data.draw(specs(shape=s.shape, layouts=WRITABLE_LAYOUTS)) for s in rank_specs]
    check_all_gather(rank_pool.run(world, all_gather_on_rank, rank_specs, out_specs, dtype), rank_specs, dtype)


@in_ranks
@pytest.mark.behaviour("distributed.reduce_scatter")
@pytest.mark.dtypes("all")
# non-contiguous inputs and outputs are distributed.noncontiguous_tensors's
@given(world=WORLDS, spec=specs(layouts=CONTIGUOUS_LAYOUTS), data=st.data())
def test_reduce_scatter_gives_rank_i_the_reduction_of_every_rank_ith_tensor(device, dtype, rank_pool, world, spec, data):
    if reason := gloo_lacks(rank_pool.backend, "reduce_scatter", dtype):
        pytest.skip(reason)
    op = data.draw(st.sampled_from(ops_for(dtype, rank_pool.backend)), label="op")
    seeds = data.draw(st.lists(st.lists(SEEDS, min_size=world, max_size=world), min_size=world, max_size=world))
    input_specs = [per_rank(spec, row) for row in seeds]  # input_specs[r][i]: rank r's i-th tensor
    out_spec = data.draw(specs(shape=spec.shape, layouts=CONTIGUOUS_LAYOUTS))  # likewise
    answers = rank_pool.run(world, reduce_scatter_on_rank, input_specs, out_spec, dtype, op)
    for rank, (out, returned, in_place) in enumerate(answers):
        assert returned is None, f"rank {rank}: reduce_scatter returned {returned!r} without async_op"
        assert in_place, f"rank {rank}: reduce_scatter did not write its output tensor"
        arrays = [logical(input_specs[r][rank], dtype) for r in range(world)]
        assert_reduction(out, op, arrays, dtype, f"rank {rank}'s output of reduce_scatter")


@in_ranks
@pytest.mark.behaviour("distributed.noncontiguous_tensors")
@pytest.mark.dtypes("float32")
@given(world=WORLDS, data=st.data())
def test_collectives_on_noncontiguous_tensors_touch_only_their_elements(device, dtype, rank_pool, world, data):
    # reduce_scatter where the release's backend has it (gloo: from torch 2.8, above)
    collectives = [c for c in ("all_reduce", "broadcast", "reduce_scatter") if not gloo_lacks(rank_pool.backend, c, dtype)]
    collective = data.draw(st.sampled_from(collectives), label="collective")
    # all_reduce and broadcast on views with gaps (their dense layouts are their own behaviours'),
    # reduce_scatter on every layout but the contiguous ones (likewise)
    layouts = NONCONTIGUOUS_LAYOUTS if collective == "reduce_scatter" else GAPPED_LAYOUTS
    spec = data.draw(specs(shapes=shapes(min_dims=1), layouts=layouts), label="spec")  # non-contiguous needs a dim
    seeds = data.draw(st.lists(SEEDS, min_size=world * world, max_size=world * world), label="seeds")
    rank_specs = per_rank(spec, seeds)  # reduce_scatter: rank r's i-th input is rank_specs[r * world + i]
    out_spec = data.draw(specs(shape=spec.shape, layouts=layouts), label="output")
    src = data.draw(st.integers(0, world - 1), label="src")
    answers = rank_pool.run(world, noncontiguous_on_rank, rank_specs, out_spec, dtype, collective, src)
    for rank, (out, before, after, offset, stride) in enumerate(answers):
        if collective == "all_reduce":
            arrays = [logical(s, dtype) for s in rank_specs[:world]]
            assert_reduction(out, "SUM", arrays, dtype, f"rank {rank}'s view after all_reduce")
        elif collective == "broadcast":
            assert bits(out) == bits(rank_specs[src].logical_values(dtype)), f"rank {rank}'s view is not src's after broadcast"
        else:
            arrays = [logical(rank_specs[r * world + rank], dtype) for r in range(world)]
            assert_reduction(out, "SUM", arrays, dtype, f"rank {rank}'s output of reduce_scatter")
        inside = np.zeros(before.numel(), dtype=bool)
        for index in np.ndindex(*spec.shape):
            inside[offset + sum(i * s for i, s in zip(index, stride))] = True
        outside = torch.from_numpy(~inside)
        assert bits(after[outside]) == bits(before[outside]), f"rank {rank}: {collective} wrote storage outside the tensor"


@in_ranks
@pytest.mark.behaviour("distributed.barrier")
@given(world=WORLDS, delays=st.lists(st.sampled_from([0.0, 0.02, 0.05]), min_size=4, max_size=4))
def test_barrier_returns_only_after_every_rank_entered(device, rank_pool, world, delays):
    answers = rank_pool.run(world, barrier_on_rank, delays)
    last_entry = max(entered for entered, _ in answers)
    for rank, (_, left) in enumerate(answers):
        assert left >= last_entry, f"rank {rank} left the barrier {last_entry - left:.3f} s before the last rank entered"


# -- DistributedDataParallel ----------------------------------------------------------------------


@in_ranks
@pytest.mark.behaviour("distributed.ddp_gradients_are_averaged")
@pytest.mark.dtypes("float32_64")
@given(
    world=WORLDS,
    seed=SEEDS,
    sizes=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3)),
    batch=st.integers(0, 3),
    seeds=st.lists(SEEDS, min_size=4, max_size=4),
)
def test_ddp_gradients_are_the_average_of_the_ranks_gradients(device, dtype, rank_pool, world, seed, sizes, batch, seeds):
    rank_specs = per_rank(TensorSpec(shape=(batch, sizes[0])), seeds[:world])  # each rank's own batch
    answers = rank_pool.run(world, ddp_gradients_on_rank, seed, sizes, rank_specs, dtype)
    per_rank_grads = []  # each rank's gradients without DDP, computed here
    for s in rank_specs:
        model = build_model(seed, sizes, dtype)
        model(s.build(dtype=dtype)).sum().backward()
        per_rank_grads.append([p.grad.double() for p in model.parameters()])
    eps = torch.finfo(dtype).eps
    for rank, grads in enumerate(answers):
        for k, got in enumerate(grads):
            exact = sum(g[k] for g in per_rank_grads) / world
            slack = 8 * world * eps * sum(g[k].abs() for g in per_rank_grads) / world + torch.finfo(dtype).tiny
            wrong = (got.double() - exact).abs() > slack
            assert not wrong.any(), (
                f"rank {rank}: parameter {k}'s gradient is not the average of the ranks' gradients: "
                f"got {got[wrong][:3].tolist()}, expected {exact[wrong][:3].tolist()}"
            )
            assert bits(got) == bits(answers[0][k]), f"rank {rank}: parameter {k}'s gradient differs from rank 0's"


# -- DistributedSampler -----------------------------------------------------------------------------


@pytest.mark.behaviour("distributed.sampler_partition")
@given(
    n=st.integers(0, 40),
    replicas=st.integers(1, 5),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=SEEDS,
    epoch=st.integers(0, 5),
)
def test_distributed_sampler_partitions_the_dataset(device, n, replicas, shuffle, drop_last, seed, epoch):
    parts = []
    for rank in range(replicas):
        sampler = DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last)
        sampler.set_epoch(epoch)
        parts.append(list(sampler))
    every = [i for part in parts for i in part]
    assert all(0 <= i < n for i in every), "an index outside the dataset"
    if drop_last:
        assert all(len(part) == n // replicas for part in parts), "drop_last: not n // num_replicas indices per rank"
        assert len(set(every)) == len(every), "drop_last: the ranks' subsets overlap"
        if not shuffle:  # unshuffled, the data's tail is its last indices
            assert set(every) == set(range(len(every))), "drop_last: dropped other indices than the data's tail"
    else:
        size = -(-n // replicas)
        assert all(len(part) == size for part in parts), "not ceil(n / num_replicas) indices per rank"
        # so the size * replicas - n extra indices are repeats of the dataset's own
        assert set(every) == set(range(n)), "the ranks together miss an index of the dataset"
        if n % replicas == 0:
            assert len(set(every)) == len(every), "the ranks' subsets overlap where nothing had to be added"


@pytest.mark.behaviour("distributed.sampler_epochs")
# n >= 5: five elements have 120 orderings, so epochs that all shuffle alike are a defect, not chance
@given(
    n=st.integers(5, 40),
    replicas=st.integers(1, 4),
    seed=SEEDS,
    epochs=st.lists(st.integers(0, 50), min_size=2, max_size=4, unique=True),
)
def test_distributed_sampler_shuffles_anew_only_through_set_epoch(device, n, replicas, seed, epochs):
    sampler = DistributedSampler(range(n), num_replicas=replicas, rank=0, shuffle=True, seed=seed)
    assert list(sampler) == list(sampler), "without set_epoch the ordering changed between iterations"
    orderings = []
    for epoch in epochs:
        sampler.set_epoch(epoch)
        orderings.append(tuple(i for part in partition_at(n, replicas, seed, epoch) for i in part))
        again = DistributedSampler(range(n), num_replicas=replicas, rank=0, shuffle=True, seed=seed)
        again.set_epoch(epoch)
        assert list(sampler) == list(again), "two samplers with one seed and epoch order differently"
    assert len(set(orderings)) > 1, f"set_epoch({epochs}) gave the same ordering every epoch"


def partition_at(n, replicas, seed, epoch):
    parts = []
    for rank in range(replicas):
        sampler = DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=True, seed=seed)
        sampler.set_epoch(epoch)
        parts.append(list(sampler))
    return parts


@in_ranks
@pytest.mark.behaviour("distributed.sampler_defaults")
@given(world=WORLDS, n=st.integers(0, 30), epoch=st.integers(0, 5))
def test_distributed_sampler_defaults_come_from_the_group(device, rank_pool, world, n, epoch):
    answers = rank_pool.run(world, sampler_on_rank, n, epoch)
    for rank, indices in enumerate(answers):
        explicit = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=0, drop_last=False)
        explicit.set_epoch(epoch)
        assert indices == list(explicit), f"rank {rank}: the defaults are not the group's size and rank, shuffle, seed 0"
