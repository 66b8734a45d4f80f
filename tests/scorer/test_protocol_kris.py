"""The kris protocol as KRIS-Bench's scripts ask and read: which question each category gets, the
prompt texts as sent, the images and their captions in the scripts' order, the strict json-keys
parser (the scripts' guesses are failures here), and the kris combination checked by hand."""

from __future__ import annotations

import pytest

from editfleet_common.errors import InvalidInput
from suites.catalog import catalog
from suites.shared.parsing import parse_for, parse_json_keys
from suites.shared.protocol import ProtocolError
from suites.protocols import load_protocols, parse_protocol
from scorer_service.samples import ScoreInput, build_prompts, prepare, user_content

from .conftest import png

COMMON = ["count_change", "color_change", "anomaly_correction", "position_movement", "size_adjustment",
          "part_completion", "multi-instruction_execution"]
KNOWLEDGE = ["abstract_reasoning", "mathematics", "practical_knowledge", "medicine", "rule-based_reasoning",
             "biology", "geography", "chemistry", "humanities", "physics"]
MULTI, TEMPORAL, VIEW = "multi-element_composition", "temporal_prediction", "viewpoint_change"
SRC = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (200, 200, 0)]
EDIT, GT = (90, 90, 90), (10, 200, 200)


@pytest.fixture(scope="module")
def kris():
    return load_protocols().get("kris")


def _sample(category, *, inputs=1, refs=0, variables=None):
    registry = load_protocols()
    inp = ScoreInput(f"{category}_1", png(color=SRC[0]), png(color=EDIT), "Add {one} apple.", category, "kris",
                     dict(variables or {}), more_source_images=[png(color=c) for c in SRC[1:inputs]],
                     reference_images=[png(color=GT)] * refs)
    return prepare(inp, registry)


def _parts(prompt):
    return [value if kind == "text" else value.getpixel((0, 0)) for kind, value in user_content(prompt)][1:]


def test_each_category_gets_its_scripts_questions(kris):
    asked = lambda category, **v: [q.name for q in kris.asked(category, v, {"reference"} if category == VIEW else set())]  # noqa: E731
    for category in COMMON:  # metrics_common.py; anomaly_correction too (its "abnormality" branch is dead)
        assert asked(category) == ["VC", "IF", "VQ"], category
    for category in KNOWLEDGE:  # metrics_knowledge.py: IF and KP from one dual call
        assert asked(category, explain_en="x") == ["VC", "IF_KP", "VQ"], category
    assert asked(VIEW) == ["VC", "IF_view", "VQ"]
    assert asked(MULTI) == ["VC_multi", "IF_multi", "VQ_alone"]
    for frame in "1234":
        assert asked(TEMPORAL, target_frame=frame) == [f"VC_frame_{frame}", f"IF_frame_{frame}", "VQ_alone"]
    assert kris.parse == "json-keys" and kris.text_first and (kris.low, kris.high) == (1.0, 5.0)


def test_prompts_are_the_scripts_text_as_sent(kris):
    sample = _sample("chemistry", variables={"explain_en": "MnO2 makes H2O2 bubble."})
    vc, dual, vq = build_prompts([sample])
    # prompt_consist.format(instruct=...): {{ }} are single braces, the instruction filled in
    assert vc.user.startswith("\nYou are a professional digital artist and image evaluation specialist.\n\nYou will be given:\n"
                              "1. **Image A**: the original image.\n")
    assert vc.user.endswith('**Editing Instruction**: Add {one} apple.\n## Output Format\nFirst, clearly explain your comparison '
                            'process: list each major non-instruction element and state whether it is consistent (unchanged) or '
                            'inconsistent (changed), with brief reasoning.\nThen, provide your evaluation in the following JSON '
                            'format:\n{\n"reasoning": **Compared to original image**, [list of non-instruction elements that changed '
                            'or remained the same] **in the edited image**. \n"consistency_score": X\n}\n')
    assert "**Real-World Knowledge Explanation**：MnO2 makes H2O2 bubble.\n\n## Output Format\n" in dual.user
    assert dual.user.endswith('{\n  "instruction_score": X,\n  "instruction_reasoning": 1. Detect Difference 2. Expected Visual '
                              'Caption 3. Instruction Match 4. Decision\n  "knowledge_score": X,\n  "knowledge_reasoning": 1. '
                              'Detect Difference 2. Expected Knowledge Expectation 3. Knowledge Match 4. Decision\n}\n')
    assert vq.user.endswith('{\n"reasoning": XXX,\n"quality_score": X,\n}\n') and "Add {one} apple" not in vq.user
    # the text first, then each image after the scripts' caption
    assert _parts(vc) == ["This is the original image:", SRC[0], "This is the edited image:", EDIT]
    assert _parts(dual) == _parts(vc)
    assert _parts(vq) == ["This is the edited image:", EDIT]


