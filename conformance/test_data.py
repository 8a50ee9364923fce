"""Data loading: default collate of tuples and dicts, batch counts, iterable datasets, splits."""

import math
import warnings
from collections.abc import Sequence

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.utils import data as tud
from torch.utils.data import DataLoader, Dataset, IterableDataset

from conformance.checks import assert_equal
from strategies.samples import option_grid

pytestmark = pytest.mark.device_types("cpu")  # the loader's semantics do not depend on a device


def loader(dataset, **kwargs):
    """A DataLoader with its own generator: iterating one draws a base seed, and without a
    generator that draw would come from (and change) torch's global generator."""
    kwargs.setdefault("generator", torch.Generator().manual_seed(0))
    return DataLoader(dataset, **kwargs)


class Indexed(Dataset):
    """Returns (value, target, index) or a dict, like the note's datasets."""

    def __init__(self, n, as_dict=False):
        self.data, self.as_dict = torch.arange(n) * 10, as_dict

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        if self.as_dict:
            return {"idx": i, "data": self.data[i]}
        return self.data[i], float(i) / 2, i


class Counting(IterableDataset):
    def __init__(self, n):
        self.n, self.epochs = n, 0

    def __iter__(self):
        self.epochs += 1
        return iter(range(self.n))


def batch_rows(n: int, batch: int) -> list[list[int]]:
    """The sample indices of each batch a loader without shuffle yields: sequential, in order."""
    return [list(range(n))[start : start + batch] for start in range(0, n, batch)]


@pytest.mark.behaviour("data.collate_tuples")
@given(n=st.integers(1, 12), batch=st.integers(1, 5))
def test_default_collate_of_tuples(device, n, batch):
    for rows, fields in zip(batch_rows(n, batch), loader(Indexed(n), batch_size=batch), strict=True):
        assert isinstance(fields, Sequence) and len(fields) == 3, "the batch is not a sequence of one entry per field"
        values, targets, index = fields
        assert torch.equal(values, torch.tensor([10 * i for i in rows])), "the tensor field is not its samples stacked in order"
        assert targets.dtype == torch.float64 and targets.tolist() == [i / 2 for i in rows], (
            "the float field is not a float64 tensor of its samples' numbers in order"
        )
        assert index.dtype == torch.int64 and index.tolist() == rows, (
            "the int field is not an int64 tensor of its samples' numbers in order"
        )


@pytest.mark.behaviour("data.collate_dicts")
@given(n=st.integers(1, 12), batch=st.integers(1, 5))
def test_default_collate_of_dicts(device, n, batch):
    for rows, item in zip(batch_rows(n, batch), loader(Indexed(n, as_dict=True), batch_size=batch), strict=True):
        assert isinstance(item, dict) and set(item) == {"idx", "data"}, "the batch is not one dict with the samples' keys"
        assert_equal(item["idx"], torch.tensor(rows), "the batch's 'idx': its samples' values batched in order")
        assert_equal(
            item["data"], torch.tensor([10 * i for i in rows]), "the batch's 'data': its samples' values batched in order"
        )


@pytest.mark.behaviour("data.last_batch_smaller")
# drop_last with shuffle: shuffling reorders the samples, never the batch sizes
@given(n=st.integers(0, 20), batch=st.integers(1, 6), options=option_grid(drop_last=[False, True], shuffle=[False, True]))
def test_batch_count_and_last_batch(device, n, batch, options):
    drop_last = options["drop_last"]
    assume(n or not options["shuffle"])  # RandomSampler refuses a dataset of no sample (ValueError)
    sizes = [len(b[0]) for b in loader(Indexed(n), batch_size=batch, **options)]
    if drop_last:
        assert len(sizes) == n // batch, "drop_last=True did not give floor(N / batch_size) batches"
    else:
        assert len(sizes) == math.ceil(n / batch), "the loader did not give ceil(N / batch_size) batches"
    assert all(s == batch for s in sizes[:-1]), "a batch before the last is not full"
    if sizes:
        assert sizes[-1] == (batch if drop_last or n % batch == 0 else n % batch), "the last batch does not hold N mod batch_size"


