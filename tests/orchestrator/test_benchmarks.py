"""Benchmark loaders and the up-front validation (no service is involved)."""

from __future__ import annotations

import json
import subprocess

import pytest
from click.testing import CliRunner

from orchestrator.benchmark import BenchmarkError, load_benchmark, safe_path_component
from orchestrator.cli import main

from conftest import EXAMPLE, REPO, b64, orchestrator_cmd, png_bytes, write_native


def test_example_benchmark_has_five_categories_and_valid_images():
    bench = load_benchmark(EXAMPLE)
    assert bench.format == "native"
    assert bench.categories == ["physical", "environmental", "cultural", "causal", "referential"]
    assert len(bench.samples) == 10
    assert all(s.image_path and s.image_path.is_file() and s.description for s in bench.samples)


def test_native_paths_are_relative_to_the_file(tmp_path):
    path = write_native(
        tmp_path / "b",
        [{"id": "a", "image": "img/a.png", "instruction": "make it blue", "category": "物理", "extra": 1}],
        {"img/a.png": png_bytes()},
    )
    (sample,) = load_benchmark(path).samples
    assert sample.image_path == (tmp_path / "b" / "img" / "a.png").resolve()
    assert sample.category == "物理" and sample.extras == {"extra": 1}
    assert sample.source_bytes() == png_bytes()


def test_seed_format_ids_follow_the_seed_numbering(tmp_path):
    items = [
        {"subset": "物理", "src_img_b64": b64(png_bytes()), "edit_instruction_en": "melt it",
         "original_description_en": "an ice cube", "original_image_path": "物理/1.png"},
        {"subset": "环境", "src_img_b64": b64(png_bytes(color=(0, 0, 255))), "edit_instruction_en": "add snow",
         "original_description_en": "a tree", "original_image_path": "环境/1.png"},
        {"subset": "物理", "src_img_b64": "data:image/png;base64," + b64(png_bytes()), "edit_instruction_en": "drop it",
         "original_description_en": "a glass", "original_image_path": "物理/2.png"},
    ]
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    bench = load_benchmark(path)
    assert bench.format == "seed"
    assert [(s.id, s.category) for s in bench.samples] == [("物理_0000", "物理"), ("环境_0000", "环境"), ("物理_0001", "物理")]
    assert bench.samples[0].description == "an ice cube"
    assert bench.samples[2].source_bytes() == png_bytes()


def test_gedit_local_copy_language_filter_and_inline_images(tmp_path):
    rows = [
        {"key": "k1", "task_type": "color_alter", "instruction": "make it red", "instruction_language": "en",
         "input_image": "images/k1.png", "Intersection_exist": True},
        {"key": "k1", "task_type": "color_alter", "instruction": "把它变成红色", "instruction_language": "cn",
         "input_image": "images/k1.png"},
        {"key": "k2", "task_type": "style_change", "instruction": "as a sketch", "instruction_language": "en",
         "input_image_b64": b64(png_bytes())},
    ]
    folder = tmp_path / "gedit"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "k1.png").write_bytes(png_bytes())
    path = folder / "gedit.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    en = load_benchmark(path)
    assert en.format == "gedit"
    assert [(s.id, s.category, s.language) for s in en.samples] == [("k1", "color_alter", "en"), ("k2", "style_change", "en")]
    assert en.samples[0].extras["intersection"] is True
    both = load_benchmark(path, options={"language": "all"})
    assert [s.id for s in both.samples] == ["k1_en", "k1_cn", "k2_en"]


def test_every_bad_sample_is_listed_in_one_error(tmp_path):
    folder = tmp_path / "bad"
    (tmp_path / "outside.png").write_bytes(png_bytes())
    records = [
        {"id": "ok", "image": "ok.png", "instruction": "fine", "category": "c"},
        {"id": "missing", "image": "nope.png", "instruction": "x", "category": "c"},
        {"id": "corrupt", "image": "corrupt.png", "instruction": "x", "category": "c"},
        {"id": "ok", "image": "ok.png", "instruction": "again", "category": "c"},
        {"id": "blank", "image": "ok.png", "instruction": "   ", "category": "c"},
        {"id": "escape", "image": "../outside.png", "instruction": "x", "category": "c"},
        {"id": "absolute", "image": str(tmp_path / "outside.png"), "instruction": "x", "category": "c"},
        {"id": "a/b", "image": "ok.png", "instruction": "x", "category": "c"},
        {"id": "noimage", "instruction": "x", "category": "c"},
    ]
    path = write_native(folder, records, {"ok.png": png_bytes(), "corrupt.png": b"\x89PNG\r\n\x1a\nnot really"})
    with open(path, "a") as f:
        f.write("{not json\n")
    with pytest.raises(BenchmarkError) as info:
        load_benchmark(path)
    message = str(info.value)
    expected = {
        "bench.jsonl:2": "image not found",
        "bench.jsonl:3": "cannot decode image",
        "bench.jsonl:4": "duplicate id (first at bench.jsonl:1)",
        "bench.jsonl:5": "empty instruction",
        "bench.jsonl:6": "escapes the benchmark folder",
        "bench.jsonl:7": "is absolute",
        "bench.jsonl:8": "path separators",
        "bench.jsonl:9": "missing field(s): image",
        "bench.jsonl:10": "not valid JSON",
    }
    for where, what in expected.items():
        line = next((l for l in message.splitlines() if l.strip().startswith(f"- {where}:")), None)
        assert line is not None and what in line, f"{where}: {what!r} not in\n{message}"
    assert message.startswith("9 problem(s)")