def test_images_and_captions_in_the_scripts_order(kris):
    view = build_prompts([_sample(VIEW, refs=1)])
    assert _parts(view[1]) == ["This is the original image:", SRC[0], "This is the edited image:", EDIT,
                               "This is the ground truth image:", GT]
    multi = build_prompts([_sample(MULTI, inputs=3)])
    want = ["Reference Image 1:", SRC[0], "Reference Image 2:", SRC[1], "Reference Image 3:", SRC[2], "Predicted Image:", EDIT]
    assert _parts(multi[0]) == want and _parts(multi[1]) == want
    assert _parts(multi[2]) == ["This is the image to evaluate:", EDIT]
    # temporal: frames 1-4 in order, the edit in the missing frame's place
    for frame, order in {"1": [EDIT, *SRC[:3]], "2": [SRC[0], EDIT, SRC[1], SRC[2]], "4": [*SRC[:3], EDIT]}.items():
        vc, if_, _ = build_prompts([_sample(TEMPORAL, inputs=3, variables={"target_frame": frame})])
        kinds = ["Generated" if c == EDIT else "Reference" for c in order]
        want = [x for n, (c, k) in enumerate(zip(order, kinds), start=1) for x in (f"Frame {n} ({k}):", c)]
        assert _parts(vc) == want and _parts(if_) == want, frame
    # a sample without what its questions show is INVALID, naming the field
    with pytest.raises(InvalidInput, match=r"reference_images: missing .*question 'IF_view'"):
        _sample(VIEW)
    with pytest.raises(InvalidInput, match=r"more_source_images\[1\]: missing .*question 'VC_frame_2'"):
        _sample(TEMPORAL, inputs=2, variables={"target_frame": "2"})
    with pytest.raises(InvalidInput, match="explain_en"):
        _sample("physics")


@pytest.mark.parametrize("reply, names, expected", [
    ('{"reasoning": "unchanged", "consistency_score": 5}', ["consistency_score"], [5]),
    # the prompt's own template: unquoted reasoning, not JSON; a digit in the prose is not the score
    ('1. Detect Difference.\n{\n"reasoning": **Compared to original image**, 2 cups **in the edited image**. \n'
     '"consistency_score": 3\n}', ["consistency_score"], [3]),
    ('{\n"reasoning": "fine",\n"quality_score": 4,\n}', ["quality_score"], [4]),
    ('```json\n{"instruction_score": "2", "reasoning": "..."}\n```', ["instruction_score"], [2]),
    ('{\n  "instruction_score": 4,\n  "instruction_reasoning": 1. Detect Difference\n  "knowledge_score": 2,\n'
     '  "knowledge_reasoning": 1. Detect\n}', ["instruction_score", "knowledge_score"], [4, 2]),
    ("Instruction Score: 3\n\n{\"instruction_score\": 3}", ["instruction_score"], [3]),
])
def test_json_keys_reads_the_score_under_its_key(reply, names, expected):
    parsed = parse_json_keys(reply, len(names), 1, 5, names=names)
    assert parsed.ok and parsed.scores == expected, parsed


@pytest.mark.parametrize("reply, reason", [
    # what metrics_common.py would read: "N/5", then the first bare digit 1-5 anywhere
    ("The edit is good: 4/5.", "no 'quality_score'"),
    ("1. Detect Difference: none. Quality is high.", "no 'quality_score'"),
    ('{"quality_score": 10}', "outside [1, 5]"),      # the script's "score: ([1-5])" takes the 1
    ('{"quality_score": 0}', "outside [1, 5]"),       # kept unclamped by the script: (0-1)*25 = -25
    ('{"quality_score": 4.5}', "not an integer"),      # int(4.5) = 4 in the script
    ('{"quality_score": X}', "'X', not a number"),
    ('quality_score: 3 ... {"quality_score": 4}', "ambiguous"),
    ("", "empty reply"),
])
def test_json_keys_fails_where_the_script_guesses(reply, reason):
    parsed = parse_for("json-keys", ["quality_score"])(reply, 1, 1, 5)
    assert not parsed.ok and reason in parsed.reason, parsed
    dual = parse_json_keys('{"instruction_score": 4, "instruction_reasoning": "x"}', 2, 1, 5,
                           names=["instruction_score", "knowledge_score"])
    assert not dual.ok and "no 'knowledge_score'" in dual.reason  # the script stores None and drops it


def test_kris_combination_by_hand(kris):
    # a knowledge sample: VC 5, IF 3, KP 2, VQ 4 -> sub-scores raw, score = mean of (s-1)*25
    headline, subs = catalog().rules["kris"].combine(kris, {"VC": [5.0], "IF_KP": [3.0, 2.0], "VQ": [4.0]})
    assert subs == [("VC", 5.0), ("VQ", 4.0), ("IF", 3.0), ("KP", 2.0)]
    assert headline == pytest.approx((100 + 75 + 50 + 25) / 4)
    headline, subs = kris.combine_scores({"VC_frame_2": [1.0], "IF_frame_2": [2.0], "VQ_alone": [5.0]})
    assert subs == [("VC", 1.0), ("VQ", 5.0), ("IF", 2.0)] and headline == pytest.approx((0 + 100 + 25) / 3)
    with pytest.raises(ValueError, match="no question for IF"):
        kris.combine_scores({"VC": [5.0], "VQ": [4.0]})


@pytest.mark.parametrize("change, message", [
    ("scores: [consistency_score]\n    user: x\n  b: {images: [edited], scores: [quality_score], user: y}",
     "needs questions for consistency_score, quality_score and instruction_score"),
    ("scores: [overall]\n    user: x", "scores must be distinct names among"),
    ("scores: [consistency_score]\n    captions: [a, b, c]\n    user: x", "captions must be a list of 1 string"),
])
def test_kris_protocol_load_checks(tmp_path, change, message):
    path = tmp_path / "k.yaml"
    path.write_text(f"name: k\nrange: [1, 5]\ncombine: kris\nquestions:\n  a:\n    images: [edited]\n    {change}\n")
    with pytest.raises(ProtocolError, match=message):
        parse_protocol(path.read_text(), path)
    bad_role = tmp_path / "r.yaml"
    bad_role.write_text("name: r\nquestions: {a: {images: [source_1], user: x}}\n")
    with pytest.raises(ProtocolError, match="source_<k>"):
        parse_protocol(bad_role.read_text(), bad_role)
