"""Write the shipped configs of the real Qwen-Image-Edit architectures (for --load-format dummy).

    .venv/editor/bin/python -m editor_service.configs.generate

The values are those of the published checkpoints (Qwen/Qwen-Image-Edit and
Qwen/Qwen-Image-Edit-2509: same components, the 2509 one runs QwenImageEditPlusPipeline), written
through the libraries' own config classes so the files match what this diffusers/transformers
version reads. No vocabulary ships (it cannot be downloaded here): the dummy build substitutes the
project's tiny tokenizer. Re-run after a library upgrade; never edit the JSON by hand.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from editfleet_common.stand_in_tokenizer import STAND_IN_TOKENIZER_DIR

HERE = Path(__file__).resolve().parent

TRANSFORMER = {
    "_class_name": "QwenImageTransformer2DModel",
    "patch_size": 2,
    "in_channels": 64,
    "out_channels": 16,
    "num_layers": 60,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 3584,
    "guidance_embeds": False,
    "axes_dims_rope": [16, 56, 56],
}

VAE = {
    "_class_name": "AutoencoderKLQwenImage",
    "base_dim": 96,
    "z_dim": 16,
    "dim_mult": [1, 2, 4, 4],
    "num_res_blocks": 2,
    "attn_scales": [],
    "temperal_downsample": [False, True, True],
    "dropout": 0.0,
    "latents_mean": [
        -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
        0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
    ],
    "latents_std": [
        2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
        3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.916,
    ],
}

SCHEDULER = {
    "_class_name": "FlowMatchEulerDiscreteScheduler",
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "invert_sigmas": False,
    "max_image_seq_len": 8192,
    "max_shift": 0.9,
    "num_train_timesteps": 1000,
    "shift": 1.0,
    "shift_terminal": 0.02,
    "stochastic_sampling": False,
    "time_shift_type": "exponential",
    "use_beta_sigmas": False,
    "use_dynamic_shifting": True,
    "use_exponential_sigmas": False,
    "use_karras_sigmas": False,
}

# Qwen2.5-VL-7B-Instruct
TEXT_ENCODER = {
    "text_config": {
        "vocab_size": 152064,
        "hidden_size": 3584,
        "intermediate_size": 18944,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "hidden_act": "silu",
        "max_position_embeddings": 128000,
        "rms_norm_eps": 1e-6,
        "use_sliding_window": False,
        "sliding_window": 32768,
        "max_window_layers": 28,
        "attention_dropout": 0.0,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
        "bos_token_id": 151643,
        "eos_token_id": 151645,
    },
    "vision_config": {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "in_channels": 3,
        "out_hidden_size": 3584,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2,
        "hidden_act": "silu",
    },
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "tie_word_embeddings": False,
}

IMAGE_PROCESSOR = {
    "min_pixels": 3136,
    "max_pixels": 12845056,
    "patch_size": 14,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
}

VARIANTS = {"qwen-image-edit": "QwenImageEditPipeline", "qwen-image-edit-2509": "QwenImageEditPlusPipeline"}


def write_variant(out: Path, pipeline_class: str) -> None:
    import diffusers
    from transformers import Qwen2_5_VLConfig, Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    from tools.tiny_tokenizer import train_tiny_qwen_tokenizer

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    version = {"_diffusers_version": diffusers.__version__}
    index = {
        "_class_name": pipeline_class,
        **version,
        "processor": ["transformers", "Qwen2VLProcessor"],
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "Qwen2_5_VLForConditionalGeneration"],
        "tokenizer": ["transformers", "Qwen2Tokenizer"],
        "transformer": ["diffusers", "QwenImageTransformer2DModel"],
        "vae": ["diffusers", "AutoencoderKLQwenImage"],
    }
    _write_json(out / "model_index.json", index)
    _write_json(out / "transformer" / "config.json", {**TRANSFORMER, **version})
    _write_json(out / "vae" / "config.json", {**VAE, **version})
    _write_json(out / "scheduler" / "scheduler_config.json", {**SCHEDULER, **version})
    config = Qwen2_5_VLConfig(**TEXT_ENCODER)
    config.architectures = ["Qwen2_5_VLForConditionalGeneration"]
    config.dtype = "bfloat16"
    config.save_pretrained(out / "text_encoder")
    # The processor's image settings are real; its tokenizer files are dropped (no vocabulary ships).
    with tempfile.TemporaryDirectory() as tmp:
        processor = Qwen2VLProcessor(
            image_processor=Qwen2VLImageProcessor(**IMAGE_PROCESSOR),
            tokenizer=train_tiny_qwen_tokenizer(),
            video_processor=Qwen2VLVideoProcessor(),
        )
        processor.save_pretrained(tmp)
        (out / "processor").mkdir()
        shutil.copy(Path(tmp) / "processor_config.json", out / "processor" / "processor_config.json")
    _write_json(
        out / "tokenizer" / "tokenizer_config.json",
        {"tokenizer_class": "Qwen2Tokenizer", "model_max_length": 131072, "note": "vocabulary not shipped"},
    )


def write_stand_in_tokenizer(out: Path) -> None:
    """The tokenizer dummy loads use where no vocabulary ships: the project's tiny Qwen tokenizer
    (same special tokens), saved here so the service never needs tools/ at run time."""
    from tools.tiny_tokenizer import train_tiny_qwen_tokenizer

    if out.exists():
        shutil.rmtree(out)
    train_tiny_qwen_tokenizer().save_pretrained(out)


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def main() -> None:
    write_stand_in_tokenizer(STAND_IN_TOKENIZER_DIR)
    print(f"wrote {STAND_IN_TOKENIZER_DIR}")
    for name, pipeline_class in VARIANTS.items():
        write_variant(HERE / name, pipeline_class)
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
