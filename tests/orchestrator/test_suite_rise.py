"""RISEBench reproduced: a small copy of the release (data_total.json and its image folders) made here,
in both shapes the suite ships (RISEBench-64: no flags; RISEBench-360: subtasks and the
reasoning_img / consistency_free flags); known "Final Score" replies through parsing, the rise
combiner and the suite's numbers, checked against gpt_eval.py's formulas computed here by hand;
edits in the suite's outputs layout imported and judged end to end over the tiny judge's
OpenAI-compatible endpoint; export; bad input.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import TINY_JUDGE, request_content as _content, require_tiny_models, run_orchestrator
from orchestrator.benchmark import BenchmarkError, load_benchmark
from suites.rise import headline as rise_suite
from suites.shared.combine import parsed_sub_scores
from suites.shared.parsing import PARSERS
from suites.protocols import load_protocols

KEY_ENV = "EDITFLEET_TEST_RISE_KEY"
KEY = "sk-editfleet-rise-5c1e77"


def png(color, size=(24, 20), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


# One row of every kind gpt_eval.py tells apart (the 360 release's shape: subtask and flags).
ROWS_360 = [
    {"index": "temporal_reasoning_1", "category": "temporal_reasoning", "subtask": "Life Progression",
     "instruction": "Draw what the banana looks like after a year.", "image": "temporal_reasoning_images/1.png",
     "reference": "Rotten, blackened banana."},
    {"index": "temporal_reasoning_2", "category": "temporal_reasoning", "subtask": "Life Progression",
     "instruction": "Draw the sapling ten years later.", "image": "temporal_reasoning_images/2.png",
     "reference": "Mature tree with a sturdy trunk.", "reasoning_img": True},
    {"index": "causal_reasoning_1", "category": "causal_reasoning", "subtask": "State Transition",
     "instruction": "Draw the ice cube after an hour in the sun.", "image": "causal_reasoning_images/1.png",
     "reference": "A puddle of water.", "consistency_free": True},
    {"index": "causal_reasoning_2", "category": "causal_reasoning", "subtask": "Physics Manifestation",
     "instruction": "Draw the glass after it falls on the floor.", "image": "causal_reasoning_images/2.png",
     "reference": "Shattered glass on the floor."},
    {"index": "spatial_reasoning_1", "category": "spatial_reasoning", "subtask": "Object Arrangement",
     "instruction": "Stack the blocks from largest to smallest.", "image": "spatial_reasoning_images/1.png",
     "reference": "A tower of blocks, largest at the bottom."},
    {"index": "spatial_reasoning_2", "category": "spatial_reasoning", "subtask": "Component Assembly",
     "instruction": "Assemble the clock to show 9:45.", "image": "spatial_reasoning_images/2.png",
     "reference_img": "spatial_reasoning_images/2_ref.png"},
    {"index": "spatial_reasoning_3", "category": "spatial_reasoning", "subtask": "Viewpoint Generation",
     "instruction": "Draw the house seen from above.", "image": "spatial_reasoning_images/3.png",
     "reference": "A top view of a square roof.", "reasoning_img": True},
    {"index": "logical_reasoning_1", "category": "logical_reasoning", "subtask": "Mathematical Derivation",
     "instruction": "Replace the question mark with the right number.", "image": "logical_reasoning_images/1.png",
     "reference_txt": "The question mark should be replaced with \"2\"."},
    {"index": "logical_reasoning_2", "category": "logical_reasoning", "subtask": "Puzzle Solving",
     "instruction": "Draw the path through the maze in blue.", "image": "logical_reasoning_images/2.png",
     "reference_img": "logical_reasoning_images/2_ref.png"},
]
# The 64 release's shape: no subtask, no flags.
ROWS_64 = [{k: v for k, v in row.items() if k not in ("subtask", "reasoning_img", "consistency_free")}
           for row in ROWS_360]


def make_release(folder: Path, rows=ROWS_360) -> Path:
    """data/data_total.json with the images beside it, as in PhoenixZ810/RISEBench."""
    folder.mkdir(parents=True)
    for i, row in enumerate(rows):
        for key in ("image", "reference_img"):
            if key in row:
                path = folder / row[key]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(png((20 * i, 100, 200), size=(24, 20)) if key == "image" else png((20 * i, 100, 50), size=(26, 22)))
    (folder / "data_total.json").write_text(json.dumps(rows, indent=4))
    return folder / "data_total.json"


def test_the_release_loads_with_what_each_judge_call_needs(tmp_path):
    bench = load_benchmark(make_release(tmp_path / "data"))
    assert bench.format == "rise" and [s.id for s in bench.samples] == [r["index"] for r in ROWS_360]
    by_id = {s.id: s for s in bench.samples}
    assert by_id["temporal_reasoning_1"].variables == {"reference_text": "Rotten, blackened banana."}
    assert by_id["temporal_reasoning_2"].variables["reasoning_img"] == "true"
    assert by_id["causal_reasoning_1"].variables["consistency_free"] == "true"
    assert by_id["causal_reasoning_1"].extras["consistency_free"] is True
    spatial_ref = by_id["spatial_reasoning_2"]
    assert spatial_ref.reference_images == [tmp_path / "data" / "spatial_reasoning_images" / "2_ref.png"]
    assert "reference_text" not in spatial_ref.variables
    logical_txt, logical_img = by_id["logical_reasoning_1"], by_id["logical_reasoning_2"]
    assert logical_txt.variables == {"reference_text": ROWS_360[7]["reference_txt"], "reference_txt": ROWS_360[7]["reference_txt"]}
    assert logical_txt.reference_images == [] and len(logical_img.reference_images) == 1
    assert "reasoning_wo_ins" not in logical_img.variables
    assert all(s.extras["score_without_consistency"] for s in bench.samples)  # the key missing: NaN, truthy
    assert by_id["spatial_reasoning_1"].extras["subtask"] == "Object Arrangement"
    small = load_benchmark(make_release(tmp_path / "data64", ROWS_64))
    assert not any(s.extras["score_without_consistency"] for s in small.samples)
    # an explicit null beside a true: pandas keeps None there (false), NaN only where the key is missing
    rows = [{**ROWS_360[0], "consistency_free": None}, *ROWS_360[1:]]
    mixed = {s.id: s for s in load_benchmark(make_release(tmp_path / "mixed", rows)).samples}
    assert not mixed["temporal_reasoning_1"].extras["score_without_consistency"]
    assert mixed["temporal_reasoning_2"].extras["score_without_consistency"]
    # no true anywhere: pandas makes the column all None (false) when every row has a null, all NaN
    # (true) when some row lacks the key
    nulls = [{**r, "consistency_free": None} for r in ROWS_64]
    assert not any(s.extras["score_without_consistency"] for s in load_benchmark(make_release(tmp_path / "n1", nulls)).samples)
    assert all(s.extras["score_without_consistency"] for s in load_benchmark(make_release(tmp_path / "n2", nulls[:-1] + ROWS_64[-1:])).samples)


def test_a_reasoning_wo_ins_key_anywhere_applies_to_every_logical_reference_image_row(tmp_path):
    # gpt_eval.py tests `'reasoning_wo_ins' in item` on a pandas row: a column of the whole file
    rows = [*ROWS_360, {**ROWS_360[8], "index": "logical_reasoning_3", "reasoning_wo_ins": True}]
    bench = load_benchmark(make_release(tmp_path / "data", rows))
    by_id = {s.id: s for s in bench.samples}
    assert by_id["logical_reasoning_2"].variables["reasoning_wo_ins"] == "true"
    assert by_id["logical_reasoning_3"].variables["reasoning_wo_ins"] == "true"
    assert "reasoning_wo_ins" not in by_id["logical_reasoning_1"].variables  # reference_txt rows: not asked


def test_bad_rows_name_the_index_and_the_field(tmp_path):
    rows = [dict(r) for r in ROWS_360]
    rows[0]["category"] = "temporal"
    del rows[1]["reference"]
    rows[2]["consistency_free"] = ["True"]
    rows[3]["image"] = "../outside.png"
    rows[5]["reference_img"] = "spatial_reasoning_images/nothere.png"
    del rows[7]["reference_txt"]
    rows[8]["consistency_free"] = True
    path = make_release(tmp_path / "data", rows)
    (tmp_path / "data" / rows[5]["reference_img"]).unlink()
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(path, "rise")
    text = str(err.value)
    assert "data_total.json[0]: sample 'temporal_reasoning_1': category 'temporal' is not one of RISEBench's four" in text
    assert "data_total.json[1]: sample 'temporal_reasoning_2': a temporal_reasoning row needs reference" in text
    assert "data_total.json[2]: sample 'causal_reasoning_1': consistency_free: a list or object" in text
    assert "data_total.json[3]: sample 'causal_reasoning_2': image: image path '../outside.png' escapes the image root" in text
    assert "data_total.json[5]: sample 'spatial_reasoning_2': reference_img: image not found" in text
    assert "data_total.json[7]: sample 'logical_reasoning_1': a logical_reasoning row needs reference_txt or reference_img" in text
    assert "data_total.json[8]: sample 'logical_reasoning_2': consistency_free on a logical_reasoning row" in text


def test_flags_are_read_as_gpt_eval_reads_them_whatever_their_value(tmp_path):
    # gpt_eval.py: a flag is set when present and not null (`not pd.isna`): "True" as RISEBench++
    # writes flags, and "False" or false too; calculate_score alone reads consistency_free's truth value
    rows = [dict(ROWS_360[1], reasoning_img="True"), dict(ROWS_360[2], consistency_free="True"),
            dict(ROWS_360[3], consistency_free="False"), dict(ROWS_360[4], consistency_free=False),
            dict(ROWS_360[0], reasoning_img=False), ROWS_360[6]]
    by_id = {s.id: s for s in load_benchmark(make_release(tmp_path / "data", rows)).samples}
    assert by_id["temporal_reasoning_2"].variables["reasoning_img"] == "true"
    assert by_id["temporal_reasoning_1"].variables["reasoning_img"] == "true"          # false: set
    for sid in ("causal_reasoning_1", "causal_reasoning_2", "spatial_reasoning_1"):   # "True", "False", false
        assert by_id[sid].variables["consistency_free"] == "true" and by_id[sid].extras["consistency_free"], sid
    # the weighted score: "True"/"False" are truthy, false is not, a missing key is NaN (truthy)
    assert by_id["causal_reasoning_1"].extras["score_without_consistency"]
    assert by_id["causal_reasoning_2"].extras["score_without_consistency"]
    assert not by_id["spatial_reasoning_1"].extras["score_without_consistency"]
    assert by_id["spatial_reasoning_3"].extras["score_without_consistency"]
    # pandas' str column makes an explicit null NaN (truthy); beside a boolean it stays None (falsy)
    strings = {s.id: s for s in load_benchmark(make_release(tmp_path / "s", [dict(ROWS_360[2], consistency_free="True"),
                                                                              dict(ROWS_360[0], consistency_free=None)])).samples}
    assert strings["temporal_reasoning_1"].extras["score_without_consistency"]
    bools = {s.id: s for s in load_benchmark(make_release(tmp_path / "b", [dict(ROWS_360[2], consistency_free=True),
                                                                            dict(ROWS_360[0], consistency_free=None)])).samples}
    assert not bools["temporal_reasoning_1"].extras["score_without_consistency"]
    # a falsy consistency_free: judged without consistency, accurate when R and VP are 5, no score (NaN there)
    samples = [by_id["spatial_reasoning_1"]]
    line = {"status": "OK", "score": 5.0, "sub_scores": {"Reasoning": 5.0, "VisualPlausibility": 5.0, "complete": 1.0}}
    block = rise_suite.headline(samples, {"spatial_reasoning_1": {"status": "ok"}}, {"spatial_reasoning_1": line})
    assert block["rows"]["Overall"]["Accuracy"] == 1.0 and block["rows"]["Overall"]["Score-Origin"] is None


# -- known replies through the protocol and the suite's numbers -----------------------------------
# per sample: the judged dimensions (logical ones already 1/5, as the combiner gives them)
DIMS = {
    "temporal_reasoning_1": {"ApprConsistency": 5, "Reasoning": 5, "VisualPlausibility": 5},
    "temporal_reasoning_2": {"ApprConsistency": 4, "Reasoning": 1, "VisualPlausibility": 3},
    "causal_reasoning_1": {"Reasoning": 5, "VisualPlausibility": 5},          # consistency_free
    "causal_reasoning_2": {"ApprConsistency": 2, "Reasoning": 3, "VisualPlausibility": 4},
    "spatial_reasoning_1": {"ApprConsistency": 5, "Reasoning": 4, "VisualPlausibility": 5},
    "spatial_reasoning_2": {"ApprConsistency": 5, "Reasoning": 5, "VisualPlausibility": 5},
    # spatial_reasoning_3: PARSE_FAILED
    "logical_reasoning_1": {"ApprConsistency": 5, "Reasoning": 5},
    "logical_reasoning_2": {"ApprConsistency": 1, "Reasoning": 1},
}


UNPARSABLE = "spatial_reasoning_3"   # its reasoning reply has two numbers, twice: PARSE_FAILED
MISSING = "causal_reasoning_2"       # no output image in the imported folder
REPLIES = {  # per sample: consistency, reasoning, plausibility ("Final Score" values; logical 0/1)
    **{sid: (d.get("ApprConsistency"), d["Reasoning"], d.get("VisualPlausibility")) for sid, d in DIMS.items()
       if not sid.startswith("logical")},
    "logical_reasoning_1": (1, 1, None), "logical_reasoning_2": (0, 0, None),
    UNPARSABLE: (5, None, 5), MISSING: (2, 3, 4),
}


def reply_text(value) -> str:
    return "Two scores.\n**Final Score:** **4, 5**" if value is None else f"Step by step...\n\n**Final Score:** **{value}**"


def judged_by_the_protocol(samples) -> dict:
    """Each sample's known replies through the rise protocol's own questions, parsers and combiner,
    as the judge runs them: the scores.jsonl records the suite reads."""
    proto = load_protocols().get("rise")
    out = {}
    for s in samples:
        present = {"reference"} if s.reference_images else set()
        parsed = {q.name: PARSERS[q.parse or proto.parse](reply_text(REPLIES[s.id][DIMENSION_OF[q.name]]), 1,
                                                          proto.low, proto.high)
                  for q in proto.asked(s.category, s.judge_variables(), present)}
        if all(p.ok for p in parsed.values()):
            headline, subs = proto.combine_scores({name: p.scores for name, p in parsed.items()})
            out[s.id] = {"status": "OK", "score": headline, "sub_scores": dict(subs)}
        else:  # as the judge records it: the questions that parsed keep their values (parsed.<question>)
            kept = parsed_sub_scores(proto, {name: p.scores for name, p in parsed.items() if p.ok})
            out[s.id] = {"status": "PARSE_FAILED", "score": None, "sub_scores": dict(kept)}
    return out


DIMENSION_OF = {"consistency": 0, "consistency_reference": 0, "logical_consistency_answer": 0, "logical_consistency": 0,
                "reasoning": 1, "reasoning_input": 1, "reasoning_reference": 1, "logical_reasoning_answer": 1,
                "logical_reasoning": 1, "logical_reasoning_no_problem": 1, "plausibility": 2}




def by_hand(file_rule: bool) -> dict[str, float]:
    """gpt_eval.py's calculate_score for each sample of DIMS, written out."""
    h = 0.5
    if file_rule:  # the 360 file: every temporal/causal/spatial row 0.2*VP + 0.8*R
        out = {"temporal_reasoning_1": 0.2 * 5 + 0.8 * 5, "temporal_reasoning_2": max(1, (0.2 * 3 + 0.8 * 1) * h),
               "causal_reasoning_1": 0.2 * 5 + 0.8 * 5, "causal_reasoning_2": 0.2 * 4 + 0.8 * 3,
               "spatial_reasoning_1": 0.2 * 5 + 0.8 * 4, "spatial_reasoning_2": 0.2 * 5 + 0.8 * 5}
    else:          # causal_reasoning_1 is only in the 360 file
        out = {"temporal_reasoning_1": 0.3 * 5 + 0.5 * 5 + 0.2 * 5,
               "temporal_reasoning_2": max(1, (0.3 * 4 + 0.5 * 1 + 0.2 * 3) * h),
               "causal_reasoning_2": 0.3 * 2 + 0.5 * 3 + 0.2 * 4,
               "spatial_reasoning_1": 0.3 * 5 + 0.5 * 4 + 0.2 * 5, "spatial_reasoning_2": 0.3 * 5 + 0.5 * 5 + 0.2 * 5}
    out.update({"logical_reasoning_1": 0.3 * 5 + 0.7 * 5, "logical_reasoning_2": max(1, (0.3 * 1 + 0.7 * 1) * h)})
    return out


