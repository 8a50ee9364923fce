"""Reliability: isolation between tests, crash and hang survival, random order."""

import os
import signal
import sys
import time

import pytest

from reports.schema import load
from tests.helpers import run_pytest, run_throwaway, start_throwaway, throwaway_results

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

    @pytest.mark.behaviour("views.t_shares")
    def test_fails_and_leaks(device):
        torch.rand(3)
        assert False, "its own check"

    @pytest.mark.behaviour("views.view_shares")
    def test_leaks_a_default_device_of_cpu(device):
        torch.set_default_device("cpu")  # the CPU, but held as a function mode every call passes through

    @pytest.mark.behaviour("views.transpose_shares")
    def test_after_the_leaks_state_is_clean(device):
        assert torch.get_default_dtype() == torch.float32 and torch.is_grad_enabled()
        assert torch._C._len_torch_function_stack() == 0, "a function mode is left on"
"""


def test_a_leaking_test_fails_and_names_what_it_changed(tmp_path):
    result = run_throwaway(tmp_path, LEAKS, "-p", "no:randomly")
    assert result.returncode == 1
    _, by_name = throwaway_results(tmp_path)
    assert "default dtype" in by_name["test_leaks_default_dtype[cpu]"]["error"]
    assert "grad mode" in by_name["test_leaks_grad_mode_and_rng[cpu]"]["error"]
    assert "CPU random generator" in by_name["test_leaks_grad_mode_and_rng[cpu]"]["error"]
    assert "warning filters" in by_name["test_leaks_warning_filter[cpu]"]["error"]
    assert "default device" in by_name["test_leaks_a_default_device_of_cpu[cpu]"]["error"]
    # a test that fails anyway is reported by its own check, the leak added to it (and put right)
    assert "its own check" in by_name["test_fails_and_leaks[cpu]"]["error"]
    section = result.stdout.split("test_fails_and_leaks[cpu] _")[1].split("\n___")[0]
    assert "did not restore it: CPU random generator" in section
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


SLOW = """
    import time
    import pytest

    @pytest.mark.behaviour("views.permute_shares")
    @pytest.mark.parametrize("n", range(4))
    def test_slow(device, n):
        time.sleep(0.5)
"""
QUICK = """
    import pytest

    @pytest.mark.behaviour("views.narrow_shares")
    @pytest.mark.parametrize("n", range(3))
    def test_quick(device, n):
        pass
"""


def test_two_runs_in_one_report_directory_never_share_a_file(tmp_path):
    report = tmp_path / "report"
    slow = start_throwaway(tmp_path, "slow", SLOW, report)
    time.sleep(1.0)  # the slow run is under way when the quick one starts and ends
    quick = start_throwaway(tmp_path, "quick", QUICK, report)
    assert quick.wait(120) == 0, quick.stdout.read()[-2000:]
    assert slow.wait(120) == 0, slow.stdout.read()[-2000:]
    runs = sorted((report / "runs").glob("*.jsonl"))
    assert len(runs) == 2
    names = [{r["nodeid"].split("::")[-1].split("[")[0] for r in load(path).results} for path in runs]
    assert sorted(map(sorted, names)) == [["test_quick"], ["test_slow"]], "one run's file holds the other's results"
    published = (report / "results.jsonl").read_text()
    assert published in [path.read_text() for path in runs], "results.jsonl is not one whole run's file"
    assert load(report / "results.jsonl").header["end"] and (report / "index.html").exists()


KILLED = """
    import time
    import pytest

    @pytest.mark.behaviour("views.permute_shares")
    @pytest.mark.parametrize("n", range(2))
    def test_first(device, n):
        pass

    @pytest.mark.behaviour("views.narrow_shares")
    def test_never_ends(device):
        time.sleep(120)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_killed_run_keeps_what_it_recorded_and_the_next_run_starts_clean(tmp_path):
    report = tmp_path / "report"
    assert start_throwaway(tmp_path, "quick", QUICK, report).wait(120) == 0
    before = (report / "results.jsonl").read_text()
    victim = start_throwaway(tmp_path, "killed", KILLED, report)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        own = [p for p in (report / "runs").glob("*.jsonl") if "test_first" in p.read_text()]
        if own and own[0].read_text().count("\n") >= 3:  # the header and both finished items
            break
        time.sleep(0.2)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(30)
    recorded = load(own[0])
    assert recorded.incomplete and [r["status"] for r in recorded.results] == ["passed", "passed"]
    assert (report / "results.jsonl").read_text() == before, "a killed run touched the published results"
    assert start_throwaway(tmp_path, "quick", QUICK, report).wait(120) == 0
    assert len(list((report / "runs").glob("*.jsonl"))) == 3 and load(report / "results.jsonl").header["end"]
