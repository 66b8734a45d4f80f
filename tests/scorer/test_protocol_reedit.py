"""The re-edit protocol: its prompts are RE-Edit's own (rendered as single_scoring_part_vllm does),
each sample is asked its own subset's dimension plus IF and SC with the original and the edited
image in one user message, and replies are read strictly (never a silent "no", never a guess)."""

from __future__ import annotations

import hashlib

import pytest

from scorer_service.parsing import parse_for
from scorer_service.protocol import ProtocolRegistry
from scorer_service.samples import ScoreInput, build_prompts, conversation, prepare

from .conftest import png

DIMENSIONS = ("physical", "environmental", "cultural", "causal", "referential")
VARIABLES = {"edit_instruction": "Put the kettle on the lit stove",
             "original_description": "A kitchen with a cold stove", "rationale": "Steam must rise from the spout"}
# sha256 (first 32 hex digits) of the text single_scoring_part_vllm sends for VARIABLES: the
# prompts of scoring_config.yaml (Yixuan-Ding-ZJU/RE-Edit at 71077d2), system_prompt + "\n\n" +
# format_user_prompt(user_prompt_template, ...), as prompt_manager.build_messages joins them.
OFFICIAL = {
    "physical": "2697244fb5147ed54980d0c936584bb4",
    "environmental": "4e62ed5595b94ef87b4a51b9b3d15821",
    "cultural": "dc174a3b9855a5cd0b2c58914916090b",
    "causal": "9b32c91f3fb0e645d4ddb373fbc025e6",
    "referential": "18d8f2e364e2dbf3ccc52035664d6604",
    "IF": "9fa0058cdc7989ffbc64028589b702b8",       # instruction_following
    "SC": "22e569494e11281f8fdca85814784980",       # sc_metric
}


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@pytest.fixture(scope="module")
def registry():
    return ProtocolRegistry.load()


def test_each_subset_gets_its_dimension_then_if_and_sc_as_re_edit_sends_them(registry):
    source, edited = png(color=(10, 20, 30)), png(color=(200, 100, 0))
    for dimension in DIMENSIONS:
        sample = prepare(ScoreInput(f"s-{dimension}", source, edited, VARIABLES["edit_instruction"], dimension,
                                    "re-edit", {k: v for k, v in VARIABLES.items() if k != "edit_instruction"}),
                         registry)
        prompts = build_prompts([sample])
        assert [p.question.name for p in prompts] == ["dimension", "IF", "SC"]
        assert [digest(p.user) for p in prompts] == [OFFICIAL[dimension], OFFICIAL["IF"], OFFICIAL["SC"]]
        for prompt in prompts:
            (message,) = conversation(prompt)  # one user message, no system role
            assert message["role"] == "user"
            assert [c["type"] for c in message["content"]] == ["image", "image", "text"]
            assert [c["image"].getpixel((0, 0)) for c in message["content"][:2]] == [(10, 20, 30), (200, 100, 0)]
        assert "Task Challenge: Steam must rise from the spout\n" in prompts[0].user
        assert "Steam" not in prompts[1].user and "Steam" not in prompts[2].user
