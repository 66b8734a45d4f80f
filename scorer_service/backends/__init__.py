"""Judge backends: what answers the judge's prompts (see base.JudgeBackend).

    backend = load_backend("transformers", "Qwen/Qwen3-VL-8B-Instruct", device="cuda:0")

A new backend is a module here with a class that has `load(model, **options)`, and one entry in
BACKENDS ("module:Class", imported only when asked for: the torch-free orchestrator imports none).
"""

from __future__ import annotations

import importlib

BACKENDS = {
    "transformers": "scorer_service.backends.transformers:TransformersBackend",  # local, batched
    "openai": "scorer_service.backends.openai_api:OpenAIBackend",  # any OpenAI-compatible chat-completions endpoint
    "metrics": "scorer_service.backends.metrics:MetricsBackend",  # reference metrics (CLIP, DINO, L1/L2), no language model
}


def backend_class(name: str):
    try:
        module, cls = BACKENDS[name].split(":")
    except KeyError:
        raise ValueError(f"unknown judge backend {name!r} ({', '.join(BACKENDS)})") from None
    return getattr(importlib.import_module(module), cls)


def load_backend(name: str, model: str, **options):
    return backend_class(name).load(model, **options)
