"""Faults in data loading (catalogue area `data`)."""

import itertools
import math
import types

import torch
from torch.utils import data as tud
from torch.utils.data._utils import collate

from conformance.faults import fault


@fault("collate_dicts_as_list", trips=["data.collate_dicts"])
def _(patch):
    """The default collate returns a list of dicts instead of a dict of batches."""

    @patch.replace(collate, "default_collate")
    def default_collate(orig, batch):
        return list(batch) if batch and isinstance(batch[0], dict) else orig(batch)


@fault("collate_floats_to_float32", trips=["data.collate_tuples"])
def _(patch):
    """The default collate turns Python floats into float32 instead of float64."""

    @patch.replace(collate, "default_collate")
    def default_collate(orig, batch):
        out = orig(batch)
        if isinstance(out, list):
            return [o.float() if isinstance(o, torch.Tensor) and o.dtype == torch.float64 else o for o in out]
        return out


@fault("collate_sorts_indices", trips=["data.dataset_returns_index"])
def _(patch):
    """The default collate sorts integer fields, so returned indices no longer match their samples."""

    @patch.replace(collate, "default_collate")
    def default_collate(orig, batch):
        out = orig(batch)
        if isinstance(out, list) and len(out) == 3:
            out[2] = out[2].sort().values
        return out


@fault("drop_last_ignored", trips=["data.last_batch_smaller"])
def _(patch):
    """DataLoader ignores drop_last."""

    @patch.replace(tud.DataLoader, "__init__")
    def init(orig, self, *a, drop_last=False, **k):
        orig(self, *a, **k)


@fault("iterable_shuffle_allowed", trips=["data.iterable_dataset_epochs"])
def _(patch):
    """DataLoader accepts shuffle=True for an IterableDataset and ignores it."""

    @patch.replace(tud.DataLoader, "__init__")
    def init(orig, self, dataset, *a, shuffle=None, **k):
        if isinstance(dataset, tud.IterableDataset):
            shuffle = None
        orig(self, dataset, *a, shuffle=shuffle, **k)


@fault("random_split_overlaps", trips=["data.random_split_sizes"])
def _(patch):
    """random_split hands out overlapping parts: each starts from index 0."""

    @patch.replace(tud, "random_split")
    def random_split(orig, dataset, lengths, generator=None):
        parts = orig(dataset, lengths, generator=generator) if generator is not None else orig(dataset, lengths)
        for part in parts:
            part.indices = sorted(part.indices) and list(range(len(part.indices)))
        return parts


@fault("iterable_dataset_not_abstract", trips=["data.iterable_dataset_needs_iter"])
def _(patch):
    """IterableDataset gets a concrete, empty __iter__: a subclass without one can be made and yields nothing."""
    patch.attribute(tud.IterableDataset, "__iter__", lambda self: iter(()))


@fault("stack_out_detaches_inputs", trips=["data.workers_refuse_grad_samples"])
def _(patch):
    """torch.stack(..., out=) detaches inputs that require grad instead of refusing them."""

    @patch.replace(torch, "stack")
    def stack(orig, tensors, *a, out=None, **k):
        if out is not None:
            tensors = [t.detach() for t in tensors]
        return orig(tensors, *a, out=out, **k)


@fault("random_split_ignores_generator", trips=["data.random_split_sizes"])
def _(patch):
    """random_split draws its permutation from the global generator, not the one it is given."""

    @patch.replace(tud, "random_split")
    def random_split(orig, dataset, lengths, generator=None):
        return orig(dataset, lengths)


@fault("collate_reverses_batch", trips=["data.collate_tuples", "data.collate_dicts"])
def _(patch):
    """The default collate batches the samples in reverse order (every field alike, so the fields still agree)."""

    @patch.replace(collate, "default_collate")
    def default_collate(orig, batch):
        return orig(list(reversed(batch)))


@fault("random_split_remainder_to_last", trips=["data.random_split_sizes"])
def _(patch):
    """random_split with fractions gives the whole remainder to the last part, not one count to each part round-robin."""

    @patch.replace(tud, "random_split")
    def random_split(orig, dataset, lengths, *a, **k):
        if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
            sizes = [math.floor(f * len(dataset)) for f in lengths]
            sizes[-1] += len(dataset) - sum(sizes)
            lengths = sizes
        return orig(dataset, lengths, *a, **k)


@fault("iterable_dataset_sharded_by_workers", trips=["data.iterable_dataset_epochs"])
def _(patch):
    """The loader splits an IterableDataset's items between its workers, as if each did not iterate a whole copy."""

    def shard(worker_id):
        info = tud.get_worker_info()
        whole = type(info.dataset).__iter__  # a forked worker: the class is the worker's own
        type(info.dataset).__iter__ = lambda self: itertools.islice(whole(self), info.id, None, info.num_workers)

    @patch.replace(tud.DataLoader, "__init__")
    def init(orig, self, dataset, *a, **k):
        if isinstance(dataset, tud.IterableDataset) and k.get("num_workers") and k.get("worker_init_fn") is None:
            k["worker_init_fn"] = shard
        orig(self, dataset, *a, **k)


@fault("worker_info_seed_without_worker_id", trips=["data.worker_info"])
def _(patch):
    """get_worker_info() in a worker reports the iterator's base seed for every worker, without the worker id added."""

    @patch.replace(tud, "get_worker_info")
    def get_worker_info(orig):
        info = orig()
        if info is None:
            return None
        return types.SimpleNamespace(id=info.id, num_workers=info.num_workers, seed=info.seed - info.id, dataset=info.dataset)
