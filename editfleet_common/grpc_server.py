"""The gRPC frame both services share: options, health, reflection, the error interceptor,
a cap on long-running calls, TLS, and graceful shutdown on SIGTERM.

Handlers stay thin: they convert messages and let domain exceptions (errors.py) propagate;
`ErrorInterceptor` turns them into status codes.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from .errors import EditfleetError, Overloaded
from .ports import PortUnavailable, check_free

log = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# Handler threads beyond --max-streams: health checks (probes, wait_serving), reflection, GetInfo and
# the calls refused at the cap always find one free, however many long calls are open.
RESERVED_HANDLER_THREADS = 8
# Streams that last as long as their client keeps them (dashboards, grpcurl sessions left open):
# capped at half the reserve by ServiceHost. Watch holds a thread here because the interceptors'
# wrapping hides the servicer's non-blocking flag from grpcio.
OPEN_ENDED_METHODS = (
    f"/{health.SERVICE_NAME}/Watch",
    f"/{reflection.SERVICE_NAME}/ServerReflectionInfo",
)


def channel_options(max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    """Options for both ends: the size limit must be raised on server and client alike."""
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
    ]


def _status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, EditfleetError):
        return grpc.StatusCode[exc.grpc_code], str(exc)
    return grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"


def _abort(context: grpc.ServicerContext, exc: BaseException):
    code, message = _status_for(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.exception("unhandled error in handler")
    context.abort(code, message)


class ErrorInterceptor(grpc.ServerInterceptor):
    """Map domain exceptions to gRPC status codes for every handler kind, streaming included."""

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None

        def wrap_unary(fn):
            def wrapped(request_or_iterator, context):
                try:
                    return fn(request_or_iterator, context)
                except EditfleetError as exc:
                    _abort(context, exc)
                except Exception as exc:  # noqa: BLE001 - becomes INTERNAL, never a traceback to the client
                    if _is_abort(exc, context):
                        raise
                    _abort(context, exc)

            return wrapped

        def wrap_stream(fn):
            def wrapped(request_or_iterator, context):
                try:
                    yield from fn(request_or_iterator, context)
                except EditfleetError as exc:
                    _abort(context, exc)
                except Exception as exc:  # noqa: BLE001
                    if _is_abort(exc, context):
                        raise
                    _abort(context, exc)

            return wrapped

        return _rewrapped(handler, wrap_unary, wrap_stream)


def _rewrapped(handler: grpc.RpcMethodHandler, wrap_unary, wrap_stream) -> grpc.RpcMethodHandler:
    """The handler with its behaviour wrapped: `wrap_unary` for a unary response, `wrap_stream` for a
    streamed one."""
    for kind, wrap in (("unary_unary", wrap_unary), ("stream_unary", wrap_unary),
                       ("unary_stream", wrap_stream), ("stream_stream", wrap_stream)):
        behaviour = getattr(handler, kind)
        if behaviour:
            return handler._replace(**{kind: wrap(behaviour)})
    return handler


def _is_abort(exc: BaseException, context: grpc.ServicerContext) -> bool:
    # context.abort() records the code on the context, then raises a bare `Exception()` (grpcio's
    # _server.py); let it through so that the handler's own code is kept.
    if type(exc).__module__.startswith("grpc"):
        return True
    return type(exc) is Exception and not exc.args and context.code() is not None


class StreamLimitInterceptor(grpc.ServerInterceptor):
    """At most `limit` of the long-running methods (full names, "/pkg.Service/Method") open at once.

    Each such call holds a handler thread for its whole life; a call over the limit raises
    Overloaded (RESOURCE_EXHAUSTED through ErrorInterceptor, which must wrap this one) instead of
    queueing for a thread in front of the health checks. A slot is held until the handler returns,
    not merely until the RPC ends: a handler still unwinding after a cancel still holds its thread.
    `limit_hint` ends the refusal's message ({limit} is filled in).
    """

    def __init__(self, methods: Iterable[str], limit: int, limit_hint: str = "the limit is --max-streams {limit}"):
        if limit < 1:
            raise ValueError(f"max streams must be >= 1, got {limit}")
        self.methods = frozenset(methods)
        self.limit = limit
        self.limit_hint = limit_hint
        self._open = 0
        self._lock = threading.Lock()
        names = sorted({m.rsplit("/", 1)[-1] for m in self.methods})
        self._what = "/".join(names) + " calls" if names else "calls"

    def _acquire(self) -> None:
        with self._lock:
            if self._open >= self.limit:
                raise Overloaded(f"{self._open} {self._what} already open; " + self.limit_hint.format(limit=self.limit))
            self._open += 1

    def _release(self) -> None:
        with self._lock:
            self._open -= 1

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method not in self.methods:
            return handler

        def limit_unary(fn):
            def limited(request_or_iterator, context):
                self._acquire()
                try:
                    return fn(request_or_iterator, context)
                finally:
                    self._release()

            return limited

        def limit_stream(fn):
            def limited(request_or_iterator, context):
                self._acquire()  # on the first next(): in the handler thread, like the body
                try:
                    yield from fn(request_or_iterator, context)
                finally:
                    self._release()

            return limited

        return _rewrapped(handler, limit_unary, limit_stream)


@dataclass
class TlsConfig:
    """Optional TLS; with client_ca set, clients must present a certificate signed by it (mTLS)."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None

    def server_credentials(self) -> grpc.ServerCredentials:
        with open(self.cert_file, "rb") as f:
            cert = f.read()
        with open(self.key_file, "rb") as f:
            key = f.read()
        ca = None
        if self.client_ca_file:
            with open(self.client_ca_file, "rb") as f:
                ca = f.read()
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
        )


