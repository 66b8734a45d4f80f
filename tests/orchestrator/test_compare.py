"""`orchestrator compare`, its statistics, and the tables beside the JSON files: runs written with
the RunDir API (compare_runs.py), the real CLI, files read back."""

from __future__ import annotations

import csv
import io
import json
import math
import random

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from orchestrator import stats
from orchestrator.cli import main
from orchestrator.results import combine_repeats

from compare_runs import CATEGORIES, PER_CATEGORY, make_benchmark, make_run


# -- statistics ---------------------------------------------------------------------------------
def test_rank_correlations_match_published_values():
    # scipy.stats.spearmanr / kendalltau documentation examples
    assert stats.spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(0.8207826816681233)
    assert stats.kendall_tau_b([12, 2, 1, 12, 2], [1, 4, 7, 1, 0]) == pytest.approx(-0.47140452079103173)
    assert stats.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert stats.kendall_tau_b([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    assert stats.spearman([1, 1, 1], [1, 2, 3]) is None  # constant: undefined, not 0
    assert stats.kendall_tau_b([5], [5]) is None


def test_ranks_average_ties_and_competition_ranks():
    assert list(stats.ranks([10, 20, 20, 5])) == [2, 3.5, 3.5, 1]
    assert stats.competition_ranks({"a": 7.0, "b": 8.0, "c": 7.0, "d": None}) == {"a": 2, "b": 1, "c": 2, "d": None}


def test_bootstrap_is_reproducible_and_about_right():
    rng = random.Random(1)
    values = [rng.gauss(5.0, 2.0) for _ in range(400)]
    one = stats.bootstrap_mean({"c": values}, key="m/c")
    assert one == stats.bootstrap_mean({"c": values}, key="m/c")  # same seed and key: same interval
    assert one != stats.bootstrap_mean({"c": values}, key="m/c", seed=1)
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    half = 1.96 * sd / math.sqrt(len(values))  # the normal-theory half width
    assert one["mean"] == pytest.approx(mean)
    assert one["lo"] < mean < one["hi"]
    assert (one["hi"] - one["lo"]) / 2 == pytest.approx(half, rel=0.15)
    assert stats.bootstrap_mean({"c": [3.0] * 10}, key="k") == {"mean": 3.0, "lo": 3.0, "hi": 3.0, "n": 10}
    assert stats.bootstrap_mean({"c": [3.0]}, key="k")["lo"] is None  # one value: no interval
    # macro: the mean of the group means, not of the pooled values
    macro = stats.bootstrap_mean({"a": [1.0] * 10, "b": [9.0] * 30}, macro=True, key="k")
    assert macro["mean"] == 5.0 and macro["lo"] == macro["hi"] == 5.0


# -- runs -----------------------------------------------------------------------------------------
def score_a(sample):
    return 5 + int(sample.id[-1]) % 3


def score_b(sample):
    return 6 + int(sample.id[-1]) % 4


@pytest.fixture
def runs(tmp_path):
    bench = make_benchmark(tmp_path / "bench")
    a = make_run(tmp_path, "a", bench, score_a, edit_fails={"0-1"}, score_fails={"1-2"},
                 sub_scores=lambda s: {"SC": 4.0, "PQ": 6.0})
    b = make_run(tmp_path, "b", bench, score_b, editor="model-b", color=(90, 0, 0))
    return tmp_path, bench, a, b


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


def test_compare_numbers_match_the_runs(runs):
    tmp, bench, a, b = runs
    out = tmp / "cmp"
    result = invoke("compare", a, b, "--output", out)
    assert result.exit_code == 0, result.output + result.stderr
    data = json.loads((out / "compare.json").read_text())
    assert data["baseline"] == "model-a" and data["headline"] == "micro_mean"
    overall = data["overall"]["micro_mean"]
    # the means are the summary's: failures left out, counted
    ok_a = [score_a(s) for s in _samples(bench) if s.id not in ("0-1", "1-2")]
    assert overall["model-a"]["mean"] == pytest.approx(sum(ok_a) / len(ok_a))
    assert (overall["model-a"]["scored"], overall["model-a"]["failed"]) == (16, 2)
    assert overall["model-b"]["mean"] == pytest.approx(sum(score_b(s) for s in _samples(bench)) / 18)
    # paired: over the 16 samples both have
    paired = [score_b(s) - score_a(s) for s in _samples(bench) if s.id not in ("0-1", "1-2")]
    diff = overall["model-b"]["diff"]
    assert diff["n"] == 16 and diff["mean"] == pytest.approx(sum(paired) / 16)
    assert diff["lo"] < diff["mean"] < diff["hi"]
    assert overall["model-b"]["rank"] == 1 and overall["model-a"]["rank"] == 2
    assert "diff" not in overall["model-a"]
    phys = data["categories"]["物理"]
    assert phys["model-a"]["samples"] == PER_CATEGORY and phys["model-a"]["failed"] == 1
    assert list(data["categories"]) == list(CATEGORIES)
    macro = data["overall"]["macro_mean"]["model-a"]["mean"]
    cat_means = [data["categories"][c]["model-a"]["mean"] for c in CATEGORIES]
    assert macro == pytest.approx(sum(cat_means) / 3)
    # and they are what `report` writes into the run's own summary
    assert invoke("report", a).exit_code == 0
    summary_a = json.loads((a / "summary.json").read_text())
    assert summary_a["micro_mean"] == pytest.approx(overall["model-a"]["mean"])
    assert summary_a["macro_mean"] == pytest.approx(macro)
    # the terminal shows the headline table
    assert "model-b" in result.output and "+" in result.output and "compare.html" in result.output
    # csv: one row per category and run, plus the two overall scopes
    rows = list(csv.DictReader(io.StringIO((out / "compare.csv").read_text())))
    assert len(rows) == (3 + 2) * 2
    row = next(r for r in rows if r["scope"] == "micro_mean" and r["label"] == "model-b")
    assert float(row["diff"]) == pytest.approx(diff["mean"]) and row["rank"] == "1"
    # the grid has every sample, with every run's score
    assert len(data["samples"]) == 18
    cell = next(s for s in data["samples"] if s["id"] == "0-1")["runs"]
    assert cell["model-a"]["edit_status"] == "failed" and cell["model-b"]["score"] == score_b(_samples(bench)[1])
    page = (out / "compare.html").read_text(encoding="utf-8")
    assert page.count("<svg class='barchart'") == 1 + 3 and "id='grid'" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "") and "https://" not in page


def test_compare_is_reproducible(runs):
    tmp, _, a, b = runs
    assert invoke("compare", a, b, "-o", tmp / "one").exit_code == 0
    assert invoke("compare", b, a, "-o", tmp / "two", "--baseline", "model-a").exit_code == 0
    one, two = (json.loads((tmp / d / "compare.json").read_text()) for d in ("one", "two"))
    assert one["overall"] == two["overall"] and one["categories"] == two["categories"]  # order does not matter
    other = invoke("compare", a, b, "-o", tmp / "three", "--seed", "7")
    assert other.exit_code == 0
    three = json.loads((tmp / "three" / "compare.json").read_text())
    assert three["overall"]["micro_mean"]["model-b"]["mean"] == one["overall"]["micro_mean"]["model-b"]["mean"]
    assert three["overall"]["micro_mean"]["model-b"]["lo"] != one["overall"]["micro_mean"]["model-b"]["lo"]


def test_runs_of_other_protocols_or_samples_are_refused_naming_the_difference(tmp_path):
    bench = make_benchmark(tmp_path / "bench")
    a = make_run(tmp_path, "a", bench, score_a)
    b = make_run(tmp_path, "b", bench, score_b, editor="model-b", protocol="viescore", protocol_sha="v" * 64)
    result = invoke("compare", a, b, "-o", tmp_path / "cmp")
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "judge protocol: model-a has 'seed-0-10', model-b has 'viescore'" in result.output
    assert "--allow-different" in result.output and not (tmp_path / "cmp" / "compare.json").exists()
    allowed = invoke("compare", a, b, "-o", tmp_path / "cmp", "--allow-different")
    assert allowed.exit_code == 0, allowed.output
    assert "warning: judge protocol" in allowed.stderr
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert any("judge protocol" in d for d in data["differences_allowed"])
    assert "Compared with --allow-different" in (tmp_path / "cmp" / "compare.html").read_text(encoding="utf-8")

    other = make_benchmark(tmp_path / "bench2")
    lines = other.read_text(encoding="utf-8").splitlines()[:-2]
    other.write_text("\n".join(lines) + "\n", encoding="utf-8")
    c = make_run(tmp_path, "c", other, score_b, editor="model-c")
    result = invoke("compare", a, c, "-o", tmp_path / "cmp2")
    assert result.exit_code != 0
    assert "benchmark file (sha256)" in result.output and "samples: 2 only in model-a (e.g. 2-4, 2-5), 0 only in model-c" in result.output


def test_bad_arguments_get_clear_errors(runs, tmp_path):
    _, _, a, b = runs
    empty = tmp_path / "empty"
    empty.mkdir()
    for args, message in (
        ((a, empty), "has no manifest.json"),
        ((a, tmp_path / "missing"), "not a folder"),
        ((a, a), "given twice"),
        ((a, b, "--baseline", "nope"), "--baseline 'nope': no such run"),
        ((a, b, "--label", "x"), "--label given 1 time(s) for 2 run(s)"),
    ):
        result = invoke("compare", *args, "-o", tmp_path / "cmp")
        assert result.exit_code != 0 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_judges_of_the_same_edits_agree_or_not(tmp_path):
    bench = make_benchmark(tmp_path / "bench")
    a = make_run(tmp_path, "a", bench, score_a)
    # a second judge of a's very edits, twice each (score --repeats 2)
    twice = lambda s: [score_b(s), score_b(s) + (1 if s.id.endswith("0") else 0)]  # noqa: E731
    j = make_run(tmp_path, "j", bench, twice, judge="judge-y", rejudge_of=a, repeats=2)
    b = make_run(tmp_path, "b", bench, score_b, editor="model-b", color=(0, 90, 0))  # other edits: not a judge pair
    result = invoke("compare", a, j, b, "-o", tmp_path / "cmp", "--label", "A", "--label", "A by judge-y",
                    "--label", "B")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert data["same_edits"] == [["A", "A by judge-y"]]
    [pair] = data["judge_agreement"]
    samples = _samples(bench)
    mine = [sum(twice(s)) / 2 for s in samples]  # the repeats' mean is the sample's score
    theirs = [score_a(s) for s in samples]
    assert pair["n"] == 18
    assert pair["spearman"] == pytest.approx(stats.spearman(mine, theirs))
    assert pair["kendall"] == pytest.approx(stats.kendall_tau_b(mine, theirs))
    assert pair["mean_abs_diff"] == pytest.approx(sum(abs(x - y) for x, y in zip(mine, theirs)) / 18)
    rep = data["repeats"]["A by judge-y"]
    assert rep["samples"] == 18 and rep["repeats"] == 2 and rep["max_sd"] == pytest.approx(math.sqrt(0.5))
    row = next(s for s in data["samples"] if s["id"] == "0-0")
    assert row["spread"] == pytest.approx(abs(mine[0] - theirs[0]))
    assert row["runs"]["A by judge-y"]["repeat_scores"] == [6.0, 7.0]
    assert "Judge agreement A by judge-y vs A (18 samples): Spearman" in result.output
    page = (tmp_path / "cmp" / "compare.html").read_text(encoding="utf-8")
    assert "Spearman ρ" in page and "judge spread" in page and "repeats 6.0, 7.0" in page
    # with another baseline, the judges of A's edits are still compared with each other
    result = invoke("compare", a, j, b, "-o", tmp_path / "cmp2", "--label", "A", "--label", "A by judge-y",
                    "--label", "B", "--baseline", "B")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "cmp2" / "compare.json").read_text())
    assert data["same_edits"] == [["A", "A by judge-y"]] and data["judge_agreement"][0]["against"] == "A"
    assert data["judge_agreement"][0]["spearman"] == pytest.approx(pair["spearman"])


