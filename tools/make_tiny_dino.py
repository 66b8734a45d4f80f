"""Write a tiny random-weight DINO ViT (the metrics backend's DINO backbone): the real architecture
(transformers ViTModel without its pooling layer, as facebook/dino-vits16 is used: the [CLS] token
after the final norm; patch 16 at 224 pixels) at toy widths.

    python tools/make_tiny_dino.py models/tiny-dino
    python tools/make_tiny_dino.py /tmp/dino-s16 --full-size --config-only   # ViT-S/16's sizes, no weights

It loads like facebook/dino-vits16 (`ViTModel.from_pretrained(..., add_pooling_layer=False)`).
`--full-size --config-only`: DINO ViT-S/16's architecture (384 wide, 12 layers of 6 heads, MLP 1536,
LayerNorm eps 1e-6 as facebookresearch/dino's vit_small) as a config folder, for `--load-format dummy`
(bench/metrics_backend.py). Deterministic: a fixed seed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

SEED = 0
FULL = {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6, "intermediate_size": 1536}
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64}


def build_config(*, full_size: bool):
    from transformers import ViTConfig

    return ViTConfig(image_size=224, patch_size=16, qkv_bias=True, layer_norm_eps=1e-6, hidden_act="gelu",
                     **(FULL if full_size else TINY))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--full-size", action="store_true", help="ViT-S/16's sizes (with --config-only)")
    parser.add_argument("--config-only", action="store_true", help="the config, no weights")
    args = parser.parse_args()
    import torch
    from transformers import ViTModel

    args.out.mkdir(parents=True, exist_ok=True)
    config = build_config(full_size=args.full_size)
    if args.config_only:
        config.save_pretrained(args.out)
    else:
        torch.manual_seed(SEED)
        ViTModel(config, add_pooling_layer=False).eval().save_pretrained(args.out)
    print(f"wrote {'config of ' if args.config_only else ''}{'ViT-S/16-size' if args.full_size else 'tiny'} DINO to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
