"""Which model a service runs, as recorded with every result (mirrors common.proto's ModelIdentity)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ModelIdentity:
    model: str            # HF id or local path as given
    revision: str         # HF commit hash when known
    content_hash: str     # sha256 over config + weight files, or "dummy:<config hash>"
    model_class: str
    dtype: str
    device: str
    load_format: str      # auto | dummy
    runtime: dict[str, str] = field(default_factory=dict)  # how it runs: speed mode, kernels, compile
