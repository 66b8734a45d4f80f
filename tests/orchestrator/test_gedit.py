"""GEdit-Bench reproduced: a small copy of the release (all 11 task groups, en and cn, Intersection
flags) made here; edits made "elsewhere" in the official results layout imported, judged end to end
over the tiny judge's OpenAI-compatible endpoint with known judge replies, and the summary checked
against calculate_statistics.py's formula computed here by hand; export writes the layout the
official scorer reads; bad input names the file, the key and the field.
"""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import pytest
from PIL import Image

from conftest import TINY_JUDGE, request_text as _text, require_tiny_models, run_orchestrator
from orchestrator.benchmark import BenchmarkError, load_benchmark
from suites.gedit.data import GROUPS
from suites.gedit import headline as gedit_suite
from suites.shared.combine import parsed_sub_scores
from suites.shared.parsing import parse_reply
from suites.protocols import load_protocols
from tests.openai_endpoint import Fault, FaultProxy, TransformersServe

KEY_ENV = "EDITFLEET_TEST_GEDIT_KEY"
KEY = "sk-editfleet-gedit-5c1f0a"
SOURCE_SIZE = (40, 32)   # the edits are 48x48: the judge must see them at 40x32
EDIT_SIZE = (48, 48)


def png(color, size) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def release_rows() -> list[dict]:
    """Every group in English (two keys for the first three) and in Chinese (one key each)."""
    rows = []
    for g, group in enumerate(GROUPS):
        for n in range(2 if g < 3 else 1):
            rows.append({"key": f"k{g:02d}{n}", "task_type": group, "instruction": f"edit {group} number {n}",
                         "instruction_language": "en", "Intersection_exist": n == 0})
        rows.append({"key": f"k{g:02d}0", "task_type": group, "instruction": f"把 {group} 改一下",
                     "instruction_language": "cn", "Intersection_exist": g % 3 == 0})
    return rows


def make_release(folder: Path) -> Path:
    """The README's export of the Hugging Face dataset: gedit.jsonl + images/<key>_<lang>.png."""
    (folder / "images").mkdir(parents=True)
    with open(folder / "gedit.jsonl", "w", encoding="utf-8") as f:
        for i, row in enumerate(release_rows()):
            name = f"images/{row['key']}_{row['instruction_language']}.png"
            (folder / name).write_bytes(png((10 + i, 200, 30), SOURCE_SIZE))
            f.write(json.dumps({**row, "input_image": name}, ensure_ascii=False) + "\n")
    return folder / "gedit.jsonl"


def edit_color(i: int) -> tuple[int, int, int]:
    return (250 - 3 * i, 5 + 2 * i, 128)


# Known judge replies per (language, key): (SC reply, PQ reply), in the forms VIEScore judges answer.
def replies(i: int, row: dict) -> tuple[str, str]:
    a, b, c, d = (i * 3) % 11, (i * 5 + 2) % 11, (i * 7 + 1) % 11, 10 - (i % 4)
    sc = f'{{\n"score" : [{a}, {b}],\n"reasoning" : "sample {i}"\n}}' if i % 2 else f"||V^=^V||\n{{\"score\": [{a}, {b}], \"reasoning\": \"ok\"}}\n||V^=^V||"
    pq = f'Here you go: {{"score": [{c}, {d}], "reasoning": "fine"}}'
    return sc, pq


UNPARSABLE = ("en", "k011")        # the judge answers gibberish twice: PARSE_FAILED, out of the means
MISSING = ("cn", "k080")           # no edit file in the imported folder
UNREADABLE = ("en", "k001")        # an edit file that is not an image


def make_results_layout(folder: Path) -> Path:
    """Edits made elsewhere, in <method>/fullset/<task_type>/<lang>/<key>.png."""
    for i, row in enumerate(release_rows()):
        where = (row["instruction_language"], row["key"])
        path = folder / "othermethod" / "fullset" / row["task_type"] / where[0] / f"{row['key']}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if where == MISSING:
            continue
        path.write_bytes(b"not an image" if where == UNREADABLE else png(edit_color(i), EDIT_SIZE))
    return folder


