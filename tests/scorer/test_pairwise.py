"""Pairwise questions (issue 30 item 1): two edits of one sample judged against each other, roles
edited_a / edited_b, the answer "Image A" / "Image B" / "Tie" as GEditBench v2 writes it, both orders
asked unless the protocol says otherwise, a disagreement recorded and resolved by the protocol's rule,
an unreadable reply recorded as such; P(A), P(B), P(tie) from log-probabilities (the local score tree
and an API's top_logprobs). In process with a scripted backend, then through a real scorer: the tiny
judge taught one answer, served on loopback, asked in both orders."""

from __future__ import annotations

import hashlib
import math
from contextlib import nullcontext
from dataclasses import replace

import pytest
import torch

from editfleet_common.errors import InvalidInput
from scorer_service.backends.openai_api import expected_from_logprobs
from scorer_service.client import ScorerClient, make_request, result_to_dict, status_name
from scorer_service.expected_score import build_tree
from scorer_service.judge import Judge
from scorer_service.samples import Expected, ScoreInput, build_prompts, prepare, user_content
from suites.protocols import load_protocols, parse_protocol
from suites.shared.parsing import parse_pairwise
from suites.shared.protocol import ProtocolError, ProtocolRegistry

from .conftest import TEST_PROTOCOLS, png, start_scorer
from .scripted_judge import teach

SRC, RED, GREEN = (90, 90, 90), (200, 0, 0), (0, 200, 0)
NAMES = {SRC: "SRC", RED: "A", GREEN: "B"}
A, B, T = '{"winner": "Image A"}', '{"winner": "Image B"}', '{"winner": "Tie"}'


@pytest.fixture(scope="module")
def registry():
    return load_protocols([TEST_PROTOCOLS])


def pair_input(protocol="mini-pair", **kw) -> ScoreInput:
    return ScoreInput("subject_add_000001", png(color=SRC), png(color=RED), "Make the sky pink.", "subject_add",
                      protocol, edited_image_b=png(color=GREEN), **kw)


# -- reading a verdict -------------------------------------------------------------------------------
@pytest.mark.parametrize("reply, value", [
    (A, 1.0), (B, 0.0), (T, 0.5),
    ('```json\n{\n    "winner": "Image B"\n}\n```', 0.0),          # as GPT-4o answers the suite's schema
    ('Both keep the scene. {"winner": "tie", "reasoning": "same"}', 0.5),
    ('{"winner": "image_a"}', 1.0), ('{"winner": "B"}', 0.0), ('{"winner": "equal"}', 0.5),  # GEditBench v2's reading
    ("Image A", 1.0), ('"Tie".', 0.5),                              # just the verdict
    ('{"winner": "Image A"', 1.0),                                  # cut short by the token budget
])
def test_a_verdict_is_read_as_the_suite_writes_it(reply, value):
    parsed = parse_pairwise(reply)
    assert parsed.ok and parsed.scores == [value], parsed


@pytest.mark.parametrize("reply, reason", [
    ("", "empty reply"),
    ("I think Image A is better.", "no JSON winner"),
    ('{"winner": "Image A"} and then {"winner": "Image B"}', "ambiguous"),
    ('{"winner": "Choose one from: \'Image A\', \'Image B\', or \'Tie\'"}', "not Image A, Image B or Tie"),
    ('{"score": 7}', "no JSON winner"),
])
def test_no_verdict_is_a_failure_with_its_reason_never_a_guess(reply, reason):
    parsed = parse_pairwise(reply)
    assert not parsed.ok and reason in parsed.reason


# -- the protocol format -----------------------------------------------------------------------------
def test_pairwise_protocols_are_checked_when_loaded(tmp_path):
    ok = parse_protocol("name: p\nquestions: {q: {answer: pairwise, images: [edited_a, edited_b], user: x}}",
                        tmp_path / "p.yaml")
    assert ok.pairwise == {"orders": "both", "disagreement": "tie"}  # the default: both orders, a tie where they differ
    assert ok.parser_name(ok.questions[0]) == "pairwise" and ok.images == ["edited_a", "edited_b"]
    bad = {
        "questions: {q: {answer: pairwise, images: [source, edited], user: x}}": "shows edited_a and edited_b",
        "questions: {q: {images: [edited_a, edited_b], user: x}}": "shows edited_a and edited_b",
        "questions: {q: {answer: pairwise, images: [edited_a, edited_b], user: x}, r: {user: y}}": "all pairwise",
        "pairwise: {orders: three}\nquestions: {q: {answer: pairwise, images: [edited_a, edited_b], user: x}}":
            "pairwise.orders must be one of one, both",
        "pairwise: {disagreement: first}\nquestions: {q: {answer: pairwise, images: [edited_a, edited_b], user: x}}":
            "pairwise.disagreement must be one of tie, none",
        "pairwise: {orders: one}\nquestions: {q: {user: x}}": "no question has answer: pairwise",
    }
    for body, message in bad.items():
        with pytest.raises(ProtocolError, match=message):
            parse_protocol(f"name: b\n{body}", tmp_path / "b.yaml")


