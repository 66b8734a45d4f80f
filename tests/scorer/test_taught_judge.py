"""The OK path end to end: the tiny judge is taught a few fixed answers (seconds of training),
then served; scores, re-asks, VIEScore's combination, the expected score and a sample with one
unreadable question (PARSE_FAILED, its other questions' values kept) come back over gRPC."""

from __future__ import annotations

import math

import pytest

from scorer_service.client import ScorerClient, make_request, status_name
from scorer_service.samples import ScoreInput

from .conftest import TEST_PROTOCOLS, png, start_scorer
from .scripted_judge import teach

SOURCE = png((64, 64), (200, 30, 30))
EDITED = png((48, 64), (30, 30, 200))
INSTRUCTION = "make it blue"


def lesson(category, protocol, answers, strict=False):
    return (ScoreInput("lesson", SOURCE, EDITED, INSTRUCTION, category, protocol, {}), strict, answers)


LESSONS = [
    lesson("physical", "mini-seed", {"score": '{"score": 10, "response": "fine"}'}),
    lesson("environmental", "mini-seed", {"score": '{"score": 7, "response": "good"}'}),
    # first answer unreadable; asked again with the strict suffix, it answers
    lesson("causal", "mini-seed", {"score": "I cannot tell."}),
    lesson("causal", "mini-seed", {"score": '{"score": 3, "response": "meh"}'}, strict=True),
    lesson("", "mini-vie", {"SC": '{"score": [7, 8], "reasoning": "ok"}', "PQ": '{"score": [9, 6], "reasoning": "ok"}'}),
    # RE-Edit's three questions: the IF reply is unreadable, asked again, and unreadable again
    lesson("", "mini-reedit", {"dimension": '{"score": "yes", "reasoning": "ok"}', "IF": "I cannot tell.",
                               "SC": '{"score": [8, 3], "reasoning": "ok"}'}),
    lesson("", "mini-reedit", {"dimension": "-", "IF": "Still unsure.", "SC": "-"}, strict=True),
]


@pytest.fixture(scope="module")
def taught_scorer(tiny_judge_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("taught-judge")
    loss = teach(tiny_judge_dir, out, LESSONS, protocol_dirs=[TEST_PROTOCOLS])
    assert loss < 0.05, f"the tiny judge did not learn its lines (loss {loss:.3f})"
    process = start_scorer(out, tmp_path_factory.mktemp("logs") / "scorer.log", "--max-new-tokens", "24")
    yield process
    process.stop(grace=20)


def request(sample_id, category, protocol):
    return make_request(sample_id, source_image=SOURCE, edited_image=EDITED, instruction=INSTRUCTION,
                        category=category, protocol=protocol)


def test_scores_and_expected_scores(taught_scorer):
    with ScorerClient(taught_scorer.address) as client:
        results = {r.sample_id: r for r in client.score_many(
            [request("ten", "physical", "mini-seed"), request("seven", "环境", "mini-seed")], timeout=120)}
    ten, seven = results["ten"], results["seven"]
    assert status_name(ten) == "OK" and ten.score == 10 and ten.response == "fine" and ten.attempts == 1
    assert list(ten.raw_responses) == ['{"score": 10, "response": "fine"}']
    assert status_name(seven) == "OK" and seven.score == 7 and seven.response == "good"
    # "10" is two tokens ("1", "0"): the expected score must follow both to land near 10
    assert ten.expected_score > 9.0
    assert seven.expected_score == pytest.approx(7.0, abs=0.5)


def test_an_unreadable_first_answer_is_asked_again_once(taught_scorer):
    with ScorerClient(taught_scorer.address) as client:
        result = client.score(request("reask", "因果", "mini-seed"), timeout=120)
    assert status_name(result) == "OK"
    assert result.score == 3 and result.attempts == 2
    assert list(result.raw_responses) == ["I cannot tell.", '{"score": 3, "response": "meh"}']
    assert result.HasField("expected_score")


def test_viescore_combination(taught_scorer):
    with ScorerClient(taught_scorer.address) as client:
        result = client.score(request("vie", "", "mini-vie"), timeout=120)
    assert status_name(result) == "OK", result.error
    subs = {s.name: s.value for s in result.sub_scores}
    assert subs == {
        "SC.editing_success": 7, "SC.over_editing": 8, "PQ.naturalness": 9, "PQ.artifacts": 6,
        "SC": 7, "PQ": 6, "O": pytest.approx(math.sqrt(42)),
    }
    assert result.score == pytest.approx(math.sqrt(42))
    assert len(result.raw_responses) == 2 and result.attempts == 1


def test_a_question_that_fails_keeps_the_others_values_but_fails_the_sample(taught_scorer):
    with ScorerClient(taught_scorer.address) as client:
        result = client.score(request("partial", "", "mini-reedit"), timeout=120)
    assert status_name(result) == "PARSE_FAILED" and not result.HasField("score")
    assert result.error.startswith("IF: ")  # only IF failed, named
    # every raw reply kept: dimension, IF and its re-ask, SC (in question order)
    assert list(result.raw_responses) == ['{"score": "yes", "reasoning": "ok"}', "I cannot tell.", "Still unsure.",
                                          '{"score": [8, 3], "reasoning": "ok"}']
    # the questions that parsed keep their values, under names no judged sample has; nothing for IF
    assert {s.name: s.value for s in result.sub_scores} == {
        "parsed.yes": 1.0, "parsed.SC.editing_success": 8.0, "parsed.SC.overediting": 3.0, "parsed.SC": 5.5,
        "parsed.SC_min": 3.0}
