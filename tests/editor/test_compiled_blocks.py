"""Regional compilation of the transformer blocks with the text length dynamic from the first call
(editor_service/speed.py:compile_transformer_blocks), with a real torch.compile of the tiny
Qwen-Image-Edit on the CPU.

Left to automatic dynamic shapes, the first prompt length got a graph of its own and the second a
dynamic one: two graphs to compile cold and to trace again in every warm start (H200, RESULTS §15).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, sys
import numpy as np, torch
from PIL import Image
from diffusers import DiffusionPipeline
sys.path.insert(0, sys.argv[1])
from editor_service.compile_cache import compile_counters
from editor_service.speed import compile_transformer_blocks
pipe = DiffusionPipeline.from_pretrained(sys.argv[2], dtype=torch.float32)
pipe.set_progress_bar_config(disable=True)
image = Image.new("RGB", (64, 64), (120, 30, 200))
prompts = ["make it red", "make it a lot more red and add a long soft shadow to the left of it", "blue"]
def edit(prompt):
    return pipe(image=image, prompt=prompt, negative_prompt=" ", true_cfg_scale=4.0, num_inference_steps=2,
                height=64, width=64, generator=torch.Generator().manual_seed(0), output_type="np").images[0]
eager = [edit(p) for p in prompts]
applied = compile_transformer_blocks(pipe.transformer)
compiled = [edit(p) for p in prompts]
print(json.dumps({"applied": applied, "counters": compile_counters(),
                  "max_diff": max(float(np.abs(a - b).max()) for a, b in zip(eager, compiled))}))
"""


def run(tiny_model: Path, tmp_path: Path) -> dict:
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "inductor"), OMP_NUM_THREADS="2",
               HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(REPO), str(tiny_model)],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_one_compiled_graph_serves_every_prompt_length(tiny_model, tmp_path):
    # Three prompt lengths, each with true CFG's negative prompt (a fourth): one graph traced and compiled
    # once with the text length dynamic. (diffusers' compile_repeated_blocks traced 3 graphs and compiled
    # 2 on the same edits, session 8.)
    result = run(tiny_model, tmp_path)
    counters = result["counters"]
    assert result["max_diff"] < 1e-3  # the compiled blocks compute what the eager ones do (fp32)
    assert result["applied"] == "repeated_blocks, dynamic text length"
    assert counters["dynamo_traced_graphs"] == 1 and counters["fxgraph_cache_miss"] == 1