def test_a_pair_request_needs_both_edits_and_may_ask_some_questions_and_orders(registry):
    with pytest.raises(InvalidInput, match="edited_image_b: missing"):
        prepare(ScoreInput("s", png(), png(), "x", "", "mini-pair"), registry)
    with pytest.raises(InvalidInput, match="questions: 'XX' not in protocol 'mini-pair'"):
        prepare(pair_input(questions=["XX"]), registry)
    with pytest.raises(InvalidInput, match="pair_orders: 'three'"):
        prepare(pair_input(pair_orders="three"), registry)
    with pytest.raises(InvalidInput, match="not pairwise"):
        prepare(ScoreInput("s", png(), png(), "x", "", "mini-yesno", pair_orders="one"), registry)
    sample = prepare(pair_input(questions=["VQ"], pair_orders="one"), registry)
    assert [(p.question.name, p.swapped) for p in build_prompts([sample])] == [("VQ", False)]
    # a run's sample (one edit) cannot be judged with a pairwise protocol: said before anything starts
    reason = registry.get("mini-pair").unmet("", {"edit_instruction": "x"}, set(), 1)
    assert "is pairwise" in reason and "orchestrator arena" in reason


def test_both_orders_swap_the_two_edits_and_nothing_else(registry):
    prompts = build_prompts([prepare(pair_input(), registry)])
    shown = [(p.question.name, p.swapped, [NAMES[i.getpixel((0, 0))] for i in p.images]) for p in prompts]
    assert shown == [("IF", False, ["SRC", "A", "B"]), ("IF", True, ["SRC", "B", "A"]),
                     ("VQ", False, ["A", "B"]), ("VQ", True, ["B", "A"])]
    assert prompts[0].user == prompts[1].user and prompts[0].captions == prompts[1].captions == [
        "Original:", "Image A:", "Image B:"]


def test_the_geditbench_v2_prompts_are_sent_as_its_code_sends_them():
    """System prompt and the user message (text parts in order, images marked) of each dimension, as
    GEditBench v2's PromptTemplate.render_blocks + OpenAIStylePromptAdapter.build_payload build them
    at 82bc00ed (its pairwise/v1.yaml files, instruction "Make the sky pink."): sha256 computed outside
    this repository with its code; only the numbers are here."""
    official = {  # dimension: (sha256 of the system prompt, sha256 of the message stream, its length)
        "VC": ("647686c5029b272726e211ac26407242abc30fdb544c3511284689a8039bbf9c",
               "72d66ceede60537054d9964a1b88e2546a9a365f6e8a0bab17fd9b4f7e7475fe", 2119),
        "VQ": ("998af178b85ee0fad59073b3725c6e5ee8c7aada2b90a98baef05218d04e9ee3",
               "50442d1c37fa91b8315f009a54effad4ae2d5a6729b2680b7074284058c6a671", 2153),
        "IF": ("c5d1db93cbb3ada032d5a8c163245df191e9e4f4ff35d170a0228d67839e0f66",
               "0fc9d8ef395d302af0791eadc329b45ac31282a8a06e014f7059a719d0862abb", 893),
    }
    registry = load_protocols()
    protocol = registry.get("geditbench-v2")
    assert [q.name for q in protocol.questions] == ["VC", "VQ", "IF"]  # scripts/elo.sh's order of the files
    assert protocol.pairwise == {"orders": "one", "disagreement": "tie"}  # its pipeline asks each pair once
    prompts = build_prompts([prepare(pair_input("geditbench-v2"), registry)])
    assert [p.question.name for p in prompts] == ["VC", "VQ", "IF"]
    for prompt in prompts:
        stream = "".join(value if kind == "text" else f"<{NAMES[value.getpixel((0, 0))]}>"
                         for kind, value in user_content(prompt))
        system_hash, stream_hash, length = official[prompt.question.name]
        assert hashlib.sha256(prompt.system.encode()).hexdigest() == system_hash, prompt.question.name
        assert (len(stream), hashlib.sha256(stream.encode()).hexdigest()) == (length, stream_hash), prompt.question.name


