"""Finished runs written through the same RunDir API the orchestrator uses, with chosen scores:
the input of the compare, report and browser tests (no services needed)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.benchmark import load_benchmark
from orchestrator.results import RunDir, write_json_atomic

from conftest import png_bytes, write_native

CATEGORIES = ("物理", "environmental", "causal")
PER_CATEGORY = 6


def make_benchmark(folder: Path) -> Path:
    records, images = [], {}
    for c, category in enumerate(CATEGORIES):
        for n in range(PER_CATEGORY):
            sid = f"{c}-{n}"
            records.append({"id": sid, "image": f"{sid}.png", "category": category,
                            "instruction": f"edit number {n} of {category}" + (" " + "very long " * 40 if n == 0 else "")})
            images[f"{sid}.png"] = png_bytes(color=(40 * c, 30 * n, 100))
    return write_native(folder, records, images)


def make_run(root: Path, name: str, bench_path: Path, score_of, *, editor="model-a", judge="judge-x",
             protocol="seed-0-10", protocol_sha="p" * 64, color=(10, 10, 10), edit_fails=(), score_fails=(),
             rejudge_of: Path | None = None, repeats: int = 1, sub_scores=None) -> Path:
    """score_of(sample) -> float, or a list of floats (one per repeat)."""
    bench = load_benchmark(bench_path)
    run = RunDir(root / name, edits_from=rejudge_of).create()
    for i, sample in enumerate(bench.samples):
        if rejudge_of is None:
            if sample.id in edit_fails:
                run.record_edit_failure(sample, "INVALID_ARGUMENT: refused", final=True)
                continue
            edit = run.save_edit(sample, png_bytes(color=(color[0], color[1] + i, color[2])), {"seed": i})
        else:
            edit = RunDir(rejudge_of).edit_state(bench.samples)[0].get(sample.id)
            if edit is None:
                continue
        values = score_of(sample)
        values = values if isinstance(values, list) else [values]
        for r, value in enumerate(values):
            line = {"id": sample.id, "category": sample.category, "edit_sha256": edit["sha256"], "protocol": protocol,
                    "sub_scores": sub_scores(sample) if sub_scores else {}}
            if repeats > 1:
                line["repeat"] = r
            if sample.id in score_fails:
                line.update(status="PARSE_FAILED", score=None, raw_responses=["x" * 900], error="no number")
            else:
                line.update(status="OK", score=value, response=f"{name} says {value}", expected_score=value)
            run.scores.append(line)
    config = {"benchmark": {"path": str(bench_path)}, "editor": {"model": editor},
              "judge": {"model": judge, "protocol": protocol, "repeats": repeats}, "output": str(run.path)}
    manifest = {"config": config, "benchmark": bench.describe(),
                "judge": {"model": {"content_hash": f"hash-{judge}"}, "protocol": {"name": protocol, "sha256": protocol_sha}},
                "editor": {"model": {"content_hash": f"hash-{editor}"}}, "git": {"commit": "abc123"}}
    if rejudge_of is not None:
        manifest["rejudge_of"] = str(rejudge_of)
    write_json_atomic(run.manifest_path, manifest)
    return run.path