def test_combine_repeats():
    lines = [{"id": "s", "repeat": 1, "status": "OK", "score": 4.0, "sub_scores": {"SC": 2.0}, "expected_score": 4.5},
             {"id": "s", "repeat": 0, "status": "OK", "score": 6.0, "sub_scores": {"SC": 4.0}, "expected_score": 5.5},
             {"id": "s", "repeat": 2, "status": "PARSE_FAILED", "score": None}]
    record = combine_repeats(lines)
    assert record["score"] == 5.0 and record["sub_scores"] == {"SC": 3.0} and record["expected_score"] == 5.0
    assert record["repeat_scores"] == [6.0, 4.0, None] and record["repeat_statuses"] == ["OK", "OK", "PARSE_FAILED"]
    assert record["score_sd"] == pytest.approx(math.sqrt(2))
    failed = combine_repeats([{"id": "s", "repeat": 0, "status": "PARSE_FAILED", "score": None}])
    assert failed["status"] == "PARSE_FAILED" and failed["repeat_scores"] == [None]
    single = {"id": "s", "status": "OK", "score": 3.0}
    assert combine_repeats([single]) is single


def test_report_writes_summary_csv_and_scores_parquet(runs):
    _, bench, a, _ = runs
    result = invoke("report", a)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO((a / "summary.csv").read_text(encoding="utf-8"))))
    assert [r["category"] for r in rows] == [*CATEGORIES, ""] and rows[-1]["scope"] == "all"
    summary = json.loads((a / "summary.json").read_text())
    assert float(rows[0]["mean"]) == pytest.approx(summary["categories"]["物理"]["mean"])
    assert float(rows[-1]["macro_mean"]) == pytest.approx(summary["macro_mean"]) and rows[-1]["headline"] == "micro_mean"
    assert float(rows[-1]["sub.SC"]) == 4.0 and summary["sub_score_means"] == {"SC": 4.0, "PQ": 6.0}
    table = pq.read_table(a / "scores.parquet").to_pylist()
    assert [r["id"] for r in table] == [s.id for s in _samples(bench)]
    failed = next(r for r in table if r["id"] == "0-1")
    assert failed["edit_status"] == "failed" and failed["score"] is None and "refused" in failed["edit_error"]
    parse_failed = next(r for r in table if r["id"] == "1-2")
    assert parse_failed["status"] == "PARSE_FAILED" and parse_failed["score"] is None
    ok = next(r for r in table if r["id"] == "0-2")
    assert ok["score"] == score_a(_samples(bench)[2]) and ok["sub.SC"] == 4.0 and ok["repeats"] == 1
    page = (a / "report.html").read_text(encoding="utf-8")
    assert page.count("<svg class='histogram'") == 3 and "Sub-scores" in page
    assert "900 more characters" not in page and "300 more characters" in page  # the 900-char reply: 600 shown + 300 folded


