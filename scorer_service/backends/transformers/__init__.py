"""The transformers judge backend: a local chat VLM, batched (backend.py), its loading (loading.py),
static decoding (decoding.py) and the pool of static decoders (decoder_pool.py)."""

from .backend import DECODE_MODES, TransformersBackend
from .loading import (DUMMY_CONFIG_DIR, EXPERTS_IMPLEMENTATION, LOAD_FORMATS, SHIPPED_CONFIGS, NoShippedConfigs,
                      NotEnoughGpus, plan_split, set_threads)

__all__ = ["DECODE_MODES", "DUMMY_CONFIG_DIR", "EXPERTS_IMPLEMENTATION", "LOAD_FORMATS", "NoShippedConfigs",
           "NotEnoughGpus", "SHIPPED_CONFIGS", "plan_split", "TransformersBackend", "set_threads"]
