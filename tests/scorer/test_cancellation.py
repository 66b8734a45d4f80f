"""A caller whose deadline passes while its request is still being decoded: the sample must not
reach the device (a real in-process gRPC server; the judge is replaced by a batch function that
records what it ran, so the test needs no model)."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from PIL import Image

from editfleet.v1 import scorer_pb2_grpc
from editfleet_common.channels import make_channel
from editfleet_common.grpc_server import ServiceHost
from editfleet_common.images import encode_png
from scorer_service.batcher import Batcher
from scorer_service.client import make_request
from scorer_service.samples import STATUS_OK, ScoreOutcome
from suites.protocols import load_protocols
from scorer_service.server import SERVICE_NAME, ScorerService


class Recorder:
    def __init__(self):
        self.ran: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, samples):
        with self.lock:
            self.ran.extend(s.sample_id for s in samples)
        return [ScoreOutcome(s.sample_id, STATUS_OK) for s in samples]


@pytest.fixture
def served():
    registry = load_protocols()
    recorder = Recorder()
    batcher = Batcher(recorder, max_batch=4, max_wait_s=0.05).start()
    service = ScorerService(registry, max_message_bytes=64 << 20, max_image_pixels=40_000_000)
    service.attach(object(), batcher)  # the handlers only need the batcher
    host = ServiceHost(service_names=[SERVICE_NAME], max_workers=4, grace_s=1)
    host.add(scorer_pb2_grpc.add_ScorerServicer_to_server, service)
    host.start()
    host.set_serving(True)
    channel = make_channel(f"127.0.0.1:{host.port}")
    yield scorer_pb2_grpc.ScorerStub(channel), recorder
    channel.close()
    host.stop()
    batcher.stop(5)


def test_a_unary_call_whose_deadline_passed_during_decoding_never_runs(served):
    stub, recorder = served
    # a large (but cheap to send) image: decoding it outlasts the caller's deadline
    big = encode_png(Image.new("RGB", (6000, 6000), (120, 30, 30)))
    request = make_request("late", source_image=big, edited_image=big, instruction="make it red",
                           category="physical", variables={"original_description": "a red car"})
    with pytest.raises(grpc.RpcError) as info:
        stub.Score(request, timeout=0.05)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(3)  # room for the decode to finish and a batch to form
    assert recorder.ran == [], "a sample whose caller had gone still ran on the device"
