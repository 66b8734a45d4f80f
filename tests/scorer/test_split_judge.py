"""A judge larger than one GPU (`--gpus K`, run config `judge.gpus_per_replica`): its weights split over K
GPUs by accelerate's balanced placement (scorer_service/backends/transformers/loading.py: plan_split).

What runs here: the placement of the real shipped architectures, planned on the meta device (no memory)
for given free GPU memory, and the scorer's refusals. What cannot run here (no GPUs): the dispatched
model's forwards over several GPUs; RESULTS says it was not measured."""

from __future__ import annotations

import subprocess

import pytest
import torch

from editfleet_common.launch import REPO_ROOT, free_port, venv_python
from scorer_service.backends.transformers import NotEnoughGpus, TransformersBackend, plan_split
from scorer_service.backends.transformers.loading import build_dummy, load_model, placement

GB = 1 << 30


def _meta(model: str):
    return build_dummy(model, "meta", torch.bfloat16)[0]  # the real architecture, no memory


def test_the_30b_a3b_judge_is_split_over_two_gpus_by_whole_layers():
    net = _meta("Qwen/Qwen3-VL-30B-A3B-Instruct")  # 31.07 B parameters: 57.9 GiB in bf16
    plan = plan_split(net, 2, [50 * GB, 50 * GB], torch.bfloat16)  # 2 x 37.5 GiB for weights: neither alone
    prefix = "model.language_model.layers."
    layers = {name: gpu for name, gpu in plan.items() if name.startswith(prefix)}
    # whole decoder layers (the model's _no_split_modules) on each GPU, never a layer cut in two
    assert all(name.removeprefix(prefix).isdigit() for name in layers), sorted(layers)
    assert len(layers) == 48 and set(layers.values()) == {0, 1}
    assert set(plan.values()) == {0, 1}
    assert placement(plan).startswith("GPU 0: ") and "GPU 1: " in placement(plan)


def test_a_judge_that_does_not_fit_is_refused_never_offloaded():
    net = _meta("Qwen/Qwen3-VL-30B-A3B-Instruct")
    with pytest.raises(NotEnoughGpus, match=r"--gpus 2: the judge's weights do not fit on 2 GPU\(s\) at 75%"):
        plan_split(net, 2, [36 * GB, 36 * GB], torch.bfloat16)  # 2 x 27 GiB for 57.9 GiB of weights


def test_the_8b_judge_over_four_gpus_uses_all_four():
    net = _meta("Qwen/Qwen3-VL-8B-Instruct")  # ~16.3 GiB in bf16
    assert set(plan_split(net, 4, [8 * GB] * 4, torch.bfloat16).values()) == {0, 1, 2, 3}  # 4 x 6 GiB


def test_no_gpus_visible_is_a_clear_refusal(tiny_judge_dir):
    with pytest.raises(NotEnoughGpus, match=r"--gpus 2: 0 CUDA device\(s\) visible"):
        load_model(str(tiny_judge_dir), device="cuda", gpus=2)


def test_a_split_judge_decodes_dynamic_and_refuses_static(tiny_judge_dir):
    net, processor, identity = load_model(str(tiny_judge_dir), device="cpu", dtype="float32")
    net.hf_device_map = {"model.visual": 0, "model.language_model": 1, "lm_head": 1}  # what dispatch leaves
    assert TransformersBackend(net, processor, identity, target_device="cuda").decode == "dynamic"
    with pytest.raises(ValueError, match="a judge split over GPUs decodes 'dynamic'"):
        TransformersBackend(net, processor, identity, decode="static", target_device="cuda")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([venv_python("scorer"), "-m", "scorer_service", "--port", str(free_port()), *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "CUDA_VISIBLE_DEVICES": ""})


def test_the_scorer_refuses_gpus_with_single_device_options(tiny_judge_dir):
    for extra in (["--device", "cpu"], ["--device", "cuda", "--stage-on-host"], ["--device", "cuda", "--decode", "static"]):
        proc = _cli("--model", str(tiny_judge_dir), "--gpus", "2", *extra)
        assert proc.returncode == 2, (extra, proc.stderr[-2000:])
        assert "error: --gpus 2 splits a local judge over GPUs" in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli("--model", str(tiny_judge_dir), "--gpus", "0")
    assert proc.returncode == 2 and "--gpus" in proc.stderr


def test_the_scorer_without_enough_gpus_says_so_in_one_line(tiny_judge_dir):
    proc = _cli("--model", str(tiny_judge_dir), "--gpus", "2", "--device", "cuda")
    assert proc.returncode == 2, proc.stderr[-3000:]  # found before anything starts (scorer startup_problems)
    assert "error: --device cuda --gpus 2: " in proc.stderr and "no GPU" in proc.stderr and "Traceback" not in proc.stderr
