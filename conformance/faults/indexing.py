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


@fault("gather_reads_the_next_index", trips=["indexing.gather_along_dim"])
def _(patch):
    """gather reads input at index + 1 along dim (wrapping around) instead of at index."""

    @patch.replace(torch, "gather")
    def gather(orig, input, dim, index, **k):
        return orig(input, dim, (index + 1) % max(input.size(dim), 1), **k)

    patch.method(torch.Tensor, "gather", lambda orig: lambda self, dim, index, **k: torch.gather(self, dim, index, **k))


@fault("scatter_writes_first_of_src", trips=["indexing.scatter_writes_src_at_index"])
def _(patch):
    """scatter_ with a src tensor writes src's first element everywhere index points."""

    @patch.replace(torch.Tensor, "scatter_")
    def scatter_(orig, self, dim, index, src=None, **k):
        if isinstance(src, torch.Tensor) and src.numel():
            src = src.flatten()[:1].expand(src.shape)
        return orig(self, dim, index, src, **k)


@fault("scatter_touches_unnamed_elements", trips=["indexing.scatter_writes_src_at_index"])
def _(patch):
    """scatter_ also zeroes the elements of self that index never names."""

    @patch.replace(torch.Tensor, "scatter_")
    def scatter_(orig, self, dim, index, src=None, **k):
        self.zero_()
        return orig(self, dim, index, src, **k)


@fault("scatter_add_keeps_one_repeat", trips=["indexing.scatter_add_sums_repeats"])
def _(patch):
    """scatter_add_ adds only one of the src values a repeated index names (a plain scatter_ of self + src)."""

    @patch.replace(torch.Tensor, "scatter_add_")
    def scatter_add_(orig, self, dim, index, src):
        if not index.numel():
            return self
        return self.scatter_(dim, index, self.gather(dim, index) + src[tuple(slice(0, s) for s in index.shape)])


@fault("index_select_returns_a_view_of_ranges", trips=["indexing.index_select_copies_rows"])
def _(patch):
    """index_select of consecutive positions returns a view (narrow) instead of new storage."""

    @patch.replace(torch, "index_select")
    def index_select(orig, input, dim, index, **k):
        rows = index.tolist()
        if rows and rows == list(range(rows[0], rows[0] + len(rows))):
            return input.narrow(dim, rows[0], len(rows))
        return orig(input, dim, index, **k)

    patch.method(torch.Tensor, "index_select", lambda orig: lambda self, dim, index: torch.index_select(self, dim, index))


@fault("index_select_sorts_the_index", trips=["indexing.index_select_copies_rows"])
def _(patch):
    """index_select returns the named entries in ascending order instead of index's order."""

    @patch.replace(torch, "index_select")
    def index_select(orig, input, dim, index, **k):
        return orig(input, dim, index.sort().values, **k)


@fault("tril_ignores_diagonal", trips=["indexing.tril_triu_keep_a_triangle"])
def _(patch):
    """tril keeps the main diagonal's triangle whatever diagonal says."""
    patch.method(torch, "tril", lambda orig: lambda input, diagonal=0, **k: orig(input, 0, **k))


@fault("triu_keeps_below_too", trips=["indexing.tril_triu_keep_a_triangle"])
def _(patch):
    """triu_ keeps one diagonal below the one asked for."""
    patch.method(torch.Tensor, "triu_", lambda orig: lambda self, diagonal=0: orig(self, diagonal - 1))
