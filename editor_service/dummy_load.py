"""`--load-format dummy`: an edit pipeline's real architecture with random weights, from configs.

The configs come from a local model directory or ship in configs/ (`SHIPPED_CONFIGS`, made by
tools/generate_editor_configs.py); no weights are read or downloaded. For speed and memory work only: the same
seed gives the same weights on every device, so a fleet of dummy editors is one model.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

from editfleet_common.errors import NotFound
from editfleet_common.model_files import WEIGHT_SUFFIXES
from editfleet_common.stand_in_tokenizer import STAND_IN_TOKENIZER_DIR, load_stand_in_tokenizer, special_token_ids

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
# Hub ids (and short names) whose real architecture ships in configs/ for --load-format dummy.
SHIPPED_CONFIGS = {
    "Qwen/Qwen-Image-Edit": "qwen-image-edit",
    "qwen-image-edit": "qwen-image-edit",
    "Qwen/Qwen-Image-Edit-2509": "qwen-image-edit-2509",
    "qwen-image-edit-2509": "qwen-image-edit-2509",
    "Qwen/Qwen-Image-Edit-2511": "qwen-image-edit-2511",
    "qwen-image-edit-2511": "qwen-image-edit-2511",
    "black-forest-labs/FLUX.1-Kontext-dev": "flux-kontext",
    "flux-kontext": "flux-kontext",
}


def resolve_config_dir(model: str) -> Path:
    """Where the configs for a dummy load come from: a local model directory, or shipped configs."""
    path = Path(model)
    if (path / "model_index.json").is_file():
        return path
    if model in SHIPPED_CONFIGS:
        return CONFIGS_DIR / SHIPPED_CONFIGS[model]
    shipped = ", ".join(sorted(SHIPPED_CONFIGS))
    raise NotFound(
        f"--load-format dummy: {model!r} is neither a directory with model_index.json nor a model "
        f"with shipped configs ({shipped})"
    )


class _default_dtype:
    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype

    def __enter__(self):
        self.previous = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)

    def __exit__(self, *exc):
        torch.set_default_dtype(self.previous)


def build_dummy_pipeline(config_dir: Path, device: torch.device, dtype: torch.dtype, seed: int = 0):
    """Build the pipeline of `config_dir/model_index.json` with random weights drawn from `seed`.

    The same seed gives the same weights in every process on every GPU, so a fleet of dummy editors
    is one model and keeps "same seed + same sample => same edit, whatever the number of GPUs".

    Models are constructed directly on `device` in `dtype` (a 20B-parameter transformer never
    exists in fp32 on the CPU). Schedulers, processors and tokenizers load through their usual
    `from_pretrained`; where a config directory ships no tokenizer files (the real vocabulary
    cannot be downloaded here), editfleet_common/stand-in-tokenizer (the project's tiny Qwen tokenizer)
    stands in and the text encoder's special-token ids are set to match it.
    """
    import diffusers

    config_dir = Path(config_dir)
    index = json.loads((config_dir / "model_index.json").read_text())
    pipeline_class = getattr(diffusers, index["_class_name"])
    with tempfile.TemporaryDirectory(prefix="editfleet-dummy-") as tmp:
        staged = Path(tmp)
        shutil.copytree(config_dir, staged, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*[f"*{s}" for s in WEIGHT_SUFFIXES]))
        substituted_tokens = _add_missing_tokenizers(staged, index)

        torch.manual_seed(seed)  # every device's generator: the weights are drawn where they live
        components = {}
        for name, component_class in _component_classes(index):
            sub = staged / name
            model = _build_model(component_class, sub, device, dtype, substituted_tokens)
            components[name] = model if model is not None else component_class.from_pretrained(sub)
        return pipeline_class(**components)


def dummy_weight_bytes(config_dir: Path, dtype: torch.dtype) -> dict[str, int]:
    """What build_dummy_pipeline's models would take on their device in `dtype`, per component: each
    built on the meta device from its config (no memory, no weights drawn)."""
    from editfleet_common.memory_fit import module_bytes

    index = json.loads((Path(config_dir) / "model_index.json").read_text())
    parts = {}
    for name, component_class in _component_classes(index):
        model = _build_model(component_class, Path(config_dir) / name, torch.device("meta"), dtype, {})
        if model is not None:
            parts[name] = module_bytes(model, str(dtype).removeprefix("torch."))
    return parts


def _component_classes(index: dict):
    """(name, class) of each component a model_index.json names."""
    import diffusers
    import transformers

    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or spec[0] is None:
            continue
        library, class_name = spec
        yield name, getattr(diffusers if library == "diffusers" else transformers, class_name)


def _build_model(component_class, sub: Path, device: torch.device, dtype: torch.dtype, substituted_tokens: dict):
    """A diffusers or transformers model component built from its config on `device` (None: not a model,
    e.g. a scheduler or a tokenizer)."""
    import diffusers
    import transformers

    if isinstance(component_class, type) and issubclass(component_class, diffusers.ModelMixin):
        config = component_class.load_config(sub)
        with torch.device(device), _default_dtype(dtype):
            return component_class.from_config(config).eval()  # already in place
    if isinstance(component_class, type) and issubclass(component_class, transformers.PreTrainedModel):
        config = transformers.AutoConfig.from_pretrained(sub, trust_remote_code=False)
        for key, value in substituted_tokens.items():
            if hasattr(config, key):
                setattr(config, key, value)
        with torch.device(device):
            return component_class._from_config(config, dtype=dtype).eval()
    return None


def _add_missing_tokenizers(staged: Path, index: dict) -> dict[str, int]:
    """Copy the stand-in tokenizer into tokenizer/processor folders that have no vocabulary.

    Returns the special-token ids the text encoder must use with it ({} when nothing was added).
    """
    needs = [
        name
        for name, spec in index.items()
        if isinstance(spec, list)
        and spec[0] == "transformers"
        and ("Tokenizer" in spec[1] or "Processor" in spec[1])
        and not any((staged / name / f).exists() for f in ("tokenizer.json", "vocab.json", "tokenizer.model"))
    ]
    if not needs:
        return {}
    for name in needs:
        for f in STAND_IN_TOKENIZER_DIR.iterdir():
            shutil.copy(f, staged / name / f.name)
    return special_token_ids(load_stand_in_tokenizer(),
                             ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"))
