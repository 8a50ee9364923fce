"""Item identity is fixed at collection and reaches results.jsonl whatever happens to the item:
a cross-device item whose worker dies mid-test is recorded as crashed, with its behaviour,
device and dtype."""

import os

from tests.helpers import ROOT, header_and_results, run_pytest

VICTIM = "softmax.range_and_sum-meta-float32"

KILLER = f"""
import os

def pytest_runtest_call(item):
    if "{VICTIM}" in item.nodeid:
        os._exit(3)  # the worker dies in the test body, as on a poisoned CUDA context
"""


def test_a_crashed_cross_device_item_is_recorded_with_its_identity(tmp_path):
    (tmp_path / "killer_plugin.py").write_text(KILLER)
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    result = run_pytest(
        "-q",
        "-n",
        "2",
        "-p",
        "killer_plugin",
        "--device=meta",
        "--max-examples=2",
        "--behaviour=softmax",
        f"--report-dir={tmp_path / 'report'}",
        "conformance/test_cross_device.py",
        env=env,
    )
    assert result.returncode == 1, result.stdout[-3000:]
    _, results = header_and_results(tmp_path / "report" / "results.jsonl")
    crashed = [r for r in results if r["status"] == "crashed"]
    assert len(crashed) == 1, results
    assert VICTIM in crashed[0]["nodeid"]
    assert (crashed[0]["behaviour"], crashed[0]["device"], crashed[0]["dtype"]) == ("softmax.range_and_sum", "meta", "float32")
    others = [r for r in results if r["status"] != "crashed"]
    # skipped: a call that needs what meta tensors lack (conformance/harness/agreement.py)
    assert others and all(r["status"] in ("passed", "skipped") and r["dtype"] for r in others), others
