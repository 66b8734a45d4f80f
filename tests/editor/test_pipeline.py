"""The editor core in-process (no network): request mapping, validation, identity, dummy loads."""

from __future__ import annotations

import gc
import io
import json
import shutil
import sys

import pytest
import torch
from PIL import Image

from editfleet_common.errors import Cancelled, InvalidInput, NotFound
from editor_service import pipeline as pipeline_module
from editor_service.dummy_load import build_dummy_pipeline, resolve_config_dir
from editor_service.pipeline import (
    EditDefaults,
    EditPipeline,
    EditRequest,
    hash_files,
)
from editor_service.warm_up import WarmUp

from .conftest import big_png, photo_like_png, zero_width_png


@pytest.fixture(scope="module")
def editor(tiny_model, tmp_path_factory, monkeypatch_module):
    monkeypatch_module.setenv("EDITFLEET_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    return EditPipeline.load(
        str(tiny_model),
        device="cpu",
        threads=2,
        defaults=EditDefaults(num_inference_steps=2, min_steps=2, max_steps=8),
        max_input_pixels=500_000,
    )


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def request(**overrides) -> EditRequest:
    fields = dict(instruction="Make the square red", image=photo_like_png(), num_inference_steps=2, seed=5,
                  width=32, height=32)
    fields.update(overrides)
    return EditRequest(**fields)


def test_generic_request_maps_onto_qwen_true_cfg(editor):
    prepared = editor.prepare(request(guidance_scale=2.5))
    assert editor.guidance_parameter == "true_cfg_scale"
    assert prepared.kwargs["true_cfg_scale"] == 2.5
    # true CFG is only on with a negative prompt: the default one is sent
    assert prepared.kwargs["negative_prompt"] == " "
    assert "guidance_scale" not in prepared.kwargs
    assert prepared.kwargs["num_inference_steps"] == 2
    assert (prepared.kwargs["width"], prepared.kwargs["height"]) == (32, 32)

    defaults = editor.prepare(request(num_inference_steps=0, guidance_scale=None, seed=None))
    assert defaults.steps == 2  # the configured default
    assert defaults.kwargs["true_cfg_scale"] == 4.0  # the pipeline's own default
    assert 0 <= defaults.seed < 2**63  # drawn, to be reported


def test_a_warm_compile_cache_start_warms_up_with_one_edit(editor):
    # Cold: two edits with two instruction lengths, so the compiler sees a varying text length. Warm
    # (everything compiled is in the entry): with the text length compiled dynamic one graph serves
    # every length, so one edit without true CFG; without it, true CFG's negative prompt is the second
    # length; with neither, both edits again.
    cold, cold_steps = WarmUp.plan(editor, lean=False)
    assert len(cold) == 2 and len({len(e["instruction"]) for e in cold}) == 2 and cold_steps == 2
    runtime = editor.identity.runtime
    saved = dict(runtime)
    scale = editor.defaults.guidance_scale
    try:
        runtime["compile"] = "repeated_blocks, dynamic text length"
        warm, warm_steps = WarmUp.plan(editor, lean=True)
        assert warm_steps == 2  # scheduled, never 1: NaN with Qwen's scheduler (`last_step` runs one)
        assert len(warm) == 1 and warm[0]["guidance_scale"] == 1.0 and warm[0]["negative_prompt"] == ""
        prepared = editor.prepare(request(**warm[0]))
        assert prepared.kwargs["true_cfg_scale"] == 1.0 and "negative_prompt" not in prepared.kwargs  # no CFG

        runtime["compile"] = "repeated_blocks"
        assert WarmUp.plan(editor, lean=True)[0] == cold[:1]  # true CFG on: its negative prompt
        editor.defaults.guidance_scale = 1.0  # CFG off: one text length per edit, so both edits again
        assert WarmUp.plan(editor, lean=True)[0] == cold
    finally:
        runtime.clear()
        runtime.update(saved)
        editor.defaults.guidance_scale = scale


