"""One prefill per prompt and the static-cache decode, against the computation they replace:
`generate` with its own prefill over the whole prompt, and the expected score from a full forward
over prompt + prefix + path without a cache. Prompts of different lengths (left padding), images
of different sizes (different rope deltas), two score trees (two prefixes; 1-20 needs two paths)
and a protocol without an expected score, all in one batch."""

from __future__ import annotations

import pytest

from scorer_service.backends.transformers.decoding import FINISHED_CHECK_EVERY
from scorer_service.judge import Judge
from scorer_service.samples import ScoreInput, build_prompts, prepare
from suites.protocols import load_protocols

from .conftest import png

# fp32 on CPU: the shared prefill differs from the reference by ~1e-7; a position off by one token
# moves the tiny judge's expected score by ~1e-3, a missing rope delta by ~5e-3.
TOLERANCE = 1e-5


# a second score tree: another prefix, and 1-20 has two internal nodes ("1" and "2": two fed paths)
WIDE_PROTOCOL = """
name: wide
description: "test: one 1-20 score"
range: [1, 20]
combine: single
strict_suffix: "Strict."
questions:
  score:
    images: [source, edited]
    scores: [score]
    expected_score_prefix: 'Score: '
    user: "Edit: {edit_instruction}. Reply as Score: <1-20>."
"""


def _sample(registry, i, size, instruction, category, protocol="seed-0-10"):
    image = png(size, (40 * i % 255, 120, 200))
    return prepare(ScoreInput(f"s{i}", image, image, instruction, category, protocol,
                              {"original_description": "a scene " * i}), registry)


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    protocols = tmp_path_factory.mktemp("protocols")
    (protocols / "wide.yaml").write_text(WIDE_PROTOCOL)
    registry = load_protocols([protocols])
    return [
        _sample(registry, 1, (64, 64), "make it red", "physical"),
        _sample(registry, 2, (200, 100), "a much longer instruction, so that this prompt is longer than the others",
                "causal"),
        _sample(registry, 3, (32, 90), "x", ""),
        _sample(registry, 4, (64, 64), "y", "", "viescore"),  # two questions, no expected score
        _sample(registry, 5, (48, 48), "make it blue", "", "wide"),
    ]


def _judge(model_dir, decode: str) -> Judge:
    # static: prompts prefilled two at a time, so that one batch's rows come from chunks of different
    # lengths (left padded each to its own) into one cache, and a batch of 5 ends with a chunk of 1
    judge = Judge.load(str(model_dir), device="cpu", max_new_tokens=12, decode=decode, prefill_batch=2)
    judge.max_attempts = 1  # first attempts only: those are what the shared prefill serves
    return judge


@pytest.fixture(scope="module")
def reference(tiny_judge_dir, samples):
    judge = _judge(tiny_judge_dir, "dynamic")
    prompts = build_prompts(samples)
    texts = judge.backend.generate(prompts)  # generate's own prefill, transformers' default cache
    expected = judge.backend.reference_expected_scores(prompts)  # one full forward per tree path
    by_sample = []
    for index in range(len(samples)):
        mine = [i for i, p in enumerate(prompts) if p.sample_index == index]
        by_sample.append(([texts[i] for i in mine], expected.get(mine[0])))
    assert by_sample[0][1] is not None and by_sample[3][1] is None and by_sample[4][1] is not None
    assert len(judge.backend.trees.tree(samples[4].protocol, samples[4].protocol.questions[0]).paths) == 2
    return prompts, texts, by_sample


@pytest.mark.parametrize("decode", ["dynamic", "static"])
def test_one_prefill_gives_the_replies_and_expected_scores_of_the_separate_passes(tiny_judge_dir, samples,
                                                                                  reference, decode):
    prompts, texts, by_sample = reference
    judge = _judge(tiny_judge_dir, decode)
    assert judge.identity.runtime["decode"] == decode
    assert judge.identity.runtime["expected_score"] == "shared_prefill"

    vision_calls = []
    hook = judge.backend.model.model.visual.register_forward_hook(lambda *_: vision_calls.append(1))
    try:
        outcomes = judge.score(samples)
    finally:
        hook.remove()
    # one prefill for replies and expected scores (before: one each); static: one per chunk of 2 prompts
    assert len(vision_calls) == (1 if decode == "dynamic" else 3)
    assert [o.status for o in outcomes] == ["PARSE_FAILED"] * 5, [o.error for o in outcomes]  # none fell back to ERROR
    for outcome, (replies, expected) in zip(outcomes, by_sample):
        assert outcome.raw_responses == replies
        if expected is None:
            assert outcome.expected_score is None
        else:
            assert outcome.expected_score == pytest.approx(expected, abs=TOLERANCE)

    # another batch size (static: a second cache), then the first again (static: the reused cache, reset)
    again = judge.score(samples[1:3])
    assert [o.raw_responses for o in again] == [r for r, _ in by_sample[1:3]]
    assert [o.expected_score for o in again] == pytest.approx([e for _, e in by_sample[1:3]], abs=TOLERANCE)
    assert [o.raw_responses for o in judge.score(samples)] == [r for r, _ in by_sample]
    # the re-ask path: generate alone, with this judge's cache
    assert judge.backend.generate(prompts) == texts


