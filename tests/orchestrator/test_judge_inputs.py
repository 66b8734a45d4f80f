"""What a suite's judge is sent besides the edit: every input image, reference images and the
sample's own text variables; and their files validated before anything starts."""

from __future__ import annotations

import pytest
from PIL import Image

from editfleet_common.images import encode_png
from orchestrator.benchmark import BenchmarkError, Sample
from suites.shared.samples import validate
from orchestrator.scoring import ScoreItem, build_score_request


def _png(path, colour):
    path.write_bytes(encode_png(Image.new("RGB", (16, 16), colour)))
    return path


def test_the_request_carries_inputs_references_and_variables(tmp_path):
    first, second = _png(tmp_path / "a.png", (255, 0, 0)), _png(tmp_path / "b.png", (0, 255, 0))
    ref, edit = _png(tmp_path / "gt.png", (0, 0, 255)), _png(tmp_path / "edit.png", (9, 9, 9))
    sample = Sample("s1", "physics", "melt the ice", description="ice on a table", image_path=first,
                    more_images=[second], reference_images=[ref], variables={"explain_en": "ice melts above 0 C"})
    request = build_score_request(ScoreItem(0, sample, {"sha256": "x"}, edit), "mini-yesno")
    assert request.source_image == first.read_bytes() and list(request.more_source_images) == [second.read_bytes()]
    assert list(request.reference_images) == [ref.read_bytes()] and request.edited_image == edit.read_bytes()
    assert dict(request.variables) == {"original_description": "ice on a table", "explain_en": "ice melts above 0 C"}
    assert sample.record()["reference_paths"] == [str(ref)]


def test_a_missing_or_broken_reference_image_is_named_before_anything_starts(tmp_path):
    source = _png(tmp_path / "a.png", (255, 0, 0))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    samples = [Sample("ok", "c", "x", image_path=source, reference_images=[source]),
               Sample("gone", "c", "x", image_path=source, reference_images=[tmp_path / "nope.png"], where="b.json[1]"),
               Sample("bad", "c", "x", image_path=source, reference_images=[source, tmp_path / "broken.png"],
                      where="b.json[2]")]
    with pytest.raises(BenchmarkError) as err:
        validate(samples)
    text = str(err.value)
    assert "2 problem(s)" in text
    assert "b.json[1]: sample 'gone': reference_images[0]: image not found" in text
    assert "b.json[2]: sample 'bad': reference_images[1]" in text
