"""One port, one server (issue 27, item 5), for the scorer: a second judge on a served port, a port an
ordinary socket holds, and a taken metrics port are each one line on stderr and exit 2, before the
judge loads; the first judge keeps serving. Real processes on loopback (the shared frame's in-process
checks are in tests/editor/test_port_binding.py)."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request

from editfleet_common.launch import REPO_ROOT, free_port, venv_python
from scorer_service.client import ScorerClient

from .conftest import TEST_PROTOCOLS, start_scorer


def in_use(port: int, flag: str = "--port", what: str = "port") -> str:
    return (f"error: {what} {port} on 127.0.0.1 is already in use (another editfleet service?); "
            f"choose another with {flag}")


def run_scorer(model_dir, *args: str) -> subprocess.CompletedProcess:
    """`python -m scorer_service` as start_scorer starts it, run to its end (a refused start ends at once).

    --max-new-tokens 4096 (start_scorer: 12): no protocol's budget exceeds it, so main's warnings about
    cut replies, printed before the frame binds, stay out of stderr (nothing is generated here)."""
    argv = [venv_python("scorer"), "-m", "scorer_service", "--model", str(model_dir),
            "--max-batch", "4", "--max-wait-ms", "300", "--max-new-tokens", "4096", "--threads", "1",
            "--protocols-dir", str(TEST_PROTOCOLS), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)


def assert_refused(result: subprocess.CompletedProcess, line: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stderr.splitlines() == [line], result.stderr  # one line: no traceback, no gRPC log, no load
    assert result.stdout == ""


def test_a_second_scorer_and_taken_ports_are_refused_in_one_line(tiny_judge_dir, tmp_path):
    metrics_port = free_port()
    first = start_scorer(tiny_judge_dir, tmp_path / "scorer.log", "--metrics-port", str(metrics_port))
    try:
        started = time.monotonic()
        assert_refused(run_scorer(tiny_judge_dir, "--port", str(first.port)), in_use(first.port))
        assert_refused(run_scorer(tiny_judge_dir, "--port", "0", "--metrics-port", str(metrics_port)),
                       in_use(metrics_port, "--metrics-port", "metrics port"))
        with socket.socket() as plain:  # a port an ordinary socket listens on
            plain.bind(("127.0.0.1", 0))
            plain.listen()
            port = plain.getsockname()[1]
            assert_refused(run_scorer(tiny_judge_dir, "--port", str(port)), in_use(port))
        assert time.monotonic() - started < 30  # refused at bind, without loading the judge

        assert first.alive()  # and it still serves, on both ports
        with ScorerClient(first.address) as client:
            assert client.health() == "SERVING"
            assert client.info().model.model == str(tiny_judge_dir)
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        assert 'service="scorer"' in text
    finally:
        assert first.stop(grace=20) == 0
