"""Portable compile caches (editor_service/compile_cache.py) with a real torch.compile on the CPU.

Each start is its own Python process with its own, empty Inductor cache directory, so a warm start can
only come from the portable entry. (That the cache makes GPU editors compute the same bits is a GPU
measurement: bench/determinism.py, bench/RESULTS.md §10. CPU editors run uncompiled.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

START = r"""
import json, sys, torch
sys.path.insert(0, sys.argv[3])
from editor_service.compile_cache import CompileCache
fields = json.loads(sys.argv[2])
cache = CompileCache(sys.argv[1], fields)
cache.acquire()
try:
    state = cache.load()
    import torch._dynamo.utils as dynamo_utils
    variant = sys.argv[4] if len(sys.argv) > 4 else "plain"
    if variant == "plain":
        f = torch.compile(lambda x: torch.nn.functional.layer_norm(x, (64,)).relu() * 2 + 1)
        x = torch.linspace(-3, 3, 8 * 64).reshape(8, 64)
    else:  # attention under a kernel choice, as diffusers' cuDNN backend calls it (MATH: runs on CPU)
        from torch.nn.attention import SDPBackend, sdpa_kernel
        if variant == "sdpa-cacheable":
            from editor_service.speed import cacheable_sdpa_kernel
            cacheable_sdpa_kernel()
        def attend(q):
            with sdpa_kernel(SDPBackend.MATH):
                return torch.nn.functional.scaled_dot_product_attention(q, q, q) * 2
        f = torch.compile(attend, fullgraph=True)
        x = torch.linspace(-3, 3, 2 * 4 * 16 * 8).reshape(2, 4, 16, 8)
    out = f(x)
    cache.save()
finally:
    cache.release()
print(json.dumps({"state": state.state, "problem": state.problem, "describe": state.describe(),
                  "misses": dynamo_utils.counters["inductor"]["fxgraph_cache_miss"],
                  "hits": dynamo_utils.counters["inductor"]["fxgraph_cache_hit"],
                  "autograd": dict(dynamo_utils.counters["aot_autograd"]),
                  "out": out.flatten().tolist()}))
