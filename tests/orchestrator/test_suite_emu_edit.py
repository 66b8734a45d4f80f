"""Emu Edit (suites/emu_edit): the downloaded facebook/emu_edit_test_set folder (Parquet with embedded
images, read by suites/shared/hf_dataset.py), per-task and overall means computed by hand from known
metric values, the results layout. The metrics themselves: tests/scorer/test_metrics_backend.py."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from orchestrator.benchmark import load_benchmark
from suites.emu_edit import data, headline, layout

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
HF_META = {b"huggingface": json.dumps({"info": {"features": {"image": {"_type": "Image"}}}}).encode()}


def png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buf, format="PNG")
    return buf.getvalue()


def write_split(root: Path, split: str, rows: list[dict]) -> None:
    cols = {name: pa.array([r.get(name) for r in rows], pa.string() if name != "idx" else pa.int64())
            for name in ("idx", "instruction", "input_caption", "output_caption", "task", "split", "hash")}
    cols["image"] = pa.array([{"bytes": r["image"], "path": None} if r.get("image") else None for r in rows], IMAGE)
    path = root / "data" / f"{split}-00000-of-00001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols).replace_schema_metadata(HF_META), path)


def row(idx: int, task: str, split: str, **over) -> dict:
    return {"idx": idx, "instruction": f"edit {idx}", "input_caption": f"in {idx}", "output_caption": f"out {idx}",
            "task": task, "split": split, "hash": f"h{idx}", "image": png((idx * 20, 0, 0)), **over}


def make_release(root: Path) -> Path:
    write_split(root, "test", [row(0, "background", "test"), row(1, "background", "test"), row(2, "add", "test")])
    write_split(root, "validation", [row(0, "style", "validation")])
    return root


def test_the_dataset_folder_loads_as_released(tmp_path):
    benchmark = load_benchmark(make_release(tmp_path / "emu_edit_test_set"))
    assert benchmark.format == "emu_edit"
    by_id = {s.id: s for s in benchmark.samples}
    assert list(by_id) == ["validation_0", "test_0", "test_1", "test_2"]  # the splits in datasets' order
    sample = by_id["test_2"]
    assert (sample.category, sample.instruction) == ("add", "edit 2")
    assert sample.variables == {"input_caption": "in 2", "output_caption": "out 2"}
    assert Image.open(io.BytesIO(sample.image_bytes)).getpixel((0, 0)) == (40, 0, 0)
    assert layout.edit_relpath(sample) == "test/2.png"


def test_bad_rows_name_the_file_the_row_and_the_field(tmp_path):
    root = tmp_path / "bad"
    write_split(root, "test", [row(0, "add", "test", output_caption=None), row(1, "add", "test", image=None),
                               row(2, "add", "test")])
    samples, problems = data.load(root, {})
    text = "\n".join(map(str, problems))
    assert "data/test-00000-of-00001.parquet[0]: sample 'test_0': missing or non-string field(s): output_caption" in text
    assert "data/test-00000-of-00001.parquet[1]: sample 'test_1': image: no image" in text
    assert [s.id for s in samples] == ["test_2"]


def test_per_task_and_overall_means_by_hand(tmp_path):
    samples = data.load(make_release(tmp_path / "emu"), {})[0]
    values = {"test_0": (0.1, 0.9, 0.3, 0.05, 0.8), "test_1": (0.3, 0.7, 0.2, 0.15, 0.6),
              "test_2": (0.2, 0.8, 0.25, 0.1, 0.7), "validation_0": (0.0, 0.5, 0.1, 0.2, 0.4)}
    scores = {sid: {"status": "OK", "score": v[0], "sub_scores": dict(zip(headline.METRICS, v))}
              for sid, v in values.items()}
    block = headline.headline(samples, {}, scores)
    test = block["splits"]["test"]
    assert list(test["groups"]) == ["background", "add"]
    assert math.isclose(test["groups"]["background"]["clip_dir"], 0.2, abs_tol=1e-15)
    assert math.isclose(test["groups"]["background"]["l1"], 0.1, abs_tol=1e-15)
    assert math.isclose(test["overall"]["clip_dir"], 0.2, abs_tol=1e-15)  # (0.1 + 0.3 + 0.2) / 3
    assert math.isclose(test["overall"]["clip_out"], 0.25, abs_tol=1e-15)
    assert math.isclose(test["overall"]["dino"], 0.7, abs_tol=1e-15)
    assert block["splits"]["validation"]["overall"]["clip_i"] == 0.5
    assert test["overall"]["scored"] == 3
    text = headline.console(block)
    assert "split test:" in text and "CLIP-dir" in text
    assert "<h3>split validation</h3>" in headline.report_html(block)
