"""Several input images and LoRA adapters through the whole orchestrator, on CPU: the real CLI, real
editor processes on the tiny Qwen-Image-Edit-2511 (QwenImageEditPlusPipeline) and tiny random LoRAs.

  run M: a native benchmark with a two-image sample (its own size in "extras") and a one-image sample,
         one local editor with a LoRA fused; edit only. edits.jsonl, the manifest and the report show
         every input, the sample's extras and the adapter.
  mixed: two editors of a static fleet, one with a LoRA and one without: the run is refused naming it.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from editfleet_common.launch import ServiceProcess, free_port, venv_python

from conftest import REPO, TINY_EDITOR, orchestrator_cmd, png_bytes, write_native
from test_e2e import lines

TINY_2511 = REPO / "models" / "tiny-qwen-image-edit-2511"


def make_lora(model, path, seed=0):
    """A tiny random LoRA for `model` (tools/make_tiny_lora.py needs torch: the editor's environment)."""
    subprocess.run([venv_python("editor"), "tools/make_tiny_lora.py", str(model), str(path), "--seed", str(seed)],
                   cwd=REPO, check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def run_m(tmp_path_factory):
    if not (TINY_2511 / "model_index.json").exists():
        pytest.fail(f"{TINY_2511} missing: run `make models` first")
    root = tmp_path_factory.mktemp("run_m")
    lora = make_lora(TINY_2511, root / "lora.safetensors")
    bench = write_native(root / "bench", [
        {"id": "two", "images": ["img/person.png", "img/hat.png"], "instruction": "Put the hat from picture 2 on picture 1",
         "category": "multi", "extras": {"width": 48, "height": 32}},
        {"id": "one", "image": "img/person.png", "instruction": "Make it red", "category": "single"},
    ], {"img/person.png": png_bytes((64, 48), (40, 90, 200)), "img/hat.png": png_bytes((32, 64), (200, 200, 20))})
    out = root / "out"
    done = subprocess.run(orchestrator_cmd(
        "run", "--benchmark", str(bench), "--editor-model", str(TINY_2511), "--editors", "1", "--no-score",
        "--steps", "2", "--guidance", "1", "--size", "32", "--lora", f"{lora}:0.5", "--output", str(out),
        "--progress", "plain"), cwd=REPO, capture_output=True, text=True, timeout=600)
    return {"out": out, "done": done, "bench": bench, "lora": lora}


def test_run_m_edits_every_input_and_records_it(run_m):
    out, done = run_m["out"], run_m["done"]
    assert done.returncode == 0, done.stdout + done.stderr
    edits = {line["id"]: line for line in lines(out / "edits.jsonl")}
    two, one = edits["two"], edits["one"]
    assert two["status"] == one["status"] == "ok"
    folder = run_m["bench"].parent
    assert two["images"] == [str(folder / "img" / "person.png"), str(folder / "img" / "hat.png")]
    assert json.loads(two["call_arguments"]["image"]) == [{"width": 64, "height": 48}, {"width": 32, "height": 64}]
    # the sample's own extras are merged over the run's settings and recorded with its edit
    assert two["sample_extras"] == {"width": 48, "height": 32} and (two["width"], two["height"]) == (48, 32)
    assert (one["width"], one["height"]) == (32, 32) and "sample_extras" not in one
    assert one["images"] == [str(folder / "img" / "person.png")]


def test_run_m_manifest_names_the_fused_lora(run_m):
    manifest = json.loads((run_m["out"] / "manifest.json").read_text())
    assert manifest["config"]["editor"]["loras"] == [{"path": str(run_m["lora"]), "scale": 0.5}]
    (lora,) = json.loads(manifest["editor"]["model"]["runtime"]["lora"])
    assert lora["scale"] == 0.5 and lora["file"] == "lora.safetensors"
    # the resume check compares the adapter file's content, not only its path
    assert manifest["edit_settings"]["loras"] == [{"path": str(run_m["lora"]), "scale": 0.5, "sha256": lora["sha256"]}]


def test_run_m_report_shows_both_inputs(run_m):
    report = (run_m["out"] / "report.html").read_text()
    (row,) = [row for row in report.split("<tr>") if "<b>two</b>" in row]
    assert row.count("data:image/jpeg") == 3  # picture 1, picture 2, the edit
    (single,) = [row for row in report.split("<tr>") if "<b>one</b>" in row]
    assert single.count("data:image/jpeg") == 2
    assert "extras {&quot;height&quot;: 32, &quot;width&quot;: 48}" in report


def test_a_rerun_with_another_lora_scale_is_refused(run_m):
    args = ["run", "--benchmark", str(run_m["bench"]), "--editor-model", str(TINY_2511), "--editors", "1",
            "--no-score", "--steps", "2", "--guidance", "1", "--size", "32", "--output", str(run_m["out"])]
    refused = subprocess.run(orchestrator_cmd(*args, "--lora", f"{run_m['lora']}:0.7"), cwd=REPO,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
    assert "loras" in refused.stderr and "0.5" in refused.stderr and "0.7" in refused.stderr


def test_validate_names_a_missing_second_image(tmp_path):
    bench = write_native(tmp_path, [{"id": "x", "images": ["a.png", "gone.png"], "instruction": "i", "category": "c"}],
                         {"a.png": png_bytes()})
    done = subprocess.run(orchestrator_cmd("validate", str(bench)), cwd=REPO, capture_output=True, text=True)
    assert done.returncode != 0
    assert "sample 'x': images[1]: image not found" in done.stderr


def test_a_fleet_with_different_loras_is_refused_naming_the_adapter(tmp_path):
    lora = make_lora(TINY_EDITOR, tmp_path / "a.safetensors")
    editors = []
    for name, extra in (("plain", []), ("lora", ["--lora", str(lora)])):
        port = free_port()
        argv = [venv_python("editor"), "-m", "editor_service", "--model", str(TINY_EDITOR), "--device", "cpu",
                "--port", str(port), "--threads", "1", *extra]
        editors.append(ServiceProcess(name, argv, port, log_path=tmp_path / f"{name}.log").start())
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda e: e.wait_healthy(240), editors))
        # two samples: both editors are used (and so compared)
        bench = write_native(tmp_path / "b", [{"id": f"s{i}", "image": "a.png", "instruction": "i", "category": "c"}
                                              for i in range(2)], {"a.png": png_bytes()})
        done = subprocess.run(orchestrator_cmd(
            "run", "--benchmark", str(bench), "--fleet", "static", "--editor-address", editors[0].address,
            "--editor-address", editors[1].address, "--no-score", "--steps", "2", "--size", "32",
            "--output", str(tmp_path / "out")),
            cwd=REPO, capture_output=True, text=True, timeout=120)
        # a static fleet's editors are started elsewhere: they must run the adapters the config names
        other = subprocess.run(orchestrator_cmd(
            "run", "--benchmark", str(bench), "--fleet", "static", "--editor-address", editors[1].address,
            "--no-score", "--steps", "2", "--size", "32", "--lora", f"{lora}:0.5", "--output", str(tmp_path / "out2")),
            cwd=REPO, capture_output=True, text=True, timeout=120)
    finally:
        for editor in editors:
            editor.stop(grace=20)
    assert done.returncode != 0
    assert "do not run the model the same way" in done.stderr and "'lora'" in done.stderr
    assert not (tmp_path / "out" / "edits").exists()
    assert other.returncode != 0
    assert "the editors run LoRA(s)" in other.stderr and "0.5" in other.stderr
    assert not (tmp_path / "out2" / "edits").exists()


def test_a_single_image_editor_records_multi_image_samples_as_failed_edits(tmp_path):
    bench = write_native(tmp_path / "b", [
        {"id": "two", "images": ["a.png", "a.png"], "instruction": "Combine them", "category": "multi"},
        {"id": "one", "image": "a.png", "instruction": "Make it red", "category": "single"},
    ], {"a.png": png_bytes()})
    out = tmp_path / "out"
    done = subprocess.run(orchestrator_cmd(
        "run", "--benchmark", str(bench), "--editor-model", str(TINY_EDITOR), "--editors", "1", "--no-score",
        "--steps", "2", "--size", "32", "--output", str(out), "--progress", "plain"),
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 3, done.stdout + done.stderr  # one of the two samples failed
    assert "1 sample(s) have more input images than the editors take (1, QwenImageEditPipeline)" in done.stdout
    edits = {line["id"]: line for line in lines(out / "edits.jsonl")}
    assert edits["one"]["status"] == "ok"
    two = edits["two"]
    assert two["status"] == "failed" and two["final"] is True and two["code"] == "INVALID_ARGUMENT"
    assert "2 input images, but QwenImageEditPipeline takes at most 1 per edit" in two["error"]
