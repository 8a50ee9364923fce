"""Faults in CUDA's own semantics (catalogue area `cuda`).

The faults of the three behaviours that run everywhere fire on the CPU and are killed by every run
of the kill matrix; the others are `devices=("cuda",)`: not applicable on a machine without CUDA,
killed in the GPU evidence run (python -m tools.gpu_acceptance, its faults step).
"""

import torch

from conformance.faults import DRIFT, fault

# --- run everywhere -------------------------------------------------------------------------------


@fault("matmul_precision_not_read_back", trips=["cuda.tf32_flags_follow_matmul_precision"])
def _(patch):
    """torch.get_float32_matmul_precision() answers 'highest' whatever was set."""
    patch.method(torch, "get_float32_matmul_precision", lambda orig: lambda: "highest")


@fault("matmul_precision_turns_cudnn_tf32_off", trips=["cuda.tf32_flags_follow_matmul_precision"])
def _(patch):
    """torch.set_float32_matmul_precision('highest') also turns torch.backends.cudnn.allow_tf32 off."""

    @patch.replace(torch, "set_float32_matmul_precision")
    def set_precision(orig, precision):
        orig(precision)
        if precision == "highest":
            torch.backends.cudnn.allow_tf32 = False


@fault("cuda_manual_seed_reseeds_cpu", trips=["cuda.seeding_without_cuda_is_ignored"])
def _(patch):
    """torch.cuda.manual_seed(s) seeds the CPU generator where CUDA is absent, instead of doing nothing."""

    @patch.replace(torch.cuda, "manual_seed")
    def manual_seed(orig, seed):
        orig(seed)
        if not torch.cuda.is_available():
            torch.default_generator.manual_seed(int(seed))


@fault("cuda_seed_warns_without_cuda", trips=["cuda.seeding_without_cuda_is_ignored"])
def _(patch):
    """torch.cuda.seed() warns that CUDA is not available instead of being silently ignored."""
    import warnings

    @patch.replace(torch.cuda, "seed")
    def seed(orig):
        if not torch.cuda.is_available():
            warnings.warn("CUDA is not available: the seed is ignored", UserWarning, stacklevel=2)
        return orig()


@fault("deterministic_put_runs_anyway", trips=["cuda.deterministic_mode_refuses_nondeterministic_ops"])
def _(patch):
    """Tensor.put_ (accumulate=False) runs its nondeterministic kernel under use_deterministic_algorithms(True)."""

    @patch.replace(torch.Tensor, "put_")
    def put_(orig, self, index, source, accumulate=False):
        mode, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
        torch.use_deterministic_algorithms(False)
        try:
            return orig(self, index, source, accumulate=accumulate)
        finally:
            torch.use_deterministic_algorithms(mode, warn_only=warn_only)


@fault("deterministic_warn_only_ignored", trips=["cuda.deterministic_mode_refuses_nondeterministic_ops"])
def _(patch):
    """torch.use_deterministic_algorithms drops warn_only: the refusals raise even when a warning was asked for."""
    patch.keyword_ignored(torch, "use_deterministic_algorithms", "warn_only")


@fault("deterministic_flag_reads_false", trips=["cuda.deterministic_mode_refuses_nondeterministic_ops"])
def _(patch):
    """torch.are_deterministic_algorithms_enabled() answers False whatever was set."""
    patch.method(torch, "are_deterministic_algorithms_enabled", lambda orig: lambda: False)


# --- CUDA only: killed in the GPU evidence run ---------------------------------------------------


def _under_cuda_autocast(*tensors) -> bool:
    return torch.is_autocast_enabled("cuda") and any(isinstance(t, torch.Tensor) and t.is_cuda for t in tensors)


@fault("autocast_cuda_mm_stays_float32", trips=["cuda.autocast_cuda_float16"], devices=("cuda",))
def _(patch):
    """torch.mm under autocast('cuda') returns float32: mm dropped from CUDA's float16 list."""

    @patch.replace(torch, "mm")
    def mm(orig, a, b, **k):
        out = orig(a, b, **k)
        return out.float() if _under_cuda_autocast(a, b) and not k else out


@fault("autocast_cuda_exp_stays_low", trips=["cuda.autocast_cuda_float32"], devices=("cuda",))
def _(patch):
    """torch.exp under autocast('cuda') keeps its float16 or bfloat16 input's dtype: exp dropped from CUDA's float32 list."""

    @patch.replace(torch, "exp")
    def exp(orig, x, **k):
        out = orig(x, **k)
        return out.to(x.dtype) if _under_cuda_autocast(x) else out


@fault("deterministic_scatter_add_varies", trips=["cuda.deterministic_cuda_ops_repeat"], devices=("cuda",))
def _(patch):
    """Tensor.scatter_add_ on CUDA under deterministic mode gives a result that drifts by 0.1% on every other call."""
    calls = [0]

    @patch.replace(torch.Tensor, "scatter_add_")
    def scatter_add_(orig, self, *a, **k):
        out = orig(self, *a, **k)
        if self.is_cuda and torch.are_deterministic_algorithms_enabled():
            calls[0] += 1
            if calls[0] % 2 == 0:
                out.view(-1)[0] = out.view(-1)[0] * DRIFT + 1e-3
        return out


