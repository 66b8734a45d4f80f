"""Speed modes: how one pipeline is made faster on a GPU without changing what it computes.

- ``reference``: diffusers as shipped (the baseline every other mode is compared against).
- ``default``:   same math, faster kernels: cuDNN attention through SDPA and regional
                 ``torch.compile`` of the repeated transformer blocks (Inductor's deterministic mode:
                 no launch config chosen by timing). Output stays within bf16 tolerance of
                 ``reference`` (bench/RESULTS.md reports the pixel difference).
- ``fast``:      opt-in, changes the numbers: ``default`` + FP8 (e4m3, dynamic per-row scales,
                 torchao) for the transformer blocks' linear layers + output forecasting on a fixed
                 schedule (``forecast.py``: the transformer runs on about one step in three, the
                 steps between extrapolate its output). Its deviation from ``reference`` must be
                 measured on the user's real weights (``bench/editor_speed.py --modes
                 reference,fast``); the mode is recorded in every result's model identity.

On CPU every mode is ``reference``: compilation would only slow tests and demos down.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .forecast import ForecastConfig

log = logging.getLogger(__name__)

MODES = ("reference", "default", "fast")
DEFAULT_ATTENTION_BACKEND = "_native_cudnn"


def apply_speed_mode(
    pipe,
    mode: str,
    *,
    attention_backend: str | None = None,
    compile_blocks: bool = True,
    forecast: "ForecastConfig | None" = None,
) -> dict[str, str]:
    """Configure `pipe` in place for `mode`; returns what was applied (recorded with results)."""
    if mode not in MODES:
        raise ValueError(f"unknown speed mode {mode!r}; choose one of {', '.join(MODES)}")
    applied = {"speed_mode": mode}
    device = getattr(pipe, "device", None)
    if mode == "reference" or device is None or device.type != "cuda":
        if mode != "reference":
            applied["speed_mode"] = "reference"
            applied["note"] = f"{mode} needs a CUDA device; running reference"
        return applied

    transformer = pipe.transformer
    if type(transformer).__name__ == "QwenImageTransformer2DModel":
        use_real_rope(True)
        applied["rope"] = "real_arithmetic"
    backend = attention_backend or DEFAULT_ATTENTION_BACKEND
    if backend != "native":
        transformer.set_attention_backend(backend)
    applied["attention_backend"] = backend

    if mode == "fast":
        from .forecast import ForecastConfig, enable_output_forecast

        applied.update(_quantize_fp8(transformer))
        config = forecast or ForecastConfig()
        enable_output_forecast(pipe, config)  # outside the compiled blocks: they stay fullgraph
        applied["cache"] = config.describe()

    if compile_blocks:
        import torch._dynamo.config as dynamo_config
        import torch._inductor.config as inductor_config

        # Every editor must compile the same kernels, whatever ran before it on the machine: the same
        # seed and sample gave different edits on two editors of one H100 machine (RESULTS §9.2).
        # - Inductor otherwise picks each reduction kernel's launch config by timing candidates on the
        #   device, and the winner (with its summation order) can differ between compiles (call 23:
        #   two compiles in one process differed by 0.5% of the output; in deterministic mode, 0).
        # - Dynamo's local profile (in the compile cache) can let a later process compile the
        #   text-length-dynamic graph first, with another size hint, and so other kernel configs.
        # Neither closes the gap yet: one of two editors still computes other bits (max 3 of 255 levels),
        # cause unknown (RESULTS §9.2; keeping compile caches private to each process did not help).
        inductor_config.deterministic = True
        dynamo_config.automatic_dynamic_local_pgo = False
        transformer.compile_repeated_blocks(fullgraph=True)
        applied["compile"] = "repeated_blocks"
        applied["inductor"] = "deterministic, no local dynamic-shape profile"
    return applied


def _quantize_fp8(transformer) -> dict[str, str]:
    import torch
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

    def is_block_linear(module: torch.nn.Module, fqn: str) -> bool:
        # Only the big per-token projections; the modulation layers run on one token per step,
        # where FP8 buys nothing and costs accuracy.
        return (
            isinstance(module, torch.nn.Linear)
            and fqn.startswith("transformer_blocks.")
            and "_mod." not in fqn
            and module.in_features % 16 == 0
            and module.out_features % 16 == 0
        )

    quantize_(transformer, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()), filter_fn=is_block_linear)
    return {"quantization": "fp8_e4m3_dynamic_per_row(transformer_blocks linear)"}


def _apply_rotary_emb_real(x, freqs_cis, use_real: bool = True, use_real_unbind_dim: int = -1):
    """Qwen-Image's complex RoPE (x as complex pairs times freqs_cis) in real fp32 arithmetic: the same
    products and sums as the complex multiply, but a form the compiler fuses into neighbouring ops
    (complex tensors are left as separate kernels)."""
    if use_real:
        return _ORIGINAL_ROPE[0](x, freqs_cis, use_real=use_real, use_real_unbind_dim=use_real_unbind_dim)
    import torch

    pairs = x.float().reshape(*x.shape[:-1], -1, 2)
    real, imag = pairs.unbind(-1)
    freqs = freqs_cis.unsqueeze(1)
    cos, sin = freqs.real, freqs.imag
    out = torch.stack([real * cos - imag * sin, real * sin + imag * cos], dim=-1)
    return out.flatten(3).type_as(x)


_ORIGINAL_ROPE: list = []


def use_real_rope(enabled: bool) -> None:
    """Swap Qwen-Image's RoPE for the real-arithmetic form (process-wide: one pipeline per process)."""
    from diffusers.models.transformers import transformer_qwenimage as qwen

    if not _ORIGINAL_ROPE:
        _ORIGINAL_ROPE.append(qwen.apply_rotary_emb_qwen)
    qwen.apply_rotary_emb_qwen = _apply_rotary_emb_real if enabled else _ORIGINAL_ROPE[0]