# -- the judge: orders, rule, failures, probabilities (scripted backend) --------------------------------
class Scripted:
    """Answers by (question, swapped); every prompt's expected value carries fixed probabilities of
    the answers as SHOWN: P(Image A) .6, P(Image B) .3, P(Tie) .1."""

    generated_tokens = 0
    batches_in_flight = 1

    def __init__(self, answers):
        self.answers = answers

    def generate_with_expected(self, prompts, phases=None):
        return self.generate(prompts), {i: Expected.of(0.65, {1.0: 0.6, 0.0: 0.3, 0.5: 0.1}) for i in range(len(prompts))}

    def generate(self, prompts, phases=None):
        return [self.answers[(p.question.name, p.swapped)] for p in prompts]

    def batch(self):
        return nullcontext()

    def too_large(self, exc):
        return False


def test_orders_agree_disagree_or_cannot_be_read(registry):
    judge = Judge(Scripted({("IF", False): A, ("IF", True): B,          # A wins in both orders
                            ("VQ", False): A, ("VQ", True): A}))        # the shown-first image wins: they disagree
    outcome = judge.score([prepare(pair_input(), registry)])[0]
    assert outcome.status == "OK" and outcome.score == pytest.approx(0.75)  # mean of A (1) and the tie (0.5)
    if_, vq = outcome.pairwise
    assert (if_.winner, if_.rule, if_.disagreement) == ("A", "agree", False)
    assert [(o.swapped, o.winner) for o in if_.orders] == [(False, "A"), (True, "A")]
    assert (vq.winner, vq.rule, vq.disagreement) == ("tie", "disagreement: tie", True)
    assert [(o.swapped, o.winner) for o in vq.orders] == [(False, "A"), (True, "B")]
    # probabilities in the request's terms: swapped, P(shown A) is P(B)
    assert (if_.orders[0].p_a, if_.orders[0].p_b, if_.orders[0].p_tie) == (0.6, 0.3, 0.1)
    assert (if_.orders[1].p_a, if_.orders[1].p_b, if_.orders[1].p_tie) == (0.3, 0.6, 0.1)
    assert outcome.raw_responses == [A, B, A, A]

    # one order unreadable (asked again, still unreadable): no verdict for that question, PARSE_FAILED,
    # the other question's verdict kept
    judge = Judge(Scripted({("IF", False): T, ("IF", True): "I cannot tell.", ("VQ", False): B, ("VQ", True): A}))
    outcome = judge.score([prepare(pair_input(), registry)])[0]
    assert outcome.status == "PARSE_FAILED" and outcome.score is None
    assert outcome.error.startswith("IF (swapped): pairwise: no JSON winner")
    if_, vq = outcome.pairwise
    assert (if_.winner, if_.rule) == ("", "unreadable") and if_.orders[1].raw_responses == ["I cannot tell."] * 2
    assert (vq.winner, vq.rule) == ("B", "agree") and outcome.sub_scores == [("parsed.VQ", 0.0)]

    # the protocol's other rule: a disagreement is no verdict; one order only where the request says so
    none_rule = replace(registry.get("mini-pair"), pairwise={"orders": "both", "disagreement": "none"})
    strict = ProtocolRegistry({**registry.protocols, "mini-pair": none_rule}, "mini-pair")
    judge = Judge(Scripted({("IF", False): A, ("IF", True): A, ("VQ", False): B, ("VQ", True): A}))
    outcome = judge.score([prepare(pair_input(), strict)])[0]
    assert [(v.winner, v.rule) for v in outcome.pairwise] == [("", "disagreement: no verdict"), ("B", "agree")]
    assert outcome.status == "OK" and outcome.score == 0.0
    outcome = judge.score([prepare(pair_input(pair_orders="one"), strict)])[0]
    assert [(v.winner, v.rule, len(v.orders)) for v in outcome.pairwise] == [("A", "one order", 1), ("B", "one order", 1)]


def test_p_a_p_b_p_tie_from_the_local_score_tree(tiny_judge_dir, registry):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_judge_dir))
    protocol = registry.get("mini-pair")
    texts = tok.batch_decode([[i] for i in range(len(tok))])
    tree = build_tree(tok, protocol, protocol.questions[0], torch.tensor([bool(t) and t[0].isdigit() for t in texts]))
    leaves = {}

    def walk(node, path):
        if node["value"] is not None:
            leaves[node["value"]] = path
        for t, child in node["children"].items():
            walk(child, path + (t,))

    walk(tree.root, ())
    assert sorted(leaves) == [0.0, 0.5, 1.0]  # Image B, Tie, Image A
    dists = {}
    for value, weight in ((1.0, 5.0), (0.0, 3.0), (0.5, 2.0)):
        path = leaves[value]
        for k in range(len(path)):
            dists.setdefault(path[:k], torch.full((len(tok),), 1e-12))[path[k]] += weight
    value = tree.expected(dists)
    assert value.probs == pytest.approx({1.0: 0.5, 0.0: 0.3, 0.5: 0.2}, abs=1e-6)
    assert float(value) == pytest.approx(0.5 + 0.5 * 0.2, abs=1e-6)


