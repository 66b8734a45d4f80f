"""One denoise step of full-size Qwen-Image-Edit, transformer only, under kernel/compile variants,
plus a CUDA-time profile of the compiled default: where the time of a step goes.

The transformer's real inputs (cond and uncond) are captured from a 1-step pipeline call at 1024²,
then each variant times cond + uncond forwards (= one CFG step) with CUDA events (median of 5).

    python bench/transformer_variants.py --out $OUT/variants.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from bench.common import card_name, git_commit, source_image, write_json  # noqa: E402


def capture_inputs(pipe, size: int):
    calls = []

    def grab(_module, args, kwargs):
        calls.append({k: v for k, v in kwargs.items()})

    handle = pipe.transformer.register_forward_pre_hook(grab, with_kwargs=True)
    pipe(image=source_image(size), prompt="Change the sky to a sunset and make the car red.", negative_prompt=" ",
         true_cfg_scale=4.0, num_inference_steps=1, output_type="latent",
         generator=torch.Generator("cpu").manual_seed(0))
    handle.remove()
    return calls[:2]  # cond, uncond


def time_step(transformer, calls, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats + 1):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for kw in calls:
            transformer(**kw)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1000)
    times = sorted(times[1:])
    return times[len(times) // 2]


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--variants", default="eager_native,eager_cudnn,eager_flash,compiled_cudnn,compiled_cudnn_realrope,compiled_flash_realrope,autotune")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    from editor_service import speed
    from editor_service.pipeline import build_dummy_pipeline, resolve_config_dir

    pipe = build_dummy_pipeline(resolve_config_dir("Qwen/Qwen-Image-Edit"), torch.device("cuda"), torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    with torch.inference_mode():
        calls = capture_inputs(pipe, args.size)
    shapes = {k: tuple(v.shape) for k, v in calls[0].items() if isinstance(v, torch.Tensor)}
    shapes_uncond = {k: tuple(v.shape) for k, v in calls[1].items() if isinstance(v, torch.Tensor)}
    print("cond", shapes, "uncond", shapes_uncond, flush=True)
    transformer = pipe.transformer
    del pipe.text_encoder
    torch.cuda.empty_cache()
    result = {"bench": "transformer_variants", "card": card_name(), "date": time.strftime("%Y-%m-%d"),
              "git": git_commit(), "command": " ".join(sys.argv), "shapes": {"cond": shapes, "uncond": shapes_uncond},
              "variants": {}}
    reference_out = None
    for name in args.variants.split(","):
        t0 = time.perf_counter()
        try:
            torch._dynamo.reset()
            compiled = name.startswith("compiled") or name == "autotune"
            backend = "_native_flash" if "flash" in name else ("native" if "native" in name else "_native_cudnn")
            transformer.set_attention_backend(backend if backend != "native" else "native")
            speed.use_real_rope("realrope" in name or name == "autotune")
            if compiled:
                for block in transformer.transformer_blocks:
                    block._compiled_call_impl = None  # undo an earlier variant's compile
                mode = "max-autotune-no-cudagraphs" if name == "autotune" else None
                for block in transformer.transformer_blocks:
                    block.compile(fullgraph=True, mode=mode)
            with torch.inference_mode():
                out = transformer(**calls[0])[0]
                torch.cuda.synchronize()
                warm = time.perf_counter() - t0
                step = time_step(transformer, calls)
            row = {"step_s": step, "warmup_s": warm}
            if reference_out is None:
                reference_out = out.float()
            else:
                diff = (out.float() - reference_out)
                row["rel_l2_vs_first"] = float(diff.norm() / reference_out.norm())
            print(f"[{name}] {step:.3f} s/step (warm-up {warm:.0f}s)", flush=True)
        except Exception as exc:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            row = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
            print(f"[{name}] FAILED {row['error'][:200]}", flush=True)
        result["variants"][name] = row
        if name == "compiled_cudnn_realrope" and args.profile and "error" not in row:
            from torch.profiler import ProfilerActivity, profile

            with torch.inference_mode(), profile(activities=[ProfilerActivity.CUDA]) as prof:
                for kw in calls:
                    transformer(**kw)
                torch.cuda.synchronize()
            table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=25, max_name_column_width=70)
            print(table, flush=True)
            result["profile_top"] = table
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