def test_the_warm_up_runs_one_of_its_two_scheduled_steps_and_decodes(editor):
    # Two steps scheduled (a one-step Qwen schedule gives NaN pixels), the first run, then decoded: the
    # steps call the same graphs, so the second only cost time. An edit asked for 2 steps with
    # last_step=1 denoises once, still on the 2-step schedule, and gives a finite image.
    calls = []
    hook = editor.pipe.transformer.register_forward_pre_hook(lambda *_: calls.append(1))
    steps_seen = []
    try:
        out = editor.edit(request(guidance_scale=1.0), on_step=lambda step, total, _s: steps_seen.append((step, total)),
                          encode=False, last_step=1)
        assert steps_seen == [(1, 2)] and len(calls) == 1  # one step of two, one transformer call (no CFG)
        assert out.image_png == b"" and (out.width, out.height) == (32, 32)
        full = editor.edit(request(guidance_scale=1.0), encode=False)
        assert len(calls) == 3
        calls.clear()
        editor.warm_up()
        assert len(calls) == 2  # uncompiled warm-up: one edit, one step, true CFG (two calls)
        assert gc.get_freeze_count() > 100_000  # the loaded libraries and model, out of the cyclic GC's walk
    finally:
        hook.remove()
    assert full.num_inference_steps == out.num_inference_steps == 2


def test_extras_are_decoded_and_checked(editor):
    prepared = editor.prepare(request(extras={"max_sequence_length": "256"}))
    assert prepared.kwargs["max_sequence_length"] == 256

    with pytest.raises(InvalidInput, match="unknown argument.*strength"):
        editor.prepare(request(extras={"strength": "0.5"}))
    with pytest.raises(InvalidInput, match="not valid JSON"):
        editor.prepare(request(extras={"max_sequence_length": "two hundred"}))
    with pytest.raises(InvalidInput, match="num_inference_steps.*cannot be set through extras"):
        editor.prepare(request(extras={"num_inference_steps": "3"}))
    with pytest.raises(InvalidInput, match="latents"):
        editor.prepare(request(extras={"latents": "null"}))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(instruction="  "), "instruction: empty"),
        (dict(num_inference_steps=9), r"num_inference_steps: 9 outside the allowed range \[2, 8\]"),
        (dict(num_inference_steps=1), r"num_inference_steps: 1 outside the allowed range \[2, 8\] \(QwenImageEdit"),
        (dict(guidance_scale=float("nan")), "guidance_scale: nan is not a finite number"),
        (dict(width=512, height=16), "width: 512 is more than 16 times height 16"),
        (dict(extras={"sigmas": "[0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]"}),
         r"extras\['sigmas'\]: 9 values, one denoise step each: 9 outside the allowed range \[2, 8\]"),
        (dict(extras={"max_sequence_length": "NaN"}), r"extras\['max_sequence_length'\]: NaN is not a finite"),
        (dict(image=b""), "source_image: empty"),
        (dict(image=b"not an image at all"), "source_image: cannot decode"),
        (dict(image=zero_width_png()), "source_image"),
        (dict(image=big_png(1000, 600)), "source_image: 1000x600 = 600000 pixels exceeds the limit of 500000"),
        (dict(width=40, height=32), "width: 40 is not a multiple of 16"),
        (dict(width=32, height=0), "give both or neither"),
        (dict(width=1024, height=1024), "exceeds the limit of 500000 pixels"),
    ],
)
def test_bad_requests_are_invalid_input(editor, overrides, message):
    with pytest.raises(InvalidInput, match=message):
        editor.prepare(request(**overrides))


def test_prepare_checks_headers_only_and_the_edit_decodes(editor, monkeypatch):
    # The server prepares with decode=False, then admits: nothing is decoded before the worker runs it.
    decodes = []
    real = pipeline_module.decode_image
    monkeypatch.setattr(pipeline_module, "decode_image", lambda *a, **kw: decodes.append(kw["field"]) or real(*a, **kw))
    prepared = editor.prepare(request(), decode=False)
    assert decodes == [] and not prepared.decoded and "image" not in prepared.kwargs
    assert prepared.input_sizes == [(96, 64)]
    out = editor.edit(prepared, encode=False, last_step=1)
    assert decodes == ["source_image"] and prepared.decoded and prepared.images[0].size == (96, 64)
    assert json.loads(out.call_arguments["image"]) == {"width": 96, "height": 64}
    # a sound header with broken pixels passes prepare and fails when decoded, naming the image
    broken = editor.prepare(request(image=photo_like_png()[:-30]), decode=False)
    with pytest.raises(InvalidInput, match="source_image: cannot decode"):
        editor.edit(broken)


