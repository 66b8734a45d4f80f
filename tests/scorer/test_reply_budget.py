"""One max_new_tokens rule for both judge backends (issue 26 item 6, settings.reply_budget): the budget
the run names, else the protocol's own (its file's `max_new_tokens:`), else 128. The local judge cuts
each reply of a batch at its own budget (a batch of two protocols decodes to the larger one); the API
judge sends each prompt's budget as max_tokens."""

from __future__ import annotations

import dataclasses

import pytest

from editfleet_common.settings import DEFAULT_MAX_NEW_TOKENS, MAX_NEW_TOKENS, reply_budget
from scorer_service.judge import Judge
from scorer_service.samples import ScoreInput, build_prompts, prepare
from suites.protocols import load_protocols

from .conftest import png


def test_the_rule():
    assert reply_budget(None, None) == DEFAULT_MAX_NEW_TOKENS == 128
    assert reply_budget(None, 1000) == 1000  # the protocol's own (KRIS-Bench's scripts ask for 1000)
    assert reply_budget(64, 1000) == 64  # the run's, whatever the protocol says
    assert reply_budget(300, None) == 300
    assert MAX_NEW_TOKENS.service_default is None  # a judge given no --max-new-tokens follows each protocol


def _prompts(budgets: list[int | None]):
    """One seed-0-10 prompt per budget, its protocol carrying that budget."""
    registry = load_protocols()
    prompts = []
    for i, budget in enumerate(budgets):
        image = png((64, 48), (40 * i, 120, 200))
        sample = prepare(ScoreInput(f"s{i}", image, image, f"make it red {i}", "physical", "seed-0-10",
                                    {"original_description": "a scene"}), registry)
        prompt = build_prompts([sample])[0]
        prompts.append(dataclasses.replace(prompt, protocol=dataclasses.replace(prompt.protocol, max_new_tokens=budget)))
    return prompts


@pytest.mark.parametrize("decode", ["dynamic", "static"])
def test_a_local_judge_cuts_each_reply_at_its_budget(tiny_judge_dir, decode):
    judge = Judge.load(str(tiny_judge_dir), device="cpu", decode=decode)  # no --max-new-tokens
    backend = judge.backend
    prompts = _prompts([3, None, 7])
    assert backend.budgets(prompts) == [3, 128, 7]
    # the reference: the whole batch decoded to 128 tokens by transformers' generate, rows cut by hand
    inputs = backend.inputs(prompts)
    full = backend.model.generate(**inputs, generation_config=backend.generation_config)[:, inputs["input_ids"].shape[1]:]
    assert full.shape[1] > 7  # the tiny judge does not stop early here: the cut is what shortens a reply

    def text(row, n):
        return backend.tokenizer.decode(full[row, :n], skip_special_tokens=True)

    before = backend.generated_tokens
    assert backend.generate(prompts) == [text(0, 3), text(1, 128), text(2, 7)]
    pad = backend.generation_config.pad_token_id
    assert backend.generated_tokens - before == 3 + int((full[1] != pad).sum()) + 7
    # a budget the run names wins over every protocol's
    backend.max_new_tokens = 5
    assert backend.budgets(prompts) == [5, 5, 5]
    assert backend.generate(prompts) == [text(0, 5), text(1, 5), text(2, 5)]


def test_an_api_judge_sends_each_prompts_budget():
    from scorer_service.backends.openai_api import ApiSettings, OpenAIBackend

    def sent(named):
        backend = OpenAIBackend(ApiSettings(base_url="http://127.0.0.1:9/v1", model="m", api_key_env="",
                                            max_new_tokens=named))
        budgets = []
        backend._request = lambda messages, logprobs, max_tokens: budgets.append(max_tokens)  # where it goes out
        for prompt in _prompts([1000, None]):
            backend._answer(prompt, False)
        return budgets, backend.identity.runtime.get("max_new_tokens")

    assert sent(None) == ([1000, 128], None)  # each protocol's own; no one budget to report
    assert sent(64) == ([64, 64], "64")  # the run's, for every protocol (once the protocol's won here)
