"""OmniContext reproduced: a small copy of the dataset as JSON Lines with its own fields (several
input images per row, every task-type family), made here; known PF/SC judge replies through the
omnicontext protocol and the suite's numbers, checked against VectorSpaceLab/OmniGen2's
omnicontext/calculate_statistics.py run outside this repository on the same judge outputs (only its
numbers are here); edits in the official results layout imported, judged end to end over the tiny
judge's OpenAI-compatible endpoint (which prompt and images each call got checked), exported back;
bad rows named.
"""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import pytest
from PIL import Image

from conftest import TINY_JUDGE, request_content as _content, request_text as _text, require_tiny_models, run_orchestrator
from orchestrator.benchmark import BenchmarkError, load_benchmark
from suites.omnicontext import headline as omni
from suites.protocols import load_protocols

KEY_ENV = "EDITFLEET_TEST_OMNI_KEY"
KEY = "sk-editfleet-omni-71c2e4"


def png(color, size=(40, 36)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


# key, task_type, number of input images, PF, SC (None: the reply cannot be read)
ROWS = [("sc_1", "single_character", 1, 8, 9), ("sc_2", "single_character", 1, 6, 4),
        ("so_1", "single_object", 1, 10, 7), ("so_2", "single_object", 1, 5, 5),
        ("mc_1", "multi_character", 2, 7, 7), ("mc_2", "multi_character", 2, 3, 9),
        ("mco_1", "multi_character_object", 3, 9, 5),
        ("scc_1", "scene_character", 2, 8, 6), ("scc_2", "scene_character", 2, 5, 10),
        ("sco_1", "scene_object", 2, 2, 8), ("sco_2", "scene_object", 2, None, 3)]
MISSING, UNREADABLE = "so_2", "sco_2"   # no edit in the imported folder; a PF reply that cannot be read
# calculate_statistics.py (OmniGen2 at 0f72fa9, analyze_scores and its __main__'s Average), run on
# score.jsonl files holding the judged rows above (the missing output skipped, as its scorer skips
# it; the unreadable reply, which it would replace by a random guess, left out): task -> PF, SC, overall
OFFICIAL = {"multi_character": (5.0, 8.0, 6.098076211353316), "multi_character_object": (9.0, 5.0, 6.708203932499369),
            "scene_character": (6.5, 8.0, 6.999635521070492), "scene_object": (2.0, 8.0, 4.0),
            "single_character": (7.0, 6.5, 6.692130429902463), "single_object": (10.0, 7.0, 8.366600265340756)}
OFFICIAL_AVERAGE = (6.583333333333333, 7.083333333333333, 6.477441060027734)


def make_release(folder: Path, rows=ROWS, *, extra_lines=()) -> Path:
    """omnicontext.jsonl with images/<key>_<n>.png beside it (the dataset's fields, images as files)."""
    (folder / "images").mkdir(parents=True)
    lines = []
    for i, (key, task, n, _, _) in enumerate(rows):
        names = [f"images/{key}_{k}.png" for k in range(n)]
        for k, name in enumerate(names):
            (folder / name).write_bytes(png((20 * i, 40 * k, 90)))
        lines.append(json.dumps({"key": key, "task_type": task, "instruction": f"Put the subject of {key} on a beach.",
                                 "instruction_language": "en", "input_images": names}))
    (folder / "omnicontext.jsonl").write_text("\n".join([*lines, *extra_lines]) + "\n", encoding="utf-8")
    return folder / "omnicontext.jsonl"


def test_rows_load_with_every_input_image_and_bad_rows_are_named(tmp_path):
    bench = load_benchmark(make_release(tmp_path / "data"))
    assert bench.format == "omnicontext" and [s.id for s in bench.samples] == [r[0] for r in ROWS]
    by_id = {s.id: s for s in bench.samples}
    assert [p.name for p in by_id["mco_1"].image_paths()] == ["mco_1_0.png", "mco_1_1.png", "mco_1_2.png"]
    assert by_id["scc_1"].variables == {"with_scene": "true"} and by_id["mc_1"].variables == {}
    assert by_id["sc_1"].category == "single_character"
    bad = [json.dumps({"key": "x1", "task_type": "single_object", "instruction": "a", "instruction_language": "en",
                       "input_images": ["../outside.png"]}),
           json.dumps({"key": "x2", "task_type": "single_object", "instruction": "a", "instruction_language": "en",
                       "input_images": "images/sc_1_0.png"}),
           json.dumps({"key": "x3", "task_type": "single_object", "instruction_language": "en", "input_images": []}),
           "{not json"]
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(make_release(tmp_path / "bad", extra_lines=bad), "omnicontext")
    text = str(err.value)
    assert "omnicontext.jsonl:12: sample 'x1': input_images[0]: image path '../outside.png' escapes" in text
    assert "omnicontext.jsonl:13: sample 'x2': input_images must be a non-empty list of image paths" in text
    assert "omnicontext.jsonl:14: sample 'x3': missing, empty or non-string field(s): instruction" in text
    assert "omnicontext.jsonl:15: record: not valid JSON" in text
    # calculate_statistics.py's --language: another language keeps no row, said so
    with pytest.raises(BenchmarkError, match="no row has instruction_language 'zh'"):
        load_benchmark(make_release(tmp_path / "zh"), "omnicontext", options={"language": "zh"})


def reply(value) -> str:
    return "I cannot decide: Score: 7 or 8." if value is None else \
        f'{{\n  "score": {value},\n  "reasoning": "The subjects match the references closely."\n}}'


def judged_lines(samples) -> dict:
    """Each sample's known replies through the protocol's questions, parser and combiner."""
    from suites.shared.parsing import PARSERS

    proto = load_protocols().get("omnicontext")
    known = {r[0]: (r[3], r[4]) for r in ROWS}
    out = {}
    for s in samples:
        parsed = {q.name: PARSERS[proto.parse](reply(known[s.id][0 if q.name.startswith("prompt") else 1]), 1,
                                               proto.low, proto.high)
                  for q in proto.asked(s.category, s.judge_variables())}
        if all(p.ok for p in parsed.values()):
            headline, subs = proto.combine_scores({n: p.scores for n, p in parsed.items()})
            out[s.id] = {"status": "OK", "score": headline, "sub_scores": dict(subs)}
        else:
            out[s.id] = {"status": "PARSE_FAILED", "score": None, "sub_scores": {}}
    return out


def check_official(block: dict) -> None:
    assert list(block["task_types"]) == ["single_character", "single_object", "multi_character",
                                         "multi_character_object", "scene_character", "scene_object"]
    for task, (pf, sc, overall) in OFFICIAL.items():
        row = block["task_types"][task]
        assert (row["PF"], row["SC"], row["Overall"]) == pytest.approx((pf, sc, overall), abs=1e-12), task
    avg = block["Average"]
    assert (avg["PF"], avg["SC"], avg["Overall"]) == pytest.approx(OFFICIAL_AVERAGE, abs=1e-12)


def test_known_replies_give_calculate_statistics_numbers(tmp_path):
    bench = load_benchmark(make_release(tmp_path / "data"))
    scores = judged_lines(bench.samples)
    assert scores["mco_1"] == {"status": "OK", "score": math.sqrt(45), "sub_scores": {"PF": 9.0, "SC": 5.0}}
    assert scores[UNREADABLE]["status"] == "PARSE_FAILED"
    edits = {s.id: {"status": "failed" if s.id == MISSING else "ok"} for s in bench.samples}
    block = omni.headline(bench.samples, edits, {k: v for k, v in scores.items() if k != MISSING})
    check_official(block)
    assert block["task_types"]["scene_object"]["failures"] == 1 and block["task_types"]["single_object"]["failures"] == 1
    # the overall mean is not sqrt(mean PF * mean SC)
    assert block["task_types"]["single_character"]["Overall"] != pytest.approx(math.sqrt(7.0 * 6.5))
    # failures as zero: PF = SC = overall = 0 for the failed sample, in its task type's means
    zero = omni.headline(bench.samples, edits, scores, failures_as="zero")
    assert zero["task_types"]["scene_object"]["Overall"] == pytest.approx(4.0 / 2)
    assert zero["task_types"]["single_object"]["PF"] == pytest.approx(10.0 / 2)
    text = omni.console(block)
    assert "single_character: 7.000, 6.500, 6.692  [2/2 scored]" in text and "Average: 6.583, 7.083, 6.477" in text


# -- end to end ---------------------------------------------------------------------------------
EDIT_SIZES = {r[0]: (44 + 3 * i, 30 + i) for i, r in enumerate(ROWS)}  # tells the judge calls apart


def cli(*args, timeout=300) -> tuple[int, str]:
    return run_orchestrator(*args, key=(KEY_ENV, KEY), timeout=timeout)


def _sizes(body) -> list[tuple[int, int]]:
    return [Image.open(io.BytesIO(base64.b64decode(c["image_url"]["url"].split(",", 1)[1]))).size
            for c in _content(body) if c.get("type") == "image_url"]


def _question(body) -> str:
    return "PF" if "fulfills the editing instruction" in _text(body) else "SC"


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    require_tiny_models()
    from tests.openai_endpoint import Fault, FaultProxy, TransformersServe

    base = tmp_path_factory.mktemp("omni")
    bench = make_release(base / "data")
    outputs = base / "results" / "other-model" / "fullset"
    for i, (key, task, _, _, _) in enumerate(ROWS):
        if key != MISSING:
            (outputs / task).mkdir(parents=True, exist_ok=True)
            (outputs / task / f"{key}.png").write_bytes(png((250 - 9 * i, 40, 90), size=EDIT_SIZES[key]))
    server = TransformersServe(TINY_JUDGE, base / "serve.log").start()
    proxy = FaultProxy(server.url, api_key=KEY, upstream_max_tokens=128).start()
    try:
        for key, _, _, pf, sc in ROWS:
            for dim, value in (("PF", pf), ("SC", sc)):
                proxy.when(lambda body, size=EDIT_SIZES[key], dim=dim: _sizes(body)[-1] == size and _question(body) == dim,
                           Fault("reply", text=reply(value)), forever=True)
        run = base / "imported"
        imported = cli("import", str(base / "results"), "--layout", "omnicontext", "--benchmark", str(bench),
                       "--output", str(run))
        scored = cli("score", str(run), "--judge-backend", "openai", "--judge-base-url", proxy.url,
                     "--judge-model", server.model, "--api-key-env", KEY_ENV, "--output", str(base / "judged"),
                     "--progress", "plain", "--allow-failures")
        yield {"base": base, "outputs": outputs, "judged": base / "judged", "import": imported, "score": scored,
               "requests": proxy.chat_requests}
    finally:
        proxy.stop()
        server.stop()


def test_imported_judged_and_exported_as_the_official_scripts(judged, tmp_path):
    code, output = judged["import"]
    assert code == 0 and f"fullset/single_object/{MISSING}.png" in output, output
    code, output = judged["score"]
    assert code == 0, output
    block = json.loads((judged["judged"] / "summary.json").read_text())["suite"]
    assert block["name"] == "OmniContext" and block["format"] == "omnicontext"
    check_official(block)  # no --protocol: the suite's own; the numbers are calculate_statistics.py's
    lines = {json.loads(l)["id"]: json.loads(l) for l in (judged["judged"] / "scores.jsonl").read_text().splitlines()}
    assert lines[UNREADABLE]["status"] == "PARSE_FAILED"
    assert "Average: 6.583, 7.083, 6.477" in output
    assert "<b>6.477</b>" in (judged["judged"] / "report.html").read_text(encoding="utf-8")

    # what each call got: one user message, text first, then every input (floored to multiples of 16),
    # then the edit at its own size; the Scene prompts for scene task types; the protocol's budget
    asked = [r.body for r in judged["requests"] if r.fault == "reply"]
    by_edit: dict = {}
    for body in asked:
        assert len(body["messages"]) == 1 and _content(body)[0]["type"] == "text" and body["max_tokens"] == 1400
        by_edit.setdefault(_sizes(body)[-1], []).append(body)
    calls = sorted(by_edit[EDIT_SIZES["mco_1"]], key=_question)
    assert [_question(b) for b in calls] == ["PF", "SC"]
    assert _sizes(calls[0]) == [(32, 32), (32, 32), (32, 32), EDIT_SIZES["mco_1"]]
    assert _text(calls[0]).startswith("You are a professional digital artist tasked with evaluating")
    assert _text(calls[0]).rstrip().endswith("Editing instruction: Put the subject of mco_1 on a beach.")
    assert "regardless of whether subject identities are preserved" in _text(calls[0])
    scene = sorted(by_edit[EDIT_SIZES["scc_1"]], key=_question)
    assert "subject identities or the scene are preserved" in _text(scene[0])
    assert "identities of all subjects and the scene background" in _text(scene[1])
    assert len(by_edit[EDIT_SIZES[UNREADABLE]]) == 3  # PF asked again with the strict suffix, then SC

    code, output = cli("export", str(judged["judged"]), "--layout", "omnicontext", "--to", str(tmp_path), "--method", "m")
    assert code == 0, output
    written = sorted(str(p.relative_to(tmp_path / "m")) for p in (tmp_path / "m").rglob("*.png"))
    assert written == sorted(f"fullset/{task}/{key}.png" for key, task, *_ in ROWS if key != MISSING)
    assert f"{MISSING}:" in output
