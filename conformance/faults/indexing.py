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


@fault("setitem_keeps_the_version", trips=["indexing.list_index_assignment", "indexing.mask_from_index_assignment"])
def _(patch):
    """Assignment through indices writes in place but leaves the version counter, so autograd misses it."""
    from conformance.faults.shape_ops import _keeps_version

    patch.method(torch.Tensor, "__setitem__", _keeps_version)


@fault("index_put_keeps_the_version", trips=["indexing.accumulate_duplicates"])
def _(patch):
    """index_put_ writes in place but leaves the version counter, so autograd misses it."""
    from conformance.faults.shape_ops import _keeps_version

    patch.method(torch.Tensor, "index_put_", _keeps_version)


@fault("bool_returns_uint8", trips=["indexing.mask_from_index_assignment"])
def _(patch):
    """Tensor.bool() returns 0/1 as uint8 instead of a bool tensor."""
    patch.method(torch.Tensor, "bool", lambda orig: lambda self, *a, **k: orig(self, *a, **k).to(torch.uint8))


@fault("advanced_index_reverses_rows", trips=["indexing.advanced_indexing_copies"])
def _(patch):
    """Indexing with an integer list returns the picked rows in reverse order (still a copy)."""

    @patch.replace(torch.Tensor, "__getitem__")
    def getitem(orig, self, index):
        out = orig(self, index)
        return out.flip(0) if isinstance(index, list) and out.dim() else out


@fault("advanced_index_widens_integers", trips=["indexing.advanced_indexing_copies"])
def _(patch):
    """Advanced indexing of an integral tensor returns float64: the same numbers in another dtype."""

    @patch.replace(torch.Tensor, "__getitem__")
    def getitem(orig, self, index):
        out = orig(self, index)
        advanced = isinstance(index, (list, torch.Tensor))
        integral = not out.dtype.is_floating_point and not out.dtype.is_complex and out.dtype != torch.bool
        return out.to(torch.float64) if advanced and integral else out
