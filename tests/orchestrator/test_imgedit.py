"""ImgEdit-Bench (basic) reproduced: a small copy of the release (basic_edit.json, the original images
under a root folder) made here; edits in the suite's results layout (<key>.png) imported, judged end
to end over the tiny judge's OpenAI-compatible endpoint with known "<axis>: N" replies, and the
summary checked against step1/step2's formula computed here by hand; export, bad input.
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
from suites.imgedit.data import EDIT_TYPES
from suites.imgedit import headline as imgedit_suite
from suites.shared.parsing import parse_for
from suites.protocols import load_protocols
from tests.openai_endpoint import Fault, FaultProxy, TransformersServe

KEY_ENV = "EDITFLEET_TEST_IMGEDIT_KEY"
KEY = "sk-editfleet-imgedit-77ae01"
AXES = {"style": ("Style Fidelity", "Content Preservation", "Rendering Quality")}
DEFAULT_AXES = ("Prompt Compliance", "Visual Seamlessness", "Physical & Detail Fidelity")


def png(color, size=(24, 20), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def release() -> dict:
    """Two keys per edit type (three for add), ids as in the release: <folder>/<file>.jpg."""
    items, n = {}, 0
    for t, edit_type in enumerate(EDIT_TYPES):
        for k in range(3 if edit_type == "add" else 2):
            n += 1
            items[str(100 + n)] = {"id": f"{['animal', 'style', 'clothes'][k]}/{n:09d}.jpg",
                                   "prompt": f"Do the {edit_type} edit number {k}", "edit_type": edit_type}
    return items


def make_release(folder: Path, image_root: Path | None = None) -> Path:
    folder.mkdir(parents=True)
    root = image_root or folder
    for key, item in release().items():
        path = root / item["id"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png((int(key) % 256, 90, 40), fmt="JPEG"))
    (folder / "basic_edit.json").write_text(json.dumps(release(), indent=4))
    return folder / "basic_edit.json"


def scores_of(key: str) -> tuple[int, int, int]:
    n = int(key)
    return 1 + n % 5, 1 + (n * 3) % 5, 1 + (n * 7 + 2) % 5


def reply(key: str, edit_type: str) -> str:
    names = AXES.get(edit_type, DEFAULT_AXES)
    return "Brief reasoning: looks fine.\n" + "\n".join(f"{a}: {s}" for a, s in zip(names, scores_of(key)))


UNPARSABLE = "102"   # replace: answers without numbers, twice
MISSING = "108"      # remove: no <key>.png in the imported folder


def hand_computed(failed: set) -> tuple[dict, float | None]:
    per_type: dict[str, list[float]] = {}
    for key, item in release().items():
        if key in failed:
            continue
        per_type.setdefault(item["edit_type"], []).append(round(sum(scores_of(key)) / 3, 2))
    types = {t: round(sum(v) / len(v), 2) for t, v in per_type.items()}
    return types, sum(types.values()) / len(types)


def test_known_replies_give_step1_and_step2_numbers(tmp_path):
    bench = load_benchmark(make_release(tmp_path / "release"))
    assert bench.format == "imgedit" and len(bench.samples) == 19
    proto = load_protocols().get("imgedit")
    (question,) = proto.questions
    edits, scores = {}, {}
    for sample in bench.samples:
        edits[sample.id] = {"status": "ok"}
        parsed = parse_for(proto.parse)(reply(sample.id, sample.category), 3, proto.low, proto.high)
        assert parsed.ok and parsed.response == "looks fine.", parsed
        overall, _ = proto.combine_scores({question.name: parsed.scores})
        scores[sample.id] = {"status": "OK", "score": overall}
    scores[UNPARSABLE] = {"status": "PARSE_FAILED", "score": None}
    block = imgedit_suite.headline(bench.samples, edits, scores)
    types, overall = hand_computed({UNPARSABLE})
    assert {t: v["score"] for t, v in block["types"].items()} == types
    assert block["Overall"] == pytest.approx(overall)
    assert block["types"]["replace"]["failures"] == 1 and block["types"]["add"]["samples"] == 3
    # step1's rule: lines "<name>: <digits>"; not three of them in 1..5 is a failure, never a guess
    lines = parse_for("labelled-lines")
    assert not lines("Brief reasoning: x\nPrompt Compliance: 4\nVisual Seamlessness: 3", 3, 1, 5).ok
    assert "outside [1, 5]" in lines("a: 4\nb: 3\nc: 6", 3, 1, 5).reason
    assert lines("Score: 4/5\nb: 3\nc: 2\nd: 1", 3, 1, 5).scores == [3, 2, 1]


def test_imgedit_prompts_are_the_releases_own():
    """sha256 of Benchmark/Basic/prompts.json's texts (PKU-YuanGroup/ImgEdit at 547185d) with
    <edit_prompt> replaced by "X", as basic_bench.py does."""
    proto = load_protocols().get("imgedit")
    (question,) = proto.questions
    expected = {
        "replace": "1e20cdad5bba4ecec1fc0b1d99fba178",
        "add": "83bd652ec9d3cb2430d0916a189fbf16",
        "adjust": "258a0b2280cd5a1c2aff1d1776a15619",
        "remove": "41a0f0257d43ff6f3e84c1094fe30ead",
        "style": "16d48ddf4eb558d9c730bc3bb761d77a",
        "action": "28dd4a6406b2113b51f07179511324cc",
        "extract": "697362df6c24db769f5754fa5adb9526",
        "background": "96bc8cb0c63f2d3222df5b07f012564b",
        "compose": "dbade087397d785dc970d5b140722419",
    }
    _, adjust = proto.render_question(question, "adjust", {"edit_instruction": "X"})
    assert adjust.startswith("\nYou are a data rater specializing in grading attribute alteration edits.")
    assert adjust.endswith("editing instruction is : X.\n\nBelow are the images before and after editing:\n")
    rendered = {t: proto.render_question(question, t, {"edit_instruction": "X"})[1] for t in EDIT_TYPES}
    assert {t: hashlib.sha256(text.encode()).hexdigest()[:32] for t, text in rendered.items()} == expected
    assert proto.text_first and question.images == ("source", "edited") and proto.categories == sorted(EDIT_TYPES)


def test_bad_release_entries_name_the_key_and_the_field(tmp_path):
    path = make_release(tmp_path / "release")
    data = json.loads(path.read_text())
    data["101"]["edit_type"] = "recolor"
    del data["102"]["prompt"]
    data["104"]["id"] = "../outside.jpg"
    data["105"]["id"] = "animal/nothere.jpg"
    path.write_text(json.dumps(data))
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(path)
    text = str(err.value)
    assert "basic_edit.json['101']: sample '101': edit_type 'recolor' is not one of ImgEdit's 9" in text
    assert "basic_edit.json['102']: sample '102': missing or non-string field(s): prompt" in text
    assert "basic_edit.json['104']: sample '104': id: image path '../outside.jpg' escapes the image root" in text
    assert "basic_edit.json['105']: sample '105': image not found" in text


# -- end to end --------------------------------------------------------------------------------
def cli(*args, timeout=300) -> tuple[int, str]:
    return run_orchestrator(*args, key=(KEY_ENV, KEY), timeout=timeout)


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    require_tiny_models()
    base = tmp_path_factory.mktemp("imgedit")
    bench = make_release(base / "release", image_root=base / "Benchmark" / "singleturn")
    results = base / "results"
    results.mkdir()
    for i, key in enumerate(release()):
        if key != MISSING:
            (results / f"{key}.png").write_bytes(png((250 - i, 10 + i, 200), size=(32, 32)))
    server = TransformersServe(TINY_JUDGE, base / "serve.log").start()
    proxy = FaultProxy(server.url, api_key=KEY).start()
    try:
        for key, item in release().items():
            text = "I like it." if key == UNPARSABLE else reply(key, item["edit_type"])
            needle = f"editing instruction is : {item['prompt']}."
            proxy.when(lambda body, needle=needle: needle in _text(body), Fault("reply", text=text), forever=True)
        run = base / "imported"
        imported = cli("import", str(results), "--layout", "imgedit", "--benchmark", str(bench),
                       "--image-root", str(base / "Benchmark" / "singleturn"), "--output", str(run))
        scored = cli("score", str(run), "--judge-backend", "openai", "--judge-base-url", proxy.url,
                     "--judge-model", server.model, "--api-key-env", KEY_ENV, "--protocol", "imgedit",
                     "--output", str(base / "judged"), "--progress", "plain",
                     "--allow-failures")  # the missing edit (and any unread reply) failed
        yield {"base": base, "results": results, "run": run, "judged": base / "judged", "import": imported,
               "score": scored, "requests": proxy.chat_requests}
    finally:
        proxy.stop()
        server.stop()


def test_imported_and_judged_like_step1_and_step2(judged):
    code, output = judged["import"]
    assert code == 0 and "missing (recorded as failed edits) (1):\n    108.png" in output, output
    code, output = judged["score"]
    assert code == 0, output
    block = json.loads((judged["judged"] / "summary.json").read_text())["suite"]
    types, overall = hand_computed({UNPARSABLE, MISSING})
    assert {t: v["score"] for t, v in block["types"].items()} == types
    assert block["Overall"] == pytest.approx(overall)
    assert block["types"]["remove"]["failures"] == 1 and block["types"]["replace"]["failures"] == 1
    assert "ImgEdit-Bench (basic), per edit type (typescore):" in output
    assert f"  Overall: {block['Overall']:.2f}" in output
    report = (judged["judged"] / "report.html").read_text(encoding="utf-8")
    assert "<h2>ImgEdit-Bench (basic)</h2>" in report and f"<b>{block['Overall']:.2f}</b>" in report


def test_the_judge_got_the_text_first_then_the_original_then_the_edit(judged):
    asked = [r for r in judged["requests"] if r.fault == "reply"]
    assert len(asked) >= 18
    for request in asked:
        content = request.body["messages"][-1]["content"]
        assert [c["type"] for c in content] == ["text", "image_url", "image_url"]
        assert len(request.body["messages"]) == 1  # one user message, no system prompt


def test_export_writes_key_png_and_lists_the_missing(judged, tmp_path):
    code, output = cli("export", str(judged["judged"]), "--layout", "imgedit", "--to", str(tmp_path), "--method", "m")
    assert code == 0, output
    written = sorted(p.name for p in (tmp_path / "m").glob("*.png"))
    assert written == sorted(f"{k}.png" for k in release() if k != MISSING)
    for name in written:
        assert (tmp_path / "m" / name).read_bytes() == (judged["results"] / name).read_bytes()
    assert "missing edits, not written (never replaced by the source image) (1):\n    108:" in output
