"""A model that does not fit (issue 27 item 6): the services' estimate before loading against what the
dummy builds really take.

editfleet_common/memory_fit.py refuses, before anything loads, a model whose weights alone exceed the
free memory of its device; the estimate comes from safetensors headers, or for --load-format dummy from
the configs built on the meta device. This script prints, for the editor's and the judge's model, the
estimate beside what the dummy build really holds (torch.cuda.memory_allocated on a GPU; parameters
and buffers on the CPU), the free memory as nvidia-smi and torch see it, and whether a real CUDA
out-of-memory error is recognised as one (--oom, a GPU only).

    python bench/memory_fit.py --editor-model models/tiny-qwen-image-edit --judge-model '' --device cpu --out $OUT/fit.json  # dry run (editor)
    python bench/memory_fit.py --device cuda --oom --out $OUT/memory_fit.json  # a GPU: Qwen-Image-Edit and Qwen3-VL-8B, dummy

The refusals themselves, on a GPU: hold all but ~14 GiB of it (python3 -c "import torch,time;
x=torch.empty(int(G*2**30),dtype=torch.uint8,device='cuda');time.sleep(900)" &) and start
`python3 -m editor_service --model Qwen/Qwen-Image-Edit --load-format dummy --device cuda`: one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def held_bytes(module) -> int:
    return sum(t.numel() * t.element_size() for t in [*module.parameters(), *module.buffers()])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--editor-model", default="Qwen/Qwen-Image-Edit")
    p.add_argument("--judge-model", default="Qwen/Qwen3-VL-8B-Instruct", help="a shipped config's hub id; '': none")
    p.add_argument("--device", default="cuda")
    p.add_argument("--oom", action="store_true", help="ask the GPU for 2x its memory: is the error recognised")
    p.add_argument("--out", default=None)
    args = p.parse_args()

    import torch

    from editfleet_common.memory_fit import device_room, gib, is_out_of_memory
    from editor_service.dummy_load import build_dummy_pipeline, dummy_weight_bytes, resolve_config_dir
    from scorer_service.backends.transformers.loading import build_dummy, dummy_weight_bytes as judge_weight_bytes

    gpu = args.device.startswith("cuda")
    dtype = torch.bfloat16
    result: dict = {"bench": "memory_fit", "device": args.device, "dtype": "bfloat16",
                    "room_before": device_room(args.device).describe()}
    if gpu:
        torch.cuda.init()
        result["card"] = torch.cuda.get_device_name(0)
        result["room_torch"] = device_room(args.device).describe()

    def allocated() -> int:
        return torch.cuda.memory_allocated() if gpu else 0

    config_dir = resolve_config_dir(args.editor_model)
    estimate = dummy_weight_bytes(config_dir, dtype)
    base, t0 = allocated(), time.perf_counter()
    pipe = build_dummy_pipeline(config_dir, torch.device(args.device), dtype)
    parts = {name: {"estimate": est, "held": held_bytes(getattr(pipe, name))} for name, est in estimate.items()}
    result["editor"] = {"model": args.editor_model, "estimate": sum(estimate.values()),
                        "estimate_gib": gib(sum(estimate.values())), "parts": parts,
                        "allocated": allocated() - base if gpu else sum(v["held"] for v in parts.values()),
                        "build_s": round(time.perf_counter() - t0, 2)}
    del pipe
    if gpu:
        torch.cuda.empty_cache()
    if args.judge_model:  # a hub id whose configs editfleet ships (scorer_service/configs)
        estimate = judge_weight_bytes(args.judge_model, dtype)
        base = allocated()
        net, _, _ = build_dummy(args.judge_model, args.device, dtype)
        result["judge"] = {"model": args.judge_model, "estimate": estimate, "estimate_gib": gib(estimate),
                           "allocated": allocated() - base if gpu else held_bytes(net)}
        del net
    if gpu and args.oom:
        torch.cuda.empty_cache()
        try:
            torch.empty(2 * torch.cuda.get_device_properties(0).total_memory, dtype=torch.uint8, device="cuda")
            result["oom"] = "no error"
        except BaseException as exc:  # noqa: BLE001 - what is recorded is whether it is recognised
            result["oom"] = {"recognised": is_out_of_memory(exc), "type": type(exc).__name__}
    for who in ("editor", "judge")[:2 if args.judge_model else 1]:
        r = result[who]
        r["estimate_over_allocated"] = round(r["estimate"] / r["allocated"], 5) if r["allocated"] else None
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