def _samples(bench):
    from orchestrator.benchmark import load_benchmark

    return load_benchmark(bench).samples


def test_repeats_resume_per_repeat(tmp_path):
    """score --repeats K: each (sample, repeat) is kept or judged on its own; the lines of a run
    judged once count as repeat 0."""
    from orchestrator.results import RunDir

    bench = make_benchmark(tmp_path / "bench")
    run_path = make_run(tmp_path, "a", bench, score_a)  # judged once: lines without "repeat"
    run = RunDir(run_path)
    done, _ = run.edit_state(_samples(bench))
    first = next(iter(done))
    run.scores.append({"id": first, "repeat": 1, "status": "OK", "score": 1.0, "edit_sha256": done[first]["sha256"]})
    keep = run.score_state(done, repeats=2)
    assert set(keep) == set(done) | {f"{first}/1"}  # every repeat 0, and the one repeat 1 recorded
    assert set(run.score_state(done)) == set(done)
    combined = run.current_scores(done)[first]
    assert combined["repeat_scores"] == [score_a(_samples(bench)[0]), 1.0]


# -- what differs, labels (issue 27 item 7) --------------------------------------------------------
def set_manifest(run, *, editor_reported=None, **edit):
    """What a real run records beside the config: edit_settings and the editor's identity block."""
    path = run / "manifest.json"
    manifest = json.loads(path.read_text())
    named = manifest["config"]["editor"]["model"]
    manifest["edit_settings"] = {"model": named, "steps": 0, "guidance": None, "negative_prompt": None, "seed": 0,
                                 "width": 0, "height": 0, "extras": {}, **edit}
    manifest["editor"] = {"model": {"model": editor_reported or named, "content_hash": f"hash-{named}"},
                          "defaults": {"num_inference_steps": 30, "guidance_scale": 4.0, "negative_prompt": ""}}
    path.write_text(json.dumps(manifest))


