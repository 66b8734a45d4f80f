"""What an editor changes in a loaded pipeline once, at start: LoRA adapters and a scheduler override.

LoRAs go through diffusers' own loading (`load_lora_weights`, PEFT backend), each under its own
adapter name with its scale, are then fused into the base weights and the adapter layers removed:
an edit with fused LoRAs costs what the base model costs. Each adapter's sha256 and scale, and the
scheduler override, go into the model identity's `runtime`, so editors with other adapters are not
taken for the same model (the orchestrator refuses a mixed fleet naming `lora`).

A scheduler override (`{"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0, ...}`, the
class optional) is merged over the pipeline's own scheduler config, as Qwen-Image-Lightning's
few-step LoRAs need (their own shift, no terminal shift).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


from editfleet_common.errors import EditfleetError


class AdapterError(EditfleetError, ValueError):
    """A LoRA or scheduler override that cannot be applied; the message names the file or key."""


@dataclass(frozen=True)
class LoraSpec:
    path: str
    scale: float = 1.0

    @classmethod
    def parse(cls, text: str) -> "LoraSpec":
        """`PATH` or `PATH:SCALE` (the scale is what follows the last colon, when it is a number)."""
        path, sep, tail = text.rpartition(":")
        if sep and path:
            try:
                scale = float(tail)
            except ValueError:
                scale = None  # a colon inside the path
            if scale is not None:
                return cls(path, _finite(scale, text))
        if not text:
            raise AdapterError("LoRA: empty path")
        return cls(text, 1.0)


def _finite(scale: float, text: str) -> float:
    if not math.isfinite(scale):
        raise AdapterError(f"LoRA {text!r}: scale {scale} is not a finite number")
    return scale


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_lora_file(path: str) -> str | None:
    """None when `path` is a readable file, else what is wrong (checked before any model loads)."""
    if not os.path.exists(path):
        return f"no such file: {path}"
    if not os.path.isfile(path):
        return f"not a file: {path}"
    if not os.access(path, os.R_OK):
        return f"not readable: {path}"
    return None


def apply_loras(pipe, loras: list[LoraSpec]) -> dict[str, str]:
    """Load, scale and fuse every LoRA into `pipe`; the runtime entries that say which and how."""
    if not loras:
        return {}
    if not hasattr(pipe, "load_lora_weights"):
        raise AdapterError(f"{type(pipe).__name__} does not take LoRA adapters (no diffusers LoRA loader)")
    names, described = [], []
    for index, lora in enumerate(loras):
        problem = check_lora_file(lora.path)
        if problem:
            raise AdapterError(f"LoRA {lora.path}: {problem}")
        name = f"lora{index}"
        try:
            state = _read_safetensors(lora.path)
            pipe.load_lora_weights(state, adapter_name=name)
        except AdapterError:
            raise
        except Exception as exc:  # noqa: BLE001 - diffusers/peft raise many kinds; the message says which
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            first = " ".join(lines[:2]) if lines else type(exc).__name__  # torch: a title, then the first mismatch
            raise AdapterError(
                f"LoRA {lora.path}: does not fit {type(pipe).__name__} ({type(exc).__name__}: {first[:400]})"
            ) from None
        # diffusers only warns when keys match no module of the model: a LoRA for another architecture
        # would otherwise be "loaded" into the few layers whose names happen to match, or into none
        expected, injected = _lora_modules(state), _injected_layers(pipe, name)
        if injected < expected:
            raise AdapterError(
                f"LoRA {lora.path}: only {injected} of its {expected} layers match a layer of "
                f"{type(pipe).__name__} (a LoRA for another architecture?)"
            )
        names.append(name)
        described.append({"sha256": file_sha256(lora.path), "scale": lora.scale, "file": Path(lora.path).name})
    pipe.set_adapters(names, adapter_weights=[lora.scale for lora in loras])
    pipe.fuse_lora(adapter_names=names, lora_scale=1.0)
    pipe.unload_lora_weights()  # the adapter layers go; the fused weights stay
    log.info("fused %d LoRA(s): %s", len(loras), ", ".join(f"{d['file']}@{d['scale']}" for d in described))
    return {"lora": json.dumps(described, sort_keys=True)}


def _read_safetensors(path: str) -> dict:
    from safetensors.torch import load_file

    try:
        state = load_file(path)
    except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError, ...
        raise AdapterError(f"LoRA {path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    if not state:
        raise AdapterError(f"LoRA {path}: holds no tensors")
    return state


def _lora_modules(state: dict) -> int:
    """Layers a LoRA file adapts: one down-projection per layer, whatever the key style
    (diffusers/PEFT `lora_A`, kohya `lora_down`)."""
    return sum(1 for key in state if any(part in key for part in (".lora_A.", ".lora_down.", ".lora.down.")))


def _injected_layers(pipe, adapter_name: str) -> int:
    """Layers of the pipeline's models that hold `adapter_name`."""
    import torch
    from peft.tuners.tuners_utils import BaseTunerLayer

    return sum(
        1
        for component in pipe.components.values() if isinstance(component, torch.nn.Module)
        for module in component.modules()
        if isinstance(module, BaseTunerLayer) and adapter_name in getattr(module, "lora_A", {})
    )


def apply_scheduler(pipe, override: dict | None) -> dict[str, str]:
    """Replace the pipeline's scheduler by its config merged with `override`; the runtime entry."""
    if not override:
        return {}
    import diffusers

    if not isinstance(override, dict):
        raise AdapterError(f"scheduler: expected a JSON object, got {type(override).__name__}")
    current = pipe.scheduler
    class_name = override.get("_class_name", type(current).__name__)
    cls = getattr(diffusers, str(class_name), None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
        raise AdapterError(f"scheduler: {class_name!r} is not a diffusers scheduler class")
    settings = {k: v for k, v in override.items() if k != "_class_name"}
    accepted = _init_parameters(cls)
    unknown = sorted(k for k in settings if k not in accepted)
    if unknown:
        raise AdapterError(f"scheduler: unknown setting(s) {', '.join(unknown)} for {class_name}; "
                           f"it takes {', '.join(sorted(accepted))}")
    config = {k: v for k, v in dict(current.config).items() if k in accepted or k.startswith("_")}
    try:
        pipe.scheduler = cls.from_config({**config, **settings})
    except Exception as exc:  # noqa: BLE001
        raise AdapterError(f"scheduler: {class_name} refused the settings ({type(exc).__name__}: {exc})") from None
    log.info("scheduler %s with %s", class_name, json.dumps(settings, sort_keys=True))
    return {"scheduler": json.dumps({"_class_name": class_name, **settings}, sort_keys=True)}


def _init_parameters(cls) -> set[str]:
    import inspect

    return {name for name in inspect.signature(cls.__init__).parameters if name not in ("self", "kwargs")}


def read_scheduler_override(text: str | None) -> dict | None:
    """--scheduler: a JSON object, or the path of a .json file holding one."""
    if not text:
        return None
    source = "--scheduler"
    if not text.lstrip().startswith(("{", "[")):
        try:
            text, source = Path(text).read_text(encoding="utf-8"), f"--scheduler {text}"
        except OSError as exc:
            raise AdapterError(f"--scheduler {text}: cannot read ({exc.strerror or exc})") from None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise AdapterError(f"{source}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise AdapterError(f"{source}: expected a JSON object, got {type(value).__name__}")
    return value
