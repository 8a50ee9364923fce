"""Faults in indexing (catalogue area `indexing`)."""

import torch

from conformance.faults import fault


@fault("index_put_skips_last", trips=["indexing.list_index_assignment", "indexing.mask_from_index_assignment"])
def _(patch):
    """Assignment through an index list or index tensor skips the last index."""

    @patch.replace(torch.Tensor, "__setitem__")
    def setitem(orig, self, index, value):
        if isinstance(index, list) and len(index) > 1:
            index = index[:-1]
            value = value[:-1] if isinstance(value, torch.Tensor) and value.dim() else value
        elif isinstance(index, torch.Tensor) and index.dtype == torch.long and index.numel() > 0:
            index = index[:-1]
        return orig(self, index, value)


@fault("advanced_index_aliases_ranges", trips=["indexing.advanced_indexing_copies"])
def _(patch):
    """Indexing with a list of consecutive indices returns a view (narrow) instead of a copy."""

    @patch.replace(torch.Tensor, "__getitem__")
    def getitem(orig, self, index):
        if isinstance(index, list) and index and index == list(range(index[0], index[0] + len(index))):
            return self.narrow(0, index[0], len(index))
        return orig(self, index)


@fault("negative_step_flips", trips=["indexing.negative_step_raises"])
def _(patch):
    """A negative slice step returns a flipped copy instead of raising ValueError."""

    @patch.replace(torch.Tensor, "__getitem__")
    def getitem(orig, self, index):
        if isinstance(index, slice) and index.step is not None and index.step < 0:
            return orig(self.flip(0), slice(None, None, -index.step))
        return orig(self, index)


@fault("index_assignment_drops_negative_indices", trips=["indexing.list_index_assignment", "indexing.mask_from_index_assignment"])
def _(patch):
    """Assignment through an index list or tensor skips the negative indices instead of counting from the end."""

    @patch.replace(torch.Tensor, "__setitem__")
    def setitem(orig, self, index, value):
        if isinstance(index, list) and index and all(isinstance(i, int) for i in index):
            keep = [k for k, i in enumerate(index) if i >= 0]
            index = [index[k] for k in keep]
            value = value[keep] if isinstance(value, torch.Tensor) and value.dim() else value
        elif isinstance(index, torch.Tensor) and index.dtype == torch.long and index.dim() == 1:
            keep = index >= 0
            value = value[keep] if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == index.shape[0] else value
            index = index[keep]
        return orig(self, index, value)


@fault("accumulate_counts_each_index_once", trips=["indexing.accumulate_duplicates"])
def _(patch):
    """index_put_(accumulate=True) adds only the last value of each repeated index."""

    @patch.replace(torch.Tensor, "index_put_")
    def index_put_(orig, self, indices, values, accumulate=False):
        if accumulate:  # a read-modify-write: a repeated index keeps only its last sum
            return orig(self, indices, self[indices] + values, accumulate=False)
        return orig(self, indices, values, accumulate)