def test_compare_says_what_differs_and_labels_by_it(tmp_path):
    bench = make_benchmark(tmp_path / "bench")
    seed0 = make_run(tmp_path, "seed0", bench, score_a, editor="models/tiny-qwen-image-edit")
    seed1 = make_run(tmp_path, "seed1", bench, score_b, editor="models/tiny-qwen-image-edit")
    big = make_run(tmp_path, "big", bench, score_b, editor="models/tiny-qwen-image-edit")
    set_manifest(seed0)
    set_manifest(seed1, seed=1)
    set_manifest(big, width=1024, height=768, steps=20, guidance=2.5, negative_prompt="blurry")
    result = invoke("compare", seed0, seed1, big, "-o", tmp_path / "cmp")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    settings = data["settings"]
    assert settings["differ"] == ["seed", "steps", "guidance", "negative prompt", "size"]
    rows = {r["setting"]: r["values"] for r in settings["rows"]}
    labels = [r["label"] for r in data["runs"]]
    assert labels == ["tiny-qwen-image-edit · seed 0, steps default, guidance default, negative prompt default, size the pipeline's own",
                      "tiny-qwen-image-edit · seed 1, steps default, guidance default, negative prompt default, size the pipeline's own",
                      'tiny-qwen-image-edit · seed 0, steps 20, guidance 2.5, negative prompt "blurry", size 1024x768']
    assert [rows["steps"][label] for label in labels] == ["default (30)", "default (30)", "20"]
    assert [rows["negative prompt"][label] for label in labels] == ["default (none)", "default (none)", '"blurry"']
    assert rows["size"][labels[2]] == "1024x768" and rows["guidance"][labels[0]] == "default (4)"
    assert settings["same"]["editor"] == "models/tiny-qwen-image-edit" and settings["same"]["protocol"] == "seed-0-10"
    page = (tmp_path / "cmp" / "compare.html").read_text(encoding="utf-8")
    assert "The runs differ in: <b>seed, steps, guidance, negative prompt, size</b>" in page
    assert "None" not in page.split("id='what-differs'")[1].split("<h2>Runs</h2>")[0]


