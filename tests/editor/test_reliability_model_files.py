"""A model folder is data: loading one runs none of its code and unpickles nothing, unless the user
opted in with --trust-remote-code. Each refusal is checked against a positive control that shows
the planted code really would run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from editor_service.__main__ import parse_args
from editor_service.pipeline import EditPipeline


class _Planted:
    """Unpickling this creates a file: evidence that pickled code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def marks(tmp_path) -> Path:
    path = tmp_path / "marks"
    path.mkdir()
    return path


def custom_code_model(tiny_model: Path, root: Path, marks: Path) -> Path:
    """The tiny model whose model_index.json names a pipeline class in a .py file of the folder."""
    folder = root / "custom-code"
    shutil.copytree(tiny_model, folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["_class_name"] = ["pipeline_planted", "PlantedPipeline"]
    (folder / "model_index.json").write_text(json.dumps(index))
    (folder / "pipeline_planted.py").write_text(
        f"open({str(marks / 'code-ran')!r}, 'w').write('ran')\n"
        "from diffusers import QwenImageEditPipeline as PlantedPipeline\n"
    )
    return folder


def pickle_only_model(tiny_model: Path, root: Path, marks: Path) -> Path:
    """The tiny model whose transformer weights are a pickle (.bin) that runs code when unpickled."""
    folder = root / "pickle-only"
    shutil.copytree(tiny_model, folder)
    for weights in (folder / "transformer").glob("*.safetensors*"):
        weights.unlink()
    torch.save({"weight": _Planted(marks / "pickle-ran")}, folder / "transformer" / "diffusion_pytorch_model.bin")
    return folder


def test_trust_remote_code_is_off_unless_asked():
    assert parse_args(["--model", "m"]).trust_remote_code is False
    assert parse_args(["--model", "m", "--trust-remote-code"]).trust_remote_code is True


def test_custom_code_in_the_model_folder_is_refused_and_not_run(tiny_model, tmp_path, marks):
    folder = custom_code_model(tiny_model, tmp_path, marks)
    with pytest.raises(ValueError, match="trust_remote_code"):
        EditPipeline.load(str(folder), threads=1)
    assert not (marks / "code-ran").exists()
    # positive control: opted in, the very same folder's code does run
    EditPipeline.load(str(folder), threads=1, trust_remote_code=True)
    assert (marks / "code-ran").exists()


def test_pickled_weights_are_not_unpickled_with_code(tiny_model, tmp_path, marks):
    folder = pickle_only_model(tiny_model, tmp_path, marks)
    with pytest.raises(Exception) as refused:
        EditPipeline.load(str(folder), threads=1)
    assert "diffusion_pytorch_model.bin" in str(refused.value)
    assert not (marks / "pickle-ran").exists()
    # positive control: an unrestricted unpickler would have run the planted call
    torch.load(folder / "transformer" / "diffusion_pytorch_model.bin", weights_only=False)
    assert (marks / "pickle-ran").exists()
