"""Bad input against a real scorer (tiny random judge): a clear INVALID_ARGUMENT each time (or an
INVALID result inside a stream), odd but valid images and text are judged, the server keeps serving.
The exhaustive decoder cases run in-process in tests/orchestrator/test_reliability_inputs.py."""

from __future__ import annotations

import os

import grpc
import pytest
from PIL import Image

from editfleet_common.channels import ServiceError
from scorer_service.client import ScorerClient, make_request, status_name
from tests.png_samples import encode, png_claiming

from .conftest import png


def request(sample_id, **overrides):
    fields = dict(edited_image=png((48, 48), (20, 200, 20)), source_image=png((48, 48)), instruction="make it green",
                  category="physical", protocol="seed-0-10", variables={"original_description": "a red square"})
    fields.update(overrides)
    return make_request(sample_id, **fields)


WHOLE = png((64, 64), (10, 20, 30))
BAD = {
    "random bytes": (dict(edited_image=b"\0" + os.urandom(200)), "edited_image: cannot decode"),
    "truncated png": (dict(edited_image=WHOLE[: len(WHOLE) // 2]), "edited_image: cannot decode"),
    "huge header claim": (dict(source_image=png_claiming(100_000, 100_000)), "source_image:"),
    "whitespace instruction": (dict(instruction="  "), "edit_instruction"),
}


def test_bad_inputs_are_invalid_argument_and_the_scorer_keeps_serving(scorer):
    with ScorerClient(scorer.address) as client:
        for name, (overrides, message) in BAD.items():
            with pytest.raises(ServiceError) as err:
                result = client.score(request(name, **overrides), timeout=60)
                pytest.fail(f"{name}: judged ({status_name(result)}) instead of refused")
            assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT, (name, err.value)
            assert message in err.value.details, (name, err.value.details)
        # the same inputs inside one stream: each an INVALID result, the good ones judged
        items = [request(name, **overrides) for name, (overrides, _) in BAD.items()] + [request("good")]
        results = {r.sample_id: r for r in client.score_many(iter(items), timeout=120)}
        assert {k: status_name(v) for k, v in results.items()} == {**{k: "INVALID" for k in BAD}, "good": "PARSE_FAILED"}


def test_odd_images_and_text_are_judged(scorer):
    odd = {
        "cmyk jpeg": encode(Image.new("CMYK", (40, 30), (0, 200, 0, 0)), "JPEG"),
        "16-bit grey": encode(Image.new("I;16", (30, 40), 40000)),
        "LA": encode(Image.new("LA", (32, 32), (90, 100))),
        "1-bit": encode(Image.new("1", (33, 17), 1)),
        "palette+alpha": encode(Image.new("P", (20, 20), 3), transparency=3),
    }
    items = [request(name, edited_image=data) for name, data in odd.items()]
    items.append(request("non-ascii", instruction="把方块变成绿色 🟩", category="物理",
                         variables={"original_description": "un carré rouge"}))
    items.append(request("long", instruction="make the square green and shiny " * 200))
    with ScorerClient(scorer.address) as client:
        results = {r.sample_id: r for r in client.score_many(iter(items), timeout=300)}
    assert set(results) == {r.sample_id for r in items}
    for sample_id, result in results.items():
        # judged: the random judge never parses, but the reply and the expected score are there
        assert status_name(result) == "PARSE_FAILED", (sample_id, result.error)
        assert result.raw_responses and result.HasField("expected_score"), sample_id
