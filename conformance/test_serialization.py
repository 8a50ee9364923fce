"""Saving and loading: values, dtypes and shapes come back, and so do views of one storage."""

import io

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conformance.checks import assert_equal, assert_same_storage
from strategies import specs
from strategies.shapes import shapes
from strategies.tensors import WRITABLE_LAYOUTS


@pytest.mark.behaviour("serialization.save_load_preserves_views")
@pytest.mark.dtypes("all")
@given(x=specs(shapes=shapes(min_dims=1, min_side=1), layouts=WRITABLE_LAYOUTS), step=st.integers(1, 3))
def test_save_and_load_give_back_values_and_shared_storage(device, dtype, x, step):
    base = x.build(dtype=dtype, device=device)
    view = base[::step]
    buffer = io.BytesIO()
    torch.save({"base": base, "view": view}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer)  # weights_only=True, the default: tensors in containers load
    for name, original in (("base", base), ("view", view)):
        assert loaded[name].device == original.device, name
        assert_equal(loaded[name], original, f"loaded {name}")
    # "Saving tensors preserves their view relationships": the loaded pair shares one storage
    assert_same_storage(loaded["view"], loaded["base"], "the loaded view")
    loaded["view"].fill_(True if dtype == torch.bool else 1)
    assert_equal(loaded["base"][::step], loaded["view"], "a write through the loaded view")
