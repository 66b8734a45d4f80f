"""The editor behind OpenAI's Images API (`--http-port`): a thin HTTP adapter over the same core as
the gRPC one (server.EditWorker.begin: the same checks, limits, queue and worker).

    POST /v1/images/edits    multipart/form-data, OpenAI's shape:
        image / image[]      one input image or several, in order (the edit model's max_images)
        prompt               the instruction
        model                optional; the id GET /v1/models lists (another model: 400)
        n                    1..10 edits of the same request (seeds seed, seed+1, ... when seed is set)
        size                 auto (the pipeline's own choice) or WIDTHxHEIGHT
        response_format      b64_json (url: 400, this server keeps no files)
        output_format        png (default), jpeg, webp; output_compression 0..100 for jpeg and webp
        stream, partial_images   Server-Sent Events: image_edit.partial_image (the current latents
                             decoded after evenly spread denoise steps, previews.py), then
                             image_edit.completed per image
        background           auto or opaque (the edit is opaque); quality auto
        user, safety_identifier  accepted, not used (identifiers, not edit settings)
      editfleet's own fields: seed, steps, guidance, negative_prompt (as the gRPC EditRequest's seed,
      num_inference_steps, guidance_scale, negative_prompt)
      Anything else, or a setting this editor cannot honour (mask, input_fidelity, quality high, a
      transparent background), is a 400 naming the parameter: nothing is silently ignored.
    GET /v1/models, GET /v1/models/{id}   the one model served (OpenAI's list shape)
    GET /health              200 while SERVING, else 503

Errors are OpenAI's shape, {"error": {"message", "type", "param", "code"}}: 400 for a bad request
(the core's InvalidInput, its field renamed to the HTTP parameter: instruction -> prompt,
source_image / images[i] -> image, num_inference_steps -> steps, ...), 413 for a body over
--max-message-bytes (refused from its Content-Length, before it is read), 411 without a length, 429
when the queue is full or --max-streams requests are open (Retry-After), 503 while the model loads or
the service drains, 500 for the editor's own failures. Each response carries an `x-request-id`.
A non-streaming request whose client goes away is cancelled like a cancelled gRPC call; so is a
stream whose client stops reading.

Responses add an `editfleet` list beside OpenAI's `data` (per image: seed, steps, size, timings, the
model identity, call arguments), so that an OpenAI-speaking client can record what ran. Standard
library only (http.server): one thread per connection, edits bounded as above.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import select
import socket
import threading
import time
import uuid
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import unquote

from editfleet_common.errors import (
    Cancelled,
    DeadlineExceeded,
    EditfleetError,
    InvalidInput,
    NotFound,
    NotReady,
    Overloaded,
    TooLarge,
)
from editfleet_common.ports import PortUnavailable, check_free

if TYPE_CHECKING:
    from .edits import EditOutput
    from .server import EditWorker, Job

log = logging.getLogger(__name__)

MAX_N = 10                     # OpenAI's range for n
MAX_TEXT_FIELD_BYTES = 4 << 20  # a text field's bytes before it is decoded (the prompt's token limit comes later)
BODY_READ_TIMEOUT_S = 60.0      # a client that stops sending its body is cut off
OUTPUT_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
# Fields OpenAI's edit endpoint defines that this editor cannot honour, and why (a 400 naming them)
UNSUPPORTED = {
    "mask": "this editor edits the whole image (no inpainting mask)",
    "markup": "this editor takes no markup overlay",
    "input_fidelity": "the edit model has no input fidelity setting",
    "svg": "this editor makes raster images",
    "frame_count": "this editor makes still images",
    "frame_duration_ms": "this editor makes still images",
    "complexity": "the edit model has no complexity setting (use steps)",
    "moderation": "this editor runs no moderation",
}
SCALARS = ("prompt", "model", "n", "size", "response_format", "output_format", "output_compression", "stream",
           "partial_images", "background", "quality", "user", "safety_identifier",
           "seed", "steps", "guidance", "negative_prompt")
# The core's field names (checks.py, pipeline.py) as this API's parameters
PARAMS = {"instruction": "prompt", "source_image": "image", "images": "image", "num_inference_steps": "steps",
          "guidance_scale": "guidance", "width": "size", "height": "size", "width x height": "size",
          "width/height": "size", "negative_prompt": "negative_prompt",
          "seed": "seed", "partial_images": "partial_images", "extras": "extras"}
_FIELD = re.compile(r"^(?:width x height|width/height|[A-Za-z_]+)(\[[^\]]*\])?(?=:)")


class HttpError(Exception):
    def __init__(self, status: int, message: str, *, param: str | None = None, type_: str = "invalid_request_error",
                 code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.type, self.code = status, message, param, type_, code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class ClientGone(Exception):
    """The client closed its connection while its edits waited or ran."""


def error_for(exc: BaseException) -> HttpError:
    """An OpenAI-shaped error for a core exception."""
    if isinstance(exc, HttpError):
        return exc
    message = str(exc)
    if isinstance(exc, InvalidInput):
        param, message = http_param(message)
        return HttpError(400, message, param=param)
    if isinstance(exc, Overloaded):
        return HttpError(429, message, type_="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": "1"})
    if isinstance(exc, NotReady):
        return HttpError(503, message, type_="server_error", code="unavailable", headers={"Retry-After": "5"})
    if isinstance(exc, TooLarge):
        return HttpError(400, message, code="too_large")
    if isinstance(exc, NotFound):
        return HttpError(404, message, code="not_found")
    if isinstance(exc, DeadlineExceeded):
        return HttpError(504, message, type_="server_error", code="timeout")
    refusal = getattr(exc, "provider_code", None)  # an API editor's provider refused the content
    if refusal:
        return HttpError(400, message, code=refusal)
    if isinstance(exc, EditfleetError) and exc.grpc_code == "UNAVAILABLE":
        return HttpError(503, message, type_="server_error", code="unavailable", headers={"Retry-After": "5"})
    return HttpError(500, f"{type(exc).__name__}: {message}", type_="server_error", code="server_error")


def http_param(message: str) -> tuple[str | None, str]:
    """(the HTTP parameter a core message names, the message naming it so): 'instruction: empty' ->
    ('prompt', 'prompt: empty'); 'images[1]: cannot decode ...' -> ('image', 'image[1]: ...')."""
    found = _FIELD.match(message)
    if not found:
        return None, message
    field = found.group(0)
    base = field.split("[", 1)[0]
    param = PARAMS.get(base, base)
    if param == "size":  # the core's width / height: said as the size they came from
        return param, f"size ({field}){message[len(field):]}"
    index = found.group(1) or ""
    return param, param + index + message[len(field):]


# ---------------------------------------------------------------------------- multipart


class Part:
    __slots__ = ("name", "filename", "content_type", "data")

    def __init__(self, name: str, filename: str | None, content_type: str, data: bytes):
        self.name, self.filename, self.content_type, self.data = name, filename, content_type, data


def parse_multipart(body: bytes, content_type: str) -> list[Part]:
    """The parts of a multipart/form-data body (RFC 7578): each with its form name, file name and bytes."""
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise HttpError(415, f"Content-Type: {kind.strip() or '(none)'}; send multipart/form-data (OpenAI's "
                             "images/edits shape)", code="unsupported_media_type")
    boundary = None
    for item in params.split(";"):
        key, _, value = item.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip().strip('"')
    if not boundary:
        raise HttpError(400, "Content-Type: multipart/form-data without a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    if not body.startswith(delimiter):
        body = b"\r\n" + body  # a preamble is allowed; the first delimiter then follows a line break
        start = body.find(b"\r\n" + delimiter)
        if start < 0:
            raise HttpError(400, "body: no multipart boundary found")
        body = body[start + 2:]
    parts = []
    chunks = body.split(b"\r\n" + delimiter)
    chunks[0] = chunks[0][len(delimiter):]
    for chunk in chunks:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        if not chunk.startswith(b"\r\n"):
            raise HttpError(400, "body: malformed multipart part (no line break after its boundary)")
        head, sep, data = chunk[2:].partition(b"\r\n\r\n")
        if not sep:
            raise HttpError(400, "body: malformed multipart part (no blank line after its headers)")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = _disposition_param(disposition, "name")
        if name is None:
            raise HttpError(400, "body: a multipart part without a form name")
        parts.append(Part(name, _disposition_param(disposition, "filename"), headers.get("content-type", ""), data))
    else:
        raise HttpError(400, "body: the multipart body is cut off (no closing boundary)")
    return parts


def _disposition_param(header: str, key: str) -> str | None:
    found = re.search(rf'(?:^|;)\s*{key}="((?:[^"\\]|\\.)*)"', header) or re.search(rf'(?:^|;)\s*{key}=([^;]*)', header)
    if not found:
        return None
    return found.group(1).replace('\\"', '"').encode("latin-1").decode("utf-8", "replace")


# ---------------------------------------------------------------------------- the request


class ImagesEditRequest:
    """The fields of one POST /v1/images/edits, checked for their HTTP-level shape; the edit itself is
    checked by the core."""

    def __init__(self, parts: list[Part], served_model: str):
        scalars: dict[str, str] = {}
        self.images: list[tuple[str, bytes]] = []
        for part in parts:
            name = part.name
            if name in ("image", "image[]") or re.fullmatch(r"image\[\d+\]", name):
                self.images.append((name, part.data))
                continue
            if name in UNSUPPORTED:
                raise HttpError(400, f"{name}: not supported: {UNSUPPORTED[name]}", param=name)
            if name not in SCALARS:
                raise HttpError(400, f"{name}: unknown parameter (this editor takes: image, {', '.join(SCALARS)})",
                                param=name, code="unknown_parameter")
            if name in scalars:
                raise HttpError(400, f"{name}: given more than once", param=name)
            if len(part.data) > MAX_TEXT_FIELD_BYTES:
                raise HttpError(400, f"{name}: {len(part.data)} bytes, more than the limit of {MAX_TEXT_FIELD_BYTES} "
                                     "for a text field", param=name)
            try:
                scalars[name] = part.data.decode("utf-8")
            except UnicodeDecodeError:
                raise HttpError(400, f"{name}: not UTF-8 text", param=name) from None
        if not self.images:
            raise HttpError(400, "image: required (one image file, or several as image[])", param="image")
        if "prompt" not in scalars:
            raise HttpError(400, "prompt: required", param="prompt")
        self.prompt = scalars["prompt"]
        model = scalars.get("model")
        if model and model != served_model:
            raise HttpError(404, f"model: this server serves {served_model!r}, not {model!r} (GET /v1/models)",
                            param="model", code="model_not_found")
        self.n = _int(scalars, "n", 1, low=1, high=MAX_N)
        self.width, self.height = _size(scalars.get("size", "auto"))
        response_format = scalars.get("response_format", "b64_json")
        if response_format != "b64_json":
            raise HttpError(400, f"response_format: {response_format!r} is not supported; only b64_json (this "
                                 "server keeps no files to link to)", param="response_format")
        fmt = scalars.get("output_format", "png").lower()
        if fmt not in OUTPUT_FORMATS:
            raise HttpError(400, f"output_format: {fmt!r}; one of png, jpeg, webp", param="output_format")
        self.output_format = "jpeg" if fmt == "jpg" else fmt
        self.compression = _int(scalars, "output_compression", 100, low=0, high=100)
        if "output_compression" in scalars and self.output_format == "png":
            raise HttpError(400, "output_compression: only for jpeg and webp output", param="output_compression")
        self.stream = _bool(scalars, "stream")
        self.partial_images = _int(scalars, "partial_images", 0, low=0, high=None)
        if self.partial_images and not self.stream:
            raise HttpError(400, "partial_images: only with stream=true", param="partial_images")
        background = scalars.get("background", "auto")
        if background not in ("auto", "opaque"):
            raise HttpError(400, f"background: {background!r}; this editor makes opaque images (auto or opaque)",
                            param="background")
        quality = scalars.get("quality", "auto")
        if quality != "auto":
            raise HttpError(400, f"quality: {quality!r}; this editor has no quality levels (auto; set steps instead)",
                            param="quality")
        self.seed = _int(scalars, "seed", None, low=0, high=2**64 - 1)
        self.steps = _int(scalars, "steps", 0, low=1, high=None) if "steps" in scalars else 0
        self.guidance = _float(scalars, "guidance")
        self.negative_prompt = scalars.get("negative_prompt")

    def edit_requests(self, request_id: str):
        """The core's EditRequests: n of them, seeds seed, seed+1, ... (each drawn where none is given)."""
        from .edits import EditRequest

        images = [data for _, data in self.images]
        out = []
        for i in range(self.n):
            seed = None if self.seed is None else (self.seed + i) % 2**64
            out.append(EditRequest(
                instruction=self.prompt,
                image=images[0] if len(images) == 1 else b"",
                images=images if len(images) > 1 else [],
                sample_id=f"{request_id}" + (f"#{i}" if self.n > 1 else ""),
                negative_prompt=self.negative_prompt,
                num_inference_steps=self.steps,
                guidance_scale=self.guidance,
                seed=seed,
                width=self.width,
                height=self.height,
                partial_images=self.partial_images,
            ))
        return out


