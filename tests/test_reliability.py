"""Reliability: isolation between tests, crash and hang survival, random order."""

import sys

import pytest

from tests.helpers import run_pytest, run_throwaway, throwaway_results

LEAKS = """
    import warnings
    import pytest
    import torch

    @pytest.mark.behaviour("views.permute_shares")
    def test_leaks_default_dtype(device):
        torch.set_default_dtype(torch.float64)

    @pytest.mark.behaviour("views.narrow_shares")
    def test_leaks_grad_mode_and_rng(device):
        torch.set_grad_enabled(False)
        torch.rand(3)

    @pytest.mark.behaviour("views.expand_shares")
    def test_leaks_warning_filter(device):
        warnings.simplefilter("ignore")

    @pytest.mark.behaviour("views.transpose_shares")
    def test_after_the_leaks_state_is_clean(device):
        assert torch.get_default_dtype() == torch.float32 and torch.is_grad_enabled()
"""


def test_a_leaking_test_fails_and_names_what_it_changed(tmp_path):
    result = run_throwaway(tmp_path, LEAKS, "-p", "no:randomly")
    assert result.returncode == 1
    _, by_name = throwaway_results(tmp_path)
    assert "default dtype" in by_name["test_leaks_default_dtype[cpu]"]["error"]
    assert "grad mode" in by_name["test_leaks_grad_mode_and_rng[cpu]"]["error"]
    assert "CPU random generator" in by_name["test_leaks_grad_mode_and_rng[cpu]"]["error"]
    assert "warning filters" in by_name["test_leaks_warning_filter[cpu]"]["error"]
    assert by_name["test_after_the_leaks_state_is_clean[cpu]"]["status"] == "passed"


CRASH_AND_HANG = """
    import os
    import time
    import pytest

    @pytest.mark.behaviour("views.permute_shares")
    @pytest.mark.parametrize("n", range(4))
    def test_fine(device, n):
        pass

    @pytest.mark.behaviour("views.narrow_shares")
    def test_crashes(device):
        os.abort()

    @pytest.mark.behaviour("views.expand_shares")
    def test_hangs(device):
        time.sleep(60)
"""


def test_crash_and_hang_do_not_take_the_run_down(tmp_path):
    result = run_throwaway(tmp_path, CRASH_AND_HANG, "-n", "2", "--timeout=3")
    assert result.returncode == 1, result.stdout[-2000:]
    header, by_name = throwaway_results(tmp_path)
    assert by_name["test_crashes[cpu]"]["status"] == "crashed"
    assert by_name["test_hangs[cpu]"]["status"] == "timeout"
    assert [by_name[f"test_fine[cpu-{n}]"]["status"] for n in range(4)] == ["passed"] * 4
    assert header["end"] and (tmp_path / "report" / "index.html").exists()


def test_a_stopped_run_is_marked_incomplete(tmp_path):
    source = """
        import pytest

        @pytest.mark.behaviour("views.permute_shares")
        @pytest.mark.parametrize("n", range(3))
        def test_one(device, n):
            assert n != 0
    """
    run_throwaway(tmp_path, source, "-x", "-p", "no:randomly")
    header, by_name = throwaway_results(tmp_path)
    assert header["interrupted"] is True and len(by_name) == 1
    assert "is incomplete" in (tmp_path / "report" / "index.html").read_text()


@pytest.mark.skipif(sys.platform == "win32", reason="uses a POSIX shell idiom")
def test_random_order_passes():
    result = run_pytest("-q", "-n", "2", "--device=cpu", "--no-report", "--shuffle-seed=20261123", "--max-examples=5")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "shuffled with seed 20261123" in result.stdout
