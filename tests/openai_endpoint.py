"""A real OpenAI-compatible endpoint for the tests, and a fault-injecting proxy of our own before it.

    server = TransformersServe(models/tiny-qwen3-vl, log_path).start()   # `transformers serve` on loopback
    proxy = FaultProxy(server.url, api_key="sk-test-...").start()
    proxy.push(Fault("429", retry_after=1), Fault("500"))              # the next chat requests get these
    ... point the judge at proxy.url ...
    proxy.chat_requests                                                # what reached the proxy, in order

`transformers serve` (the transformers project's own server) hosts the tiny Qwen3-VL on the CPU: the
positional model pins it (requests name that path as `model`); it ignores max_completion_tokens,
returns no logprobs, checks no key. What it cannot do, the proxy does: it checks the key (401 for a
wrong one), and answers a queued chat request with a provider's fault instead of (or after) the
real answer: 429 + Retry-After, 500, a stall, a content-filter 400, a content-filter finish, a body
cut off mid-way, a 502 when the server is gone, or the server's reply with its text replaced (a
scripted judge answer, optionally with top_logprobs). Standard library only: the orchestrator's
environment runs it too.

The same proxy stands before an image-edit endpoint (an editfleet editor's --http-port, OpenAI's
POST /v1/images/edits): the faults apply to /images/edits requests as to chat ones (their multipart
text fields are what `when` predicates and `Seen.body` see, `image_requests` lists them), plus
"moderation400" (OpenAI's images refusal, code moderation_blocked); the upstream's content type and
x-request-id pass through (a stream stays a stream). `ImageChatServer` is a small chat-completions
server of our own whose replies carry an image, in OpenRouter's shape (message.images[]), for the
openai-chat-image editor backend (no real server speaks it on a CPU machine).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

from editfleet_common.launch import free_port, venv_python

MODERATION_MESSAGE = ("Your request was rejected as a result of our safety system. Your request may contain "
                      "content that is not allowed by our safety system.")
FILTER_MESSAGE = ("The response was filtered due to the prompt triggering Azure OpenAI's content management "
                  "policy. Please modify your prompt and retry.")


class TransformersServe:
    """`transformers serve MODEL_DIR` on loopback, CPU, float32, one thread (35-120 ms a request)."""

    def __init__(self, model_dir: Path, log_path: Path, port: int | None = None):
        self.model_dir = Path(model_dir).resolve()
        self.log_path = Path(log_path)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        return str(self.model_dir)  # the name requests must use

    def start(self, timeout: float = 120.0) -> "TransformersServe":
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1", "OMP_NUM_THREADS": "1"}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [venv_python("scorer"), "-m", "transformers.cli.transformers", "serve", str(self.model_dir),
             "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu", "--dtype", "float32"],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited ({self.proc.returncode}):\n{self.log_path.read_text()[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"transformers serve not up in {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Fault:
    """What the proxy does with one chat request instead of passing it through untouched.

    kind: "429" (Retry-After `retry_after`), "500", "401", "stall" (`seconds`, then the connection
    closes unanswered), "slow" (`seconds`, then passed through), "filter400" (Azure's content-filter error), "filter200" (the server's answer
    with finish_reason content_filter), "cut" (the server's answer cut off half-way, connection
    closed), "reply" (the server's answer with its text replaced by `text`, and `logprobs` as given).
    """

    kind: str
    retry_after: float | None = None
    seconds: float = 0.0
    text: str = ""
    logprobs: list | None = None  # [(token, [(candidate, logprob), ...]), ...]
    fingerprint: str = ""         # "reply": the system_fingerprint to report


@dataclass
class Seen:
    path: str
    body: dict
    fault: str          # "" when passed through
    authorization: str
    at: float = field(default_factory=time.monotonic)


class FaultProxy:
    def __init__(self, upstream: str, *, api_key: str | None = None, upstream_max_tokens: int | None = None):
        """upstream_max_tokens: chat requests asking for more are forwarded asking for that many (the
        client's body is recorded as sent): a suite's large reply budget without the tiny model
        generating all of it."""
        parsed = urlparse(upstream)
        self.upstream_max_tokens = upstream_max_tokens
        self.upstream_host, self.upstream_port = parsed.hostname, parsed.port
        self.prefix = parsed.path.rstrip("/")  # e.g. /v1
        self.api_key = api_key
        self.faults: deque[Fault] = deque()
        self.rules: list = []  # [predicate(body) -> bool, faults left, forever]: faults by content
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.prefix}"

    def start(self) -> "FaultProxy":
        threading.Thread(target=self.server.serve_forever, name="fault-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def push(self, *faults: Fault) -> None:
        """Faults for the next chat requests, one each, in order."""
        with self.lock:
            self.faults.extend(faults)

    def when(self, predicate, *faults: Fault, forever: bool = False) -> None:
        """Chat requests whose JSON body satisfies `predicate` get `faults`, one each, in order; with
        forever=True the last one stays for every later match. The rule given last is tried first."""
        with self.lock:
            self.rules.insert(0, [predicate, deque(faults), forever])

    @property
    def chat_requests(self) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path.endswith("/chat/completions")]

    @property
    def image_requests(self) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path.split("?", 1)[0].endswith("/images/edits")]

    def _next_fault(self, body: dict) -> Fault | None:
        with self.lock:
            for predicate, faults, forever in self.rules:
                if faults and predicate(body):
                    return faults[0] if forever and len(faults) == 1 else faults.popleft()
            return self.faults.popleft() if self.faults else None

    def _forward(self, method: str, path: str, body: bytes, headers) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=120)
        try:
            keep = {k: v for k, v in headers.items() if k.lower() in ("content-type", "accept")}
            conn.request(method, path, body=body or None, headers=keep)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, payload, headers: dict | None = None, *, cut: bool = False,
                      content_type: str = "application/json"):
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if cut:
                    self.send_header("Connection", "close")
                self.end_headers()
                if cut:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(data)

            def _error(self, status: int, message: str, code: str, headers=None, **extra):
                self._send(status, {"error": {"message": message, "type": code, "code": code, **extra}}, headers)

            def do_GET(self):
                self._handle(b"")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                self._handle(self.rfile.read(length))

            def _handle(self, raw: bytes):
                images = self.path.split("?", 1)[0].endswith("/images/edits")
                if images:
                    body = form_fields(raw, self.headers.get("Content-Type", ""))
                else:
                    try:
                        body = json.loads(raw) if raw else {}
                    except ValueError:
                        body = {}
                chat = self.path.endswith("/chat/completions")
                fault = proxy._next_fault(body) if chat or images else None
                authorization = self.headers.get("Authorization", "")
                with proxy.lock:
                    proxy.seen.append(Seen(self.path, body, fault.kind if fault else "", authorization))
                if proxy.api_key is not None and authorization != f"Bearer {proxy.api_key}":
                    return self._error(401, "Incorrect API key provided.", "invalid_api_key")
                kind = fault.kind if fault else ""
                if kind == "429":
                    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                    return self._error(429, "Rate limit reached for requests", "rate_limit_exceeded", headers)
                if kind == "500":
                    return self._error(500, "The server had an error while processing your request.", "server_error")
                if kind == "401":
                    return self._error(401, "Incorrect API key provided.", "invalid_api_key")
                if kind == "moderation400":
                    return self._send(400, {"error": {"message": MODERATION_MESSAGE, "type": "image_generation_user_error",
                                                      "param": None, "code": "moderation_blocked"}})
                if kind == "filter400":
                    return self._error(400, FILTER_MESSAGE, "content_filter", innererror={
                        "code": "ResponsibleAIPolicyViolation",
                        "content_filter_result": {"violence": {"filtered": True, "severity": "high"}}})
                if kind == "stall":
                    time.sleep(fault.seconds)
                    self.close_connection = True
                    return
                if kind == "slow":
                    time.sleep(fault.seconds)
                if chat and proxy.upstream_max_tokens and body.get("max_tokens", 0) > proxy.upstream_max_tokens:
                    raw = json.dumps({**body, "max_tokens": proxy.upstream_max_tokens}).encode()
                try:
                    status, headers, data = proxy._forward(self.command, self.path, raw, self.headers)
                except OSError as exc:
                    return self._error(502, f"upstream unreachable: {exc}", "bad_gateway")
                if kind in ("filter200", "reply") and status == 200:
                    reply = json.loads(data)
                    choice = reply["choices"][0]
                    if kind == "filter200":
                        choice["finish_reason"] = "content_filter"
                        choice["message"]["content"] = ""
                    else:
                        choice["message"]["content"] = fault.text
                        choice["finish_reason"] = "stop"
                        if fault.fingerprint:
                            reply["system_fingerprint"] = fault.fingerprint
                        if fault.logprobs is not None:
                            choice["logprobs"] = {"content": [
                                {"token": tok, "logprob": max((lp for t, lp in cands if t == tok), default=-0.1),
                                 "bytes": None,
                                 "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in cands]}
                                for tok, cands in fault.logprobs]}
                    data = json.dumps(reply).encode()
                passed = {k: v for k, v in headers.items() if k in ("x-request-id", "retry-after")}
                self._send(status, data, passed, cut=kind == "cut",
                           content_type=headers.get("content-type", "application/json"))

        return Handler


def form_fields(raw: bytes, content_type: str) -> dict:
    """The text fields of a multipart/form-data body (file parts: their byte count), for predicates."""
    boundary = next((part.split("=", 1)[1].strip().strip('"') for part in content_type.split(";")
                     if part.strip().lower().startswith("boundary=")), None)
    fields: dict = {}
    if not boundary:
        return fields
    for chunk in raw.split(b"--" + boundary.encode())[1:]:
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        text = head.decode("latin-1")
        name = text.split('name="', 1)[1].split('"', 1)[0] if 'name="' in text else ""
        data = data[:-2] if data.endswith(b"\r\n") else data
        if "filename=" in text:
            fields.setdefault("_files", []).append(len(data))
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields


class ImageChatServer:
    """A chat-completions server whose replies carry an image, in OpenRouter's shape: the user message's
    first image (a data URL) comes back with its colours inverted, as `message.images[0].image_url.url`,
    with usage (tokens and a cost). An instruction containing REFUSE is answered with finish_reason
    content_filter; one containing WORDS with text and no image. GET /v1/models lists `model`."""

    def __init__(self, model: str = "tests/tiny-image-chat"):
        self.model = model
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> "ImageChatServer":
        threading.Thread(target=self.server.serve_forever, name="image-chat", daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-request-id", f"gen-{len(outer.requests)}")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    return self._json(200, {"object": "list", "data": [{"id": outer.model, "object": "model"}]})
                self._json(404, {"error": {"message": "not found", "code": "not_found"}})

            def do_POST(self):
                import base64
                import io

                from PIL import Image, ImageOps

                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with outer.lock:
                    outer.requests.append(body)
                parts = body["messages"][-1]["content"]
                text = " ".join(p.get("text", "") for p in parts if p.get("type") == "text")
                urls = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
                message: dict = {"role": "assistant", "content": ""}
                finish = "stop"
                if "REFUSE" in text:
                    finish = "content_filter"
                elif "WORDS" in text or not urls:
                    message["content"] = "I would rather describe it: a square, now red."
                else:
                    source = Image.open(io.BytesIO(base64.b64decode(urls[0].split(",", 1)[1]))).convert("RGB")
                    buf = io.BytesIO()
                    ImageOps.invert(source).save(buf, format="PNG")
                    message["content"] = "Here is the edit."
                    message["images"] = [{"type": "image_url", "image_url": {
                        "url": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()}}]
                self._json(200, {"id": f"gen-{len(outer.requests)}", "object": "chat.completion", "model": outer.model,
                                 "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                                 "usage": {"prompt_tokens": 20 + len(text) // 4, "completion_tokens": 1290,
                                           "total_tokens": 1310 + len(text) // 4, "cost": 0.0387}})

        return Handler


class ImagesServer:
    """A small OpenAI images/edits endpoint of our own (no model): POST /v1/images/edits (multipart, OpenAI's
    field names) answers with the first input image's colours inverted, as b64_json with OpenAI's usage
    shape; with stream=true and partial_images=k, k image_edit.partial_image events (the source, then
    halfway) before image_edit.completed. GET /v1/models lists `model`. Every request's text fields and
    file sizes are kept (`requests`)."""

    def __init__(self, model: str = "tests/tiny-images", delay_s: float = 0.0):
        self.model = model
        self.delay_s = delay_s
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> "ImagesServer":
        threading.Thread(target=self.server.serve_forever, name="images", daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-request-id", f"req_test{len(outer.requests)}")
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    return self._json(200, {"object": "list", "data": [{"id": outer.model, "object": "model"}]})
                self._json(404, {"error": {"message": "not found", "code": "not_found"}})

            def do_POST(self):
                import base64
                import io

                from PIL import Image, ImageOps

                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fields = form_fields(raw, self.headers.get("Content-Type", ""))
                boundary = self.headers["Content-Type"].split("boundary=", 1)[1].strip('"')
                files = [c.partition(b"\r\n\r\n")[2][:-2] for c in raw.split(b"--" + boundary.encode())[1:]
                         if b"filename=" in c.partition(b"\r\n\r\n")[0]]
                with outer.lock:
                    outer.requests.append(fields)
                if outer.delay_s:
                    time.sleep(outer.delay_s)
                if not files:
                    return self._json(400, {"error": {"message": "image: required", "param": "image",
                                                      "type": "invalid_request_error", "code": None}})
                source = Image.open(io.BytesIO(files[0])).convert("RGB")
                if fields.get("size", "auto") != "auto":
                    source = source.resize(tuple(int(v) for v in fields["size"].split("x")))

                def b64(image) -> str:
                    buf = io.BytesIO()
                    image.save(buf, format="PNG")
                    return base64.b64encode(buf.getvalue()).decode()

                edited = ImageOps.invert(source)
                usage = {"input_tokens": 323, "output_tokens": 4160, "total_tokens": 4483,
                         "input_tokens_details": {"image_tokens": 194, "text_tokens": 129}}
                size = f"{edited.size[0]}x{edited.size[1]}"
                if fields.get("stream") != "true":
                    return self._json(200, {"created": int(time.time()), "data": [{"b64_json": b64(edited)}],
                                            "size": size, "output_format": "png", "usage": usage})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("x-request-id", f"req_test{len(outer.requests)}")
                self.send_header("Connection", "close")
                self.end_headers()
                common = {"background": "opaque", "output_format": "png", "quality": "auto", "size": size,
                          "created_at": int(time.time())}
                partials = int(fields.get("partial_images", "0"))
                for i in range(partials):
                    image = source if i == 0 else Image.blend(source, edited, 0.5)
                    event = {"type": "image_edit.partial_image", "b64_json": b64(image), "partial_image_index": i, **common}
                    self.wfile.write(f"event: image_edit.partial_image\ndata: {json.dumps(event)}\n\n".encode())
                    self.wfile.flush()
                event = {"type": "image_edit.completed", "b64_json": b64(edited), "usage": usage, **common}
                self.wfile.write(f"event: image_edit.completed\ndata: {json.dumps(event)}\n\n".encode())
                self.wfile.flush()
                self.close_connection = True

        return Handler