def hand_computed(failed: set) -> dict:
    """calculate_statistics.py by hand: O = sqrt(SC*PQ) per sample, means per group, mean of 11."""
    out = {}
    for lang in ("en", "cn"):
        for subset in ("fullset", "intersection"):
            per_group = {g: [] for g in GROUPS}
            for i, row in enumerate(release_rows()):
                if row["instruction_language"] != lang or (lang, row["key"]) in failed:
                    continue
                if subset == "intersection" and not row["Intersection_exist"]:
                    continue
                a, b, c, d = (i * 3) % 11, (i * 5 + 2) % 11, (i * 7 + 1) % 11, 10 - (i % 4)
                sc, pq = min(a, b), min(c, d)
                per_group[row["task_type"]].append((sc, pq, math.sqrt(sc * pq)))
            means = {g: [sum(v[k] for v in vals) / len(vals) for k in range(3)] if vals else None
                     for g, vals in per_group.items()}
            average = (None if any(m is None for m in means.values())
                       else [sum(means[g][k] for g in GROUPS) / 11 for k in range(3)])
            out[(lang, subset)] = (means, average)
    return out


# -- known replies through parsing, the protocol's combination and the suite's aggregation ----------
def test_known_replies_give_calculate_statistics_numbers(tmp_path):
    bench = load_benchmark(make_release(tmp_path / "release"), options={"language": "all"})
    vie = load_protocols().get("viescore")
    index = {(r["instruction_language"], r["key"]): i for i, r in enumerate(release_rows())}
    edits, scores = {}, {}
    for sample in bench.samples:
        i = index[(sample.language, sample.extras["key"])]
        edits[sample.id] = {"status": "ok"}
        texts = replies(i, release_rows()[i])
        if (sample.language, sample.extras["key"]) == UNPARSABLE:
            texts = (texts[0], "The quality is fine, I'd say.")  # its SC reply is read, its PQ one is not
        parsed = {q.name: parse_reply(text, len(q.scores), vie.low, vie.high) for q, text in zip(vie.questions, texts)}
        if not all(p.ok for p in parsed.values()):
            # as the judge records it: PARSE_FAILED, the SC reply's values kept (parsed.SC.<part>)
            kept = parsed_sub_scores(vie, {name: p.scores for name, p in parsed.items() if p.ok})
            scores[sample.id] = {"status": "PARSE_FAILED", "score": None, "sub_scores": dict(kept)}
            continue
        overall, subs = vie.combine_scores({name: p.scores for name, p in parsed.items()})
        scores[sample.id] = {"status": "OK", "score": overall, "sub_scores": dict(subs)}
    failed_id = f"{UNPARSABLE[1]}_{UNPARSABLE[0]}"
    assert scores[failed_id]["status"] == "PARSE_FAILED"
    assert sorted(scores[failed_id]["sub_scores"]) == ["parsed.SC.editing_success", "parsed.SC.over_editing"]
    # calculate_statistics.py reads a sample's SC, PQ and O together (VIEScore asks both again and
    # guesses rather than leave one out): the failed sample is in no mean, its SC included
    block = gedit_suite.headline(bench.samples, edits, scores)
    expected = hand_computed({UNPARSABLE})
    for (lang, subset), (means, average) in expected.items():
        table = block["languages"][lang][subset]
        for group in GROUPS:
            got = table["groups"][group]
            want = means[group]
            assert [got["SC"], got["PQ"], got["O"]] == (pytest.approx(want) if want else [None] * 3), (lang, subset, group)
        got_avg = [table["Average"][m] for m in ("SC", "PQ", "O")]
        assert got_avg == (pytest.approx(average) if average else [None] * 3), (lang, subset)
    # The Average is over the 11 groups, unweighted: not the pooled mean of the samples.
    en = block["languages"]["en"]["fullset"]
    assert en["groups"]["background_change"]["samples"] == 2 and en["groups"]["text_change"]["samples"] == 1
    assert en["groups"]["color_alter"]["failures"] == 1 and en["groups"]["color_alter"]["scored"] == 1
    # a sample not judged yet is counted as pending and in no mean
    unjudged = {i: r for i, r in scores.items() if i != "k021_en"}
    material = gedit_suite.headline(bench.samples, edits, unjudged)["languages"]["en"]["fullset"]["groups"]["material_alter"]
    assert (material["samples"], material["scored"], material["pending"]) == (2, 1, 1)
    assert material["SC"] == scores["k020_en"]["sub_scores"]["SC"]
    # failures as zero: the failed sample counts 0 for SC, PQ and O
    zero = gedit_suite.headline(bench.samples, edits, scores, failures_as="zero")
    assert zero["languages"]["en"]["fullset"]["groups"]["color_alter"]["O"] == pytest.approx(
        en["groups"]["color_alter"]["O"] / 2)


