"""An API judge's log tells no secret (issue 28 item 9): a scorer started by hand with a base URL that
carries a credential (Azure Functions' ?code=) logs every request's URL through its HTTP client; the
log line shows the URL with the credential REDACTED, and neither it nor the API key is anywhere in the
log. A real scorer (--backend openai) against a minimal chat-completions endpoint on loopback."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from scorer_service.client import ScorerClient, make_request, status_name

from .conftest import png, start_scorer

CANARY = "Cnry7Zq0x9F3kLmN2pQ8wApiLog"
KEY_ENV = "EDITFLEET_TEST_LOG_KEY"
KEY = "sk-editfleet-logtest-77a1c3e9d0"


class _Chat(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    paths: list[str] = []

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Chat.paths.append(self.path)
        body = json.dumps({
            "id": "c1", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": '{"score": 6, "response": "ok"}'}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_the_http_clients_url_lines_and_the_key_are_redacted_in_the_scorer_log(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Chat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log_path = tmp_path / "scorer.log"
    os.environ[KEY_ENV] = KEY
    try:
        base_url = f"http://127.0.0.1:{server.server_port}/api/v1?code={CANARY}"
        process = start_scorer("m", log_path, "--backend", "openai", "--base-url", base_url,
                               "--api-key-env", KEY_ENV, "--max-retries", "0")
    finally:
        os.environ.pop(KEY_ENV, None)
    try:
        with ScorerClient(process.address) as client:
            results = list(client.score_many([make_request(
                "s1", source_image=png(), edited_image=png(color=(0, 0, 200)),
                instruction=f"make it blue (key {KEY})", category="physical", protocol="mini-seed",
                variables={"original_description": "a red card"})], timeout=60))
        assert len(results) == 1 and status_name(results[0]) == "OK", results
    finally:
        process.stop(grace=20)
        server.shutdown()
    assert any(CANARY in p for p in _Chat.paths)  # the endpoint did get the URL as given
    log = log_path.read_text()
    assert "HTTP Request: POST" in log and "code=REDACTED" in log
    assert CANARY not in log and KEY not in log
