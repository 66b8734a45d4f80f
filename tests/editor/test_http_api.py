"""The editor behind OpenAI's Images API (--http-port; editor_service/http_api.py), against a real editor
process on the tiny model: the official `openai` client's images.edit, plain and streaming, gets the
edit the gRPC path makes for the same seed (one core); bad input over HTTP gets a 4xx naming the
parameter and the service keeps serving; a full queue is 429, a loading model 503.
One editor process for the module (its start is most of the time)."""

from __future__ import annotations

import base64
import http.client
import io
import json
import subprocess
import threading
import time
import uuid

import pytest
from PIL import Image

from editfleet_common.launch import free_port, venv_python
from editor_service.client import EditorClient
from tests.png_samples import png_claiming

from .conftest import photo_like_png, read_log, start_editor

openai = pytest.importorskip("openai", reason="the openai client (tests/requirements-editor.txt): make test installs it")

MAX_MESSAGE_BYTES = 2 * 1024 * 1024
MAX_INPUT_PIXELS = 4_000_000


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    http_port = free_port()
    proc = start_editor(tmp_path_factory.mktemp("editor-http"), "--http-port", str(http_port), "--max-queue", "0",
                        "--max-message-bytes", str(MAX_MESSAGE_BYTES), "--max-input-pixels", str(MAX_INPUT_PIXELS),
                        "--default-steps", "2", "--grace", "5")
    proc.http_port = http_port
    proc.loading = []  # what the HTTP port answered while the model loaded
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not proc.loading:
            try:
                proc.loading.append(get(proc, "/v1/models"))
            except OSError:
                time.sleep(0.1)
        proc.wait_healthy(timeout=240)
        yield proc
    finally:
        proc.stop(grace=20)


def get(server, path: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def multipart(fields: list[tuple[str, bytes | str, str | None]]) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data body: (name, value, filename or None) per field."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, value, filename in fields:
        out.write(f"--{boundary}\r\n".encode())
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out.write(f"Content-Disposition: {disposition}\r\n".encode())
        if filename:
            out.write(b"Content-Type: application/octet-stream\r\n")
        out.write(b"\r\n")
        out.write(value if isinstance(value, bytes) else value.encode())
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def post(server, fields, *, headers=None, body=None) -> tuple[int, dict, dict]:
    data, content_type = multipart(fields) if body is None else (body, "multipart/form-data; boundary=x")
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=120)
    try:
        conn.request("POST", "/v1/images/edits", body=data,
                     headers={"Content-Type": content_type, **(headers or {})})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}"), dict(response.getheaders())
    finally:
        conn.close()


def good_fields(**extra) -> list:
    fields = [("image", photo_like_png(), "in.png"), ("prompt", "Make the square red", None), ("size", "32x32", None),
              ("seed", "5", None), ("steps", "2", None)]
    return fields + [(k, v, None) for k, v in extra.items()]


@pytest.fixture(scope="module")
def api(server):
    return openai.OpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="unused", max_retries=0,
                         timeout=120)


def test_the_port_answers_503_while_the_model_loads(server):
    status, body = server.loading[0]
    assert status == 503 and body["error"]["code"] == "unavailable" and "loading" in body["error"]["message"]


def test_models_lists_the_served_model(api, server, tiny_model):
    assert [m.id for m in api.models.list().data] == [str(tiny_model)]
    assert api.models.retrieve(str(tiny_model)).id == str(tiny_model)
    assert "OpenAI Images API on http://127.0.0.1:" in read_log(server)


def test_images_edit_gives_the_grpc_edit_of_the_same_seed(api, server, tiny_model):
    source = photo_like_png()
    result = api.images.edit(image=("in.png", source, "image/png"), prompt="Make the square red", size="32x32",
                             model=str(tiny_model), extra_body={"seed": 7, "steps": 2, "guidance": 3.0})
    png = base64.b64decode(result.data[0].b64_json)
    assert Image.open(io.BytesIO(png)).size == (32, 32) and result.size == "32x32"
    made = result.model_extra["editfleet"][0]
    assert made["seed"] == 7 and made["steps"] == 2 and made["call_arguments"]["true_cfg_scale"] == 3.0
    with EditorClient(server.address) as client:
        grpc_result = client.edit(source, "Make the square red", steps=2, seed=7, guidance_scale=3.0, width=32, height=32)
    assert png == grpc_result.image_png  # one core: the same call, the same pixels


def test_streaming_sends_partial_images_then_the_completed_edit(api, server):
    source = photo_like_png()
    stream = api.images.edit(image=("in.png", source, "image/png"), prompt="Make the square red", size="48x32",
                             stream=True, partial_images=2, extra_body={"seed": 9, "steps": 3})
    events = list(stream)
    assert [e.type for e in events] == ["image_edit.partial_image"] * 2 + ["image_edit.completed"]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    assert [e.model_extra["editfleet"]["step"] for e in events[:2]] == [1, 2]  # spread over the steps before the last
    images = [base64.b64decode(e.b64_json) for e in events]
    for event, data in zip(events, images):
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG" and image.size == (48, 32) and event.size == "48x32"
    assert len(set(images)) == 3  # the denoise moved on between them
    with EditorClient(server.address) as client:
        plain = client.edit(source, "Make the square red", steps=3, seed=9, width=48, height=32)
    assert images[-1] == plain.image_png  # decoding previews on the way changes nothing in the edit


