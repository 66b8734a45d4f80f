"""KRIS-Bench reproduced: a small copy of the release folder (all 20 categories, several input images,
temporal frames, a viewpoint ground truth) made here; known judge replies through the kris protocol's
parsing and combination and the suite's aggregation, checked against summarize.py's formula computed
here by hand; edits in the official results layout (<method>/<category>/<id>.jpg) imported, judged
end to end over the tiny judge's OpenAI-compatible endpoint with known replies (which prompt, images
and captions each call got checked), exported back; bad input names the file, the id and the field.
"""

from __future__ import annotations

import html
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import request_content as _content, request_text as _text, run_orchestrator
from orchestrator.benchmark import BenchmarkError, load_benchmark
from suites.kris.data import CATEGORIES, KNOWLEDGE
from suites.kris import headline as kris_suite

KEY_ENV = "EDITFLEET_TEST_KRIS_KEY"
KEY = "sk-editfleet-kris-3d9a40"
MULTI, TEMPORAL, VIEW = "multi-element_composition", "temporal_prediction", "viewpoint_change"
VIESCORE = "You are a professional digital artist."  # in the viescore protocol's prompts


def png(color, size=(24, 20), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def release() -> dict[str, dict]:
    """category -> annotation.json: one id per category, two for count_change and chemistry, three
    inputs for the multi-element id, temporal ids predicting frame 1 and frame 3."""
    out = {}
    for c, category in enumerate(CATEGORIES):
        ids = ["1", "2"] if category in ("count_change", "chemistry") else ["1"]
        if category == TEMPORAL:
            ids = ["1", "16"]
        items = {}
        for key in ids:
            item = {"ori_img": f"{key}.jpg", "gt_img": "", "ins_en": f"Edit {category} number {key}.",
                    "explain_en": f"Because of {category} {key}, it should look so." if category in KNOWLEDGE else ""}
            if category == MULTI:
                item["ori_img"] = [f"{key}-1.jpg", f"{key}-2.jpeg", f"{key}-3.png"]
            if category == TEMPORAL:
                item["ori_img"] = ["1-2.jpg", "1-3.jpg", "1-4.jpg"] if key == "1" else ["16-1.jpg", "16-2.jpg", "16-4.jpg"]
                item["gt_img"] = "1-1.jpg" if key == "1" else "16-3.jpg"
            if category == VIEW:
                item["gt_img"] = f"{key}-gt.png"
            items[key] = item
        out[category] = items
    return out


def input_color(category: str, name: str) -> tuple[int, int, int]:
    c = CATEGORIES.index(category)
    return (10 + 11 * c, (sum(map(ord, name)) * 7) % 200, 40)


def make_release(folder: Path, only: set[str] | None = None) -> Path:
    """KRIS_Bench/<category>/annotation.json with the images beside it, as the release has them;
    only: these sample ids (<category>_<id>)."""
    root = folder / "KRIS_Bench"
    for category, items in release().items():
        if only is not None:
            items = {k: v for k, v in items.items() if f"{category}_{k}" in only}
            if not items:
                continue
        (root / category).mkdir(parents=True)
        (root / category / "annotation.json").write_text(json.dumps(items, ensure_ascii=False, indent=2), encoding="utf-8")
        for item in items.values():
            names = item["ori_img"] if isinstance(item["ori_img"], list) else [item["ori_img"]]
            for name in names + ([item["gt_img"]] if item["gt_img"] else []):
                fmt = "PNG" if name.endswith(".png") else "JPEG"
                (root / category / name).write_bytes(png(input_color(category, name), fmt=fmt))
    return root


# -- the loader --------------------------------------------------------------------------------------
def test_the_release_folder_loads_as_the_scripts_read_it(tmp_path):
    root = make_release(tmp_path)
    bench = load_benchmark(root)
    assert bench.format == "kris" and len(bench.samples) == 23 and set(bench.categories) == set(CATEGORIES)
    by_id = {s.id: s for s in bench.samples}
    multi = by_id[f"{MULTI}_1"]
    assert multi.instruction == f"Edit {MULTI} number 1." and multi.extras["key"] == "1"
    assert [p.name for p in multi.image_paths()] == ["1-1.jpg", "1-2.jpeg", "1-3.png"]
    assert by_id["chemistry_2"].variables["explain_en"] == "Because of chemistry 2, it should look so."
    assert [p.name for p in by_id[f"{VIEW}_1"].reference_images] == ["1-gt.png"]
    assert by_id[f"{TEMPORAL}_1"].variables["target_frame"] == "1"
    assert by_id[f"{TEMPORAL}_16"].variables["target_frame"] == "3"
    # the digest covers every annotation.json: a changed instruction is another benchmark
    path = root / "color_change" / "annotation.json"
    path.write_text(path.read_text().replace("number 1", "number one"))
    assert load_benchmark(root).sha256 != bench.sha256
    # a file is not the KRIS-Bench format; the folder is no other format
    with pytest.raises(BenchmarkError, match="is a folder"):
        load_benchmark(path, "kris")
    with pytest.raises(BenchmarkError, match="got a folder"):
        load_benchmark(root, "imgedit")


def test_bad_annotations_name_the_file_the_id_and_the_field(tmp_path):
    root = make_release(tmp_path)

    def edit(category, change):
        path = root / category / "annotation.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    edit("color_change", lambda d: d["1"].pop("ins_en"))
    edit("count_change", lambda d: d["2"].update(ori_img="../outside.jpg"))
    edit(VIEW, lambda d: d["1"].update(gt_img=""))
    edit(TEMPORAL, lambda d: d["16"].update(ori_img=["16-1.jpg", "16-2.jpg", "16-5.jpg"]))
    edit(MULTI, lambda d: d["1"].update(ori_img=["1-1.jpg", "missing.jpg"]))
    edit("physics", lambda d: d["1"].update(explain_en=3))
    (root / "colour_change").mkdir()
    (root / "colour_change" / "annotation.json").write_text("{}")
    (root / "size_adjustment" / "annotation.json").write_text("{not json")
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(root)
    text = str(err.value)
    assert "color_change/annotation.json['1']: sample 'color_change_1': ins_en: missing or not a string" in text
    assert "count_change/annotation.json['2']: sample 'count_change_2': ori_img: image path '../outside.jpg' escapes its category folder" in text
    assert f"{VIEW}/annotation.json['1']: sample '{VIEW}_1': gt_img: viewpoint_change needs the ground-truth image" in text
    assert (f"{TEMPORAL}/annotation.json['16']: sample '{TEMPORAL}_16': ori_img frames [1, 2, 5]: temporal_prediction "
            "needs three different frames of 1-4") in text
    assert f"sample '{MULTI}_1': images[1]: image not found" in text and "missing.jpg" in text
    assert "physics/annotation.json['1']: sample 'physics_1': explain_en must be a string, got int" in text
    assert "colour_change/annotation.json: record: category folder 'colour_change' is not one of KRIS-Bench's 20" in text
    assert "size_adjustment/annotation.json: record: not valid JSON" in text


# -- known replies through parsing, the protocol's combination and the suite's aggregation ----------
# summarize.py's tables, written out here: type -> (categories, dimensions counted).
TYPES = {
    "Attribute Perception": (("count_change", "color_change", "size_adjustment", "part_completion", "anomaly_correction"), "VC VQ IF"),
    "Spatial Perception": ((VIEW, "position_movement"), "VC VQ IF"),
    "Temporal Prediction": ((TEMPORAL,), "VC VQ IF"),
    "Social Science": (("humanities", "practical_knowledge"), "VC VQ IF KP"),
    "Natural Science": (("biology", "chemistry", "geography", "medicine", "mathematics", "physics"), "VC VQ IF KP"),
    "Logical Reasoning": (("abstract_reasoning", "rule-based_reasoning"), "VC VQ IF KP"),
    "Instruction Decomposition": ((MULTI, "multi-instruction_execution"), "VC VQ IF"),
}
GROUPS = {"Factual Knowledge": ("Attribute Perception", "Spatial Perception", "Temporal Prediction"),
          "Conceptual Knowledge": ("Social Science", "Natural Science"),
          "Procedural Knowledge": ("Logical Reasoning", "Instruction Decomposition")}
KEYS = {"VC": "consistency_score", "VQ": "quality_score", "IF": "instruction_score", "KP": "knowledge_score"}


def known_scores(i: int) -> dict[str, int]:
    """The judge's 1-5 for sample i, per dimension."""
    return {d: 1 + (i * 3 + k * 2 + i // 5) % 5 for k, d in enumerate(("VC", "VQ", "IF", "KP"))}


def reply(i: int, dim: str, knowledge: bool) -> str:
    """The reply to sample i's call for `dim`, in the forms GPT-4o answers these prompts."""
    s = known_scores(i)
    if dim == "IF" and knowledge:  # the dual prompt's template: not JSON (no commas, unquoted reasoning)
        return ("1. Detect Difference: the beaker now fizzes.\n{\n  \"instruction_score\": %d,\n  \"instruction_reasoning\": "
                "1. Detect Difference 2. Expected Visual Caption 3. Instruction Match 4. Decision\n  \"knowledge_score\": %d,\n"
                "  \"knowledge_reasoning\": 1. Detect Difference 2. Expected Knowledge Expectation 3. Knowledge Match 4. Decision\n}"
                % (s["IF"], s["KP"]))
    key = KEYS[dim]
    forms = [
        '{"reasoning": "Compared to original image, 2 of 3 cups stayed.", "%s": %d}',
        'The layout is kept (1 change).\n{\n"reasoning": **Compared to original image**, the cup moved **in the edited image**. \n"%s": %d\n}',
        'Here it is:\n```json\n{\n  "%s": %d,\n  "reasoning": "1. Detect Difference 2. Expected Visual Caption 3. Match 4. Decision"\n}\n```',
        '{\n"reasoning": "Structural coherence: ✔, Natural appearance: ✔, Artifacts: ✘",\n"%s": %d,\n}',
    ]
    return forms[(i + len(dim)) % len(forms)] % (key, s[dim])


# Replies the official parser would read anyway (first digit / unclamped), recorded PARSE_FAILED here.
GUESSED = {("count_change_2", "VQ"): "Quality is 4/5: one small artifact, 3 fingers.",
           ("physics_1", "IF"): '{"instruction_score": 7, "instruction_reasoning": "x", "knowledge_score": 2}'}


def dims_of(category: str) -> list[str]:
    return ["VC", "VQ", "IF", "KP"] if category in KNOWLEDGE else ["VC", "VQ", "IF"]


# The dimensions a GUESSED reply loses (a sample's other dimensions still count, as summarize.py
# drops a None one dimension at a time): the IF+KP call gives both.
LOST = {"count_change_2": {"VQ"}, "physics_1": {"IF", "KP"}}


def hand_computed(samples, failed: set[str], lost: dict | None = None) -> dict:
    """summarize.py by hand: (s-1)*25 per score; per type each dimension's mean and AVG over all its
    scores pooled; per group and Overall the AVG of all their scores pooled. `failed`: samples without
    any score (failed edits); `lost`: sample id -> the dimensions whose reply failed."""
    index = {s.id: i for i, s in enumerate(samples)}
    lost = lost or {}
    pooled = {}
    for t, (categories, dims) in TYPES.items():
        if any(s.category in categories for s in samples):  # summarize.py skips a type it has no file of
            pooled[t] = {d: [(known_scores(index[s.id])[d] - 1) * 25 for s in samples
                             if s.category in categories and s.id not in failed and d not in lost.get(s.id, ())]
                       for d in dims.split()}
    mean = lambda v: sum(v) / len(v) if v else None  # noqa: E731
    types = {t: {**{d: mean(v) for d, v in p.items()}, "AVG": mean([x for v in p.values() for x in v])}
             for t, p in pooled.items()}
    groups = {g: mean([x for t in ts if t in pooled for v in pooled[t].values() for x in v])
              for g, ts in GROUPS.items() if any(t in pooled for t in ts)}
    overall = mean([x for p in pooled.values() for v in p.values() for x in v])
    return {"types": types, "groups": groups, "Overall": overall}


def score_line(protocol, sample, i: int) -> dict:
    """What the judge records for sample i: its asked questions' replies parsed, then combined; where
    one fails, PARSE_FAILED with the others' values kept (parsed.<dimension>)."""
    from suites.shared.combine import parsed_sub_scores
    from suites.shared.parsing import parse_for

    present = {"reference"} if sample.reference_images else set()
    asked = protocol.asked(sample.category, sample.variables, present)
    values, errors = {}, []
    for q in asked:
        dim = "VC" if q.scores[0] == "consistency_score" else "VQ" if q.scores[0] == "quality_score" else "IF"
        text = GUESSED.get((sample.id, dim)) or reply(i, dim, sample.category in KNOWLEDGE)
        parsed = parse_for(protocol.parser_name(q), q.scores)(text, len(q.scores), protocol.low, protocol.high)
        if not parsed.ok:
            errors.append(f"{q.name}: {parsed.reason}")
            continue
        values[q.name] = parsed.scores
    if errors:
        return {"status": "PARSE_FAILED", "score": None, "sub_scores": dict(parsed_sub_scores(protocol, values)),
                "error": "; ".join(errors)}
    headline, subs = protocol.combine_scores(values)
    return {"status": "OK", "score": headline, "sub_scores": dict(subs)}


def test_known_replies_give_summarize_py_numbers(tmp_path):
    from suites.protocols import load_protocols

    bench = load_benchmark(make_release(tmp_path))
    kris = load_protocols().get("kris")
    edits = {s.id: {"status": "ok"} for s in bench.samples}
    scores = {s.id: score_line(kris, s, i) for i, s in enumerate(bench.samples)}
    failed = {sid for sid, line in scores.items() if line["status"] != "OK"}
    assert failed == {"count_change_2", "physics_1"}, {k: v.get("error") for k, v in scores.items() if v["status"] != "OK"}
    # each sample: VC, VQ, IF (KP) raw as the judge gave them; its score the mean of (s-1)*25
    index = {s.id: i for i, s in enumerate(bench.samples)}
    for s in bench.samples:
        if s.id in failed:
            continue
        want = {d: known_scores(index[s.id])[d] for d in dims_of(s.category)}
        assert scores[s.id]["sub_scores"] == want, s.id
        assert scores[s.id]["score"] == pytest.approx(sum((v - 1) * 25 for v in want.values()) / len(want))
    # a failed sample keeps its other dimensions' scores (raw 1-5), never the failed one's
    assert scores["physics_1"]["sub_scores"] == {f"parsed.{d}": known_scores(index["physics_1"])[d] for d in ("VC", "VQ")}
    block = kris_suite.headline(bench.samples, edits, scores)
    expected = hand_computed(bench.samples, set(), LOST)
    for t, want in expected["types"].items():
        got = block["types"][t]
        assert {k: got[k] for k in want} == pytest.approx(want), t
        assert ("KP" in got) == (t in ("Social Science", "Natural Science", "Logical Reasoning")), t
    assert {g: block["groups"][g]["AVG"] for g in GROUPS} == pytest.approx(expected["groups"])
    assert block["Overall"]["AVG"] == pytest.approx(expected["Overall"])
    # a group pools its scores: Logical Reasoning's samples weigh 4 scores, Instruction Decomposition's 3
    procedural = block["groups"]["Procedural Knowledge"]["AVG"]
    logical, decomposition = block["types"]["Logical Reasoning"]["AVG"], block["types"]["Instruction Decomposition"]["AVG"]
    assert procedural == pytest.approx((logical * 2 * 4 + decomposition * 2 * 3) / 14)
    assert procedural != pytest.approx((logical + decomposition) / 2)
    assert block["categories"]["count_change"] == {**block["categories"]["count_change"], "samples": 2, "scored": 1, "failures": 1}
    # count_change_2's VQ failed: its VC and IF count, its VQ does not
    cc = [known_scores(index[f"count_change_{k}"]) for k in (1, 2)]
    assert block["categories"]["count_change"]["VC"] == pytest.approx(sum((s["VC"] - 1) * 25 for s in cc) / 2)
    assert block["categories"]["count_change"]["VQ"] == pytest.approx((cc[0]["VQ"] - 1) * 25)
    # failures as zero: each failed dimension counts 0 on 0-100, the sample's others as the judge gave them
    zero = kris_suite.headline(bench.samples, edits, scores, failures_as="zero")
    assert zero["categories"]["count_change"]["VQ"] == pytest.approx(((cc[0]["VQ"] - 1) * 25 + 0.0) / 2)
    assert zero["categories"]["count_change"]["VC"] == block["categories"]["count_change"]["VC"]
    # a sample not judged yet is pending: in no mean
    pending = kris_suite.headline(bench.samples, edits, {k: v for k, v in scores.items() if k != "chemistry_2"})
    assert pending["categories"]["chemistry"]["pending"] == 1 and pending["categories"]["chemistry"]["scored"] == 1


# -- end to end: import, judge over the tiny judge's endpoint with known replies, export --------------
MISSING = "color_change_1"       # no edit file in the imported folder
UNREADABLE = "humanities_1"      # an edit file that is not an image
PNG_EDIT = "chemistry_1"         # <id>.png instead of <id>.jpg
# A few samples of each kind of call (CI time): plain, failed, knowledge, ground truth, several inputs, frames.
E2E = {"count_change_1", "count_change_2", "chemistry_1", f"{VIEW}_1", f"{MULTI}_1", f"{TEMPORAL}_16", MISSING, UNREADABLE}


def edit_color(i: int) -> tuple[int, int, int]:
    return (8 + 10 * i, 250 - 10 * i, 60 + (i % 3) * 70)


def nearest_sample(color, n: int) -> int:
    return min(range(n), key=lambda i: sum((a - b) ** 2 for a, b in zip(edit_color(i), color)))


def make_results_layout(folder: Path, samples) -> Path:
    """Edits made elsewhere, in results/<method>/<category>/<id>.jpg."""
    for i, sample in enumerate(samples):
        path = folder / "othermethod" / sample.category / f"{sample.extras['key']}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        if sample.id == MISSING:
            continue
        if sample.id == PNG_EDIT:  # Bagel's copies of the scripts write <id>.png
            path.with_suffix(".png").write_bytes(png(edit_color(i), size=(28, 22)))
            continue
        path.write_bytes(b"not an image" if sample.id == UNREADABLE else png(edit_color(i), size=(28, 22), fmt="JPEG"))
    return folder


def cli(*args, timeout=300) -> tuple[int, str]:
    return run_orchestrator(*args, key=(KEY_ENV, KEY), timeout=timeout)


def _images(body) -> list[Image.Image]:
    import base64

    return [Image.open(io.BytesIO(base64.b64decode(c["image_url"]["url"].split(",", 1)[1]))).convert("RGB")
            for c in _content(body) if c.get("type") == "image_url"]


def _dimension(text: str) -> str:
    if '"consistency_score"' in text:
        return "VC"
    if '"quality_score"' in text:
        return "VQ"
    return "IF"


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    from conftest import TINY_JUDGE, require_tiny_models
    from tests.openai_endpoint import Fault, FaultProxy, TransformersServe

    require_tiny_models()
    base = tmp_path_factory.mktemp("kris")
    root = make_release(base / "release", only=E2E)
    samples = load_benchmark(root).samples
    layout = make_results_layout(base / "results", samples)
    server = TransformersServe(TINY_JUDGE, base / "serve.log").start()
    proxy = FaultProxy(server.url, api_key=KEY).start()
    try:
        def rule(i, sample, dim):
            def predicate(body):
                text = _text(body)
                if _dimension(text) != dim:
                    return False
                if dim == "VQ":
                    images = _images(body)
                    return len(images) == 1 and nearest_sample(images[0].getpixel((0, 0)), len(samples)) == i
                return f"{sample.instruction}\n" in text
            return predicate

        for i, sample in enumerate(samples):
            for dim in ("VC", "VQ", "IF"):
                text = GUESSED.get((sample.id, dim)) or reply(i, dim, sample.category in KNOWLEDGE)
                proxy.when(rule(i, sample, dim), Fault("reply", text=text), forever=True)
        run = base / "imported"
        imported = cli("import", str(layout), "--layout", "kris", "--benchmark", str(root), "--output", str(run))
        judge = ["--judge-backend", "openai", "--judge-base-url", proxy.url, "--judge-model", server.model,
                 "--api-key-env", KEY_ENV]
        # no --protocol: a KRIS-Bench run is judged with the suite's own, `kris`
        # --allow-failures: the missing and the unreadable edit failed (exit 3 without it)
        scored = cli("score", str(run), *judge, "--output", str(base / "judged"), "--progress", "plain",
                     "--allow-failures")
        requests = proxy.chat_requests
        # another protocol named: judged with it, and KRIS-Bench's own numbers said to be absent
        proxy.when(lambda body: VIESCORE in json.dumps(body.get("messages")),
                   Fault("reply", text='{"score": [7, 8], "reasoning": "fine"}'), forever=True)
        other = cli("score", str(run), *judge, "--protocol", "viescore", "--output", str(base / "other"),
                    "--progress", "plain", "--allow-failures")
        # a protocol that cannot judge KRIS-Bench's samples (the seed's needs a description): refused first
        refused = cli("score", str(run), *judge, "--protocol", "seed-0-10", "--output", str(base / "refused"))
        yield {"base": base, "root": root, "samples": samples, "layout": layout, "run": run, "judged": base / "judged",
               "import": imported, "score": scored, "requests": requests, "other": other, "other_dir": base / "other",
               "refused": refused, "refused_dir": base / "refused"}
    finally:
        proxy.stop()
        server.stop()


def test_judged_with_another_protocol_the_summary_says_kris_bench_numbers_are_absent_and_why(judged):
    code, output = judged["other"]
    assert code == 0, output
    summary = json.loads((judged["other_dir"] / "summary.json").read_text())
    assert "suite" not in summary
    absent = summary["suite_absent"]
    assert (absent["suite"], absent["protocol"], absent["needs"]) == ("kris", "viescore", "kris")
    why = ("KRIS-Bench's own numbers are absent: this run was judged with protocol 'viescore', and they are "
           "computed only from its own protocol 'kris'")
    assert absent["why"].startswith(why) and why in output
    assert html.escape(why) in (judged["other_dir"] / "report.html").read_text(encoding="utf-8")
    assert summary["scored"] == len(judged["samples"]) - 2  # the missing and the unreadable edit


def test_a_protocol_that_cannot_judge_the_samples_is_refused_before_anything_starts(judged):
    code, output = judged["refused"]
    assert code != 0 and "Traceback" not in output
    assert (f"{len(judged['samples'])} sample(s) cannot be judged with protocol 'seed-0-10': missing template "
            "variable(s): original_description (") in output
    assert "nothing was started" in output and not judged["refused_dir"].exists()
    manifest = json.loads((judged["judged"] / "manifest.json").read_text())
    assert manifest["judge"]["protocol"]["name"] == "kris"  # the first score named none: the suite's own


def test_judged_end_to_end_summary_is_summarize_py_by_hand(judged, tmp_path):
    code, output = judged["import"]
    assert code == 0, output
    assert "missing (recorded as failed edits) (1):\n    color_change/1.jpg" in output
    assert "unreadable (recorded as failed edits) (1):\n    humanities/1.jpg" in output
    imported = {json.loads(l)["id"]: json.loads(l) for l in (judged["run"] / "edits.jsonl").read_text().splitlines()}
    assert imported[PNG_EDIT]["provenance"]["from"].endswith("othermethod/chemistry/1.png")
    code, output = judged["score"]
    assert code == 0, output
    summary = json.loads((judged["judged"] / "summary.json").read_text())
    block = summary["suite"]
    assert block["name"] == "KRIS-Bench" and block["format"] == "kris"
    expected = hand_computed(judged["samples"], {MISSING, UNREADABLE}, {"count_change_2": LOST["count_change_2"]})
    assert set(block["types"]) == set(expected["types"]) and set(block["groups"]) == set(expected["groups"])
    for t, want in expected["types"].items():
        got = {k: block["types"][t][k] for k in want}
        assert got == ({k: pytest.approx(v) if v is not None else None for k, v in want.items()}), t
    assert {g: block["groups"][g]["AVG"] for g in expected["groups"]} == pytest.approx(expected["groups"])
    assert block["Overall"]["AVG"] == pytest.approx(expected["Overall"])
    assert f"Overall:\n  AVG: {expected['Overall']:.2f}" in output
    assert "Attribute Perception:  [1/3 scored, 2 failed]" in output
    report = (judged["judged"] / "report.html").read_text(encoding="utf-8")
    assert "<h2>KRIS-Bench</h2>" in report and f"<b>{expected['Overall']:.2f}</b>" in report
    lines = {json.loads(l)["id"]: json.loads(l) for l in (judged["judged"] / "scores.jsonl").read_text().splitlines()}
    assert lines["count_change_2"]["status"] == "PARSE_FAILED" and "quality_score" in lines["count_change_2"]["error"]
    assert set(lines["count_change_2"]["sub_scores"]) == {"parsed.VC", "parsed.IF"}  # its VQ reply failed

    # which prompt, images and captions each call got, as the official scripts send them
    asked = [r.body for r in judged["requests"] if r.fault == "reply"]
    samples = judged["samples"]
    by_id = {s.id: (i, s) for i, s in enumerate(samples)}

    def calls(sample_id, dim):
        i, s = by_id[sample_id]
        return [b for b in asked if _dimension(_text(b)) == dim and (
            f"{s.instruction}\n" in _text(b) if dim != "VQ" else
            len(_images(b)) == 1 and nearest_sample(_images(b)[0].getpixel((0, 0)), len(samples)) == i)]

    def parts(body):  # the user message as (kind, caption text or image colour)
        return [("text", c["text"]) if c["type"] == "text" else ("image", None) for c in _content(body)]

    # temporal, frame 3 to predict: the prompt, then frames 1-4 in order with the edit as frame 3
    (vc,) = calls(f"{TEMPORAL}_16", "VC")
    assert [p for p in parts(vc)[1:]] == [("text", "Frame 1 (Reference):"), ("image", None), ("text", "Frame 2 (Reference):"),
                                         ("image", None), ("text", "Frame 3 (Generated):"), ("image", None),
                                         ("text", "Frame 4 (Reference):"), ("image", None)]
    frames = [im.getpixel((0, 0)) for im in _images(vc)]
    assert nearest_sample(frames[2], len(samples)) == by_id[f"{TEMPORAL}_16"][0]
    assert all(abs(a - b) <= 3 for a, b in zip(frames[0], input_color(TEMPORAL, "16-1.jpg")))
    assert _text(vc).startswith("\nYou are a professional digital artist and image-evaluation specialist.\n\n## Inputs\n"
                                "1. **Reference Frames**: multiple original images")
    (if_frames,) = calls(f"{TEMPORAL}_16", "IF")
    assert parts(if_frames)[5] == ("text", "Frame 3 (Generated):") and "temporal instruction" in _text(if_frames)
    # multi-element: every input image, then the edit
    (vc,) = calls(f"{MULTI}_1", "VC")
    assert [t for k, t in parts(vc)[1:] if k == "text"] == ["Reference Image 1:", "Reference Image 2:", "Reference Image 3:",
                                                          "Predicted Image:"]
    (vq,) = calls(f"{MULTI}_1", "VQ")
    assert parts(vq)[1:] == [("text", "This is the image to evaluate:"), ("image", None)]
    # viewpoint: its IF call sees the ground truth too, after the source and the edit
    (view,) = calls(f"{VIEW}_1", "IF")
    assert [t for k, t in parts(view)[1:] if k == "text"] == ["This is the original image:", "This is the edited image:",
                                                            "This is the ground truth image:"]
    assert all(abs(a - b) <= 3 for a, b in zip(_images(view)[2].getpixel((0, 0)), input_color(VIEW, "1-gt.png")))
    assert "using the ground-truth image as reference" in _text(view)
    assert calls(MISSING, "VC") == []  # a missing edit is not judged
    # knowledge: one IF+KP call that sees explain_en; the others the plain IF prompt
    (dual,) = calls("chemistry_1", "IF")
    assert "**Real-World Knowledge Explanation**：Because of chemistry 1, it should look so.\n" in _text(dual)
    assert parts(dual)[1:] == [("text", "This is the original image:"), ("image", None),
                               ("text", "This is the edited image:"), ("image", None)]
    (plain,) = calls("count_change_1", "IF")
    assert "Real-World Knowledge" not in _text(plain) and "**instruction_score**" in _text(plain)
    (vq,) = calls("chemistry_1", "VQ")
    assert parts(vq)[1:] == [("text", "This is the edited image:"), ("image", None)]
    # the guessed reply was asked again with the strict suffix, then PARSE_FAILED
    assert len(calls("count_change_2", "VQ")) == 2

    # export: the official layout, JPEG files, the missing edits listed and not written
    code, output = cli("export", str(judged["judged"]), "--layout", "kris", "--to", str(tmp_path / "results"), "--method", "mine")
    assert code == 0, output
    root = tmp_path / "results" / "mine"
    for i, s in enumerate(samples):
        path = root / s.category / f"{s.extras['key']}.jpg"
        if s.id in (MISSING, UNREADABLE):
            assert not path.exists()
            continue
        data = path.read_bytes()
        assert data[:3] == b"\xff\xd8\xff", path  # a JPEG, as the scripts read <id>.jpg
        assert nearest_sample(Image.open(io.BytesIO(data)).convert("RGB").getpixel((0, 0)), len(samples)) == i
    assert "missing edits, not written (never replaced by the source image) (2):" in output
