"""The re-edit protocol: its prompts are RE-Edit's own (rendered as single_scoring_part_vllm does),
each sample is asked its own subset's dimension plus IF and SC with the original and the edited
image in one user message, and replies are read strictly (never a silent "no", never a guess)."""

from __future__ import annotations

import hashlib

import pytest

from suites.shared.parsing import parse_for
from suites.protocols import load_protocols
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
    return load_protocols()


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


def test_replies_are_read_strictly_where_re_edit_guesses_or_drops(registry):
    """output_parser.py + statistics_calculator.py would count the first three as not-yes (in the
    denominator) and keep IF 12 and "8/10"; here each is a failure with its reason (then re-asked,
    then PARSE_FAILED), never a silent "no" or a guess."""
    proto = registry.get("re-edit")
    dimension, if_q, sc_q = proto.questions

    def parse(question, text):
        return parse_for(proto.parser_name(question))(text, len(question.scores), proto.low, proto.high)

    assert parse(dimension, '{\n"score" : "yes",\n"reasoning" : "the steam rises"\n}').scores == [1.0]
    assert parse(dimension, '```json\n{"score": "No", "reasoning": "no steam"}\n```').scores == [0.0]
    for text in ('{"score": "borderline", "reasoning": "unsure"}', "It looks plausible.",
                 '{"score": "yes"} or rather {"score": "no"}'):
        assert not parse(dimension, text).ok, text
    assert parse(if_q, '{\n"score": 7,\n"reason": "one extra edit"\n}').scores == [7.0]
    assert "outside [0, 10]" in parse(if_q, '{"score": 12, "reason": "great"}').reason
    assert parse(sc_q, '{\n"score" : [8, 3],\n"reasoning" : "over-edited"\n}').scores == [8.0, 3.0]
    assert not parse(sc_q, '{"score": [8], "reasoning": "one number"}').ok
    # the combination: the dimension's answer is the headline; SC the mean of its two (and SC_min)
    headline, subs = proto.combine_scores({"dimension": [1.0], "IF": [7.0], "SC": [8.0, 3.0]})
    assert headline == 1.0
    assert subs == [("yes", 1.0), ("IF", 7.0), ("SC.editing_success", 8.0), ("SC.overediting", 3.0),
                    ("SC", 5.5), ("SC_min", 3.0)]


def test_a_re_edit_protocol_without_its_three_questions_is_refused(registry, tmp_path):
    from pathlib import Path

    from suites.shared.protocol import ProtocolError

    from suites.protocols import parse_protocol

    text = Path(registry.get("re-edit").path).read_text(encoding="utf-8")
    broken = text.replace("  SC:\n", "  SC2:\n", 1).replace("name: re-edit", "name: broken", 1)
    with pytest.raises(ProtocolError, match="combine 're-edit' needs questions dimension .yes-no., IF"):
        parse_protocol(broken, tmp_path / "broken.yaml")
