"""Write the shipped configs of the real edit-model architectures (for --load-format dummy).

    .venv/editor/bin/python tools/generate_editor_configs.py

The values are those of the published checkpoints (Qwen/Qwen-Image-Edit, Qwen/Qwen-Image-Edit-2509
and -2511: same components, 2509 and 2511 run QwenImageEditPlusPipeline; FLUX.1-Kontext-dev), written
through the libraries' own config classes so the files match what this diffusers/transformers
version reads. No vocabulary ships (it cannot be downloaded here): the dummy build substitutes the
project's tiny tokenizer (FLUX: tiny CLIP and T5 tokenizers are written here). Re-run after a
library upgrade; never edit the JSON by hand.

Sources of the flags that differ between the Qwen variants and of the FLUX values:
- 2511: its transformer/config.json is 2509's plus `"zero_cond_t": true` (the input images' tokens
  are modulated as at t=0): huggingface/diffusers issue #12889, where loading Qwen-Image-Edit-2511
  with a diffusers older than the flag's PR (#12839) warns "The config attributes {'zero_cond_t': True}
  were passed to QwenImageTransformer2DModel, but are not expected" (that attribute alone). The
  model card's call: QwenImageEditPlusPipeline, 40 steps, true_cfg_scale 4, negative prompt " ".
- FLUX.1-Kontext-dev: the FLUX.1-dev architecture (black-forest-labs/flux `flux-dev` params: 19 double
  and 38 single blocks, hidden 3072 = 24 heads x 128, context 4096 (T5-XXL), vector 768 (CLIP-L),
  guidance embedding; autoencoder ch 128, ch_mult 1,2,4,4, 16 latent channels, scale 0.3611, shift
  0.1159) with diffusers' FLUX.1 scheduler settings (shift 3, dynamic shifting 0.5..1.15).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repository's packages

from editfleet_common.stand_in_tokenizer import STAND_IN_TOKENIZER_DIR  # noqa: E402

HERE = Path(__file__).resolve().parents[1] / "editor_service" / "configs"  # where the service reads them

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

# name -> (pipeline class, transformer flags over TRANSFORMER)
VARIANTS = {
    "qwen-image-edit": ("QwenImageEditPipeline", {}),
    "qwen-image-edit-2509": ("QwenImageEditPlusPipeline", {}),
    "qwen-image-edit-2511": ("QwenImageEditPlusPipeline", {"zero_cond_t": True}),
}

FLUX_TRANSFORMER = {
    "_class_name": "FluxTransformer2DModel",
    "patch_size": 1,
    "in_channels": 64,
    "num_layers": 19,
    "num_single_layers": 38,
    "attention_head_dim": 128,
    "num_attention_heads": 24,
    "joint_attention_dim": 4096,
    "pooled_projection_dim": 768,
    "guidance_embeds": True,
    "axes_dims_rope": [16, 56, 56],
}
FLUX_VAE = {
    "_class_name": "AutoencoderKL",
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 16,
    "norm_num_groups": 32,
    "sample_size": 1024,
    "scaling_factor": 0.3611,
    "shift_factor": 0.1159,
    "use_quant_conv": False,
    "use_post_quant_conv": False,
    "mid_block_add_attention": True,
}
FLUX_SCHEDULER = {
    "_class_name": "FlowMatchEulerDiscreteScheduler",
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 4096,
    "max_shift": 1.15,
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
}
# CLIP ViT-L/14 text tower and T5 v1.1 XXL encoder
FLUX_CLIP = {"vocab_size": 49408, "hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
             "num_attention_heads": 12, "max_position_embeddings": 77, "hidden_act": "quick_gelu",
             "projection_dim": 768, "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
FLUX_T5 = {"vocab_size": 32128, "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24, "num_heads": 64,
           "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
           "feed_forward_proj": "gated-gelu", "layer_norm_epsilon": 1e-6, "is_encoder_decoder": False,
           "use_cache": False, "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0}


def write_flux_kontext(out: Path) -> None:
    import diffusers
    from transformers import CLIPTextConfig, T5Config

    from tools.tiny_tokenizer import train_tiny_clip_tokenizer, train_tiny_t5_tokenizer

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    version = {"_diffusers_version": diffusers.__version__}
    index = {
        "_class_name": "FluxKontextPipeline",
        **version,
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "T5EncoderModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "T5Tokenizer"],
        "transformer": ["diffusers", "FluxTransformer2DModel"],
        "vae": ["diffusers", "AutoencoderKL"],
        "image_encoder": [None, None],
        "feature_extractor": [None, None],
    }
    _write_json(out / "model_index.json", index)
    _write_json(out / "transformer" / "config.json", {**FLUX_TRANSFORMER, **version})
    _write_json(out / "vae" / "config.json", {**FLUX_VAE, **version})
    _write_json(out / "scheduler" / "scheduler_config.json", {**FLUX_SCHEDULER, **version})
    for name, config in (("text_encoder", CLIPTextConfig(**FLUX_CLIP)), ("text_encoder_2", T5Config(**FLUX_T5))):
        config.architectures = ["CLIPTextModel" if name == "text_encoder" else "T5EncoderModel"]
        config.dtype = "bfloat16"
        config.save_pretrained(out / name)
    # stand-in vocabularies (the real ones cannot be downloaded here): tiny, ids inside the real vocab sizes
    train_tiny_clip_tokenizer().save_pretrained(out / "tokenizer")
    train_tiny_t5_tokenizer().save_pretrained(out / "tokenizer_2")


def write_variant(out: Path, pipeline_class: str, transformer_flags: dict | None = None) -> None:
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
    _write_json(out / "transformer" / "config.json", {**TRANSFORMER, **(transformer_flags or {}), **version})
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
    for name, (pipeline_class, flags) in VARIANTS.items():
        write_variant(HERE / name, pipeline_class, flags)
        print(f"wrote {HERE / name}")
    write_flux_kontext(HERE / "flux-kontext")
    print(f"wrote {HERE / 'flux-kontext'}")


if __name__ == "__main__":
    main()