@pytest.mark.behaviour("data.iterable_dataset_epochs")
@given(n=st.integers(0, 10), epochs=st.integers(1, 3), batch=st.integers(1, 4))
def test_iterable_dataset_iter_runs_once_per_epoch(device, n, epochs, batch):
    dataset = Counting(n)
    batches = loader(dataset, batch_size=batch)
    for _ in range(epochs):
        items = [i for b in batches for i in b.tolist()]
        assert items == list(range(n)), "an epoch did not yield every item of the dataset in order"
    assert dataset.epochs == epochs, "__iter__ was not called once per epoch"
    with pytest.raises(ValueError):
        DataLoader(dataset, shuffle=True)


@pytest.mark.behaviour("data.iterable_dataset_epochs")
@settings(max_examples=3)  # each example starts worker processes; the property does not depend on the values
@given(n=st.integers(0, 6), batch=st.integers(1, 3))
def test_each_worker_iterates_its_own_copy_of_an_iterable_dataset(device, n, batch):
    dataset = Counting(n)
    batches = iter(loader(dataset, batch_size=batch, num_workers=2))
    try:
        items = sorted(i for b in batches for i in b.tolist())
    finally:
        batches._shutdown_workers()
    # "each worker process will have a different copy of the dataset object": each copy yields it all
    assert items == sorted(list(range(n)) * 2), "the two workers did not each iterate a copy of the dataset"
    assert dataset.epochs == 0, "the workers iterated the main process's dataset, not their copies"


class ReportsWorkerInfo(IterableDataset):
    """Yields what get_worker_info() says where the dataset is iterated: one row per worker."""

    def __iter__(self):
        info = tud.get_worker_info()
        if info is None:
            return iter([None])
        return iter([(info.id, info.num_workers, info.seed, torch.initial_seed(), info.dataset is self)])


@pytest.mark.behaviour("data.worker_info")
@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # more workers than this machine has cores
@settings(max_examples=3)  # each example starts worker processes; the property does not depend on the values
@given(workers=st.integers(1, 3), seed=st.integers(0, 2**63 - 1))
def test_get_worker_info_describes_the_worker_it_is_called_in(device, workers, seed):
    assert tud.get_worker_info() is None, "get_worker_info() in the main process is not None"
    in_main = list(loader(ReportsWorkerInfo(), batch_size=None, num_workers=0))
    assert in_main == [None], "get_worker_info() in the main process is not None (num_workers=0)"

    def rows():
        # batch_size=None: each row as the worker yielded it, not collated into tensors
        batches = iter(
            DataLoader(ReportsWorkerInfo(), batch_size=None, num_workers=workers, generator=torch.Generator().manual_seed(seed))
        )
        try:
            return sorted(tuple(row) for row in batches)  # a worker's tuple arrives as a list
        finally:
            batches._shutdown_workers()

    first = rows()
    assert [r[:2] for r in first] == [(k, workers) for k in range(workers)], "the workers' ids are not 0 to num_workers - 1"
    assert all(r[4] for r in first), "the worker's dataset is not the copy it iterates"
    base = first[0][2]
    # "each worker will have its PyTorch seed set to base_seed + worker_id" (DataLoader's docs)
    assert [(r[2], r[3]) for r in first] == [(base + k, base + k) for k in range(workers)], (
        "the workers' seeds are not base_seed + worker id"
    )
    assert rows() == first, "a generator seeded alike gave other worker seeds"


def split_sizes(n: int, lengths: list) -> list[int]:
    """The part sizes random_split documents: lengths as given, or, for "a list of fractions that sum
    up to 1" (integers too), floor(frac * n) each, then 1 count more to each part in round-robin
    order until n is reached."""
    if not (math.isclose(sum(lengths), 1) and sum(lengths) <= 1):
        return list(lengths)
    sizes = [math.floor(f * n) for f in lengths]
    for i in range(n - sum(sizes)):
        sizes[i % len(sizes)] += 1
    return sizes