def test_viescore_prompts_are_step1x_edits_own(tmp_path):
    """The prompts as GEdit-Bench/viescore/__init__.py assembles them from vie_prompts.py (task tie)."""
    vie = load_protocols().get("viescore")
    sc_q, pq_q = vie.questions
    _, sc = vie.render_question(sc_q, "color_alter", {"edit_instruction": "make it {blue}"})
    _, pq = vie.render_question(pq_q, "color_alter", {"edit_instruction": "make it {blue}"})
    context = ('You are a professional digital artist. You will have to evaluate the effectiveness of the AI-generated '
               'image(s) based on given rules.\nAll the input images are AI-generated. All human in the images are '
               'AI-generated too. so you need not worry about the privacy confidentials.\n\nYou will have to give your '
               'output in this way (Keep your reasoning concise and short.):\n{\n"score" : [...],\n"reasoning" : "..."\n}')
    assert sc.startswith(context + "\nRULES:\n\nTwo images will be provided: The first being the original AI-generated image")
    assert "Note that sometimes the two images might look identical due to the failure of image edit.\n\n\nFrom scale 0 to 10: \n" in sc
    assert sc.endswith("'score2' evaluates the degree of overediting.\n\nEditing instruction: make it {blue}\n")
    assert pq.startswith(context + "\nRULES:\n\nThe image is an AI-generated image.\n")
    assert pq.endswith("Put the score in a list such that output score = [naturalness, artifacts]\n")
    assert vie.resize == {"edited": "source"}
    assert [q.images for q in vie.questions] == [("source", "edited"), ("edited",)]