def test_one_step_is_nan_with_qwen_scheduler_so_the_step_range_refuses_it(editor):
    # Issue 27: Qwen-Image's scheduler stretches a one-step schedule to its terminal shift as 0/0.
    assert editor.fewest_steps == 2
    with pytest.raises(InvalidInput, match=r"--min-steps 1: QwenImageEditPipeline's scheduler cannot run fewer than 2"):
        editor.set_step_range(1, 8)
    with pytest.raises(InvalidInput, match=r"--max-steps 1: below the fewest steps QwenImageEditPipeline can run"):
        editor.set_step_range(None, 1)
    with pytest.raises(ValueError, match="min_steps 1"):
        EditPipeline(editor.pipe, editor.identity, defaults=EditDefaults(num_inference_steps=2, min_steps=1))
    assert (editor.defaults.min_steps, editor.defaults.max_steps) == (2, 8)  # unchanged by the refusals
    # what one step really does on the tiny model (past the range check): every pixel NaN, refused as
    # INVALID_ARGUMENT naming the settings, not INTERNAL
    prepared = editor.prepare(request(guidance_scale=1.0))
    prepared.steps = prepared.kwargs["num_inference_steps"] = 1
    with pytest.raises(InvalidInput, match=r"non-finite pixels with these settings \(num_inference_steps 1, "
                                           r"true_cfg_scale 1.0, size 32x32, seed 5, dtype float32\)"):
        editor.edit(prepared)


def test_edit_reports_each_step_then_the_image(editor):
    steps = []
    out = editor.edit(request(num_inference_steps=3, width=48, height=32), on_step=lambda *a: steps.append(a))
    assert [(s, t) for s, t, _ in steps] == [(1, 3), (2, 3), (3, 3)]
    assert [e for _, _, e in steps] == sorted(e for _, _, e in steps)
    image = Image.open(io.BytesIO(out.image_png))
    assert image.size == (48, 32) == (out.width, out.height)
    assert out.seed == 5 and out.num_inference_steps == 3
    assert 0 < out.timings.denoise_s <= out.timings.run_s
    assert json.loads(out.call_arguments["true_cfg_scale"]) == 4.0
    assert json.loads(out.call_arguments["image"]) == {"width": 96, "height": 64}



def test_should_stop_interrupts_within_a_step(editor):
    steps = []
    with pytest.raises(Cancelled, match="after 2 of 8"):
        editor.edit(
            request(num_inference_steps=8),
            on_step=lambda *a: steps.append(a),
            should_stop=lambda: len(steps) >= 2,
        )
    assert len(steps) == 2