LABELS = {"Temporal": "temporal", "Causal": "causal", "Spatial": "spatial", "Logical": "logical"}


def check_scores(block: dict, expected: dict[str, float]) -> None:
    for label, prefix in LABELS.items():
        values = [v for sid, v in expected.items() if sid.startswith(prefix)]
        row = block["rows"][label]
        assert row["Score-Origin"] == pytest.approx(sum(values) / len(values)), label
        assert row["Score-Percentage"] == pytest.approx(25 * (sum(values) / len(values) - 1)), label
    every = list(expected.values())
    assert block["rows"]["Overall"]["Score-Origin"] == pytest.approx(sum(every) / len(every))


def test_accuracy_and_weighted_score_as_gpt_eval_computes_them(tmp_path):
    for rows, file_rule in ((ROWS_360, True), (ROWS_64, False)):
        bench = load_benchmark(make_release(tmp_path / f"data{len(rows)}{file_rule}", rows))
        samples = [s for s in bench.samples if file_rule or s.id != "causal_reasoning_1"]
        edits = {s.id: {"status": "ok"} for s in samples}
        scores = judged_by_the_protocol(samples)
        assert scores[UNPARSABLE]["status"] == "PARSE_FAILED"
        # its consistency and plausibility replies were read and are kept on the line, but gpt_eval.py
        # drops the whole sample when one of its replies fails (score None: every dimension None), so
        # they are in no mean below (the dimension means are DIMS', without it)
        assert scores[UNPARSABLE]["sub_scores"] == {"parsed.consistency": 5.0, "parsed.plausibility": 5.0}
        assert {sid: r["sub_scores"] for sid, r in scores.items() if sid in DIMS} == {
            sid: {**{k: float(v) for k, v in d.items()}, "complete": scores[sid]["sub_scores"]["complete"]}
            for sid, d in DIMS.items() if sid in scores}
        for failures in ("exclude", "zero"):
            block = rise_suite.headline(samples, edits, scores, failures_as=failures)
            check_scores(block, by_hand(file_rule))
            # accurate: temporal_1, causal_1 (consistency_free: R and VP), spatial_2, logical_1
            accurate = 4 if file_rule else 3
            judged = len(samples) if failures == "zero" else len(samples) - 1
            assert block["rows"]["Overall"]["Accuracy"] == pytest.approx(accurate / judged)
            assert block["rows"]["Spatial"]["Accuracy"] == pytest.approx(1 / (3 if failures == "zero" else 2))
            assert block["rows"]["Spatial"]["failures"] == 1 and block["rows"]["Spatial"]["scored"] == 2
            assert block["rows"]["Causal"]["Accuracy"] == pytest.approx(0.5 if file_rule else 0.0)
            # dimension means: consistency over the rows that have it, plausibility without logical
            cons = [d["ApprConsistency"] for d in DIMS.values() if "ApprConsistency" in d]
            assert block["dimensions"]["Overall_ApprConsistency"]["Score-Origin"] == pytest.approx(sum(cons) / len(cons))
            vp = [d["VisualPlausibility"] for sid, d in DIMS.items() if "VisualPlausibility" in d
                  and (file_rule or sid != "causal_reasoning_1")]
            assert block["dimensions"]["Overall_VisualPlausibility_total"]["Score-Origin"] == pytest.approx(sum(vp) / len(vp))
            assert block["dimensions"]["Logical_Reasoning"]["Score-Origin"] == 3.0
            assert "Logical_Quality" not in block["dimensions"]
        assert block["set"] == f"subset of {len(samples)} samples"
        if file_rule:
            text = rise_suite.console(block)
            assert "RISEBench (subset of 9 samples): Accuracy, Score-Origin (Score-Percentage)" in text
            assert "  Spatial: 33.3%" in text and "1 failed" in text
            assert list(block["subtasks"])[:2] == ["Temp-Life Progression", "Causal-State Transition"]
            assert block["subtasks"]["Logic-Puzzle Solving"]["Accuracy"] == 0.0
            assert block["score_rule"].startswith("0.2*VP + 0.8*R also for 6 temporal/causal/spatial row(s)")
        else:
            assert block["subtasks"] == {} and block["score_rule"].startswith("0.3*C")