def _int(fields: dict, name: str, default, *, low: int, high: int | None):
    if name not in fields:
        return default
    text = fields[name].strip()
    if not re.fullmatch(r"-?[0-9]{1,25}", text):
        raise HttpError(400, f"{name}: {text[:40]!r} is not an integer", param=name)
    value = int(text)
    if value < low or (high is not None and value > high):
        raise HttpError(400, f"{name}: {value} outside the allowed range [{low}, {high if high is not None else '...'}]",
                        param=name)
    return value


def _float(fields: dict, name: str) -> float | None:
    if name not in fields:
        return None
    try:
        return float(fields[name].strip())
    except ValueError:
        raise HttpError(400, f"{name}: {fields[name][:40]!r} is not a number", param=name) from None


def _bool(fields: dict, name: str) -> bool:
    value = fields.get(name, "false").strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise HttpError(400, f"{name}: {value[:20]!r}; true or false", param=name)
    return value in ("true", "1")


def _size(text: str) -> tuple[int, int]:
    text = text.strip().lower()
    if text == "auto":
        return 0, 0
    found = re.fullmatch(r"([0-9]{1,6})x([0-9]{1,6})", text)
    if not found or not int(found.group(1)) or not int(found.group(2)):
        raise HttpError(400, f"size: {text[:40]!r}; auto or WIDTHxHEIGHT, e.g. 1024x1024", param="size")
    return int(found.group(1)), int(found.group(2))


