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
    f = torch.compile(lambda x: torch.nn.functional.layer_norm(x, (64,)).relu() * 2 + 1)
    x = torch.linspace(-3, 3, 8 * 64).reshape(8, 64)
    out = f(x)
    cache.save()
finally:
    cache.release()
print(json.dumps({"state": state.state, "problem": state.problem, "describe": state.describe(),
                  "misses": dynamo_utils.counters["inductor"]["fxgraph_cache_miss"],
                  "hits": dynamo_utils.counters["inductor"]["fxgraph_cache_hit"],
                  "out": out.flatten().tolist()}))
"""

FIELDS = {"format": "1", "model_class": "Toy", "content_hash": "sha256:toy", "runtime": "{}"}


def start(cache_dir: Path, inductor_dir: Path, fields: dict = FIELDS) -> dict:
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=str(inductor_dir), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", START, str(cache_dir), json.dumps(fields), str(REPO)],
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
