"""OmniContext read from its downloaded Hugging Face dataset folder (OmniGen2/OmniContext: Parquet whose
`input_images` is a list of embedded `datasets` Images), made here as a tiny Parquet: every input image
of a row reaches the sample in order (image_bytes, more_image_bytes), the editor's and the judge's
requests and the report; bad rows named by file and row; the JSONL route:
tests/orchestrator/test_suite_omnicontext.py."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from conftest import run_orchestrator
from orchestrator import preflight
from orchestrator.benchmark import BenchmarkError, load_benchmark
from orchestrator.config import RunConfig
from orchestrator.scoring import ScoreItem, build_score_request

IMAGES = pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
HF_META = {b"huggingface": json.dumps({"info": {"features": {"input_images": [{"_type": "Image"}]}}}).encode()}
FILE = "data/train-00000-of-00001.parquet"


def png(color, size=(24, 20)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def row(key: str, task: str, n: int, lang: str = "en", **over) -> dict:
    images = [{"bytes": png((30 * len(key), 60 * k, 90 if lang == "en" else 10)), "path": f"{key}_{k}.png"}
              for k in range(n)]
    return {"key": key, "task_type": task, "instruction": f"{key}: put them on a beach", "instruction_language": lang,
            "input_images": images, **over}


def make_dataset(folder: Path, rows: list[dict]) -> Path:
    table = pa.table({name: pa.array([r.get(name) for r in rows], IMAGES if name == "input_images" else pa.string())
                      for name in ("key", "task_type", "instruction", "instruction_language", "input_images")})
    (folder / "data").mkdir(parents=True)
    pq.write_table(table.replace_schema_metadata(HF_META), folder / FILE)
    return folder


ROWS = [row("sc_1", "single_character", 1), row("mco_1", "multi_character_object", 3),
        row("scc_1", "scene_character", 2), row("scc_1", "scene_character", 2, lang="zh")]


def test_the_dataset_folder_loads_every_embedded_input_image_in_order(tmp_path):
    folder = make_dataset(tmp_path / "OmniContext", ROWS)
    bench = load_benchmark(folder)
    assert bench.format == "omnicontext" and [s.id for s in bench.samples] == ["sc_1", "mco_1", "scc_1"]
    by_id = {s.id: s for s in bench.samples}
    three = by_id["mco_1"]
    assert three.source_images() == [image["bytes"] for image in ROWS[1]["input_images"]]
    assert (three.input_count(), three.record()["embedded_images"], three.where) == (3, 3, f"{FILE}[1]")
    assert by_id["sc_1"].input_count() == 1 and by_id["sc_1"].more_image_bytes == []
    assert by_id["scc_1"].variables == {"with_scene": "true"} and three.category == "multi_character_object"
    assert [s.id for s in load_benchmark(folder, options={"language": "all"}).samples] == [
        "sc_1_en", "mco_1_en", "scc_1_en", "scc_1_zh"]
    assert bench.sha256 == load_benchmark(folder).sha256 and len(bench.sha256) == 64
    # what the judge is sent (scoring.build_score_request) and what preflight counts
    edit = tmp_path / "edit.png"
    edit.write_bytes(png((1, 2, 3)))
    request = build_score_request(ScoreItem(0, three, {}, edit), "omnicontext")
    assert request.source_image == ROWS[1]["input_images"][0]["bytes"]
    assert list(request.more_source_images) == [image["bytes"] for image in ROWS[1]["input_images"][1:]]
    config = RunConfig()
    config.judge.protocol = "omnicontext"
    assert preflight.judging_problems(config, bench.samples) == []
    assert [w for w, _, _ in preflight.image_pixels(three)] == ["images[0]", "images[1]", "images[2]"]


def test_bad_rows_are_named_by_file_row_and_image(tmp_path):
    not_embedded = row("x1", "single_object", 2)
    not_embedded["input_images"][1] = {"bytes": None, "path": "elsewhere/x1_1.png"}
    broken = row("x2", "multi_object", 2)
    broken["input_images"][1] = {"bytes": b"not an image", "path": "x2_1.png"}
    folder = make_dataset(tmp_path / "bad", [not_embedded, broken, row("x3", "single_object", 0),
                                             row("x4", "single_object", 1, instruction=None), row("ok", "single_object", 1)])
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(folder, "omnicontext")
    text = str(err.value)
    assert (f"{FILE}[0]: sample 'x1': input_images[1]: the image is not embedded in the file (its path: "
            "'elsewhere/x1_1.png')") in text
    assert f"{FILE}[1]: sample 'x2': images[1]: " in text
    assert f"{FILE}[2]: sample 'x3': input_images must be a non-empty list of images" in text
    assert f"{FILE}[3]: sample 'x4': missing, empty or non-string field(s): instruction" in text
    assert "'ok'" not in text and text.startswith("4 problem(s)")


def test_validate_import_and_report_through_the_cli(tmp_path):
    folder = make_dataset(tmp_path / "OmniContext", ROWS)
    code, output = run_orchestrator("validate", str(folder))
    assert code == 0 and "omnicontext format, 3 samples OK" in output, output
    results = tmp_path / "results" / "m" / "fullset"
    for key, task in (("sc_1", "single_character"), ("mco_1", "multi_character_object"), ("scc_1", "scene_character")):
        (results / task).mkdir(parents=True, exist_ok=True)
        (results / task / f"{key}.png").write_bytes(png((200, 10, 10)))
    code, output = run_orchestrator("import", str(tmp_path / "results"), "--layout", "omnicontext", "--benchmark",
                                    str(folder), "--output", str(tmp_path / "run"))
    assert code == 0 and "Imported 3 edit(s)" in output, output
    page = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "<span class='muted'>3</span>" in page  # mco_1's three input thumbnails, numbered