def test_static_decode_is_recorded_with_no_graphs_on_cpu(tiny_judge_dir):
    judge = Judge.load(str(tiny_judge_dir), device="cpu", max_new_tokens=4, decode="static")
    assert judge.identity.runtime == {"decode": "static", "decode_graphs": "none", "decode_attention": "grouped_sdpa",
                                      "prefill_batch": "32", "expected_score": "shared_prefill"}
    with pytest.raises(ValueError, match="decode mode"):
        Judge.load(str(tiny_judge_dir), device="cpu", decode="paged")


def test_auto_decoding_is_static_for_a_qwen3_vl_judge_bound_for_cuda_and_dynamic_on_cpu(tiny_judge_dir):
    on_cpu = Judge.load(str(tiny_judge_dir), device="cpu")
    assert on_cpu.backend.decode == "dynamic" and on_cpu.identity.runtime["decode"] == "dynamic"
    assert on_cpu.batches_in_flight == 1
    # staged in host memory for a CUDA device: nothing touches the device before move_to_device()
    bound_for_cuda = Judge.load(str(tiny_judge_dir), device="cuda:0", stage_on_host=True)
    assert bound_for_cuda.backend.decode == "static" and bound_for_cuda.batches_in_flight == 2
    assert bound_for_cuda.identity.runtime["decode_graphs"] == "cuda"


def test_static_decode_stops_at_eos_pads_finished_rows_and_honours_min_new_tokens(tiny_judge_dir, samples):
    """Rows that finish early: pad after their EOS, as generate pads them. The tiny judge's first greedy
    tokens become its EOS tokens here, so every row ends at once unless min_new_tokens holds it back."""
    from copy import deepcopy

    dynamic, static = _judge(tiny_judge_dir, "dynamic"), _judge(tiny_judge_dir, "static")
    prompts = build_prompts(samples[:3])
    inputs = dynamic.backend.inputs(prompts)
    first = dynamic.backend.model.generate(**inputs, generation_config=dynamic.backend.generation_config)[:, inputs["input_ids"].shape[1]]
    for judge in (dynamic, static):
        judge.backend.generation_config = deepcopy(judge.backend.generation_config)
        judge.backend.generation_config.eos_token_id = [int(t) for t in first.unique()]
    # each row: its EOS (an ordinary token here, so it shows in the text), then pads (skipped)
    ended_at_once = dynamic.backend.tokenizer.batch_decode(first[:, None])
    assert dynamic.backend.generate(prompts) == static.backend.generate(prompts) == ended_at_once
    decoder = next(reversed(static.backend.decoders.idle.values()))[-1]  # the one just used
    assert int(decoder.step) == FINISHED_CHECK_EVERY < 12  # stopped at the first check, not after max_new_tokens
    for judge in (dynamic, static):
        judge.backend.generation_config.min_new_tokens = 5
    held = static.backend.generate(prompts)
    assert held == dynamic.backend.generate(prompts)
    assert all(len(h) > len(e) for h, e in zip(held, ended_at_once))


