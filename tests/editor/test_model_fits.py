"""A model that does not fit its device (issue 27 item 6), said before anything loads: the weights' size
from what is on disk (safetensors headers, in the dtype the service loads in) or, for --load-format
dummy, from the configs built on the meta device, against the device's free memory. One `error:` line
naming the model, its size, the room there is and what to do, exit 2, before a port is bound.

This machine has no GPU: tests/fake_nvidia_smi.py stands in for `nvidia-smi` (the GPUs and their free
memory); the service is the real CLI. On the CPU, EDITFLEET_MEMORY_CAP_BYTES (a documented test knob of
editfleet_common.memory_fit) caps the RAM the check sees, since the tiny model fits any machine.
An out-of-memory error during the load itself is said in the same words: checked in-process with the CPU
allocator's real failure (a GPU's OutOfMemoryError cannot be had here).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from editfleet_common.launch import REPO_ROOT, free_port, venv_python
from editfleet_common.memory_fit import model_weights
from tests.fake_nvidia_smi import fake_nvidia_smi

from .conftest import TINY_MODEL


def editor_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(REPO_ROOT / ".cache" / "home-startup-tests")}
    return subprocess.run([venv_python("editor"), "-m", "editor_service", "--port", str(free_port()), *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env={**base, **env})


def one_error(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    return lines[0]


def test_the_weights_are_read_from_the_safetensors_headers(tmp_path):
    from safetensors.torch import load_file, save_file
    import torch

    # every component of the tiny pipeline, as loading its tensors counts them
    expected = {}
    for name in ("transformer", "text_encoder", "vae"):
        files = sorted((TINY_MODEL / name).glob("*.safetensors"))
        expected[name] = sum(t.numel() for f in files for t in load_file(f).values())
    assert model_weights(TINY_MODEL, "float32").parts == {k: 4 * n for k, n in expected.items()}
    assert model_weights(TINY_MODEL, "bfloat16").parts == {k: 2 * n for k, n in expected.items()}
    # a sharded checkpoint (its index names the shards; a variant file beside it is not read), an integer
    # tensor kept at its own size
    judge = tmp_path / "judge"
    judge.mkdir()
    (judge / "config.json").write_text("{}")
    save_file({"a": torch.zeros(10, 10, dtype=torch.float16)}, judge / "model-00001-of-00002.safetensors")
    save_file({"b": torch.zeros(5, dtype=torch.float32), "ids": torch.zeros(3, dtype=torch.int64)},
              judge / "model-00002-of-00002.safetensors")
    save_file({"a": torch.zeros(1000, dtype=torch.float16)}, judge / "model.fp16.safetensors")
    (judge / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors",
        "ids": "model-00002-of-00002.safetensors"}}))
    assert model_weights(judge, "bfloat16").total == 100 * 2 + 5 * 2 + 3 * 8
    assert model_weights(judge, "float32").total == 100 * 4 + 5 * 4 + 3 * 8
    assert model_weights(tmp_path, "float32") is None  # no model here


def test_an_editor_that_does_not_fit_stops_before_loading(tmp_path):
    gpus = fake_nvidia_smi(tmp_path / "bin", free_mib=[40960, 0, 81000])
    # Qwen-Image-Edit's real architecture (shipped configs, --load-format dummy): 20.4 B parameters in the
    # transformer, 8.3 B in the Qwen2.5-VL text encoder, on one 80 GB card with 40 GiB free
    line = one_error(editor_cli("--model", "Qwen/Qwen-Image-Edit", "--load-format", "dummy", "--device", "cuda",
                                env=gpus))
    assert line.startswith(
        "error: editor model Qwen/Qwen-Image-Edit does not fit on cuda (GPU 0): its weights alone take 53.7 GiB in "
        "bfloat16 (transformer 38.1 GiB, text_encoder 15.4 GiB, vae 242.0 MiB), and GPU 0 has 40.0 GiB free of "
        "79.6 GiB (nvidia-smi): GPU 2 has room (--device cuda:2)"), line
    # a folder on disk (its safetensors headers; no torch imported), the GPU CUDA_VISIBLE_DEVICES names
    line = one_error(editor_cli("--model", str(TINY_MODEL), "--device", "cuda:0",
                                env={**gpus, "CUDA_VISIBLE_DEVICES": "1"}))
    assert line.startswith(f"error: editor model {TINY_MODEL} does not fit on cuda:0 (GPU 1): its weights alone take "
                           "446 KiB in bfloat16 (transformer 181 KiB, text_encoder 165 KiB, vae 101 KiB), and GPU 1 has "
                           "0 KiB free of 79.6 GiB (nvidia-smi): GPUs 0,2 have room (CUDA_VISIBLE_DEVICES=0)"), line
    # the CPU: float32 by default, and bfloat16 would fit
    line = one_error(editor_cli("--model", str(TINY_MODEL), "--device", "cpu",
                                env={"EDITFLEET_MEMORY_CAP_BYTES": "600000"}))
    assert line == (f"error: editor model {TINY_MODEL} does not fit on cpu (RAM): its weights alone take 893 KiB in "
                    "float32 (transformer 361 KiB, text_encoder 330 KiB, vae 201 KiB), and RAM has 586 KiB free of "
                    f"{line.split(' free of ')[1].split(' (')[0]} (EDITFLEET_MEMORY_CAP_BYTES=600000): --dtype bfloat16 "
                    "halves them (446 KiB)")


def test_out_of_memory_while_loading_is_the_same_one_line():
    import torch

    from editfleet_common.errors import TooLarge
    from editfleet_common.service import StartFailed
    from editor_service.__main__ import memory_guard, parse_args, startup_problems

    args = parse_args(["--model", str(TINY_MODEL), "--device", "cpu"])
    assert startup_problems(args) == []  # it fits this machine: the load starts
    guard = memory_guard(args)
    with pytest.raises(StartFailed) as failed, guard.during("loading"):
        torch.empty(1 << 50, dtype=torch.uint8)  # the CPU allocator's own failure: a RuntimeError
    assert guard.tripped
    line = str(failed.value)
    assert line.startswith(f"editor model {TINY_MODEL} ran out of memory on cpu while loading (its weights take 893 KiB "
                           "in float32 (transformer 361 KiB, text_encoder 330 KiB, vae 201 KiB)): RuntimeError: ")
    assert "can't allocate memory" in line and "\n" not in line
    assert line.endswith("--dtype bfloat16 halves the weights; give it a machine with more memory (RAM had "
                         f"{line.split('(RAM had ')[1].split(' free')[0]} free at start)")
    # the pipeline's own handler turns a CUDA OutOfMemoryError into TooLarge (a request's refusal): during
    # the warm-up it is still the device's memory that is short
    with pytest.raises(StartFailed) as failed, guard.during("warming up (its first edit)"):
        try:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total "
                                         "capacity of 79.19 GiB of which 3.12 GiB is free.")
        except torch.OutOfMemoryError:
            raise TooLarge("out of memory on cuda:0 for this request") from None
    assert "while warming up (its first edit)" in str(failed.value)
    assert "OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB." in str(failed.value)
    with pytest.raises(ValueError), guard.during("loading"):  # anything else goes its own way
        raise ValueError("not a memory error")
