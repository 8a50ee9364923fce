"""The cross-device comparison runs on CPU-only machines too, against the meta device, and it
catches a fault that fires on the other device only."""
from tests.helpers import run_pytest

ARGS = ("-q", "--device=meta", "--max-examples=3", "conformance/test_cross_device.py")


def test_cross_device_cases_run_against_meta():
    result = run_pytest(*ARGS)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout


def test_a_device_only_fault_is_caught(tmp_path):
    result = run_pytest(*ARGS, "--inject-fault=softmax_wrong_dtype_off_cpu", "-k", "softmax")
    assert result.returncode == 1, result.stdout[-3000:]
