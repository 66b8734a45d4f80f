"""ImgEdit-Bench UGE reproduced: a small copy of the release (UGE_edit.json, the original images under
a root folder) made here; the judge prompt is UGE_bench.py's own (sha256); fixed judge replies through
the protocol's parsing, combination and the suite's number give what Benchmark/UGE/get_average_score.py
printed for the same replies (run outside the repository: only its numbers are here); edits in the
results layout (<key>.png) imported, judged end to end over the tiny judge's OpenAI-compatible
endpoint with those replies, exported back; bad input names the key and the field.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import TINY_JUDGE, request_text as _text, require_tiny_models, run_orchestrator
from orchestrator.benchmark import BenchmarkError, load_benchmark
from suites.imgedit_uge import headline as uge
from suites.protocols import load_protocols
from suites.shared.parsing import parse_for
from tests.openai_endpoint import Fault, FaultProxy, TransformersServe

KEY_ENV = "EDITFLEET_TEST_UGE_KEY"
KEY = "sk-editfleet-uge-4be2d7"

# Fixed judge replies (written here, in the forms GPT-4o answers the UGE prompt and the forms of its
# README's examples) and what get_average_score.py (PKU-YuanGroup/ImgEdit at 547185d) gave for them,
# run outside the repository on a result.json of exactly these: extract_scores_and_average per key,
# and the printed final average.
REPLIES = {
    "1": "Brief reasoning: Lemon removed, rim slice now orange; natural.\nScore: 5",
    "2": "Brief reasoning: Person removed but the seat is warped.\nScore: 3",
    "3": "Brief reasoning: Tomato removed; slight blur.\nAdherence to Instructions: 4\nNaturalness: 3\n"
         "Editing Scope: 5\nNon-Edited Areas: 3",
    "4": "Brief reasoning: Wrong chair removed. Score: 2.",
    "5": "Brief reasoning: Number changed, font differs.\nScore: 3 (Acceptable)",
    "6": "Score: 4\nBrief reasoning: Sailboat fits the painting.",
    "7": "Brief reasoning: Hair blonde but face altered.\nInstruction: 2\nQuality: 3\nPreservation: 3",
    "8": "Brief reasoning: Pool table still there.\n**Score**: 1",
}
OFFICIAL_PER_KEY = {"1": 5.0, "2": 3.0, "3": 3.75, "4": None, "5": None, "6": 4.0, "7": 2.67, "8": 1.0}
OFFICIAL_AVERAGE = 3.24
# sha256 of UGE_bench.py's `prompt` with <edit_prompt> replaced by "X" (as the script replaces it)
OFFICIAL_PROMPT_SHA256 = "f9937fb34693ec56e6a53fb40b08eef3c6ec94596849b53bb256485c466a9743"


def png(color, size=(24, 20), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def release() -> dict:
    """Keys "1".."8" as UGE_edit.json has them: a flat image id and an instruction, no edit type."""
    return {k: {"id": f"{29784 + 1000 * int(k):09d}.jpg", "prompt": f"Remove object number {k} from the scene"}
            for k in REPLIES}


def make_release(folder: Path, image_root: Path) -> Path:
    folder.mkdir(parents=True)
    image_root.mkdir(parents=True, exist_ok=True)
    for key, item in release().items():
        (image_root / item["id"]).write_bytes(png((int(key) * 20, 90, 40), fmt="JPEG"))
    (folder / "UGE_edit.json").write_text(json.dumps(release(), indent=4))
    return folder / "UGE_edit.json"


def judged_offline(bench, replies: dict) -> tuple[dict, dict]:
    proto = load_protocols().get("imgedit-uge")
    (question,) = proto.questions
    parse = parse_for(proto.parser_name(question))
    edits, scores = {}, {}
    for sample in bench.samples:
        edits[sample.id] = {"status": "ok"}
        parsed = parse(replies[sample.id], 1, proto.low, proto.high)
        if parsed.ok:
            overall, _ = proto.combine_scores({question.name: parsed.scores})
            scores[sample.id] = {"status": "OK", "score": overall}
        else:
            scores[sample.id] = {"status": "PARSE_FAILED", "score": None, "reason": parsed.reason}
    return edits, scores


def test_release_loads_and_is_told_from_the_basic_suite(tmp_path):
    bench = load_benchmark(make_release(tmp_path / "uge", tmp_path / "Benchmark" / "images"),
                           options={"image_root": str(tmp_path / "Benchmark" / "images")})
    assert bench.format == "imgedit_uge" and [s.id for s in bench.samples] == list(REPLIES)
    assert {s.category for s in bench.samples} == {"uge"}
    assert bench.samples[0].instruction == "Remove object number 1 from the scene"
    assert bench.samples[0].image_path == (tmp_path / "Benchmark" / "images" / "000030784.jpg").resolve()
    basic = tmp_path / "basic_edit.json"
    basic.write_text(json.dumps({"1": {"id": "a.jpg", "prompt": "p", "edit_type": "add"}}))
    (tmp_path / "a.jpg").write_bytes(png("red", fmt="JPEG"))
    assert load_benchmark(basic).format == "imgedit"
    # bad entries: named by key and field
    path = tmp_path / "uge" / "UGE_edit.json"
    data = json.loads(path.read_text())
    del data["2"]["prompt"]
    data["3"]["id"] = "../outside.jpg"
    data["4"]["id"] = "nothere.jpg"
    path.write_text(json.dumps(data))
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(path, "imgedit_uge", options={"image_root": str(tmp_path / "Benchmark" / "images")})
    text = str(err.value)
    assert "UGE_edit.json['2']: sample '2': missing or non-string field(s): prompt" in text
    assert "UGE_edit.json['3']: sample '3': id: image path '../outside.jpg' escapes the image root" in text
    assert "UGE_edit.json['4']: sample '4': image not found" in text


def test_the_prompt_is_uge_bench_pys_own():
    proto = load_protocols().get("imgedit-uge")
    (question,) = proto.questions
    _, text = proto.render_question(question, "uge", {"edit_instruction": "X"})
    assert text.startswith("\nTask: Evaluation of Image Editing Process\n")
    assert "Editing Instruction: X.\n\nBelow are the images before and after editing:\n" in text
    assert hashlib.sha256(text.encode()).hexdigest() == OFFICIAL_PROMPT_SHA256
    assert proto.text_first and question.images == ("source", "edited") and (proto.low, proto.high) == (1, 5)


def test_fixed_replies_give_get_average_score_pys_numbers(tmp_path):
    bench = load_benchmark(make_release(tmp_path / "uge", tmp_path / "images"),
                           options={"image_root": str(tmp_path / "images")})
    edits, scores = judged_offline(bench, REPLIES)
    assert {k: s["score"] for k, s in scores.items()} == OFFICIAL_PER_KEY
    block = uge.headline(bench.samples, edits, scores)
    assert block["Overall"] == OFFICIAL_AVERAGE
    assert (block["samples"], block["scored"], block["failures"], block["pending"]) == (8, 6, 2, 0)
    assert "no '<name>: <number>' line" in scores["4"]["reason"]
    # failures as zero: the two unread replies count 0
    zero = uge.headline(bench.samples, edits, scores, failures_as="zero")
    assert zero["Overall"] == round((5 + 3 + 3.75 + 4 + 2.67 + 1) / 8, 2)
    # where the script would average a value off the scale in, the reply is a failure here
    parse = parse_for("labelled-lines-mean")
    assert "outside [1, 5]" in parse("Brief reasoning: x\nScore: 8", 1, 1, 5).reason
    assert parse("Brief reasoning: x\nScore: 4\nNaturalness: 5", 1, 1, 5).scores == [4.5]
    # a sample not judged yet is pending, in no mean
    pending = uge.headline(bench.samples, edits, {k: v for k, v in scores.items() if k != "1"})
    assert pending["pending"] == 1 and pending["Overall"] == round((3 + 3.75 + 4 + 2.67 + 1) / 5, 2)


# -- end to end --------------------------------------------------------------------------------
MISSING = "8"  # no 8.png in the imported folder


def cli(*args, timeout=300) -> tuple[int, str]:
    return run_orchestrator(*args, key=(KEY_ENV, KEY), timeout=timeout)


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    require_tiny_models()
    base = tmp_path_factory.mktemp("uge")
    images = base / "Benchmark" / "UGE"
    bench = make_release(base / "release", images)
    results = base / "results"
    results.mkdir()
    for i, key in enumerate(release()):
        if key != MISSING:
            (results / f"{key}.png").write_bytes(png((250 - i, 10 + i, 200), size=(32, 32)))
    server = TransformersServe(TINY_JUDGE, base / "serve.log").start()
    proxy = FaultProxy(server.url, api_key=KEY).start()
    try:
        for key, item in release().items():
            needle = f"Editing Instruction: {item['prompt']}."
            proxy.when(lambda body, needle=needle: needle in _text(body), Fault("reply", text=REPLIES[key]), forever=True)
        run = base / "imported"
        imported = cli("import", str(results), "--layout", "imgedit_uge", "--benchmark", str(bench),
                       "--image-root", str(images), "--output", str(run))
        scored = cli("score", str(run), "--judge-backend", "openai", "--judge-base-url", proxy.url,
                     "--judge-model", server.model, "--api-key-env", KEY_ENV, "--output", str(base / "judged"),
                     "--progress", "plain", "--allow-failures")  # the missing edit and the unread replies failed
        yield {"results": results, "judged": base / "judged", "import": imported, "score": scored,
               "requests": proxy.chat_requests}
    finally:
        proxy.stop()
        server.stop()


def test_judged_end_to_end_like_get_average_score(judged):
    code, output = judged["import"]
    assert code == 0 and "missing (recorded as failed edits) (1):\n    8.png" in output, output
    code, output = judged["score"]
    assert code == 0, output
    summary = json.loads((judged["judged"] / "summary.json").read_text())
    block = summary["suite"]
    # keys 4 and 5 unread (as the script drops them), 8 not edited: the script's number over the rest
    assert block["Overall"] == round((5 + 3 + 3.75 + 4 + 2.67) / 5, 2)
    assert (block["scored"], block["failures"]) == (5, 3)
    assert f"ImgEdit-Bench UGE (get_average_score): Overall {block['Overall']:.2f}  [5/8 scored, 3 failed]" in output
    report = (judged["judged"] / "report.html").read_text(encoding="utf-8")
    assert "<h2>ImgEdit-Bench UGE</h2>" in report and f"<b>{block['Overall']:.2f}</b>" in report
    # one user message: the prompt text, then the original, then the edit (UGE_bench.py's order)
    asked = [r for r in judged["requests"] if r.fault == "reply"]
    assert len(asked) >= 7
    for request in asked:
        content = request.body["messages"][-1]["content"]
        assert [c["type"] for c in content] == ["text", "image_url", "image_url"] and len(request.body["messages"]) == 1


def test_export_writes_key_png(judged, tmp_path):
    code, output = cli("export", str(judged["judged"]), "--layout", "imgedit_uge", "--to", str(tmp_path), "--method", "m")
    assert code == 0, output
    written = sorted(p.name for p in (tmp_path / "m").glob("*.png"))
    assert written == sorted(f"{k}.png" for k in release() if k != MISSING)
    assert all((tmp_path / "m" / n).read_bytes() == (judged["results"] / n).read_bytes() for n in written)