# ---------------------------------------------------------------------------- encoding


def encode_image(image_or_png, fmt: str, compression: int) -> bytes:
    """An image (PIL, or PNG bytes) in the asked output format."""
    from PIL import Image

    if fmt == "png" and isinstance(image_or_png, (bytes, bytearray)):
        return bytes(image_or_png)
    image = image_or_png if not isinstance(image_or_png, (bytes, bytearray)) else Image.open(io.BytesIO(image_or_png))
    buf = io.BytesIO()
    if fmt == "png":
        image.save(buf, format="PNG")
    else:
        image.convert("RGB").save(buf, format=OUTPUT_FORMATS[fmt], quality=max(1, compression))
    return buf.getvalue()


def output_record(out: EditOutput) -> dict:
    """What editfleet adds per image beside OpenAI's data: how it was made."""
    return {"seed": out.seed, "steps": out.num_inference_steps, "width": out.width, "height": out.height,
            "timings": asdict(out.timings), "model": asdict(out.model),
            "call_arguments": {k: json.loads(v) for k, v in out.call_arguments.items()}}


# ---------------------------------------------------------------------------- the server


class ImagesApiServer:
    """The HTTP listener: bound at construction (a taken port is PortUnavailable, said in one line),
    served from start() on a thread of its own."""

    def __init__(self, worker: EditWorker, *, host: str, port: int, max_body_bytes: int, max_open: int):
        self.worker = worker
        self.max_body_bytes = max_body_bytes
        self.open = threading.BoundedSemaphore(max(1, max_open))  # edit requests open at once (--max-streams)
        self.max_open = max(1, max_open)
        check_free(host, port, flag="--http-port", what="HTTP port")
        try:
            self.server = ThreadingHTTPServer((host, port), _handler(self))
        except OSError as exc:
            raise PortUnavailable(f"HTTP port {port} on {host}: {exc.strerror or exc}; choose another with "
                                  "--http-port") from None
        self.server.daemon_threads = True
        self.host, self.port = host, self.server.server_address[1]

    def start(self) -> "ImagesApiServer":
        threading.Thread(target=self.server.serve_forever, name="images-api", daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def served_model(self) -> str | None:
        editor = self.worker.pipeline
        return editor.identity.model if editor is not None else None


def _handler(api: ImagesApiServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "editfleet-editor"

        def log_message(self, fmt, *args):  # the service log has its own lines
            log.debug("%s " + fmt, self.address_string(), *args)

        # -- responses -------------------------------------------------------------------------
        def _json(self, status: int, payload: dict, headers: dict | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-request-id", self.request_id)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, error: HttpError) -> None:
            if error.status >= 500 and error.status != 503:
                log.warning("%s %s: HTTP %d %s", self.command, self.path, error.status, error.message)
            self._json(error.status, error.body(), error.headers)

        # -- routes ----------------------------------------------------------------------------
        def do_GET(self):
            self.request_id = "req_" + uuid.uuid4().hex
            path = unquote(self.path.split("?", 1)[0]).rstrip("/")
            if path == "/health":
                ready = api.worker.ready
                return self._json(200 if ready else 503, {"status": "SERVING" if ready else "NOT_SERVING"})
            if path == "/v1/models" or path.startswith("/v1/models/"):
                model = api.served_model()
                if model is None:
                    return self._error(error_for(NotReady("editor is loading its model")))
                entry = {"id": model, "object": "model", "created": 0, "owned_by": "editfleet"}
                if path == "/v1/models":
                    return self._json(200, {"object": "list", "data": [entry]})
                if path[len("/v1/models/"):] == model:
                    return self._json(200, entry)
                return self._error(HttpError(404, f"model: this server serves {model!r}", param="model",
                                             code="model_not_found"))
            self._error(HttpError(404, f"no route GET {path or '/'} (POST /v1/images/edits, GET /v1/models)",
                                  code="not_found"))

        def do_POST(self):
            self.request_id = "req_" + uuid.uuid4().hex
            path = self.path.split("?", 1)[0].rstrip("/")
            if path != "/v1/images/edits":
                self.close_connection = True  # its body is not read
                return self._error(HttpError(404, f"no route POST {path or '/'} (POST /v1/images/edits)",
                                             code="not_found"))
            if not api.open.acquire(blocking=False):
                self.close_connection = True
                return self._error(HttpError(
                    429, f"{api.max_open} edit requests are open (--max-streams); retry later",
                    type_="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": "1"}))
            try:
                self._edit()
            except HttpError as exc:
                self._error(exc)
            except (BrokenPipeError, ConnectionResetError, ClientGone):
                self.close_connection = True
            except Exception as exc:  # noqa: BLE001 - the core's errors, OpenAI-shaped
                self._error(error_for(exc))
            finally:
                api.open.release()

        # -- the edit --------------------------------------------------------------------------
        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                raise HttpError(411, "Transfer-Encoding is not accepted; send a Content-Length", code="length_required")
            length = self.headers.get("Content-Length")
            if length is None or not length.strip().isdigit():
                self.close_connection = True
                raise HttpError(411, "Content-Length: required (a number of bytes)", code="length_required")
            size = int(length)
            if size > api.max_body_bytes:
                self.close_connection = True  # the body is not read: the connection cannot be reused
                raise HttpError(413, f"request body: {size} bytes, more than the limit of {api.max_body_bytes} "
                                     "bytes (--max-message-bytes)", code="request_too_large")
            self.connection.settimeout(BODY_READ_TIMEOUT_S)
            try:
                body = self.rfile.read(size)
            except socket.timeout:
                self.close_connection = True
                raise HttpError(408, f"request body: not received within {BODY_READ_TIMEOUT_S:g}s",
                                code="timeout") from None
            finally:
                self.connection.settimeout(None)
            if len(body) != size:
                self.close_connection = True
                raise HttpError(400, f"request body: {len(body)} of {size} bytes received")
            return body

        def _edit(self) -> None:
            body = self._read_body()
            served = api.worker.editor().identity.model  # NotReady (503) while the model loads
            request = ImagesEditRequest(parse_multipart(body, self.headers.get("Content-Type", "")), served)
            jobs = api.worker.begin_many(request.edit_requests(self.request_id))
            try:
                if request.stream:
                    self._stream(request, jobs)
                else:
                    outputs = [self._wait(job) for job in jobs]
                    self._json(200, {
                        "created": int(time.time()),
                        "data": [{"b64_json": base64.b64encode(encode_image(o.image_png, request.output_format,
                                                                            request.compression)).decode("ascii"),
                                  "revised_prompt": None} for o in outputs],
                        "background": "opaque", "output_format": request.output_format, "quality": "auto",
                        "size": f"{outputs[0].width}x{outputs[0].height}",
                        "editfleet": [output_record(o) for o in outputs],
                    })
            finally:  # those not finished (an error, a client gone) are dropped or stop within a step
                for job in jobs:
                    if not job.finished:
                        api.worker.cancel(job)

        def _next_event(self, job: Job, *, watch_client: bool):
            """The job's next event; raises ClientGone when the client closes its connection meanwhile."""
            import queue as queue_module

            while True:
                try:
                    return job.events.get(timeout=0.25)
                except queue_module.Empty:
                    if watch_client and self._client_gone():
                        raise ClientGone() from None

        def _client_gone(self) -> bool:
            try:
                readable, _, _ = select.select([self.connection], [], [], 0)
                return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                return True

        def _wait(self, job: Job) -> EditOutput:
            while True:
                kind, payload = self._next_event(job, watch_client=True)
                if kind == "result":
                    job.finished = True
                    return payload
                if kind == "error":
                    job.finished = True
                    raise payload

        def _stream(self, request: ImagesEditRequest, jobs: list[Job]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("x-request-id", self.request_id)
            self.send_header("Connection", "close")  # the stream ends with the connection
            self.end_headers()
            self.close_connection = True
            common = {"background": "opaque", "output_format": request.output_format, "quality": "auto"}
            index = 0
            for job in jobs:
                while True:
                    kind, payload = self._next_event(job, watch_client=True)
                    if kind == "partial":
                        step, image = payload
                        self._event("image_edit.partial_image", {
                            "type": "image_edit.partial_image", "created_at": int(time.time()),
                            "b64_json": base64.b64encode(encode_image(image, request.output_format,
                                                                      request.compression)).decode("ascii"),
                            "partial_image_index": index, "size": f"{image.size[0]}x{image.size[1]}",
                            "editfleet": {"step": step, "total_steps": job.prepared.steps}, **common})
                        index += 1
                    elif kind == "result":
                        job.finished = True
                        self._event("image_edit.completed", {
                            "type": "image_edit.completed", "created_at": int(time.time()),
                            "b64_json": base64.b64encode(encode_image(payload.image_png, request.output_format,
                                                                      request.compression)).decode("ascii"),
                            "size": f"{payload.width}x{payload.height}",
                            "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0,
                                      "input_tokens_details": {"image_tokens": 0, "text_tokens": 0}},
                            "editfleet": output_record(payload), **common})
                        break
                    elif kind == "error":
                        job.finished = True
                        error = error_for(payload)
                        self._event("error", {"type": "error", **error.body()})
                        return
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

        def _event(self, name: str, payload: dict) -> None:
            self.wfile.write(f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode())
            self.wfile.flush()

    return Handler
