"""A judge folder is data: loading one runs none of its code (auto_map) and unpickles nothing,
unless the user opted in with --trust-remote-code. Each refusal is checked against a positive
control that shows the planted code really would run."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import torch

from editfleet_common.launch import REPO_ROOT, free_port, venv_python
from scorer_service.__main__ import build_parser


class _Planted:
    """Unpickling this creates a file: evidence that pickled code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def planted_judge(tiny_judge_dir: Path, root: Path) -> tuple[Path, Path]:
    """The tiny judge with only pickled weights and a config whose auto_map names code in the folder."""
    folder, marks = root / "planted-judge", root / "marks"
    marks.mkdir()
    shutil.copytree(tiny_judge_dir, folder)
    for weights in folder.glob("*.safetensors*"):
        weights.unlink()
    torch.save({"weight": _Planted(marks / "pickle-ran")}, folder / "pytorch_model.bin")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "planted.PlantedConfig", "AutoModelForImageTextToText": "planted.PlantedModel",
                          "AutoProcessor": "planted.PlantedProcessor"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "planted.py").write_text(
        f"open({str(marks / 'code-ran')!r}, 'w').write('ran')\n"
        "from transformers import Qwen3VLConfig as PlantedConfig, Qwen3VLForConditionalGeneration as PlantedModel\n"
        "from transformers import Qwen3VLProcessor as PlantedProcessor\n"
    )
    return folder, marks


def test_trust_remote_code_is_off_unless_asked():
    assert build_parser().parse_args(["--model", "m"]).trust_remote_code is False
    assert build_parser().parse_args(["--model", "m", "--trust-remote-code"]).trust_remote_code is True


def test_planted_code_and_pickle_are_refused_by_the_service(tiny_judge_dir, tmp_path):
    folder, marks = planted_judge(tiny_judge_dir, tmp_path)
    done = subprocess.run(
        [venv_python("scorer"), "-m", "scorer_service", "--model", str(folder), "--port", str(free_port()),
         "--threads", "1"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"error: cannot load judge {str(folder)!r}: UnpicklingError: Weights only load failed" in done.stderr
    assert not (marks / "code-ran").exists() and not (marks / "pickle-ran").exists()


def test_positive_controls_the_planted_code_would_run(tiny_judge_dir, tmp_path):
    folder, marks = planted_judge(tiny_judge_dir, tmp_path)
    # In a process of its own: loading remote code registers the model classes for auto-saving
    # process-wide, which would change how later tests in this session save models.
    opted_in = subprocess.run(
        [venv_python("scorer"), "-c",
         "import sys; from scorer_service.judge import Judge; Judge.load(sys.argv[1], trust_remote_code=True)",
         str(folder)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=180)
    assert opted_in.returncode != 0  # opted in: the folder's code runs, then the pickle is still refused
    assert (marks / "code-ran").exists() and not (marks / "pickle-ran").exists()
    torch.load(folder / "pytorch_model.bin", weights_only=False)
    assert (marks / "pickle-ran").exists()
