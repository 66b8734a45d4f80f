"""GEdit-Bench read from its Hugging Face dataset folder as downloaded (no export step): the release's
columns (key, task_type, instruction, instruction_language, input_image, input_image_raw,
Intersection_exist, as Step1X-Edit's GEdit-Bench/generate_image_example.py lists them) in Arrow files
as `datasets` writes them, and in Parquet; the same samples as the JSONL export of the same release
(tests/orchestrator/test_gedit.py's, whose judged run covers the rest); detected from the folder;
imported edits and export work from it; bad rows name the file, the row, the key and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import run_orchestrator
from orchestrator.benchmark import BenchmarkError, load_benchmark
from test_gedit import SOURCE_SIZE, make_release, make_results_layout, png, release_rows

IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
FEATURES = {"task_type": {"dtype": "string", "_type": "Value"}, "key": {"dtype": "string", "_type": "Value"},
            "instruction": {"dtype": "string", "_type": "Value"},
            "instruction_language": {"dtype": "string", "_type": "Value"},
            "input_image": {"_type": "Image"}, "input_image_raw": {"_type": "Image"},
            "Intersection_exist": {"dtype": "bool", "_type": "Value"}}


def release_table(rows: list[dict] | None = None) -> pa.Table:
    """The release's rows, each input_image the same PNG the JSONL export of test_gedit.py holds."""
    rows = rows if rows is not None else release_rows()
    image = [{"bytes": png((10 + i, 200, 30), SOURCE_SIZE), "path": None} for i in range(len(rows))]
    raw = [{"bytes": png((10 + i, 200, 30), (80, 64)), "path": None} for i in range(len(rows))]
    return pa.table({
        "task_type": pa.array([r["task_type"] for r in rows], pa.string()),
        "key": pa.array([r["key"] for r in rows], pa.string()),
        "instruction": pa.array([r["instruction"] for r in rows], pa.string()),
        "instruction_language": pa.array([r["instruction_language"] for r in rows], pa.string()),
        "input_image": pa.array(image, IMAGE), "input_image_raw": pa.array(raw, IMAGE),
        "Intersection_exist": pa.array([r.get("Intersection_exist") for r in rows], pa.bool_()),
    }).replace_schema_metadata({b"huggingface": json.dumps({"info": {"features": FEATURES}}).encode()})


def arrow_release(folder: Path, table: pa.Table | None = None) -> Path:
    """train/data-0000N-of-00002.arrow (the IPC stream files `datasets` writes; the hub lists the
    release's format as arrow), the rows split over the two files."""
    table = table if table is not None else release_table()
    half = table.num_rows // 2
    (folder / "train").mkdir(parents=True)
    for n, part in enumerate((table.slice(0, half), table.slice(half))):
        with pa.ipc.new_stream(folder / "train" / f"data-{n:05d}-of-00002.arrow", part.schema) as writer:
            writer.write_table(part, max_chunksize=5)
    (folder / "README.md").write_text("---\nlicense: mit\n---\n")
    return folder


def parquet_release(folder: Path) -> Path:
    (folder / "data").mkdir(parents=True)
    pq.write_table(release_table(), folder / "data" / "train-00000-of-00001.parquet", row_group_size=8)
    return folder


def described(bench) -> list[tuple]:
    return [(s.id, s.category, s.instruction, s.language, s.extras, s.source_bytes()) for s in bench.samples]


def test_the_release_folder_gives_the_samples_of_its_jsonl_export(tmp_path):
    jsonl = make_release(tmp_path / "export")
    for folder in (arrow_release(tmp_path / "arrow"), parquet_release(tmp_path / "parquet")):
        for language in ("en", "cn", "all"):
            want = load_benchmark(jsonl, options={"language": language})
            got = load_benchmark(folder, options={"language": language})  # detected: a folder with the columns
            assert got.format == "gedit" and described(got) == described(want), (folder.name, language)
        assert got.samples[0].where.startswith("train/data-00000-of-00002.arrow[" if folder.name == "arrow"
                                               else "data/train-00000-of-00001.parquet[")
    arrow, parquet = load_benchmark(tmp_path / "arrow"), load_benchmark(tmp_path / "parquet")
    assert arrow.sha256 != parquet.sha256 and arrow.sha256 == load_benchmark(tmp_path / "arrow").sha256
    assert load_benchmark(tmp_path / "arrow", "gedit", categories=["ps_human"]).categories == ["ps_human"]


