"""Dtype groups and which dtypes each device type supports.

Groups are the vocabulary tests use in `@pytest.mark.dtypes("floating")`; the device table
keeps a backend's gaps (MPS has no float64) out of every test.
"""

import torch

BOOL = (torch.bool,)
UNSIGNED = (torch.uint8,)
SIGNED = (torch.int8, torch.int16, torch.int32, torch.int64)
INTEGRAL = UNSIGNED + SIGNED
FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
COMPLEX = (torch.complex64, torch.complex128)
# The wide unsigned types have NumPy counterparts but few torch kernels: only the
# bridge uses them.
WIDE_UNSIGNED = (torch.uint16, torch.uint32, torch.uint64)

DTYPE_GROUPS: dict[str, tuple[torch.dtype, ...]] = {
    "bool": BOOL,
    "unsigned": UNSIGNED,
    "signed": SIGNED,
    "integral": INTEGRAL,
    "floating": FLOATING,
    "complex": COMPLEX,
    "float_and_complex": FLOATING + COMPLEX,
    "numeric": INTEGRAL + FLOATING + COMPLEX,
    "real": INTEGRAL + FLOATING,
    "all": BOOL + INTEGRAL + FLOATING + COMPLEX,
    # every dtype NumPy has a counterpart for (no bfloat16, no complex32)
    "numpy": BOOL + INTEGRAL + WIDE_UNSIGNED + (torch.float16, torch.float32, torch.float64) + COMPLEX,
    # the float32/float64 pair: enough for behaviours whose dtype only sets the tolerance
    # one dtype per element size and kind: for behaviours that depend on dtype only through
    # the element size (views, strides, memory sharing)
    "representative": (torch.bool, torch.int64, torch.bfloat16, torch.float32, torch.complex128),
    # one NumPy-bridgeable dtype per kind and width extreme: for bridge behaviours whose dtype
    # matters only through the element type (copies, rejections, read-only arrays)
    "numpy_representative": (torch.bool, torch.uint8, torch.int64, torch.uint64, torch.float16, torch.float64, torch.complex64),
    # dtypes torch has and NumPy lacks
    "no_numpy": (torch.bfloat16, torch.complex32),
    "float32_64": (torch.float32, torch.float64),
    "float32": (torch.float32,),
    # one integral dtype: for behaviours the docs state for every integer dtype alike, whose
    # integer kernels are one template (round's integer copy)
    "int64": (torch.int64,),
}

# Dtypes a device type lacks. Unlisted device types are assumed to support everything;
# a backend author adds a line here rather than a skip in every test.
_UNSUPPORTED: dict[str, frozenset[torch.dtype]] = {
    "mps": frozenset({torch.float64, torch.complex128} | set(WIDE_UNSIGNED)),
}


def supported_on(device_type: str, dtype: torch.dtype) -> bool:
    return dtype not in _UNSUPPORTED.get(device_type, frozenset())


def dtypes_for(group: str, device_type: str) -> tuple[torch.dtype, ...]:
    """The dtypes of `group` that `device_type` supports, in a stable order."""
    try:
        members = DTYPE_GROUPS[group]
    except KeyError:
        raise ValueError(f"unknown dtype group {group!r}; known: {', '.join(DTYPE_GROUPS)}") from None
    return tuple(d for d in members if supported_on(device_type, d))


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
