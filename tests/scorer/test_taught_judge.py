"""The OK path end to end: the tiny judge is taught a few fixed answers (seconds of training),
then served; scores, re-asks, VIEScore's combination and the expected score come back over gRPC."""

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