# -- end to end --------------------------------------------------------------------------------
EDIT_SIZES = {row["index"]: (40 + 3 * i, 28 + i) for i, row in enumerate(ROWS_360)}  # tells the judge calls apart


def cli(*args, timeout=300) -> tuple[int, str]:
    return run_orchestrator(*args, key=(KEY_ENV, KEY), timeout=timeout)


def _sizes(body) -> list[tuple[int, int]]:
    out = []
    for part in _content(body):
        if part.get("type") == "image_url":
            data = base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
            out.append(Image.open(io.BytesIO(data)).size)
    return out


def _dimension(body) -> int:
    """0 consistency, 1 reasoning, 2 plausibility: by the official prompt's own words."""
    text = "".join(c.get("text", "") for c in _content(body) if c.get("type") == "text")
    return 0 if "Consistency" in text else 2 if ("Realism and Generation Quality" in text or "clarity and distortion" in text) else 1


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    require_tiny_models()
    from tests.openai_endpoint import Fault, FaultProxy, TransformersServe

    base = tmp_path_factory.mktemp("rise")
    bench = make_release(base / "data")
    outputs = base / "outputs" / "other-model" / "images"
    for i, row in enumerate(ROWS_360):
        if row["index"] != MISSING:
            folder = outputs / row["category"]
            folder.mkdir(parents=True, exist_ok=True)
            fmt, suffix = ("JPEG", "jpg") if row["index"] == "temporal_reasoning_2" else ("PNG", "png")  # find_image takes .jpg too
            (folder / f"{row['index']}.{suffix}").write_bytes(png((250 - 9 * i, 40, 90), size=EDIT_SIZES[row["index"]], fmt=fmt))
    server = TransformersServe(TINY_JUDGE, base / "serve.log").start()
    proxy = FaultProxy(server.url, api_key=KEY, upstream_max_tokens=128).start()  # the tiny model: 128 of the 4096
    try:
        for sid, values in REPLIES.items():
            for dim, value in enumerate(values):
                proxy.when(lambda body, size=EDIT_SIZES[sid], dim=dim: _sizes(body)[-1] == size and _dimension(body) == dim,
                           Fault("reply", text=reply_text(value)), forever=True)
        run = base / "imported"
        imported = cli("import", str(base / "outputs"), "--layout", "rise", "--benchmark", str(bench), "--output", str(run))
        scored = cli("score", str(run), "--judge-backend", "openai", "--judge-base-url", proxy.url,
                     "--judge-model", server.model, "--api-key-env", KEY_ENV, "--protocol", "rise",
                     "--output", str(base / "judged"), "--progress", "plain",
                     "--allow-failures")  # the missing edit (and any unread reply) failed
        yield {"base": base, "outputs": outputs, "run": run, "judged": base / "judged", "import": imported,
               "score": scored, "requests": proxy.chat_requests}
    finally:
        proxy.stop()
        server.stop()


