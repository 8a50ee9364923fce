"""Faults in distances (catalogue area `distances`)."""

import torch
import torch.nn.functional as F

from conformance.faults import DRIFT, fault


@fault("pdist_includes_diagonal", trips=["distances.pdist_length", "distances.pdist_rebuilds_cdist"])
def _(patch):
    """pdist returns N(N+1)/2 values, the diagonal's zeros included."""

    @patch.replace(F, "pdist")
    def pdist(orig, x, p=2):
        n = x.shape[0]
        rows, cols = torch.triu_indices(n, n, device=x.device)
        return torch.cdist(x, x, p=p)[rows, cols]


@fault("pdist_drift", trips=["distances.pdist_length", "distances.pdist_rebuilds_cdist"])
def _(patch):
    """pdist is off by 0.1% relative."""
    patch.method(F, "pdist", lambda orig: lambda *a, **k: orig(*a, **k) * DRIFT)


@fault("pow_drops_the_sign_of_the_exponent", trips=["distances.similarity_from_distance"])
def _(patch):
    """Tensor.pow with a negative scalar exponent raises to its absolute value."""

    @patch.replace(torch.Tensor, "pow")
    def pow(orig, self, exponent):
        return orig(self, abs(exponent) if isinstance(exponent, (int, float)) else exponent)