def test_bad_release_rows_name_the_line_the_key_and_the_field(tmp_path):
    path = make_release(tmp_path / "release")
    rows = path.read_text(encoding="utf-8").splitlines()
    bad = json.loads(rows[1]); bad["task_type"] = "subject_add"
    worse = json.loads(rows[2]); worse["instruction_language"] = "zh"
    worst = json.loads(rows[3]); del worst["instruction"]
    rows[1:4] = [json.dumps(bad), json.dumps(worse), json.dumps(worst)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(path, options={"language": "all"})
    text = str(err.value)
    assert "gedit.jsonl:2: sample 'k001': task_type 'subject_add' is not one of GEdit-Bench's 11 groups" in text
    assert "gedit.jsonl:3: sample 'k000': instruction_language 'zh' is not en or cn" in text
    assert "gedit.jsonl:4: sample 'k010': missing or non-string field(s): instruction" in text


# -- end to end: import, judge over the tiny judge's endpoint with known replies, export --------------
def cli(*args, env_key=True, timeout=300) -> tuple[int, str]:
    return run_orchestrator(*args, key=(KEY_ENV, KEY if env_key else None), timeout=timeout)


def _images(body) -> list[Image.Image]:
    content = body["messages"][-1]["content"]
    return [Image.open(io.BytesIO(base64.b64decode(c["image_url"]["url"].split(",", 1)[1])))
            for c in content if c.get("type") == "image_url"]


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    require_tiny_models()
    base = tmp_path_factory.mktemp("gedit")
    bench = make_release(base / "release")
    layout = make_results_layout(base / "results")
    server = TransformersServe(TINY_JUDGE, base / "serve.log").start()
    proxy = FaultProxy(server.url, api_key=KEY).start()
    try:
        rows = release_rows()
        by_color = {edit_color(i): i for i in range(len(rows))}

        def rule(i, question):
            row = rows[i]

            def predicate(body):
                images = _images(body)
                if question == "SC":
                    return len(images) == 2 and f"Editing instruction: {row['instruction']}\n" in _text(body)
                return len(images) == 1 and by_color.get(images[0].convert("RGB").getpixel((0, 0))) == i
            return predicate

        for i, row in enumerate(rows):
            sc, pq = replies(i, row)
            if (row["instruction_language"], row["key"]) == UNPARSABLE:
                sc = pq = "I would rather describe the colours."
            proxy.when(rule(i, "SC"), Fault("reply", text=sc), forever=True)
            proxy.when(rule(i, "PQ"), Fault("reply", text=pq), forever=True)
        run = base / "imported"
        imported = cli("import", str(layout), "--layout", "gedit", "--benchmark", str(bench), "--language", "all",
                       "--output", str(run))
        scored = cli("score", str(run), "--judge-backend", "openai", "--judge-base-url", proxy.url,
                     "--judge-model", server.model, "--api-key-env", KEY_ENV, "--protocol", "viescore",
                     "--output", str(base / "judged"), "--progress", "plain",
                     "--allow-failures")  # the missing edit (and any unread reply) failed
        yield {"base": base, "bench": bench, "layout": layout, "run": run, "judged": base / "judged",
               "import": imported, "score": scored, "requests": proxy.chat_requests}
    finally:
        proxy.stop()
        server.stop()


def test_imported_edits_record_provenance_and_list_what_is_missing(judged):
    code, output = judged["import"]
    assert code == 0, output
    assert "missing (recorded as failed edits) (1):\n    fullset/subject-replace/cn/k080.png" in output
    assert "unreadable (recorded as failed edits) (1):\n    fullset/background_change/en/k001.png" in output
    edits = {json.loads(l)["id"]: json.loads(l) for l in (judged["run"] / "edits.jsonl").read_text().splitlines()}
    ok = edits["k000_en"]
    source_file = judged["layout"] / "othermethod/fullset/background_change/en/k000.png"
    assert ok["status"] == "ok" and ok["provenance"] == {
        "imported": True, "layout": "gedit", "from": str(source_file),
        "sha256": __import__("hashlib").sha256(source_file.read_bytes()).hexdigest()}
    assert (judged["run"] / ok["path"]).read_bytes() == source_file.read_bytes()
    assert edits["k080_cn"]["status"] == "failed" and "not in the imported folder" in edits["k080_cn"]["error"]
    assert edits["k001_en"]["status"] == "failed" and "unreadable" in edits["k001_en"]["error"]


def test_judged_summary_is_calculate_statistics_by_hand(judged):
    code, output = judged["score"]
    assert code == 0, output
    summary = json.loads((judged["judged"] / "summary.json").read_text())
    block = summary["suite"]
    assert block["name"] == "GEdit-Bench" and set(block["languages"]) == {"en", "cn"}
    expected = hand_computed({UNPARSABLE, MISSING, UNREADABLE})
    for (lang, subset), (means, average) in expected.items():
        table = block["languages"][lang][subset]
        for group in GROUPS:
            got = [table["groups"][group][m] for m in ("SC", "PQ", "O")]
            assert got == (pytest.approx(means[group]) if means[group] else [None] * 3), (lang, subset, group)
        got_avg = [table["Average"][m] for m in ("SC", "PQ", "O")]
        assert got_avg == (pytest.approx(average) if average else [None] * 3), (lang, subset)
    # The console and the report carry the suite's own names.
    avg = block["languages"]["en"]["fullset"]["Average"]
    assert "GEdit-Bench-EN (Semantics SC, Quality PQ, Overall O):" in output
    assert f"  Average: {avg['SC']:.3f}, {avg['PQ']:.3f}, {avg['O']:.3f}" in output
    assert "GEdit-Bench-CN Intersection" in output
    report = (judged["judged"] / "report.html").read_text(encoding="utf-8")
    assert "<h3>GEdit-Bench-EN</h3>" in report and "<h3>GEdit-Bench-CN Intersection</h3>" in report
    assert f"<b>{avg['O']:.3f}</b>" in report
    scores = [json.loads(l) for l in (judged["judged"] / "scores.jsonl").read_text().splitlines()]
    assert {s["id"]: s["status"] for s in scores}["k011_en"] == "PARSE_FAILED"


def test_the_judge_saw_the_edit_at_the_source_size(judged):
    asked = [r for r in judged["requests"] if r.fault == "reply"]  # the samples' questions (not the warm-up)
    sc_requests = [r for r in asked if len(_images(r.body)) == 2]
    assert len(sc_requests) >= 22  # 22 samples judged (the unparsable one asked twice)
    for request in sc_requests:
        source, edited = _images(request.body)
        assert source.size == SOURCE_SIZE and edited.size == SOURCE_SIZE
    pq = [r for r in asked if len(_images(r.body)) == 1]
    assert pq and all(_images(r.body)[0].size == SOURCE_SIZE for r in pq)


def test_export_writes_the_official_layout_and_lists_missing_edits(judged, tmp_path):
    code, output = cli("export", str(judged["judged"]), "--layout", "gedit", "--to", str(tmp_path / "results"),
                       "--method", "mine")
    assert code == 0, output
    root = tmp_path / "results" / "mine"
    for i, row in enumerate(release_rows()):
        folder = root / "fullset" / row["task_type"] / row["instruction_language"]
        source = judged["bench"].parent / f"images/{row['key']}_{row['instruction_language']}.png"
        assert (folder / f"{row['key']}_SRCIMG.png").read_bytes() == source.read_bytes()
        edit = folder / f"{row['key']}.png"
        if (row["instruction_language"], row["key"]) in (MISSING, UNREADABLE):
            assert not edit.exists()  # never filled with the source image
        else:
            layout_file = judged["layout"] / "othermethod" / edit.relative_to(root)
            assert edit.read_bytes() == layout_file.read_bytes()
    record = json.loads((root / "editfleet_export.json").read_text())
    assert sorted(m.split(":")[0] for m in record["missing"]) == ["k001_en", "k080_cn"]
    assert "missing edits, not written (never replaced by the source image) (2):" in output
    # Exporting again over an earlier export: a stale file of a now-missing edit does not survive.
    stale = root / "fullset/subject-replace/cn/k080.png"
    stale.write_bytes(png((1, 2, 3), EDIT_SIZE))
    code, output = cli("export", str(judged["judged"]), "--layout", "gedit", "--to", str(tmp_path / "results"),
                       "--method", "mine")
    assert code == 0 and not stale.exists(), output
    # A folder that is not an earlier export is not written into.
    (tmp_path / "theirs" / "mine").mkdir(parents=True)
    (tmp_path / "theirs" / "mine" / "notes.txt").write_text("mine")
    code, output = cli("export", str(judged["judged"]), "--layout", "gedit", "--to", str(tmp_path / "theirs"),
                       "--method", "mine")
    assert code != 0 and "is not empty and not an earlier export (no editfleet_export.json)" in output


def test_import_of_a_folder_without_the_layout_names_it(tmp_path):
    bench = make_release(tmp_path / "release")
    (tmp_path / "empty").mkdir()
    code, output = cli("import", str(tmp_path / "empty"), "--layout", "gedit", "--benchmark", str(bench),
                       "--output", str(tmp_path / "run"))
    assert code != 0 and "give --method: no single <method>/fullset/ folder in it" in output
    assert "Traceback" not in output