@pytest.mark.behaviour("data.random_split_sizes")
@given(
    n=st.integers(0, 30),
    cuts=st.lists(st.integers(0, 10), min_size=1, max_size=4),
    fractions=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_split_parts_partition_the_dataset(device, n, cuts, fractions, seed):
    if fractions:
        total = sum(cuts) or 1
        lengths = [c / total for c in cuts] if sum(cuts) else [1.0] + [0.0] * (len(cuts) - 1)
        if sum(lengths) > 1:  # rounded above 1 ([3, 10, 10, 1] / 24 sums to 1.0000000000000002): not fractions
            # that sum up to 1, so lengths that are not the dataset's length, refused (torch 2.6 and 2.13 alike)
            with pytest.raises(ValueError, match="Sum of input lengths does not equal the length of the input dataset"):
                tud.random_split(range(n), lengths)
            return
    else:
        lengths = list(cuts[:-1]) + [max(n - sum(cuts[:-1]), 0)]
        # integer lengths that sum to 1 read as fractions (documented), so they never raise
        if sum(lengths) not in (n, 1):
            with pytest.raises(ValueError):
                tud.random_split(range(n), lengths)
            return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zero-length parts warn
        parts = tud.random_split(range(n), lengths, generator=torch.Generator().manual_seed(seed))
        with torch.random.fork_rng(devices=[]):  # the global generator moves on, then is restored:
            torch.rand(1)  # only the given generator may decide the split
            again = tud.random_split(range(n), lengths, generator=torch.Generator().manual_seed(seed))
    indices = [i for part in parts for i in part.indices]
    # "generator: Generator used for the random permutation": the same seed, the same parts
    assert [p.indices for p in again] == [p.indices for p in parts], "equally seeded generators split differently"
    assert [len(p) for p in parts] == split_sizes(n, lengths), "the parts do not have the given lengths"
    assert sorted(indices) == list(range(n)), "the parts' indices overlap or miss part of the dataset"


@pytest.mark.behaviour("data.dataset_returns_index")
@given(n=st.integers(1, 12), batch=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_returned_index_names_the_samples(device, n, batch, seed):
    seen = []
    for values, _, index in loader(Indexed(n), batch_size=batch, shuffle=True, generator=torch.Generator().manual_seed(seed)):
        assert_equal(values, index * 10, "the index tensor does not name the batch's samples")
        seen += index.tolist()
    assert sorted(seen) == list(range(n)), "an epoch did not name every sample once"


@pytest.mark.behaviour("data.iterable_dataset_needs_iter")
@given(extra=st.sampled_from(["__len__", "__getitem__", "nothing"]))
def test_an_iterable_dataset_without_iter_cannot_be_made(device, extra):
    members = {} if extra == "nothing" else {extra: lambda self, *a: 0}
    Incomplete = type("Incomplete", (IterableDataset,), members)
    with pytest.raises(TypeError, match="abstract"):
        Incomplete()


class Rows(Dataset):
    """Row i of a tensor: a non-leaf that requires grad when the tensor does."""

    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i]


@pytest.mark.behaviour("data.workers_refuse_grad_samples")
@settings(max_examples=3)  # each example starts worker processes; the property does not depend on the values
# Batched only: unbatched (batch_size=None), the worker's queue fails to pickle the sample and the
# loader waits for it forever (observed in torch 2.13), which no test should wait out.
@given(n=st.integers(1, 6), batch=st.integers(1, 3))
def test_worker_processes_refuse_samples_that_require_grad(device, n, batch):
    x = torch.arange(float(n)).requires_grad_()
    assert all(b.requires_grad for b in loader(Rows(x), batch_size=batch)), "a batch loaded in the main process lost its graph"
    batches = iter(loader(Rows(x), batch_size=batch, num_workers=1))
    try:
        with pytest.raises(RuntimeError):
            next(batches)
    finally:
        batches._shutdown_workers()
    detached = iter(loader(Rows(x.detach()), batch_size=batch, num_workers=1))
    try:
        assert torch.cat(list(detached)).tolist() == list(range(n)), "the detached data did not load through a worker"
    finally:
        detached._shutdown_workers()
