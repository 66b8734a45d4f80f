"""What suites' protocols need beyond source + edited: several input images and reference images,
questions asked only of some samples (`when`), text variables, yes/no answers with P(yes) as the
expected score, a parser per question; through a real scorer on loopback where it matters."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from editfleet_common.errors import InvalidInput
from scorer_service.backends.openai_api import expected_from_logprobs
from scorer_service.client import ScorerClient
from scorer_service.expected_score import build_tree
from suites.shared.parsing import parse_yes_no
from suites.shared.protocol import ProtocolError
from suites.protocols import load_protocols, parse_protocol
from scorer_service.samples import ScoreInput, build_prompts, prepare

from .conftest import TEST_PROTOCOLS, png

RED, GREEN, BLUE, GREY = (200, 0, 0), (0, 200, 0), (0, 0, 200), (90, 90, 90)


@pytest.fixture(scope="module")
def registry():
    return load_protocols([TEST_PROTOCOLS])


def _colours(images):
    return [img.getpixel((0, 0)) for img in images]


def _input(sample_id="s", category="", variables=None, more=(), refs=(), **kw):
    return ScoreInput(sample_id, png(color=RED), png(color=GREY), "make it blue", category, "mini-yesno",
                      dict(variables or {}), more_source_images=list(more), reference_images=list(refs), **kw)


def test_questions_are_asked_only_where_their_when_holds(registry):
    plain = prepare(_input(), registry)
    assert [q.name for q in plain.questions] == ["follows"]
    with_ref = prepare(_input(refs=[png(color=BLUE)]), registry)
    assert [q.name for q in with_ref.questions] == ["follows", "matches_reference"]
    physics = prepare(_input(category="physics", variables={"explanation": "ice melts"}), registry)
    assert [q.name for q in physics.questions] == ["follows", "knowledge"]
    free = prepare(_input(category="physics", variables={"free": "true"}), registry)
    assert [q.name for q in free.questions] == ["follows"]  # and `explanation` is then not needed
    with pytest.raises(InvalidInput, match="explanation"):  # asked, so its variable is required
        prepare(_input(category="physics"), registry)
    prompts = build_prompts([plain, physics])
    assert [(p.sample_index, p.question.name) for p in prompts] == [(0, "follows"), (1, "follows"), (1, "knowledge")]
    assert "ice melts" in prompts[2].user


def test_image_roles_give_every_input_and_reference_in_order(registry):
    sample = prepare(_input(more=[png(color=GREEN)], refs=[png(color=BLUE), png(color=GREEN)]), registry)
    follows, reference = build_prompts([sample])
    assert _colours(follows.images) == [RED, GREEN, GREY]          # sources, then the edit
    assert _colours(reference.images) == [GREY, BLUE, GREEN]       # the edit, then the references
    with pytest.raises(InvalidInput, match="reference_images\\[0\\]"):  # every sent image is decoded
        prepare(_input(refs=[b"not an image"]), registry)
    with pytest.raises(InvalidInput, match="more_source_images: given without source_image"):
        prepare(ScoreInput("x", b"", png(), "i", "", "mini-yesno", more_source_images=[png()]), registry)


def test_a_question_that_shows_a_missing_image_is_invalid_naming_the_field(tmp_path):
    (tmp_path / "needs-ref.yaml").write_text(
        "name: needs-ref\nrange: [0, 1]\nquestions: {q: {images: [reference, edited], answer: yes-no, user: x}}")
    with pytest.raises(InvalidInput, match="reference_images: missing .*question 'q'"):
        prepare(ScoreInput("x", png(), png(), "i", "", "needs-ref"), load_protocols([tmp_path]))


@pytest.mark.parametrize("reply, expected", [
    ('{"score": "yes", "reasoning": "blue now"}', 1.0),
    ('```json\n{"score": "No", "reasoning": "still red"}\n```', 0.0),
    ("yes", 1.0), ("No.", 0.0), ('"yes"', 1.0),
    ('{"score": "yes"} and again {"score": "yes"}', 1.0),
])
def test_yes_no_answers(reply, expected):
    parsed = parse_yes_no(reply)
    assert parsed.ok and parsed.scores == [expected]


@pytest.mark.parametrize("reply, reason", [
    ('{"score": "maybe"}', "not yes or no"),
    ('{"score": "yes"} {"score": "no"}', "both yes and no"),
    ("I think the answer is yes", "not just yes or no"),
    ('{"score": 1}', "not yes or no"),
    ("", "empty"),
])
def test_yes_no_replies_that_are_no_verdict_fail_with_a_reason(reply, reason):
    parsed = parse_yes_no(reply)
    assert not parsed.ok and reason in parsed.reason


def test_protocol_files_with_bad_new_keys_are_refused_naming_the_key(tmp_path):
    cases = {
        "when: {sometimes: [x]}": "when: a mapping of categories",
        "when: {equals: [x]}": "when.equals: a mapping variable -> value",
        "answer: maybe": "answer must be one of number, yes-no",
        "parse: telepathy": "unknown parse 'telepathy'",
        "images: [sources, hints]": "images must be a non-empty list",
    }
    for i, (line, message) in enumerate(cases.items()):
        path = tmp_path / f"p{i}.yaml"
        text = f"name: p{i}\nquestions:\n  q:\n    user: x\n    {line}\n"
        with pytest.raises(ProtocolError, match=message):
            parse_protocol(text, path)
    vie = "name: v\ncombine: viescore\nquestions: {SC: {user: x, when: {has: [reference]}}, PQ: {user: y}}"
    with pytest.raises(ProtocolError, match="SC and PQ, both always asked"):
        parse_protocol(vie, tmp_path / "v.yaml")


def test_a_question_may_name_its_own_parser(tmp_path):
    text = ("name: mixed\nrange: [0, 5]\ncombine: mean\nparse: labelled-lines\nquestions:\n"
            "  a: {user: x, scores: [Quality]}\n  b: {user: y, parse: json}\n  c: {user: z, answer: yes-no}\n")
    protocol = parse_protocol(text, tmp_path / "mixed.yaml")
    assert [protocol.parser_name(q) for q in protocol.questions] == ["labelled-lines", "json", "yes-no"]
    assert protocol.combine_scores({"a": [4.0], "c": [1.0]}) == (2.5, [("a", 4.0), ("c", 1.0)])


def test_expected_yes_is_p_yes_renormalised_over_yes_and_no(tiny_judge_dir, registry):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_judge_dir))
    protocol = registry.get("mini-yesno")
    question = protocol.questions[0]
    texts = tok.batch_decode([[i] for i in range(len(tok))])
    tree = build_tree(tok, protocol, question, torch.tensor([bool(t) and t[0].isdigit() for t in texts]))
    vocab = len(tok)
    leaves = {}  # token path -> value, from the tree itself

    def walk(node, path):
        if node["value"] is not None:
            leaves[path] = node["value"]
        for t, child in node["children"].items():
            walk(child, path + (t,))

    walk(tree.root, ())
    assert sorted(set(leaves.values())) == [0.0, 1.0] and len(leaves) == 4  # yes Yes no No
    # put mass 3 on one "yes" spelling and 1 on one "no" spelling at their first differing node
    yes_path = next(p for p, v in leaves.items() if v == 1.0)
    no_path = next(p for p, v in leaves.items() if v == 0.0)
    dists = {}
    for path in tree.paths + [()]:
        for k in range(len(path) + 1):
            dists.setdefault(path[:k], torch.full((vocab,), 1e-9))
    for path, weight in ((yes_path, 3.0), (no_path, 1.0)):
        for k in range(len(path)):
            dists.setdefault(path[:k], torch.full((vocab,), 1e-9))[path[k]] += weight
    assert tree.expected(dists) == pytest.approx(0.75, abs=1e-6)


def test_expected_yes_over_an_api_from_top_logprobs():
    content = [('{"', []), ("score", []), ('":', []), (' "', []),
               ("yes", [("yes", math.log(0.6)), ("no", math.log(0.2)), ("Yes", math.log(0.1)), ("maybe", math.log(0.1))]),
               ('"}', [])]
    assert expected_from_logprobs(content, '{"score": "', 0, 1, answer="yes-no") == pytest.approx(0.7 / 0.9)
    merged = [('{"score":', []), (' "no', [(' "no', math.log(0.5)), (' "yes', math.log(0.5))]), ('"}', [])]
    assert expected_from_logprobs(merged, '{"score": "', 0, 1, answer="yes-no") == pytest.approx(0.5)
    assert expected_from_logprobs([("nothing", [])], '{"score": "', 0, 1, answer="yes-no") is None


def test_a_real_scorer_judges_inputs_references_and_yes_no_questions(scorer):
    from editfleet_common.channels import ServiceError

    request = dict(source_image=png(color=RED), edited_image=png(color=GREY), instruction="make it blue",
                   category="physics", protocol="mini-yesno", variables={"explanation": "blue is blue"},
                   more_source_images=[png(color=GREEN)], reference_images=[png(color=BLUE)])
    with ScorerClient(scorer.address) as client:
        result = client.score("yn", **request, timeout=120)
        with pytest.raises(ServiceError, match="explanation"):  # `knowledge` is asked: its variable is needed
            client.score("yn-bad", **{**request, "variables": {}}, timeout=60)
    assert result.protocol == "mini-yesno"
    # three questions asked (follows, matches_reference, knowledge), each reply kept; the random judge's
    # gibberish is re-asked once where it does not parse
    assert 3 <= len(result.raw_responses) <= 6 and result.attempts in (1, 2)
    if result.HasField("score"):
        assert result.score in {0.0, 1 / 3, 2 / 3, 1.0}
    else:
        assert result.error and all(part.split(":")[0] in ("follows", "matches_reference", "knowledge")
                                    for part in result.error.split("; "))
    assert result.HasField("expected_score") and 0.0 <= result.expected_score <= 1.0  # P(yes) of `follows`


def test_a_protocol_may_name_its_suites_reply_budget(tmp_path):
    ok = parse_protocol("name: b\nmax_new_tokens: 1000\nquestions: {q: {user: x}}", tmp_path / "b.yaml")
    assert ok.max_new_tokens == 1000
    assert parse_protocol("name: c\nquestions: {q: {user: x}}", tmp_path / "c.yaml").max_new_tokens is None
    for bad in ("0", "-3", "lots", "true", "12.5"):
        with pytest.raises(ProtocolError, match="max_new_tokens must be a positive integer"):
            parse_protocol(f"name: d\nmax_new_tokens: {bad}\nquestions: {{q: {{user: x}}}}", tmp_path / "d.yaml")
    assert load_protocols().get("kris").max_new_tokens == 1000  # KRIS-Bench's scripts: max_tokens 1000
