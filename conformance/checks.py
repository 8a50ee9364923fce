"""Assertion helpers shared by behaviour tests. Each builds its own message from the inputs.

Exact properties (memory sharing, identity) are compared exactly; numeric ones go through
`torch.testing.assert_close` and its per-dtype tolerance table.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.testing import assert_close

from conformance.harness.releases import torch_at_least
from conformance.repro import calls


def storage_ptr(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def _observable(*tensors: torch.Tensor) -> bool:
    """Meta tensors have no memory: whether two of them alias cannot be observed."""
    return all(t.device.type != "meta" for t in tensors)


def _failure(what: str, detail: str) -> AssertionError:
    """The uniform failure message: what was checked, the difference. (The behaviour is the
    failing item's own, which pytest's header and the report name: left out of the message, the
    check reads the same in a standalone script, which copies it.)"""
    return AssertionError(f"{what}: {detail}")


def _describe(t: torch.Tensor) -> str:
    return f"{t.dtype} {tuple(t.shape)} on {t.device} (stride {t.stride()})"


def assert_equal(actual: torch.Tensor, expected: torch.Tensor, what: str = "values") -> None:
    """`actual` equals `expected` exactly: same shape and dtype, every element equal."""
    __tracebackhide__ = True
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        raise _failure(what, f"got {_describe(actual)}, expected {_describe(expected)}")
    if actual.device.type == "meta" or expected.device.type == "meta":
        return
    a, e = actual.cpu(), expected.cpu()
    if torch.equal(a, e):
        return
    differ = a != e  # NaN differs from NaN, as in torch.equal
    shown = ", ".join(
        f"at {tuple(i)}: got {a[tuple(i)].item()!r}, expected {e[tuple(i)].item()!r}" for i in differ.nonzero()[:3].tolist()
    )
    raise _failure(what, f"{int(differ.sum())} of {a.numel()} elements differ ({shown}); actual {_describe(actual)}")


def assert_same_storage(view: torch.Tensor, base: torch.Tensor, what: str) -> None:
    __tracebackhide__ = True
    if not _observable(view, base):
        return
    if storage_ptr(view) != storage_ptr(base):
        raise _failure(
            what,
            f"expected a view sharing the base's storage, got a tensor with its own storage "
            f"(base {_describe(base)}, result {_describe(view)})",
        )


def assert_own_storage(copy: torch.Tensor, source: torch.Tensor, what: str) -> None:
    __tracebackhide__ = True
    if copy.numel() and source.numel() and _observable(copy, source) and storage_ptr(copy) == storage_ptr(source):
        raise _failure(what, f"expected a copy, got storage shared with the source ({_describe(source)})")


def dense_non_overlapping(shape, strides) -> bool:
    """Whether the elements fill a block of memory once each: sorted by stride, each dimension of
    more than one element steps over exactly the dimensions inside it (index arithmetic, no torch)."""
    span = 1
    for size, stride in sorted((pair for pair in zip(shape, strides) if pair[0] != 1), key=lambda pair: pair[1]):
        if stride != span:
            return False
        span *= size
    return True


def contiguous_strides(shape) -> tuple[int, ...]:
    strides, running = [], 1
    for size in reversed(shape):
        strides.append(running)
        running *= max(size, 1)
    return tuple(reversed(strides))


def changed(t: torch.Tensor) -> torch.Tensor:
    """New values that differ from `t` at every element (for write-through checks)."""
    if t.dtype == torch.bool:
        return ~t
    if t.dtype.is_floating_point or t.dtype.is_complex:
        return torch.where(t.real > 0, -t - 1, 1 - t) if t.numel() else t.clone()
    if t.dtype in (torch.uint16, torch.uint32, torch.uint64) and not torch_at_least("2.6"):
        # no bitwise ops for these before torch 2.6 ('"bitwise_xor_cpu" not implemented for 'UInt16''):
        # "Expand bitwise ops to unsigned types", https://github.com/pytorch/pytorch/pull/135525. The
        # same bits flipped through the signed view of the same size.
        signed = {torch.uint16: torch.int16, torch.uint32: torch.int32, torch.uint64: torch.int64}[t.dtype]
        return (t.view(signed) ^ 1).view(t.dtype)
    return t ^ 1  # flips the low bit: stays in range for every integer dtype


def changed_np(a: np.ndarray) -> np.ndarray:
    """NumPy twin of `changed`."""
    if a.dtype == np.bool_:
        return ~a
    if a.dtype.kind in "fc":
        return np.where(a.real > 0, -a - 1, 1 - a).astype(a.dtype)
    return a ^ a.dtype.type(1)


def numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """NumPy's counterpart of `dtype`; bfloat16, which NumPy lacks, maps to float32 (exact)."""
    if dtype == torch.bfloat16:
        return np.dtype(np.float32)
    return np.dtype(str(dtype).removeprefix("torch."))


