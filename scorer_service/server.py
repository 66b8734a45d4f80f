"""The gRPC adapter: converts messages and codes; the judge and the batcher do the work.

Score        validate -> batcher -> result; bad input raises InvalidInput -> INVALID_ARGUMENT
             (the interceptor in editfleet_common.grpc_server maps it), a full queue Overloaded ->
             RESOURCE_EXHAUSTED.
ScoreStream  requests are read on a thread of their own and decoded (PNG -> image, `prepare`) on a
             shared pool of decode threads, several at once, so that a burst of requests reaches
             the batcher together instead of one decode after another; each is submitted as soon
             as it is decoded (waiting for queue room: back-pressure). Results are sent as they
             finish, in any order, each tagged with its sample_id. A bad item gets a
             SCORE_STATUS_INVALID result and the stream goes on. A JudgeUnusable (an API that refuses
             the key) ends the stream with its status (UNAUTHENTICATED, ...): no sample is failed for it.
GetInfo      model identity, protocols with their hashes, batching settings and statistics.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import grpc
from editfleet.v1 import scorer_pb2, scorer_pb2_grpc

from editfleet_common.errors import Cancelled, EditfleetError, InvalidInput, NotReady
from editfleet_common.identity import identity_to_proto
from editfleet_common.metrics import ScorerMetrics

from .backends.base import JudgeUnusable
from .batcher import Batcher, Completed
from suites.shared.protocol import ProtocolRegistry
from .samples import STATUS_ERROR, STATUS_INVALID, PreparedSample, ScoreInput, ScoreOutcome, prepare
from editfleet_common.statuses import status_code

if TYPE_CHECKING:
    from editfleet_common.service import ServiceSpec

    from .judge import Judge

log = logging.getLogger(__name__)

SERVICE_NAME = "editfleet.v1.Scorer"
# Each holds a handler thread until its results are out (a stream for as long as the client keeps it
# open): ServiceHost caps how many run at once (--max-streams).
LONG_RUNNING_METHODS = (f"/{SERVICE_NAME}/Score", f"/{SERVICE_NAME}/ScoreStream")

def to_input(request: scorer_pb2.ScoreRequest) -> ScoreInput:
    return ScoreInput(
        sample_id=request.sample_id,
        source_image=request.source_image,
        edited_image=request.edited_image,
        instruction=request.instruction,
        category=request.category,
        protocol=request.protocol,
        variables=dict(request.variables),
        more_source_images=list(request.more_source_images),
        reference_images=list(request.reference_images),
    )


def to_result(outcome: ScoreOutcome) -> scorer_pb2.ScoreResult:
    result = scorer_pb2.ScoreResult(
        sample_id=outcome.sample_id,
        status=status_code(outcome.status),
        sub_scores=[scorer_pb2.SubScore(name=n, value=v) for n, v in outcome.sub_scores],
        response=outcome.response,
        raw_responses=outcome.raw_responses,
        protocol=outcome.protocol,
        protocol_hash=outcome.protocol_hash,
        attempts=outcome.attempts,
        batch_size=outcome.batch_size,
        latency_s=outcome.latency_s,
        error=outcome.error,
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        served_model=outcome.served_model,
        system_fingerprint=outcome.system_fingerprint,
    )
    if outcome.score is not None:
        result.score = outcome.score
    if outcome.expected_score is not None:
        result.expected_score = outcome.expected_score
    return result


class ScorerService(scorer_pb2_grpc.ScorerServicer):
    """Registered before the model loads (gRPC takes no services after start); until `attach`
    every call is refused with UNAVAILABLE, matching health NOT_SERVING."""

    def __init__(self, registry: ProtocolRegistry, *, max_message_bytes: int, max_image_pixels: int,
                 decode_threads: int = 4):
        self.registry = registry
        self.max_message_bytes = max_message_bytes
        self.max_image_pixels = max_image_pixels
        self.judge: Judge | None = None
        self.batcher: Batcher[PreparedSample, ScoreOutcome] | None = None
        self.not_ready_reason = "the judge is still loading"
        self.metrics = ScorerMetrics()  # served on --metrics-port
        # Image decoding releases the GIL: streams decode several requests at once on these threads.
        self.decode_threads = max(1, decode_threads)
        self._decoder = ThreadPoolExecutor(self.decode_threads, thread_name_prefix="decode")

    def attach(self, judge: Judge, batcher: Batcher[PreparedSample, ScoreOutcome]) -> None:
        self.judge, self.batcher = judge, batcher

    def _ready(self) -> tuple[Judge, Batcher]:
        if self.judge is None or self.batcher is None:
            raise NotReady(f"{self.not_ready_reason}; wait for health SERVING")
        return self.judge, self.batcher

    def _result(self, outcome: ScoreOutcome) -> scorer_pb2.ScoreResult:
        self.metrics.samples.labels(status=outcome.status).inc()
        return to_result(outcome)

    def _prepare(self, request: scorer_pb2.ScoreRequest) -> PreparedSample:
        return prepare(to_input(request), self.registry, max_image_pixels=self.max_image_pixels)

    @staticmethod
    def _finish(completed: Completed, submitted: float) -> ScoreOutcome:
        outcome: ScoreOutcome = completed.value
        outcome.batch_size = completed.batch_size
        outcome.latency_s = time.monotonic() - submitted
        return outcome

    def Score(self, request, context):
        _, batcher = self._ready()
        submitted = time.monotonic()
        sample = self._prepare(request)
        future = batcher.submit(sample)
        # a caller that hangs up frees its place in the queue; one that went away (cancelled, past
        # its deadline) while its images were decoding is dropped before it reaches the device
        if not context.add_callback(future.cancel):
            future.cancel()
        try:
            completed = future.result()
        except CancelledError:
            raise Cancelled("the call was cancelled before its batch ran") from None
        return self._result(self._finish(completed, submitted))

    def ScoreStream(self, request_iterator, context):
        _, batcher = self._ready()
        results: queue.Queue = queue.Queue()
        pending = 0  # items submitted or answered but not yet sent; guarded by `lock`
        lock = threading.Lock()
        reader_done = threading.Event()
        futures = []

        def deliver(outcome: ScoreOutcome):
            results.put(outcome)

        fatal: list[BaseException] = []  # JudgeUnusable: the stream ends with its status

        def on_done(future, sample_id, protocol, submitted):
            if future.cancelled():
                return
            exc = future.exception()
            if isinstance(exc, JudgeUnusable):  # e.g. an API refusing the key: every sample would fail
                fatal.append(exc)
                results.put(None)  # wake the sender: it ends the stream with that status
                return
            if exc is not None:
                deliver(ScoreOutcome(sample_id, STATUS_ERROR, protocol=protocol.name,
                                     protocol_hash=protocol.sha256, error=f"{type(exc).__name__}: {exc}"))
            else:
                deliver(self._finish(future.result(), submitted))

        # requests of this stream being decoded or waiting for queue room: bounds what is read
        # ahead of the batcher (back-pressure reaches the client), while keeping the decoders busy
        window = threading.BoundedSemaphore(2 * self.decode_threads)
        ended = threading.Event()  # the call was cancelled or finished

        def admit(request, submitted):
            """On a decode thread: validate and decode, then queue for the device."""
            try:
                try:
                    sample = self._prepare(request)
                except InvalidInput as exc:
                    deliver(ScoreOutcome(request.sample_id, STATUS_INVALID, protocol=request.protocol,
                                         error=str(exc)))
                    return
                if ended.is_set():
                    return
                try:
                    # wait for room: a stream slows down instead of being refused
                    future = batcher.submit(sample, block=True)
                except EditfleetError as exc:
                    deliver(ScoreOutcome(request.sample_id, STATUS_ERROR, protocol=sample.protocol.name,
                                         protocol_hash=sample.protocol.sha256, error=str(exc)))
                    return
                with lock:
                    futures.append(future)
                if ended.is_set():
                    future.cancel()
                future.add_done_callback(
                    lambda f, sid=sample.sample_id, p=sample.protocol, t=submitted: on_done(f, sid, p, t)
                )
            except Exception as exc:  # noqa: BLE001 - every request read gets exactly one result
                log.exception("admitting sample %s failed", request.sample_id)
                deliver(ScoreOutcome(request.sample_id, STATUS_ERROR, protocol=request.protocol,
                                     error=f"{type(exc).__name__}: {exc}"))
            finally:
                window.release()

        def read():
            nonlocal pending
            try:
                for request in request_iterator:
                    submitted = time.monotonic()
                    with lock:
                        pending += 1
                    window.acquire()
                    self._decoder.submit(admit, request, submitted)
            except grpc.RpcError:
                pass  # the client went away: the on-cancel callback cleans up
            except Exception:  # noqa: BLE001 - keep the stream alive long enough to end cleanly
                log.exception("reading the request stream failed")
            finally:
                reader_done.set()
                results.put(None)  # wake the sender to re-check the end condition

        def cancel_all():
            ended.set()
            with lock:
                for future in futures:
                    future.cancel()
            results.put(None)  # wake the sender so it sees the call has ended

        if not context.add_callback(cancel_all):
            cancel_all()  # the call already ended
        threading.Thread(target=read, name="score-stream-reader", daemon=True).start()
        sent = 0
        while True:
            item = results.get()
            if fatal:
                cancel_all()
                raise fatal[0]  # the interceptor maps it to its status code
            if item is not None:
                sent += 1
                yield self._result(item)
            with lock:
                finished = reader_done.is_set() and sent == pending
            if finished:
                return
            if not context.is_active():
                return

    def GetInfo(self, request, context):
        judge, batcher = self._ready()
        identity = judge.identity
        stats = batcher.stats()
        return scorer_pb2.ScorerInfo(
            model=identity_to_proto(identity),
            protocols=[
                scorer_pb2.ProtocolInfo(name=p.name, sha256=p.sha256, description=p.description, variables=p.variables)
                for p in (self.registry.protocols[n] for n in self.registry.names())
            ],
            default_protocol=self.registry.default,
            max_batch_size=batcher.max_batch,
            max_wait_s=batcher.max_wait_s,
            batch_stats=scorer_pb2.BatchStats(
                batches=stats["batches"],
                samples=stats["samples"],
                batch_size_counts=stats["batch_size_counts"],
            ),
            max_message_bytes=self.max_message_bytes,
        )


# ------------------------------------------------------------------ process


def service_spec(args, registry: ProtocolRegistry, *, load) -> "ServiceSpec":
    """The scorer in the service frame (editfleet_common.service): `load(lifecycle, service)` gives
    the judge on the frame's loading thread; it is warmed up, then batched and served."""
    from editfleet_common.service import ServiceSpec, StartFailed

    from .samples import warmup_sample

    service = ScorerService(registry, max_message_bytes=args.max_message_bytes,
                            max_image_pixels=args.max_input_pixels, decode_threads=args.decode_threads)
    batchers: list[Batcher] = []

    def warm_up(judge: Judge) -> None:
        if args.no_warmup:
            return
        try:
            outcome = judge.warm_up(warmup_sample(registry))
        except JudgeUnusable as exc:  # e.g. an API that refuses the key: one line, before any sample
            raise StartFailed(str(exc)) from None
        if outcome.status == STATUS_ERROR:
            raise StartFailed(f"warm-up batch failed: {outcome.error}")

    def attach(judge: Judge) -> None:
        def score(samples: list[PreparedSample]) -> list[ScoreOutcome]:
            started = time.monotonic()
            outcomes = judge.score(samples)
            service.metrics.batch(len(samples), time.monotonic() - started)
            return outcomes

        api = getattr(args, "backend", "transformers") == "openai"
        # an API judge: each sample its own batch, up to --max-concurrency at once (a slow or retried
        # request holds up no other, and no answered sample is asked again when another one fails)
        batcher = Batcher(score, max_batch=1 if api else args.max_batch,
                          max_wait_s=0.0 if api else args.max_wait_ms / 1000.0,
                          max_queue=args.max_queue, name="judge-batches", max_in_flight=judge.batches_in_flight,
                          ready_for_next=judge.ready_for_next).start()
        batchers.append(batcher)
        service.metrics.watch(lambda: batcher.queued, lambda: getattr(judge.backend, "generated_tokens", 0))
        service.attach(judge, batcher)

    def after_stop() -> None:
        for batcher in batchers:
            batcher.stop(timeout=args.grace)

    return ServiceSpec(
        name=SERVICE_NAME,
        servicer=service,
        register=scorer_pb2_grpc.add_ScorerServicer_to_server,
        load=lambda lifecycle: load(lifecycle, service),
        warm_up=warm_up,
        attach=attach,
        after_stop=after_stop,
        long_running_methods=LONG_RUNNING_METHODS,
        label="judge",
        metrics=service.metrics,
        serving_message=lambda lifecycle: (
            f"SERVING on port {lifecycle.host.port}: protocols {', '.join(registry.names())}, "
            + (f"judge {args.model} at {urlparse(args.base_url).netloc.rpartition('@')[2]}, "
               f"{args.max_concurrency} request(s) at once"
               if getattr(args, "backend", "transformers") == "openai" else
               f"max batch {args.max_batch}, max wait {args.max_wait_ms:.0f} ms")),
    )
