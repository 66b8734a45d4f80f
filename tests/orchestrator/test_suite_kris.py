"""KRIS-Bench reproduced: a small copy of the release folder (all 20 categories, several input images,
temporal frames, a viewpoint ground truth) made here; known judge replies through the kris protocol's
parsing and combination and the suite's aggregation, checked against summarize.py's formula computed
here by hand; edits in the official results layout (<method>/<category>/<id>.jpg) imported, judged
end to end over the tiny judge's OpenAI-compatible endpoint with known replies (which prompt, images
and captions each call got checked), exported back; bad input names the file, the id and the field.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from conftest import REPO, orchestrator_cmd
from orchestrator.benchmarks import BenchmarkError, load_benchmark
from orchestrator.benchmarks.kris import CATEGORIES, KNOWLEDGE
from orchestrator.suites import kris as kris_suite

KEY_ENV = "EDITFLEET_TEST_KRIS_KEY"
KEY = "sk-editfleet-kris-3d9a40"
MULTI, TEMPORAL, VIEW = "multi-element_composition", "temporal_prediction", "viewpoint_change"


def png(color, size=(24, 20), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def release() -> dict[str, dict]:
    """category -> annotation.json: one id per category, two for count_change and chemistry, three
    inputs for the multi-element id, temporal ids predicting frame 1 and frame 3."""
    out = {}
    for c, category in enumerate(CATEGORIES):
        ids = ["1", "2"] if category in ("count_change", "chemistry") else ["1"]
        if category == TEMPORAL:
            ids = ["1", "16"]
        items = {}
        for key in ids:
            item = {"ori_img": f"{key}.jpg", "gt_img": "", "ins_en": f"Edit {category} number {key}.",
                    "explain_en": f"Because of {category} {key}, it should look so." if category in KNOWLEDGE else ""}
            if category == MULTI:
                item["ori_img"] = [f"{key}-1.jpg", f"{key}-2.jpeg", f"{key}-3.png"]
            if category == TEMPORAL:
                item["ori_img"] = ["1-2.jpg", "1-3.jpg", "1-4.jpg"] if key == "1" else ["16-1.jpg", "16-2.jpg", "16-4.jpg"]
                item["gt_img"] = "1-1.jpg" if key == "1" else "16-3.jpg"
            if category == VIEW:
                item["gt_img"] = f"{key}-gt.png"
            items[key] = item
        out[category] = items
    return out


def input_color(category: str, name: str) -> tuple[int, int, int]:
    c = CATEGORIES.index(category)
    return (10 + 11 * c, (sum(map(ord, name)) * 7) % 200, 40)


def make_release(folder: Path) -> Path:
    """KRIS_Bench/<category>/annotation.json with the images beside it, as the release has them."""
    root = folder / "KRIS_Bench"
    for category, items in release().items():
        (root / category).mkdir(parents=True)
        (root / category / "annotation.json").write_text(json.dumps(items, ensure_ascii=False, indent=2), encoding="utf-8")
        for item in items.values():
            names = item["ori_img"] if isinstance(item["ori_img"], list) else [item["ori_img"]]
            for name in names + ([item["gt_img"]] if item["gt_img"] else []):
                fmt = "PNG" if name.endswith(".png") else "JPEG"
                (root / category / name).write_bytes(png(input_color(category, name), fmt=fmt))
    return root


# -- the loader --------------------------------------------------------------------------------------
def test_the_release_folder_loads_as_the_scripts_read_it(tmp_path):
    root = make_release(tmp_path)
    bench = load_benchmark(root)
    assert bench.format == "kris" and len(bench.samples) == 23 and set(bench.categories) == set(CATEGORIES)
    by_id = {s.id: s for s in bench.samples}
    multi = by_id[f"{MULTI}_1"]
    assert multi.instruction == f"Edit {MULTI} number 1." and multi.extras["key"] == "1"
    assert [p.name for p in multi.image_paths()] == ["1-1.jpg", "1-2.jpeg", "1-3.png"]
    assert by_id["chemistry_2"].extras["variables"]["explain_en"] == "Because of chemistry 2, it should look so."
    assert [p.name for p in by_id[f"{VIEW}_1"].extras["reference_images"]] == ["1-gt.png"]
    assert by_id[f"{TEMPORAL}_1"].extras["variables"]["target_frame"] == "1"
    assert by_id[f"{TEMPORAL}_16"].extras["variables"]["target_frame"] == "3"
    # the digest covers every annotation.json: a changed instruction is another benchmark
    path = root / "color_change" / "annotation.json"
    path.write_text(path.read_text().replace("number 1", "number one"))
    assert load_benchmark(root).sha256 != bench.sha256
    # a file is not the KRIS-Bench format; the folder is no other format
    with pytest.raises(BenchmarkError, match="is a folder"):
        load_benchmark(path, "kris")
    with pytest.raises(BenchmarkError, match="got a folder"):
        load_benchmark(root, "imgedit")


def test_bad_annotations_name_the_file_the_id_and_the_field(tmp_path):
    root = make_release(tmp_path)

    def edit(category, change):
        path = root / category / "annotation.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    edit("color_change", lambda d: d["1"].pop("ins_en"))
    edit("count_change", lambda d: d["2"].update(ori_img="../outside.jpg"))
    edit(VIEW, lambda d: d["1"].update(gt_img=""))
    edit(TEMPORAL, lambda d: d["16"].update(ori_img=["16-1.jpg", "16-2.jpg", "16-5.jpg"]))
    edit(MULTI, lambda d: d["1"].update(ori_img=["1-1.jpg", "missing.jpg"]))
    edit("physics", lambda d: d["1"].update(explain_en=3))
    (root / "colour_change").mkdir()
    (root / "colour_change" / "annotation.json").write_text("{}")
    (root / "size_adjustment" / "annotation.json").write_text("{not json")
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(root)
    text = str(err.value)
    assert "color_change/annotation.json['1']: sample 'color_change_1': ins_en: missing or not a string" in text
    assert "count_change/annotation.json['2']: sample 'count_change_2': ori_img: image path '../outside.jpg' escapes its category folder" in text
    assert f"{VIEW}/annotation.json['1']: sample '{VIEW}_1': gt_img: viewpoint_change needs the ground-truth image" in text
    assert (f"{TEMPORAL}/annotation.json['16']: sample '{TEMPORAL}_16': ori_img frames [1, 2, 5]: temporal_prediction "
            "needs three different frames of 1-4") in text
    assert f"sample '{MULTI}_1': images[1]: image not found" in text and "missing.jpg" in text
    assert "physics/annotation.json['1']: sample 'physics_1': explain_en must be a string, got int" in text
    assert "colour_change/annotation.json: record: category folder 'colour_change' is not one of KRIS-Bench's 20" in text
    assert "size_adjustment/annotation.json: record: not valid JSON" in text
    # the CLI says the same, without a traceback
    done = subprocess.run(orchestrator_cmd("validate", str(root)), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "ins_en: missing or not a string" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
