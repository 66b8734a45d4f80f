"""Start-up, shutdown and the command line: NOT_SERVING while loading, graceful SIGTERM, clear
errors for bad arguments, and a client that imports without torch."""

from __future__ import annotations

import subprocess
import threading
import time


from editfleet_common.channels import ServiceError, health_status, make_channel
from editfleet_common.launch import REPO_ROOT, free_port, venv_python
from scorer_service.client import ScorerClient, make_request, status_name

from suites.catalog import catalog

from .conftest import png, start_scorer


def test_not_serving_while_loading_then_serving_and_draining_on_sigterm(tiny_judge_dir, tmp_path):
    process = start_scorer(tiny_judge_dir, tmp_path / "scorer.log", wait=False)
    channel = make_channel(process.address)
    seen = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.alive():
            status = health_status(channel, timeout=1.0)
            if not seen or seen[-1] != status:
                seen.append(status)
            if status == "NOT_SERVING":
                with ScorerClient(process.address) as client:
                    try:
                        client.info(timeout=5)
                        loading_call = "answered"
                    except ServiceError as exc:
                        loading_call = exc.code.name
            if status == "SERVING":
                break
            time.sleep(0.05)
        assert "NOT_SERVING" in seen and seen[-1] == "SERVING", seen
        assert loading_call in ("UNAVAILABLE", "answered")  # answered only if loading ended in between

        # SIGTERM while a stream is in flight: it finishes, then the process exits cleanly
        results = []
        requests = [make_request(f"d{i}", edited_image=png(), instruction="x", category="physical",
                                 variables={"original_description": "y"}) for i in range(6)]

        def stream():
            with ScorerClient(process.address) as client:
                results.extend(client.score_many(iter(requests), timeout=120))

        sender = threading.Thread(target=stream)
        sender.start()
        time.sleep(0.5)
        code = process.stop(grace=60)
        sender.join(60)
        assert code == 0
        assert sorted(r.sample_id for r in results) == [f"d{i}" for i in range(6)]
        assert all(status_name(r) == "PARSE_FAILED" for r in results)
    finally:
        channel.close()
        process.kill()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [venv_python("scorer"), "-m", "scorer_service", *args], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=120,
    )


def test_bad_protocol_directory_is_a_clear_cli_error(tmp_path):
    (tmp_path / "broken.yaml").write_text("name: other\nquestions: {score: {user: x}}\n")
    proc = _cli("--model", "unused", "--port", str(free_port()), "--protocols-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "broken.yaml" in proc.stderr and "must equal the file name" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_default_protocol_is_a_clear_cli_error():
    proc = _cli("--model", "unused", "--port", str(free_port()), "--default-protocol", "nope")
    assert proc.returncode == 2
    assert f"default protocol 'nope' not found; known: {', '.join(sorted(catalog().protocol_names()))}" in proc.stderr


def test_a_model_that_cannot_load_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{}")  # a model folder (startup_problems lets it by) that cannot load
    proc = _cli("--model", str(tmp_path), "--port", str(free_port()))
    assert proc.returncode == 1
    assert f"error: cannot load judge {str(tmp_path)!r}" in proc.stderr


def test_client_and_package_import_without_torch():
    code = (
        "import sys; import scorer_service, scorer_service.client, suites.shared.protocol, suites.shared.parsing; "
        "assert 'torch' not in sys.modules, 'torch was imported'; print('ok')"
    )
    proc = subprocess.run([venv_python("orchestrator"), "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_a_full_queue_refuses_unary_calls_with_resource_exhausted(tiny_judge_dir, tmp_path):
    process = start_scorer(tiny_judge_dir, tmp_path / "scorer.log", "--max-queue", "1", "--max-batch", "1",
                           "--max-wait-ms", "0")
    outcomes = []
    lock = threading.Lock()

    def call(i):
        with ScorerClient(process.address) as client:
            try:
                r = client.score(f"q{i}", edited_image=png(), instruction="x",
                                 variables={"original_description": "y"}, timeout=60)
                outcome = status_name(r)
            except ServiceError as exc:
                outcome = exc.code.name
                assert "queue is full" in exc.details
        with lock:
            outcomes.append(outcome)

    try:
        threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        process.stop(grace=20)
    assert len(outcomes) == 8
    assert "RESOURCE_EXHAUSTED" in outcomes
    assert "PARSE_FAILED" in outcomes  # the ones admitted were judged
    assert set(outcomes) <= {"RESOURCE_EXHAUSTED", "PARSE_FAILED"}



def test_sigterm_while_the_model_is_still_loading_stops_the_load(tiny_judge_dir, tmp_path):
    """SIGTERM while the judge loads (an 8B load takes minutes): nothing was accepted, so there is
    nothing to drain; the process exits 0 at once instead of finishing the load and warm-up first."""
    log_path = tmp_path / "scorer.log"
    process = start_scorer(tiny_judge_dir, log_path, wait=False)
    channel = make_channel(process.address)
    try:
        deadline = time.monotonic() + 60
        while health_status(channel, timeout=1.0) != "NOT_SERVING":  # the server is up: loading
            assert time.monotonic() < deadline and process.alive(), "scorer never answered health"
            time.sleep(0.02)
        code = process.stop(grace=30)
        assert code == 0
        log = log_path.read_text()
        assert "SIGTERM" in log
        assert "SERVING on port" not in log, "the judge went on loading and serving after SIGTERM"
    finally:
        channel.close()
        process.kill()
