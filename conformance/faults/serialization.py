"""Faults in saving and loading (catalogue area `serialization`)."""

import torch

from conformance.faults import fault


@fault("load_copies_every_tensor", trips=["serialization.save_load_preserves_views"])
def _(patch):
    """torch.load gives every tensor a storage of its own, so loaded views no longer share."""

    @patch.replace(torch, "load")
    def load(orig, *a, **k):
        loaded = orig(*a, **k)
        if isinstance(loaded, dict):
            return {key: v.clone() if isinstance(v, torch.Tensor) else v for key, v in loaded.items()}
        return loaded


@fault("load_allows_any_object", trips=["serialization.map_location_and_weights_only"])
def _(patch):
    """torch.load unpickles anything, as if weights_only were False."""

    @patch.replace(torch, "load")
    def load(orig, *a, weights_only=True, **k):
        return orig(*a, weights_only=False, **k)


@fault("load_default_weights_only_early", trips=["serialization.load_default_unpickles_any_object"])
def _(patch):
    """torch.load with weights_only left out restricts unpickling before torch 2.6, as if 2.6's default had come early."""

    @patch.replace(torch, "load")
    def load(orig, *a, **k):
        k.setdefault("weights_only", True)
        return orig(*a, **k)
