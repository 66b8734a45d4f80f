"""API editors (editor_service/api_editor/): the model under test behind an HTTP API. The editor core
in-process against the tests' own endpoints (tests/openai_endpoint.py: an images/edits server and an
image-replying chat server) behind the fault proxy, and the service itself started in API mode (no
torch: it starts in about a second). No model is loaded here: the whole run against a real editfleet
editor's HTTP route is tests/orchestrator/test_api_editor_run.py."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from editfleet_common.errors import InvalidInput
from editfleet_common.launch import ServiceProcess, free_port, venv_python
from editor_service.api_editor import (
    PROVIDERS_DIR,
    PROFILE_KEYS,
    ApiEditor,
    ApiFailure,
    ApiSettings,
    NoImage,
    Profile,
    ProviderRefused,
)
from editor_service.edits import EditRequest
from editor_service.server import EditorUnusable
from tests.openai_endpoint import MODERATION_MESSAGE, Fault, FaultProxy, ImageChatServer, ImagesServer

from .conftest import photo_like_png, read_log

KEY_ENV = "EDITFLEET_TEST_EDITOR_KEY"
KEY = "sk-editfleet-canary-7Qx2c91fd0"


@pytest.fixture(scope="module", autouse=True)
def key_in_env():
    os.environ[KEY_ENV] = KEY
    yield
    os.environ.pop(KEY_ENV, None)


@pytest.fixture(scope="module")
def images():
    server = ImagesServer().start()
    yield server
    server.stop()


@pytest.fixture
def proxy(images):
    p = FaultProxy(images.url, api_key=KEY).start()
    yield p
    p.stop()


def editor(url: str, *, backend="openai-images", provider="openai", model="tests/tiny-images", **kw) -> ApiEditor:
    settings = dict(backend=backend, model=model, base_url=url, provider=provider, api_key_env=KEY_ENV,
                    request_timeout_s=5, max_retries=3, retry_base_s=0.05)
    settings.update(kw)
    return ApiEditor(ApiSettings(**settings))


def request(**kw) -> EditRequest:
    fields = dict(instruction="Make the square red", image=photo_like_png(64, 64), sample_id="s1", seed=123)
    fields.update(kw)
    return EditRequest(**fields)


def arguments(out) -> dict:
    return {k: json.loads(v) for k, v in out.call_arguments.items()}


def test_every_provider_file_is_well_formed():
    names = sorted(p.stem for p in PROVIDERS_DIR.glob("*.json"))
    assert {"openai", "openai-flexible-size", "azure-openai", "vllm-omni", "sglang", "editfleet", "openrouter"} <= set(names)
    for name in names:
        data = json.loads((PROVIDERS_DIR / f"{name}.json").read_text())
        assert set(data) <= PROFILE_KEYS and data["name"] == name and data["source"], name
        profile = Profile.load(name, data["backend"])
        assert profile.field("prompt") and profile["images"]["max"] >= 1 and profile["size"]["mode"]


def test_an_edit_over_the_images_api_records_what_the_provider_said(proxy, images):
    api = editor(proxy.url)
    api.warm_up()  # the key and the model id, checked before serving
    assert api.identity.runtime["served_model"] == images.model
    assert api.identity.runtime["seed"].startswith("not applicable")  # OpenAI's images API takes no seed
    out = api.edit(api.prepare(request(width=0, height=0)))
    image = Image.open(io.BytesIO(out.image_png))
    source = Image.open(io.BytesIO(photo_like_png(64, 64))).convert("RGB")
    assert image.format == "PNG" and image.convert('RGB').tobytes() == ImageOps.invert(source).tobytes()
    record = arguments(out)
    assert record["provider"] == "openai" and record["model"] == "tests/tiny-images" and record["attempts"] == 1
    assert record["request_id"].startswith("req_test") and record["usage"]["total_tokens"] == 4483
    assert record["seed_sent"] is False and record["size"] == "auto" and record["latency_s"] > 0
    sent = images.requests[-1]
    assert sent["prompt"] == "Make the square red" and sent["model"] == "tests/tiny-images" and sent["size"] == "auto"
    assert "seed" not in sent and proxy.image_requests[-1].authorization == f"Bearer {KEY}"


def test_faults_are_retried_after_retry_after_and_a_refusal_is_its_own_failure(proxy):
    api = editor(proxy.url, request_timeout_s=1.5, max_retries=4)
    proxy.push(Fault("429", retry_after=1), Fault("500"), Fault("cut"), Fault("stall", seconds=3))
    out = api.edit(api.prepare(request()))
    assert arguments(out)["attempts"] == 5
    seen = proxy.image_requests
    assert [s.fault for s in seen[-5:]] == ["429", "500", "cut", "stall", ""]
    assert seen[-4].at - seen[-5].at >= 1.0  # never sooner than Retry-After

    proxy.push(Fault("moderation400"))
    with pytest.raises(ProviderRefused) as refused:
        api.edit(api.prepare(request()))
    assert MODERATION_MESSAGE in str(refused.value) and refused.value.provider_code == "moderation_blocked"
    assert refused.value.grpc_code == "PERMISSION_DENIED"

    proxy.push(*[Fault("500")] * 5)
    with pytest.raises(ApiFailure, match=r"HTTP 500.*after 5 attempt"):
        api.edit(api.prepare(request()))

    proxy.push(Fault("401"))  # once: the models list still takes the key, so it was a passing fault
    assert arguments(api.edit(api.prepare(request())))["attempts"] == 2

    proxy.api_key = "sk-another-key-0000"  # the key revoked: refused everywhere
    with pytest.raises(EditorUnusable) as unusable:
        api.edit(api.prepare(request()))
    assert KEY_ENV in str(unusable.value) and KEY not in str(unusable.value)


def test_what_the_provider_does_not_take_is_refused_before_sending(proxy):
    api = editor(proxy.url)
    before = len(proxy.image_requests)
    for kw, field in ((dict(width=512, height=512), "512x512 is not a size openai takes"),
                      (dict(num_inference_steps=30), "num_inference_steps: openai's API takes no steps"),
                      (dict(negative_prompt="blur"), "negative_prompt"),
                      (dict(extras={"cfg": "2"}), "extras: cfg is not an option openai takes"),
                      (dict(extras={"quality": '"ultra"'}), "extras['quality']"),
                      (dict(image=b"not an image"), "source_image: cannot decode"),
                      (dict(instruction="x" * 32001), "instruction: 32001 characters")):
        with pytest.raises(InvalidInput, match=field.replace("[", r"\[").replace("]", r"\]").replace("'", ".")):
            api.prepare(request(**kw))
    assert len(proxy.image_requests) == before  # nothing was sent
    out = api.edit(api.prepare(request(width=1024, height=1024, extras={"quality": '"low"'})))
    assert (out.width, out.height) == (1024, 1024) and arguments(out)["options"] == {"quality": "low"}
    assert proxy.image_requests[-1].body["quality"] == "low"


def test_a_provider_that_takes_a_seed_and_steps_gets_them_in_its_own_field_names(images):
    api = editor(images.url, provider="vllm-omni", api_key_env="")
    out = api.edit(api.prepare(request(num_inference_steps=12, guidance_scale=2.5, negative_prompt="blur",
                                       width=64, height=48, images=[photo_like_png(), photo_like_png()], image=b"")))
    sent = images.requests[-1]
    assert {k: sent[k] for k in ("seed", "num_inference_steps", "guidance_scale", "negative_prompt", "size",
                                 "response_format")} == {
        "seed": "123", "num_inference_steps": "12", "guidance_scale": "2.5", "negative_prompt": "blur",
        "size": "64x48", "response_format": "b64_json"}
    assert sent["_files"] and len(sent["_files"]) == 2  # two `image` fields (vLLM-Omni repeats the name)
    assert out.seed == 123 and api.identity.runtime["seed"].startswith("sent")


def test_partial_images_from_a_streaming_provider_are_progress(images):
    api = editor(images.url, api_key_env="", partial_images=2)
    steps, previews = [], []
    out = api.edit(api.prepare(request()), on_step=lambda s, t, e: steps.append((s, t)),
                   on_preview=lambda s, image: previews.append(image.size))
    assert steps == [(1, 3), (2, 3), (3, 3)] and previews == [(64, 64), (64, 64)]
    assert images.requests[-1]["stream"] == "true" and arguments(out)["partial_images"] == 2


def test_chat_image_backend_reads_the_image_from_the_reply():
    chat = ImageChatServer().start()
    try:
        proxy = FaultProxy(chat.url, api_key=KEY).start()
        api = editor(proxy.url, backend="openai-chat-image", provider="openrouter", model=chat.model)
        api.warm_up()
        proxy.push(Fault("429", retry_after=0.2))
        out = api.edit(api.prepare(request(width=64, height=64)))
        source = Image.open(io.BytesIO(photo_like_png(64, 64))).convert("RGB")
        assert Image.open(io.BytesIO(out.image_png)).convert('RGB').tobytes() == ImageOps.invert(source).tobytes()
        record = arguments(out)
        assert record["attempts"] == 2 and record["usage"]["cost"] == 0.0387 and record["served_model"] == chat.model
        assert record["size"] == "1:1" and record["reply_text"] == "Here is the edit."
        sent = chat.requests[-1]
        assert sent["modalities"] == ["image", "text"] and sent["image_config"] == {"aspect_ratio": "1:1"}
        assert sent["seed"] == 123 and sent["messages"][0]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
        with pytest.raises(ProviderRefused, match="content_filter"):
            api.edit(api.prepare(request(instruction="REFUSE this")))
        with pytest.raises(NoImage, match="a square, now red"):
            api.edit(api.prepare(request(instruction="answer in WORDS")))
        with pytest.raises(InvalidInput, match="aspect ratio 7:5"):
            api.prepare(request(width=70, height=50))
        proxy.stop()
    finally:
        chat.stop()


def test_credentials_in_the_base_url_are_refused(images):
    for url in (f"http://user:pw@127.0.0.1/v1", f"{images.url}?api_key=abc", f"{images.url}?sig=abc"):
        with pytest.raises(ValueError, match="credentials"):
            editor(url)


# ------------------------------------------------------------------------------- the service in API mode


def start_api_editor(tmp: Path, url: str, *extra: str, key: str | None = KEY) -> ServiceProcess:
    port = free_port()
    env = {KEY_ENV: key} if key is not None else {}
    argv = [venv_python("editor"), "-m", "editor_service", "--backend", "openai-images", "--provider", "openai",
            "--model", "tests/tiny-images", "--base-url", url, "--api-key-env", KEY_ENV, "--max-concurrency", "3",
            "--port", str(port), "--retry-base-s", "0.05", *extra]
    return ServiceProcess(name="api-editor", argv=argv, port=port, env=env, log_path=tmp / "api-editor.log").start()


def test_the_service_in_api_mode_serves_edits_over_grpc(tmp_path, proxy, images):
    from editor_service.client import EditError, EditorClient

    started = time.monotonic()
    proc = start_api_editor(tmp_path, proxy.url)
    try:
        proc.wait_healthy(timeout=60)
        up = time.monotonic() - started
        with EditorClient(proc.address) as client:
            info = client.info()
            assert info.model["load_format"] == "api" and info.model["runtime"]["provider"] == "openai"
            assert info.model["runtime"]["max_concurrency"] == "3" and info.max_images == 16
            result = client.edit(photo_like_png(64, 64), "Make the square red", seed=5, sample_id="g1")
            assert result.sample_id == "g1" and result.width == 64
            assert json.loads(result.call_arguments["attempts"]) == 1
            proxy.push(Fault("moderation400"))
            with pytest.raises(EditError) as caught:
                client.edit(photo_like_png(64, 64), "Make the square red", seed=5, sample_id="g2")
            assert caught.value.code.name == "PERMISSION_DENIED" and MODERATION_MESSAGE in caught.value.details
            proxy.api_key = "sk-another-key-0000"  # the key revoked
            with pytest.raises(EditError) as caught:
                client.edit(photo_like_png(64, 64), "Make the square red", seed=5, sample_id="g3")
            assert caught.value.code.name == "UNAVAILABLE" and KEY_ENV in caught.value.details
        assert proc.proc.wait(30) == 1  # a refused key stops the editor
        log = read_log(proc)
        assert f"error: the provider at 127.0.0.1:{proxy.url.split(':')[2].split('/')[0]} refused the API key" in log
        assert KEY not in log and "torch" not in log
        assert up < 30
    finally:
        proc.stop(grace=5)


def test_a_refused_key_fails_the_start_in_one_line(tmp_path, proxy):
    proc = start_api_editor(tmp_path, proxy.url, key="sk-wrong-key-000000")
    assert proc.proc.wait(60) == 1
    errors = [line for line in read_log(proc).splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and KEY_ENV in errors[0] and "HTTP 401" in errors[0]
    done = subprocess.run([venv_python("editor"), "-m", "editor_service", "--backend", "openai-images", "--model", "m",
                           "--base-url", "https://user:secret@example.com/v1"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "carries credentials" in done.stderr and "secret" not in done.stderr.replace(
        "carries credentials", "")
