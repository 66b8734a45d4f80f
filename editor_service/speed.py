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


def compiles(mode: str, device) -> bool:
    """Whether `apply_speed_mode` compiles for this mode and device (every mode but reference, on CUDA)."""
    return mode in MODES and mode != "reference" and getattr(device, "type", None) == "cuda"


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
    if not compiles(mode, device):
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

        # Every editor must compute the same bits, whatever ran before it on the machine (issue 18):
        # - Inductor's deterministic mode: no launch config chosen by on-device timing where Inductor
        #   honours it, and no local dynamic-shape profile (a history dependence by construction).
        # - It is not enough: with torch 2.11 a looped reduction (LayerNorm over 3072) still got two
        #   candidate configs, R0_BLOCK 2048 and a persistent 4096, and each fresh compile kept the one
        #   that timed faster on the device; the two sum in different orders, so editors that compiled
        #   on their own differed by up to 3 of 255 levels (bench/determinism.py; RESULTS §10).
        #   `deterministic_reduction_choice` takes that decision off the clock.
        # - Coordinate-descent tuning (torchao's recommended Inductor settings turn it on; the FP8
        #   config below asks it not to) re-times every kernel's block sizes, reductions included, on
        #   the device: two minutes of a fast editor's cold start (H200, RESULTS §15), picks that
        #   differ between processes, and a warm start that timed them again.
        isolate_inductor_cache()
        inductor_config.deterministic = True
        inductor_config.coordinate_descent_tuning = False
        dynamo_config.automatic_dynamic_local_pgo = False
        applied["inductor"] = ("deterministic, no local dynamic-shape profile, no coordinate-descent tuning, "
                               + deterministic_reduction_choice() + ", " + cacheable_sdpa_kernel())
        applied["compile"] = compile_transformer_blocks(transformer)
    return applied


DYNAMIC_TEXT_LENGTH = "dynamic text length"  # in runtime["compile"] when one graph serves every length

# Per transformer class: where its blocks' inputs carry the text length, as (keyword, index in a tuple
# or None, dim). Marked dynamic on the first call, so one compiled graph serves every prompt length.
TEXT_LENGTH_DIMS = {
    "QwenImageTransformer2DModel": (("encoder_hidden_states", None, 1), ("encoder_hidden_states_mask", None, 1),
                                    ("image_rotary_emb", 1, 0)),  # image_rotary_emb = (image freqs, text freqs)
}


def compile_transformer_blocks(transformer) -> str:
    """Regional compilation: every repeated block (``_repeated_blocks``) wrapped in torch.compile, so
    one block's code is traced and compiled once and serves all of them (what diffusers'
    ``compile_repeated_blocks`` does), with the text length dynamic from the first call where the
    class is known (`TEXT_LENGTH_DIMS`).

    Left to automatic dynamic shapes, the first prompt length seen got a graph of its own and the
    second a dynamic one: two graphs for Dynamo to trace and Inductor to compile in a cold start, two
    to trace again in every warm start (RESULTS §15), and a real request whose length happened to be
    the first warm-up prompt's ran other compiled code than the rest. Marking the length dynamic
    before Dynamo sees it leaves one graph for every length. Returns what was applied.
    """
    import torch

    names = set(getattr(transformer, "_repeated_blocks", None) or ())
    blocks = [m for m in transformer.modules() if type(m).__name__ in names]
    if not blocks:
        raise ValueError(f"{type(transformer).__name__} names no repeated blocks to compile")
    dims = TEXT_LENGTH_DIMS.get(type(transformer).__name__)
    for block in blocks:
        compiled = torch.compile(block._call_impl, fullgraph=True)
        # What nn.Module.compile() sets, with the marking in front of it when the class is known: it
        # must run outside the compiled call (Dynamo reads the marks when it starts tracing).
        block._compiled_call_impl = _marking_text_length(compiled, dims) if dims else compiled
    return f"repeated_blocks, {DYNAMIC_TEXT_LENGTH}" if dims else "repeated_blocks"


def _marking_text_length(compiled, dims):
    import torch

    def call(*args, **kwargs):
        for keyword, index, dim in dims:
            value = kwargs.get(keyword)
            if index is not None and isinstance(value, (tuple, list)) and len(value) > index:
                value = value[index]
            if isinstance(value, torch.Tensor):
                torch._dynamo.maybe_mark_dynamic(value, dim)
        return compiled(*args, **kwargs)

    return call


