"""Fixtures: the tiny Qwen3-VL judge (built by `make models`, else here) and real scorer servers
on loopback, each a subprocess in the scorer environment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from editfleet_common.images import encode_png
from editfleet_common.launch import REPO_ROOT, ServiceProcess, free_port, venv_python

TEST_PROTOCOLS = Path(__file__).resolve().parent / "protocols"

# In-process model work (teaching the tiny judge, judge-core tests) on one thread: on a small shared
# machine more threads only spin against each other (10x slower under load). Servers get --threads 1.
torch.set_num_threads(1)


def png(size=(64, 64), color=(200, 30, 30)) -> bytes:
    return encode_png(Image.new("RGB", size, color))


def small_dummy_configs(out: Path) -> Path:
    """The shipped Qwen3-VL-8B configs (a dummy load's) with the model shrunk, so that it builds here."""
    import json
    import shutil

    from scorer_service.backends.transformers import DUMMY_CONFIG_DIR

    for f in DUMMY_CONFIG_DIR.iterdir():
        shutil.copy(f, out / f.name)
    config = json.loads((DUMMY_CONFIG_DIR / "config.json").read_text())
    config["text_config"].update(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                                 num_key_value_heads=2, head_dim=8, vocab_size=640)
    config["text_config"]["rope_scaling"]["mrope_section"] = [2, 1, 1]
    config["vision_config"].update(depth=2, hidden_size=32, intermediate_size=64, num_heads=4, out_hidden_size=32,
                                   deepstack_visual_indexes=[1], num_position_embeddings=64)
    (out / "config.json").write_text(json.dumps(config))
    return out


@pytest.fixture(scope="session")
def tiny_judge_dir(tmp_path_factory) -> Path:
    built = REPO_ROOT / "models" / "tiny-qwen3-vl"
    if (built / ".done").exists():
        return built
    out = tmp_path_factory.mktemp("tiny-qwen3-vl")
    subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "make_tiny_qwen3_vl.py"), str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def tiny_moe_judge_dir(tmp_path_factory) -> Path:
    """The tiny Qwen3-VL-30B-A3B-style (mixture-of-experts) judge of `make models`, else built here."""
    built = REPO_ROOT / "models" / "tiny-qwen3-vl-moe"
    if (built / ".done").exists():
        return built
    out = tmp_path_factory.mktemp("tiny-qwen3-vl-moe")
    subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "make_tiny_qwen3_vl.py"), str(out), "--moe"], check=True)
    return out


def start_scorer(model_dir: Path, log_path: Path, *extra: str, wait: bool = True) -> ServiceProcess:
    port = free_port()
    argv = [
        venv_python("scorer"), "-m", "scorer_service",
        "--model", str(model_dir), "--port", str(port),
        "--max-batch", "4", "--max-wait-ms", "300", "--max-new-tokens", "12",
        "--threads", "1", "--grace", "20",
        "--protocols-dir", str(TEST_PROTOCOLS),
        *extra,
    ]
    process = ServiceProcess("scorer", argv, port, log_path=log_path).start()
    if wait:
        try:
            process.wait_healthy(120)
        except BaseException:
            process.kill()
            raise
    return process


@pytest.fixture(scope="session")
def scorer(tiny_judge_dir, tmp_path_factory):
    """A scorer on the tiny random judge: it answers gibberish."""
    process = start_scorer(tiny_judge_dir, tmp_path_factory.mktemp("logs") / "scorer.log")
    yield process
    process.stop(grace=20)
