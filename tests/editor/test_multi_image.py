"""Several input images per edit, as users see it: a real editor process on the tiny Qwen-Image-Edit-2511
(QwenImageEditPlusPipeline), the client library and the client CLI."""

from __future__ import annotations

import io
import json

import grpc
import pytest
from PIL import Image

from editfleet.v1 import editor_pb2, editor_pb2_grpc
from editfleet_common.channels import make_channel
from editor_service.client import EditError, main as client_main

from .conftest import big_png, photo_like_png, png_bytes, start_editor

MAX_INPUT_PIXELS = 1_000_000


@pytest.fixture(scope="module")
def server(tiny_2511, tmp_path_factory):
    proc = start_editor(tmp_path_factory.mktemp("editor-2511"), "--max-images", "2", "--default-steps", "2",
                        "--max-input-pixels", str(MAX_INPUT_PIXELS), "--grace", "5", model=tiny_2511)
    try:
        proc.wait_healthy(timeout=240)
        yield proc
    finally:
        proc.stop(grace=20)


# guidance 1: no true-CFG pass, half the work of these tests
FIELDS = dict(steps=2, seed=3, guidance_scale=1.0, width=32, height=32)


def test_get_info_advertises_the_image_limit(client):
    info = client.info()
    assert info.max_images == 2
    assert info.model["model_class"] == "QwenImageEditPlusPipeline"


def test_two_images_are_edited_together_and_recorded(client):
    first, second = photo_like_png(64, 48), png_bytes(40, 80, (20, 200, 40))
    result = client.edit([first, second], "Put the green block from picture 2 into picture 1", sample_id="two", **FIELDS)
    assert (result.width, result.height) == (32, 32)
    assert json.loads(result.call_arguments["image"]) == [{"width": 64, "height": 48}, {"width": 40, "height": 80}]
    # the second image is an input: the first alone gives another edit (same seed and instruction)
    alone = client.edit(first, "Put the green block from picture 2 into picture 1", sample_id="one", **FIELDS)
    assert json.loads(alone.call_arguments["image"]) == {"width": 64, "height": 48}
    assert alone.image_png != result.image_png


def test_too_many_images_are_refused_naming_the_limit_and_the_editor_keeps_serving(client):
    with pytest.raises(EditError) as refused:
        client.edit([photo_like_png()] * 3, "Combine them", **FIELDS)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "3 input images" in refused.value.details and "at most 2" in refused.value.details
    assert client.edit(photo_like_png(), "Make the square red", **FIELDS).width == 32  # old single-image form


@pytest.mark.parametrize("bad, message", [
    (b"not an image at all", "images[1]: cannot decode image"),
    (big_png(1200, 1000), "images[1]: 1200x1000 = 1200000 pixels exceeds the limit of 1000000"),
    (b"", "images[1]: empty"),
])
def test_every_input_image_gets_the_decoding_and_size_checks(client, bad, message):
    with pytest.raises(EditError) as refused:
        client.edit([photo_like_png(), bad], "Combine them", **FIELDS)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert message in refused.value.details


def test_source_image_and_images_together_are_refused(server):
    channel = make_channel(server.address)
    try:
        stub = editor_pb2_grpc.EditorStub(channel)
        request = editor_pb2.EditRequest(instruction="x", source_image=photo_like_png(),
                                         images=[photo_like_png(), photo_like_png()], num_inference_steps=2)
        with pytest.raises(grpc.RpcError) as refused:
            list(stub.Edit(request, timeout=60))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not both" in refused.value.details()
    finally:
        channel.close()


def test_client_cli_takes_image_repeated(server, tmp_path, capsys):
    paths = []
    for name, data in (("a.png", photo_like_png(64, 48)), ("b.png", png_bytes(48, 48, (10, 10, 240)))):
        (tmp_path / name).write_bytes(data)
        paths += ["--image", str(tmp_path / name)]
    out = tmp_path / "out.png"
    code = client_main(["--address", server.address, *paths, "--instruction", "Add the blue square",
                        "--out", str(out), "--steps", "2", "--guidance", "1", "--width", "32", "--height", "32",
                        "--seed", "1"])
    assert code == 0, capsys.readouterr().err
    assert Image.open(io.BytesIO(out.read_bytes())).size == (32, 32)
    assert "wrote" in capsys.readouterr().out


def test_without_a_size_the_last_image_decides_the_output_size(client):
    # QwenImageEditPlusPipeline: the last image's aspect ratio at about 1024x1024, multiples of 32
    result = client.edit([png_bytes(40, 80), png_bytes(64, 48)], "Combine them", steps=2, seed=1, guidance_scale=1.0)
    assert (result.width, result.height) == (1184, 896)


def test_2509_takes_an_image_list_in_process(tiny_2509, tmp_path, monkeypatch):
    from editor_service.pipeline import EditPipeline, EditRequest

    monkeypatch.setenv("EDITFLEET_CACHE_DIR", str(tmp_path / "cache"))
    pipeline = EditPipeline.load(str(tiny_2509), threads=2)
    assert pipeline.max_images == 3 and not pipeline.pipe.transformer.config.zero_cond_t
    first, second = photo_like_png(64, 48), png_bytes(32, 32)
    prepared = pipeline.prepare(EditRequest(instruction="Combine them", images=[first, second], seed=1,
                                            num_inference_steps=2, guidance_scale=1.0, width=32, height=32))
    assert [image.size for image in prepared.kwargs["image"]] == [(64, 48), (32, 32)]
    out = pipeline.edit(prepared)
    assert (out.width, out.height) == (32, 32)
