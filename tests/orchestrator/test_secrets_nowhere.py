"""Secrets nowhere (issue 28 items 9 and 10): a credential inside judge.base_url (user info, a query
parameter such as Azure Functions' ?code=, password=, a key in a path segment) is refused before
anything is stored, and redacted at one choke point (editfleet_common/redact.py) wherever a URL still
reaches a manifest or a log line; the API key's variable reaches only the process that uses it; log
lines are escaped (a sample id with a newline forges no line); a run killed outright is marked
"interrupted" when its folder is opened again. Canaries in each position, looked for in every file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from conftest import REPO, png_bytes, write_native
from orchestrator.config import ConfigError, build_config

CANARY = "Cnry7Zq0x9F3kLmN2pQ8w"  # random-looking, as a key is

# Every position a credential can take in an endpoint URL (the canary is the secret in each).
SECRET_URLS = {
    "user info": f"https://judge:{CANARY}@api.example.com/v1",
    "user name": f"https://{CANARY}@api.example.com/v1",
    "Azure Functions ?code=": f"https://fn.azurewebsites.net/api/v1?code=canary-{CANARY.lower()}",
    "password=": f"https://api.example.com/v1?password=hunter2{CANARY}",
    "short password=": "https://api.example.com/v1?password=Cnry",
    "other query name, key-like value": f"https://api.example.com/v1?x={CANARY}",
    "key in a path segment": f"https://api.example.com/{CANARY}/v1",
    "sk- key in a path segment": f"https://api.example.com/v1/sk-{CANARY}",
    "segment after /key/": "https://api.example.com/key/Cnry-abc/v1",
    "name=value segment": "https://api.example.com/token=Cnry-abc/v1",
    "matrix parameter": "https://api.example.com/v1;apikey=Cnry-abc",
    "fragment": "https://api.example.com/v1#access_token=Cnry-abc",
}
PLAIN_URLS = [
    "http://127.0.0.1:8000/v1",
    "https://api.openai.com/v1",
    "https://myres.openai.azure.com/openai/deployments/gpt-4o-2024-08-06?api-version=2024-02-01",
    "https://gateway.ai.cloudflare.com/v1/0123456789abcdef0123456789abcdef/my-gateway/openai",
    "https://generativelanguage.googleapis.com/v1beta/openai",
    "https://router.example.com/models/Meta-Llama-3.1-70B-Instruct/v1",
]


def secret_part(url: str) -> str:
    return CANARY if CANARY in url or CANARY.lower() in url else "Cnry"


@pytest.mark.parametrize("position", list(SECRET_URLS))
def test_every_credential_position_is_found_and_redacted(position):
    from editfleet_common.redact import redact_json, redact_text, redact_url, url_secrets

    url = SECRET_URLS[position]
    assert url_secrets(url), position
    for out in (redact_url(url), redact_text(f"POST {url} 200"), json.dumps(redact_json({"u": [url]}))):
        assert secret_part(url) not in out and CANARY.lower() not in out, (position, out)
    assert ("api.example.com" in redact_url(url) or "fn.azurewebsites.net" in redact_url(url)) and "REDACTED" in redact_url(url)


@pytest.mark.parametrize("url", PLAIN_URLS)
def test_urls_without_credentials_are_left_alone(url):
    from editfleet_common.redact import redact_url, url_secrets

    assert url_secrets(url) == [] and redact_url(url) == url


def files_holding(root: Path, needle: str) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


@pytest.mark.parametrize("position", list(SECRET_URLS))
def test_a_base_url_with_a_credential_is_refused_before_anything_is_stored(tmp_path, position):
    from orchestrator.benchmark import load_benchmark
    from orchestrator.run import open_run_dir

    url = SECRET_URLS[position]
    bench = write_native(tmp_path / "bench", [{"id": "s1", "image": "s1.png", "instruction": "x", "category": "c"}],
                         {"s1.png": png_bytes()})
    data = {"benchmark": {"path": str(bench)}, "editor": {"model": "m"}, "output": str(tmp_path / "run"),
            "judge": {"backend": "openai", "model": "gpt", "base_url": url}}
    with pytest.raises(ConfigError) as info:
        config = build_config(data)
        open_run_dir(config, load_benchmark(bench))  # what the old check let through wrote the manifest here
    message = str(info.value)
    assert "judge.base_url" in message and "credential" in message and secret_part(url) not in message
    assert files_holding(tmp_path, secret_part(url)) == []


def test_a_credential_in_the_judges_server_args_is_refused_too(tmp_path):
    data = {"editor": {"model": "m"}, "output": str(tmp_path / "run"),
            "judge": {"backend": "openai", "model": "gpt", "base_url": "https://api.example.com/v1",
                      "server_args": ["--base-url", SECRET_URLS["Azure Functions ?code="]]}}
    with pytest.raises(ConfigError, match="judge.server_args") as info:
        build_config(data)
    assert CANARY.lower() not in str(info.value)


def test_the_manifest_is_redacted_where_it_is_written(tmp_path):
    from orchestrator.results import RunDir

    run = RunDir(tmp_path / "run").create()
    run.write_manifest({"command": ["orchestrator", "run", "--judge-base-url", SECRET_URLS["key in a path segment"]],
                        "config": {"judge": {"base_url": SECRET_URLS["password="]}}})
    assert files_holding(tmp_path, CANARY) == []
    assert "REDACTED" in (tmp_path / "run" / "manifest.json").read_text()


# -- service logs: the HTTP client's URL lines, forged lines, a 1 MB id ----------------------------
LOGGING_CHILD = textwrap.dedent("""
    import argparse, logging, sys
    from editfleet_common.service import setup_logging
    setup_logging(argparse.Namespace(log_level="info"), "%(asctime)s %(levelname)s svc %(name)s: %(message)s")
    log = logging.getLogger("editor_service.server")
    log.info("edit %s: 2 steps", "s1\\n2024-01-01 00:00:00,000 INFO svc editor_service.server: edit FORGED: done")
    log.info("edit %s: 2 steps", "x" * 1_000_000)
    import httpx
    httpx.get(sys.argv[1]).raise_for_status()  # httpx logs every request's URL at INFO
