"""End to end on the example benchmark: real editor and scorer processes (tiny models, CPU), the
real CLI as a subprocess, real kills. Runs are shared between assertions to keep CI short:

  run A: the example config (10 samples, 2 CPU editors, the taught demo judge); one editor SIGKILLed mid-run.
  run B: 1 editor, 4 example samples + 1 oversized one the editor refuses; the CLI is SIGKILLed
         while editing, rerun, SIGTERMed while editing, rerun, SIGKILLed while judging, rerun.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from PIL import Image

from conftest import EXAMPLE, REPO, TINY_EDITOR, TINY_JUDGE, orchestrator_cmd, require_tiny_models

RUN_TIMEOUT = 420


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(l) for l in text[: text.rfind("\n") + 1].splitlines() if l.strip()]


def wait_for(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"CLI exited ({proc.returncode}) while waiting for {what}:\n{log.read_text() if log else ''}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def processes(out: Path) -> dict:
    try:
        return json.loads((out / "logs" / "processes.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


class Cli:
    """The orchestrator CLI as a child process with its output in a file."""

    def __init__(self, args: list[str], log: Path):
        self.log = log
        self.out = open(log, "w")
        self.proc = subprocess.Popen(orchestrator_cmd(*args), cwd=REPO, stdout=self.out, stderr=subprocess.STDOUT)

    def wait(self, timeout=RUN_TIMEOUT) -> str:
        try:
            self.proc.wait(timeout)
        finally:
            self.out.close()
        return self.log.read_text(encoding="utf-8")

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.out.close()


def cleanup(out: Path, cli: Cli | None):
    if cli is not None and cli.proc.poll() is None:
        cli.kill()
    for info in processes(out).values():  # services of ours a failed test may have left
        if pid_alive(info["pid"]):
            os.kill(info["pid"], signal.SIGKILL)


# -- run A -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    require_tiny_models(demo_judge=True)
    out = tmp_path_factory.mktemp("run_a") / "out"
    log = out.parent / "cli.log"
    cli = Cli(["run", "--config", "examples/config.yaml", "--output", str(out), "--progress", "plain"], log)
    try:
        first = wait_for(lambda: lines(out / "edits.jsonl"), 240, "the first edit", cli.proc, log)[0]
        # Both editors are busy all the time: kill the one that did not just finish (it is mid-stream).
        victim = "CPU 1" if first["editor"] == "CPU 0" else "CPU 0"
        pid = processes(out)[f"editor {victim}"]["pid"]
        os.kill(pid, signal.SIGKILL)
        output = cli.wait()
    finally:
        cleanup(out, cli)
    return {"out": out, "output": output, "rc": cli.proc.returncode, "victim": victim, "killed_pid": pid}


def test_run_a_every_sample_edited_and_judged_despite_a_killed_editor(run_a):
    out, output = run_a["out"], run_a["output"]
    assert run_a["rc"] == 0, output
    assert f"[{run_a['victim']}] editor exited; restarting it" in output
    assert f"[{run_a['victim']}] editor back at" in output
    samples = [json.loads(l) for l in EXAMPLE.read_text().splitlines()]
    edits = {l["id"]: l for l in lines(out / "edits.jsonl") if l["status"] == "ok"}
    assert set(edits) == {s["id"] for s in samples}
    for s in samples:
        image = out / "edits" / s["category"] / f"{s['id']}.png"
        with Image.open(image) as img:
            assert img.size == (256, 256)
    scores = lines(out / "scores.jsonl")
    assert sorted(l["id"] for l in scores) == sorted(s["id"] for s in samples)  # one line each
    assert all(l["status"] in ("OK", "PARSE_FAILED") for l in scores)
    assert all(l["status"] == "OK" or l["raw_responses"] for l in scores)  # a failure keeps the raw reply
    session = json.loads((out / "manifest.json").read_text())["sessions"][-1]
    assert session["status"] == "complete" and session["editor_restarts"] == 1


def test_run_a_summary_per_category_matches_the_score_lines(run_a):
    out = run_a["out"]
    summary = json.loads((out / "summary.json").read_text())
    scores = lines(out / "scores.jsonl")
    assert list(summary["categories"]) == ["physical", "environmental", "cultural", "causal", "referential"]
    for name, c in summary["categories"].items():
        mine = [l for l in scores if l["category"] == name]
        ok = [l["score"] for l in mine if l["status"] == "OK"]
        assert c["samples"] == 2 and c["edited"] == 2 and c["edit_failures"] == 0 and c["pending"] == 0
        assert (c["scored"], c["score_failures"]) == (len(ok), len(mine) - len(ok))
        assert c["mean"] == (pytest.approx(sum(ok) / len(ok)) if ok else None)
        expected = [l["expected_score"] for l in mine if l["expected_score"] is not None]
        assert c["expected_mean"] == pytest.approx(sum(expected) / len(expected))
    assert summary["samples"] == 10 and summary["complete"] is True


def test_run_a_console_speaks_the_seed_format(run_a):
    output = run_a["output"]
    assert len(re.findall(r"^  \[Sample +\d+\] Score: (\d+\.\d\d|PARSE_FAILED)", output, re.M)) == 10
    assert re.search(r"^\[Batch 1\] Images 0-3 done, avg_score=", output, re.M)
    assert re.search(r"^\[Batch 3\] Images 8-9 done, avg_score=", output, re.M)
    assert "Total images: 10" in output and "Macro average:" in output and "Average score:" in output
    assert re.search(r"^  referential +2 ", output, re.M)
    # editors to zero before the judge, with the swap time
    assert output.index("Editors to zero: all editors stopped and exited") < output.index("Starting the judge")
    assert re.search(r"swap \(last edit -> judge SERVING\) \d+\.\ds", output)
    assert f"Report: {run_a['out'] / 'report.html'}" in output
    page = (run_a["out"] / "report.html").read_text(encoding="utf-8")
    assert page.count("<tr><td><img") == 10


def test_the_demo_judge_gives_parsed_scores(run_a):
    """examples/config.yaml's judge is the taught demo judge: its (meaningless) scores parse."""
    scores = lines(run_a["out"] / "scores.jsonl")
    assert [l["status"] for l in scores].count("OK") >= 8, [l.get("raw_responses") for l in scores]
    assert re.search(r"^\[Batch 1\] Images 0-3 done, avg_score=\d", run_a["output"], re.M)
    assert re.search(r"^  Average score: \d+\.\d{3}", run_a["output"], re.M)


