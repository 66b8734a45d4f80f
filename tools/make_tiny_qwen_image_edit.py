"""Generate a tiny random-weight Qwen-Image-Edit pipeline for tests and the CPU demo.

    python tools/make_tiny_qwen_image_edit.py models/tiny-qwen-image-edit
    python tools/make_tiny_qwen_image_edit.py models/tiny-qwen-image-edit-2509 --variant 2509
    python tools/make_tiny_qwen_image_edit.py models/tiny-qwen-image-edit-2511 --variant 2511

Variants: `edit` (QwenImageEditPipeline, one input image), `2509` (QwenImageEditPlusPipeline: a list
of input images) and `2511` (the Plus pipeline with the 2511 transformer flag `zero_cond_t`: the
input images' tokens are modulated as at t=0).

The real architecture (QwenImageEditPipeline: Qwen2.5-VL text encoder with its vision tower,
QwenImage MMDiT transformer, 8x-downsampling QwenImage VAE, the real Qwen-Image scheduler
config) with every width and depth cut down, a tokenizer trained locally, saved with
`save_pretrained` so `DiffusionPipeline.from_pretrained(OUTDIR)` loads it like a hub model.

Deterministic: a fixed seed and a fixed tokenizer corpus give identical files on every run.
The pipeline still resizes the condition image to ~1024x1024 (the real code path); the 8x VAE
and tiny widths keep a 4-step CFG edit at a few seconds on CPU.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tools.generate_editor_configs import IMAGE_PROCESSOR, SCHEDULER  # noqa: E402

SEED = 0

# The real Qwen-Image(-Edit) scheduler and image-processor settings, as shipped for dummy loads.
QWEN_IMAGE_SCHEDULER_CONFIG = {k: v for k, v in SCHEDULER.items() if not k.startswith("_")}
QWEN_IMAGE_PROCESSOR_CONFIG = IMAGE_PROCESSOR

TEXT_HIDDEN = 32  # the transformer's joint_attention_dim must equal the text encoder's hidden size


def tiny_text_encoder_config(token_ids: dict[str, int], vocab_size: int):
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": TEXT_HIDDEN,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6,
            # head_dim 16: mrope sections are in rotary half-dims and must sum to 8
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
            "bos_token_id": token_ids["bos_token_id"],
            "eos_token_id": token_ids["eos_token_id"],
            "pad_token_id": token_ids["pad_token_id"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_heads": 1,
            "in_channels": 3,
            "out_hidden_size": TEXT_HIDDEN,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [1],
            "tokens_per_second": 2,
        },
        image_token_id=token_ids["image_token_id"],
        video_token_id=token_ids["video_token_id"],
        vision_start_token_id=token_ids["vision_start_token_id"],
        vision_end_token_id=token_ids["vision_end_token_id"],
        tie_word_embeddings=False,
    )


VARIANTS = ("edit", "2509", "2511")


def build_pipeline(variant: str = "edit"):
    import torch
    from diffusers import (
        AutoencoderKLQwenImage,
        FlowMatchEulerDiscreteScheduler,
        QwenImageEditPipeline,
        QwenImageEditPlusPipeline,
        QwenImageTransformer2DModel,
    )
    from transformers import (
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    from tools.tiny_tokenizer import special_token_ids, train_tiny_qwen_tokenizer

    torch.manual_seed(SEED)
    tokenizer = train_tiny_qwen_tokenizer()
    token_ids = special_token_ids(tokenizer)

    text_encoder = Qwen2_5_VLForConditionalGeneration(tiny_text_encoder_config(token_ids, len(tokenizer))).eval()
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=64,  # 16 latent channels x 2x2 patch
        out_channels=16,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=TEXT_HIDDEN,
        guidance_embeds=False,
        axes_dims_rope=(4, 6, 6),  # sums to attention_head_dim, like (16, 56, 56) sums to 128
        **({"zero_cond_t": True} if variant == "2511" else {}),
    ).eval()
    # dim_mult of length 4 => 3 downsamplings => 8x like the real VAE (a 4x VAE makes the
    # ~1024^2 condition image 4x more expensive everywhere downstream).
    vae = AutoencoderKLQwenImage(
        base_dim=2,  # the encoder runs at ~1024^2 whatever the request: channels there dominate the cost
        z_dim=16,
        dim_mult=[1, 2, 4, 4],
        num_res_blocks=1,
        attn_scales=[],
        temperal_downsample=[False, True, True],
    ).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(**QWEN_IMAGE_SCHEDULER_CONFIG)
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**QWEN_IMAGE_PROCESSOR_CONFIG),
        tokenizer=tokenizer,
        # never used by the edit pipeline, but transformers 5 requires one to build the processor
        video_processor=Qwen2VLVideoProcessor(),
    )
    pipeline_class = QwenImageEditPipeline if variant == "edit" else QwenImageEditPlusPipeline
    return pipeline_class(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        processor=processor,
        transformer=transformer,
    )


def smoke_test(outdir: Path) -> float:
    """Load what was written through the public path and run a 4-step CFG edit end to end."""
    import numpy as np
    import torch
    from diffusers import DiffusionPipeline
    from PIL import Image

    pipe = DiffusionPipeline.from_pretrained(str(outdir), dtype=torch.float32)
    source = Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8))
    start = time.perf_counter()
    second = Image.fromarray(np.random.default_rng(1).integers(0, 255, (128, 192, 3), dtype=np.uint8))
    multi = type(pipe).__name__ == "QwenImageEditPlusPipeline"
    out = pipe(
        image=[source, second] if multi else source,
        prompt="Make the car red.",
        negative_prompt=" ",
        true_cfg_scale=4.0,
        num_inference_steps=4,
        width=256,
        height=256,
        generator=torch.Generator("cpu").manual_seed(0),
    ).images[0]
    elapsed = time.perf_counter() - start
    if out.size != (256, 256):
        raise SystemExit(f"smoke test: expected a 256x256 edit, got {out.size}")
    if not np.isfinite(np.asarray(out, dtype=np.float32)).all():
        raise SystemExit("smoke test: non-finite output")
    return elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--variant", choices=VARIANTS, default="edit",
                        help="edit: QwenImageEditPipeline; 2509/2511: QwenImageEditPlusPipeline (2511: zero_cond_t)")
    parser.add_argument("--no-smoke-test", action="store_true", help="skip the end-to-end edit after saving")
    args = parser.parse_args(argv)

    pipe = build_pipeline(args.variant)
    if args.outdir.exists():
        shutil.rmtree(args.outdir)
    pipe.save_pretrained(str(args.outdir))
    n_params = sum(
        p.numel() for m in (pipe.transformer, pipe.vae, pipe.text_encoder) for p in m.parameters()
    )
    print(f"wrote {args.outdir} ({n_params / 1e6:.2f}M parameters)")
    if not args.no_smoke_test:
        print(f"smoke test: 4-step CFG edit in {smoke_test(args.outdir):.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