def test_imported_and_judged_as_gpt_eval(judged):
    code, output = judged["import"]
    assert code == 0 and f"images/causal_reasoning/{MISSING}.png" in output, output
    code, output = judged["score"]
    assert code == 0, output
    block = json.loads((judged["judged"] / "summary.json").read_text())["suite"]
    expected = {sid: v for sid, v in by_hand(True).items() if sid != MISSING}
    check_scores(block, expected)
    # accurate: temporal_1, causal_1 (consistency_free), spatial_2, logical_1 of the 7 judged
    assert block["rows"]["Overall"]["Accuracy"] == pytest.approx(4 / 7)
    assert block["rows"]["Spatial"]["failures"] == 1 and block["rows"]["Causal"]["failures"] == 1
    assert block["set"] == "subset of 9 samples" and block["subtasks"]["Temp-Life Progression"]["Accuracy"] == 0.5
    scores = {json.loads(l)["id"]: json.loads(l) for l in (judged["judged"] / "scores.jsonl").read_text().splitlines()}
    assert scores[UNPARSABLE]["status"] == "PARSE_FAILED" and "several numbers" in scores[UNPARSABLE]["error"]
    assert scores[UNPARSABLE]["sub_scores"] == {"parsed.consistency": 5.0, "parsed.plausibility": 5.0}
    cons = [d["ApprConsistency"] for sid, d in DIMS.items() if "ApprConsistency" in d and sid != MISSING]
    assert block["dimensions"]["Overall_ApprConsistency"]["Score-Origin"] == pytest.approx(sum(cons) / len(cons))
    assert scores["logical_reasoning_1"]["sub_scores"] == {"ApprConsistency": 5.0, "Reasoning": 5.0, "complete": 1.0}
    assert "RISEBench (subset of 9 samples): Accuracy, Score-Origin (Score-Percentage)" in output
    assert f"  Overall: {100 * 4 / 7:.1f}%" in output
    report = (judged["judged"] / "report.html").read_text(encoding="utf-8")
    assert "<h2>RISEBench (subset of 9 samples)</h2>" in report and f"<b>{100 * 4 / 7:.1f}%</b>" in report


