"""Editor speed in-process: reference diffusers vs the `default` and `fast` speed modes.

Per mode: seconds per denoise step (median of step-to-step times, device-synchronised), seconds per
image (whole pipeline call), and the output's difference from `reference` on the same seed.

    python bench/editor_speed.py --model models/tiny-qwen-image-edit --device cpu --steps 2 --size 64 --dtype float32 --modes reference  # dry run (editor)
    python bench/editor_speed.py --load-format dummy --device cuda --steps 20 --size 1024 --out $OUT/editor_speed.json

Fidelity of the fast mode on real weights (random weights give a numerical, not a perceptual, measure):

    python bench/editor_speed.py --model Qwen/Qwen-Image-Edit --modes reference,fast --image your.png
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.common import StepTimer, card_name, compare_images, git_commit, source_image, write_json  # noqa: E402
from editor_service.speed import apply_speed_mode  # noqa: E402


def load_pipeline(model: str, load_format: str, device: str, dtype: torch.dtype):
    if load_format == "dummy":
        from editor_service.dummy_load import build_dummy_pipeline, resolve_config_dir

        return build_dummy_pipeline(resolve_config_dir(model), torch.device(device), dtype)
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.from_pretrained(model, torch_dtype=dtype).to(device)


class ForwardTimer:
    """CUDA-event time of every transformer forward inside a pipeline call: separates the transformer's
    share of a denoise step from the pipeline's own per-step work."""

    def __init__(self, transformer, cuda: bool):
        self.cuda = cuda
        self.events: list[tuple] = []
        self._open = None
        self._handles = [
            transformer.register_forward_pre_hook(self._before),
            transformer.register_forward_hook(self._after),
        ]

    def _stamp(self):
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def _before(self, *_):
        self._open = self._stamp()

    def _after(self, *_):
        self.events.append((self._open, self._stamp()))

    def seconds(self) -> list[float]:
        if not self.cuda:
            return [b - a for a, b in self.events]
        torch.cuda.synchronize()
        return [a.elapsed_time(b) / 1000 for a, b in self.events]

    def remove(self):
        for h in self._handles:
            h.remove()


class StepProfiler:
    """Wraps a step callback: profiles (CPU + CUDA) the denoise steps between two callbacks."""

    def __init__(self, inner, first_step: int, trace_path: str | None):
        self.inner, self.first_step, self.trace_path = inner, first_step, trace_path
        self.prof = None
        self.table_cpu = self.table_cuda = ""

    def __call__(self, pipe, step, timestep, callback_kwargs):
        out = self.inner(pipe, step, timestep, callback_kwargs)
        from torch.profiler import ProfilerActivity, profile

        if step == self.first_step - 1:
            activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
            self.prof = profile(activities=activities)
            self.prof.start()
        elif step == self.first_step and self.prof is not None:
            self.prof.stop()
            avg = self.prof.key_averages()
            self.table_cpu = avg.table(sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=60)
            self.table_cuda = avg.table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=60)
            if self.trace_path:
                self.prof.export_chrome_trace(self.trace_path)
        return out


