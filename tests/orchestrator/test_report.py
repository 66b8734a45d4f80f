"""report.html and `orchestrator report`: rebuilt from the files of a run, escaped, self-contained."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from orchestrator.benchmark import load_benchmark
from orchestrator.cli import main
from orchestrator.results import RunDir, write_json_atomic

from conftest import png_bytes, write_native


def make_run(tmp_path):
    """A finished run's files, written through the same RunDir API the run uses."""
    bench_path = write_native(
        tmp_path / "bench",
        [{"id": "s1", "image": "s1.png", "instruction": "make it <b>bold</b> & red", "category": "物理"},
         {"id": "s2", "image": "s2.png", "instruction": "remove it", "category": "物理"},
         {"id": "s3", "image": "s3.png", "instruction": "add snow", "category": "environmental"}],
        {"s1.png": png_bytes(), "s2.png": png_bytes(color=(0, 9, 0)), "s3.png": png_bytes(color=(0, 0, 9))},
    )
    bench = load_benchmark(bench_path)
    run = RunDir(tmp_path / "run").create()
    s1, s2, s3 = bench.samples
    e1 = run.save_edit(s1, png_bytes(color=(9, 9, 9)), {"seed": 1})
    run.record_edit_failure(s2, "INVALID_ARGUMENT: source_image: 300x300 exceeds the limit", final=True)
    e3 = run.save_edit(s3, png_bytes(color=(8, 8, 8)), {"seed": 3})
    run.scores.append({"id": "s1", "category": "物理", "status": "OK", "score": 8.5, "expected_score": 8.1,
                       "response": "<script>alert(1)</script>", "edit_sha256": e1["sha256"], "sub_scores": {}})
    run.scores.append({"id": "s3", "category": "environmental", "status": "PARSE_FAILED", "score": None,
                       "expected_score": 4.2, "raw_responses": ["gibberish ∂∂"], "error": "no number",
                       "edit_sha256": e3["sha256"]})
    config = {"benchmark": {"path": str(bench_path)}, "editor": {"model": "m"}, "judge": {"model": "j"},
              "output": str(run.path)}
    write_json_atomic(run.manifest_path, {"config": config, "benchmark": bench.describe()})
    return run, bench_path


def test_report_command_rebuilds_summary_and_html(tmp_path):
    run, _ = make_run(tmp_path)
    result = CliRunner().invoke(main, ["report", str(run.path)])
    assert result.exit_code == 0, result.output
    summary = json.loads(run.summary_path.read_text())
    phys = summary["categories"]["物理"]
    assert (phys["samples"], phys["scored"], phys["edit_failures"], phys["mean"]) == (2, 1, 1, 8.5)
    env = summary["categories"]["environmental"]
    assert (env["score_failures"], env["expected_mean"]) == (1, 4.2)
    assert summary["macro_mean"] == 8.5 and summary["micro_mean"] == 8.5
    page = run.report_path.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "make it &lt;b&gt;bold&lt;/b&gt; &amp; red" in page
    assert "href='edits/物理/s1.png'" in page
    assert page.count("data:image/jpeg;base64,") == 3 + 2  # 3 sources, 2 edits (s2's edit failed)
    assert "INVALID_ARGUMENT: source_image: 300x300" in page and "PARSE_FAILED" in page and "raw reply: gibberish ∂∂" in page
    assert "Macro mean" in page and "Micro mean" in page
    assert result.output.startswith("=" * 70 + "\nSummary\n") and "物理" in result.output


def test_report_survives_a_moved_benchmark(tmp_path):
    run, bench_path = make_run(tmp_path)
    shutil.rmtree(bench_path.parent)
    result = CliRunner().invoke(main, ["report", str(run.path)])
    assert result.exit_code == 0, result.output
    assert "report without source images" in result.output
    page = run.report_path.read_text(encoding="utf-8")
    assert "unavailable" in page and page.count("data:image/jpeg;base64,") == 2