# Bumped whenever a rule that decides compiled bits changes (e.g. deterministic_reduction_choice), so
# that kernels and launch choices cached on this machine under an older rule are never read again.
INDUCTOR_CACHE_GENERATION = "editfleet-rules-2"  # 2: no coordinate-descent tuning


def isolate_inductor_cache() -> str:
    """Point Inductor's machine-local cache at a folder of this rule generation, unless the user chose one.

    Inductor's local cache (by default one folder per user in /tmp, shared by every run on the machine)
    keeps each kernel's chosen launch config (``*.best_config``) and reuses it without timing again. An
    editfleet from before the fixed reduction rule left timed picks there, which a later editor would
    reuse: the same bits as its neighbours on that machine, other bits than editors elsewhere. A
    generation folder leaves them unread. An explicit TORCHINDUCTOR_CACHE_DIR is kept as it is.
    """
    import os

    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    given = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if given and os.path.abspath(given) != os.path.abspath(default_cache_dir()):
        return given
    path = os.path.join(default_cache_dir(), INDUCTOR_CACHE_GENERATION)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = path
    log.info("Inductor's local cache: %s", path)
    return path


SDPA_KERNEL_CALLS = ("torch.nn.attention._sdpa_kernel", "torch.nn.attention._backend_from_string")


def cacheable_sdpa_kernel() -> str:
    """Let AOTAutograd cache graphs that choose their attention kernel (issue 18's warm start).

    The cuDNN attention backend wraps SDPA in ``sdpa_kernel(CUDNN_ATTENTION)``; Dynamo traces that
    context into calls of two private torch functions, which AOTAutograd's cache refuses, so every
    editor re-ran AOTAutograd's tracing of each compiled block even when its compile cache was warm
    (H200: ``autograd_cache_bypass`` 2 of 2 graphs, RESULTS §14). What the calls do is fixed by their
    constant arguments, which are in the graph and so in the cache key: the same reasoning that makes
    torch list autocast's enter/exit as cache safe. Process-wide and idempotent.
    """
    import torch
    import torch._inductor.config as inductor_config

    for name in SDPA_KERNEL_CALLS:
        inductor_config.unsafe_marked_cacheable_functions.setdefault(name, torch.__version__)
    return "sdpa_kernel cacheable"


def deterministic_reduction_choice() -> str:
    """Make Inductor pick among a reduction kernel's candidate launch configs by a fixed rule (the
    first candidate, in the order its heuristics list them) instead of by timing them on the device.

    A reduction's launch config decides its summation order, so a timed pick makes the bits of a
    compiled model depend on the process that compiled it. Pointwise kernels keep their timed pick:
    each element is computed alone, whatever the block size. Process-wide and idempotent.
    """
    try:
        from torch._inductor.runtime import triton_heuristics
        from torch._inductor.runtime.hints import HeuristicType
    except ImportError:  # no Triton (CPU-only builds): nothing is autotuned
        return "no triton"
    tuner = triton_heuristics.CachingAutotuner
    if getattr(tuner, "_editfleet_fixed_reductions", False):
        return "fixed reduction configs"
    timed = tuner.benchmark_all_configs
    order_matters = {HeuristicType.REDUCTION, HeuristicType.PERSISTENT_REDUCTION, HeuristicType.SPLIT_SCAN}

    def benchmark_all_configs(self, *args, **kwargs):
        if getattr(self, "heuristic_type", None) not in order_matters:
            return timed(self, *args, **kwargs)
        # "timings" that rank the candidates in their listed order: the autotuner keeps the first
        return {launcher: float(rank) for rank, launcher in enumerate(self.launchers)}

    tuner.benchmark_all_configs = benchmark_all_configs
    tuner._editfleet_fixed_reductions = True
    return "fixed reduction configs"


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

    # set_inductor_config=False: torchao would otherwise switch on Inductor's coordinate-descent tuning
    # (timed launch configs, see apply_speed_mode) for the whole process.
    config = Float8DynamicActivationFloat8WeightConfig(granularity=PerRow(), set_inductor_config=False)
    quantize_(transformer, config, filter_fn=is_block_linear)
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
