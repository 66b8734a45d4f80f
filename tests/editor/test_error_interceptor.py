"""The shared ErrorInterceptor on a real in-process server: domain errors become their codes, and a
handler that aborts with a code of its own keeps that code (it is not turned into INTERNAL)."""

from __future__ import annotations

import grpc
import pytest

from editfleet_common.errors import InvalidInput
from editfleet_common.grpc_server import ServiceHost


def _unary(fn):
    return grpc.unary_unary_rpc_method_handler(fn, request_deserializer=None, response_serializer=None)


def _aborts(request, context):
    context.abort(grpc.StatusCode.FAILED_PRECONDITION, "not now")


def _raises_domain_error(request, context):
    raise InvalidInput("field x: bad")


def _raises_bug(request, context):
    raise KeyError("oops")


@pytest.fixture
def stub_call():
    host = ServiceHost(service_names=["test.Frame"], max_workers=2, grace_s=0)
    handlers = {"Aborts": _unary(_aborts), "Domain": _unary(_raises_domain_error), "Bug": _unary(_raises_bug)}
    host.add(lambda servicer, server: server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Frame", servicer),)), handlers)
    host.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{host.port}")

    def call(method):
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(f"/test.Frame/{method}")(b"", timeout=10)
        return info.value.code(), info.value.details()

    yield call
    channel.close()
    host.stop()


def test_codes_from_domain_errors_bugs_and_explicit_aborts(stub_call):
    assert stub_call("Domain") == (grpc.StatusCode.INVALID_ARGUMENT, "field x: bad")
    code, details = stub_call("Bug")
    assert code == grpc.StatusCode.INTERNAL and "KeyError" in details
    assert stub_call("Aborts") == (grpc.StatusCode.FAILED_PRECONDITION, "not now")
