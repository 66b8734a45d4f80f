"""The compiler start-up (editor_service/compiler_startup.py): a compiled editor imports the compiler while
its model builds, so that its first compiled call (the warm-up) imports almost nothing.

Each case runs in a fresh interpreter (imports are per process). The preload is started as
`EditPipeline.load` starts it for a CUDA editor, here while the tiny Qwen-Image-Edit builds on the CPU
in the main thread; then a real CPU torch.compile shows what the first compile still imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys, time
import torch
sys.path.insert(0, sys.argv[1])
from editor_service.compiler_startup import start_compiler_preload
model, preloaded = sys.argv[2], sys.argv[3] == "preload"
preload = start_compiler_preload(model, load_format="auto", revision=None, speed_mode="default",
                                 device=torch.device("cuda")) if preloaded else None
from diffusers import DiffusionPipeline
pipe = DiffusionPipeline.from_pretrained(model, dtype=torch.float32)  # the main thread's build, meanwhile
timings = preload.wait() if preload is not None else {}
before = set(sys.modules)
out = torch.compile(lambda x: torch.nn.functional.gelu(x) * 2 + 1)(torch.ones(8))
compile_imported = sorted(m for m in set(sys.modules) - before if m.startswith(("torch._inductor", "torch._functorch")))
print(json.dumps({"timings": timings, "compile_imported": compile_imported, "ok": bool((out > 0).all()),
                  "skipped": preload.skipped if preload else {}, "pipeline": type(pipe).__name__}))
"""


def _run(model: Path, mode: str) -> dict:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(REPO), str(model), mode], capture_output=True,
                          text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_preload_during_the_build_leaves_the_first_compile_little_to_import(tiny_model):
    without = _run(tiny_model, "none")
    with_preload = _run(tiny_model, "preload")
    assert with_preload["ok"] and without["ok"] and with_preload["pipeline"] == "QwenImageEditPipeline"
    timings = with_preload["timings"]
    assert timings["compiler_preload_modules"] > 100, timings
    # Only what a torch version or a CPU-only machine lacks (Triton) may be skipped, or what this
    # pytest version does not have of the three Dynamo looks for.
    assert all(name.startswith(("triton", "_pytest.")) or "triton" in why.lower() or "static_cuda" in name
               for name, why in with_preload["skipped"].items()), with_preload["skipped"]
    # Without it the first compile imports the compiler (well over a hundred modules); with it, next to
    # nothing (the kernel module it generates).
    assert len(without["compile_imported"]) > 100, len(without["compile_imported"])
    assert len(with_preload["compile_imported"]) < len(without["compile_imported"]) // 20, with_preload["compile_imported"]


def test_no_preload_where_nothing_compiles(tiny_model):
    from editor_service.compiler_startup import start_compiler_preload

    for mode, device in (("reference", "cuda"), ("default", "cpu"), ("fast", "cpu")):
        assert start_compiler_preload(str(tiny_model), load_format="auto", revision=None, speed_mode=mode,
                                      device=torch.device(device)) is None, (mode, device)
    # A model that cannot be read before loading: no preload (the load reports the model's problem).
    assert start_compiler_preload("/nonexistent/model", load_format="auto", revision=None, speed_mode="default",
                                  device=torch.device("cuda")) is None


def test_no_compile_workers_asks_for_no_worker_pool():
    # In a fresh interpreter: what a cached kernel's load asks Inductor (use_process_pool) creates the
    # worker pool outside the context (this machine has 2 cores: 2 compile threads), and not inside.
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "import torch._inductor.config as inductor_config\n"
        "from torch._inductor.async_compile import AsyncCompile\n"
        "from editor_service.compiler_startup import no_compile_workers\n"
        "inductor_config.compile_threads = 2\n"
        "with no_compile_workers():\n"
        "    AsyncCompile.use_process_pool()\n"
        "    inside = AsyncCompile.process_pool.cache_info().currsize\n"
        "restored = inductor_config.compile_threads\n"
        "AsyncCompile.use_process_pool()\n"
        "print(json.dumps({'inside': inside, 'restored': restored, 'after': AsyncCompile.process_pool.cache_info().currsize}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    pools = json.loads(done.stdout.strip().splitlines()[-1])
    assert pools == {"inside": 0, "restored": 2, "after": 1}, pools
