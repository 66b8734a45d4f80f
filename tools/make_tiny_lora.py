"""Random LoRA adapters in diffusers' format, for tests and benchmarks (no trained LoRA can be fetched here).

    python tools/make_tiny_lora.py models/tiny-qwen-image-edit-2511 out.safetensors --rank 4 --seed 0

The adapter targets the Linear layers of the transformer blocks that LoRAs such as Qwen-Image-Lightning
train (attention projections and MLPs of both streams; norms and modulation left alone), with keys
`transformer.<module>.lora_A.weight` / `.lora_B.weight` as `save_lora_weights` writes them. A and B are
both drawn (a trained LoRA's B is not zero), so a LoRA at scale 1 changes the output; `std` sets how much.

`random_lora_state_dict` takes a transformer module, or a config dict whose model is then built on the
`meta` device (shapes only: a 20B-parameter transformer costs no memory), so the benchmark can make a
full-size adapter without building the model twice.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# Blocks of the MMDiT transformers (Qwen-Image: transformer_blocks; FLUX: also single_transformer_blocks)
BLOCK = re.compile(r"^(single_)?transformer_blocks\.\d+\.")
SKIP = re.compile(r"(norm|_mod\b|img_mod|txt_mod)")


def lora_targets(transformer) -> list[tuple[str, int, int]]:
    """(module name, in_features, out_features) of every Linear a LoRA would adapt."""
    import torch

    return [(name, module.in_features, module.out_features) for name, module in transformer.named_modules()
            if isinstance(module, torch.nn.Linear) and BLOCK.match(name) and not SKIP.search(name)]


def transformer_from_config(config: dict):
    """The transformer of a diffusers config dict (its `_class_name`), on the meta device: shapes only."""
    import diffusers
    import torch

    cls = getattr(diffusers, config["_class_name"])
    with torch.device("meta"):
        return cls.from_config(config)


def random_lora_state_dict(transformer, *, rank: int, seed: int = 0, std: float = 0.05, dtype=None,
                           device: str = "cpu") -> dict:
    """A LoRA of `rank` over `lora_targets(transformer)`; `transformer` may be a module or a config dict."""
    import torch

    if isinstance(transformer, dict):
        transformer = transformer_from_config(transformer)
    generator = torch.Generator(device).manual_seed(seed)
    dtype = dtype or torch.float32
    state = {}
    for name, fan_in, fan_out in lora_targets(transformer):
        a = torch.randn(rank, fan_in, generator=generator, device=device) / fan_in**0.5
        b = torch.randn(fan_out, rank, generator=generator, device=device) * std
        state[f"transformer.{name}.lora_A.weight"] = a.to(dtype)
        state[f"transformer.{name}.lora_B.weight"] = b.to(dtype)
    if not state:
        raise ValueError(f"{type(transformer).__name__}: no Linear layer in transformer blocks to adapt")
    return state


def save(state: dict, path: Path) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous().cpu() for k, v in state.items()}, str(path), metadata={"format": "pt"})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="a diffusers model folder (its transformer/config.json is read)")
    parser.add_argument("out", type=Path, help="the .safetensors file to write")
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--std", type=float, default=0.05, help="spread of lora_B (how strongly it changes outputs)")
    args = parser.parse_args(argv)
    config = json.loads((args.model / "transformer" / "config.json").read_text())
    state = random_lora_state_dict(config, rank=args.rank, seed=args.seed, std=args.std)
    save(state, args.out)
    print(f"wrote {args.out}: rank {args.rank}, {len(state) // 2} layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
