"""Faults during a run, with real processes and real signals (tiny models, 2 steps, few samples).
test_e2e.py already covers an editor SIGKILLed mid-run and the CLI killed at chosen moments; here:

  - an editor SIGTERMed while it streams: it finishes (or hands back) its sample, the run completes;
  - the scorer SIGKILLed mid-batch: lines already written stay, the rest are judged after a restart;
  - the CLI SIGKILLed at random moments (one in each phase, random order and delay) across repeated runs, torn last lines added by hand, then a
    final rerun: every sample exactly once in edits.jsonl and scores.jsonl, nothing half-written.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import yaml
from PIL import Image

from conftest import EXAMPLE, REPO, TINY_EDITOR, TINY_JUDGE, require_tiny_models
from test_e2e import Cli, cleanup, lines, pid_alive, processes, wait_for

SAMPLES = [json.loads(l) for l in EXAMPLE.read_text().splitlines()]


def write_config(base: Path, *, limit: int, editors: int, max_batch: int) -> list[str]:
    config = yaml.safe_load((REPO / "examples" / "config.yaml").read_text())
    config["benchmark"] = {"path": str(EXAMPLE), "limit": limit}
    config["editor"].update(model=str(TINY_EDITOR), width=64, height=64)
    config["judge"].update(model=str(TINY_JUDGE), max_batch=max_batch, server_args=["--max-new-tokens", "16"])
    config["devices"] = {"editors": editors}
    config["output"] = str(base / "out")
    (base / "config.yaml").write_text(yaml.safe_dump(config))
    # the untaught judge's replies do not parse (PARSE_FAILED): every sample tried is what these tests ask
    return ["run", "--config", str(base / "config.yaml"), "--progress", "plain", "--allow-failures"]


def assert_every_sample_exactly_once(out: Path, ids: list[str]) -> None:
    edits, scores = lines(out / "edits.jsonl"), lines(out / "scores.jsonl")
    assert Counter(l["id"] for l in edits) == Counter(ids), Counter(l["id"] for l in edits)
    assert all(l["status"] == "ok" for l in edits)
    assert Counter(l["id"] for l in scores) == Counter(ids), Counter(l["id"] for l in scores)
    # nothing half-written: every image decodes completely, no temporary file is left behind
    for record in edits:
        with Image.open(out / "edits" / record["category"] / f"{record['id']}.png") as img:
            img.load()
    assert sorted(p.name for p in (out / "edits").rglob("*") if p.is_file()) == sorted(f"{i}.png" for i in ids)


def test_editor_sigterm_mid_stream_and_scorer_sigkill_mid_batch(tmp_path):
    require_tiny_models()
    args = write_config(tmp_path, limit=6, editors=2, max_batch=2)
    out = tmp_path / "out"
    cli = Cli(args, tmp_path / "cli.log")
    try:
        first = wait_for(lambda: lines(out / "edits.jsonl"), 240, "the first edit", cli.proc, cli.log)[0]
        # both editors are busy all the time: the one that did not just finish is mid-stream
        victim = "CPU 1" if first["editor"] == "CPU 0" else "CPU 0"
        editor_pid = processes(out)[f"editor {victim}"]["pid"]
        edits_before = len(lines(out / "edits.jsonl"))
        os.kill(editor_pid, signal.SIGTERM)
        wait_for(lambda: not pid_alive(editor_pid), 60, "the SIGTERMed editor to drain and exit")
        # its in-flight sample was finished by it (one more line) or handed back (finished elsewhere)
        scored = wait_for(lambda: lines(out / "scores.jsonl"), 300, "the first score line", cli.proc, cli.log)
        scorer_pid = processes(out)["scorer"]["pid"]
        os.kill(scorer_pid, signal.SIGKILL)  # mid-batch: more samples are in the judge's hands
        kept = [l for l in lines(out / "scores.jsonl")]
        output = cli.wait()
    finally:
        cleanup(out, cli)
    assert cli.proc.returncode == 0, output
    assert "Traceback" not in output
    ids = [s["id"] for s in SAMPLES[:6]]
    assert_every_sample_exactly_once(out, ids)
    assert edits_before >= 1 and scored
    assert f"[{victim}] editor exited; restarting it" in output
    logs = "\n".join(p.read_text(errors="replace") for p in (out / "logs").glob("editor*.log"))
    assert "signal SIGTERM: draining" in logs and "drained: all accepted edits finished" in logs
    # score lines written before the kill are kept as they were, the rest came after a restart
    assert lines(out / "scores.jsonl")[: len(kept)] == kept
    assert len(kept) < len(ids)
    session = json.loads((out / "manifest.json").read_text())["sessions"][-1]
    assert session["status"] == "complete" and session["scorer_restarts"] == 1 and session["editor_restarts"] == 1


def test_cli_killed_at_random_moments_then_rerun_does_everything_exactly_once(tmp_path):
    require_tiny_models()
    seed = int(os.environ.get("EDITFLEET_FAULT_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    print(f"kill delays from seed {seed} (EDITFLEET_FAULT_SEED={seed} repeats them)")
    args = write_config(tmp_path, limit=4, editors=1, max_batch=2)
    out = tmp_path / "out"
    cli = None
    progress = []
    try:
        # one kill in each phase, in random order, each at a random moment within it
        for round_no, phase in enumerate(rng.sample(["start-up", "editing", "judging"], 3)):
            cli = Cli(args, tmp_path / f"cli-{round_no}.log")
            edits_so_far, scores_so_far = len(lines(out / "edits.jsonl")), len(lines(out / "scores.jsonl"))
            reached = {
                "start-up": lambda: True,  # benchmark checks, services starting
                "editing": lambda: len(lines(out / "edits.jsonl")) > edits_so_far,
                "judging": lambda: len(lines(out / "scores.jsonl")) > scores_so_far,
            }[phase]
            deadline = time.monotonic() + 180
            while not reached() and cli.proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            delay = {"start-up": rng.uniform(0.5, 6.0), "editing": rng.uniform(0.0, 2.0)}.get(phase, rng.uniform(0.0, 0.8))
            time.sleep(delay)
            services = processes(out)
            cli.kill()
            for info in services.values():  # the services die with their orchestrator
                wait_for(lambda: not pid_alive(info["pid"]), 60, "an orphaned service to exit")
            progress.append((phase, round(delay, 2), len(lines(out / "edits.jsonl")), len(lines(out / "scores.jsonl"))))
        # a crash in the middle of a write, on top of whatever the kills left
        for name in ("edits.jsonl", "scores.jsonl"):
            if (out / name).exists():
                with open(out / name, "ab") as f:
                    f.write(b'{"id": "phys-01", "status": "ok", "sha2')
        cli = Cli(args, tmp_path / "cli-final.log")
        output = cli.wait()
    finally:
        cleanup(out, cli)
    print("rounds (phase, kill delay s, edit lines, score lines):", progress)
    assert cli.proc.returncode == 0, output
    assert_every_sample_exactly_once(out, [s["id"] for s in SAMPLES[:4]])
    for name in ("edits.jsonl", "scores.jsonl"):
        data = (out / name).read_bytes()
        tail = data[data.rfind(b"\n") + 1:]
        # a torn tail is cut before the next append; it can stay only where nothing was left to write
        assert tail in (b"", b'{"id": "phys-01", "status": "ok", "sha2'), tail
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is True and summary["samples"] == 4
