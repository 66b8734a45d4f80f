"""Write a tiny random-weight CLIP (the metrics backend's CLIP-I / CLIP-T / CLIP-dir backbone): the real
architecture (transformers CLIPModel, ViT-B/32's patch 32 at 224 pixels) at toy widths, and a tiny
CLIP-style tokenizer (77-token context): transformers' CLIPTokenizer over a fixed vocabulary of
single characters (each with and without CLIP's `</w>` word end) and no merges, so every machine
writes the same files (a trained BPE's merges can differ from run to run).

    python tools/make_tiny_clip.py models/tiny-clip
    python tools/make_tiny_clip.py /tmp/clip-b32 --full-size --config-only   # ViT-B/32's sizes, no weights

It loads like openai/clip-vit-base-patch32 (`CLIPModel.from_pretrained` + `AutoTokenizer.from_pretrained`).
`--full-size --config-only`: openai/clip-vit-base-patch32's architecture (transformers' CLIPConfig
defaults are that model's sizes) as a config folder, for `--load-format dummy` (bench/metrics_backend.py).
Deterministic: a fixed seed and a fixed vocabulary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SEED = 0
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"-()/&"


def tiny_clip_tokenizer():
    """CLIPTokenizer over single characters (no merges): start/end tokens 0 and 1, 77-token context."""
    from transformers import CLIPTokenizer

    tokens = ["<|startoftext|>", "<|endoftext|>", *ALPHABET, *(c + "</w>" for c in ALPHABET)]
    return CLIPTokenizer(vocab={t: i for i, t in enumerate(tokens)}, merges=[], model_max_length=77)
TINY_TEXT = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
TINY_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
               "image_size": 224, "patch_size": 32}


def build_config(tokenizer, *, full_size: bool):
    from transformers import CLIPConfig

    ids = {"bos_token_id": tokenizer.convert_tokens_to_ids("<|startoftext|>"),
           "eos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>")}
    text = {"vocab_size": len(tokenizer), "max_position_embeddings": 77, **ids,
            "pad_token_id": ids["eos_token_id"], **({} if full_size else TINY_TEXT)}
    vision = {} if full_size else TINY_VISION
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=512 if full_size else 16)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--full-size", action="store_true", help="ViT-B/32's sizes (with --config-only)")
    parser.add_argument("--config-only", action="store_true", help="config and tokenizer, no weights")
    args = parser.parse_args()
    import torch
    from transformers import CLIPModel

    args.out.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_clip_tokenizer()
    config = build_config(tokenizer, full_size=args.full_size)
    tokenizer.save_pretrained(args.out)
    if args.config_only:
        config.save_pretrained(args.out)
    else:
        torch.manual_seed(SEED)
        model = CLIPModel(config).eval()
        model.save_pretrained(args.out)
    print(f"wrote {'config of ' if args.config_only else ''}{'ViT-B/32-size' if args.full_size else 'tiny'} CLIP to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
