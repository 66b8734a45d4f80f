"""The editor service as users see it: a real server process on loopback with the tiny model."""

from __future__ import annotations

import io
import os
import re
import subprocess
import threading
import time

import grpc
import pytest
from PIL import Image

from editfleet_common.launch import venv_python
from editor_service.client import EditError, EditResult, Progress

from .conftest import big_png, photo_like_png, png_bytes, read_log, start_editor, wait_for_log, zero_width_png

MAX_MESSAGE_BYTES = 2 * 1024 * 1024
MAX_INPUT_PIXELS = 1_000_000
MAX_STEPS = 200


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    proc = start_editor(
        tmp_path_factory.mktemp("editor"),
        "--max-queue", "1",
        "--max-input-pixels", str(MAX_INPUT_PIXELS),
        "--max-message-bytes", str(MAX_MESSAGE_BYTES),
        "--min-steps", "2",
        "--max-steps", str(MAX_STEPS),
        "--default-steps", "2",
        "--grace", "5",
    )
    try:
        proc.wait_healthy(timeout=240)
        yield proc
    finally:
        proc.stop(grace=20)


def edit_fields(**overrides):
    fields = dict(steps=2, seed=11, width=32, height=32, sample_id="s1")
    fields.update(overrides)
    return fields


def start_stream(client, steps, sample_id, **overrides):
    return client.stream(photo_like_png(), "Make the square red", **edit_fields(steps=steps, sample_id=sample_id, **overrides))


def test_progress_events_stream_in_order_then_one_image_of_the_asked_size(client):
    received = []
    for item in start_stream(client, 6, "progress", width=48, height=32):
        received.append((time.monotonic(), item))
    progress = [item for _, item in received[:-1]]
    assert [(p.step, p.total_steps) for p in progress] == [(s, 6) for s in range(1, 7)]
    assert all(isinstance(p, Progress) for p in progress)
    assert [p.elapsed_s for p in progress] == sorted(p.elapsed_s for p in progress)
    result_at, result = received[-1]
    assert isinstance(result, EditResult)
    assert result.sample_id == "progress" and result.seed == 11 and result.num_inference_steps == 6
    image = Image.open(io.BytesIO(result.image_png))
    image.load()
    assert image.format == "PNG" and image.size == (48, 32) == (result.width, result.height)
    assert result.timings["run_s"] >= result.timings["denoise_s"] > 0
    # Streamed, not buffered: buffered events would arrive together with the result; streamed
    # ones arrive about as far apart as the server says the steps were.
    first_at, first = received[0]
    assert result_at - first_at > 0.5 * (result.timings["run_s"] - first.elapsed_s) > 0


def test_seeds_drawn_reported_and_reproducible(client):
    drawn = client.edit(photo_like_png(), "Make the square red", **edit_fields(seed=None))
    same = client.edit(photo_like_png(), "Make the square red", **edit_fields(seed=drawn.seed))
    other = client.edit(photo_like_png(), "Make the square red", **edit_fields(seed=(drawn.seed + 1) % 2**63))
    assert same.seed == drawn.seed and same.image_png == drawn.image_png
    assert other.image_png != drawn.image_png
    # every result names the model that made it
    assert drawn.model == client.info().model


def test_cancel_mid_stream_stops_the_loop_and_the_next_request_runs(client, server):
    stream = start_stream(client, MAX_STEPS, "to-cancel")
    with pytest.raises(EditError) as caught:
        for item in stream:
            if isinstance(item, Progress) and item.step == 2:
                stream.cancel()
    assert caught.value.code == grpc.StatusCode.CANCELLED

    started = time.monotonic()
    nxt = client.edit(photo_like_png(), "Make the square red", **edit_fields(sample_id="after-cancel"))
    # Had the loop gone on, this edit would have waited for ~198 more steps.
    assert nxt.timings["queue_s"] < 3.0, nxt.timings
    assert time.monotonic() - started < 60
    stopped = wait_for_log(server, r"edit to-cancel: cancelled after (\d+) of 200 denoise steps")
    assert int(stopped.group(1)) <= 4


def test_deadline_stops_the_loop(client, server):
    with pytest.raises(EditError) as caught:
        client.edit(photo_like_png(), "Make the square red", timeout=4.0,
                    **edit_fields(steps=MAX_STEPS, sample_id="deadline"))
    assert caught.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert caught.value.retryable
    stopped = wait_for_log(server, r"edit deadline: cancelled after (\d+) of 200 denoise steps")
    assert int(stopped.group(1)) < MAX_STEPS


def test_queue_full_is_resource_exhausted_and_a_cancelled_waiter_never_runs(client, server):
    # --max-queue 1: one edit running, one waiting, the third is refused.
    running = start_stream(client, MAX_STEPS, "running")
    running_iter = iter(running)
    assert next(running_iter).step == 1  # it is on the device now

    waiting = start_stream(client, 2, "waiting")
    waiting_error: list[EditError] = []

    def consume_waiting():
        try:
            list(waiting)
        except EditError as exc:
            waiting_error.append(exc)

    consumer = threading.Thread(target=consume_waiting)
    consumer.start()
    time.sleep(1.0)  # let the server accept it into the queue

    with pytest.raises(EditError) as refused:
        client.edit(photo_like_png(), "Make the square red", **edit_fields(sample_id="refused"))
    assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "busy" in refused.value.details and refused.value.retryable

    waiting.cancel()
    consumer.join(10)
    assert waiting_error and waiting_error[0].code == grpc.StatusCode.CANCELLED
    running.cancel()
    with pytest.raises(EditError):
        list(running_iter)

    wait_for_log(server, "edit waiting: cancelled while waiting; dropped without running")
    wait_for_log(server, r"edit running: cancelled after \d+ of 200")
    log = read_log(server)
    assert "edit waiting: 2 steps" not in log and "edit refused" not in log