def test_seed_format_bad_items(tmp_path):
    items = [
        {"subset": "物理", "src_img_b64": "!!!notbase64", "edit_instruction_en": "x"},
        {"subset": "物理", "src_img_b64": b64(b"garbage"), "edit_instruction_en": "x"},
        {"subset": "物理", "src_img_b64": b64(png_bytes()), "edit_instruction_en": ""},
        {"subset": "物理", "src_img_b64": b64(png_bytes())},
    ]
    path = tmp_path / "seed.json"
    path.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(BenchmarkError) as info:
        load_benchmark(path)
    message = str(info.value)
    assert "seed.json[0]: sample '物理_0000': src_img_b64 is not valid base64" in message
    assert "seed.json[1]: sample '物理_0001': image: cannot decode image" in message
    assert "seed.json[2]: sample '物理_0002': empty instruction" in message
    assert "seed.json[3]: sample '物理_0003': missing or non-string field(s): edit_instruction_en" in message


def test_category_names_become_safe_folder_names():
    assert safe_path_component("物理") == "物理"
    assert safe_path_component("a/b\\c") == "a_b_c"
    assert safe_path_component("..") == "___"
    assert "/" not in safe_path_component("../../etc")


def test_cli_reports_bad_benchmark_before_starting_anything(tmp_path):
    path = write_native(
        tmp_path / "b",
        [{"id": "x", "image": "gone.png", "instruction": "x", "category": "c"},
         {"id": "y", "image": "../../etc/passwd", "instruction": "", "category": "c"}],
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "run", "--benchmark", str(path), "--editor-model", "models/tiny-qwen-image-edit",
        "--judge-model", "models/tiny-qwen3-vl", "--output", str(out),
    ])
    assert result.exit_code == 2, result.output  # the preflight's exit: nothing was started
    assert "Error: 3 problem(s) in the benchmark; nothing was started" in result.output
    assert "sample 'x': image not found" in result.output
    assert "sample 'y': image path '../../etc/passwd' escapes" in result.output
    assert "sample 'y': empty instruction" in result.output
    assert not out.exists()  # no output dir, no logs: no editor was started
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_error_is_a_message_not_a_traceback(tmp_path):
    path = write_native(tmp_path / "b", [{"id": "x", "image": "gone.png", "instruction": "x", "category": "c"}])
    done = subprocess.run(orchestrator_cmd("validate", str(path)), capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "Error: 1 problem(s) in the benchmark" in done.stderr and "image not found" in done.stderr
    ok = subprocess.run(orchestrator_cmd("validate", str(EXAMPLE)), capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0 and "10 samples OK" in ok.stdout


def test_native_images_list_and_sample_extras(tmp_path):
    from orchestrator.config import EditorConfig
    from orchestrator.dispatch import edit_fields

    path = write_native(tmp_path, [
        {"id": "m", "images": ["a.png", "b.png"], "instruction": "i", "category": "c",
         "extras": {"num_inference_steps": 12, "width": 64, "height": 48, "max_sequence_length": 256}},
    ], {"a.png": png_bytes(), "b.png": png_bytes((16, 16), (1, 2, 3))})
    (sample,) = load_benchmark(path).samples
    assert sample.image_paths() == [(tmp_path / "a.png").resolve(), (tmp_path / "b.png").resolve()]
    assert sample.source_images() == [png_bytes(), png_bytes((16, 16), (1, 2, 3))]
    assert "extras" not in sample.extras and sample.record()["extras"] == sample.edit_args
    run = EditorConfig(steps=30, width=32, height=32, extras={"max_sequence_length": 512, "other": 1})
    fields = edit_fields(sample, run)
    assert (fields["steps"], fields["width"], fields["height"]) == (12, 64, 48)
    assert fields["extras"] == {"max_sequence_length": 256, "other": 1}
    assert run.extras == {"max_sequence_length": 512, "other": 1}  # the run's own settings are untouched


def test_native_multi_image_problems_are_listed_per_sample(tmp_path):
    path = write_native(tmp_path, [
        {"id": "gone", "images": ["a.png", "missing.png"], "instruction": "i", "category": "c"},
        {"id": "broken", "images": ["a.png", "bad.png"], "instruction": "i", "category": "c"},
        {"id": "both", "image": "a.png", "images": ["a.png"], "instruction": "i", "category": "c"},
        {"id": "empty", "images": [], "instruction": "i", "category": "c"},
        {"id": "escape", "images": ["a.png", "../x.png"], "instruction": "i", "category": "c"},
        {"id": "args", "image": "a.png", "instruction": "i", "category": "c", "extras": {"seed": 1, "width": 8}},
        {"id": "steps", "image": "a.png", "instruction": "i", "category": "c", "extras": {"num_inference_steps": 0}},
    ], {"a.png": png_bytes(), "bad.png": b"not a png"})
    with pytest.raises(BenchmarkError) as caught:
        load_benchmark(path)
    text = str(caught.value)
    assert "sample 'gone': images[1]: image not found" in text
    assert "sample 'broken': images[1]: cannot decode image" in text
    assert "sample 'both': give image or images, not both" in text
    assert "sample 'empty': field(s) of the wrong type: images (a non-empty list of paths)" in text
    assert "sample 'escape': images[1]: image path '../x.png' escapes the benchmark folder" in text
    assert "sample 'args': extras.seed cannot be set per sample" in text
    assert "extras.width and extras.height go together" in text
    assert "sample 'steps': extras.num_inference_steps must be a positive integer, got 0" in text
