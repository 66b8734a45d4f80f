"""LoRA adapters fused at load and the scheduler override (editor_service/adapters.py), in-process on the
tiny Qwen-Image-Edit with tiny random LoRAs, and bad adapters refused at the service's start."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest
from PIL import Image

from editfleet_common.errors import InvalidInput
from editor_service.__main__ import parse_args
from editor_service.adapters import AdapterError, LoraSpec
from editor_service.pipeline import EditDefaults, EditPipeline, EditRequest

from .conftest import TINY_KONTEXT, make_lora, photo_like_png, read_log, start_editor


def load(model, **kwargs) -> EditPipeline:
    return EditPipeline.load(str(model), device="cpu", threads=2,
                             defaults=EditDefaults(num_inference_steps=2, min_steps=2, max_steps=8), **kwargs)


def pixels(pipeline: EditPipeline) -> np.ndarray:
    # guidance 1: no true-CFG pass (half the work); the same seed and request for every pipeline
    out = pipeline.edit(EditRequest(instruction="Make the square red", image=photo_like_png(), seed=4,
                                    num_inference_steps=2, guidance_scale=1.0, width=32, height=32))
    return np.asarray(Image.open(io.BytesIO(out.image_png)), dtype=np.int16)


@pytest.fixture(scope="module")
def lora_files(tiny_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("loras")
    return {
        "a": make_lora(folder / "a.safetensors", tiny_model, seed=1),
        "b": make_lora(folder / "b.safetensors", tiny_model, seed=2),
    }


@pytest.fixture(scope="module")
def base_pixels(tiny_model, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("EDITFLEET_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    return pixels(load(tiny_model))


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_a_fused_lora_changes_the_edit_and_is_part_of_the_identity(tiny_model, lora_files, base_pixels):
    pipeline = load(tiny_model, loras=[LoraSpec(str(lora_files["a"]), 0.8)])
    assert np.abs(pixels(pipeline) - base_pixels).max() > 10
    (entry,) = json.loads(pipeline.identity.runtime["lora"])
    assert entry["scale"] == 0.8 and entry["file"] == "a.safetensors" and len(entry["sha256"]) == 64
    # fused: no adapter layer is left to cost time at each step
    assert not pipeline.pipe.get_list_adapters()


def test_scale_zero_leaves_the_edit_unchanged(tiny_model, lora_files, base_pixels):
    pipeline = load(tiny_model, loras=[LoraSpec(str(lora_files["a"]), 0.0)])
    assert np.array_equal(pixels(pipeline), base_pixels)
    assert json.loads(pipeline.identity.runtime["lora"])[0]["scale"] == 0.0


def test_two_loras_are_both_fused_and_both_named(tiny_model, lora_files, base_pixels):
    one = load(tiny_model, loras=[LoraSpec(str(lora_files["a"]), 1.0)])
    two = load(tiny_model, loras=[LoraSpec(str(lora_files["a"]), 1.0), LoraSpec(str(lora_files["b"]), 1.0)])
    assert not np.array_equal(pixels(two), pixels(one))
    hashes = [entry["sha256"] for entry in json.loads(two.identity.runtime["lora"])]
    assert len(set(hashes)) == 2 and hashes[0] == json.loads(one.identity.runtime["lora"])[0]["sha256"]


def test_bad_lora_files_are_refused_naming_the_file(tiny_model, tmp_path):
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    with pytest.raises(AdapterError, match=r"corrupt.safetensors: not a readable safetensors file"):
        load(tiny_model, loras=[LoraSpec(str(corrupt))])
    # a LoRA of another architecture (FLUX Kontext): some layer names match, most do not
    flux = make_lora(tmp_path / "flux.safetensors", TINY_KONTEXT)
    with pytest.raises(AdapterError, match=r"flux.safetensors: only \d+ of its 17 layers match a layer of "
                                           r"QwenImageEditPipeline \(a LoRA for another architecture\?\)"):
        load(tiny_model, loras=[LoraSpec(str(flux))])
    # the same architecture at another width: the shapes do not fit
    config = json.loads((tiny_model / "transformer" / "config.json").read_text())
    wide = tmp_path / "wide"
    (wide / "transformer").mkdir(parents=True)
    (wide / "transformer" / "config.json").write_text(json.dumps({**config, "attention_head_dim": 32,
                                                                  "axes_dims_rope": [8, 12, 12]}))
    mismatched = make_lora(tmp_path / "wide.safetensors", wide)
    with pytest.raises(AdapterError, match=r"wide.safetensors: does not fit QwenImageEditPipeline \(.*size"):
        load(tiny_model, loras=[LoraSpec(str(mismatched))])


def test_scheduler_override_is_applied_and_recorded(tiny_model):
    lightning = {"base_shift": math.log(3), "max_shift": math.log(3), "shift_terminal": None}
    pipeline = load(tiny_model, scheduler=lightning)
    config = pipeline.pipe.scheduler.config
    assert config.base_shift == pytest.approx(math.log(3)) and config.shift_terminal is None
    assert config.use_dynamic_shifting is True  # the rest of the pipeline's own config is kept
    assert pipeline.fewest_steps == 1  # without the terminal shift one step is finite (2 with it)
    assert json.loads(pipeline.identity.runtime["scheduler"]) == {"_class_name": "FlowMatchEulerDiscreteScheduler",
                                                                   **lightning}
    with pytest.raises(AdapterError, match=r"scheduler: unknown setting\(s\) shfit for FlowMatchEulerDiscreteScheduler"):
        load(tiny_model, scheduler={"shfit": 3.0})
    with pytest.raises(AdapterError, match=r"scheduler: 'QwenImageEditPipeline' is not a diffusers scheduler class"):
        load(tiny_model, scheduler={"_class_name": "QwenImageEditPipeline"})


@pytest.mark.parametrize("text, path, scale", [
    ("a.safetensors", "a.safetensors", 1.0),
    ("a.safetensors:0.5", "a.safetensors", 0.5),
    ("C:/loras/a.safetensors", "C:/loras/a.safetensors", 1.0),
    ("dir:with:colons/a.safetensors:-1", "dir:with:colons/a.safetensors", -1.0),
])
def test_lora_flag_takes_path_and_scale(text, path, scale):
    assert LoraSpec.parse(text) == LoraSpec(path, scale)


@pytest.mark.parametrize("argv, message", [
    (["--lora", "/no/such/lora.safetensors:0.5"], "--lora /no/such/lora.safetensors: no such file"),
    (["--lora", "x.safetensors:nan"], "scale nan is not a finite number"),
    (["--scheduler", "{not json"], "--scheduler: not valid JSON"),
    (["--scheduler", "[1, 2]"], "--scheduler: expected a JSON object, got list"),
    (["--scheduler", "/no/such.json"], "--scheduler /no/such.json: cannot read"),
    (["--max-images", "0"], "--max-images 0: need >= 1"),
])
def test_bad_adapter_flags_are_refused_before_loading(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_args(["--model", "m", *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_service_with_an_unloadable_lora_exits_with_one_clear_line(tiny_model, tmp_path):
    corrupt = tmp_path / "broken.safetensors"
    corrupt.write_bytes(b"definitely not safetensors")
    proc = start_editor(tmp_path, "--lora", f"{corrupt}:0.7")
    try:
        assert proc.proc.wait(timeout=240) == 1
    finally:
        proc.kill()
    log = read_log(proc)
    assert f"cannot load the model: LoRA {corrupt}: not a readable safetensors file" in log
    assert "Traceback" not in log


def test_max_images_above_one_is_refused_for_a_single_image_pipeline(tiny_model):
    with pytest.raises(InvalidInput, match=r"--max-images 2: QwenImageEditPipeline takes one input image"):
        load(tiny_model, max_images=2)
