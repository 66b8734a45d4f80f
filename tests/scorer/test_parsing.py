"""The reply parser on replies as real judges write them: a score when one is stated, a failure
with a reason otherwise. Never a guess."""

import math

import pytest

from suites.shared.parsing import parse_reply

SINGLE_OK = [
    ('{"score": 7, "response": "The sky is now red as asked."}', 7, "The sky is now red as asked."),
    ('```json\n{"score": 8, "response": "Good edit."}\n```', 8, "Good edit."),
    ('Here is my evaluation:\n```json\n{\n  "score": 10,\n  "response": "Perfect."\n}\n```\nThanks!', 10, "Perfect."),
    ('{"score": "6", "reasoning": "Partly done."}', 6, "Partly done."),
    ('{"Score": 0, "response": "Nothing changed."}', 0, "Nothing changed."),
    ("{'score': 4, 'response': 'single quotes',}", 4, "single quotes"),
    ("Score: 7/10", 7, None),
    ("**Score:** 9\nThe car is red and nothing else changed.", 9, None),
    ("The edit follows the instruction but the lighting is off. Final score: 6", 6, None),
    ("I would rate this edit 7 out of 10.", 7, None),
    ("The cat has a hat (1 object added, 2 left untouched). Score: 8/10", 8, None),
    ("评分：5", 5, None),
    ("7", 7, None),
    ("7.", 7, None),
    ("6.5", 6.5, None),
    # JSON cut short by max_new_tokens: the score field was written, the rest was not
    ('{"score": 3, "response": "The instruction asked for a sunset but the image shows', 3, None),
    # JSON and prose agree
    ('{"score": 7, "response": "ok"} That is, 7/10.', 7, "ok"),
]


@pytest.mark.parametrize("reply,score,response", SINGLE_OK)
def test_single_score_replies_that_state_a_score(reply, score, response):
    parsed = parse_reply(reply, 1, 0, 10)
    assert parsed.ok, parsed.reason
    assert parsed.scores == [score]
    if response is not None:
        assert parsed.response == response


SINGLE_FAIL = [
    ("", "empty"),
    ("   \n ", "empty"),
    ("The image shows 3 cats and 2 dogs on a beach.", "not a score"),
    ("It is somewhere between 6 and 8, depending on taste.", "not a score"),
    ("I'd say 6/10, maybe 8/10 on a good day.", "ambiguous"),
    ("Score: 6. On reflection, score: 8.", "ambiguous"),
    ('{"score": 7} {"score": 3}', "ambiguous"),
    # a labelled range or alternative is a guess, not a score (the first number is not the answer)
    ("Score: 6-8", "ambiguous"),
    ("Score: 7 or 8", "ambiguous"),
    ("Final score: 6 to 8, depending on taste.", "ambiguous"),
    ("Score: 7/10 (or 8/10 if the lighting counts)", "ambiguous"),
    # the JSON and the prose around it disagree: neither is the answer
    ('{"score": 7, "response": "ok"}\nOn reflection, final score: 3', "ambiguous"),
    ('```json\n{"score": 8}\n```\nI would rather say 5/10.', "ambiguous"),
    # the label's dash separator must not swallow the minus sign
    ("Score -1", "outside"),
    ('{"score": 15, "response": "great"}', "outside"),
    ('{"score": -1, "response": "bad"}', "outside"),
    ("Score: 11/10", "outside"),
    ("Score: 85", "outside"),
    ("Score: 4/5", "another scale"),
    ("I give it 4/5.", "another scale"),
    ('{"score": "high", "response": "nice"}', "not 1 number"),
    ('{"score": [7, 8]}', "not 1 number"),
    ("The edit looks natural and follows the instruction.", "no number"),
    ("Describe us\ufffd),ate\ufffdural>vir>vir", "no number"),
    ("areal6 sky profe", "not a score"),
]


@pytest.mark.parametrize("reply,why", SINGLE_FAIL)
def test_single_score_replies_without_a_clear_score_fail(reply, why):
    parsed = parse_reply(reply, 1, 0, 10)
    assert not parsed.ok
    assert parsed.scores == []
    assert why in parsed.reason


LIST_OK = [
    ('{"score": [7, 8], "reasoning": "The hat was added; little else changed."}', [7, 8]),
    ('```json\n{"score" : [10, 9], "reasoning" : "..."}\n```', [10, 9]),
    ('||V^=^V||\n{"score": [3, 5], "reasoning": "over-edited"}\n||V^=^V||', [3, 5]),
    ("Output score = [6, 4]", [6, 4]),
    ('{"score": ["7", "8"], "reasoning": "strings"}', [7, 8]),
]


@pytest.mark.parametrize("reply,scores", LIST_OK)
def test_viescore_lists(reply, scores):
    parsed = parse_reply(reply, 2, 0, 10)
    assert parsed.ok, parsed.reason
    assert parsed.scores == scores


LIST_FAIL = [
    ('{"score": [7], "reasoning": "one number"}', "not 2 number"),
    ('{"score": [7, 8, 9]}', "not 2 number"),
    ('{"score": [7, 12], "reasoning": "out of range"}', "outside"),
    ("Scores: [6, 4] or maybe [7, 5]", "ambiguous"),
    ("editing success 7, over-editing 8", "no JSON score list"),
    ('{"score": 7, "reasoning": "one number where two are asked"}', "not 2 number"),
]


@pytest.mark.parametrize("reply,why", LIST_FAIL)
def test_viescore_lists_that_fail(reply, why):
    parsed = parse_reply(reply, 2, 0, 10)
    assert not parsed.ok
    assert why in parsed.reason


def test_other_ranges_are_respected():
    assert parse_reply("Score: 4/5", 1, 1, 5).scores == [4]
    assert not parse_reply("Score: 7", 1, 1, 5).ok
    assert not parse_reply('{"score": 0}', 1, 1, 5).ok


def test_no_reply_ever_yields_a_default():
    # whatever the failure, there is no number to misuse downstream
    for reply, _ in SINGLE_FAIL:
        parsed = parse_reply(reply, 1, 0, 10)
        assert parsed.scores == [] and not any(isinstance(v, float) and math.isnan(v) for v in parsed.scores)
