"""Images the judge refuses are named by their request field and said as their size against the limit
and its flag (issue 27): a 12000² PNG used to be Pillow's "could be decompression bomb DOS attack"
text, an unreadable one "<_io.BytesIO object at 0x...>". Through the session's real scorer (tiny judge),
unary and in a stream (where the result names the sample)."""

from __future__ import annotations

import grpc
import pytest

from editfleet_common.channels import ServiceError
from scorer_service.client import ScorerClient, status_name
from tests.png_samples import png_claiming

from .conftest import png

OVER = "12000x12000 = 144000000 pixels exceeds the limit of 40000000 (--max-input-pixels)"


def fields(**overrides) -> dict:
    out = dict(edited_image=png((48, 48)), source_image=png((48, 48)), instruction="make it green",
               category="physical", protocol="seed-0-10", variables={"original_description": "a red square"})
    out.update(overrides)
    return out


def test_a_12000_square_image_and_an_unreadable_one(scorer):
    huge, garbage = png_claiming(12000, 12000), b"\0not an image at all"
    with ScorerClient(scorer.address) as client:
        with pytest.raises(ServiceError) as err:
            client.score("huge", **fields(edited_image=huge), timeout=30)
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert f"edited_image: {OVER}" in err.value.details and "bomb" not in err.value.details
        with pytest.raises(ServiceError) as err:
            client.score("garbage", **fields(source_image=garbage), timeout=30)
        assert "source_image: cannot decode image (not an image format Pillow reads" in err.value.details
        assert "BytesIO" not in err.value.details
        # a reference no question shows is read from its header only, and refused the same way
        results = {r.sample_id: r for r in client.score_many([
            dict(sample_id="ref-huge", **fields(reference_images=[png((8, 8)), huge])),
            dict(sample_id="fine", **fields())])}
        assert status_name(results["ref-huge"]) == "INVALID"
        assert f"reference_images[1]: {OVER}" in results["ref-huge"].error
        assert status_name(results["fine"]) != "INVALID"