def test_rejudge_with_another_protocol_twice_then_compare(run_a, tmp_path):
    out = run_a["out"]
    # the demo judge's viescore SC replies mostly do not parse: those samples failed (exit 3 without the flag)
    done = subprocess.run(orchestrator_cmd("score", str(out), "--protocol", "viescore", "--repeats", "2",
                                           "--progress", "plain", "--allow-failures"),
                          cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    rejudge = out / "rejudge" / "tiny-qwen3-vl-taught-viescore"
    scores = lines(rejudge / "scores.jsonl")
    # every repeat recorded: each sample twice, repeat 0 and 1
    assert sorted((l["id"], l["repeat"]) for l in scores) == sorted(
        (l["id"], r) for l in lines(out / "scores.jsonl") for r in (0, 1))
    assert {l["protocol"] for l in scores} == {"viescore"}
    assert (rejudge / "scores.parquet").exists() and (rejudge / "summary.csv").exists()
    # compare: another protocol is refused, naming it; allowed, the judges of the same edits are compared
    refused = subprocess.run(orchestrator_cmd("compare", str(out), str(rejudge), "-o", str(tmp_path / "cmp")),
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0 and "judge protocol: " in refused.stderr and "Traceback" not in refused.stderr
    allowed = subprocess.run(orchestrator_cmd("compare", str(out), str(rejudge), "-o", str(tmp_path / "cmp"),
                                              "--allow-different"),
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    data = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert len(data["same_edits"]) == 1 and len(data["same_edits"][0]) == 2
    [pair] = data["judge_agreement"]  # n: the samples both judges scored (the demo judge's viescore SC often fails to parse)
    assert pair["n"] == sum(s["runs"][pair["judge"]]["status"] == "OK" == s["runs"][pair["against"]]["status"]
                            for s in data["samples"])
    assert "Judge agreement" in allowed.stdout and (tmp_path / "cmp" / "compare.html").exists()
    assert len(lines(out / "scores.jsonl")) == 10  # the run's own scores are untouched
    manifest = json.loads((rejudge / "manifest.json").read_text())
    assert manifest["rejudge_of"] == str(out) and manifest["judge"]["protocol"]["name"] == "viescore"
    assert "href='../../edits/" in (rejudge / "report.html").read_text(encoding="utf-8")
    assert "Editing" not in done.stdout  # no editor was started


# -- run B -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_b(tmp_path_factory, run_a):
    base = tmp_path_factory.mktemp("run_b")
    bench_dir = base / "bench"
    shutil.copytree(EXAMPLE.parent, bench_dir)
    records = [json.loads(l) for l in EXAMPLE.read_text().splitlines()][:4]
    Image.new("RGB", (300, 300), (10, 200, 30)).save(bench_dir / "images" / "big-01.png")
    records.append({"id": "big-01", "category": "physical", "image": "images/big-01.png",
                    "instruction": "Make it bigger.", "description": "A green square."})
    (bench_dir / "benchmark.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = base / "out"
    config = yaml.safe_load((REPO / "examples" / "config.yaml").read_text())
    config["benchmark"]["path"] = str(bench_dir / "benchmark.jsonl")
    config["editor"]["model"], config["judge"]["model"] = str(TINY_EDITOR), str(TINY_JUDGE)
    # The editor refuses sources over 70000 pixels (the 300x300 one): a permanent failure.
    config["editor"]["server_args"] = ["--max-input-pixels", "70000"]
    config["judge"]["max_batch"] = 1  # one result at a time, so a kill lands between score lines
    config["devices"] = {"editors": 1}
    config["output"] = str(out)
    (base / "config.yaml").write_text(yaml.safe_dump(config))
    # big-01 is a failed edit and the untaught judge's replies do not parse: exit 0 only with --allow-failures
    args = ["run", "--config", str(base / "config.yaml"), "--progress", "plain", "--allow-failures"]
    result = {"out": out}
    cli = None
    try:
        # 1. killed while editing
        cli = Cli(args, base / "cli-1.log")
        wait_for(lambda: len(lines(out / "edits.jsonl")) >= 2, 240, "two edits", cli.proc, cli.log)
        editor_pid = processes(out)["editor CPU 0"]["pid"]
        cli.kill()
        result["edits_after_kill_1"] = len(lines(out / "edits.jsonl"))
        # the editor goes with its orchestrator (parent-death signal), not left running
        wait_for(lambda: not pid_alive(editor_pid), 60, "the orphaned editor to exit")
        # 2. rerun, SIGTERM while editing: a clean stop, services down, nothing recorded as failed
        cli = Cli(args, base / "cli-term.log")
        wait_for(lambda: len(lines(out / "edits.jsonl")) > result["edits_after_kill_1"], 240, "one more edit",
                 cli.proc, cli.log)
        editor_pid = processes(out)["editor CPU 0"]["pid"]
        cli.proc.send_signal(signal.SIGTERM)
        result["term_output"] = cli.wait(timeout=120)
        result["term_rc"] = cli.proc.returncode
        result["term_editor_alive"] = pid_alive(editor_pid)
        result["edits_after_term"] = len(lines(out / "edits.jsonl"))
        # 3. rerun, killed while judging
        cli = Cli(args, base / "cli-2.log")
        wait_for(lambda: lines(out / "scores.jsonl"), 300, "the first score", cli.proc, cli.log)
        scorer_pid = processes(out)["scorer"]["pid"]
        cli.kill()
        result["output_2"] = cli.log.read_text()
        result["scores_after_kill_2"] = len(lines(out / "scores.jsonl"))
        wait_for(lambda: not pid_alive(scorer_pid), 60, "the orphaned scorer to exit")
        # 4. rerun to completion
        cli = Cli(args, base / "cli-3.log")
        result["output_3"] = cli.wait()
        result["rc"] = cli.proc.returncode
    finally:
        cleanup(out, cli)
    return result


def test_run_b_killed_twice_then_rerun_completes_without_doing_anything_twice(run_b):
    out = run_b["out"]
    assert run_b["rc"] == 0, run_b["output_3"]
    assert 2 <= run_b["edits_after_kill_1"] < 5
    assert f"Resuming: {run_b['edits_after_term']} edit(s) done" in run_b["output_2"]
    assert 1 <= run_b["scores_after_kill_2"] < 4
    edit_lines, score_lines = lines(out / "edits.jsonl"), lines(out / "scores.jsonl")
    assert Counter(l["id"] for l in edit_lines) == Counter(
        {"phys-01": 1, "phys-02": 1, "env-01": 1, "env-02": 1, "big-01": 1})
    assert Counter(l["id"] for l in score_lines) == Counter({"phys-01": 1, "phys-02": 1, "env-01": 1, "env-02": 1})
    assert "Resuming: 4 edit(s) done, 1 recorded failure(s) kept" in run_b["output_3"]


def test_run_b_sigterm_stops_services_in_order_and_records_nothing_false(run_b):
    assert run_b["term_rc"] == 130, run_b["term_output"]
    assert "Interrupted: services stopped. Rerun the same command to resume." in run_b["term_output"]
    assert "Traceback" not in run_b["term_output"]
    assert not run_b["term_editor_alive"]  # stopped and waited for before the CLI exited
    assert f"Resuming: {run_b['edits_after_kill_1']} edit(s) done" in run_b["term_output"]
    assert not [l for l in lines(run_b["out"] / "edits.jsonl") if l["status"] == "failed" and l["id"] != "big-01"]


def test_run_b_permanent_failure_is_recorded_and_counted(run_b):
    out = run_b["out"]
    (big,) = [l for l in lines(out / "edits.jsonl") if l["id"] == "big-01"]
    assert big["status"] == "failed" and big["final"] is True and big["code"] == "INVALID_ARGUMENT"
    assert "300x300" in big["error"]
    summary = json.loads((out / "summary.json").read_text())
    physical = summary["categories"]["physical"]
    assert (physical["samples"], physical["edited"], physical["edit_failures"]) == (3, 2, 1)
    assert "edit failed" in (out / "report.html").read_text(encoding="utf-8")


def test_one_editor_and_two_editors_give_byte_identical_images(run_a, run_b):
    for sample_id, category in (("phys-01", "physical"), ("phys-02", "physical"),
                                ("env-01", "environmental"), ("env-02", "environmental")):
        a = (run_a["out"] / "edits" / category / f"{sample_id}.png").read_bytes()
        b = (run_b["out"] / "edits" / category / f"{sample_id}.png").read_bytes()
        assert a == b, sample_id


# -- static fleet ------------------------------------------------------------------------------
def test_static_fleet_uses_given_services_and_stops_none(tmp_path, run_b):
    """Services someone else started (here: the test) are used by address and left running."""
    from editfleet_common.launch import ServiceProcess, free_port, venv_python

    port_e, port_s = free_port(), free_port()
    editor = ServiceProcess("editor", [venv_python("editor"), "-m", "editor_service", "--model", str(TINY_EDITOR),
                                       "--device", "cpu", "--port", str(port_e), "--threads", "1"],
                            port_e, log_path=tmp_path / "editor.log")
    scorer = ServiceProcess("scorer", [venv_python("scorer"), "-m", "scorer_service", "--model", str(TINY_JUDGE),
                                       "--device", "cpu", "--port", str(port_s), "--threads", "2"],
                            port_s, log_path=tmp_path / "scorer.log")
    try:
        editor.start()
        scorer.start()
        out = tmp_path / "out"
        done = subprocess.run(
            orchestrator_cmd("run", "--benchmark", str(EXAMPLE), "--limit", "2", "--steps", "2", "--size", "256",
                             "--negative-prompt", " ", "--guidance", "4", "--fleet", "static",
                             "--editor-address", editor.address, "--scorer-address", scorer.address,
                             "--output", str(out), "--progress", "plain", "--allow-failures"),  # the untaught judge
            cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Editors left running (static fleet" in done.stdout
        assert editor.alive() and scorer.alive()
        assert len(lines(out / "edits.jsonl")) == 2 and len(lines(out / "scores.jsonl")) == 2
        # the same seed and settings as run B's editor: the same bytes, whoever runs the editor
        for sample_id in ("phys-01", "phys-02"):
            assert (out / "edits" / "physical" / f"{sample_id}.png").read_bytes() == \
                (run_b["out"] / "edits" / "physical" / f"{sample_id}.png").read_bytes()
        assert json.loads((out / "manifest.json").read_text())["fleet"]["kind"] == "static"
    finally:
        editor.stop(10)
        scorer.stop(10)
