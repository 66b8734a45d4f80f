"""FLUX.1 Kontext end to end: a real editor process on the tiny generated FluxKontextPipeline
(guidance-distilled: the generic guidance drives guidance_scale; one input image)."""

from __future__ import annotations

import io
import json

import grpc
import pytest
from PIL import Image

from editor_service.client import EditError

from .conftest import photo_like_png, start_editor


@pytest.fixture(scope="module")
def server(tiny_kontext, tmp_path_factory):
    proc = start_editor(tmp_path_factory.mktemp("editor-kontext"), "--default-steps", "2", "--grace", "5",
                        model=tiny_kontext)
    try:
        proc.wait_healthy(timeout=240)
        yield proc
    finally:
        proc.stop(grace=20)


def test_kontext_edit_at_the_asked_size_with_guidance_scale(client):
    info = client.info()
    assert info.model["model_class"] == "FluxKontextPipeline" and info.max_images == 1
    assert info.defaults["guidance_scale"] == 3.5 and info.defaults["negative_prompt"] == ""  # the pipeline's own
    result = client.edit(photo_like_png(96, 64), "Make the square red", steps=2, seed=9, guidance_scale=2.5,
                         width=64, height=48, extras={"max_sequence_length": 32})
    assert (result.width, result.height) == (64, 48)
    assert Image.open(io.BytesIO(result.image_png)).size == (64, 48)
    args = result.call_arguments
    assert json.loads(args["guidance_scale"]) == 2.5 and "true_cfg_scale" not in args
    assert json.loads(args["max_area"]) == 64 * 48  # Kontext keeps only the aspect ratio of width x height
    again = client.edit(photo_like_png(96, 64), "Make the square red", steps=2, seed=9, guidance_scale=2.5,
                        width=64, height=48, extras={"max_sequence_length": 32})
    assert again.image_png == result.image_png
    other = client.edit(photo_like_png(96, 64), "Make the square red", steps=2, seed=9, guidance_scale=6.0,
                        width=64, height=48, extras={"max_sequence_length": 32})
    assert other.image_png != result.image_png  # the guidance reaches the transformer


def test_kontext_refuses_an_image_list(client):
    with pytest.raises(EditError) as refused:
        client.edit([photo_like_png(), photo_like_png()], "Combine them", steps=2, width=64, height=48)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "takes at most 1 per edit (a single-image pipeline)" in refused.value.details


def test_a_lora_fuses_into_kontext_too(tiny_kontext, tmp_path, monkeypatch):
    import numpy as np

    from editor_service.adapters import LoraSpec
    from editor_service.pipeline import EditPipeline, EditRequest

    from .conftest import make_lora

    monkeypatch.setenv("EDITFLEET_CACHE_DIR", str(tmp_path / "cache"))
    lora = make_lora(tmp_path / "kontext.safetensors", tiny_kontext)

    def pixels(pipeline):
        out = pipeline.edit(EditRequest(instruction="Make the square red", image=photo_like_png(), seed=2,
                                        num_inference_steps=2, width=64, height=48,
                                        extras={"max_sequence_length": "32"}))
        return np.asarray(Image.open(io.BytesIO(out.image_png)), dtype=np.int16)

    base = pixels(EditPipeline.load(str(tiny_kontext), threads=2))
    adapted = EditPipeline.load(str(tiny_kontext), threads=2, loras=[LoraSpec(str(lora), 1.0)])
    assert np.abs(pixels(adapted) - base).max() > 10
    assert json.loads(adapted.identity.runtime["lora"])[0]["file"] == "kontext.safetensors"
