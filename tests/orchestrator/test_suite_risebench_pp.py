"""RISEBench++ reproduced: a small copy of RISEBench++/data/overall_data.json (every kind of row
gemini_eval.py tells apart: several input images with a consistency image, reference images and
texts, flags written "True", counterfactual and multi-turn hybrid cases, Chinese fields) made here;
known "Final Score" replies through the risebench-pp protocol and the suite's numbers, checked
against gemini_eval.py run outside this repository on the same judge replies (only its numbers are
here); edits in its outputs layout imported and judged end to end over the tiny judge's endpoint
(which prompt and images each call got checked), exported back; bad rows named.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import TINY_JUDGE, request_content as _content, request_text as _text, require_tiny_models, run_orchestrator
from orchestrator.benchmark import BenchmarkError, load_benchmark
from suites.protocols import load_protocols
from suites.risebench_pp import headline as rpp
from suites.shared.combine import parsed_sub_scores
from suites.shared.parsing import PARSERS

KEY_ENV = "EDITFLEET_TEST_RPP_KEY"
KEY = "sk-editfleet-rpp-0b8d13"


def row(index, category, sub, task, image, **more):
    out = {"index": index, "category": category, "subcategory": sub, "task_type": task,
           "instruction": f"Edit {index}." if not isinstance(category, list) else [f"Step {k} of {index}." for k in (1, 2, 3)],
           "instruction_chinese": f"编辑 {index}。" if not isinstance(category, list) else [f"{index} 第{k}步。" for k in (1, 2, 3)],
           "image": image}
    out.update(more)
    return out


# One row of each kind eval_vanilla tells apart, in the release's shape (flags written "True").
ROWS = [
    row("temporal_reasoning_1", "temporal_reasoning", "common_sense_knowledge", "life_progression", ["t/1.png"],
        reference_txt="Rotten banana.", reference_txt_chinese="腐烂的香蕉。"),
    row("temporal_reasoning_8", "temporal_reasoning", "disciplinary_knowledge", "chemistry", ["t/8_1.png", "t/8_2.png"],
        multi_img="True", consistency_img="t/8_cons.png", reference_img="t/8_ref.png"),
    row("causal_reasoning_1", "causal_reasoning", "common_sense_knowledge", "structural_damage", ["c/1.png"],
        reference_txt="Bitten apple.", reference_txt_chinese="咬过的苹果。", consistency_free="True"),
    row("causal_reasoning_2", "causal_reasoning", "common_sense_knowledge", "structural_damage", ["c/2.png"],
        reference_txt="Broken glass.", reference_txt_chinese="碎玻璃。"),
    row("spatial_reasoning_1", "spatial_reasoning", "relation", "direction", ["s/1.png"], reference_img="s/1_ref.png"),
    row("spatial_reasoning_8", "spatial_reasoning", "structure", "viewpoint_generation", ["s/8.png"],
        reference_txt="A far skyscraper.", reference_txt_chinese="远处的摩天楼。", reasoning_img="True"),
    row("logical_reasoning_1", "logical_reasoning", "explicit_rule_deduction", "path_searching", ["l/1.png"],
        reference_img="l/1_ref.png"),
    row("logical_reasoning_4", "logical_reasoning", "explicit_rule_deduction", "Puzzle_Solving", ["l/4.png"],
        reference_txt="A clockwise arrow.", reference_txt_chinese="顺时针箭头。", reasoning_img="True"),
    row("counterfactual_reasoning_1", "counterfactual_reasoning", "anomaly_correction_and_generation",
        "anatomical_errors", ["f/1.png"], reference_txt="A crab with two claws.", reference_txt_chinese="两只螯的螃蟹。"),
    row("counterfactual_reasoning_7", "counterfactual_reasoning", "counterfactual_imagination", "geography_counterfactual",
        ["f/7.png"], reference_txt="A wider sea.", reference_txt_chinese="更宽的海。", reasoning_img="True"),
    row("hybrid_reasoning_4", ["temporal_reasoning", "causal_reasoning", "counterfactual_reasoning"],
        ["context_knowledge", "context_knowledge", "counterfactual_imagination"],
        ["precise_temporal_localization", "magnitude_change", "physical_counterfactual"], ["h/4.png"],
        reference_txt="Clock at 8, half the milk, dark strawberries.", reference_txt_chinese="八点。",
        reasoning_img="True", multi_turn="True"),
    row("hybrid_reasoning_7", ["causal_reasoning", "spatial_reasoning", "logical_reasoning"],
        ["context_knowledge", "relation", "explicit_rule_deduction"], ["order_relation", "direction", "game_deduction"],
        ["h/7.png"], multi_turn="True", reference_img="h/7_ref.png"),
]
# the judge's replies: (consistency, reasoning, plausibility), 1-5 (logical 0/1); None: not asked
REPLIES = {
    "temporal_reasoning_1": (5, 5, 5), "temporal_reasoning_8": (4, 3, 5), "causal_reasoning_1": (None, 5, 5),
    "causal_reasoning_2": (2, 1, 3), "spatial_reasoning_1": (5, 4, 4), "spatial_reasoning_8": (3, "none", 4),
    "logical_reasoning_1": (1, 1, None), "logical_reasoning_4": (0, 1, None), "counterfactual_reasoning_1": (5, 5, 4),
    "counterfactual_reasoning_7": (4, 2, 5), "hybrid_reasoning_4": (3, 4, 2), "hybrid_reasoning_7": (1, 0, None),
}
UNPARSABLE = "spatial_reasoning_8"      # its reasoning reply has no Final Score
MISSING = "causal_reasoning_2"          # no output image
# gemini_eval.py (RISEBench at 2902d8b, main), run outside this repository on these rows with these
# replies in its cache (<model>.pkl) and the MISSING output absent (its fallback: minimum scores):
# <model>_judge.csv, label -> (Score-Origin, Accuracy); Score-Percentage = 25*(Score-Origin - 1)
OFFICIAL_ZERO = {'Overall': (3.6545454545454548, 0.25), 'Overall_Reasoning': (3.6363636363636362, None), 'Overall_ApprConsistency': (3.8, None), 'Overall_VisualPlausibility': (3.875, None), 'Temporal': (4.35, 0.5), 'Temporal_Reasoning': (4.0, None), 'Temporal_Consistency': (4.5, None), 'Temporal_Quality': (5.0, None), 'Causal': (3.0, 0.5), 'Causal_Reasoning': (3.0, None), 'Causal_Consistency': (1.0, None), 'Causal_Quality': (3.0, None), 'Spatial': (4.3, 0.0), 'Spatial_Reasoning': (4.0, None), 'Spatial_Consistency': (5.0, None), 'Spatial_Quality': (4.0, None), 'Logical': (4.4, 0.5), 'Logical_Reasoning': (5.0, None), 'Logical_Consistency': (3.0, None), 'Counterfactual': (4.0, 0.0), 'Counterfactual_Reasoning': (3.5, None), 'Counterfactual_Consistency': (4.5, None), 'Counterfactual_Quality': (4.5, None), 'Hybrid': (2.2, 0.0), 'Hybrid_Reasoning': (2.5, None), 'Hybrid_ApprConsistency': (4.0, None), 'Hybrid_Quality': (2.0, None), 'subcategory/causal_reasoning/common_sense_knowledge': (3.0, 0.5), 'subcategory/counterfactual_reasoning/anomaly_correction_and_generation': (4.8, 0.0), 'subcategory/counterfactual_reasoning/counterfactual_imagination': (3.2, 0.0), 'subcategory/logical_reasoning/explicit_rule_deduction': (4.4, 0.5), 'subcategory/spatial_reasoning/relation': (4.3, 0.0), 'subcategory/spatial_reasoning/structure': (None, 0.0), 'subcategory/temporal_reasoning/common_sense_knowledge': (5.0, 1.0), 'subcategory/temporal_reasoning/disciplinary_knowledge': (3.7, 0.0), 'task_type/causal_reasoning/common_sense_knowledge/structural_damage': (3.0, 0.5), 'task_type/counterfactual_reasoning/anomaly_correction_and_generation/anatomical_errors': (4.8, 0.0), 'task_type/counterfactual_reasoning/counterfactual_imagination/geography_counterfactual': (3.2, 0.0), 'task_type/logical_reasoning/explicit_rule_deduction/Puzzle_Solving': (3.8, 0.0), 'task_type/logical_reasoning/explicit_rule_deduction/path_searching': (5.0, 1.0), 'task_type/spatial_reasoning/relation/direction': (4.3, 0.0), 'task_type/spatial_reasoning/structure/viewpoint_generation': (None, 0.0), 'task_type/temporal_reasoning/common_sense_knowledge/life_progression': (5.0, 1.0), 'task_type/temporal_reasoning/disciplinary_knowledge/chemistry': (3.7, 0.0)}
# ... and on the rows without MISSING and UNPARSABLE (what `--failures exclude` leaves)
OFFICIAL_EXCLUDE = {'Overall': (3.9199999999999995, 0.3), 'Overall_Reasoning': (3.9, None), 'Overall_ApprConsistency': (4.111111111111111, None), 'Overall_VisualPlausibility': (4.285714285714286, None), 'Temporal': (4.35, 0.5), 'Temporal_Reasoning': (4.0, None), 'Temporal_Consistency': (4.5, None), 'Temporal_Quality': (5.0, None), 'Causal': (5.0, 1.0), 'Causal_Reasoning': (5.0, None), 'Causal_Consistency': (None, None), 'Causal_Quality': (5.0, None), 'Spatial': (4.3, 0.0), 'Spatial_Reasoning': (4.0, None), 'Spatial_Consistency': (5.0, None), 'Spatial_Quality': (4.0, None), 'Logical': (4.4, 0.5), 'Logical_Reasoning': (5.0, None), 'Logical_Consistency': (3.0, None), 'Counterfactual': (4.0, 0.0), 'Counterfactual_Reasoning': (3.5, None), 'Counterfactual_Consistency': (4.5, None), 'Counterfactual_Quality': (4.5, None), 'Hybrid': (2.2, 0.0), 'Hybrid_Reasoning': (2.5, None), 'Hybrid_ApprConsistency': (4.0, None), 'Hybrid_Quality': (2.0, None), 'subcategory/causal_reasoning/common_sense_knowledge': (5.0, 1.0), 'subcategory/counterfactual_reasoning/anomaly_correction_and_generation': (4.8, 0.0), 'subcategory/counterfactual_reasoning/counterfactual_imagination': (3.2, 0.0), 'subcategory/logical_reasoning/explicit_rule_deduction': (4.4, 0.5), 'subcategory/spatial_reasoning/relation': (4.3, 0.0), 'subcategory/temporal_reasoning/common_sense_knowledge': (5.0, 1.0), 'subcategory/temporal_reasoning/disciplinary_knowledge': (3.7, 0.0), 'task_type/causal_reasoning/common_sense_knowledge/structural_damage': (5.0, 1.0), 'task_type/counterfactual_reasoning/anomaly_correction_and_generation/anatomical_errors': (4.8, 0.0), 'task_type/counterfactual_reasoning/counterfactual_imagination/geography_counterfactual': (3.2, 0.0), 'task_type/logical_reasoning/explicit_rule_deduction/Puzzle_Solving': (3.8, 0.0), 'task_type/logical_reasoning/explicit_rule_deduction/path_searching': (5.0, 1.0), 'task_type/spatial_reasoning/relation/direction': (4.3, 0.0), 'task_type/temporal_reasoning/common_sense_knowledge/life_progression': (5.0, 1.0), 'task_type/temporal_reasoning/disciplinary_knowledge/chemistry': (3.7, 0.0)}


def png(color, size=(24, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def image_names(r) -> list[str]:
    images = r["image"] if isinstance(r["image"], list) else [r["image"]]
    return [*images, *(r[k] for k in ("consistency_img", "reference_img") if k in r)]


def make_release(folder: Path, rows=ROWS) -> Path:
    """data/overall_data.json with its images, as in RISEBench++/."""
    for i, r in enumerate(rows):
        for k, name in enumerate(image_names(r)):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(png((15 * i, 60 + 30 * k, 100), size=(24 + k, 20 + k)))
    (folder / "overall_data.json").write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")
    return folder / "overall_data.json"


def reply_text(value) -> str:
    return "The image is ambiguous; I cannot score it." if value == "none" else \
        f"Step by step...\n\n**Final Score:** **{value}**"


def official_inputs(folder: Path) -> None:
    """What the official run outside this repository reads: the data file and each row's judge replies
    (judge1/judge2/judge3 as eval_vanilla returns them), MISSING left out of the cache."""
    make_release(folder)
    cache = {}
    for r in ROWS:
        if r["index"] == MISSING:
            continue
        c, re_, q = REPLIES[r["index"]]
        entry = {"judge1": None if c is None else reply_text(c), "judge2": reply_text(re_)}
        if q is not None:
            entry["judge3"] = reply_text(q)
        cache[r["index"]] = entry
    (folder / "cache.json").write_text(json.dumps(cache, ensure_ascii=False), encoding="utf-8")


def test_the_release_loads_with_what_each_judge_call_needs(tmp_path):
    bench = load_benchmark(make_release(tmp_path / "data"))
    assert bench.format == "risebench_pp" and [s.id for s in bench.samples] == [r["index"] for r in ROWS]
    by_id = {s.id: s for s in bench.samples}
    data = tmp_path / "data"
    multi = by_id["temporal_reasoning_8"]
    assert multi.image_paths() == [data / "t/8_1.png", data / "t/8_2.png"]
    assert multi.reference_images == [data / "t/8_cons.png", data / "t/8_ref.png"]
    assert multi.variables == {"cons_prompt": "general", "rea_prompt": "general_ref_img", "qua_prompt": "general"}
    assert by_id["temporal_reasoning_1"].reference_images == [data / "t/1.png"]  # no consistency_img: image[0]
    assert by_id["causal_reasoning_1"].variables == {"rea_prompt": "general_ref_txt", "qua_prompt": "general",
                                                     "reference_text": "Bitten apple."}  # consistency_free "True"
    assert by_id["spatial_reasoning_8"].variables["rea_prompt"] == "spatial_ref_txt_w_input"  # reasoning_img "True"
    assert by_id["logical_reasoning_1"].variables == {"cons_prompt": "logical", "rea_prompt": "logical_ref_img"}
    assert by_id["logical_reasoning_4"].variables["cons_prompt"] == "logical_ans"
    assert by_id["counterfactual_reasoning_7"].variables["qua_prompt"] == "counterfactual"
    hybrid = by_id["hybrid_reasoning_4"]
    assert hybrid.category == "hybrid_reasoning" and hybrid.instruction == \
        "1. Step 1 of hybrid_reasoning_4.\n2. Step 2 of hybrid_reasoning_4.\n3. Step 3 of hybrid_reasoning_4."
    assert hybrid.variables["qua_prompt"] == "counterfactual"          # a counterfactual step
    assert by_id["hybrid_reasoning_7"].variables == {"cons_prompt": "logical", "rea_prompt": "logical_ref_img"}
    # Chinese: the Chinese instruction and reference text, the same prompts
    cn = {s.id: s for s in load_benchmark(make_release(tmp_path / "cn"), "risebench_pp", options={"language": "cn"}).samples}
    assert cn["temporal_reasoning_1"].instruction == "编辑 temporal_reasoning_1。"
    assert cn["temporal_reasoning_1"].variables["reference_text"] == "腐烂的香蕉。"
    assert cn["hybrid_reasoning_4"].instruction.startswith("1. hybrid_reasoning_4 第1步。\n2. ")
    # any value but null sets a flag, as pd.isna reads it: "False" and false too
    rows = [dict(ROWS[3], consistency_free="False"), dict(ROWS[0], reasoning_img=False), dict(ROWS[5], reasoning_img=None)]
    flags = {s.id: s for s in load_benchmark(make_release(tmp_path / "flags", rows)).samples}
    assert "cons_prompt" not in flags["causal_reasoning_2"].variables
    assert flags["temporal_reasoning_1"].variables["rea_prompt"] == "general_ref_txt_w_input"
    assert flags["spatial_reasoning_8"].variables["rea_prompt"] == "spatial_ref_txt"


def test_bad_rows_name_the_index_and_the_field(tmp_path):
    rows = [dict(r) for r in ROWS]
    rows[0]["category"] = "temporal"
    del rows[3]["reference_txt"]
    rows[4]["image"] = "s/1.png"
    rows[6]["consistency_free"] = "True"
    rows[8]["category"] = ["counterfactual_reasoning"]
    rows[9]["image"] = ["../outside.png"]
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(make_release(tmp_path / "data", rows), "risebench_pp")
    text = str(err.value)
    assert "overall_data.json[0]: sample 'temporal_reasoning_1': category 'temporal': each must be one of" in text
    assert "overall_data.json[3]: sample 'causal_reasoning_2': reference_txt: the ground-truth description" in text
    assert "overall_data.json[4]: sample 'spatial_reasoning_1': image must be a list of image paths" in text
    assert "overall_data.json[6]: sample 'logical_reasoning_1': consistency_free on a logical case" in text
    assert "overall_data.json[8]: sample 'counterfactual_reasoning_1': category is a list but multi_turn is not set" in text
    assert "overall_data.json[9]: sample 'counterfactual_reasoning_7': image[0]: image path '../outside.png' escapes" in text
    with pytest.raises(BenchmarkError, match="Chinese"):
        load_benchmark(make_release(tmp_path / "cn", [{k: v for k, v in ROWS[0].items() if k != "instruction_chinese"}]),
                       "risebench_pp", options={"language": "cn"})


DIMENSION = {"consistency": 0, "plausibility": 2}


def dimension_of(question: str) -> int:
    return next((v for k, v in DIMENSION.items() if question.startswith(k)), 1)


def judged_by_the_protocol(samples) -> dict:
    proto = load_protocols().get("risebench-pp")
    out = {}
    for s in samples:
        parsed = {q.name: PARSERS[q.parse or proto.parse](reply_text(REPLIES[s.id][dimension_of(q.name)]), 1,
                                                          proto.low, proto.high)
                  for q in proto.asked(s.category, s.judge_variables(), {"reference"} if s.reference_images else set())}
        assert {dimension_of(n) for n in parsed} == {i for i, v in enumerate(REPLIES[s.id]) if v is not None}, s.id
        if all(p.ok for p in parsed.values()):
            headline, subs = proto.combine_scores({n: p.scores for n, p in parsed.items()})
            out[s.id] = {"status": "OK", "score": headline, "sub_scores": dict(subs)}
        else:
            kept = parsed_sub_scores(proto, {n: p.scores for n, p in parsed.items() if p.ok})
            out[s.id] = {"status": "PARSE_FAILED", "score": None, "sub_scores": dict(kept)}
    return out


def check_official(block: dict, official: dict, *, left_out: int = 0) -> None:
    """The block's rows against the official CSV's; left_out: groups whose only samples failed, which
    the official run on the rows without the failures cannot list (here: no score, no accuracy)."""
    got = {**block["rows"], **block["groups"]}
    extra = [label for label in got if label not in official]
    assert len(extra) == left_out and all(got[x]["Score-Origin"] is None and got[x]["Accuracy"] is None for x in extra)
    assert [label for label in got if label in official] == list(official)
    for label, (origin, accuracy) in official.items():
        row = got[label]
        assert row["Score-Origin"] == (pytest.approx(origin, abs=1e-12) if origin is not None else None), label
        assert row["Accuracy"] == (pytest.approx(accuracy, abs=1e-12) if accuracy is not None else None), label
        if origin is not None:
            assert row["Score-Percentage"] == pytest.approx(25 * (origin - 1)), label


def test_known_replies_give_gemini_eval_numbers(tmp_path):
    bench = load_benchmark(make_release(tmp_path / "data"))
    samples = bench.samples
    scores = judged_by_the_protocol([s for s in samples if s.id != MISSING])
    assert scores[UNPARSABLE]["status"] == "PARSE_FAILED"
    assert scores["logical_reasoning_4"]["sub_scores"] == {"ApprConsistency": 1.0, "Reasoning": 5.0, "complete": 0.0}
    assert scores["causal_reasoning_1"]["score"] == pytest.approx(0.2 * 5 + 0.8 * 5)
    edits = {s.id: {"status": "failed" if s.id == MISSING else "ok"} for s in samples}
    check_official(rpp.headline(samples, edits, scores, failures_as="zero"), OFFICIAL_ZERO)
    check_official(rpp.headline(samples, edits, scores), OFFICIAL_EXCLUDE, left_out=2)
    block = rpp.headline(samples, edits, scores)
    assert block["rows"]["Spatial"]["failures"] == 1 and block["rows"]["Causal"]["failures"] == 1
    text = rpp.console(block)
    assert "RISEBench++ (EN): Accuracy, Score-Origin (Score-Percentage)" in text and "  Overall: 30.0%, 3.920 (73.0)" in text


# -- end to end ---------------------------------------------------------------------------------
EDIT_SIZES = {r["index"]: (40 + 3 * i, 28 + i) for i, r in enumerate(ROWS)}


def cli(*args, timeout=300) -> tuple[int, str]:
    return run_orchestrator(*args, key=(KEY_ENV, KEY), timeout=timeout)


def _sizes(body) -> list[tuple[int, int]]:
    return [Image.open(io.BytesIO(base64.b64decode(c["image_url"]["url"].split(",", 1)[1]))).size
            for c in _content(body) if c.get("type") == "image_url"]


def _dimension(body) -> int:
    """0 consistency, 1 reasoning, 2 plausibility: by the official prompts' own words."""
    text = _text(body)
    if "visual plausibility" in text or "Perceptual Quality" in text:
        return 2
    return 0 if ("consistency" in text.split("\n")[0].lower() or "maintain consistency" in text
                 or "appearance consistency" in text or "Compare Image 2 against Image 1" in text) else 1


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    require_tiny_models()
    from tests.openai_endpoint import Fault, FaultProxy, TransformersServe

    base = tmp_path_factory.mktemp("rpp")
    bench = make_release(base / "data")
    for i, r in enumerate(ROWS):
        if r["index"] != MISSING:
            folder = base / "outputs" / "m2" / "images" / ("hybrid_reasoning" if "multi_turn" in r else r["category"])
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{r['index']}.png").write_bytes(png((250 - 9 * i, 40, 90), size=EDIT_SIZES[r["index"]]))
    server = TransformersServe(TINY_JUDGE, base / "serve.log").start()
    proxy = FaultProxy(server.url, api_key=KEY, upstream_max_tokens=128).start()
    try:
        for sid, values in REPLIES.items():
            for dim, value in enumerate(values):
                if value is not None:
                    proxy.when(lambda body, size=EDIT_SIZES[sid], dim=dim: _sizes(body)[-1] == size and _dimension(body) == dim,
                               Fault("reply", text=reply_text(value)), forever=True)
        run = base / "imported"
        imported = cli("import", str(base / "outputs"), "--layout", "risebench_pp", "--benchmark", str(bench),
                       "--output", str(run))
        scored = cli("score", str(run), "--judge-backend", "openai", "--judge-base-url", proxy.url,
                     "--judge-model", server.model, "--api-key-env", KEY_ENV, "--output", str(base / "judged"),
                     "--progress", "plain", "--allow-failures", "--failures", "zero")
        yield {"base": base, "judged": base / "judged", "import": imported, "score": scored,
               "requests": proxy.chat_requests}
    finally:
        proxy.stop()
        server.stop()