def test_p_a_p_b_p_tie_over_an_api_from_top_logprobs():
    lp = math.log
    content = [("```json\n{\n", []), ('    "winner": "', []),
               ("Image", [("Image", lp(0.8)), ("Tie", lp(0.2))]),
               (" A", [(" A", lp(0.75)), (" B", lp(0.25))]), ('"\n}', [])]
    value = expected_from_logprobs(content, '{"winner": "', 0, 1, answer="pairwise")
    assert value.probs == pytest.approx({1.0: 0.6, 0.0: 0.2, 0.5: 0.2})
    # the reply said Tie: the split of "Image" between A and B is not known: absent, never estimated
    tie = [('{"winner": "', []), ("Tie", [("Tie", lp(0.7)), ("Image", lp(0.3))]), ('"}', [])]
    assert expected_from_logprobs(tie, '{"winner": "', 0, 1, answer="pairwise") is None
    only_tie = [('{"winner": "', []), ("Tie", [("Tie", lp(0.9)), ("None", lp(0.1))]), ('"}', [])]
    assert expected_from_logprobs(only_tie, '{"winner": "', 0, 1, answer="pairwise").probs == {1.0: 0, 0.0: 0, 0.5: 1.0}


# -- through a real scorer: the tiny judge taught one answer ------------------------------------------
@pytest.fixture(scope="module")
def pair_scorer(tiny_judge_dir, tmp_path_factory):
    """The tiny judge taught to answer "Image A" to IF whatever it is shown and something unreadable to
    VQ (also when asked again), served on loopback."""
    out = tmp_path_factory.mktemp("pair-judge")
    lessons = [(pair_input(pair_orders="one"), False, {"IF": A, "VQ": "I cannot tell."}),
               (pair_input(pair_orders="one"), True, {"IF": A, "VQ": "Still unsure."})]
    loss = teach(tiny_judge_dir, out, lessons, protocol_dirs=[TEST_PROTOCOLS], freeze_vision=True)
    assert loss < 0.05, f"the tiny judge did not learn its lines (loss {loss:.3f})"
    process = start_scorer(out, tmp_path_factory.mktemp("logs") / "scorer.log", "--max-new-tokens", "16")
    yield process
    process.stop(grace=20)


def test_a_real_scorer_asks_both_orders_and_resolves_their_disagreement(pair_scorer):
    fields = dict(source_image=png(color=SRC), edited_image=png(color=RED), edited_image_b=png(color=GREEN),
                  instruction="Make the sky pink.", category="subject_add", protocol="mini-pair")
    with ScorerClient(pair_scorer.address) as client:
        results = {r.sample_id: r for r in client.score_many(
            [make_request("both", **fields), make_request("one", **fields, pair_orders="one", questions=["IF"])],
            timeout=300)}
    both = result_to_dict(results["both"])
    if_, vq = both["pairwise"]
    # "Image A" in both orders: the first edit wins shown first, the second wins shown first; they disagree
    assert [(o["swapped"], o["winner"], o["raw_responses"]) for o in if_["orders"]] == [(False, "A", [A]), (True, "B", [A])]
    assert (if_["winner"], if_["disagreement"], if_["rule"]) == ("tie", True, "disagreement: tie")
    for order in if_["orders"]:  # P(A), P(B), P(tie) from the score tree, in the request's terms
        assert order["p_a"] + order["p_b"] + order["p_tie"] == pytest.approx(1.0, abs=1e-6)
    assert if_["orders"][0]["p_a"] > 0.5 and if_["orders"][1]["p_b"] > 0.5
    # VQ unreadable in both orders, asked again: no verdict, every reply kept
    assert (vq["winner"], vq["rule"]) == (None, "unreadable")
    assert vq["orders"][0]["raw_responses"] == ["I cannot tell.", "Still unsure."]
    assert all(len(o["raw_responses"]) == 2 and o["winner"] is None and o["error"] for o in vq["orders"])
    assert both["status"] == "PARSE_FAILED" and both["score"] is None and both["sub_scores"] == {"parsed.IF": 0.5}
    one = results["one"]
    assert status_name(one) == "OK" and one.score == 1.0 and len(one.pairwise) == 1
    assert (one.pairwise[0].winner, one.pairwise[0].rule, len(one.pairwise[0].orders)) == ("A", "one order", 1)
