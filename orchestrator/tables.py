"""Tables for pandas beside the JSON files: `summary.csv` (one row per category, then the whole
run) and `scores.parquet` (one row per sample: its edit, its score and every sub-score as columns,
its repeats). Both are rewritten from the files, like summary.json.

    import pandas as pd
    pd.read_parquet("runs/example/scores.parquet").groupby("category").score.mean()
"""

from __future__ import annotations

import csv
import io

import pyarrow as pa
import pyarrow.parquet as pq

from .benchmark import Sample
from .results import RunDir, write_atomic

SUMMARY_FIELDS = ("samples", "edited", "edit_failures", "scored", "score_failures", "pending",
                  "mean", "min", "max", "expected_mean")


def summary_csv(summary: dict) -> str:
    """category, the counts and means; sub-score means as `sub.<name>` columns; the last row
    (scope "all") is every sample pooled, with the macro mean and the headline's name."""
    subs = list(dict.fromkeys(name for c in [summary, *summary["categories"].values()]
                              for name in c.get("sub_score_means") or {}))
    header = ["scope", "category", *SUMMARY_FIELDS, *(f"sub.{n}" for n in subs), "macro_mean", "headline", "failures_as"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)

    def row(scope, name, c, *tail):
        means = c.get("sub_score_means") or {}
        writer.writerow([scope, name, *(c.get(f) for f in SUMMARY_FIELDS), *(means.get(n) for n in subs), *tail])

    for name, c in summary["categories"].items():
        row("category", name, c, "", "", summary.get("failures_as"))
    row("all", "", summary, summary.get("macro_mean"), summary.get("headline", ""), summary.get("failures_as"))
    return buf.getvalue()


def scores_table(samples: list[Sample], edits: dict, scores: dict) -> pa.Table:
    subs = list(dict.fromkeys(n for s in scores.values() for n in (s.get("sub_scores") or {})))
    columns: dict[str, list] = {name: [] for name in (
        "id", "category", "instruction", "edit_status", "edit_error", "edit_path", "seed", "status", "score",
        "expected_score", "response", "error", "protocol", "attempts", "latency_s", "repeats", "score_sd")}
    columns["repeat_scores"] = []
    for name in subs:
        columns[f"sub.{name}"] = []
    for sample in samples:
        edit, score = edits.get(sample.id) or {}, scores.get(sample.id) or {}
        values = {
            "id": sample.id, "category": sample.category, "instruction": sample.instruction,
            "edit_status": edit.get("status"), "edit_error": edit.get("error"), "edit_path": edit.get("path"),
            "seed": edit.get("seed"), "status": score.get("status"), "score": score.get("score"),
            "expected_score": score.get("expected_score"), "response": score.get("response"),
            "error": score.get("error"), "protocol": score.get("protocol"), "attempts": score.get("attempts"),
            "latency_s": score.get("latency_s"),
            "repeats": len(score["repeat_scores"]) if "repeat_scores" in score else (1 if score else 0),
            "score_sd": score.get("score_sd"), "repeat_scores": score.get("repeat_scores"),
        }
        for name in subs:
            values[f"sub.{name}"] = (score.get("sub_scores") or {}).get(name)
        for name, column in columns.items():
            column.append(values[name])
    types = {"score": pa.float64(), "expected_score": pa.float64(), "latency_s": pa.float64(), "score_sd": pa.float64(),
             "seed": pa.int64(), "attempts": pa.int64(), "repeats": pa.int64(), "repeat_scores": pa.list_(pa.float64()),
             **{f"sub.{n}": pa.float64() for n in subs}}
    return pa.table({name: pa.array(values, type=types.get(name, pa.string())) for name, values in columns.items()})


def write_tables(run_dir: RunDir, samples: list[Sample], edits: dict, scores: dict, summary: dict) -> None:
    write_atomic(run_dir.path / "summary.csv", summary_csv(summary).encode("utf-8"))
    buf = pa.BufferOutputStream()
    pq.write_table(scores_table(samples, edits, scores), buf)
    write_atomic(run_dir.path / "scores.parquet", buf.getvalue().to_pybytes())