def test_compare_labels_runs_by_the_editor_the_services_reported(tmp_path):
    # a static editor serving Qwen under a config naming FLUX Kontext (issue 27): the label and the
    # what-differs row say what ran, and name what the config said
    bench = make_benchmark(tmp_path / "bench")
    qie = make_run(tmp_path, "qie", bench, score_a, editor="models/tiny-qwen-image-edit")
    lie = make_run(tmp_path, "lie", bench, score_b, editor="models/tiny-flux-kontext", color=(90, 0, 0))
    set_manifest(qie)
    set_manifest(lie, editor_reported="models/tiny-qwen-image-edit-2509")
    result = invoke("compare", qie, lie, "-o", tmp_path / "cmp")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [r["label"] for r in data["runs"]] == ["tiny-qwen-image-edit", "tiny-qwen-image-edit-2509"]
    editor = next(r for r in data["settings"]["rows"] if r["setting"] == "editor")["values"]
    assert editor["tiny-qwen-image-edit-2509"] == ("models/tiny-qwen-image-edit-2509 "
                                                   "(the config named models/tiny-flux-kontext)")
    assert "kontext" not in " ".join(r["label"] for r in data["runs"]).lower()


def test_compare_page_keeps_hashes_and_errors_whole(runs):
    tmp, _, a, b = runs
    manifest = json.loads((a / "manifest.json").read_text())
    manifest["editor"]["model"]["content_hash"] = "0123456789abcdef" * 4
    (a / "manifest.json").write_text(json.dumps(manifest))
    long_error = "INVALID_ARGUMENT: refused " + "because of a long reason " * 20 + "THE END"
    edits = (a / "edits.jsonl").read_text().replace("INVALID_ARGUMENT: refused", long_error)
    (a / "edits.jsonl").write_text(edits)
    assert invoke("compare", a, b, "-o", tmp / "cmp").exit_code == 0
    page = (tmp / "cmp" / "compare.html").read_text(encoding="utf-8")
    assert "title='" + "0123456789abcdef" * 4 + "'" in page  # shortened in the table, whole on hover
    assert "THE END" in page  # a failed edit's reason is not cut (the rest folds away)
    assert "PARSE_FAILED</span><pre class='muted'>no number</pre>" in page  # a failed judgement says why
    data = json.loads((tmp / "cmp" / "compare.json").read_text())
    assert next(r for r in data["samples"] if r["id"] == "1-2")["runs"]["model-a"]["error"] == "no number"


