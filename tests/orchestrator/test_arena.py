"""`orchestrator arena` end to end (issue 30): a small GEditBench v2 release (data/*.parquet) and a
candidates gallery (<model>/<key>.png + metadata.jsonl) made here; each model's folder imported as a run
(`orchestrator import --layout geditbench_v2`); the runs ranked head to head by a judge over the API
backend (the tiny judge's `transformers serve` behind the tests' proxy, answering as a scripted judge
would: by the models shown, with a position bias in VQ), both orders asked; the judgments kept once each
through a kill -9 and a rerun; a fourth player added, only its pairs judged; the fit equal to ranking the
same verdicts from GEditBench v2 match files; adaptive pairing within its budget; runs of another
benchmark or other samples refused, naming the difference; the page in a real browser."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import REPO, orchestrator_cmd, request_content
from orchestrator.arena import matches
from orchestrator.arena.ratings import ArenaConfig, fit_ratings
from orchestrator.cli import main

KEY_ENV = "EDITFLEET_TEST_ARENA_KEY"
KEY = "sk-editfleet-arena-5e1c07"
KEYS = ["background_change_000000", "background_change_000001", "subject_add_000000", "subject_add_000001"]
# the scripted judge's truth: a higher strength wins IF and VC; VQ always says "Image A" (position bias)
STRENGTH = {"BAGEL": 3, "Qwen_Image_Edit": 2, "FLUX2_dev": 1, "Step1X_Edit_v1p2": 0}
COLOR = {"BAGEL": (200, 0, 0), "Qwen_Image_Edit": (0, 0, 200), "FLUX2_dev": (0, 200, 0), "Step1X_Edit_v1p2": (200, 200, 0)}
FIRST = ["BAGEL", "FLUX2_dev", "Qwen_Image_Edit"]
UNREADABLE = ("subject_add_000001", "FLUX2_dev", "Qwen_Image_Edit", "IF")  # this one's IF reply cannot be read
SYSTEMS = {"VC": "Image Integrity Analyst", "VQ": "image quality comparator", "IF": "instruction compliance analyst"}
BASE = ["--judge-backend", "openai", "--api-key-env", KEY_ENV, "--bootstrap", "40", "--orders", "both",
        "--progress", "plain"]


def png(color, size=(24, 20), mark=None) -> bytes:
    """A plain image; mark: the pixel (1, 0) set to it (which sample an edit is of)."""
    img = Image.new("RGB", size, color)
    if mark is not None:
        img.putpixel((1, 0), mark)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def mark(i: int) -> tuple[int, int, int]:
    return (10 + 20 * i, 7, 9)


def source_color(i: int) -> tuple[int, int, int]:
    return (40 + 30 * i, 120, 120)


def make_release(folder: Path, keys=KEYS) -> Path:
    """GEditBench-v2/data/*.parquet: key, instruction, source_image (a `datasets` Image: bytes + path)."""
    root = folder / "GEditBench-v2"
    (root / "data").mkdir(parents=True)
    table = pa.table({"key": keys, "instruction": [f"Edit {k} as asked." for k in keys],
                      "source_image": [{"bytes": png(source_color(i)), "path": f"{k}.png"} for i, k in enumerate(keys)]})
    pq.write_table(table, root / "data" / "train-00000-of-00001.parquet")
    return root


def make_gallery(folder: Path, models, keys=KEYS) -> Path:
    """<gallery>/<model>/<key>.png and metadata.jsonl, as the candidates gallery lays them out."""
    folder.mkdir(parents=True, exist_ok=True)
    for model in models:
        (folder / model).mkdir(exist_ok=True)
        for key in keys:
            (folder / model / f"{key}.png").write_bytes(png(COLOR[model], mark=mark(KEYS.index(key))))
    (folder / "metadata.jsonl").write_text("".join(
        json.dumps({"key": k, "candidates": [{"model": m, "image": f"{m}/{k}.png"} for m in models]}) + "\n" for k in keys))
    return folder


def import_run(gallery: Path, release: Path, model: str, out: Path) -> Path:
    result = CliRunner().invoke(main, ["import", str(gallery), "--layout", "geditbench_v2", "--method", model,
                                       "--benchmark", str(release), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def shown(body) -> tuple[str, list[str], str | None]:
    """(question, the models whose edits a chat request shows in order, the sample they are of)."""
    system = json.dumps(body.get("messages") or [])[:2000]
    question = next((q for q, text in SYSTEMS.items() if text in system), None)
    by_color = {c: m for m, c in COLOR.items()}
    models, key = [], None
    for part in request_content(body):
        if part.get("type") == "image_url":
            img = Image.open(io.BytesIO(base64.b64decode(part["image_url"]["url"].split(",", 1)[1]))).convert("RGB")
            if img.getpixel((0, 0)) in by_color:
                models.append(by_color[img.getpixel((0, 0))])
                key = KEYS[[mark(i) for i in range(len(KEYS))].index(img.getpixel((1, 0)))]
    return question, models, key


def scripted(question: str, a: str, b: str, key: str) -> str:
    if question == "VQ":
        return '```json\n{\n    "winner": "Image A"\n}\n```'
    if (key, *sorted((a, b)), question) == UNREADABLE:
        return "I cannot decide between them."
    return '{"winner": "Image A"}' if STRENGTH[a] > STRENGTH[b] else '{"winner": "Image B"}'


def script_proxy(proxy, Fault):
    for q in SYSTEMS:
        for a in STRENGTH:
            for b in STRENGTH:
                if a == b:
                    continue
                for key in KEYS:
                    def predicate(body, q=q, a=a, b=b, key=key):
                        return shown(body) == (q, [a, b], key)
                    proxy.when(predicate, Fault("reply", text=scripted(q, a, b, key)), forever=True)


def requested_pairs(requests) -> Counter:
    """(key, {A, B}, question) -> how many chat requests asked it (the judge's warm-up left out)."""
    out = Counter()
    for seen in requests:
        question, models, key = shown(seen.body)
        if question is not None:
            out[(key, frozenset(models), question)] += 1
    return out


def cli(*args: str) -> tuple[int, str]:
    """`orchestrator ARGS` in this process (the judge it starts is a process of its own)."""
    result = CliRunner().invoke(main, list(args), env={KEY_ENV: KEY})
    return result.exit_code, result.output


def lines(arena: Path) -> list[dict]:
    return [json.loads(line) for line in (arena / "judgments.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from conftest import TINY_JUDGE, require_tiny_models
    from tests.openai_endpoint import Fault, FaultProxy, TransformersServe

    require_tiny_models()
    base = tmp_path_factory.mktemp("arena")
    release = make_release(base)
    gallery = make_gallery(base / "gallery", list(STRENGTH))
    runs = {m: import_run(gallery, release, m, base / "runs" / m) for m in STRENGTH}
    server = TransformersServe(TINY_JUDGE, base / "serve.log").start()
    proxy = FaultProxy(server.url, api_key=KEY, upstream_max_tokens=2).start()
    script_proxy(proxy, Fault)
    judge = ["--judge-base-url", proxy.url, "--judge-model", server.model]
    try:
        yield {"base": base, "release": release, "gallery": gallery, "runs": runs, "proxy": proxy, "judge": judge}
    finally:
        proxy.stop()
        server.stop()


@pytest.fixture(scope="module")
def judged(world):
    """The first three players: a session killed (-9) after a few judgments, then rerun to the end."""
    arena = world["base"] / "arena"
    args = ["arena", *(str(world["runs"][m]) for m in FIRST), "-o", str(arena), *BASE, *world["judge"],
            "--judge-max-concurrency", "1", "--max-batch", "1"]
    env = {**os.environ, KEY_ENV: KEY}
    proc = subprocess.Popen(orchestrator_cmd(*args), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if (arena / "judgments.jsonl").exists() and len(lines(arena)) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()[0]
    proc.send_signal(signal.SIGKILL)
    first_output = proc.communicate()[0]
    killed_at = lines(arena)
    # the orphaned judge (SIGTERM at its parent's death) finishes what it had accepted, then goes
    quiet, seen = time.monotonic(), len(world["proxy"].chat_requests)
    while time.monotonic() - quiet < 2.0:
        time.sleep(0.1)
        if len(world["proxy"].chat_requests) != seen:
            quiet, seen = time.monotonic(), len(world["proxy"].chat_requests)
    before = len(world["proxy"].chat_requests)
    code, output = cli(*args)
    assert code == 0, output
    return {"arena": arena, "killed_at": killed_at, "first_output": first_output, "output": output,
            "second_requests": world["proxy"].chat_requests[before:], "args": args}


def test_every_pair_judged_once_through_a_kill(judged):
    arena = judged["arena"]
    found = lines(arena)
    per_pair = Counter((r["prompt"], frozenset((r["model_a"], r["model_b"]))) for r in found)
    assert len(per_pair) == 4 * 3 and set(per_pair.values()) == {1}  # 4 samples x 3 pairs, each one line
    assert found[:len(judged["killed_at"])] == judged["killed_at"]  # the lines before the kill, untouched
    assert 3 <= len(judged["killed_at"]) < 12
    # the rerun asked only the pairs without a line: each of their questions in both orders
    done_before = {(r["prompt"], frozenset((r["model_a"], r["model_b"]))) for r in judged["killed_at"]}
    asked = requested_pairs(judged["second_requests"])
    assert {(k, p) for k, p, _ in asked} == set(per_pair) - done_before
    for (key, pair, question), n in asked.items():
        expected = 4 if (key, *sorted(pair), question) == UNREADABLE else 2  # re-asked once where unreadable
        assert n == expected, (key, pair, question)
    assert "Judging 12 pair(s) of 12" not in judged["output"]


def test_orders_verdicts_and_the_ranking(judged):
    arena = judged["arena"]
    found = {(r["prompt"], r["model_a"], r["model_b"]): r for r in lines(arena)}
    for (prompt, a, b), r in found.items():
        assert (a, b) == matches.canonical_pair(a, b)  # GEditBench v2's orientation: A sorts first
        assert r["key"] == f"{prompt}_pair_{a}_vs_{b}" and r["orders"] == "both" and r["source"] == "judge"
        winner = "A" if STRENGTH[a] > STRENGTH[b] else "B"
        vc, vq, if_ = r["pairwise"]
        assert [o["swapped"] for o in vc["orders"]] == [False, True]
        assert (vc["winner"], vc["rule"]) == (winner, "agree")
        # VQ says "Image A" whatever it is shown: the orders disagree, a tie by the suite's rule
        assert (vq["winner"], vq["disagreement"], vq["rule"]) == ("tie", True, "disagreement: tie")
        if (prompt, a, b, "IF") == UNREADABLE:
            assert r["status"] == "PARSE_FAILED" and if_["winner"] is None and r["verdicts"]["IF"] is None
            assert "I cannot decide between them." in r["raw_responses"]
        else:
            assert r["status"] == "OK" and r["verdicts"] == {"VC": winner, "VQ": "tie", "IF": winner}
    data = json.loads((arena / "arena.json").read_text())
    board = data["ratings"]["overall"]["leaderboard"]
    assert [row["model"] for row in board] == ["BAGEL", "Qwen_Image_Edit", "FLUX2_dev"]
    assert all(row["lower"] <= row["elo"] <= row["upper"] for row in board)
    by_q = data["judgments"]["by_question"]
    assert by_q["VQ"] == {"A": 0, "B": 0, "tie": 12, "no_verdict": 0, "asked_both_orders": 12, "disagreements": 12}
    assert by_q["IF"]["no_verdict"] == 1 and by_q["VC"]["disagreements"] == 0
    assert set(data["ratings"]["categories"]) == {"background_change", "subject_add"}
    with open(arena / "leaderboard.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows if r["scope"] == "overall"] == ["BAGEL", "Qwen_Image_Edit", "FLUX2_dev"]
    table = pq.read_table(arena / "judgments.parquet").to_pylist()
    assert len(table) == 12 * 3
    vq_row = next(r for r in table if r["question"] == "VQ")
    assert (vq_row["first_winner"], vq_row["swapped_winner"], vq_row["winner"]) == ("A", "B", "tie")
    assert vq_row["first_raw"] and vq_row["swapped_raw"]


def test_the_fit_equals_ranking_the_same_verdicts_from_match_files(judged, tmp_path):
    """The arena's ratings are GEditBench v2's fit (ratings.py) of its verdicts: written as match files
    and ranked with `--matches`, the same numbers."""
    found = lines(judged["arena"])
    from orchestrator.arena.ratings import Judgment

    judgments = [Judgment(r["prompt"], r["model_a"], r["model_b"], r["verdicts"], r["category"]) for r in found]
    results = judged["arena"] / "matches"  # the arena writes its verdicts as match files too
    assert sorted(p.relative_to(results).as_posix() for p in results.rglob("*.jsonl")) == [
        "eval_if_metadata/arena.jsonl", "eval_vc_metadata/arena.jsonl", "eval_vq_metadata/arena.jsonl"]
    vc = [json.loads(line) for line in (results / "eval_vc_metadata" / "arena.jsonl").read_text().splitlines()]
    assert vc == matches.match_records(judgments, "VC")
    code, output = cli("arena", "--matches", str(results), "-o", str(tmp_path / "ranked"), "--bootstrap", "40")
    assert code == 0, output
    ours = json.loads((judged["arena"] / "arena.json").read_text())["ratings"]["overall"]["leaderboard"]
    theirs = json.loads((tmp_path / "ranked" / "arena.json").read_text())["ratings"]["overall"]["leaderboard"]
    assert [(r["model"], round(r["elo"], 6)) for r in ours] == [(r["model"], round(r["elo"], 6)) for r in theirs]
    # and equal to fitting them here with the reference's settings
    expected = fit_ratings(judgments, ArenaConfig(bootstrap=0)).overall.rows()
    assert [(r["model"], round(r["elo"], 6)) for r in expected] == [(r["model"], round(r["elo"], 6)) for r in ours]


def test_published_verdicts_are_kept_and_only_a_new_models_pairs_judged(world, judged, tmp_path):
    """A new model ranked against published ones: the published verdicts (GEditBench v2 match files of
    the three first players) read with --matches, only the new model's pairs judged."""
    from orchestrator.arena.ratings import Judgment

    published = tmp_path / "published"
    judgments = [Judgment(r["prompt"], r["model_a"], r["model_b"], r["verdicts"]) for r in lines(judged["arena"])]
    (published / "eval_vc_metadata").mkdir(parents=True)
    matches.write_match_file(judgments, "VC", published / "eval_vc_metadata" / "20260101_000000.jsonl")
    before = len(world["proxy"].chat_requests)
    arena = tmp_path / "with-published"
    code, output = cli("arena", *(str(world["runs"][m]) for m in STRENGTH), "-o", str(arena), *BASE, *world["judge"],
                       "--dimensions", "VC", "--matches", str(published))
    assert code == 0, output
    asked = requested_pairs(world["proxy"].chat_requests[before:])
    assert {q for _, _, q in asked} == {"VC"} and all("Step1X_Edit_v1p2" in pair for _, pair, _ in asked)
    assert len({(k, p) for k, p, _ in asked}) == 4 * 3  # 4 samples x the new model's 3 pairs
    found = lines(arena)
    assert Counter(r["source"].split(":")[0] for r in found) == {"matches": 12, "judge": 12}
    board = json.loads((arena / "arena.json").read_text())["ratings"]["overall"]["leaderboard"]
    assert [row["model"] for row in board] == ["BAGEL", "Qwen_Image_Edit", "FLUX2_dev", "Step1X_Edit_v1p2"]


def test_adding_a_player_judges_only_its_pairs(world, judged):
    arena = judged["arena"]
    before_lines = lines(arena)
    before = len(world["proxy"].chat_requests)
    args = ["arena", *(str(world["runs"][m]) for m in STRENGTH), "-o", str(arena), *BASE, *world["judge"]]
    code, output = cli(*args)
    assert code == 0, output
    asked = requested_pairs(world["proxy"].chat_requests[before:])
    assert all("Step1X_Edit_v1p2" in pair for _, pair, _ in asked) and len({(k, p) for k, p, _ in asked}) == 4 * 3
    assert lines(arena)[:len(before_lines)] == before_lines and len(lines(arena)) == len(before_lines) + 12
    board = json.loads((arena / "arena.json").read_text())["ratings"]["overall"]["leaderboard"]
    assert [row["model"] for row in board] == ["BAGEL", "Qwen_Image_Edit", "FLUX2_dev", "Step1X_Edit_v1p2"]
    # nothing left: a rerun judges nothing and starts no judge
    code, output = cli(*args)
    assert code == 0 and "Judging: nothing to do" in output and "Starting the judge" not in output, output


def test_adaptive_pairing_stays_within_its_budget(world, tmp_path):
    arena = tmp_path / "adaptive"
    args = ["arena", *(str(world["runs"][m]) for m in STRENGTH), "-o", str(arena), *BASE, *world["judge"],
            "--pairs", "adaptive", "--budget", "7", "--round-size", "4", "--dimensions", "VC,IF"]
    code, output = cli(*args)
    assert code == 0, output
    found = lines(arena)
    assert len({(r["prompt"], frozenset((r["model_a"], r["model_b"]))) for r in found}) == 7
    assert all(r["questions"] == ["VC", "IF"] for r in found)
    data = json.loads((arena / "arena.json").read_text())
    assert data["pairs"]["mode"] == "adaptive" and data["pairs"]["judged"] == 7
    assert "budget of 7 pair(s) reached" in data["pairs"]["stopped"]


def test_runs_of_another_benchmark_or_other_samples_are_refused(world, tmp_path):
    other = make_release(tmp_path / "other", keys=KEYS[:3])
    gallery = make_gallery(tmp_path / "g", ["FLUX2_dev"], keys=KEYS[:3])
    fewer = import_run(gallery, other, "FLUX2_dev", tmp_path / "fewer")
    result = CliRunner().invoke(main, ["arena", str(world["runs"]["BAGEL"]), str(fewer), "-o", str(tmp_path / "a")])
    assert result.exit_code == 1 and "runs of different benchmark files" in result.output
    # the same file, fewer samples (a --limit): named
    import shutil

    limited = tmp_path / "limited"
    shutil.copytree(world["runs"]["FLUX2_dev"], limited)
    manifest = json.loads((limited / "manifest.json").read_text())
    manifest["config"]["benchmark"]["limit"] = 2
    (limited / "manifest.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(main, ["arena", str(world["runs"]["BAGEL"]), str(limited), "-o", str(tmp_path / "b")])
    assert result.exit_code == 1
    assert "runs of different samples" in result.output and "lacks 2 of its samples (subject_add_000000, subject_add_000001)" in result.output
    # two players of one name
    result = CliRunner().invoke(main, ["arena", str(world["runs"]["BAGEL"]), str(world["runs"]["BAGEL"]), "-o",
                                       str(tmp_path / "c")])
    assert result.exit_code == 1 and "players named twice: BAGEL" in result.output


def test_pairs_are_oriented_as_geditbench_v2_orients_them():
    """Its configs/datasets/bmk.json models, sorted by its pairwise.model_sort_key at 82bc00ed (the order
    computed there; only the result here): the first of a pair is shown as Image A."""
    official = ["BAGEL", "FireRed_Image_Edit_1p1", "FLUX1_Kontext_dev", "FLUX2_dev", "FLUX2_dev_turbo", "FLUX2_klein_4b",
                "FLUX2_klein_9b", "GLM_Image", "GPT_Image_1p5", "LongCat_Image_Edit", "Nano_Banana_Pro", "OmniGen2",
                "Qwen_Image_Edit", "Qwen_Image_Edit_2509", "Qwen_Image_Edit_2511", "Seedream4p5", "Step1X_Edit_v1p2"]
    assert sorted(reversed(official), key=matches.model_sort_key) == official
    assert matches.canonical_pair("Qwen_Image_Edit_2511", "BAGEL") == ("BAGEL", "Qwen_Image_Edit_2511")
    assert matches.canonical_pair("model1", "modelx") == ("model1", "modelx")  # where theirs would raise


def test_the_suite_loads_the_release_and_imports_the_gallery_as_the_official_code_reads_them(world, tmp_path):
    from orchestrator.benchmark import BenchmarkError, load_benchmark

    bench = load_benchmark(world["release"])
    assert bench.format == "geditbench_v2" and [s.id for s in bench.samples] == KEYS
    assert bench.categories == ["background_change", "subject_add"]
    assert bench.samples[0].instruction == f"Edit {KEYS[0]} as asked." and bench.samples[0].source_bytes()[:4] == b"\x89PNG"
    # the gallery's metadata.jsonl decides where a model's candidate is
    manifest = json.loads((world["runs"]["BAGEL"] / "manifest.json").read_text())
    assert manifest["editor"]["imported"]["folder"].endswith("gallery/BAGEL")
    bad = make_release(tmp_path / "bad", keys=["background_change", "x_pair_y_000001"])
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(bad)
    assert "key 'background_change' is not <task>_<number>" in str(err.value)
    assert "holds '_pair_'" in str(err.value)


def test_the_arena_page_in_a_real_browser(judged, tmp_path):
    from browser import Browser, chromium_binary

    binary = chromium_binary()
    if binary is None:
        pytest.fail("chromium not found: `make browser` installs it (apt-get install chromium)")
    page = judged["arena"] / "arena.html"
    browser = Browser(binary)
    try:
        browser.open(page)
        browser.settle(0.5)
        assert [u for u in browser.requests if not (u.startswith("data:") or u == page.resolve().as_uri())] == []
        js = browser.js
        assert js("document.title") == "editfleet arena"
        models = js("Array.from(document.querySelectorAll('#leaderboard tr[data-model]')).map(r => r.dataset.model)")
        assert models[:3] == ["BAGEL", "Qwen_Image_Edit", "FLUX2_dev"]
        # each rating's interval drawn as a bar on one scale, the point inside it
        assert js("Array.from(document.querySelectorAll('#leaderboard svg.ci')).every(s => "
                  "s.querySelector('line.range').getBBox().width >= 0 && s.querySelector('circle.point').getBBox().width > 0)")
        # the heat map: row beats column, the two halves of a pair add up to 1
        rates = js("Array.from(document.querySelectorAll('#winrate td.rate[data-rate]')).map(td => parseFloat(td.dataset.rate))")
        n = len(models)
        assert len(rates) == n * (n - 1)
        top_vs_last = js("document.querySelector('#winrate tr:nth-child(2) td:last-child').dataset.rate")
        assert float(top_vs_last) > 0.5
        assert js("document.querySelectorAll('#categories section').length") == 2
        assert js("document.querySelectorAll('#examples tr.example').length") >= 1
        assert js("Array.from(document.querySelectorAll('#examples img')).every(i => i.complete && i.naturalWidth > 0)")
        assert js("document.documentElement.scrollWidth <= window.innerWidth + 1")
        path = tmp_path / "arena.png"
        browser.screenshot(path, full_page=True)
        assert path.stat().st_size > 10_000
        if os.environ.get("EDITFLEET_SCREENSHOTS"):
            Path(os.environ["EDITFLEET_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
            (Path(os.environ["EDITFLEET_SCREENSHOTS"]) / "arena.png").write_bytes(path.read_bytes())
    finally:
        browser.close()
