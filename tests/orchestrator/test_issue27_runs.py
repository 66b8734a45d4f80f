"""Issue 27 items 2-4 and the run-time items of 8, with real services: one tiny editor and one demo
judge started here on loopback and used by address (the static fleet), so that no run pays a
service's start. The real CLI as a subprocess, 32x32 edits of 2 steps.

  run X:  5 example samples edited and judged (exit 0); a 6th whose own guidance the editor refuses
          (exit 3, the count printed last); resumed with its own default protocol named and
          --allow-failures (exit 0); re-judged with viescore (the console shows the reply that failed);
          re-judged with a protocol whose every judgement is INVALID (the judging stops after 3, exit 4);
          planned again with --dry-run (a time estimate from its recorded figures).
  other:  an editor refusing every sample's guidance (editing stops after 3, exit 4); steps the editor
          cannot run and an editor or judge running another model than the config names (refused
          before any edit, exit 2).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from conftest import EXAMPLE, REPO, TAUGHT_JUDGE, TINY_EDITOR, TINY_JUDGE, orchestrator_cmd, require_tiny_models
from test_e2e import lines

EXAMPLES = [json.loads(line) for line in EXAMPLE.read_text().splitlines()]
# A protocol the judge has (--protocols-dir) and this checkout does not: the preflight cannot see that the
# samples lack its variables, the judge says so for each (INVALID), with a reason longer than a line.
NEEDS = [f"an_uncommonly_long_variable_name_{i}" for i in range(12)]
NEEDS_PROTOCOL = {"name": "needs-variables", "description": "asks for variables no sample has", "range": [0, 10],
                  "combine": "single",
                  "questions": {"score": {"images": ["edited"], "scores": ["score"],
                                          "user": " ".join("{" + n + "}" for n in NEEDS)}}}


def cli(*args: str, timeout: float = 300) -> tuple[int, str]:
    done = subprocess.run(orchestrator_cmd(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    """A tiny editor and the demo judge (which also has NEEDS_PROTOCOL), started as someone else would."""
    from editfleet_common.launch import ServiceProcess, free_port, venv_python

    require_tiny_models(demo_judge=True)
    base = tmp_path_factory.mktemp("services")
    (base / "protocols").mkdir()
    (base / "protocols" / "needs-variables.yaml").write_text(yaml.safe_dump(NEEDS_PROTOCOL))
    port_e, port_s = free_port(), free_port()
    editor = ServiceProcess("editor", [venv_python("editor"), "-m", "editor_service", "--model", "models/tiny-qwen-image-edit",
                                       "--device", "cpu", "--port", str(port_e), "--threads", "1"],
                            port_e, log_path=base / "editor.log")
    scorer = ServiceProcess("scorer", [venv_python("scorer"), "-m", "scorer_service", "--model", str(TAUGHT_JUDGE),
                                       "--device", "cpu", "--port", str(port_s), "--threads", "2",
                                       "--protocols-dir", str(base / "protocols")],
                            port_s, log_path=base / "scorer.log")
    try:
        with ThreadPoolExecutor(2) as pool:  # both load at once
            list(pool.map(lambda s: s.start(), (editor, scorer)))
        yield {"editor": editor.address, "scorer": scorer.address}
    finally:
        editor.stop(10)
        scorer.stop(10)


def static(services, *args: str) -> list[str]:
    return ["--fleet", "static", "--editor-address", services["editor"], "--scorer-address", services["scorer"], *args]


@pytest.fixture(scope="module")
def run_x(services, tmp_path_factory):
    base = tmp_path_factory.mktemp("run_x")
    shutil.copytree(EXAMPLE.parent, base / "bench")
    bench = base / "bench" / "benchmark.jsonl"
    records = EXAMPLES[:5]
    # its own guidance is one the editor refuses (INVALID_ARGUMENT): a permanent failure, last in line
    records.append({**records[0], "id": "bad-01", "extras": {"guidance_scale": 500.0}})
    bench.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = base / "out"
    config = base / "config.yaml"
    # no protocol named (the suite's own); one judgement in flight at a time, so that a stop leaves work undone
    config.write_text(yaml.safe_dump({
        "benchmark": {"path": str(bench)},
        "editor": {"model": str(TINY_EDITOR), "steps": 2, "width": 32, "height": 32, "threads": 1},
        "judge": {"model": str(TAUGHT_JUDGE), "max_batch": 1, "max_in_flight": 1},
        "output": str(out)}))
    args = ["run", "--config", str(config), "--progress", "plain", *static(services)]
    result = {"out": out, "args": args, "scorer": services["scorer"]}
    result["first"] = cli(*args, "--limit", "5")
    result["second"] = cli(*args)
    result["third"] = cli(*args, "--protocol", "seed-0-10", "--allow-failures")
    return result


def test_exit_0_only_when_every_sample_was_edited_and_judged(run_x):
    code, output = run_x["first"]
    assert code == 0, output
    assert "Scored: 5   edit failures: 0   score failures: 0" in output
    assert output.rstrip().splitlines()[-1].startswith("Report: ")  # nothing failed: nothing to count


def test_some_samples_failed_exit_3_with_their_count_printed_last(run_x):
    code, output = run_x["second"]
    assert code == 3, output
    assert "Resuming: 5 edit(s) done, 0 recorded failure(s) kept, 1 to edit" in output
    assert "failed: INVALID_ARGUMENT: guidance_scale: 500.0 outside the allowed range" in output
    assert "back to the queue" not in output  # permanent: not retried
    assert output.rstrip().splitlines()[-1] == (
        "1 of 6 sample(s) not judged (edit failed 1): exit 3 (some samples were not judged; --allow-failures "
        "exits 0 for recorded failures)")
    (bad,) = [line for line in lines(run_x["out"] / "edits.jsonl") if line["id"] == "bad-01"]
    assert bad["final"] is True and bad["attempts"] == 1 and bad["code"] == "INVALID_ARGUMENT"


def test_resume_takes_its_own_default_protocol_named_and_allow_failures_exits_0(run_x):
    # the first session named no protocol; the suite's own (seed-0-10) was recorded by name, so naming
    # it now is the same run (was: "protocol: '' -> 'seed-0-10'")
    code, output = run_x["third"]
    assert code == 0, output
    assert "other judge settings" not in output
    assert "Judging: nothing to do (5 sample(s) already scored)" in output
    assert output.rstrip().splitlines()[-1] == "1 of 6 sample(s) not judged (edit failed 1): exit 0 (--allow-failures)"
    manifest = json.loads((run_x["out"] / "manifest.json").read_text())
    assert manifest["judge_settings"]["protocol"] == "seed-0-10"
    assert [s.get("exit_code") for s in manifest["sessions"]] == [0, 3, 0]


def test_labels_come_from_what_the_services_reported(run_x):
    manifest = json.loads((run_x["out"] / "manifest.json").read_text())
    # the editor was started as models/tiny-qwen-image-edit, the config names the same folder absolute: checked
    # to be the same, and the manifest keeps what the services said (report and compare read these blocks)
    assert manifest["editor"]["model"]["model"] == "models/tiny-qwen-image-edit"
    assert manifest["editor"]["model"]["model_class"] == "QwenImageEditPipeline"
    assert manifest["judge"]["model"]["model"] == str(TAUGHT_JUDGE)


def test_the_console_shows_the_reply_that_failed(run_x, tmp_path):
    # viescore with the demo judge: SC (asked first) mostly does not parse, PQ does; the last reply of
    # such a sample is PQ's, which parsed (was: shown as "Raw:")
    out = tmp_path / "viescore"
    code, output = cli("score", str(run_x["out"]), "--protocol", "viescore", "--output", str(out),
                       "--progress", "plain", "--fleet", "static", "--scorer-address", run_x["scorer"])
    summary = json.loads((out / "summary.json").read_text())
    assert code == (4 if summary["scored"] == 0 else 3), output  # the failed edit, and the unreadable replies
    failed = [r for r in lines(out / "scores.jsonl") if r["status"] == "PARSE_FAILED" and r["error"].startswith("SC:")]
    assert failed, "the demo judge's viescore SC replies were expected not to parse"
    for record in failed:
        assert len(record["raw_responses"]) >= 3
        (line,) = [l for l in output.splitlines() if l.endswith(f"/{record['id']})")]
        shown = line.split("| Raw (SC): ", 1)[1]
        sc_reply = " ".join(record["raw_responses"][1].split())
        assert shown.startswith(sc_reply[:40]), (line, record["raw_responses"])
        assert not shown.startswith(" ".join(record["raw_responses"][-1].split())[:40]) or \
            record["raw_responses"][-1] == record["raw_responses"][1]


def test_judgements_invalid_for_one_reason_stop_the_judging(run_x, tmp_path):
    out = tmp_path / "needs"
    code, output = cli("score", str(run_x["out"]), "--protocol", "needs-variables", "--output", str(out),
                       "--progress", "plain", "--fleet", "static", "--scorer-address", run_x["scorer"])
    assert code == 4, output
    scores = lines(out / "scores.jsonl")
    assert [r["status"] for r in scores] == ["INVALID"] * 3  # one in flight at a time: the other 2 never sent
    assert "Judging stopped early: the first 3 judgements all failed with the same error" in output
    assert "2 sample(s) not judged" in output
    assert output.rstrip().splitlines()[-1].startswith("6 of 6 sample(s) not judged (edit failed 1, INVALID 3, "
                                                       "not judged 2); stopped early (see above): exit 4")
    # the reason is longer than a line: cut after a whole word, never inside one
    reason = scores[0]["error"]
    shown = next(l for l in output.splitlines() if "Score: INVALID" in l).split("| Error: ", 1)[1]
    shown = shown.rsplit("  (", 1)[0]
    assert len(reason) > 240 and shown.endswith("...") and reason.startswith(shown[:-3])
    assert reason[len(shown) - 3] in " ,"


def test_dry_run_estimates_from_the_recorded_figures(run_x):
    code, output = cli(*run_x["args"], "--dry-run", "--retry-failed")
    assert code == 0, output
    assert re.search(r"estimate    about \d+s: editing \d+s \(\d+\.\ds per sample per editor", output), output
    assert "1 to edit" in output


def test_an_editor_refusing_every_sample_stops_the_run_after_3(services, tmp_path):
    out = tmp_path / "out"
    code, output = cli("run", "--benchmark", str(EXAMPLE), "--limit", "6", "--steps", "2", "--size", "32",
                       "--guidance", "500", "--no-score", "--output", str(out), "--progress", "plain",
                       "--fleet", "static", "--editor-address", services["editor"])
    assert code == 4, output
    assert "Editing stopped early: the first 3 samples all failed with the same error, which the rest would hit " \
           "too: INVALID_ARGUMENT: guidance_scale: 500.0 outside the allowed range [0, 100]" in output
    assert "3 sample(s) not started" in output and "back to the queue" not in output
    edits = lines(out / "edits.jsonl")
    assert len(edits) == 3 and all(e["status"] == "failed" and e["final"] for e in edits)
    assert output.rstrip().splitlines()[-1] == (
        "6 of 6 sample(s) not edited (edit failed 3, not edited 3); stopped early (see above): exit 4 "
        "(none was edited)")
    assert json.loads((out / "manifest.json").read_text())["sessions"][-1]["status"] == "stopped"


def test_steps_the_editor_cannot_run_are_refused_before_any_edit(services, tmp_path):
    # was: non-finite pixels, INTERNAL, "back to the queue (attempt 1/3)" three times per sample
    out = tmp_path / "out"
    code, output = cli("run", "--benchmark", str(EXAMPLE), "--limit", "2", "--steps", "1", "--size", "32",
                       "--no-score", "--output", str(out), "--progress", "plain",
                       "--fleet", "static", "--editor-address", services["editor"])
    assert code == 2, output
    assert ("nothing was edited: editor.steps 1 (--steps): the editors (QwenImageEditPipeline) run 2 to 200 steps "
            "(their --min-steps / --max-steps); every edit would be refused") in output
    assert not lines(out / "edits.jsonl")


def test_an_editor_or_judge_running_another_model_is_refused_naming_both(services, tmp_path):
    # was: a static editor serving Qwen-Image-Edit ran a config naming FLUX Kontext, and the report said FLUX
    out = tmp_path / "out"
    args = ["run", "--benchmark", str(EXAMPLE), "--limit", "2", "--steps", "2", "--size", "32",
            "--output", str(out), "--progress", "plain", *static(services)]
    code, output = cli(*args, "--editor-model", "models/tiny-flux-kontext", "--no-score")
    assert code == 2, output
    assert ("the editor at {} runs 'models/tiny-qwen-image-edit', but the run config names '{}' "
            "(FluxKontextPipeline there, QwenImageEditPipeline in the editor)").format(
                services["editor"], REPO / "models" / "tiny-flux-kontext") in output
    assert not lines(out / "edits.jsonl")
    # the judge is asked before any edit too: the same class, other weights (content hashes)
    out = tmp_path / "out2"
    args[args.index("--output") + 1] = str(out)
    code, output = cli(*args, "--editor-model", "models/tiny-qwen-image-edit", "--judge-model", str(TINY_JUDGE))
    assert code == 2, output
    assert (f"the judge at {services['scorer']} runs '{TAUGHT_JUDGE}', but the run config names '{TINY_JUDGE}' "
            "(content hash ") in output
    assert "nothing was edited" in output and not lines(out / "edits.jsonl")