BAD_INPUTS = {
    "undecodable image": (dict(image=b"\x89PNG but not really"), grpc.StatusCode.INVALID_ARGUMENT, "cannot decode"),
    "empty image": (dict(image=b""), grpc.StatusCode.INVALID_ARGUMENT, "empty"),
    "zero-size image": (dict(image=zero_width_png()), grpc.StatusCode.INVALID_ARGUMENT, "source_image"),
    "too many pixels": (dict(image=big_png(1200, 1000)), grpc.StatusCode.INVALID_ARGUMENT, "exceeds the limit"),
    "empty instruction": (dict(instruction=""), grpc.StatusCode.INVALID_ARGUMENT, "instruction: empty"),
    "too few steps": (dict(steps=1), grpc.StatusCode.INVALID_ARGUMENT, r"outside the allowed range \[2, 200\]"),
    "too many steps": (dict(steps=201), grpc.StatusCode.INVALID_ARGUMENT, r"outside the allowed range \[2, 200\]"),
    "unknown extra": (dict(extras={"strength": 0.5}), grpc.StatusCode.INVALID_ARGUMENT, "unknown argument.*strength"),
    "image list on a single-image pipeline": (dict(image=[photo_like_png(), photo_like_png()]),
                                              grpc.StatusCode.INVALID_ARGUMENT,
                                              r"2 input images, but QwenImageEditPipeline takes at most 1 per edit \(a single-image pipeline\)"),
    "message too big": (dict(image=os.urandom(MAX_MESSAGE_BYTES + 1024)), grpc.StatusCode.RESOURCE_EXHAUSTED, "larger than max"),
}


def test_each_bad_input_gets_its_status_and_the_server_keeps_serving(client):
    for name, (overrides, code, message) in BAD_INPUTS.items():
        overrides = dict(overrides)
        image = overrides.pop("image", photo_like_png())
        instruction = overrides.pop("instruction", "Make the square red")
        with pytest.raises(EditError) as caught:
            client.edit(image, instruction, timeout=30, **edit_fields(sample_id=name, **overrides))
        assert caught.value.code == code, (name, caught.value)
        assert re.search(message, caught.value.details), (name, caught.value.details)
        assert not caught.value.retryable, name
    result = client.edit(photo_like_png(), "Make the square red", guidance_scale=2.5,
                         **edit_fields(sample_id="after-bad"))
    assert result.sample_id == "after-bad" and result.width == 32
    assert result.call_arguments["true_cfg_scale"] == "2.5" and result.call_arguments["negative_prompt"] == '" "'


def test_info_describes_model_and_limits(client, tiny_model):
    info = client.info()
    assert info.model["model"] == str(tiny_model)
    assert re.fullmatch(r"[0-9a-f]{64}", info.model["content_hash"])
    assert info.model["model_class"] == "QwenImageEditPipeline"
    assert (info.model["dtype"], info.model["device"], info.model["load_format"]) == ("float32", "cpu", "auto")
    assert info.defaults["num_inference_steps"] == 2
    assert (info.defaults["min_steps"], info.defaults["max_steps"]) == (2, MAX_STEPS)
    assert info.defaults["guidance_scale"] == 4.0 and info.defaults["negative_prompt"] == " "
    assert (info.max_queue, info.max_input_pixels, info.max_message_bytes) == (1, MAX_INPUT_PIXELS, MAX_MESSAGE_BYTES)
    assert {"true_cfg_scale", "negative_prompt", "callback_on_step_end"} <= set(info.call_parameters)
    assert info.max_images == 1


def test_reflection_lists_editor_and_health(server):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with grpc.insecure_channel(server.address) as channel:
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"editfleet.v1.Editor", "grpc.health.v1.Health"} <= services


def test_command_line_client_writes_the_edit(server, tmp_path):
    source = tmp_path / "in.png"
    source.write_bytes(png_bytes(40, 30))
    out = tmp_path / "out.png"
    # The orchestrator's environment has no torch: the client must run there.
    cmd = [venv_python("orchestrator"), "-m", "editor_service.client", "--address", server.address,
           "--image", str(source), "--instruction", "Make it blue", "--out", str(out),
           "--steps", "2", "--seed", "3", "--width", "32", "--height", "16"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"wrote {out} (32x16, seed 3, 2 steps" in done.stdout
    assert "2/2" in done.stderr  # the progress bar
    assert Image.open(out).size == (32, 16)

    missing = subprocess.run(cmd[:5] + ["--image", str(tmp_path / "nope.png")] + cmd[7:],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2
    assert "nope.png" in missing.stderr and "Traceback" not in missing.stderr

    bad = subprocess.run(cmd[:-6] + ["--steps", "500"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "INVALID_ARGUMENT" in bad.stderr and "Traceback" not in bad.stderr