def test_content_hash_covers_configs_and_weights(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("EDITFLEET_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "model"
    shutil.copytree(tiny_model, copy)
    first = hash_files(copy)
    assert len(first) == 64 and hash_files(copy) == first
    assert list((tmp_path / "cache" / "content-hash").iterdir())  # cached for the next load

    weights = copy / "transformer" / "diffusion_pytorch_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert hash_files(copy) != first
    assert hash_files(copy, config_only=True) == hash_files(tiny_model, config_only=True)


def test_dummy_load_builds_random_weights_from_a_config_dir(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("EDITFLEET_CACHE_DIR", str(tmp_path))
    # configs only: a dummy load must not need (or read) any weights
    config_dir = tmp_path / "configs"
    shutil.copytree(tiny_model, config_dir, ignore=shutil.ignore_patterns("*.safetensors"))
    dummy = EditPipeline.load(str(config_dir), device="cpu", load_format="dummy", threads=2)
    assert dummy.identity.load_format == "dummy"
    assert dummy.identity.content_hash.startswith("dummy:")
    assert dummy.identity.model_class == "QwenImageEditPipeline"
    # what else decides the last bits is reported, for the orchestrator to compare across editors
    import diffusers

    assert dummy.identity.runtime["accelerator"] == "cpu"
    assert dummy.identity.runtime["torch"] == torch.__version__
    assert dummy.identity.runtime["diffusers"] == diffusers.__version__

    from safetensors.torch import load_file

    saved = load_file(str(tiny_model / "transformer" / "diffusion_pytorch_model.safetensors"))
    built = dummy.pipe.transformer.state_dict()
    assert saved.keys() == built.keys()
    name = "transformer_blocks.0.attn.to_q.weight"
    # drawn, not left empty (the folder has no weights to read; the tiny model itself was made from
    # the same seed and init, so the values may equal the saved ones)
    assert saved[name].shape == built[name].shape and built[name].std() > 0

    out = dummy.edit(request(num_inference_steps=2, width=32, height=16))
    assert (out.width, out.height) == (32, 16)


def test_dummy_weights_are_the_same_in_every_build(tiny_model):
    # One dummy model per fleet: every editor process draws the same weights, whatever ran before it
    # (found on two H100s: unseeded dummy editors gave different edits for the same seed and sample).
    def weights(seed: int, global_state: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(global_state)  # whatever the process did before: the build must not depend on it
        pipe = build_dummy_pipeline(tiny_model, torch.device("cpu"), torch.float32, seed=seed)
        return {f"{name}.{key}": value for name in ("transformer", "vae", "text_encoder")
                for key, value in getattr(pipe, name).state_dict().items()}

    first, again, other = weights(0, global_state=1), weights(0, global_state=2), weights(1, global_state=1)
    assert first.keys() == again.keys()
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not all(torch.equal(first[key], other[key]) for key in first)


def test_shipped_configs_are_the_real_architecture(monkeypatch):
    # The service image ships editor_service/ only: a dummy load must not need tools/.
    monkeypatch.setitem(sys.modules, "tools", None)
    monkeypatch.setitem(sys.modules, "tools.tiny_tokenizer", None)
    # Built on the meta device: the full-size shapes without allocating 28B parameters.
    for name, pipeline_class in (("Qwen/Qwen-Image-Edit", "QwenImageEditPipeline"),
                                 ("Qwen/Qwen-Image-Edit-2509", "QwenImageEditPlusPipeline"),
                                 ("Qwen/Qwen-Image-Edit-2511", "QwenImageEditPlusPipeline")):
        pipe = build_dummy_pipeline(resolve_config_dir(name), torch.device("meta"), torch.bfloat16)
        assert type(pipe).__name__ == pipeline_class
        transformer = pipe.transformer
        # 2511's one flag over 2509 (see tools/generate_editor_configs.py for the source)
        assert transformer.config.zero_cond_t is name.endswith("2511")
        assert len(transformer.transformer_blocks) == 60
        assert transformer.config.num_attention_heads * transformer.config.attention_head_dim == 3072
        assert transformer.config.joint_attention_dim == pipe.text_encoder.config.text_config.hidden_size == 3584
        assert pipe.vae_scale_factor == 8 and pipe.vae.config.base_dim == 96
        params = sum(p.numel() for p in transformer.parameters())
        assert 20.0e9 < params < 20.9e9
        assert all(p.device.type == "meta" and p.dtype == torch.bfloat16 for p in transformer.parameters())
        # the stand-in tokenizer's special tokens are the ones the text encoder looks for
        image_pad = pipe.tokenizer.convert_tokens_to_ids("<|image_pad|>")
        assert pipe.text_encoder.config.image_token_id == image_pad


def test_shipped_flux_kontext_config_is_flux1_dev_sized(monkeypatch):
    monkeypatch.setitem(sys.modules, "tools", None)
    monkeypatch.setitem(sys.modules, "tools.tiny_tokenizer", None)
    pipe = build_dummy_pipeline(resolve_config_dir("black-forest-labs/FLUX.1-Kontext-dev"), torch.device("meta"),
                                torch.bfloat16)
    assert type(pipe).__name__ == "FluxKontextPipeline"
    transformer = pipe.transformer
    assert (len(transformer.transformer_blocks), len(transformer.single_transformer_blocks)) == (19, 38)
    assert transformer.config.guidance_embeds is True  # guidance-distilled
    assert transformer.config.joint_attention_dim == pipe.text_encoder_2.config.d_model == 4096
    assert transformer.config.pooled_projection_dim == pipe.text_encoder.config.projection_dim == 768
    assert 11.8e9 < sum(p.numel() for p in transformer.parameters()) < 12.0e9
    assert pipe.vae.config.latent_channels == 16 and pipe.vae_scale_factor == 8


def test_unknown_dummy_model_is_not_found():
    with pytest.raises(NotFound, match="no-such/model"):
        resolve_config_dir("no-such/model")


def _as_hub_cache(model_dir, cache, repo_id, commit):
    """Lay `model_dir` out the way huggingface_hub caches a download (blobs + snapshot links)."""
    import hashlib
    import os

    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        shutil.copyfile(path, repo / "blobs" / digest)
        link = repo / "snapshots" / commit / path.relative_to(model_dir)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(repo / "blobs" / digest, link.parent), link)


def test_hub_model_identity_has_snapshot_revision_and_content_hash(tiny_model, tmp_path, monkeypatch):
    commit = "0123456789abcdef0123456789abcdef01234567"
    _as_hub_cache(tiny_model, tmp_path / "hub", "editfleet/tiny-qwen-image-edit", commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("EDITFLEET_CACHE_DIR", str(tmp_path / "cache"))
    import huggingface_hub.constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)

    loaded = EditPipeline.load("editfleet/tiny-qwen-image-edit", device="cpu", threads=2)
    assert loaded.identity.revision == commit
    # the hash of the linked blobs equals the hash of the same files in a plain directory
    assert loaded.identity.content_hash == hash_files(tiny_model)
