"""Saving and loading: values, dtypes and shapes come back, and so do views of one storage."""

import io
import pickle

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
@given(x=specs(shapes=shapes(min_dims=1), layouts=WRITABLE_LAYOUTS), step=st.integers(1, 3))  # a stepped view slices a dim
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


class NotAWeight:
    """An arbitrary Python object: what weights_only=True must refuse to unpickle."""

    def __init__(self):
        self.payload = 1


@pytest.mark.behaviour("serialization.map_location_and_weights_only")
@pytest.mark.dtypes("float32_64")
@given(x=specs())
def test_load_remaps_devices_and_weights_only_refuses_other_objects(device, dtype, x):
    state = {"weight": x.build(dtype=dtype, device=device), "step": 3, "name": "w", "nested": [1.5, (2, "x")]}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, map_location="cpu")  # a plain state dict loads under weights_only=True
    assert loaded["weight"].device.type == "cpu" and loaded["weight"].dtype == dtype
    assert_equal(loaded["weight"], state["weight"].cpu(), "the remapped tensor")
    assert (loaded["step"], loaded["name"], loaded["nested"]) == (3, "w", [1.5, (2, "x")])
    buffer = io.BytesIO()
    torch.save({"object": NotAWeight()}, buffer)
    buffer.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(buffer)  # weights_only=True is the default
    buffer.seek(0)
    assert isinstance(torch.load(buffer, weights_only=False)["object"], NotAWeight)
