"""Goal 2's untried exact levers, as reversible patches of a Qwen-Image transformer (bench only).

Each lever keeps the arithmetic of a step (same products, bf16 in, fp32 accumulate); they differ only
in how the work is grouped into kernels. `bench/transformer_variants.py` times them against the
default mode in one run on one card:

- ``fused_qkv``: one GEMM per stream for q, k and v (weights concatenated, N = 9216) instead of three.
- ``gelu_epilogue``: the MLP's first linear + tanh-GELU as one cuBLASLt GEMM with a GELU+bias
  epilogue (``torch._addmm_activation``), so the 12288-wide activation is written once instead of
  written, read and written again by a separate GELU kernel. It is a custom op so that the compiler
  keeps it whole (Inductor would otherwise split the bias off into a fused pointwise kernel).
- the batched-CFG proxy lives in transformer_variants.py: both branches as one batch-2 forward.
"""

from __future__ import annotations

import torch

_LIB_NAME = "editfleet_bench"
_defined: list[bool] = []


def _define_linear_gelu() -> None:
    if _defined:
        return

    @torch.library.custom_op(f"{_LIB_NAME}::linear_gelu_tanh", mutates_args=())
    def linear_gelu_tanh(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        # cuBLASLt's GELU epilogue is the tanh approximation, the same function as F.gelu(approximate="tanh").
        out = torch._addmm_activation(bias, flat, weight.t(), use_gelu=True)
        return out.view(*x.shape[:-1], weight.shape[0])

    @linear_gelu_tanh.register_fake
    def _(x, weight, bias):
        return x.new_empty(*x.shape[:-1], weight.shape[0])

    _defined.append(True)


def _gelu_epilogue_forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
    return torch.ops.editfleet_bench.linear_gelu_tanh(hidden_states, self.proj.weight, self.proj.bias)


def set_gelu_epilogue(transformer, enabled: bool) -> int:
    """Route every tanh-GELU MLP input projection through the fused epilogue; returns how many."""
    from diffusers.models.activations import GELU

    _define_linear_gelu()
    count = 0
    for module in transformer.modules():
        if isinstance(module, GELU) and module.approximate == "tanh" and module.proj.bias is not None:
            if enabled:
                module.forward = _gelu_epilogue_forward.__get__(module)
            elif "forward" in module.__dict__:
                del module.forward
            count += 1
    return count


def _fused_linear(linears) -> torch.nn.Linear:
    first = linears[0]
    fused = torch.nn.Linear(first.in_features, sum(l.out_features for l in linears), bias=first.bias is not None,
                            device=first.weight.device, dtype=first.weight.dtype)
    with torch.no_grad():
        fused.weight.copy_(torch.cat([l.weight for l in linears]))
        if first.bias is not None:
            fused.bias.copy_(torch.cat([l.bias for l in linears]))
    return fused


def set_fused_qkv(transformer, enabled: bool) -> int:
    """Swap each block's attention processor for one that projects q, k, v in one GEMM per stream."""
    from diffusers.models.transformers.transformer_qwenimage import QwenDoubleStreamAttnProcessor2_0

    backend = None
    count = 0
    for block in transformer.transformer_blocks:
        attn = block.attn
        backend = getattr(attn.processor, "_attention_backend", backend)
        if enabled:
            if not hasattr(attn, "bench_to_qkv"):
                attn.bench_to_qkv = _fused_linear([attn.to_q, attn.to_k, attn.to_v])
                attn.bench_add_qkv = _fused_linear([attn.add_q_proj, attn.add_k_proj, attn.add_v_proj])
            attn.set_processor(FusedQKVProcessor())
        else:
            attn.set_processor(QwenDoubleStreamAttnProcessor2_0())
            for name in ("bench_to_qkv", "bench_add_qkv"):
                if hasattr(attn, name):
                    delattr(attn, name)
        count += 1
    if backend is not None:
        transformer.set_attention_backend(backend)
    return count


class FusedQKVProcessor:
    """QwenDoubleStreamAttnProcessor2_0 (diffusers 0.42.1) with fused q/k/v projections; the rest is the same."""

    _attention_backend = None
    _parallel_config = None

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, encoder_hidden_states_mask=None,
                 attention_mask=None, image_rotary_emb=None):
        from diffusers.models.attention_dispatch import dispatch_attention_fn
        from diffusers.models.transformers import transformer_qwenimage as qwen

        if encoder_hidden_states_mask is not None:
            seq_img = hidden_states.shape[1]
            image_mask = torch.ones((hidden_states.shape[0], seq_img), dtype=torch.bool, device=hidden_states.device)
            attention_mask = torch.cat([encoder_hidden_states_mask, image_mask], dim=1)[:, None, None, :]
        seq_txt = encoder_hidden_states.shape[1]
        head_dim = attn.inner_dim // attn.heads

        img_query, img_key, img_value = (
            t.unflatten(-1, (-1, head_dim)) for t in attn.bench_to_qkv(hidden_states).chunk(3, dim=-1)
        )
        txt_query, txt_key, txt_value = (
            t.unflatten(-1, (-1, head_dim)) for t in attn.bench_add_qkv(encoder_hidden_states).chunk(3, dim=-1)
        )
        img_query, img_key = attn.norm_q(img_query), attn.norm_k(img_key)
        txt_query, txt_key = attn.norm_added_q(txt_query), attn.norm_added_k(txt_key)
        if image_rotary_emb is not None:
            img_freqs, txt_freqs = image_rotary_emb
            img_query = qwen.apply_rotary_emb_qwen(img_query, img_freqs, use_real=False)
            img_key = qwen.apply_rotary_emb_qwen(img_key, img_freqs, use_real=False)
            txt_query = qwen.apply_rotary_emb_qwen(txt_query, txt_freqs, use_real=False)
            txt_key = qwen.apply_rotary_emb_qwen(txt_key, txt_freqs, use_real=False)

        joint = dispatch_attention_fn(
            torch.cat([txt_query, img_query], dim=1),
            torch.cat([txt_key, img_key], dim=1),
            torch.cat([txt_value, img_value], dim=1),
            attn_mask=attention_mask,
            dropout_p=0.0,
            is_causal=False,
            backend=self._attention_backend,
            parallel_config=self._parallel_config,
        )
        joint = joint.flatten(2, 3).to(img_query.dtype)
        img_out = attn.to_out[0](joint[:, seq_txt:, :].contiguous())
        txt_out = attn.to_add_out(joint[:, :seq_txt, :].contiguous())
        return img_out, txt_out


def gelu_epilogue_flavour(device: str = "cuda") -> dict[str, float]:
    """Which GELU the fused epilogue computes on this device: max |difference| to tanh-GELU and to erf-GELU
    (on CPU torch applies the erf form; on CUDA the cuBLASLt epilogue is expected to be tanh)."""
    import torch.nn.functional as F

    gen = torch.Generator("cpu").manual_seed(0)
    x = (torch.randn(256, 128, generator=gen) * 3).to(device, torch.float32)
    w = torch.randn(192, 128, generator=gen).to(device, torch.float32)
    b = torch.randn(192, generator=gen).to(device, torch.float32)
    fused = torch._addmm_activation(b, x, w.t(), use_gelu=True)
    plain = x @ w.t() + b
    return {"max_abs_vs_tanh": float((fused - F.gelu(plain, approximate="tanh")).abs().max()),
            "max_abs_vs_erf": float((fused - F.gelu(plain)).abs().max())}
