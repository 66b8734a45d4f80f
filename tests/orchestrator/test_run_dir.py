"""Reopening an output dir (run.open_run_dir): which setting changes are refused, in-process."""

from __future__ import annotations

import pytest

from orchestrator.benchmark import load_benchmark
from orchestrator.config import build_config
from orchestrator.run import RunError, open_run_dir

from conftest import png_bytes, write_native


@pytest.fixture
def bench(tmp_path):
    path = write_native(tmp_path / "bench", [{"id": "s1", "image": "s1.png", "instruction": "add snow", "category": "c"}],
                        {"s1.png": png_bytes()})
    return load_benchmark(path)


def config(tmp_path, judge=None, protocol=""):
    return build_config({"editor": {"model": "m"}, "judge": {"model": judge, "protocol": protocol},
                         "output": str(tmp_path / "run")})


def test_edit_only_then_judge_later_on_the_same_dir(tmp_path, bench):
    # `run --no-score` needs no judge model; `run --judge-model J` on that dir later is the
    # documented way to judge the edits, not a change of judge.
    open_run_dir(config(tmp_path), bench, judging=False)
    _, manifest = open_run_dir(config(tmp_path, judge="J"), bench, judging=True)
    assert manifest["judge_settings"]["model"] == "J"


def test_finishing_edits_without_a_judge_keeps_the_judge_of_a_judged_dir(tmp_path, bench):
    run_dir, _ = open_run_dir(config(tmp_path, judge="J"), bench, judging=True)
    run_dir.scores.append({"id": "s1", "status": "OK", "score": 7.0, "edit_sha256": "x"})
    _, manifest = open_run_dir(config(tmp_path), bench, judging=False)
    assert manifest["judge_settings"]["model"] == "J"
    with pytest.raises(RunError, match="other judge settings"):  # still one judge per dir
        open_run_dir(config(tmp_path, judge="K"), bench, judging=True)


def test_edit_settings_changes_are_still_refused(tmp_path, bench):
    open_run_dir(config(tmp_path), bench, judging=False)
    changed = config(tmp_path, judge="J")
    changed.editor.steps = 7
    with pytest.raises(RunError, match="other edit settings"):
        open_run_dir(changed, bench, judging=True)


def test_a_fleet_that_cannot_be_made_ends_the_session_as_failed(tmp_path, bench):
    # The session entry is written as "running" when the dir is opened; every way out must close it,
    # or the manifest claims a run is still going.
    from orchestrator.fleet import FleetError
    from orchestrator.results import RunDir
    from orchestrator.run import execute
    from orchestrator.ui import make_ui

    cfg = build_config({"benchmark": {"path": str(bench.path)}, "editor": {"model": "m"},
                        "fleet": {"options": {"no_such_option": 1}}, "output": str(tmp_path / "run")})
    with pytest.raises(FleetError):
        execute(cfg, stages=("edit",), ui=make_ui("plain"))
    session = RunDir(tmp_path / "run").read_manifest()["sessions"][-1]
    assert session["status"] == "failed" and "finished" in session


def test_score_on_an_edit_only_run_without_a_judge_model_says_what_is_missing(tmp_path, bench):
    # `run --no-score` needs no judge model, so the run's config has none; `score RUN_DIR` must
    # then ask for --judge-model instead of starting a judge with no model (a traceback).
    from click.testing import CliRunner

    from orchestrator.cli import main

    cfg = build_config({"benchmark": {"path": str(bench.path)}, "editor": {"model": "m"},
                        "output": str(tmp_path / "run")})
    run_dir, _ = open_run_dir(cfg, bench, judging=False)
    run_dir.save_edit(bench.samples[0], png_bytes(), {"instruction": bench.samples[0].instruction})
    result = CliRunner().invoke(main, ["score", str(run_dir.path), "--progress", "plain"])
    assert result.exit_code == 2, (result.output, result.exception)
    assert "--judge-model" in result.output
