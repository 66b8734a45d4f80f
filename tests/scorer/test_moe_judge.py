"""The seed's own judge, Qwen3-VL-30B-A3B (mixture of experts): its shipped random-weight
architecture, static decoding, and experts run as grouped GEMMs, on the tiny MoE judge
(`tools/make_tiny_qwen3_vl.py --moe`: 8 experts, top-2, in each of 2 text layers)."""

from __future__ import annotations

import pytest
import torch

from scorer_service.backends.transformers import EXPERTS_IMPLEMENTATION, NoShippedConfigs
from scorer_service.backends.transformers.loading import build_dummy, dummy_config_dir
from scorer_service.judge import Judge
from suites.protocols import load_protocols
from scorer_service.samples import ScoreInput, build_prompts, prepare

from .conftest import png


def test_the_shipped_30b_a3b_architecture_has_31_07b_parameters_and_grouped_experts():
    net, processor, identity = build_dummy("Qwen/Qwen3-VL-30B-A3B-Instruct", "meta", torch.bfloat16)  # no memory
    assert identity.model_class == "Qwen3VLMoeForConditionalGeneration" and identity.load_format == "dummy"
    text = net.config.text_config
    assert (text.num_hidden_layers, text.hidden_size, text.num_experts, text.num_experts_per_tok,
            text.moe_intermediate_size, text.num_attention_heads, text.num_key_value_heads, text.head_dim) == \
        (48, 2048, 128, 8, 768, 32, 4, 128)
    assert (net.config.vision_config.depth, net.config.vision_config.out_hidden_size) == (27, 2048)
    assert round(sum(p.numel() for p in net.parameters()) / 1e9, 2) == 31.07
    experts = net.model.language_model.layers[0].mlp.experts
    assert tuple(experts.gate_up_proj.shape) == (128, 2 * 768, 2048)
    assert text._experts_implementation == EXPERTS_IMPLEMENTATION == "grouped_mm"
    assert processor.tokenizer is not None
    # the short name loads the same configs; a name without configs is refused naming those there are
    assert dummy_config_dir("qwen3-vl-30b-a3b") == dummy_config_dir("Qwen/Qwen3-VL-30B-A3B-Instruct")
    with pytest.raises(NoShippedConfigs, match="Qwen/Qwen3-VL-30B-A3B-Instruct"):
        build_dummy("Qwen/Qwen3-VL-999B", "meta", torch.bfloat16)


@pytest.fixture(scope="module")
def samples():
    registry = load_protocols()
    shapes = [((64, 64), "make it red"), ((200, 100), "a much longer instruction, so that this prompt is longer"),
              ((32, 90), "x"), ((48, 48), "make it blue"), ((64, 32), "turn it upside down")]
    return [prepare(ScoreInput(f"s{i}", png(size, (40 * i % 255, 120, 200)), png(size, (9, 9, 9)), instruction,
                               "physical", "seed-0-10", {"original_description": "a scene " * i}), registry)
            for i, (size, instruction) in enumerate(shapes)]


@pytest.fixture
def grouped_mm_calls(monkeypatch):
    """Rows of every torch grouped GEMM the experts run (transformers calls torch.nn.functional.grouped_mm)."""
    calls: list[int] = []
    original = torch.nn.functional.grouped_mm

    def counted(mat_a, mat_b, *args, **kwargs):
        calls.append(mat_a.shape[0])
        return original(mat_a, mat_b, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "grouped_mm", counted)
    return calls


def test_static_decoding_of_the_moe_judge_gives_the_dynamic_replies_on_grouped_experts(tiny_moe_judge_dir, samples,
                                                                                       grouped_mm_calls):
    new_tokens = 12
    dynamic = Judge.load(str(tiny_moe_judge_dir), device="cpu", max_new_tokens=new_tokens, decode="dynamic")
    static = Judge.load(str(tiny_moe_judge_dir), device="cpu", max_new_tokens=new_tokens, decode="static",
                        prefill_batch=2)  # a batch of 5 from chunks of 2, 2 and 1 prompts, each padded to its own
    for judge in (dynamic, static):
        judge.max_attempts = 1
    assert static.identity.runtime["decode"] == "static" and static.identity.runtime["experts"] == "grouped_mm"
    assert static.identity.runtime["expected_score"] == "shared_prefill"
    prompts = build_prompts(samples)
    replies = dynamic.backend.generate(prompts)
    assert len(set(replies)) > 1  # the tiny judge's replies depend on the prompt, so a wrong position shows
    grouped_mm_calls.clear()
    assert static.backend.generate(prompts) == replies
    layers = len(static.backend.model.model.language_model.layers)
    # 2 grouped GEMMs (gate_up, down) per MoE layer per forward: 3 prefill chunks + one per decode step
    assert len(grouped_mm_calls) >= 2 * layers * (3 + new_tokens // 2)
    # the decode steps' GEMMs take the whole batch's rows at once: 5 tokens x top-2 experts
    assert grouped_mm_calls.count(len(prompts) * 2) >= 2 * layers * (new_tokens // 2)
    by_dynamic, by_static = dynamic.score(samples), static.score(samples)
    assert [o.raw_responses for o in by_static] == [o.raw_responses for o in by_dynamic]
    assert [o.expected_score for o in by_static] == pytest.approx([o.expected_score for o in by_dynamic], abs=1e-5)


def test_grouped_experts_compute_what_the_loop_over_experts_does(tiny_moe_judge_dir, samples, grouped_mm_calls):
    judge = Judge.load(str(tiny_moe_judge_dir), device="cpu", max_new_tokens=2, decode="dynamic")
    model = judge.backend.model
    inputs = judge.backend.inputs(build_prompts(samples[:3]))
    with torch.inference_mode():
        grouped = model(**inputs, use_cache=False).logits
        assert grouped_mm_calls
        model.set_experts_implementation("eager")  # transformers' loop over the experts hit
        calls = len(grouped_mm_calls)
        loop = model(**inputs, use_cache=False).logits
        assert len(grouped_mm_calls) == calls
    assert torch.allclose(grouped, loop, atol=1e-5, rtol=1e-4)
