"""The reference-metrics backend (judge.backend metrics): known values of its arithmetic, and the real
CLIP and DINO architectures (tiny random weights, tools/make_tiny_clip.py, make_tiny_dino.py) through a
real scorer server, checked against numbers the official scripts' arithmetic gave on the same inputs
and weights (MagicBrush evaluation/image_eval.py re-typed outside the repository: torchvision
transforms, L1Loss/MSELoss, scipy's cosine on float32 vectors; CLIP-dir as InstructPix2Pix's)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from editfleet_common.images import encode_png
from editfleet_common.launch import REPO_ROOT, ServiceProcess, free_port, venv_python
from scorer_service.backends.metrics import arithmetic
from scorer_service.client import ScorerClient, info_to_dict, result_to_dict

# image_eval.py's arithmetic on the tiny backbones (seed 0) and the images below (numpy seed 7):
# /tmp/official/mb_arith.py, run outside the repository
OFFICIAL = {"l1": 0.2867119610309601, "l2": 0.11945727467536926, "clip_i": 0.9890648722648621,
            "dino": 0.9957390427589417, "clip_t": -0.11057937145233154, "clip_dir": 0.007772576063871384}
CAPTION_IN, CAPTION_OUT = "an apple on a table", "a red apple on a table"


def _tiny(name: str, tool: str, tmp_path_factory) -> Path:
    built = REPO_ROOT / "models" / name
    if (built / ".done").exists():
        return built
    out = tmp_path_factory.mktemp(name)
    subprocess.run([sys.executable, str(REPO_ROOT / "tools" / tool), str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def metrics_scorer(tmp_path_factory):
    clip = _tiny("tiny-clip", "make_tiny_clip.py", tmp_path_factory)
    dino = _tiny("tiny-dino", "make_tiny_dino.py", tmp_path_factory)
    port = free_port()
    argv = [venv_python("scorer"), "-m", "scorer_service", "--backend", "metrics", "--model", str(clip),
            "--dino-model", str(dino), "--port", str(port), "--threads", "1", "--max-batch", "4",
            "--max-wait-ms", "300", "--encoder-batch", "4", "--grace", "20"]
    process = ServiceProcess("scorer", argv, port, log_path=tmp_path_factory.mktemp("logs") / "scorer.log").start()
    try:
        process.wait_healthy(120)
        yield process
    finally:
        process.stop(grace=20)


def _images():
    rng = np.random.default_rng(7)
    make = lambda w, h: Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))  # noqa: E731
    return make(80, 60), make(64, 48), make(64, 48)  # edited, reference, source


def test_pixel_distances_known_values():
    black = Image.new("RGB", (2, 2), (0, 0, 0))
    one_white = black.copy()
    one_white.putpixel((1, 0), (255, 255, 255))
    assert arithmetic.pixel_distance(one_white, black, "l1") == 0.25
    assert arithmetic.pixel_distance(one_white, black, "l2") == 0.25
    red = Image.new("RGB", (4, 4), (255, 0, 0))
    assert arithmetic.pixel_distance(red, black, "l1") == pytest.approx(1 / 3, abs=1e-7)
    # resized to the reference's size first (bicubic: a flat image stays flat)
    assert arithmetic.pixel_distance(Image.new("RGB", (7, 3), (51, 51, 51)), black, "l1") == pytest.approx(0.2, abs=1e-7)
    assert arithmetic.pixel_distance(Image.new("RGB", (7, 3), (51, 51, 51)), black, "l2") == pytest.approx(0.04, abs=1e-7)
    with pytest.raises(ValueError, match="l1 or l2"):
        arithmetic.pixel_distance(red, black, "l3")


def test_similarity_arithmetic_known_values():
    t = torch.tensor
    assert arithmetic.cosine(t([1.0, 0.0]), t([0.0, 1.0])) == 0.0
    assert arithmetic.cosine(t([1.0, 2.0, 2.0]), t([2.0, 1.0, 2.0])) == pytest.approx(8 / 9, abs=1e-15)
    assert arithmetic.cosine(t([3.0, 4.0]), t([-6.0, -8.0])) == -1.0
    assert arithmetic.cosine(t([0.0, 0.0]), t([1.0, 1.0])) == 0.0  # torch's eps clamp: 0, not NaN
    e1, e2 = t([1.0, 0.0, 0.0]), t([0.0, 1.0, 0.0])
    # CLIP-dir normalises each embedding first: the lengths do not matter
    assert arithmetic.direction(5 * e1, 0.5 * e2, e1, 3 * e2) == pytest.approx(1.0, abs=1e-15)
    assert arithmetic.direction(e1, e2, e2, e1) == pytest.approx(-1.0, abs=1e-15)
    assert arithmetic.direction(e1, e1, e1, e2) == 0.0  # no change in the image: 0 (eps clamp)


def test_metrics_through_a_real_scorer_match_the_official_arithmetic(metrics_scorer):
    edited, reference, source = (encode_png(img) for img in _images())
    client = ScorerClient(metrics_scorer.address, timeout=120)
    try:
        info = info_to_dict(client.info())
        assert info["model"]["model_class"] == "CLIPModel+ViTModel"
        assert info["model"]["runtime"]["backend"] == "metrics"
        magicbrush = dict(edited_image=edited, source_image=source, reference_images=[reference], protocol="magicbrush",
                          instruction="make it red", category="turn1", variables={"output_caption": CAPTION_OUT})
        emu = dict(edited_image=edited, source_image=source, protocol="emu_edit", instruction="make it red",
                   category="color", variables={"input_caption": CAPTION_IN, "output_caption": CAPTION_OUT})
        results = {r.sample_id: result_to_dict(r) for r in client.score_many(
            [{"sample_id": "mb", **magicbrush}, {"sample_id": "emu", **emu}, {"sample_id": "mb-again", **magicbrush},
             {"sample_id": "viescore", "edited_image": edited, "source_image": source, "protocol": "viescore",
              "instruction": "x", "category": "x"}])}
        alone = result_to_dict(client.score("mb-alone", **magicbrush))
    finally:
        client.close()
    mb = results["mb"]
    assert mb["status"] == "OK", mb["error"]
    assert list(mb["sub_scores"]) == ["l1", "l2", "clip_i", "dino", "clip_t"]
    for name, value in mb["sub_scores"].items():
        assert value == pytest.approx(OFFICIAL[name], abs=2e-6), name
    assert mb["score"] == mb["sub_scores"]["l1"]  # the headline: the first metric
    assert json.loads(mb["raw_responses"][0]) == {"score": mb["sub_scores"]["l1"], "metric": "l1"}
    # deterministic: the same values alone, in another batch, and again
    assert alone["sub_scores"] == mb["sub_scores"] == results["mb-again"]["sub_scores"]
    emu_result = results["emu"]
    assert emu_result["status"] == "OK", emu_result["error"]
    assert list(emu_result["sub_scores"]) == ["clip_dir", "clip_i", "clip_out", "l1", "dino"]
    assert emu_result["sub_scores"]["clip_dir"] == pytest.approx(OFFICIAL["clip_dir"], abs=2e-6)
    assert emu_result["sub_scores"]["clip_out"] == mb["sub_scores"]["clip_t"]  # the same image and caption
    # a protocol written for a language model: the sample fails naming why, nothing is guessed
    vie = results["viescore"]
    assert vie["status"] == "ERROR" and "judge.backend metrics answers questions whose one score names a metric" in vie["error"]
