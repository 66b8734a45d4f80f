"""Health is answered while every Score/ScoreStream slot is taken: a real scorer (tiny judge) with
--max-streams 2 on loopback.

A stream holds a gRPC handler thread for as long as its client keeps it open; without the cap,
enough open streams would leave Health/Check queued behind them and the pod would look dead.
"""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from editfleet_common.channels import ServiceError, health_status
from editfleet_common.grpc_server import RESERVED_HANDLER_THREADS
from scorer_service.__main__ import build_parser
from scorer_service.client import ScorerClient, make_request, status_name

from .conftest import png, start_scorer

LIMIT_DETAILS = "2 Score/ScoreStream calls already open; the limit is --max-streams 2"


def unknown_protocol_request(sample_id: str):
    # refused by validation with an INVALID result, without a trip to the judge
    return make_request(sample_id, edited_image=png(), instruction="x", protocol="no-such-protocol")


def open_stream(client: ScorerClient, name: str, release: threading.Event):
    """A stream whose request iterator does not end until `release`: the call stays open."""

    def requests():
        yield unknown_protocol_request(name)
        release.wait()

    return client.score_many(requests())


def test_with_every_stream_slot_taken_health_answers_and_more_calls_are_refused(tiny_judge_dir, tmp_path):
    process = start_scorer(tiny_judge_dir, tmp_path / "scorer.log", "--max-streams", "2")
    release = threading.Event()
    held = []
    try:
        with ScorerClient(process.address) as client:
            for i in range(2):
                held.append(open_stream(client, f"held-{i}", release))
                assert status_name(next(held[-1])) == "INVALID"  # its handler runs: a slot is taken

            # more refused streams than reserved threads, all at once: refusals hold no thread for long
            refused = [open_stream(client, f"over-{i}", release) for i in range(RESERVED_HANDLER_THREADS + 4)]
            for call in refused:
                with pytest.raises(ServiceError) as caught:
                    next(call)
                assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert LIMIT_DETAILS in caught.value.details
            with pytest.raises(ServiceError) as caught:  # unary Score counts too
                client.score(unknown_protocol_request("unary"), timeout=10)
            assert caught.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED

            started = time.monotonic()
            assert health_status(client.channel, timeout=1.0) == "SERVING"
            assert time.monotonic() - started < 1.0
            assert client.info().max_batch_size == 4  # GetInfo is not capped

            for call in held:
                call.cancel()
            release.set()

            # the cancelled streams' handlers return and give their slots back
            request = make_request("after", edited_image=png(), source_image=png(), instruction="make it green",
                                   protocol="seed-0-10", variables={"original_description": "a red square"})
            deadline = time.monotonic() + 20
            while True:
                try:
                    results = list(client.score_many([request], timeout=60))
                    break
                except ServiceError as exc:
                    if exc.code != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            assert [r.sample_id for r in results] == ["after"]
            assert status_name(results[0]) in {"OK", "PARSE_FAILED"}  # the judge ran (random weights)
    finally:
        release.set()
        process.stop(grace=20)


def test_max_streams_must_be_positive(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--model", "m", "--max-streams", "0"])
    assert "--max-streams: 0: need >= 1" in capsys.readouterr().err
    assert build_parser().parse_args(["--model", "m"]).max_streams == 32