""")


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_service_log_lines_are_redacted_and_escaped(tmp_path):
    """The scorer's log (setup_logging, the services' one logging set-up) with the HTTP client's own
    request line for a URL with ?code=: the canary is not in it; a sample id with a newline stays on
    its line; a 1 MB id is cut."""
    server = HTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/api/v1/chat?code={CANARY}"
        scorer_python = REPO / ".venv" / "scorer" / "bin" / "python"
        python = str(scorer_python) if scorer_python.exists() else sys.executable
        done = subprocess.run([python, "-c", LOGGING_CHILD, url], cwd=REPO, capture_output=True, text=True,
                              timeout=120)
    finally:
        server.shutdown()
    log = done.stderr
    assert done.returncode == 0, log[-3000:]
    assert "HTTP Request: GET" in log and "code=REDACTED" in log
    assert CANARY not in log
    lines = log.splitlines()
    assert not any("FORGED" in line and line.startswith("2024-01-01") for line in lines)
    assert any("s1\\n2024-01-01" in line for line in lines)
    assert max(map(len, lines)) < 10_000


# -- item 10: the API key only where it is used --------------------------------------------------
def test_the_api_keys_variable_reaches_only_the_api_judge(tmp_path, monkeypatch):
    from orchestrator.fleet.local import LocalFleet

    monkeypatch.setenv("EDITFLEET_TEST_KEY_VAR", f"sk-{CANARY}")
    monkeypatch.setenv("OPENAI_API_KEY", f"sk-default-{CANARY}")
    config = build_config({"editor": {"model": "m"}, "output": str(tmp_path / "run"), "devices": {"editors": 1},
                           "judge": {"backend": "openai", "model": "gpt", "base_url": "http://127.0.0.1:9/v1",
                                     "api_key_env": "EDITFLEET_TEST_KEY_VAR"}})
    fleet = LocalFleet(config, tmp_path / "logs")
    fleet.devices["CPU 0"] = {"device": "cpu", "env": {"CUDA_VISIBLE_DEVICES": ""}}
    show = [sys.executable, "-c", "import os; print(sorted(k for k in os.environ if 'KEY' in k))"]
    seen = {}
    for name, proc in (("editor", fleet._editor_process("CPU 0")), ("scorer", fleet._api_scorer_process())):
        proc.argv = show
        proc.start()
        proc.proc.wait(30)
        seen[name] = proc.log_path.read_text()
    fleet._spawner.shutdown()
    assert "EDITFLEET_TEST_KEY_VAR" not in seen["editor"] and "OPENAI_API_KEY" not in seen["editor"]
    assert "EDITFLEET_TEST_KEY_VAR" in seen["scorer"]

    local = build_config({"editor": {"model": "m"}, "judge": {"model": "j"}, "output": str(tmp_path / "run2")})
    judge = LocalFleet(local, tmp_path / "logs2")._scorer_process(staged=False)
    judge.argv = show
    judge.start()
    judge.proc.wait(30)
    assert "OPENAI_API_KEY" not in judge.log_path.read_text()  # a local judge needs no key either


def test_a_one_megabyte_sample_id_is_refused_by_the_loader_in_a_short_message(tmp_path):
    from orchestrator.benchmark import BenchmarkError, load_benchmark

    bench = write_native(tmp_path / "bench", [{"id": "x" * 1_000_000, "image": "s1.png", "instruction": "x",
                                               "category": "c"}], {"s1.png": png_bytes()})
    with pytest.raises(BenchmarkError, match="id longer than 200 bytes") as info:
        load_benchmark(bench)
    assert len(str(info.value)) < 2000


# -- item 10: killed runs -------------------------------------------------------------------------
OPEN_AND_DIE = textwrap.dedent("""
    import os, signal, sys
    from orchestrator.benchmark import load_benchmark
    from orchestrator.config import build_config
    from orchestrator.run import open_run_dir
    config = build_config({"benchmark": {"path": sys.argv[1]}, "editor": {"model": "m"}, "output": sys.argv[2]})
    open_run_dir(config, load_benchmark(sys.argv[1]), judging=False)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_session_left_running_by_a_killed_process_is_marked_interrupted(tmp_path):
    from orchestrator.benchmark import load_benchmark
    from orchestrator.run import open_run_dir

    bench = write_native(tmp_path / "bench", [{"id": "s1", "image": "s1.png", "instruction": "x", "category": "c"}],
                         {"s1.png": png_bytes()})
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-c", OPEN_AND_DIE, str(bench), str(out)], cwd=REPO, timeout=120,
                          capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert json.loads((out / "manifest.json").read_text())["sessions"][-1]["status"] == "running"

    config = build_config({"benchmark": {"path": str(bench)}, "editor": {"model": "m"}, "output": str(out)})
    _, manifest = open_run_dir(config, load_benchmark(bench), judging=False)
    killed, current = manifest["sessions"]
    assert killed["status"] == "interrupted" and "interrupted_noted" in killed
    assert current["status"] == "running" and current["pid"] == os.getpid()
    on_disk = json.loads((out / "manifest.json").read_text())["sessions"]
    assert [s["status"] for s in on_disk] == ["interrupted", "running"]

    # A session whose process still runs (this one) is left as it is.
    _, manifest = open_run_dir(config, load_benchmark(bench), judging=False)
    assert [s["status"] for s in manifest["sessions"]] == ["interrupted", "running", "running"]
