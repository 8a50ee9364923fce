"""`--device meta` is honest: a test that reads values skips on meta with the reason, and what
runs there (tests marked meta_too, the cross-device comparison of what meta knows) passes
(two areas, three examples each: a few seconds on an idle 2-core machine)."""

from tests.helpers import run_pytest


def test_a_meta_run_has_no_failures_and_says_why_it_skips():
    result = run_pytest("-v", "-rs", "-p", "no:randomly", "--device=meta", "--max-examples=3", "--behaviour=devices,softmax")
    assert result.returncode == 0, result.stdout[-3000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    # the softmax tests read values: skipped, with the reason; its cross-device item compares on meta
    assert "meta tensors hold no values: the test reads values" in result.stdout, result.stdout[-3000:]
    assert "test_device_agrees_with_cpu[softmax.range_and_sum-meta-float32] PASSED" in result.stdout, result.stdout[-3000:]