def run_edit(pipe, image, args, sync, *, steps: int, seed: int = 1234, profile_step: int | None = None,
             trace_path: str | None = None):
    timer = StepTimer(sync)
    callback = timer if profile_step is None else StepProfiler(timer, profile_step, trace_path)
    forwards = ForwardTimer(pipe.transformer, cuda=args.device.startswith("cuda"))
    sync()
    t0 = time.perf_counter()
    out = pipe(
        image=image,
        prompt=args.prompt,
        negative_prompt=" ",
        true_cfg_scale=args.cfg,
        num_inference_steps=steps,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="np",
        callback_on_step_end=callback,
    ).images[0]
    sync()
    total = time.perf_counter() - t0
    per_step = timer.per_step()
    extra = {}
    forwards.remove()
    fwd = forwards.seconds()
    extra["forward_s"] = fwd
    if fwd:
        # a forecast (cached) step shows as a forward far shorter than a full one
        full = max(fwd)
        extra["forwards_cached"] = sum(1 for f in fwd if f < 0.3 * full)
        per_step_fwd = [sum(fwd[i:i + 2]) for i in range(0, len(fwd) - 1, 2)]
        extra["transformer_s_per_step_median"] = float(np.median(per_step_fwd[1:] or per_step_fwd))
    if profile_step is not None and callback.prof is not None:
        extra["profile_cpu"] = callback.table_cpu
        extra["profile_cuda"] = callback.table_cuda
        print(callback.table_cpu, callback.table_cuda, sep="\n", flush=True)
    return out, {**extra,
        "image_s": total,
        "step_s_median": float(np.median(per_step)) if per_step else float("nan"),
        "step_s_mean": float(np.mean(per_step)) if per_step else float("nan"),
        "denoise_s": timer.stamps[-1] - t0 if timer.stamps else float("nan"),
        "steps": steps,
        "step_s": per_step,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="editor_service/configs/qwen-image-edit")
    p.add_argument("--load-format", default="auto", choices=["auto", "dummy"])
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--cfg", type=float, default=4.0)
    p.add_argument("--prompt", default="Change the sky to a sunset and make the car red.")
    p.add_argument("--modes", default="reference,default,fast")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--forecast-interval", type=int, default=3, help="fast mode: transformer on one step in N")
    p.add_argument("--profile-mode", default=None, help="profile (CPU+CUDA) one denoise step of this mode's run")
    p.add_argument("--trace-dir", default=None, help="where the profiled step's chrome trace goes")
    p.add_argument("--image", default=None, help="source image file (default: a drawn 1024² test image)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)

    dtype = getattr(torch, args.dtype)
    cuda = args.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    t0 = time.perf_counter()
    pipe = load_pipeline(args.model, args.load_format, args.device, dtype)
    load_s = time.perf_counter() - t0
    if args.image:
        from PIL import Image

        image = Image.open(args.image).convert("RGB")
    else:
        image = source_image(args.size)
    results = {
        "bench": "editor_speed",
        "card": card_name(),
        "date": time.strftime("%Y-%m-%d"),
        "git": git_commit(),
        "command": " ".join(sys.argv),
        "torch": torch.__version__,
        "load_s": load_s,
        "settings": {"size": args.size, "steps": args.steps, "true_cfg_scale": args.cfg, "dtype": args.dtype},
        "modes": {},
    }
    if cuda:
        results["memory_after_load_gb"] = torch.cuda.memory_allocated() / 1e9
    reference_image = None
    for mode in args.modes.split(","):
        # Modes stack: default adds kernels/compile to reference, fast adds FP8 + cache to default.
        try:
            if mode == "fast":
                applied = _apply_fast_on_top(pipe, args.forecast_interval)
            elif mode == "fp8":  # fast without its cache: the FP8 share of the gain (after fast: no recompile)
                from editor_service.forecast import disable_output_forecast

                disable_output_forecast(pipe)
                applied = {**results["modes"]["fast"]["applied"], "speed_mode": "fp8", "cache": "none"}
            else:
                applied = apply_speed_mode(pipe, mode)
            t_warm = time.perf_counter()
            run_edit(pipe, image, args, sync, steps=2)  # warm-up: compilation, autotuning, allocator
            warm_s = time.perf_counter() - t_warm
            runs = [run_edit(pipe, image, args, sync, steps=args.steps) for _ in range(args.repeats)]
            if mode == args.profile_mode:
                if args.trace_dir:
                    Path(args.trace_dir).mkdir(parents=True, exist_ok=True)
                trace = str(Path(args.trace_dir) / f"{mode}_step.json") if args.trace_dir else None
                prof_run = run_edit(pipe, image, args, sync, steps=min(args.steps, 6), profile_step=4,
                                    trace_path=trace)[1]
                results.setdefault("profiles", {})[mode] = {k: prof_run[k] for k in ("profile_cpu", "profile_cuda")
                                                            if k in prof_run}
        except Exception as exc:  # noqa: BLE001 - keep the modes measured so far
            import traceback

            traceback.print_exc()
            results["modes"][mode] = {"error": f"{type(exc).__name__}: {exc}"}
            break
        out, timing = min(runs, key=lambda r: r[1]["image_s"])
        row = {"applied": applied, "warmup_s": warm_s, **timing}
        if cuda:
            row["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 1e9
        if reference_image is None:
            reference_image = out
        else:
            row["vs_reference"] = compare_images(out, reference_image)
        results["modes"][mode] = row
        print(f"[{mode}] {timing['step_s_median']:.3f} s/step, {timing['image_s']:.2f} s/image, transformer "
              f"{timing.get('transformer_s_per_step_median', float('nan')):.3f} s/step, "
              f"cached forwards {timing.get('forwards_cached', '-')}", flush=True)
    ref = results["modes"].get("reference")
    if ref and "error" not in ref:
        for mode, row in results["modes"].items():
            if "error" in row:
                continue
            row["speedup_step"] = ref["step_s_median"] / row["step_s_median"]
            row["speedup_image"] = ref["image_s"] / row["image_s"]
    write_json(args.out, results)
    del pipe
    gc.collect()
    return 0


def _apply_fast_on_top(pipe, forecast_interval: int = 3):
    """default -> fast in the same process: FP8 + output forecast, blocks recompiled (fullgraph)."""
    from editor_service import speed
    from editor_service.forecast import ForecastConfig, enable_output_forecast

    if pipe.device.type != "cuda":
        return {"speed_mode": "reference", "note": "fast needs CUDA"}
    applied = speed._quantize_fp8(pipe.transformer)
    config = ForecastConfig(interval=forecast_interval)
    enable_output_forecast(pipe, config)
    for block in pipe.transformer.transformer_blocks:  # recompile around the FP8 weights
        block._compiled_call_impl = None
        block.compile(fullgraph=True)
    applied["cache"] = config.describe()
    applied["speed_mode"] = "fast"
    return applied


if __name__ == "__main__":
    raise SystemExit(main())