def test_grouped_decode_attention_equals_repeated_kv_heads():
    """One query token over grouped KV heads with a padding mask: the grouped layout gives what
    transformers' SDPA path (KV heads repeated per query head) gives."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from scorer_service.backends.transformers.decoding import grouped_decode_attention

    class Attention(torch.nn.Module):
        num_key_value_groups = 4
        is_causal = True

    gen = torch.Generator().manual_seed(0)
    batch, kv_heads, length, dim = 3, 2, 17, 8
    query = torch.randn(batch, kv_heads * 4, 1, dim, generator=gen)
    key, value = (torch.randn(batch, kv_heads, length, dim, generator=gen) for _ in range(2))
    mask = torch.ones(batch, 1, 1, length, dtype=torch.bool)
    mask[0, ..., :5] = False  # left padding
    mask[2, ..., 9:] = False  # unused static cache positions
    module = Attention()
    got, _ = grouped_decode_attention(module, query, key, value, mask, scaling=dim ** -0.5)
    want, _ = sdpa_attention_forward(module, query, key, value, mask, scaling=dim ** -0.5)
    assert got.shape == want.shape == (batch, 1, kv_heads * 4, dim)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    # a wrong head order (query head h with KV head h % kv_heads) would differ
    crossed, _ = sdpa_attention_forward(module, query.view(batch, 4, kv_heads, 1, dim).transpose(1, 2)
                                        .reshape(batch, 4 * kv_heads, 1, dim), key, value, mask, scaling=dim ** -0.5)
    assert not torch.allclose(got, crossed, atol=1e-3)


def test_forwards_run_on_the_device_thread_and_static_decoding_on_the_decode_thread(tiny_judge_dir, samples):
    """Whichever thread calls: every forward of the model on the judge's device thread (one order
    for the device), the static decode steps on its decode thread (so the next batch can prefill)."""
    import threading

    judge = _judge(tiny_judge_dir, "static")
    model_threads, text_threads = set(), set()
    hooks = [judge.backend.model.register_forward_pre_hook(lambda *_: model_threads.add(threading.current_thread().name)),
             judge.backend.model.model.language_model.register_forward_pre_hook(
                 lambda *_: text_threads.add(threading.current_thread().name.split("_")[0]))]
    try:
        judge.warm_up(samples[0])
        other = threading.Thread(target=lambda: judge.score(samples[:2]), name="batcher-like")
        other.start()
        other.join()
    finally:
        for hook in hooks:
            hook.remove()
    assert len(model_threads) == 1 and next(iter(model_threads)).startswith("judge-device"), model_threads
    assert text_threads == {"judge-device", "judge-decode"}, text_threads


def test_overlapping_batches_get_the_answers_they_get_one_at_a_time(tiny_judge_dir, samples, reference):
    """Two batches scored at once from two threads, as the service's batcher runs them with static
    decoding (one prefilled while the other decodes, two caches of one size): the same replies and
    expected scores as alone, each batch its own."""
    import threading

    _, _, by_sample = reference
    judge = _judge(tiny_judge_dir, "static")
    assert judge.batches_in_flight == 2
    halves = [samples[:2], samples[2:4]]  # the same batch size: both checked out at once
    results: dict[int, list] = {}
    for _ in range(3):
        threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, judge.score(halves[k])))
                   for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = results[0] + results[1]
        assert [o.raw_responses for o in got] == [r for r, _ in by_sample[:4]]
        assert [o.expected_score for o in got] == pytest.approx([e for _, e in by_sample[:4]], abs=TOLERANCE)
    assert judge.ready_for_next()
    # other batch sizes after the pair: idle decoders reused or evicted, never more than two kept
    for size in (1, 3, 2, 1):
        assert [o.raw_responses for o in judge.score(samples[:size])] == [r for r, _ in by_sample[:size]]
        idle = judge.backend.decoders.idle
        assert judge.backend.decoders.busy == 0 and all(idle.values()) and sum(map(len, idle.values())) <= 2, idle


@pytest.mark.parametrize("decode", ["dynamic", "static"])
def test_a_batch_out_of_device_memory_is_retried_in_halves(tiny_judge_dir, samples, reference, decode):
    """A batch too large for the device (here: the tiny judge raises torch's OutOfMemoryError for any
    forward over more than 2 prompts, standing in for a small card) is split in halves until it
    fits, and every sample still gets its own answer, not an ERROR."""
    import torch

    _, _, by_sample = reference
    judge = _judge(tiny_judge_dir, decode)
    judge.backend.prefill_batch = 8  # static: the whole batch in one prefill forward
    rows_seen = []

    def small_card(_module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        rows_seen.append(ids.shape[0])
        if ids.shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (test: more than 2 prompts)")

    hook = judge.backend.model.register_forward_pre_hook(small_card, with_kwargs=True)
    try:
        outcomes = judge.score(samples)
    finally:
        hook.remove()
    assert [o.status for o in outcomes] == ["PARSE_FAILED"] * 5, [o.error for o in outcomes]
    assert [o.raw_responses for o in outcomes] == [r for r, _ in by_sample]
    assert [o.expected_score for o in outcomes] == pytest.approx([e for _, e in by_sample], abs=TOLERANCE)
    # 5 samples (6 prompts: viescore asks 2) -> 2 + 3 samples (2 + 4 prompts) -> ...: halves, not singles
    assert rows_seen[0] == 6 and 4 in rows_seen