def test_the_judge_saw_text_first_and_the_rows_images(judged):
    asked = [r for r in judged["requests"] if r.fault == "reply"]
    by_edit = {}
    for request in asked:
        assert [c["type"] for c in _content(request.body)][0] == "text" and len(request.body["messages"]) == 1
        assert request.body["max_tokens"] == 4096 and request.body["temperature"] == 0  # gpt_eval.py's
        by_edit.setdefault(_sizes(request.body)[-1], []).append((_dimension(request.body), _sizes(request.body)))
    spatial_ref = sorted(by_edit[EDIT_SIZES["spatial_reasoning_2"]])
    ref, edit = (26, 22), EDIT_SIZES["spatial_reasoning_2"]
    assert spatial_ref == [(0, [ref, edit]), (1, [ref, edit]), (2, [edit])]  # the reference, not the input
    free = sorted(by_edit[EDIT_SIZES["causal_reasoning_1"]])
    assert [d for d, _ in free] == [1, 2]                                      # consistency_free: no consistency call
    assert sorted(d for d, _ in by_edit[EDIT_SIZES["logical_reasoning_1"]]) == [0, 1]


def test_export_writes_the_outputs_layout_and_lists_the_missing(judged, tmp_path):
    code, output = cli("export", str(judged["judged"]), "--layout", "rise", "--to", str(tmp_path), "--method", "m")
    assert code == 0, output
    written = sorted(str(p.relative_to(tmp_path / "m")) for p in (tmp_path / "m").rglob("*.png"))
    assert written == sorted(f"images/{r['category']}/{r['index']}.png" for r in ROWS_360 if r["index"] != MISSING)
    assert (tmp_path / "m" / "images" / "temporal_reasoning" / "temporal_reasoning_1.png").read_bytes() == \
        (judged["outputs"] / "temporal_reasoning" / "temporal_reasoning_1.png").read_bytes()
    assert f"{MISSING}:" in output