class ServiceHost:
    """A grpc server with health + reflection that shuts down gracefully on SIGTERM/SIGINT.

    `long_running_methods` (full names) hold a handler thread for their whole life (streams, calls
    that wait for a device); at most `max_streams` of them run at once, and the pool has
    RESERVED_HANDLER_THREADS more threads, so health answers even when every slot is taken.
    The open-ended streams of health (Watch) and reflection live as long as their clients keep them,
    each on one of those reserved threads: at most half of the reserve may hold them, so that unary
    Check and GetInfo always find a thread.
    The port is bound here, without SO_REUSEPORT: one another process holds (another service, any
    listening socket) raises PortUnavailable with a one-line reason (ports.py); port 0 picks a free
    one (`self.port` says which).
    """

    def __init__(
        self,
        *,
        service_names: Sequence[str],
        host: str = "127.0.0.1",
        port: int = 0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        long_running_methods: Iterable[str] = (),
        max_streams: int = 16,
        max_workers: int | None = None,
        grace_s: float = 30.0,
        tls: TlsConfig | None = None,
        interceptors: Iterable[grpc.ServerInterceptor] = (),
    ):
        self.service_names = list(service_names)
        self.grace_s = grace_s
        self.stream_limit = StreamLimitInterceptor(long_running_methods, max_streams)
        threads = max_workers if max_workers is not None else max_streams + RESERVED_HANDLER_THREADS
        if self.stream_limit.methods and threads <= max_streams:
            raise ValueError(f"{threads} handler threads for up to {max_streams} long calls: none left for health")
        reserved = threads - max_streams if self.stream_limit.methods else threads
        self.open_stream_limit = StreamLimitInterceptor(
            OPEN_ENDED_METHODS, max(1, reserved // 2),
            "the limit is {limit} (health Watch and reflection streams), so that Health/Check always finds a "
            "handler thread; poll Check instead of holding a Watch open")
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"),
            # ErrorInterceptor first: it wraps the others, so their exceptions become status codes too
            interceptors=[ErrorInterceptor(), self.stream_limit, self.open_stream_limit, *interceptors],
            # no SO_REUSEPORT: with it (gRPC's default) a second server on a served port started and the
            # kernel split the connections between the two (ports.py)
            options=[*channel_options(max_message_bytes), ("grpc.so_reuseport", 0)],
        )
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        address = f"{host}:{port}"
        check_free(host, port)  # a taken port: one line, before gRPC logs its own error
        try:
            if tls is not None:
                self.port = self.server.add_secure_port(address, tls.server_credentials())
            else:
                self.port = self.server.add_insecure_port(address)
        except RuntimeError:  # "Failed to bind to address ..." (grpcio >= 1.46; older ones returned 0)
            self.port = 0
        if self.port == 0:
            check_free(host, port)  # taken since the probe
            raise PortUnavailable(f"cannot listen on {address} (gRPC could not bind it): check --host and --port")
        self._stopped = threading.Event()
        self._stop_lock = threading.Lock()
        self._stopping = False
        self.set_serving(False)

    def add(self, register: Callable[[object, grpc.Server], None], servicer: object) -> None:
        register(servicer, self.server)

    def start(self) -> None:
        names = [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, self.server)
        self.server.start()

    def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        self.health.set("", status)
        for name in self.service_names:
            self.health.set(name, status)

    def install_signal_handlers(self, on_stop: Callable[[], None] | None = None) -> None:
        def handler(signum, _frame):
            log.info("signal %s: draining (grace %.0fs)", signal.Signals(signum).name, self.grace_s)
            threading.Thread(target=self.stop, args=(on_stop,), daemon=True).start()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def stop(self, on_stop: Callable[[], None] | None = None) -> None:
        """Refuse new calls (health NOT_SERVING for good), let running ones finish within grace."""
        with self._stop_lock:  # a second signal during the drain must not start another one
            if self._stopping:
                return
            self._stopping = True
        self.health.enter_graceful_shutdown()
        started = time.monotonic()
        if on_stop is not None:
            on_stop()  # may drain work itself while health answers NOT_SERVING; it spends the grace
        self.server.stop(max(0.0, self.grace_s - (time.monotonic() - started))).wait()
        self._stopped.set()

    @property
    def stopping(self) -> bool:
        """True once stop() has begun (a signal came)."""
        return self._stopping

    @property
    def stopped(self) -> bool:
        """True once stop() has completed."""
        return self._stopped.is_set()

    def wait(self) -> None:
        """Block until stop() has completed (signals stay deliverable while waiting)."""
        while not self._stopped.wait(0.5):
            pass


def exit_now(code: int) -> None:
    """Exit without interpreter teardown: once the server has drained, nothing is left to save, and
    tearing down torch/CUDA state object by object can take seconds that the fleet waits on
    (editors to zero before the judge starts). The driver frees the GPU memory at process exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)