def test_edit_links_work_for_ids_with_url_characters(tmp_path):
    # '#', '?' and '%' are legal in ids and file names, but in an href they start a fragment, a
    # query or an escape: the thumbnail would link to a file that does not exist.
    from urllib.parse import unquote

    from orchestrator.report import render
    from orchestrator.results import summarize

    bench_path = write_native(
        tmp_path / "bench",
        [{"id": "shot#1?v=50%", "image": "a.png", "instruction": "add snow", "category": "a#b"}],
        {"a.png": png_bytes()},
    )
    bench = load_benchmark(bench_path)
    run = RunDir(tmp_path / "run").create()
    (s,) = bench.samples
    edit = run.save_edit(s, png_bytes(color=(9, 9, 9)), {"seed": 1})
    page = render(run, bench.samples, {s.id: edit}, {}, summarize(bench.samples, {s.id: edit}, {}), {})
    href = page.split("<a href='", 1)[1].split("'", 1)[0]
    assert "#" not in href and "?" not in href
    assert (run.path / unquote(href)).is_file()


def test_report_without_the_benchmark_takes_each_sample_from_its_latest_edit(tmp_path):
    # The instruction was changed and the sample re-edited, but not judged again yet; then the
    # benchmark went away. The rebuilt report must still show the current edit, not "not edited".
    run, bench_path = make_run(tmp_path)
    s3 = next(s for s in load_benchmark(bench_path).samples if s.id == "s3")
    s3.instruction = "add heavy snow"
    run.save_edit(s3, png_bytes(color=(7, 7, 7)), {"instruction": s3.instruction})
    shutil.rmtree(bench_path.parent)
    result = CliRunner().invoke(main, ["report", str(run.path)])
    assert result.exit_code == 0, result.output
    env = json.loads(run.summary_path.read_text())["categories"]["environmental"]
    assert (env["edited"], env["pending"], env["score_failures"]) == (1, 1, 0)


def _header(run, **edit_settings):
    from orchestrator.report import render
    from orchestrator.results import summarize

    manifest = json.loads(run.manifest_path.read_text())
    manifest["edit_settings"] = {"model": "m", "steps": 0, "guidance": None, "negative_prompt": None, "seed": 0,
                                 "width": 0, "height": 0, **edit_settings}
    manifest["editor"] = {"model": {"model": "m", "content_hash": "h"},
                          "defaults": {"num_inference_steps": 30, "guidance_scale": 4.0, "negative_prompt": " "}}
    page = render(run, [], {}, {}, summarize([], {}, {}), manifest)
    return page.split("<th>editor</th>", 1)[1].split("</tr>", 1)[0]


def test_report_names_the_edit_settings_without_python_values(tmp_path):
    # issue 27: "negative prompt None"; also "size 0x0" and "steps default" without the default
    run, _ = make_run(tmp_path)
    header = _header(run)
    assert "None" not in header and "0x0" not in header
    assert ("steps default (30), guidance default (4), negative prompt default (none), base seed 0, "
            "size the pipeline&#x27;s own") in header
    header = _header(run, negative_prompt="", steps=20, guidance=2.5, seed=7, width=512, height=384)
    assert "steps 20, guidance 2.5, negative prompt none, base seed 7, size 512x384" in header
    assert 'negative prompt &quot;blurry &lt;x&gt;&quot;' in _header(run, negative_prompt="blurry <x>")
    # a manifest from before edit settings were recorded: the config's editor section
    from orchestrator.report import render
    from orchestrator.results import summarize

    page = render(run, [], {}, {}, summarize([], {}, {}), json.loads(run.manifest_path.read_text()))
    assert "negative prompt default" in page and "None" not in page.split("<th>editor</th>", 1)[1].split("</tr>", 1)[0]


def test_report_shows_every_raw_reply_of_a_failed_judgement(tmp_path):
    # issue 27: with several questions the last reply may be one that parsed, not the one that failed
    run, _ = make_run(tmp_path)
    run.scores.append({"id": "s3", "category": "environmental", "status": "PARSE_FAILED", "score": None,
                       "raw_responses": ["SC: no idea", "SC: still no idea", "PQ: [7, 9]"],
                       "error": "SC: no number", "edit_sha256": run.edit_state(load_benchmark(
                           json.loads(run.manifest_path.read_text())["config"]["benchmark"]["path"]).samples)[0]["s3"]["sha256"]})
    assert CliRunner().invoke(main, ["report", str(run.path)]).exit_code == 0
    page = run.report_path.read_text(encoding="utf-8")
    for i, text in enumerate(["SC: no idea", "SC: still no idea", "PQ: [7, 9]"], 1):
        assert f"raw reply {i} of 3: {text}" in page
