"""Editors must run the same model the same way before samples are shared out among them; where only
their software or GPU differs, the run goes on but says so (edits may differ in the last bits)."""

from __future__ import annotations

import copy

import pytest

from orchestrator.identity import DifferentModel, same_identity_everywhere


def info(**runtime_changes) -> dict:
    runtime = {"speed_mode": "default", "attention_backend": "_native_cudnn", "compile": "repeated_blocks",
               "torch": "2.11.0+cu130", "diffusers": "0.42.1", "transformers": "5.17.0",
               "accelerator": "NVIDIA H100 80GB HBM3"}
    runtime.update(runtime_changes)
    return {"model": {"model": "Qwen/Qwen-Image-Edit", "content_hash": "sha256:abc", "model_class": "QwenImageEditPipeline",
                      "dtype": "bfloat16", "device": "cuda:0", "load_format": "auto", "runtime": runtime}}


def test_identical_editors_pass_with_no_differences():
    identity, differs = same_identity_everywhere({"GPU 0": info(), "GPU 1": info()}, "editor")
    assert identity == info() and differs == {}


@pytest.mark.parametrize("field,value", [("content_hash", "sha256:def"), ("dtype", "float16"),
                                         ("load_format", "dummy"), ("model_class", "QwenImageEditPlusPipeline")])
def test_a_different_model_is_refused_naming_the_field(field, value):
    other = copy.deepcopy(info())
    other["model"][field] = value
    with pytest.raises(DifferentModel, match=f"do not run the same model: {field} differs"):
        same_identity_everywhere({"GPU 0": info(), "GPU 1": other}, "editor")


def test_a_different_speed_setting_is_refused():
    with pytest.raises(DifferentModel, match="do not run the model the same way: .*speed_mode"):
        same_identity_everywhere({"GPU 0": info(), "GPU 1": info(speed_mode="fast", quantization="fp8")}, "editor")


def test_different_gpus_or_libraries_are_reported_not_refused():
    identity, differs = same_identity_everywhere(
        {"GPU 0": info(), "GPU 1": info(accelerator="NVIDIA A100-SXM4-80GB", torch="2.10.0")}, "editor")
    assert identity == info()
    assert differs == {"accelerator": {"GPU 0": "NVIDIA H100 80GB HBM3", "GPU 1": "NVIDIA A100-SXM4-80GB"},
                       "torch": {"GPU 0": "2.11.0+cu130", "GPU 1": "2.10.0"}}


def test_an_older_editor_without_runtime_entries_is_compared_on_what_it_reports():
    old = copy.deepcopy(info())
    del old["model"]["runtime"]
    with pytest.raises(DifferentModel, match="do not run the model the same way"):
        same_identity_everywhere({"GPU 0": info(), "GPU 1": old}, "editor")


def test_a_warm_and_a_cold_compile_cache_start_are_the_same_editor():
    # one editor compiled and saved, the next loaded what it saved: the same model run the same way
    identity, differs = same_identity_everywhere(
        {"GPU 0": info(compile_cache="cold a6439dcaf82a"), "GPU 1": info(compile_cache="warm a6439dcaf82a")}, "editor")
    assert differs == {}
    with pytest.raises(DifferentModel, match="inductor"):
        same_identity_everywhere({"GPU 0": info(compile_cache="warm a6"), "GPU 1": info(inductor="other")}, "editor")