"""

FIELDS = {"format": "1", "model_class": "Toy", "content_hash": "sha256:toy", "runtime": "{}"}


def start(cache_dir: Path, inductor_dir: Path, fields: dict = FIELDS, variant: str = "plain") -> dict:
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(inductor_dir), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", START, str(cache_dir), json.dumps(fields), str(REPO), variant],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cold(tmp_path_factory):
    root = tmp_path_factory.mktemp("cc")
    return root, start(root / "cache", root / "inductor-cold")


def test_a_cold_start_compiles_and_saves_an_entry(cold):
    root, result = cold
    assert result["state"] == "cold" and result["misses"] >= 1
    entries = [p for p in (root / "cache").iterdir() if p.is_dir()]
    assert len(entries) == 1
    meta = json.loads((entries[0] / "entry.json").read_text())
    assert meta["fields"] == FIELDS and meta["size"] == (entries[0] / "artifacts.bin").stat().st_size > 0


def test_a_later_start_is_warm_and_computes_the_same_bits(cold, tmp_path):
    root, first = cold
    warm = start(root / "cache", tmp_path / "inductor-warm")
    assert warm["state"] == "warm" and warm["describe"].startswith("warm ")
    assert warm["misses"] == 0 and warm["hits"] >= 1  # compiled nothing: all from the entry
    assert warm["out"] == first["out"]


def test_a_corrupt_entry_is_reported_and_rebuilt(cold, tmp_path):
    root, first = cold
    cache = tmp_path / "cache"
    import shutil

    shutil.copytree(root / "cache", cache)
    blob = next(cache.glob("*/artifacts.bin"))
    blob.write_bytes(blob.read_bytes()[:-10] + b"0123456789")
    result = start(cache, tmp_path / "inductor")
    assert result["state"] == "rebuilt" and "corrupt" in result["problem"]
    assert result["out"] == first["out"]
    assert json.loads(next(cache.glob("*/entry.json")).read_text())["size"] == blob.stat().st_size  # saved anew


def test_a_foreign_entry_is_not_used(cold, tmp_path):
    root, _ = cold
    cache = tmp_path / "cache"
    import shutil

    shutil.copytree(root / "cache", cache)
    meta_path = next(cache.glob("*/entry.json"))
    meta = json.loads(meta_path.read_text())
    meta["fields"]["content_hash"] = "sha256:another-model"  # an entry copied from another editor kind
    meta_path.write_text(json.dumps(meta))
    result = start(cache, tmp_path / "inductor")
    assert result["state"] == "rebuilt" and "foreign entry" in result["problem"] and "content_hash" in result["problem"]


def test_other_settings_make_another_key_so_a_stale_entry_is_never_hit(cold, tmp_path):
    from editor_service.compile_cache import cache_key

    root, _ = cold
    assert cache_key(FIELDS) != cache_key({**FIELDS, "runtime": '{"speed_mode": "fast"}'})
    assert cache_key(FIELDS) != cache_key({**FIELDS, "content_hash": "sha256:other"})


@pytest.mark.parametrize("variant", ["sdpa", "sdpa-cacheable"])
def test_a_warm_start_skips_autograd_tracing_of_graphs_that_choose_an_attention_kernel(tmp_path, variant):
    # The cuDNN attention backend's sdpa_kernel context is traced into private torch calls that
    # AOTAutograd's cache refuses (a bypass: every warm editor traced each block again; H200, RESULTS
    # §14). cacheable_sdpa_kernel() marks them safe: a warm start then loads the traced graph too.
    fields = {**FIELDS, "model_class": variant}
    cold = start(tmp_path / "cache", tmp_path / "inductor-cold", fields, variant)
    warm = start(tmp_path / "cache", tmp_path / "inductor-warm", fields, variant)
    assert warm["state"] == "warm" and warm["misses"] == 0 and warm["out"] == cold["out"]
    if variant == "sdpa":
        assert warm["autograd"].get("autograd_cache_bypass", 0) >= 1 and not warm["autograd"].get("autograd_cache_hit")
    else:
        assert warm["autograd"].get("autograd_cache_hit", 0) >= 1 and not warm["autograd"].get("autograd_cache_bypass")


def test_reduction_launch_configs_are_chosen_by_rule_not_by_timing():
    # Inductor keeps the fastest-timed candidate; for reductions the patched autotuner ranks the
    # candidates in their listed order, so every process keeps the same one (RESULTS §10).
    pytest.importorskip("triton")
    from torch._inductor.runtime.hints import HeuristicType
    from torch._inductor.runtime.triton_heuristics import CachingAutotuner

    from editor_service.speed import deterministic_reduction_choice

    assert deterministic_reduction_choice() == "fixed reduction configs"
    assert deterministic_reduction_choice() == "fixed reduction configs"  # idempotent

    class Candidates:  # the two attributes the autotuner's choice reads
        heuristic_type = HeuristicType.REDUCTION
        launchers = ["persistent R0_BLOCK 4096", "looped R0_BLOCK 2048", "tiny"]

    ranks = CachingAutotuner.benchmark_all_configs(Candidates())
    assert min(ranks, key=ranks.get) == "persistent R0_BLOCK 4096"
    assert list(ranks.values()) == [0.0, 1.0, 2.0]


ISOLATED = r"""
import sys, torch
sys.path.insert(0, sys.argv[1])
from editor_service.speed import isolate_inductor_cache
print(isolate_inductor_cache())
torch.compile(lambda x: (x * 3).relu())(torch.ones(4))
"""


def test_the_machine_local_inductor_cache_is_one_folder_per_rule_generation(tmp_path):
    # Launch configs timed by an editfleet from before the fixed reduction rule stay in the machine's
    # default Inductor cache; a compiled editor must not read them (other bits than editors elsewhere).
    from editor_service.speed import INDUCTOR_CACHE_GENERATION

    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}
    env.update(TMPDIR=str(tmp_path), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", ISOLATED, str(REPO)], capture_output=True, text=True, env=env,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    default = next(tmp_path.glob("torchinductor_*"))  # what Inductor uses when nobody says otherwise
    assert done.stdout.split()[-1] == str(default / INDUCTOR_CACHE_GENERATION)
    generation = default / INDUCTOR_CACHE_GENERATION
    assert any(generation.rglob("*.py"))  # the compiled code went there, and none beside it (the CPU
    assert not [p for p in default.rglob("*.py") if generation not in p.parents]  # backend's headers may)
    chosen = tmp_path / "chosen"  # a folder the user names is kept as it is
    done = subprocess.run([sys.executable, "-c", ISOLATED, str(REPO)], capture_output=True, text=True, timeout=600,
                          env={**env, "TORCHINDUCTOR_CACHE_DIR": str(chosen)})
    assert done.returncode == 0 and done.stdout.split()[-1] == str(chosen) and any(chosen.rglob("*.py"))