@fault("deterministic_histc_runs_on_cuda", trips=["cuda.deterministic_mode_refuses_nondeterministic_ops"], devices=("cuda",))
def _(patch):
    """torch.histc of a CUDA tensor runs its nondeterministic kernel under use_deterministic_algorithms(True)."""

    @patch.replace(torch, "histc")
    def histc(orig, x, *a, **k):
        if not x.is_cuda:
            return orig(x, *a, **k)
        mode, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
        torch.use_deterministic_algorithms(False)
        try:
            return orig(x, *a, **k)
        finally:
            torch.use_deterministic_algorithms(mode, warn_only=warn_only)


@fault("wait_stream_ignored", trips=["cuda.stream_ordering"], devices=("cuda",))
def _(patch):
    """torch.cuda.Stream.wait_stream returns without making the stream wait."""
    patch.method(torch.cuda.Stream, "wait_stream", lambda orig: lambda self, stream: None)


@fault("wait_event_ignored", trips=["cuda.events_order_and_time"], devices=("cuda",))
def _(patch):
    """torch.cuda.Stream.wait_event returns without making the stream wait."""
    patch.method(torch.cuda.Stream, "wait_event", lambda orig: lambda self, event: None)


@fault("record_stream_ignored", trips=["cuda.record_stream_keeps_memory"], devices=("cuda",))
def _(patch):
    """Tensor.record_stream does nothing: the allocator reuses the block while the stream still works on it."""
    patch.method(torch.Tensor, "record_stream", lambda orig: lambda self, stream: None)


@fault("pin_memory_returns_pageable", trips=["cuda.pinned_and_non_blocking_copies"], devices=("cuda",))
def _(patch):
    """Tensor.pin_memory() returns an ordinary (pageable) copy."""
    patch.method(torch.Tensor, "pin_memory", lambda orig: lambda self, *a, **k: self.clone())


@fault("non_blocking_copy_to_host_lost", trips=["cuda.pinned_and_non_blocking_copies"], devices=("cuda",))
def _(patch):
    """copy_(cuda_tensor, non_blocking=True) into a CPU tensor returns without copying."""

    @patch.replace(torch.Tensor, "copy_")
    def copy_(orig, self, src, non_blocking=False):
        if non_blocking and src.is_cuda and self.device.type == "cpu":
            return self
        return orig(self, src, non_blocking)


@fault("cuda_manual_seed_ignored", trips=["cuda.cuda_generator_replays"], devices=("cuda",))
def _(patch):
    """torch.cuda.manual_seed does nothing where CUDA is available."""
    patch.method(torch.cuda, "manual_seed", lambda orig: lambda seed: None)


@fault("cuda_set_rng_state_ignored", trips=["cuda.cuda_generator_replays"], devices=("cuda",))
def _(patch):
    """torch.cuda.set_rng_state does nothing."""
    patch.method(torch.cuda, "set_rng_state", lambda orig: lambda new_state, device="cuda": None)


@fault("memory_allocated_stale", trips=["cuda.memory_statistics"], devices=("cuda",))
def _(patch):
    """torch.cuda.memory_allocated() keeps answering its first value: new tensors do not count."""
    first = []

    @patch.replace(torch.cuda, "memory_allocated")
    def memory_allocated(orig, device=None):
        if not first:
            first.append(orig(device))
        return first[0]


@fault("reset_peak_memory_stats_ignored", trips=["cuda.memory_statistics"], devices=("cuda",))
def _(patch):
    """torch.cuda.reset_peak_memory_stats() keeps the old peak."""
    patch.method(torch.cuda, "reset_peak_memory_stats", lambda orig: lambda device=None: None)


@fault("out_of_memory_plain_runtime_error", trips=["cuda.out_of_memory_error"], devices=("cuda",))
def _(patch):
    """Asking for more CUDA memory than the device has raises a plain RuntimeError, not torch.OutOfMemoryError."""

    @patch.replace(torch, "empty")
    def empty(orig, *size, **k):
        device = torch.device(k.get("device") or "cpu")
        if device.type == "cuda":
            dims = size[0] if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)) else size
            elements = torch.Size(dims).numel()
            itemsize = (k.get("dtype") or torch.get_default_dtype()).itemsize
            if elements * itemsize > torch.cuda.get_device_properties(device).total_memory:
                raise RuntimeError("CUDA out of memory")
        return orig(*size, **k)


@fault("device_index_clamped", trips=["cuda.device_side_assert_error"], devices=("cuda",))
def _(patch):
    """Indexing a CUDA tensor with a CUDA index tensor clamps an index past the end instead of asserting."""

    @patch.replace(torch.Tensor, "__getitem__")
    def getitem(orig, self, index):
        if isinstance(index, torch.Tensor) and self.is_cuda and not index.dtype.is_floating_point and index.dtype != torch.bool:
            index = index.clamp(-self.shape[0], self.shape[0] - 1)
        return orig(self, index)
