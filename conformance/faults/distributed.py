"""Faults in distributed (catalogue area `distributed`).

The rank processes install the run's fault too (conformance/harness/distributed.py), so a fault
that patches torch.distributed breaks the calls the ranks make; DistributedSampler's faults act
in the test process and in the ranks alike.
"""

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from conformance.faults import DRIFT, fault


@fault("all_reduce_ignores_op", trips=["distributed.all_reduce"])
def _(patch):
    """all_reduce sums whatever op it is given."""

    @patch.replace(dist, "all_reduce")
    def all_reduce(orig, tensor, op=dist.ReduceOp.SUM, *args, **kwargs):
        return orig(tensor, dist.ReduceOp.SUM, *args, **kwargs)


@fault("all_reduce_leaves_the_last_rank_alone", trips=["distributed.all_reduce", "distributed.noncontiguous_tensors"])
def _(patch):
    """all_reduce leaves the last rank's tensor as it was: the ranks disagree."""

    @patch.replace(dist, "all_reduce")
    def all_reduce(orig, tensor, *args, **kwargs):
        before = tensor.clone()
        result = orig(tensor, *args, **kwargs)
        if dist.get_rank() == dist.get_world_size() - 1:
            tensor.copy_(before)
        return result


@fault("all_reduce_drift", trips=["distributed.all_reduce"])
def _(patch):
    """A floating all_reduce result is off by 0.1% relative, in every rank alike."""

    @patch.replace(dist, "all_reduce")
    def all_reduce(orig, tensor, *args, **kwargs):
        result = orig(tensor, *args, **kwargs)
        if tensor.is_floating_point():
            tensor.mul_(DRIFT)
        return result


@fault("all_reduce_takes_complex_max", trips=["distributed.all_reduce_complex_ops_rejected"])
def _(patch):
    """all_reduce of a complex tensor with MAX, MIN or PRODUCT reduces its real and imaginary parts."""

    @patch.replace(dist, "all_reduce")
    def all_reduce(orig, tensor, op=dist.ReduceOp.SUM, *args, **kwargs):
        if tensor.is_complex():
            return orig(torch.view_as_real(tensor), op, *args, **kwargs)
        return orig(tensor, op, *args, **kwargs)


@fault("broadcast_from_rank_zero", trips=["distributed.broadcast"])
def _(patch):
    """broadcast sends rank 0's tensor whatever src it is given."""

    @patch.replace(dist, "broadcast")
    def broadcast(orig, tensor, src=None, *args, **kwargs):
        return orig(tensor, 0, *args, **kwargs)


@fault("all_gather_in_reverse", trips=["distributed.all_gather", "distributed.all_gather_uneven"])
def _(patch):
    """all_gather fills tensor_list in reverse rank order."""

    @patch.replace(dist, "all_gather")
    def all_gather(orig, tensor_list, tensor, *args, **kwargs):
        gathered = [t.clone() for t in tensor_list]
        result = orig(gathered, tensor, *args, **kwargs)
        for out, got in zip(tensor_list, reversed(gathered)):
            out.copy_(got)
        return result


@fault("reduce_scatter_hands_out_the_next_chunk", trips=["distributed.reduce_scatter"])
def _(patch):
    """reduce_scatter gives rank i the reduction of every rank's input_list[i + 1]."""

    @patch.replace(dist, "reduce_scatter")
    def reduce_scatter(orig, output, input_list, *args, **kwargs):
        return orig(output, [*input_list[1:], *input_list[:1]], *args, **kwargs)


@fault("barrier_returns_at_once", trips=["distributed.barrier"])
def _(patch):
    """barrier returns without waiting for the other ranks."""
    patch.attribute(dist, "barrier", lambda *args, **kwargs: None)


@fault("destroy_process_group_keeps_the_group", trips=["distributed.process_group_lifecycle"])
def _(patch):
    """destroy_process_group does nothing: the group stays initialized."""
    patch.attribute(dist, "destroy_process_group", lambda *args, **kwargs: None)


@fault("is_available_false", trips=["distributed.is_available", "distributed.process_group_lifecycle"])
def _(patch):
    """is_available() is False."""
    patch.attribute(dist, "is_available", lambda: False)


@fault("get_backend_in_upper_case", trips=["distributed.get_backend"])
def _(patch):
    """get_backend() names the backend in upper case."""
    patch.method(dist, "get_backend", lambda orig: lambda *args, **kwargs: str(orig(*args, **kwargs)).upper())


@fault("get_rank_counts_down", trips=["distributed.rank_and_world_size"])
def _(patch):
    """get_rank() numbers the ranks from the last: world_size - 1 - rank."""
    patch.method(dist, "get_rank", lambda orig: lambda *args, **kwargs: dist.get_world_size() - 1 - orig(*args, **kwargs))


@fault("get_world_size_counts_one_more", trips=["distributed.rank_and_world_size"])
def _(patch):
    """get_world_size() is one more than the group's size."""
    patch.method(dist, "get_world_size", lambda orig: lambda *args, **kwargs: orig(*args, **kwargs) + 1)


@fault("ddp_sums_gradients", trips=["distributed.ddp_gradients_are_averaged"])
def _(patch):
    """DistributedDataParallel sums the ranks' gradients instead of averaging them."""

    def summed(state, bucket):
        buffer = bucket.buffer()
        dist.all_reduce(buffer)
        future = torch.futures.Future()
        future.set_result(buffer)
        return future

    @patch.replace(DistributedDataParallel, "__init__")
    def __init__(orig, self, *args, **kwargs):
        orig(self, *args, **kwargs)
        self.register_comm_hook(None, summed)


@fault("sampler_drops_the_padding", trips=["distributed.sampler_partition"])
def _(patch):
    """DistributedSampler without drop_last adds no extra indices: the last ranks get fewer."""

    @patch.replace(DistributedSampler, "__iter__")
    def __iter__(orig, self):
        indices = list(orig(self))
        real = len(self.dataset) - self.rank  # positions rank, rank + R, ... below n
        return iter(indices[: max(0, -(-real // self.num_replicas))] if not self.drop_last else indices)


@fault("sampler_same_indices_for_every_rank", trips=["distributed.sampler_partition"])
def _(patch):
    """DistributedSampler gives every rank rank 0's indices."""

    @patch.replace(DistributedSampler, "__iter__")
    def __iter__(orig, self):
        rank, self.rank = self.rank, 0
        try:
            return iter(list(orig(self)))
        finally:
            self.rank = rank


@fault("sampler_ignores_set_epoch", trips=["distributed.sampler_epochs"])
def _(patch):
    """DistributedSampler.set_epoch does nothing: every epoch shuffles alike."""
    patch.attribute(DistributedSampler, "set_epoch", lambda self, epoch: None)


@fault("sampler_rank_defaults_to_zero", trips=["distributed.sampler_defaults"])
def _(patch):
    """DistributedSampler(dataset) takes rank 0, not the process's rank, when rank is left out."""

    @patch.replace(DistributedSampler, "__init__")
    def __init__(orig, self, dataset, num_replicas=None, rank=None, *args, **kwargs):
        orig(self, dataset, num_replicas, 0 if rank is None else rank, *args, **kwargs)


@fault("sampler_drop_last_drops_the_head", trips=["distributed.sampler_partition"])
def _(patch):
    """DistributedSampler(drop_last=True) drops the first indices of the data, not its tail."""

    @patch.replace(DistributedSampler, "__iter__")
    def __iter__(orig, self):
        shift = len(self.dataset) % self.num_replicas if self.drop_last else 0
        return iter([i + shift for i in orig(self)])
