"""Cross-device agreement: every declared operation gives the same results on every device.

An execution mode, not an area: it knows no behaviour. For each Operation declared in an area
module (conformance/harness/declaration.py) and each device other than the CPU, it draws one
Sample, runs the operation on the CPU and on the device, and compares the two outcomes with the
comparison every mode shares (Note [Comparing two runs of an operation] in
conformance/harness/agreement.py): the error raised, results (dtype and shape exactly, values
at the dtype's assert_close tolerance or a documented Divergence's, strides where documented),
aliasing among outputs and inputs, every input after the call, and autograd flags. On the meta
device (only with --device meta) values and memory are not observable, and only what meta
knows is compared; tests/test_cross_device_machinery.py runs it so CPU-only CI exercises the code.
"""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance.harness.agreement import run_and_compare
from conformance.repro.calls import ComparedExample, compared_example


@pytest.mark.off_cpu
@pytest.mark.execution_mode("cross-device")
@given(data=st.data())
def test_device_agrees_with_cpu(operation, device, dtype, data):
    if torch.device(device).type == "meta" and operation.shape_depends_on_values:
        pytest.skip("not applicable on meta: the output's shape depends on values meta tensors lack")
    sample = data.draw(operation.samples_for(dtype), label="sample")
    tolerance = operation.tolerance(device, dtype)
    compared_example(  # what a failing example's script compares
        ComparedExample(
            operation.call,
            [lambda: sample.build(dtype=dtype, device=device)],
            (str(device), "cpu"),
            expected_builds=[lambda: sample.build(dtype=dtype, device="cpu")],
            tolerance=tolerance,
            strides=operation.compare_strides,
        )
    )
    run_and_compare(
        operation,
        sample,
        dtype=dtype,
        actual=(str(device), device, operation.call),
        expected=("cpu", "cpu", operation.call),
        what=operation.behaviour,
        **tolerance,
    )
