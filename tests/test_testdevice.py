"""The suite's own test device (tests/testdevice): it builds and loads, --backend brings it in,
and the off-CPU machinery catches faults on it. The whole suite on `cpu,testdev` runs in .ci/run."""

import json
import shlex
import subprocess
import sys

import pytest

from tests.helpers import ROOT, header_and_results, run_pytest

BACKEND = ("--backend=tests.testdevice", "--device=testdev", "-p", "no:randomly")


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_the_device_holds_tensors_views_autograd_and_random_numbers():
    done = python(
        "import torch, tests.testdevice\n"
        "x = torch.arange(6.0).to('testdev')\n"
        "v = x.view(2, 3).t()\n"
        "assert v.device.type == 'testdev' and v.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()\n"
        "w = x.clone().requires_grad_(); (w * w).sum().backward()\n"
        "assert w.grad.device.type == 'testdev' and w.grad.cpu().tolist() == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]\n"
        "g = torch.Generator('testdev')\n"
        "a = torch.rand(4, generator=g.manual_seed(7), device='testdev').cpu()\n"
        "b = torch.rand(4, generator=g.manual_seed(7), device='testdev').cpu()\n"
        "assert a.tolist() == b.tolist() and a.tolist() != torch.rand(4, generator=g, device='testdev').cpu().tolist()\n"
        "print('ok', flush=True)\n"
        "import os; os._exit(0)  # before finalization: see EXIT_BEFORE_FINALIZATION in tests/testdevice\n"
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


@pytest.mark.parametrize(
    ("module", "problem"),
    [("no.such.backend", "cannot import it"), ("json", "registered no device")],
)
def test_a_backend_that_cannot_load_or_registers_nothing_is_a_one_line_error(module, problem):
    result = run_pytest("--collect-only", "-q", f"--backend={module}")
    assert result.returncode == 4 and problem in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("fault", "behaviour"),
    [
        ("numpy_of_cuda_copies_to_host", "numpy_bridge.numpy_non_cpu_raises"),  # .numpy() silently copies
        ("matmul_drift_off_cpu", "matmul.matmul_semantics"),  # a numeric fault on the device alone
        ("softmax_wrong_dtype_off_cpu", "softmax.range_and_sum"),
        ("module_to_copies", "devices.module_moves_in_place"),
    ],
)
def test_faults_that_fire_off_the_cpu_are_caught_on_the_test_device(fault, behaviour):
    result = run_pytest("-q", *BACKEND, "--hypothesis-profile=faults", f"--inject-fault={fault}", f"--behaviour={behaviour}")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "[testdev" in result.stdout or "-testdev" in result.stdout, result.stdout[-3000:]


def test_a_repro_line_replays_a_test_device_failure_in_a_fresh_shell(tmp_path):
    run_pytest(
        "-q",
        *BACKEND,
        "--hypothesis-profile=faults",
        "--inject-fault=matmul_drift_off_cpu",
        "--behaviour=matmul.matmul_semantics",
        f"--report-dir={tmp_path / 'report'}",
    )
    header, results = header_and_results(tmp_path / "report" / "results.jsonl")
    assert header["backends"][0]["module"] == "tests.testdevice" and header["backends"][0]["device"] == "testdev"
    failed = [r for r in results if r["status"] == "failed"]
    assert failed, json.dumps(results)[:2000]
    repro = failed[0]["repro_line"]
    assert "--backend=tests.testdevice" in repro and "--inject-fault=matmul_drift_off_cpu" in repro
    replay = subprocess.run(
        ["bash", "-c", f"{repro} -p no:cacheprovider --no-report"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert replay.returncode == 1 and "1 failed" in replay.stdout, replay.stdout[-3000:]
    assert shlex.split(repro)[1] in replay.stdout
