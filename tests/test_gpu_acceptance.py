"""The one-command GPU evidence gatherer: its refusal without CUDA and its run summary."""

import json
import subprocess
import sys

import pytest
import torch

from tests.helpers import ROOT
from tools.gpu_acceptance import cuda_only_met, cuda_only_statuses, summarise_run


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_without_cuda_it_refuses_in_one_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tools.gpu_acceptance", "--out", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 4
    assert done.stderr.count("\n") == 1 and "CUDA is not available" in done.stderr
    assert not (tmp_path / "out").exists()


def test_summary_counts_each_device_type(tmp_path):
    rows = [
        {"type": "environment", "torch": "2.11.0", "devices": ["cpu", "cuda"]},
        {"type": "result", "nodeid": "a[cpu]", "device": "cpu", "status": "passed", "duration": 1.0},
        {"type": "result", "nodeid": "a[cuda]", "device": "cuda", "status": "passed", "duration": 2.0, "cuda_peak_mb": 3.5},
        {
            "type": "result",
            "nodeid": "b[cuda:0]",
            "device": "cuda:0",
            "status": "crashed",
            "duration": 0.5,
            "cuda_peak_mb": 9.0,
            "error": "worker crashed",
        },
        {"type": "result", "nodeid": "c", "device": None, "status": "skipped"},
    ]
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    summary = summarise_run(path)
    assert summary["counts"] == {"cpu": {"passed": 1}, "cuda": {"passed": 1, "crashed": 1}, "none": {"skipped": 1}}
    assert summary["busy_s"]["cuda"] == 2.5 and summary["largest_test_cuda_peak_mb"] == 9.0
    assert [f["nodeid"] for f in summary["failures"]] == ["b[cuda:0]"]


def test_the_summary_lists_every_cuda_only_behaviour_with_its_status(tmp_path):
    from conformance import catalogue

    needs_cuda = sorted(b.id for b in catalogue.behaviours().values() if b.needs == "cuda")
    ran, skipped_two, failed = "cuda.stream_ordering", "devices.two_gpu_copies", "cuda.memory_statistics"
    rows = [
        {"type": "environment", "devices": ["cpu", "cuda"]},
        {
            "type": "result",
            "nodeid": "a[cpu]",
            "behaviour": ran,
            "device": "cpu",
            "status": "skipped",
            "reason": "not applicable",
        },
        {"type": "result", "nodeid": "a[cuda]", "behaviour": ran, "device": "cuda", "status": "passed"},
        {
            "type": "result",
            "nodeid": "b[cuda]",
            "behaviour": skipped_two,
            "device": "cuda",
            "status": "skipped",
            "reason": "needs two CUDA devices; this machine has 1",
        },
        {"type": "result", "nodeid": "c[cuda-0]", "behaviour": failed, "device": "cuda", "status": "passed"},
        {"type": "result", "nodeid": "c[cuda-1]", "behaviour": failed, "device": "cuda", "status": "failed"},
    ]
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    statuses = cuda_only_statuses(path)
    assert sorted(statuses) == needs_cuda, "every CUDA-only behaviour is listed, run or not"
    assert statuses[ran] == "passed" and statuses[failed] == "failed"
    assert statuses[skipped_two] == "skipped: needs two CUDA devices; this machine has 1"
    assert {statuses[b] for b in needs_cuda if b not in (ran, skipped_two, failed)} == {"not run"}
    assert not cuda_only_met(statuses), "a failure or a behaviour not run must not meet the bar"
    assert cuda_only_met({ran: "passed", skipped_two: statuses[skipped_two]})
    assert not cuda_only_met({ran: "skipped: CUDA is not available"})
