"""The judge core without a network: the expected-score definition, batch invariance of left-padded
greedy decoding, and the dummy load format."""

from __future__ import annotations

import pytest
import torch

from scorer_service.backends.transformers import DUMMY_CONFIG_DIR
from scorer_service.judge import Judge
from scorer_service.samples import ScoreInput, prepare
from suites.protocols import load_protocols

from .conftest import png, small_dummy_configs


@pytest.fixture(scope="module")
def judge(tiny_judge_dir):
    return Judge.load(str(tiny_judge_dir), device="cpu", max_new_tokens=12)


@pytest.fixture(scope="module")
def tree(judge):
    seed = load_protocols().get("seed-0-10")
    return judge.backend.trees.tree(seed, seed.questions[0])


def _dist(vocab: int, weights: dict[int, float]) -> torch.Tensor:
    d = torch.zeros(vocab)
    for tok, w in weights.items():
        d[tok] = w
    return d / d.sum()


def test_score_tree_spells_ten_as_one_then_zero(judge, tree):
    tok = judge.backend.tokenizer
    one, zero = tok.convert_tokens_to_ids("1"), tok.convert_tokens_to_ids("0")
    assert tree.paths == [(one,)]  # one forward pass: prompt + prefix + "1"
    assert sorted(tree.root["children"]) == sorted(tok.convert_tokens_to_ids(str(d)) for d in range(10))
    assert list(tree.root["children"][one]["children"]) == [zero]


def test_expected_score_definition(judge, tree):
    tok = judge.backend.tokenizer
    vocab = judge.backend.model.config.text_config.vocab_size
    digit = {d: tok.convert_tokens_to_ids(str(d)) for d in range(10)}
    comma = tok.convert_tokens_to_ids(",")

    def expected(root: dict[int, float], after_one: dict[int, float]) -> float:
        return tree.expected({(): _dist(vocab, root), (digit[1],): _dist(vocab, after_one)})

    assert expected({digit[7]: 1}, {comma: 1}) == pytest.approx(7)
    assert expected({digit[1]: 1}, {digit[0]: 1}) == pytest.approx(10)
    assert expected({digit[1]: 1}, {comma: 1}) == pytest.approx(1)
    # "11".."19" are out of range: excluded, the rest renormalised
    assert expected({digit[1]: 1}, {digit[5]: 0.5, comma: 0.5}) == pytest.approx(1)
    # tokens that are no digit at the score position are excluded too
    assert expected({digit[4]: 0.5, digit[6]: 0.25, comma: 0.25}, {comma: 1}) == pytest.approx((4 * 2 + 6) / 3)
    # uniform first digit, then "1" ends or becomes "10" with even odds
    uniform = {digit[d]: 1 for d in range(10)}
    assert expected(uniform, {digit[0]: 1, comma: 1}) == pytest.approx((45 - 1) / 10 + 0.1 * 5.5)


def _sample(registry, i, size, instruction, category, protocol="seed-0-10"):
    image = png(size, (40 * i % 255, 120, 200))
    return prepare(ScoreInput(f"s{i}", image, image, instruction, category, protocol,
                              {"original_description": "a scene " * i}), registry)


def test_left_padded_batches_decode_like_single_samples(judge):
    registry = load_protocols()
    target = _sample(registry, 1, (64, 64), "make it red", "physical")
    others = [
        _sample(registry, 2, (200, 100), "a much longer instruction, so that this prompt is longer than the first", "causal"),
        _sample(registry, 3, (32, 90), "x", ""),
        _sample(registry, 4, (64, 64), "y", "", "viescore"),
    ]
    alone = judge.score([target])[0]
    batched = judge.score([*others, target])
    assert [o.sample_id for o in batched] == ["s2", "s3", "s4", "s1"]
    assert batched[-1].raw_responses == alone.raw_responses
    assert batched[-1].expected_score == pytest.approx(alone.expected_score, abs=1e-5)


def test_dummy_load_builds_the_qwen3_vl_8b_architecture_from_the_shipped_configs():
    from transformers import AutoConfig, AutoModelForImageTextToText

    config = AutoConfig.from_pretrained(DUMMY_CONFIG_DIR)
    assert (config.text_config.hidden_size, config.text_config.num_hidden_layers) == (4096, 36)
    assert (config.vision_config.depth, config.vision_config.out_hidden_size) == (27, 4096)
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(config)
    params = sum(p.numel() for p in model.parameters())
    assert 8.5e9 < params < 9.0e9  # Qwen3-VL-8B: ~8.77B parameters


def test_dummy_load_format_scores_with_random_weights(tmp_path):
    small_dummy_configs(tmp_path)  # the shipped configs with the model shrunk
    judge = Judge.load(str(tmp_path), load_format="dummy", max_new_tokens=4)
    identity = judge.identity
    assert identity.load_format == "dummy" and identity.model_class == "Qwen3VLForConditionalGeneration"
    import hashlib

    assert identity.content_hash == "dummy:" + hashlib.sha256((tmp_path / "config.json").read_bytes()).hexdigest()
    registry = load_protocols()
    outcome = judge.score([_sample(registry, 1, (64, 64), "make it red", "physical")])[0]
    assert outcome.status == "PARSE_FAILED" and len(outcome.raw_responses) == 2
    assert 0 <= outcome.expected_score <= 10