def test_bad_rows_name_the_file_the_row_the_key_and_the_field(tmp_path):
    rows = release_rows()
    rows[1] = {**rows[1], "task_type": "subject_add"}
    rows[2] = {**rows[2], "instruction_language": "zh"}
    rows[3] = {**rows[3], "instruction": None}
    table = release_table(rows)
    images = table.column("input_image").to_pylist()
    images[4] = {"bytes": None, "path": "/data/gedit/k030.png"}
    images[5] = {"bytes": b"not a png", "path": None}
    table = table.set_column(table.schema.get_field_index("input_image"), "input_image", pa.array(images, IMAGE))
    folder = arrow_release(tmp_path / "bad", table)
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(folder, options={"language": "all"})
    text = str(err.value)
    f = "train/data-00000-of-00002.arrow"
    assert f"{f}[1]: sample 'k001': task_type 'subject_add' is not one of GEdit-Bench's 11 groups" in text
    assert f"{f}[2]: sample 'k000': instruction_language 'zh' is not en or cn" in text
    assert f"{f}[3]: sample 'k010': missing or non-string field(s): instruction" in text
    assert (f"{f}[4]: sample 'k011_en': input_image: the image is not embedded in the file "
            "(its path: '/data/gedit/k030.png')") in text
    assert f"{f}[5]: sample 'k010_cn': image: cannot decode image (not an image format Pillow reads" in text
    # a folder whose files lack a column the release has: named, with what it has
    pq.write_table(release_table().drop_columns(["instruction_language"]), tmp_path / "train-x.parquet")
    (tmp_path / "lacking").mkdir()
    (tmp_path / "train-x.parquet").rename(tmp_path / "lacking" / "train-x.parquet")
    with pytest.raises(BenchmarkError, match=r"train-x.parquet: missing column\(s\): instruction_language"):
        load_benchmark(tmp_path / "lacking", "gedit")


def test_import_and_export_from_the_release_folder(tmp_path):
    """The same edits imported against the folder and against the JSONL export: the same run; export
    writes <key>_SRCIMG.png from the image embedded in the dataset."""
    folder = arrow_release(tmp_path / "GEdit-Bench")
    jsonl = make_release(tmp_path / "export")
    layout = make_results_layout(tmp_path / "results")
    runs = {}
    for name, bench in (("folder", folder), ("jsonl", jsonl)):
        code, output = run_orchestrator("import", str(layout), "--layout", "gedit", "--benchmark", str(bench),
                                        "--language", "all", "--output", str(tmp_path / name))
        assert code == 0, output
        runs[name] = {json.loads(l)["id"]: {k: v for k, v in json.loads(l).items() if k not in ("created", "timestamp")}
                      for l in (tmp_path / name / "edits.jsonl").read_text().splitlines()}
    assert runs["folder"].keys() == runs["jsonl"].keys() and len(runs["folder"]) == len(release_rows())
    for sample_id, record in runs["folder"].items():
        assert (record["status"], record.get("path")) == (runs["jsonl"][sample_id]["status"], runs["jsonl"][sample_id].get("path"))
    manifest = json.loads((tmp_path / "folder" / "manifest.json").read_text())
    assert json.dumps(manifest).count(str(folder.resolve())) >= 1 and '"gedit"' in json.dumps(manifest)
    code, output = run_orchestrator("export", str(tmp_path / "folder"), "--layout", "gedit", "--to",
                                    str(tmp_path / "out"), "--method", "m")
    assert code == 0, output
    for i, row in enumerate(release_rows()):
        src = tmp_path / "out" / "m" / "fullset" / row["task_type"] / row["instruction_language"] / f"{row['key']}_SRCIMG.png"
        assert src.read_bytes() == png((10 + i, 200, 30), SOURCE_SIZE)
