"""Prometheus metrics of both services (prometheus_client), served over plain HTTP on --metrics-port
(0 = off), apart from gRPC: `GET http://HOST:PORT/metrics`.

Both services:
  editfleet_model_load_seconds                 gauge   the model's load (start of load -> loaded)
  editfleet_build_info{service,model,content_hash,load_format,dtype,speed_mode,decode}  what runs
  editfleet_device_memory_allocated_bytes      gauge   torch's allocated / reserved device memory
  editfleet_device_memory_reserved_bytes               (0 off CUDA)
Editor (EditorMetrics):
  editfleet_editor_edits_total{status}         counter  Edit calls by final status: OK or the gRPC code
  editfleet_editor_edit_seconds                histogram run time of an edit (on the device)
  editfleet_editor_queue_wait_seconds          histogram time an accepted edit waited for the device
  editfleet_editor_denoise_steps_total         counter  denoise steps completed
  editfleet_editor_queue_depth                 gauge    accepted edits waiting for the device
  editfleet_editor_edits_in_flight             gauge    accepted edits not finished (waiting + running)
Scorer (ScorerMetrics):
  editfleet_scorer_samples_total{status}       counter  samples by result status (OK, PARSE_FAILED, ...)
  editfleet_scorer_batch_size                  histogram samples per judge batch
  editfleet_scorer_queue_depth                 gauge    samples waiting for a batch
  editfleet_scorer_generated_tokens_total      counter  tokens the judge generated
  editfleet_scorer_judge_seconds               histogram judge time of a batch
"""

from __future__ import annotations

import errno
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server
from prometheus_client.core import CounterMetricFamily

from .errors import EditfleetError
from .ports import PortUnavailable, in_use_message

PREFIX = "editfleet_"
# seconds: an edit or a judge batch takes from a fraction of a second (tiny models) to minutes
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192, 256)


def status_of(exc: BaseException | None) -> str:
    """The final status a call ends with: OK, or the gRPC code name its exception becomes."""
    if exc is None:
        return "OK"
    return exc.grpc_code if isinstance(exc, EditfleetError) else "INTERNAL"


class ServiceMetrics:
    """The metrics both services have, in a registry of their own (nothing process-global)."""

    def __init__(self, service: str):
        self.service = service
        self.registry = CollectorRegistry()
        self.model_load_seconds = Gauge(f"{PREFIX}model_load_seconds", "seconds the model took to load",
                                        registry=self.registry)
        self.build = Info(f"{PREFIX}build", "what this service runs", registry=self.registry)
        self.build.info({"service": service})
        allocated = Gauge(f"{PREFIX}device_memory_allocated_bytes", "device memory allocated by torch",
                          registry=self.registry)
        reserved = Gauge(f"{PREFIX}device_memory_reserved_bytes", "device memory reserved by torch's allocator",
                         registry=self.registry)
        self.device: str = "cpu"
        allocated.set_function(lambda: self._cuda_memory("memory_allocated"))
        reserved.set_function(lambda: self._cuda_memory("memory_reserved"))
        self._server = None

    def _cuda_memory(self, which: str) -> float:
        if not self.device.startswith("cuda"):
            return 0.0
        import torch

        return float(getattr(torch.cuda, which)(self.device))

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve /metrics on host:port; a port that cannot be listened on raises PortUnavailable (one line).

        http.server binds with SO_REUSEADDR, which on Linux never lets a second socket listen on a port
        that one already listens on (another service's metrics, any server): the bind fails."""
        try:
            self._server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortUnavailable(in_use_message(host, port, "--metrics-port", what="metrics port")) from None
            raise PortUnavailable(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; "
                                  "check --host and --metrics-port") from None

    def stop_serving(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def model_loaded(self, seconds: float, model) -> None:
        """After the load: its seconds and the identity (`model.identity`) as build info."""
        self.model_load_seconds.set(seconds)
        identity = model.identity
        self.device = identity.device
        self.build.info({
            "service": self.service, "model": identity.model, "content_hash": identity.content_hash,
            "load_format": identity.load_format, "dtype": identity.dtype,
            "speed_mode": identity.runtime.get("speed_mode", ""), "decode": identity.runtime.get("decode", ""),
        })


class EditorMetrics(ServiceMetrics):
    def __init__(self):
        super().__init__("editor")
        r = self.registry
        self.edits = Counter(f"{PREFIX}editor_edits", "Edit calls by final status (OK or the gRPC code)",
                             ["status"], registry=r)
        self.edit_seconds = Histogram(f"{PREFIX}editor_edit_seconds", "run time of an edit on the device",
                                      buckets=LATENCY_BUCKETS, registry=r)
        self.queue_wait_seconds = Histogram(f"{PREFIX}editor_queue_wait_seconds",
                                            "time an accepted edit waited for the device", buckets=LATENCY_BUCKETS,
                                            registry=r)
        self.denoise_steps = Counter(f"{PREFIX}editor_denoise_steps", "denoise steps completed", registry=r)
        self.queue_depth = Gauge(f"{PREFIX}editor_queue_depth", "accepted edits waiting for the device", registry=r)
        self.in_flight = Gauge(f"{PREFIX}editor_edits_in_flight", "accepted edits not finished (waiting + running)",
                               registry=r)

    def watch_worker(self, waiting: Callable[[], int], in_flight: Callable[[], int]) -> None:
        self.queue_depth.set_function(waiting)
        self.in_flight.set_function(in_flight)


class ScorerMetrics(ServiceMetrics):
    def __init__(self):
        super().__init__("scorer")
        r = self.registry
        self.samples = Counter(f"{PREFIX}scorer_samples", "samples by result status", ["status"], registry=r)
        self.batch_size = Histogram(f"{PREFIX}scorer_batch_size", "samples per judge batch", buckets=BATCH_BUCKETS,
                                    registry=r)
        self.judge_seconds = Histogram(f"{PREFIX}scorer_judge_seconds", "judge time of a batch",
                                       buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge(f"{PREFIX}scorer_queue_depth", "samples waiting for a batch", registry=r)
        self._tokens: Callable[[], int] = lambda: 0
        metrics = self

        class _Tokens:  # read from the backend at scrape time: it counts, the metric reports
            def collect(self):
                family = CounterMetricFamily(f"{PREFIX}scorer_generated_tokens", "tokens the judge generated")
                family.add_metric([], metrics._tokens())
                yield family

        r.register(_Tokens())

    def watch(self, queued: Callable[[], int], generated_tokens: Callable[[], int]) -> None:
        self.queue_depth.set_function(queued)
        self._tokens = generated_tokens

    def batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.judge_seconds.observe(seconds)
