"""A judge that hangs (process frozen: connection open, no answers) does not hang the run: after
judge.stall_timeout_s without a result the stream is cancelled and the samples count as unscored, which
the run reports (and a rerun finishes)."""

from __future__ import annotations

import io
import os
import signal
import time

from conftest import EXAMPLE, TINY_JUDGE, png_bytes, require_tiny_models

from editfleet_common.launch import ServiceProcess, free_port, venv_python
from orchestrator.benchmark import load_benchmark
from orchestrator.results import RunDir
from orchestrator.scoring import Scorer, ScoreItem
from orchestrator.ui import PlainUI
from scorer_service.client import ScorerClient


def test_a_frozen_judge_is_given_up_on_after_the_stall_timeout(tmp_path):
    require_tiny_models()
    port = free_port()
    scorer = ServiceProcess("scorer", [venv_python("scorer"), "-m", "scorer_service", "--model", str(TINY_JUDGE),
                                       "--device", "cpu", "--port", str(port), "--threads", "1"],
                            port, log_path=tmp_path / "scorer.log")
    samples = load_benchmark(EXAMPLE, limit=2).samples
    edit = tmp_path / "edit.png"
    edit.write_bytes(png_bytes((64, 64)))
    items = [ScoreItem(i, sample, {"sample_id": sample.id}, edit) for i, sample in enumerate(samples, 1)]
    out = io.StringIO()
    scorer_run = Scorer(run_dir=RunDir(tmp_path / "run"), ui=PlainUI(out), protocol="", batch_size=2,
                        max_in_flight=4, max_attempts=2, client_factory=ScorerClient, stall_timeout_s=2.0)
    try:
        scorer.start().wait_healthy(120)
        os.kill(scorer.proc.pid, signal.SIGSTOP)  # hung: the socket stays open, nothing answers
        started = time.monotonic()
        outcome = scorer_run.run(scorer.address, items)
        took = time.monotonic() - started
    finally:
        os.kill(scorer.proc.pid, signal.SIGCONT)
        scorer.stop(grace=5)
    assert sorted(outcome.unscored) == sorted(s.id for s in samples) and outcome.scored == 0
    assert 4.0 <= took < 20.0, took  # two attempts of ~2 s each, then it gives up instead of waiting for ever
    log = out.getvalue()
    assert "judge stalled" in log and "giving up on 2 sample(s) after 2 attempts" in log, log
