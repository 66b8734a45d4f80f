"""Open-ended streams (health Watch, reflection) cannot take every reserved handler thread.

A real ServiceHost on loopback, sized as the services size it (--max-streams plus the reserve), with
its one long-running slot taken. Each Watch or reflection stream holds a reserved thread for as long
as its client keeps it open; past the cap they are refused, so Health/Check still answers.
"""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from editfleet_common.channels import health_status
from editfleet_common.grpc_server import RESERVED_HANDLER_THREADS, ServiceHost

HOLD = "/test.Hold/Hold"
CAP = RESERVED_HANDLER_THREADS // 2


def _hold(request, context):
    yield b"held"
    while context.is_active():  # a long call: keeps its handler thread until the client goes
        time.sleep(0.05)


@pytest.fixture
def host():
    host = ServiceHost(service_names=["test.Hold"], long_running_methods=[HOLD], max_streams=1, grace_s=0)
    handlers = {"Hold": grpc.unary_stream_rpc_method_handler(_hold)}
    host.add(lambda servicer, server: server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Hold", servicer),)), handlers)
    host.start()
    host.set_serving(True)
    yield host
    host.stop()


def _watch(channel):
    return health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=60)


def _reflection(channel, release: threading.Event):
    """A reflection stream the client keeps open until `release`."""

    def requests():
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        release.wait()

    return reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(requests(), timeout=60)


def _assert_refused(call):
    with pytest.raises(grpc.RpcError) as caught:
        next(call)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"ServerReflectionInfo/Watch calls already open; the limit is {CAP}" in caught.value.details()
    assert "Health/Check" in caught.value.details()


def test_open_ended_streams_are_capped_and_health_check_still_answers(host):
    release = threading.Event()
    channel = grpc.insecure_channel(f"127.0.0.1:{host.port}")
    opened = []
    try:
        held = channel.unary_stream(HOLD)(b"", timeout=60)
        opened.append(held)
        assert next(held) == b"held"  # the one long-running slot is taken: only the reserve is left

        reflecting = _reflection(channel, release)
        opened.append(reflecting)
        assert "grpc.health.v1.Health" in [s.name for s in next(reflecting).list_services_response.service]
        watches = []
        for _ in range(CAP - 1):
            watches.append(_watch(channel))
            opened.append(watches[-1])
            assert next(watches[-1]).status == health_pb2.HealthCheckResponse.SERVING  # its handler runs

        # a whole reserve's worth more, all at once: every one refused, none left waiting for a thread
        refused = [_watch(channel) for _ in range(RESERVED_HANDLER_THREADS)] + [_reflection(channel, release)]
        opened.extend(refused)
        for call in refused:
            _assert_refused(call)

        for _ in range(3):
            started = time.monotonic()
            assert health_status(channel, timeout=1.0) == "SERVING"
            assert time.monotonic() - started < 1.0

        # a cancelled Watch gives its slot back (once its handler has returned)
        watches[0].cancel()
        deadline = time.monotonic() + 10
        while True:
            again = _watch(channel)
            opened.append(again)
            try:
                assert next(again).status == health_pb2.HealthCheckResponse.SERVING
                break
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        _assert_refused(_watch(channel))  # and the cap holds again
    finally:
        for call in opened:
            call.cancel()
        release.set()
        channel.close()


def test_the_cap_is_half_the_threads_left_beside_the_long_calls():
    hosts = [
        ServiceHost(service_names=["test.Hold"], long_running_methods=[HOLD], max_streams=16, grace_s=0),
        ServiceHost(service_names=["test.Frame"], max_workers=4, grace_s=0),  # no long calls: all are reserve
    ]
    try:
        assert [(h.stream_limit.limit, h.open_stream_limit.limit) for h in hosts] == [(16, CAP), (16, 2)]
    finally:
        for h in hosts:
            h.server.stop(0)
