"""Judge replicas on the local fleet (judge.replicas), on the CPU with two replicas: one queue over
both, each sample judged once, a replica SIGKILLed mid-run has its samples judged by the other (and
is restarted). The real CLI, real editor and scorer processes, the tiny models."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from conftest import EXAMPLE, REPO, TINY_EDITOR, TINY_JUDGE, orchestrator_cmd, require_tiny_models

SAMPLES = 6


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(l) for l in text[: text.rfind("\n") + 1].splitlines() if l.strip()]


def processes(out: Path) -> dict:
    try:
        return json.loads((out / "logs" / "processes.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


@pytest.fixture(scope="module")
def edited_run(tmp_path_factory):
    """`run --no-score` of 6 example samples on one CPU editor, its config asking for 2 judge replicas."""
    require_tiny_models()
    base = tmp_path_factory.mktemp("replicas")
    shutil.copytree(EXAMPLE.parent, base / "bench")
    config = {
        "benchmark": {"path": str(base / "bench" / "benchmark.jsonl"), "limit": SAMPLES},
        "editor": {"model": str(TINY_EDITOR), "steps": 2, "width": 64, "height": 64, "threads": 1},
        "judge": {"model": str(TINY_JUDGE), "max_batch": 2, "threads": 1, "replicas": 2, "prestart": False},
        "devices": {"editors": 1},
        "output": str(base / "out"),
    }
    (base / "run.yaml").write_text(yaml.safe_dump(config))
    done = subprocess.run(orchestrator_cmd("run", "--config", str(base / "run.yaml"), "--no-score", "--progress",
                                           "plain"), cwd=REPO, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    return base / "out"


def score(run: Path, out: Path, log: Path, wait=True):
    f = open(log, "w")
    # --allow-failures: the untaught judge's replies do not parse (PARSE_FAILED), every sample is still judged
    proc = subprocess.Popen(orchestrator_cmd("score", str(run), "--output", str(out), "--progress", "plain",
                                             "--allow-failures"),
                            cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
    if not wait:
        return proc, f
    proc.wait(400)
    f.close()
    return proc.returncode, log.read_text()


def test_two_replicas_share_one_queue_and_judge_each_sample_once(edited_run, tmp_path):
    out = tmp_path / "rejudge"
    code, output = score(edited_run, out, tmp_path / "cli.log")
    assert code == 0, output
    records = lines(out / "scores.jsonl")
    assert sorted(Counter(r["id"] for r in records).values()) == [1] * SAMPLES
    by_replica = Counter(r["judge_replica"] for r in records)
    assert set(by_replica) == {"scorer", "scorer-1"}, by_replica  # both judged
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["judge"]["replicas"]) == ["scorer", "scorer-1"]
    assert (out / "logs" / "scorer.log").exists() and (out / "logs" / "scorer-1.log").exists()
    assert "2 judge replicas" in output


def test_a_replica_killed_mid_run_its_samples_are_judged_by_the_others_once(edited_run, tmp_path):
    out = tmp_path / "rejudge"
    proc, log = score(edited_run, out, tmp_path / "cli.log", wait=False)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if "scorer-1" in processes(out) and lines(out / "scores.jsonl"):
                break
            time.sleep(0.02)
        victim = processes(out)["scorer-1"]["pid"]
        os.kill(victim, signal.SIGKILL)
        proc.wait(400)
    finally:
        log.close()
        if proc.poll() is None:
            proc.kill()
    output = (tmp_path / "cli.log").read_text()
    assert proc.returncode == 0, output
    records = lines(out / "scores.jsonl")
    assert sorted(Counter(r["id"] for r in records).values()) == [1] * SAMPLES  # each sample once
    assert "[scorer scorer-1] stream ended" in output  # the kill was noticed mid-run, not after the end
    assert processes(out).get("scorer-1", {}).get("pid") != victim  # restarted
