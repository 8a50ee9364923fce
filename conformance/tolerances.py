"""The suite's one table of tolerances beyond `assert_close`'s own per-dtype defaults.

Each row is named for the documented reason it exists; a test or a Divergence asks for a row
by name and gets `assert_close` keywords for a dtype (empty: the dtype's default tolerance).
"""

from __future__ import annotations

import torch

TABLE: dict[str, dict[torch.dtype, tuple[float, float]]] = {
    # cuDNN may run float32 convolutions in TF32 on Ampere and later (allow_tf32 defaults to True,
    # as documented under 'TensorFloat-32 (TF32) on Ampere (and later) devices').
    "tf32": {torch.float32: (2e-3, 2e-3)},
    # A sum of n values each rounded once in the input dtype, compared in float64 (softmax rows
    # summing to 1): half precision loses about its eps per term.
    "probability_sum": {
        torch.float16: (2e-3, 2e-3),
        torch.bfloat16: (1.6e-2, 1.6e-2),
        torch.float32: (1e-6, 1e-6),
        torch.float64: (1e-6, 1e-6),
    },
    # An elementwise result that rounds twice (a difference, then its square) against an exact
    # float64 reference: 4 ulps of the input dtype.
    "two_roundings": {
        d: (4 * torch.finfo(d).eps, 4 * torch.finfo(d).eps) for d in (torch.float16, torch.bfloat16, torch.float32, torch.float64)
    },
    # Distances through a Gram-matrix formulation (cdist may use one for float32): 1e-4.
    "distance_float32": {torch.float32: (1e-4, 1e-4)},
    # Inductor fuses half-precision operations and computes them in float32 without rounding between
    # them, unless torch._inductor.config.emulate_precision_casts is set: "When two low precision
    # operators are fused together, Inductor will elide the downcast-upcast pairs (effectively a
    # precision truncation) that would occur between these two operators." Eager rounds after every
    # operation, so the two may differ by a few roundings of the half dtype: 8 of its eps.
    "inductor_fused_low_precision": {
        d: (8 * torch.finfo(d).eps, 8 * torch.finfo(d).eps) for d in (torch.float16, torch.bfloat16)
    },
    # A float32 sum (or product) of up to the suite's 625 terms, each step rounded in float32, against an
    # exact float64 reference: recursive summation's error bound is n * eps relative (Higham, Accuracy
    # and Stability of Numerical Algorithms, 4.2), 625 * 1.19e-7 = 7.5e-5; no doc fixes the order of
    # the terms. float64 keeps assert_close's own tolerance (1e-7), above 625 of its eps.
    "sum_of_terms": {torch.float32: (7.5e-5, 1e-5)},
    # Figures printed to four decimals in a worked example of the docs or a study note.
    "four_decimals": {d: (0.0, 1e-4) for d in (torch.float32, torch.float64)},
}


def tolerance(name: str, dtype: torch.dtype) -> dict:
    """assert_close keywords for row `name` at `dtype` ({}: assert_close's default)."""
    if name not in TABLE:
        raise KeyError(f"unknown tolerance {name!r}; known: {', '.join(TABLE)}")
    row = TABLE[name].get(dtype)
    return {} if row is None else {"rtol": row[0], "atol": row[1]}