def test_output_format_jpeg_and_webp(server):
    for fmt, pil in (("jpeg", "JPEG"), ("webp", "WEBP")):
        code, body, _ = post(server, good_fields(output_format=fmt, output_compression="80"))
        assert code == 200 and body["output_format"] == fmt
        assert Image.open(io.BytesIO(base64.b64decode(body["data"][0]["b64_json"]))).format == pil


def test_several_input_images_are_refused_by_a_single_image_model_naming_the_limit(api):
    with pytest.raises(openai.BadRequestError) as caught:
        api.images.edit(image=[("a.png", photo_like_png(), "image/png"), ("b.png", photo_like_png(), "image/png")],
                        prompt="Put them together", size="32x32", extra_body={"steps": 2})
    assert caught.value.body["param"] == "image" and "at most 1" in caught.value.body["message"]


@pytest.mark.parametrize("fields, param, status", [
    (good_fields()[1:] + [("image", b"plain text, not an image", "x.png")], "image", 400),
    (good_fields()[1:] + [("image", png_claiming(50_000, 50_000), "bomb.png")], "image", 400),
    ([f if f[0] != "prompt" else ("prompt", "x" * (1 << 20), None) for f in good_fields()], "prompt", 400),
    (good_fields(cfg_rescale="0.7"), "cfg_rescale", 400),
    (good_fields(mask="m"), "mask", 400),
    (good_fields(quality="high"), "quality", 400),
    ([f if f[0] != "size" else ("size", "1024", None) for f in good_fields()], "size", 400),
    ([f if f[0] != "size" else ("size", "33x32", None) for f in good_fields()], "size", 400),
    (good_fields(response_format="url"), "response_format", 400),
    (good_fields(n="11"), "n", 400),
    (good_fields(guidance="nan"), "guidance", 400),
    ([f if f[0] != "steps" else ("steps", "100000", None) for f in good_fields()], "steps", 400),
    (good_fields(model="another-model"), "model", 404),
    ([f for f in good_fields() if f[0] != "prompt"], "prompt", 400),
])
def test_bad_input_gets_a_4xx_naming_the_parameter(server, fields, param, status):
    code, body, headers = post(server, fields)
    assert code == status, body
    assert body["error"]["param"] == param and body["error"]["message"].startswith(param), body
    assert headers.get("x-request-id", "").startswith("req_")


def test_an_oversized_body_is_refused_before_it_is_read_and_the_service_keeps_serving(server, api):
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    conn.putrequest("POST", "/v1/images/edits")  # the headers only: refused from its Content-Length
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(MAX_MESSAGE_BYTES + 1))
    conn.endheaders()
    response = conn.getresponse()
    body = json.loads(response.read())
    assert response.status == 413 and "--max-message-bytes" in body["error"]["message"], body
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    conn.request("POST", "/v1/images/edits", body=b"x", headers={"Content-Type": "text/plain"})
    assert conn.getresponse().status == 415
    code, body, _ = post(server, good_fields(), body=b"--x\r\nContent-Disposition: form-data; name=prompt\r\n\r\nhi")
    assert code == 400 and "cut off" in body["error"]["message"]
    # still serving: a good edit goes through
    result = api.images.edit(image=("in.png", photo_like_png(), "image/png"), prompt="Make the square red",
                             size="32x32", extra_body={"steps": 2})
    assert result.data[0].b64_json


def test_a_full_queue_is_429_with_retry_after(server):
    # --max-queue 0: while one edit runs, the next is refused at once. A stream's 200 comes once its
    # edit is admitted, so the second request is sure to find it there.
    data, content_type = multipart(good_fields(stream="true", partial_images="1"))
    running = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=120)
    running.request("POST", "/v1/images/edits", body=data, headers={"Content-Type": content_type})
    response = running.getresponse()
    assert response.status == 200
    code, body, headers = post(server, good_fields())
    assert code == 429 and body["error"]["code"] == "rate_limit_exceeded" and headers["Retry-After"] == "1"
    assert "1 edit running" in body["error"]["message"]
    events = [line for line in response.read().decode().splitlines() if line.startswith("event: ")]
    assert events == ["event: image_edit.partial_image", "event: image_edit.completed"]
    running.close()


def test_a_taken_http_port_is_a_one_line_error_exit_2(server, tiny_model):
    done = subprocess.run([venv_python("editor"), "-m", "editor_service", "--model", str(tiny_model),
                           "--port", str(free_port()), "--http-port", str(server.http_port)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: HTTP port {server.http_port} on 127.0.0.1 is already in use (another editfleet service?); "
        "choose another with --http-port"]