def test_chart_labels_wrap_whole_or_keep_their_end():
    from orchestrator.charts import bar_chart, text_width, wrap_label

    for label in ("tiny-qwen-image-edit · seed0", "物理" * 12, "x" * 60,
                  "some-lab/Qwen-Image-Edit-2509-Lightning-8steps · seed 1, steps 20"):
        lines = wrap_label(label, 208, 12)
        assert all(text_width(line, 12) <= 208 for line in lines) and 1 <= len(lines) <= 3
        assert "".join(lines).replace(" ", "") == label.replace(" ", "")  # whole: nothing dropped
    lines = wrap_label("a-rather-long-editor-name/" * 6 + " · seed 7", 208, 12)
    assert len(lines) == 3 and lines[-1].startswith("…") and lines[-1].endswith("seed 7")  # what tells runs apart
    svg = bar_chart("t", [{"label": "tiny-qwen-image-edit · seed0", "mean": 5.0, "lo": 4.0, "hi": 6.0}], scale_max=10)
    assert "<title>tiny-qwen-image-edit · seed0</title>" in svg and ">tiny-qwen-image-edit · seed0</tspan>" in svg


def test_a_difference_with_nothing_recorded_says_so(runs):
    # a run never judged records no protocol: "none recorded", not Python's None
    tmp, _, a, b = runs
    manifest = json.loads((b / "manifest.json").read_text())
    del manifest["judge"]["protocol"]
    (b / "manifest.json").write_text(json.dumps(manifest))
    result = invoke("compare", a, b, "-o", tmp / "cmp", "--allow-different")
    assert result.exit_code == 0, result.output
    assert "judge protocol: model-a has 'seed-0-10', model-b has none recorded" in result.output
    assert "None" not in result.output
