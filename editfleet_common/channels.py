"""Client channels: the same size limits as the servers, optional (m)TLS, health checks, and the one
error both clients raise for a call that ends with a gRPC status (`ServiceError`)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .grpc_server import DEFAULT_MAX_MESSAGE_BYTES, channel_options


# Worth another try elsewhere or later; every other code means the request itself is at fault
# (INVALID_ARGUMENT, ...) or the service is broken (INTERNAL).
RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
    }
)


class ServiceError(Exception):
    """A call to an editor or the scorer that ended with a gRPC status instead of a result:
    `code` (grpc.StatusCode; `code_name` its name), `message` (the status details), `retryable`."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @property
    def details(self) -> str:
        return self.message

    @property
    def code_name(self) -> str:
        return self.code.name

    @property
    def retryable(self) -> bool:
        # RESOURCE_EXHAUSTED is both "queue full" (retry) and "message too large" (never).
        if self.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "message" in self.message.lower():
            return False
        return self.code in RETRYABLE_CODES


@contextmanager
def service_errors() -> Iterator[None]:
    """Around a call: its grpc.RpcError becomes a ServiceError."""
    try:
        yield
    except grpc.RpcError as exc:
        raise ServiceError(exc.code(), exc.details() or "") from None


class ServiceStream:
    """A response stream whose grpc.RpcError becomes a ServiceError; cancel() cancels the call."""

    def __init__(self, call):
        self._call = call

    def __iter__(self) -> "ServiceStream":
        return self

    def __next__(self):
        with service_errors():
            return next(self._call)

    def cancel(self) -> None:
        self._call.cancel()


@dataclass
class ClientTls:
    ca_file: str
    cert_file: str | None = None  # client certificate for mutual TLS
    key_file: str | None = None
    server_name: str | None = None  # override when the address is not the certificate's name

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path):
            with open(path, "rb") as f:
                return f.read()

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca_file),
            private_key=read(self.key_file) if self.key_file else None,
            certificate_chain=read(self.cert_file) if self.cert_file else None,
        )


def make_channel(
    address: str, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, tls: ClientTls | None = None
) -> grpc.Channel:
    options = channel_options(max_message_bytes)
    if tls is None:
        return grpc.insecure_channel(address, options=options)
    if tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return grpc.secure_channel(address, tls.credentials(), options=options)


def health_status(channel: grpc.Channel, service: str = "", timeout: float = 2.0) -> str:
    """'SERVING', 'NOT_SERVING', 'UNKNOWN', or the gRPC error code name when unreachable."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    except grpc.RpcError as exc:
        return exc.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)


def wait_serving(channel: grpc.Channel, timeout: float, *, service: str = "", alive=None) -> None:
    """Block until health says SERVING; `alive()` returning False (process died) aborts early."""
    deadline = time.monotonic() + timeout
    last = "UNKNOWN"
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"service exited before becoming healthy (last health: {last})")
        last = health_status(channel, service, timeout=1.0)
        if last == "SERVING":
            return
        time.sleep(0.05)  # start-up times are reported: poll finely (a check costs well under 1 ms)
    raise TimeoutError(f"service not SERVING after {timeout:.0f}s (last health: {last})")


class ServiceClient:
    """What both clients share: a channel to one service (size limits, optional TLS), its health,
    closing (also as a context manager). Subclasses add their stub and calls."""

    def __init__(self, address: str, tls: ClientTls | None = None, *,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        self.address = address
        self.channel = make_channel(address, max_message_bytes=max_message_bytes, tls=tls)

    def health(self, timeout: float = 2.0) -> str:
        """'SERVING', 'NOT_SERVING' (loading or draining), or a gRPC code name when unreachable."""
        return health_status(self.channel, timeout=timeout)

    def wait_serving(self, timeout: float = 600.0) -> None:
        wait_serving(self.channel, timeout)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
