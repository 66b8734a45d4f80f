"""Few-step LoRA vs the base model, and two input images vs one: Qwen-Image-Edit-2511 on one GPU.

Through the editor's own core (editor_service.pipeline.EditPipeline: the path the service runs, LoRA
fused at load by adapters.py, the speed mode of the service), one process, two model builds:

  base   Qwen-Image-Edit-2511, two 1024² input images, output 1024²:
           - `--cfg-steps` (40) steps with true CFG `--cfg` (4): the model card's call
           - `--one-image-steps` (10) steps with true CFG, one input image: the extra condition tokens' cost
           - `--lora-steps` (8) steps, CFG 1, two images: the base model's step at the LoRA run's settings
  lora   the same model with a random LoRA of rank `--lora-rank` (64) on the 12 attention/MLP linears of
         each of the 60 blocks (the 720 layers of Qwen-Image-Lightning's adapters) fused at load, and
         Lightning's scheduler (shift 3, no terminal shift), `--lora-steps` (8) steps, CFG 1, two images

Reported: s/step (median of device-synchronised step-to-step times) and s/image (whole call) of
each run; the 8-step LoRA run's speed-up per image over the 40-step CFG run (goal >= 8x); the fused
LoRA's per-step overhead over the base model at the same settings (goal <= 1%: fused, it adds no
work); the two-image edit's s/step over the one-image edit's (both with CFG). Random weights: the
numbers are speed only.

CPU dry run on the tiny models (seconds per edit; checks the whole script, not speed):

    python bench/lora_speed.py --model models/tiny-qwen-image-edit-2511 --device cpu --size 64 --cfg-steps 3 --one-image-steps 3 --lora-steps 2 --lora-rank 4 --lora-dir $TMP --out $OUT/lora_speed.json  # dry run (editor)

Full size, random weights (one H200; ~13 s per dummy build, the LoRA file is ~850 MB in bf16):

    python3 bench/lora_speed.py --load-format dummy --device cuda --out $OUT/lora_speed.json

The rank: Lightning's published adapters cover these 720 layers; their rank is taken as 64 (not read
from a published file here: set `--lora-rank` to the real one when known). A fused adapter's cost does
not depend on its rank.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.common import card_name, git_commit, source_image, write_json  # noqa: E402
from editfleet_common.images import encode_png  # noqa: E402

# Qwen-Image-Lightning's scheduler for diffusers (ModelTC's generate_with_diffusers.py, as in
# huggingface/diffusers PR #12119): shift 3 throughout, no terminal shift
LIGHTNING_SCHEDULER = {"base_shift": math.log(3), "max_shift": math.log(3), "shift_terminal": None}


def load(args, **adapters):
    from editor_service.pipeline import EditPipeline

    started = time.perf_counter()
    pipeline = EditPipeline.load(args.model, device=args.device, dtype=args.dtype, load_format=args.load_format,
                                 speed_mode=args.speed_mode, threads=args.threads, **adapters)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    pipeline.warm_up()  # what the service does before SERVING
    return pipeline, load_s, time.perf_counter() - started


def edit(pipeline, images: list[bytes], args, *, steps: int, cfg: float, seed: int = 1234) -> dict:
    """One edit through EditPipeline.edit; per-step times from its step callback, device-synchronised."""
    from editor_service.pipeline import EditRequest

    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    stamps: list[float] = []

    def on_step(step, total, elapsed):
        sync()
        stamps.append(time.perf_counter())

    request = EditRequest(instruction=args.prompt, images=images if len(images) > 1 else [],
                          image=images[0] if len(images) == 1 else b"", num_inference_steps=steps,
                          guidance_scale=cfg, seed=seed, width=args.size, height=args.size)
    sync()
    started = time.perf_counter()
    out = pipeline.edit(request, on_step=on_step)
    sync()
    image_s = time.perf_counter() - started
    per_step = [b - a for a, b in zip(stamps, stamps[1:])]
    return {
        "steps": steps, "true_cfg_scale": cfg, "input_images": len(images),
        "step_s_median": float(np.median(per_step)) if per_step else float("nan"),
        "step_s_mean": float(np.mean(per_step)) if per_step else float("nan"),
        "image_s": image_s, "denoise_s": out.timings.denoise_s, "size": [out.width, out.height], "step_s": per_step,
    }


def make_lora(args, workdir: Path) -> Path:
    """A random LoRA of `--lora-rank` for the model's transformer, as a .safetensors file."""
    import json

    from editor_service.dummy_load import resolve_config_dir
    from tools.make_tiny_lora import random_lora_state_dict, save

    config_dir = resolve_config_dir(args.model) if args.load_format == "dummy" else Path(args.model)
    config = json.loads((config_dir / "transformer" / "config.json").read_text())
    device = args.device if args.device.startswith("cuda") else "cpu"  # drawn on the GPU: seconds, not minutes
    state = random_lora_state_dict(config, rank=args.lora_rank, seed=7, std=0.02, dtype=torch.bfloat16, device=device)
    path = workdir / f"random-lora-rank{args.lora_rank}.safetensors"
    save(state, path)
    del state
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="Qwen/Qwen-Image-Edit-2511")
    p.add_argument("--load-format", default="auto", choices=["auto", "dummy"])
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--speed-mode", default="default", choices=["reference", "default", "fast"],
                   help="the editor's speed mode (default: what the service runs)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--size", type=int, default=1024, help="input images and output are size x size")
    p.add_argument("--cfg", type=float, default=4.0)
    p.add_argument("--cfg-steps", type=int, default=40)
    p.add_argument("--one-image-steps", type=int, default=10)
    p.add_argument("--lora-steps", type=int, default=8)
    p.add_argument("--lora-rank", type=int, default=64)
    p.add_argument("--lora-dir", default=None, help="where the random LoRA file is written (default: a temp dir)")
    p.add_argument("--prompt", default="Put the red disc of picture 2 on the table of picture 1.")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    two = [encode_png(source_image(args.size, seed=0)), encode_png(source_image(args.size, seed=1).rotate(90))]
    results = {"bench": "lora_speed", "card": card_name(), "date": time.strftime("%Y-%m-%d"), "git": git_commit(),
               "command": " ".join(sys.argv), "torch": torch.__version__,
               "settings": {k: getattr(args, k) for k in ("model", "load_format", "speed_mode", "size", "cfg",
                                                         "cfg_steps", "one_image_steps", "lora_steps", "lora_rank")},
               "runs": {}}
    cuda = args.device.startswith("cuda")
    runs = results["runs"]

    def record(name: str, row: dict) -> None:
        runs[name] = row
        print(f"[{name}] {row['step_s_median']:.3f} s/step, {row['image_s']:.2f} s/image "
              f"({row['steps']} steps, CFG {row['true_cfg_scale']}, {row['input_images']} image(s))", flush=True)
        write_json(args.out, results)  # what is measured so far survives a run cut short

    pipeline, load_s, warm_s = load(args)
    results["base"] = {"load_s": load_s, "warm_up_s": warm_s, "identity": pipeline.identity.runtime}
    # one 2-step edit per shape first: compilation for each input count and CFG setting is not timed
    for images, cfg in ((two, args.cfg), (two[:1], args.cfg), (two, 1.0)):
        edit(pipeline, images, args, steps=2, cfg=cfg)
    record("base_cfg_two_images", edit(pipeline, two, args, steps=args.cfg_steps, cfg=args.cfg))
    record("base_cfg_one_image", edit(pipeline, two[:1], args, steps=args.one_image_steps, cfg=args.cfg))
    record("base_no_cfg_two_images", edit(pipeline, two, args, steps=args.lora_steps, cfg=1.0))
    if cuda:
        results["base"]["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
    del pipeline
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()

    from editor_service.adapters import LoraSpec

    with tempfile.TemporaryDirectory(prefix="lora-speed-", dir=args.lora_dir) as tmp:
        started = time.perf_counter()
        lora_path = make_lora(args, Path(tmp))
        make_s, file_mb = time.perf_counter() - started, lora_path.stat().st_size / 1e6
        pipeline, load_s, warm_s = load(args, loras=[LoraSpec(str(lora_path), 1.0)], scheduler=LIGHTNING_SCHEDULER)
    results["lora"] = {"make_file_s": make_s, "file_mb": file_mb, "load_and_fuse_s": load_s, "warm_up_s": warm_s,
                       "identity": pipeline.identity.runtime}
    edit(pipeline, two, args, steps=2, cfg=1.0)
    record("lora_no_cfg_two_images", edit(pipeline, two, args, steps=args.lora_steps, cfg=1.0))
    if cuda:
        results["lora"]["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9

    base, lora = runs["base_cfg_two_images"], runs["lora_no_cfg_two_images"]
    same_settings = runs["base_no_cfg_two_images"]
    results["summary"] = {
        "speedup_per_image_lora8_vs_cfg40": base["image_s"] / lora["image_s"],
        "goal_speedup_per_image": 8.0,
        "fused_lora_step_overhead": lora["step_s_median"] / same_settings["step_s_median"] - 1.0,
        "goal_fused_lora_step_overhead": 0.01,
        "two_vs_one_image_step_ratio": base["step_s_median"] / runs["base_cfg_one_image"]["step_s_median"],
        "cfg_vs_no_cfg_step_ratio": base["step_s_median"] / same_settings["step_s_median"],
    }
    for key, value in results["summary"].items():
        print(f"{key}: {value:.4f}", flush=True)
    write_json(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
