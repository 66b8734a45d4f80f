"""Write a tiny random-weight Qwen3-VL judge: the real architecture and processor, toy sizes.

    python tools/make_tiny_qwen3_vl.py models/tiny-qwen3-vl
    python tools/make_tiny_qwen3_vl.py models/tiny-qwen3-vl-moe --moe   # Qwen3-VL-30B-A3B's architecture


The result loads like the real judge (`AutoModelForImageTextToText.from_pretrained` +
`AutoProcessor.from_pretrained`), so tests exercise the same code path as Qwen/Qwen3-VL-8B-Instruct:
the Qwen3-VL chat template (copied from the shipped 8B configs), a Qwen2-VL image processor with a
small pixel budget (a 64x64 image becomes 4 visual tokens), the Qwen3-VL video processor, and the
tiny byte-level BPE tokenizer from `tools.tiny_tokenizer`. Deterministic: a fixed seed and a fixed
tokenizer corpus, so every machine writes the same weights.

`--moe`: the mixture-of-experts architecture of Qwen/Qwen3-VL-30B-A3B-Instruct
(`Qwen3VLMoeForConditionalGeneration`): the same toy attention and vision tower, and each text layer's
MLP replaced by 8 routed experts (top-2, FFN width 16; widths multiples of 4 so that torch's
grouped GEMM runs on CPU in float32, whose strides must be multiples of 16 bytes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

CHAT_TEMPLATE_PATH = REPO_ROOT / "scorer_service" / "configs" / "qwen3-vl-8b" / "chat_template.jinja"

SEED = 0
PATCH_SIZE = 16  # as in Qwen3-VL: 16-pixel patches, 2x2 merged -> one token per 32x32 pixels
MERGE_SIZE = 2
TEMPORAL_PATCH_SIZE = 2
MIN_PIXELS = 32 * 32  # one visual token
MAX_PIXELS = 64 * 64  # at most four visual tokens per image, whatever the input size


# the MoE variant's text layers: routed experts in place of the dense MLP (Qwen3-VL-30B-A3B: 128, top-8, 768)
MOE_TEXT = {"num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 16, "decoder_sparse_step": 1,
            "mlp_only_layers": [], "norm_topk_prob": True,
            "initializer_range": 0.2}  # larger random weights: replies that differ from prompt to prompt


def build_config(tok_ids: dict[str, int], vocab_size: int, moe: bool = False):
    from transformers import Qwen3VLConfig, Qwen3VLMoeConfig

    head_dim = 8
    return (Qwen3VLMoeConfig if moe else Qwen3VLConfig)(
        text_config={
            **(MOE_TEXT if moe else {}),
            "vocab_size": vocab_size,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": head_dim,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-6,
            # mrope sections (temporal, height, width) must add up to head_dim / 2
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 5_000_000.0,
                "mrope_section": [2, 1, 1],
                "mrope_interleaved": True,
            },
            "bos_token_id": tok_ids["bos_token_id"],
            "eos_token_id": tok_ids["eos_token_id"],
            "pad_token_id": tok_ids["pad_token_id"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 4,
            "patch_size": PATCH_SIZE,
            "spatial_merge_size": MERGE_SIZE,
            "temporal_patch_size": TEMPORAL_PATCH_SIZE,
            "out_hidden_size": 32,
            "num_position_embeddings": 64,  # an 8x8 grid of learned positions, interpolated
            "deepstack_visual_indexes": [1],
        },
        image_token_id=tok_ids["image_token_id"],
        video_token_id=tok_ids["video_token_id"],
        vision_start_token_id=tok_ids["vision_start_token_id"],
        vision_end_token_id=tok_ids["vision_end_token_id"],
        tie_word_embeddings=False,
    )


def build_processor(tokenizer):
    from transformers import Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    common = dict(
        patch_size=PATCH_SIZE,
        temporal_patch_size=TEMPORAL_PATCH_SIZE,
        merge_size=MERGE_SIZE,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}, **common
    )
    video_processor = Qwen3VLVideoProcessor(
        size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS * 4}, **common
    )
    chat_template = CHAT_TEMPLATE_PATH.read_text()
    return Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=chat_template,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--moe", action="store_true", help="Qwen3-VL-30B-A3B's mixture-of-experts architecture")
    args = parser.parse_args(argv)

    import torch
    from transformers import GenerationConfig, Qwen3VLForConditionalGeneration, Qwen3VLMoeForConditionalGeneration

    from tools.tiny_tokenizer import special_token_ids, train_tiny_qwen_tokenizer

    tokenizer = train_tiny_qwen_tokenizer()
    tok_ids = special_token_ids(tokenizer)
    # round up so the embedding covers every token, added specials included
    vocab_size = ((len(tokenizer) + 63) // 64) * 64
    config = build_config(tok_ids, vocab_size, moe=args.moe)

    torch.manual_seed(SEED)
    model_class = Qwen3VLMoeForConditionalGeneration if args.moe else Qwen3VLForConditionalGeneration
    model = model_class(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tok_ids["bos_token_id"],
        eos_token_id=[tok_ids["eos_token_id"], tok_ids["pad_token_id"]],
        pad_token_id=tok_ids["pad_token_id"],
        do_sample=False,
    )
    processor = build_processor(tokenizer)

    args.outdir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.outdir)
    processor.save_pretrained(args.outdir)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.outdir}: {model_class.__name__}, {n_params} parameters, vocab {vocab_size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