def test_imported_judged_and_exported_as_gemini_eval(judged, tmp_path):
    code, output = judged["import"]
    assert code == 0 and f"images/causal_reasoning/{MISSING}.png" in output, output
    code, output = judged["score"]
    assert code == 0, output
    block = json.loads((judged["judged"] / "summary.json").read_text())["suite"]
    check_official(block, OFFICIAL_ZERO)  # --failures zero: gemini_eval.py's own handling of failures
    assert "<h2>RISEBench++ (EN)</h2>" in (judged["judged"] / "report.html").read_text(encoding="utf-8")
    asked = [r.body for r in judged["requests"] if r.fault == "reply"]
    by_edit: dict = {}
    for body in asked:
        assert len(body["messages"]) == 1 and _content(body)[0]["type"] == "text" and body["max_tokens"] == 4096
        by_edit.setdefault(_sizes(body)[-1], []).append((_dimension(body), _sizes(body), _text(body)))
    # several inputs: consistency and plausibility against the consistency image, reasoning against the reference
    calls = sorted(by_edit[EDIT_SIZES["temporal_reasoning_8"]])
    edit = EDIT_SIZES["temporal_reasoning_8"]
    assert [(d, s) for d, s, _ in calls] == [(0, [(26, 22), edit]), (1, [(27, 23), edit]), (2, [(26, 22), edit])]
    assert "Alignment Between Output Image and Reference Image" in calls[1][2]
    free = sorted(by_edit[EDIT_SIZES["causal_reasoning_1"]])
    assert [d for d, _, _ in free] == [1, 2] and "**GroundTruth Description:** Bitten apple." in free[0][2]
    hybrid = sorted(by_edit[EDIT_SIZES["hybrid_reasoning_4"]])
    assert "**Instruction:**  1. Step 1 of hybrid_reasoning_4.\n2. Step 2" in hybrid[1][2]
    assert "counterfactual" in hybrid[2][2] and hybrid[1][1] == [(24, 20), EDIT_SIZES["hybrid_reasoning_4"]]
    assert sorted(d for d, _, _ in by_edit[EDIT_SIZES["hybrid_reasoning_7"]]) == [0, 1]  # a logical step: no quality
    code, output = cli("export", str(judged["judged"]), "--layout", "risebench_pp", "--to", str(tmp_path), "--method", "m")
    assert code == 0, output
    assert (tmp_path / "m" / "images" / "hybrid_reasoning" / "hybrid_reasoning_7.png").is_file()
    assert f"{MISSING}:" in output
