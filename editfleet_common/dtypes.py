"""Model dtypes by name, for both services: `--dtype auto|bfloat16|float16|float32`.

auto is bfloat16 (what the models are released in) except on the CPU, which runs it slowly:
float32 there (the tests' path). torch is imported only by `torch_dtype`.
"""

from __future__ import annotations

DTYPES = ("bfloat16", "float16", "float32")


def resolve_dtype_name(name: str, device: str) -> str:
    """The dtype a model on `device` ("cpu", "cuda:1", ...) loads in, by name; ValueError for an unknown one."""
    if name in ("", "auto"):
        return "float32" if str(device).split(":")[0] == "cpu" else "bfloat16"
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; choose auto or one of {', '.join(DTYPES)}")
    return name


def torch_dtype(name: str, device: str):
    import torch

    return getattr(torch, resolve_dtype_name(name, device))
