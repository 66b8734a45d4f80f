"""Which model a service runs, as recorded with every result (mirrors common.proto's ModelIdentity)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .version import version


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
    editfleet_version: str = field(default_factory=version)  # the service's own version (pyproject.toml)


def identity_to_proto(identity: ModelIdentity):
    """common.proto's ModelIdentity of an identity."""
    from editfleet.v1 import common_pb2

    return common_pb2.ModelIdentity(**asdict(identity))


def identity_from_proto(message) -> dict:
    """A JSON-ready dict of a ModelIdentity message: the dataclass's fields, runtime sorted."""
    fields = {name: getattr(message, name) for name in ModelIdentity.__dataclass_fields__ if name != "runtime"}
    return {**fields, "runtime": dict(sorted(message.runtime.items()))}
