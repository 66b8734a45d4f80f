"""Generate a tiny random-weight FLUX.1 Kontext pipeline for tests.

    python tools/make_tiny_flux_kontext.py models/tiny-flux-kontext

The real classes of FLUX.1-Kontext-dev (FluxKontextPipeline: CLIP and T5 text encoders, the Flux
MMDiT transformer with guidance embedding, i.e. guidance-distilled, and a 16-channel 8x AutoencoderKL)
with every width and depth cut down and tokenizers trained locally, saved with `save_pretrained` so
`DiffusionPipeline.from_pretrained(OUTDIR)` loads it like a hub model. Deterministic (fixed seed).

The pipeline resizes the input image to a preferred Kontext resolution (~1 MP) as the real one does;
the tiny widths keep a 2-step edit at seconds on CPU.
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

SEED = 0
TEXT_HIDDEN = 32  # T5 d_model = the transformer's joint_attention_dim; CLIP's pooled output = pooled_projection_dim

# FLUX.1's scheduler settings (as in editor_service/configs/flux-kontext)
FLUX_SCHEDULER_CONFIG = {
    "base_image_seq_len": 256,
    "base_shift": 0.5,
    "max_image_seq_len": 4096,
    "max_shift": 1.15,
    "num_train_timesteps": 1000,
    "shift": 3.0,
    "use_dynamic_shifting": True,
}


def build_pipeline():
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxKontextPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from tools.tiny_tokenizer import train_tiny_clip_tokenizer, train_tiny_t5_tokenizer

    torch.manual_seed(SEED)
    tokenizer = train_tiny_clip_tokenizer()
    tokenizer_2 = train_tiny_t5_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT_HIDDEN, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=77, projection_dim=TEXT_HIDDEN,
        bos_token_id=0, eos_token_id=1, pad_token_id=1,
    )).eval()
    text_encoder_2 = T5EncoderModel(T5Config(
        vocab_size=len(tokenizer_2), d_model=TEXT_HIDDEN, d_kv=8, d_ff=37, num_layers=2, num_heads=2,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )).eval()
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,  # 16 latent channels packed 2x2
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=TEXT_HIDDEN,
        pooled_projection_dim=TEXT_HIDDEN,
        guidance_embeds=True,  # FLUX.1 [dev] / Kontext: guidance-distilled
        axes_dims_rope=(4, 6, 6),
    ).eval()
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,  # 3 downsamplings: 8x like the real VAE
        up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=(4, 4, 4, 4),
        layers_per_block=1,
        latent_channels=16,
        norm_num_groups=2,
        scaling_factor=0.3611,
        shift_factor=0.1159,
        use_quant_conv=False,
        use_post_quant_conv=False,
    ).eval()
    return FluxKontextPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER_CONFIG),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )


def smoke_test(outdir: Path) -> float:
    import numpy as np
    import torch
    from diffusers import DiffusionPipeline
    from PIL import Image

    pipe = DiffusionPipeline.from_pretrained(str(outdir), dtype=torch.float32)
    source = Image.fromarray(np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    start = time.perf_counter()
    out = pipe(image=source, prompt="Make the car red.", guidance_scale=2.5, num_inference_steps=2, width=64,
               height=64, max_area=64 * 64, max_sequence_length=32, generator=torch.Generator("cpu").manual_seed(0)).images[0]
    if out.size != (64, 64):
        raise SystemExit(f"smoke test: expected a 64x64 edit, got {out.size}")
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--no-smoke-test", action="store_true")
    args = parser.parse_args(argv)
    pipe = build_pipeline()
    if args.outdir.exists():
        shutil.rmtree(args.outdir)
    pipe.save_pretrained(str(args.outdir))
    print(f"wrote {args.outdir}")
    if not args.no_smoke_test:
        print(f"smoke test: 2-step edit in {smoke_test(args.outdir):.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
