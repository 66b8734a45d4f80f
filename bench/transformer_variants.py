"""One denoise step of full-size Qwen-Image-Edit, transformer only, under kernel/compile variants,
plus a CUDA-time profile of the compiled default: where the time of a step goes.

The transformer's real inputs (cond and uncond) are captured from a 1-step pipeline call at 1024²,
then each variant times cond + uncond forwards (= one CFG step) with CUDA events (median of 5).

    python bench/transformer_variants.py --out $OUT/variants.json
    python bench/transformer_variants.py --pretrained models/tiny-qwen-image-edit --size 64 --variants eager_native --repeats 1  # dry run (editor)
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
         true_cfg_scale=4.0, num_inference_steps=2, output_type="latent",
         generator=torch.Generator("cpu").manual_seed(0))
    handle.remove()
    # The first step's cond and uncond. (A 1-step schedule has a NaN timestep: with shift_terminal the
    # scheduler stretches its single sigma by 0/0; session 1's table was timed on those NaN inputs.)
    for value in calls[0].values():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            raise RuntimeError("captured transformer inputs are not finite")
    return calls[:2]


def time_step(transformer, calls, repeats: int = 9) -> float:
    times = []
    on_cuda = transformer.device.type == "cuda"
    for _ in range(repeats + 1):
        if on_cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
        else:  # the CPU dry run of the script with a tiny model
            t0 = time.perf_counter()
        for kw in calls:
            transformer(**kw)
        if on_cuda:
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1000)
        else:
            times.append(time.perf_counter() - t0)
    times = sorted(times[1:])
    return times[len(times) // 2]


def batch_of_two(kwargs: dict) -> dict:
    """The same forward for a batch of two identical samples: what one batched CFG forward costs when
    both branches have the same text length (an upper bound on the gain: real branches differ by
    16 text tokens and would need padding and a key mask)."""
    doubled = {}
    for key, value in kwargs.items():
        if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape[0] == 1:
            doubled[key] = torch.cat([value, value])
        elif key in ("img_shapes", "txt_seq_lens") and isinstance(value, list):
            doubled[key] = value * 2
        else:
            doubled[key] = value
    return doubled


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--variants", default="eager_native,eager_cudnn,eager_flash,compiled_cudnn,compiled_cudnn_realrope,compiled_flash_realrope,autotune",
                   help="comma list; a name may repeat (timed again, e.g. a baseline before and after); "
                   "lever_fused_qkv, lever_gelu_epilogue, lever_both, lever_batch2_proxy: goal 2's exact levers "
                   "(bench/transformer_levers.py), compiled, cuDNN attention, real RoPE")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--pretrained", default=None,
                   help="load this pipeline (e.g. models/tiny-qwen-image-edit, on CPU: a dry run of the script) "
                   "instead of the full-size dummy one")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    from bench import transformer_levers as levers
    from editor_service import speed
    from editor_service.dummy_load import build_dummy_pipeline, resolve_config_dir

    if args.pretrained:
        from diffusers import DiffusionPipeline

        pipe = DiffusionPipeline.from_pretrained(args.pretrained, torch_dtype=torch.float32)
    else:
        pipe = build_dummy_pipeline(resolve_config_dir("Qwen/Qwen-Image-Edit"), torch.device("cuda"), torch.bfloat16)
    on_cuda = pipe.transformer.device.type == "cuda"
    pipe.set_progress_bar_config(disable=True)
    with torch.inference_mode():
        calls = capture_inputs(pipe, args.size)
    shapes = {k: tuple(v.shape) for k, v in calls[0].items() if isinstance(v, torch.Tensor)}
    shapes_uncond = {k: tuple(v.shape) for k, v in calls[1].items() if isinstance(v, torch.Tensor)}
    print("cond", shapes, "uncond", shapes_uncond, flush=True)
    transformer = pipe.transformer
    del pipe.text_encoder
    if on_cuda:
        torch.cuda.empty_cache()
    result = {"bench": "transformer_variants", "card": card_name(), "date": time.strftime("%Y-%m-%d"),
              "git": git_commit(), "command": " ".join(sys.argv), "shapes": {"cond": shapes, "uncond": shapes_uncond},
              "variants": {}}
    if "lever_gelu_epilogue" in args.variants or "lever_both" in args.variants:
        result["gelu_epilogue_flavour"] = levers.gelu_epilogue_flavour(transformer.device.type)
        print("GELU epilogue", result["gelu_epilogue_flavour"], flush=True)
    # A new input shape (the batch-2 proxy) gets its own static graph, as in the service.
    torch._dynamo.config.automatic_dynamic_shapes = False
    reference_out = None
    for index, name in enumerate(args.variants.split(",")):
        key = name if name not in result["variants"] else f"{name}#{index}"
        t0 = time.perf_counter()
        try:
            torch._dynamo.reset()
            lever = name.startswith("lever_")
            compiled = name.startswith("compiled") or lever or name == "autotune"
            levers.set_fused_qkv(transformer, name in ("lever_fused_qkv", "lever_both"))
            levers.set_gelu_epilogue(transformer, name in ("lever_gelu_epilogue", "lever_both"))
            backend = "_native_flash" if "flash" in name else ("native" if "native" in name else "_native_cudnn")
            transformer.set_attention_backend(backend if on_cuda else "native")
            speed.use_real_rope("realrope" in name or name == "autotune" or lever)
            if compiled:
                # "_det": Inductor's deterministic mode (the service's default since call 23)
                torch._inductor.config.deterministic = name.endswith("_det")
                for block in transformer.transformer_blocks:
                    block._compiled_call_impl = None  # undo an earlier variant's compile
                mode = "max-autotune-no-cudagraphs" if name == "autotune" else None
                for block in transformer.transformer_blocks:
                    block.compile(fullgraph=True, mode=mode)
            with torch.inference_mode():
                out = transformer(**calls[0])[0]
                if on_cuda:
                    torch.cuda.synchronize()
                warm = time.perf_counter() - t0
                step = time_step(transformer, calls, args.repeats)
                row = {"step_s": step, "warmup_s": warm}
                if name == "lever_batch2_proxy":
                    doubled = batch_of_two(calls[0])
                    both = transformer(**doubled)[0]
                    row["batch2_rel_l2_vs_batch1"] = float((both[0].float() - out[0].float()).norm() / out.float().norm())
                    row["cond_twice_s"] = time_step(transformer, [calls[0], calls[0]], args.repeats)
                    row["batch2_s"] = time_step(transformer, [doubled], args.repeats)
                    row["batch2_gain"] = row["cond_twice_s"] / row["batch2_s"]
                    print(f"[{name}] cond twice {row['cond_twice_s']:.3f} s, one batch-2 forward "
                          f"{row['batch2_s']:.3f} s ({row['batch2_gain']:.3f}x)", flush=True)
            if reference_out is None:
                reference_out = out.float()
            else:
                diff = (out.float() - reference_out)
                row["rel_l2_vs_first"] = float(diff.norm() / reference_out.norm())
                row["max_abs_vs_first"] = float(diff.abs().max())
            print(f"[{key}] {step:.3f} s/step (warm-up {warm:.0f}s) {row.get('rel_l2_vs_first', '')}", flush=True)
        except Exception as exc:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            row = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
            print(f"[{key}] FAILED {row['error'][:200]}", flush=True)
        result["variants"][key] = row
        if args.profile and on_cuda and name in ("compiled_cudnn_realrope", "lever_both") and key == name and "error" not in row:
            from torch.profiler import ProfilerActivity, profile

            with torch.inference_mode(), profile(activities=[ProfilerActivity.CUDA]) as prof:
                for kw in calls:
                    transformer(**kw)
                torch.cuda.synchronize()
            table = prof.key_averages().table(sort_by="cuda_time_total", row_limit=25, max_name_column_width=70)
            print(table, flush=True)
            result.setdefault("profile_top", {})[key] = table
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
