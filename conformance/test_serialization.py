"""Saving and loading: values, dtypes and shapes come back, and so do views of one storage.

Each behaviour declares the round trip through an in-memory file (torch.save, then torch.load)
on its generated tensor, so the cross-device mode compares what a device's save loads back
with what the CPU's does (values, and which loaded tensor shares storage with which). Neither is
compiled: Dynamo skips torch.save and torch.load by design, so nothing of the round trip compiles."""

import io
import pickle
import pickletools
import zipfile

import pytest
import torch
from hypothesis import strategies as st

from conformance.checks import assert_equal, assert_same_storage
from conformance.harness.declaration import Operation
from strategies import specs
from strategies.samples import Sample
from strategies.shapes import shapes
from strategies.tensors import WRITABLE_LAYOUTS

NOT_COMPILED = (
    "Dynamo does not trace torch.save and torch.load by design (torch.serialization is on its skip list: 'Dynamo "
    "developers have intentionally marked that the function `save` ... should not be traced') and graph-breaks on "
    "the file object, so the round trip always runs eagerly"
)


def round_trip(state: dict, **load_kwargs) -> dict:
    """`state` saved with torch.save into an in-memory file and loaded back with torch.load."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, **load_kwargs)


def pickle_protocol(saved: bytes) -> int:
    """The protocol torch.save pickled with: its zip archive's data.pkl (the pickled object, the
    serialization notes' "torch.save file format") opens with PROTO and the protocol (pickletools)."""
    with zipfile.ZipFile(io.BytesIO(saved)) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith("/data.pkl")]
        opcode, protocol, _ = next(pickletools.genops(archive.read(name)))
    assert opcode.name == "PROTO", f"data.pkl opens with {opcode.name}, not PROTO"
    return protocol


def saved_bytes(state, **save_kwargs) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer, **save_kwargs)
    return buffer.getvalue()


SAVE_LOAD = Operation(
    "serialization.save_load_preserves_views",
    dtypes="all",
    samples=st.builds(
        lambda x, step: Sample((x, step)),
        specs(shapes=shapes(min_dims=1), layouts=WRITABLE_LAYOUTS),  # a stepped view slices a dim
        st.integers(1, 3),
    ),
    # weights_only=True, the default: tensors in containers load
    call=lambda base, step: round_trip({"base": base, "view": base[::step]}),
    not_compiled=NOT_COMPILED,
)


@SAVE_LOAD.property
def test_save_and_load_give_back_values_and_shared_storage(device, dtype, sample):
    (base, step), _ = sample.build(dtype=dtype, device=device)
    loaded = SAVE_LOAD.call(base, step)
    for name, original in (("base", base), ("view", base[::step])):
        assert loaded[name].device == original.device, name
        assert_equal(loaded[name], original, f"loaded {name}")
    # "Saving tensors preserves their view relationships": the loaded pair shares one storage
    assert_same_storage(loaded["view"], loaded["base"], "the loaded view")
    loaded["view"].fill_(True if dtype == torch.bool else 1)
    assert_equal(loaded["base"][::step], loaded["view"], "a write through the loaded view")
    # save(obj, f, pickle_module=pickle, pickle_protocol=2, ...): "pickle_protocol: can be specified
    # to override the default protocol", 2 in the signature
    state = {"base": base, "view": base[::step]}
    assert pickle_protocol(saved_bytes(state)) == 2, "torch.save did not pickle with protocol 2, its default"
    assert pickle_protocol(saved_bytes(state, pickle_protocol=4)) == 4, "torch.save ignored pickle_protocol=4"


class NotAWeight:
    """An arbitrary Python object: what weights_only=True must refuse to unpickle."""

    def __init__(self):
        self.payload = 1


def plain_state(weight) -> dict:
    """A plain state dict: a tensor, numbers, a string, a list and a tuple."""
    return {"weight": weight, "step": 3, "name": "w", "nested": [1.5, (2, "x")]}


MAP_LOCATION = Operation(
    "serialization.map_location_and_weights_only",
    dtypes="float32_64",
    samples=specs().map(lambda x: Sample((x,))),
    # weights_only left out (default True): a plain state dict loads
    call=lambda weight: round_trip(plain_state(weight), map_location="cpu"),
    not_compiled=NOT_COMPILED,
)


@MAP_LOCATION.property
def test_load_remaps_devices_and_weights_only_refuses_other_objects(device, dtype, sample):
    (weight,), _ = sample.build(dtype=dtype, device=device)
    loaded = MAP_LOCATION.call(weight)
    assert loaded["weight"].device.type == "cpu" and loaded["weight"].dtype == dtype
    assert_equal(loaded["weight"], weight.cpu(), "the remapped tensor")
    assert (loaded["step"], loaded["name"], loaded["nested"]) == (3, "w", [1.5, (2, "x")])
    # "If map_location is a callable, it will be called once for each serialized storage with two
    # arguments: storage and location. The storage argument will be the initial deserialization of
    # the storage, residing on the CPU. [...] The builtin location tags are 'cpu' for CPU tensors and
    # 'cuda:device_id' (e.g. 'cuda:2') for CUDA tensors." Returning None falls back to the default
    # behavior: the tensor goes back to the device it was saved from.
    calls = []
    saved = saved_bytes(plain_state(weight))
    assert pickle_protocol(saved) == 2, "torch.save did not pickle with protocol 2, its default"
    buffer = io.BytesIO(saved)
    back = torch.load(buffer, map_location=lambda storage, location: calls.append((storage.device.type, location)))
    tags = {"cpu": "cpu", "cuda": f"cuda:{weight.device.index}"}
    assert [where for where, _ in calls] == ["cpu"], f"map_location was called {calls}, not once, with a CPU storage"
    if weight.device.type in tags:
        assert calls[0][1] == tags[weight.device.type], f"the location tag {calls[0][1]!r} is not the saving device's"
    assert back["weight"].device == weight.device, "map_location returned None: not loaded back where it was saved from"
    assert_equal(back["weight"], weight, "the tensor loaded through a map_location returning None")
    buffer = io.BytesIO()
    torch.save({"object": NotAWeight()}, buffer)
    buffer.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(buffer)  # weights_only=True is the default
    buffer.seek(0)
    assert isinstance(torch.load(buffer, weights_only=False)["object"], NotAWeight)


@pytest.mark.behaviour("serialization.load_default_unpickles_any_object")
@pytest.mark.device_types("cpu")
def test_load_default_unpickles_any_object_before_2_6(device):
    # weights_only left out: False before torch 2.6 (the catalogue entry's range skips it from 2.6)
    buffer = io.BytesIO()
    torch.save({"object": NotAWeight()}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer)["object"]
    assert isinstance(loaded, NotAWeight) and loaded.payload == 1, f"torch.load's default gave {loaded!r}"
