"""Health is answered while every Edit slot is taken: a real editor with --max-streams 1 on loopback.

An Edit holds a gRPC handler thread for its whole life; without the cap, enough open edits would
leave Health/Check queued behind them and the pod would look dead to its probes.
"""

from __future__ import annotations

import time

import grpc
import pytest

from editor_service.__main__ import parse_args
from editor_service.client import EditError, Progress

from .conftest import photo_like_png, start_editor


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    proc = start_editor(tmp_path_factory.mktemp("editor-reserve"), "--max-streams", "1",
                        "--min-steps", "2", "--max-steps", "200", "--grace", "5")
    try:
        proc.wait_healthy(timeout=240)
        yield proc
    finally:
        proc.stop(grace=20)


def test_with_every_edit_slot_taken_health_answers_and_one_more_edit_is_refused(client):
    held = client.stream(photo_like_png(), "Make the square red", steps=200, seed=1, width=32, height=32,
                         sample_id="held")
    try:
        assert isinstance(next(iter(held)), Progress)  # running on the device: its slot is taken

        started = time.monotonic()
        assert client.health(timeout=1.0) == "SERVING"
        assert time.monotonic() - started < 1.0
        assert client.info().max_queue == 4  # GetInfo is not capped either

        with pytest.raises(EditError) as refused:
            client.edit(photo_like_png(), "Make the square red", steps=2, width=32, height=32, timeout=30)
        assert refused.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "1 Edit calls already open; the limit is --max-streams 1" in refused.value.details
        assert refused.value.retryable
    finally:
        held.cancel()

    # the cancelled edit stops within a step and gives its slot back
    deadline = time.monotonic() + 30
    while True:
        try:
            result = client.edit(photo_like_png(), "Make the square red", steps=2, seed=2, width=32, height=32,
                                 sample_id="after", timeout=60)
            break
        except EditError as exc:
            if exc.code != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert (result.sample_id, result.width, result.height) == ("after", 32, 32)


def test_max_streams_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--model", "m", "--max-streams", "0"])
    assert "--max-streams: 0: need >= 1" in capsys.readouterr().err  # the common flags: one message
    assert parse_args(["--model", "m"]).max_streams == 16
