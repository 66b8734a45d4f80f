"""The rise protocol (RISEBench): its prompts are PhoenixZ810/RISEBench's own, each row kind gets the
judge calls gpt_eval.py's eval_vanilla makes (which prompt, which images, in which order), images are
fitted as its image_size=768 does, "Final Score" replies are read strictly, and the combiner gives
gpt_eval.py's per-sample numbers, checked here by hand."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from editfleet_common.images import encode_png
from suites.catalog import catalog
from suites.shared.parsing import PARSERS
from suites.shared.protocol import ProtocolRegistry
from suites.protocols import load_protocols
from scorer_service.samples import ScoreInput, build_prompts, prepare, resize_images

# sha256[:32] of utils.py's prompts (PhoenixZ810/RISEBench at 5f22651) after gpt_eval.py's
# .format(instruct="INSTRUCTION X", reference="REFERENCE Y") (the unformatted ones as they are)
OFFICIAL = {
    "prompt_consist": "a8507d23ac06879cc3ede2848ddaa5ca",
    "prompt_reasoning": "bd5f0722926bdb028fe8f647efe2cb90",
    "prompt_reasoning_w_input": "5ef6008c3256fbaa71a423fc0acf8598",
    "prompt_generation": "2d607960deffa2e1b5178bfbf9f06c86",
    "prompt_spatial_ref": "1d69b97d4fe0a7373ed1198fe068b5fe",
    "prompt_spatial_ref_img": "83eb7fc7809529f54c9e779777111d0b",
    "prompt_spatial_ref_w_input": "39f427cb234f86560966a4e8cf8da8ba",
    "prompt_spatial_qual": "3bead46a4b0bcf295700caec5c116809",
    "prompt_spatial_cons": "d85ba60e9aa2fd232fdf4fd45fc0f7a0",
    "prompt_logical_cons_ans": "b3507878ff22043542e24f35795fa871",
    "prompt_logical_cons": "2e64655295f330948d64da92377fd72b",
    "prompt_logical_txt": "9d6a1e588e0440460f65e0fde762f9fd",
    "prompt_logical_img": "8a4ded282aa88f4de4a808d4857b24e1",
    "prompt_logical_img_wo_q": "8cd49d5335cd303c810affa011b21dcd",
}
VARS = {"edit_instruction": "INSTRUCTION X", "reference_text": "REFERENCE Y"}


def png(size, color) -> bytes:
    return encode_png(Image.new("RGB", size, color))


SOURCE, REFERENCE, EDITED = png((40, 30), (200, 0, 0)), png((30, 40), (0, 200, 0)), png((50, 20), (0, 0, 200))


@pytest.fixture(scope="module")
def rise():
    return load_protocols().get("rise")


def asked(rise, category: str, variables: dict, *, reference: bool = False):
    """(question, prompt name, image sizes in order) of every judge call one row gets."""
    inp = ScoreInput("s", SOURCE, EDITED, "INSTRUCTION X", category, "rise",
                     {"reference_text": "REFERENCE Y", **variables})
    if reference:
        inp.reference_images = [REFERENCE]
    registry = ProtocolRegistry({"rise": rise}, "rise")
    names = {v: k for k, v in OFFICIAL.items()}
    out = []
    for prompt in build_prompts([prepare(inp, registry)]):
        digest = hashlib.sha256(prompt.user.encode()).hexdigest()[:32]
        out.append((prompt.question.name, names.get(digest, "NOT OFFICIAL"), [img.size for img in prompt.images]))
    return out


S, R, E = (40, 30), (30, 40), (50, 20)


@pytest.mark.parametrize("category, variables, reference, expected", [
    ("temporal_reasoning", {}, False, [("consistency", "prompt_consist", [S, E]),
                                       ("reasoning", "prompt_reasoning", [E]),
                                       ("plausibility", "prompt_generation", [E])]),
    ("causal_reasoning", {"reasoning_img": "true"}, False, [("consistency", "prompt_consist", [S, E]),
                                                            ("reasoning_input", "prompt_reasoning_w_input", [S, E]),
                                                            ("plausibility", "prompt_generation", [E])]),
    ("causal_reasoning", {"consistency_free": "true"}, False, [("reasoning", "prompt_reasoning", [E]),
                                                               ("plausibility", "prompt_generation", [E])]),
    ("spatial_reasoning", {}, False, [("consistency", "prompt_spatial_cons", [S, E]),
                                      ("reasoning", "prompt_spatial_ref", [E]),
                                      ("plausibility", "prompt_spatial_qual", [E])]),
    ("spatial_reasoning", {"reasoning_img": "true"}, False, [("consistency", "prompt_spatial_cons", [S, E]),
                                                             ("reasoning_input", "prompt_spatial_ref_w_input", [S, E]),
                                                             ("plausibility", "prompt_spatial_qual", [E])]),
    # reference_img: gpt_eval.py replaces the input image by the reference for consistency too
    ("spatial_reasoning", {"reasoning_img": "true"}, True, [("consistency_reference", "prompt_spatial_cons", [R, E]),
                                                            ("reasoning_reference", "prompt_spatial_ref_img", [R, E]),
                                                            ("plausibility", "prompt_spatial_qual", [E])]),
    ("logical_reasoning", {"reference_txt": "REFERENCE Y"}, False,
     [("logical_consistency_answer", "prompt_logical_cons_ans", [S, E]),
      ("logical_reasoning_answer", "prompt_logical_txt", [E])]),
    ("logical_reasoning", {}, True, [("logical_consistency", "prompt_logical_cons", [R, E]),
                                     ("logical_reasoning", "prompt_logical_img", [R, E])]),
    ("logical_reasoning", {"reasoning_wo_ins": "true"}, True,
     [("logical_consistency", "prompt_logical_cons", [R, E]),
      ("logical_reasoning_no_problem", "prompt_logical_img_wo_q", [R, E])]),
])
def test_each_row_gets_gpt_evals_calls_with_its_prompts_verbatim(rise, category, variables, reference, expected):
    assert asked(rise, category, variables, reference=reference) == expected


def test_all_fourteen_official_prompts_are_used_and_text_comes_first(rise):
    used = {text for q in rise.questions for text in q.user.values()}
    assert len(used) == len(OFFICIAL) == 14
    assert rise.text_first and rise.low == 1 and rise.high == 5


def test_images_fit_inside_768_through_jpeg_as_encode_image_to_base64(rise):
    big = Image.new("RGB", (1600, 900), (10, 120, 240))
    for x in range(0, 1600, 7):
        big.putpixel((x, 450), (255, 255, 0))
    (source,), (edited,), (reference,) = resize_images([big], [Image.new("RGB", (300, 200), (1, 2, 3))],
                                                       [Image.new("RGB", (500, 1000))], rise.resize)
    # the official: img.thumbnail((768, 768)), then JPEG (PIL's default quality), decoded by the API
    expected = big.copy()
    expected.thumbnail((768, 768))
    buf = io.BytesIO()
    expected.save(buf, format="JPEG")
    assert source.size == (768, 432) and edited.size == (300, 200) and reference.size == (384, 768)
    assert source.tobytes() == Image.open(io.BytesIO(buf.getvalue())).convert("RGB").tobytes()


@pytest.mark.parametrize("reply, value, reason", [
    ("The banana is black...\n\n**Final Score:** **4**", 4, None),
    ("**Final Score**: **1**", 1, None),
    ("final score: 5/5", 5, None),
    ("Final Score: 3 ... so again, Final Score: 3", 3, None),
    ("Final Score: 4, 5", None, "several numbers"),          # gpt_eval.py: [4, 5], a row of the wrong length
    ("**Final Score:** **1-5**", None, "a range"),           # gpt_eval.py: 1
    ("Final Score: 4.5", None, "not an integer"),            # gpt_eval.py: 4
    ("Final Score: 4/10", None, "another scale"),            # gpt_eval.py: 4
    ("Final Score: 4. On reflection, Final Score: 3", None, "ambiguous"),  # gpt_eval.py: the first
    ("Final Score: 7", None, "outside [1, 5]"),              # gpt_eval.py: 7
    ("Failed to obtain answer via API. ", None, "no 'Final Score: N'"),
    ("", None, "empty reply"),
])
def test_final_score_is_read_strictly(reply, value, reason):
    parsed = PARSERS["final-score"](reply, 1, 1.0, 5.0)
    if value is None:
        assert not parsed.ok and reason in parsed.reason, parsed
    else:
        assert parsed.ok and parsed.scores == [value] and parsed.response == reply.strip(), parsed


def test_logical_answers_are_zero_or_one():
    binary = PARSERS["final-score-binary"]
    assert binary("**Final Score**: **1**", 1, 1.0, 5.0).scores == [1.0]
    assert binary("Final Score: 0", 1, 1.0, 5.0).scores == [0.0]
    # gpt_eval.py: 4*min(5, 1)+1 = 5, correct; here a failure
    assert "outside [0, 1]" in binary("Final Score: 5", 1, 1.0, 5.0).reason


def combined(rise, scores: dict) -> tuple[float, dict]:
    headline, subs = catalog().rules["rise"].combine(rise, {k: [float(v)] for k, v in scores.items()})
    return headline, dict(subs)


def test_the_combiner_gives_calculate_score_and_calculate_completion(rise):
    # temporal: C 4, R 5, VP 5 -> 0.3*4 + 0.5*5 + 0.2*5 = 4.7, not complete
    headline, subs = combined(rise, {"consistency": 4, "reasoning": 5, "plausibility": 5})
    assert headline == pytest.approx(0.3 * 4 + 0.5 * 5 + 0.2 * 5)
    assert subs == {"ApprConsistency": 4.0, "Reasoning": 5.0, "VisualPlausibility": 5.0, "complete": 0.0}
    # consistency_free: R 5, VP 5 -> 0.2*5 + 0.8*5 = 5, complete without consistency
    headline, subs = combined(rise, {"reasoning_input": 5, "plausibility": 5})
    assert headline == pytest.approx(5.0) and subs == {"Reasoning": 5.0, "VisualPlausibility": 5.0, "complete": 1.0}
    # R = 1: (0.3*3 + 0.5*1 + 0.2*2) * 0.5 = 0.9 -> at least 1
    assert combined(rise, {"consistency_reference": 3, "reasoning_reference": 1, "plausibility": 2})[0] == 1.0
    # R = 1, C 5, VP 5: (1.5 + 0.5 + 1.0) * 0.5 = 1.5
    assert combined(rise, {"consistency": 5, "reasoning": 1, "plausibility": 5})[0] == pytest.approx(1.5)
    # logical 0/1 -> 1/5: C 1 -> 5, R 1 -> 5: 0.3*5 + 0.7*5 = 5, complete
    headline, subs = combined(rise, {"logical_consistency": 1, "logical_reasoning": 1})
    assert headline == pytest.approx(5.0) and subs == {"ApprConsistency": 5.0, "Reasoning": 5.0, "complete": 1.0}
    # C 1 -> 5, R 0 -> 1: (0.3*5 + 0.7*1) * 0.5 = 1.1, not complete
    headline, subs = combined(rise, {"logical_consistency_answer": 1, "logical_reasoning_answer": 0})
    assert headline == pytest.approx(1.1) and subs["complete"] == 0.0 and subs["Reasoning"] == 1.0


def test_a_protocol_that_does_not_fit_the_rise_rule_is_refused_at_load(tmp_path):
    from suites.shared.protocol import ProtocolError
    from suites.protocols import parse_protocol

    def load(questions: str, resize: str = "") -> None:
        text = f"name: r\nrange: [1, 5]\ncombine: rise\nparse: final-score\n{resize}questions:\n{questions}"
        parse_protocol(text, tmp_path / "r.yaml")

    load("  reasoning: {images: [edited], user: x}\n")
    with pytest.raises(ProtocolError, match="does not know question.s. aesthetics"):
        load("  reasoning: {images: [edited], user: x}\n  aesthetics: {images: [edited], user: y}\n")
    with pytest.raises(ProtocolError, match="needs a reasoning question"):
        load("  plausibility: {images: [edited], user: x}\n")
    with pytest.raises(ProtocolError, match="jpeg_thumbnail must be a positive integer"):
        load("  reasoning: {images: [edited], user: x}\n", "resize: {jpeg_thumbnail: big}\n")