@calls.helper(lambda record, t: f"np.array({t}.tolist(), dtype=np.{numpy_dtype(record.args[0].dtype).name}).reshape({t}.shape)")
def independent_array(t: torch.Tensor) -> np.ndarray:
    """A NumPy copy of a CPU tensor's values made without Tensor.numpy() (via Python lists),
    so bridge tests do not use the bridge to build their oracle."""
    return np.array(t.tolist(), dtype=numpy_dtype(t.dtype)).reshape(tuple(t.shape))


def byte_strides(t: torch.Tensor) -> tuple[int | None, ...]:
    """Strides in bytes, as NumPy counts them; None where a stride carries no meaning
    (dimensions of size <= 1, and every dimension of an empty tensor)."""
    return _meaningful(t.shape, [s * t.element_size() for s in t.stride()])


def array_byte_strides(a: np.ndarray) -> tuple[int | None, ...]:
    return _meaningful(a.shape, a.strides)


def _meaningful(shape, strides):
    empty = 0 in tuple(shape)
    return tuple(None if empty or n <= 1 else s for n, s in zip(shape, strides))


def assert_close_to_reference(actual: torch.Tensor, reference: torch.Tensor, **kwargs) -> None:
    """Compare a result with an exact (float64, CPU) reference at the tolerance of the
    result's own dtype: the reference is rounded to that dtype first."""
    __tracebackhide__ = True
    assert_close(actual.cpu(), reference.to(actual.dtype), **kwargs)


def private_rng(seed: int = 0, device="cpu"):
    """A context in which torch's generator for `device` (and the CPU's) is seeded with `seed`
    and restored afterwards, for code that can only draw from the global generator (module
    initialisers, *_like, dropout)."""
    import contextlib

    device = torch.device(device)
    cuda = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []

    @contextlib.contextmanager
    def scope():
        with torch.random.fork_rng(devices=cuda):
            calls.seed_point(seed)
            torch.default_generator.manual_seed(seed)
            if cuda:
                torch.cuda.manual_seed(seed)
            yield

    return scope()


def assert_ieee_equal(
    actual: torch.Tensor, expected: np.ndarray, what: str, *, where: np.ndarray | None = None, signed_zeros: bool = True
) -> None:
    """`actual` holds exactly `expected` (a NumPy reference, rounded once to actual's dtype): the
    same NaN positions, the same values elsewhere, and the same sign on every zero (IEEE 754 tells
    -0.0 from 0.0). `where`: only the elements where it is True are compared (the others have no
    documented result). `signed_zeros=False`: -0.0 and 0.0 count as one (the docs leave it open)."""
    __tracebackhide__ = True
    expected = np.asarray(expected)
    if tuple(actual.shape) != expected.shape:
        raise _failure(what, f"got shape {tuple(actual.shape)}, expected {expected.shape}")
    if actual.device.type == "meta":
        return
    got = independent_array(actual.detach().cpu())
    want = independent_array(torch.from_numpy(np.array(expected)).to(actual.dtype))
    keep = np.ones(got.shape, dtype=bool) if where is None else np.broadcast_to(where, got.shape)
    if got.dtype.kind in "fc":
        same = (got == want) | (np.isnan(got) & np.isnan(want))
        if signed_zeros:
            same &= (np.signbit(got.real) == np.signbit(want.real)) | np.isnan(got.real) | (got.real != 0)
    else:
        same = got == want
    differ = keep & ~same
    if differ.any():
        shown = ", ".join(
            f"at {tuple(int(i) for i in at)}: got {got[tuple(at)]!r}, expected {want[tuple(at)]!r}"
            for at in np.argwhere(differ)[:3]
        )
        raise _failure(what, f"{int(differ.sum())} of {got.size} elements differ ({shown}); actual {_describe(actual)}")
