"""Hypothesis strategies for torch-conformance.

A strategy never asserts and never touches a device: it draws a *spec* (shape, layout,
seed, special values) that a test builds into a tensor on the device under test. The same
spec built on two devices gives the same values in the same layout, which is what the
cross-device checks need, and the falsifying example prints as a short, replayable spec.
"""

from strategies.dtypes import DTYPE_GROUPS, dtypes_for, supported_on
from strategies.shapes import shapes
from strategies.tensors import LAYOUTS, TensorSpec, specs

__all__ = ["DTYPE_GROUPS", "LAYOUTS", "TensorSpec", "dtypes_for", "shapes", "specs", "supported_on"]
