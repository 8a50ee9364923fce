"""GPU robustness: a poisoned context ends only its worker, memory is bounded per worker and
returned between tests.

CPU-only machines check the machinery by declaring the CPU poisonable (a plugin adds it to
conformance.harness.gpu.POISONABLE_TYPES) and raising the error text a device-side assert gives. The
tests marked `needs_cuda` do the real thing on a GPU and skip with a reason elsewhere.
"""

import pytest
import torch

from conformance.harness.gpu import is_poisoning
from tests.helpers import run_throwaway, throwaway_results

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def run_module(tmp_path, source: str, device: str, *args: str, poisonable_cpu: bool = False):
    plugins = ()
    if poisonable_cpu:
        (tmp_path / "cpu_is_poisonable.py").write_text("from conformance.harness import gpu\ngpu.POISONABLE_TYPES.add('cpu')\n")
        plugins = ("-p", "cpu_is_poisonable")
    return run_throwaway(tmp_path, source, "-p", "no:randomly", *args, plugins=plugins, device=device)


POISON = """
    import pytest
    import torch
    from hypothesis import given, strategies as st

    @pytest.mark.behaviour("views.narrow_shares")
    @given(n=st.integers(0, 3))  # as in the suite: Hypothesis replays and shrinks the failure
    def test_poisons(device, n):
        {trigger}

    @pytest.mark.behaviour("views.permute_shares")
    @pytest.mark.parametrize("n", range(4))
    def test_fine(device, n):
        assert torch.ones(2, device=device).sum().item() == 2
"""
SIMULATED = "raise RuntimeError('CUDA error: device-side assert triggered')"
# An index past the end, checked inside the kernel: a real device-side assert.
REAL = "torch.zeros(4, device=device)[torch.tensor([10], device=device)].cpu()"


def assert_crash_contained(tmp_path, result, device):
    assert result.returncode == 1, result.stdout[-3000:]
    by_name = throwaway_results(tmp_path)[1]
    assert by_name[f"test_poisons[{device}]"]["status"] == "crashed"
    assert [by_name[f"test_fine[{device}-{n}]"]["status"] for n in range(4)] == ["passed"] * 4
    assert (tmp_path / "report" / "index.html").exists()


def test_a_poisoning_error_ends_only_its_worker(tmp_path):
    result = run_module(tmp_path, POISON.format(trigger=SIMULATED), "cpu", "-n", "2", poisonable_cpu=True)
    assert_crash_contained(tmp_path, result, "cpu")


def test_serially_the_items_after_a_poisoning_error_skip_with_the_reason(tmp_path):
    result = run_module(tmp_path, POISON.format(trigger=SIMULATED), "cpu", poisonable_cpu=True)
    assert result.returncode == 1, result.stdout[-3000:]
    by_name = throwaway_results(tmp_path)[1]
    assert by_name["test_poisons[cpu]"]["status"] == "failed"
    for n in range(4):
        item = by_name[f"test_fine[cpu-{n}]"]
        assert item["status"] == "skipped" and "context poisoned" in item["reason"], item


def test_an_ordinary_error_poisons_nothing(tmp_path):
    result = run_module(tmp_path, POISON.format(trigger="raise RuntimeError('shape mismatch')"), "cpu", poisonable_cpu=True)
    by_name = throwaway_results(tmp_path)[1]
    assert result.returncode == 1 and by_name["test_poisons[cpu]"]["status"] == "failed"
    assert all(by_name[f"test_fine[cpu-{n}]"]["status"] == "passed" for n in range(4))


def test_poisoning_is_found_inside_groups_and_chains():
    assert_error = RuntimeError("CUDA error: device-side assert triggered")
    group = ExceptionGroup("Hypothesis found 2 distinct failures.", [ValueError("x"), assert_error])
    try:
        try:
            raise assert_error
        except RuntimeError as inner:
            raise AssertionError("while checking") from inner
    except AssertionError as outer:
        chained = outer
    assert is_poisoning(group) and is_poisoning(chained)
    assert not is_poisoning(ExceptionGroup("two", [ValueError("x"), RuntimeError("shape mismatch")]))


@needs_cuda
def test_a_real_device_side_assert_ends_only_its_worker(tmp_path):
    result = run_module(tmp_path, POISON.format(trigger=REAL), "cuda", "-n", "2")
    assert_crash_contained(tmp_path, result, "cuda")


MEMORY = """
    import pytest
    import torch

    @pytest.mark.behaviour("views.narrow_shares")
    def test_a_worker_cannot_take_more_than_its_share(device):
        total = torch.cuda.get_device_properties(device).total_memory
        with pytest.raises(torch.OutOfMemoryError):
            torch.empty(int(total * 0.6), dtype=torch.uint8, device=device)

    @pytest.mark.behaviour("views.permute_shares")
    def test_allocates_and_drops(device):
        torch.empty(2**30, dtype=torch.uint8, device=device)  # 1 GiB, cached by the allocator

    @pytest.mark.behaviour("views.expand_shares")
    def test_the_cache_was_returned(device):
        assert torch.cuda.memory_reserved(device) < 2**26, torch.cuda.memory_summary(device)
"""


@needs_cuda
def test_memory_is_bounded_per_worker_and_returned_between_tests(tmp_path):
    # --dist loadfile keeps the module on one worker, in order, while two workers share the GPU.
    result = run_module(tmp_path, MEMORY, "cuda", "-n", "2", "--dist", "loadfile")
    assert result.returncode == 0, result.stdout[-3000:]
