"""The gRPC adapter: converts messages and codes; the judge and the batcher do the work.

Every request is admitted before work starts (guards.py): its text, ids, image counts and image
headers within the limits, then room in the decoded-image budget, then only the images its questions
show decoded, then (a local judge) its prompts' tokens counted; only then is it queued.

Score        admit -> batcher -> result; bad input raises InvalidInput -> INVALID_ARGUMENT
             (the interceptor in editfleet_common.grpc_server maps it), a full queue or no room in the
             decoded-image budget Overloaded -> RESOURCE_EXHAUSTED.
ScoreStream  requests are read on a thread of their own and decoded (PNG -> image, `prepare`) on a
             shared pool of decode threads, several at once, so that a burst of requests reaches
             the batcher together instead of one decode after another; each is submitted as soon
             as it is decoded (waiting for queue room: back-pressure). Results are sent as they
             finish, in any order, each tagged with its sample_id. A bad item gets a
             SCORE_STATUS_INVALID result and the stream goes on. A JudgeUnusable (an API that refuses
             the key) ends the stream with its status (UNAUTHENTICATED, ...): no sample is failed for it.
             A stream that sends nothing and is owed nothing for --stream-idle-timeout-s is closed
             (status OK), giving its slot back.
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
from .guards import DEFAULT_DECODED_BUDGET_MB, DEFAULT_MAX_PROMPT_TOKENS, MB, HealthWatch, MemoryBudget, limits_from, \
    stall_problem
from suites.shared.protocol import ProtocolRegistry
from .samples import (STATUS_ERROR, STATUS_INVALID, Limits, PreparedSample, ScoreInput, ScoreOutcome, admit,
                      decode)
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
        edited_image_b=request.edited_image_b,
        questions=list(request.questions),
        pair_orders=request.pair_orders,
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
    for verdict in outcome.pairwise:  # pairwise protocols
        orders = []
        for order in verdict.orders:
            message = scorer_pb2.PairOrder(swapped=order.swapped, winner=order.winner, error=order.error,
                                           raw_responses=order.raw_responses)
            for name in ("p_a", "p_b", "p_tie"):
                if getattr(order, name) is not None:
                    setattr(message, name, getattr(order, name))
            orders.append(message)
        result.pairwise.append(scorer_pb2.PairVerdict(question=verdict.question, winner=verdict.winner,
                                                      disagreement=verdict.disagreement, rule=verdict.rule,
                                                      orders=orders))
    return result


class ScorerService(scorer_pb2_grpc.ScorerServicer):
    """Registered before the model loads (gRPC takes no services after start); until `attach`
    every call is refused with UNAVAILABLE, matching health NOT_SERVING."""

    def __init__(self, registry: ProtocolRegistry, *, max_message_bytes: int, max_image_pixels: int,
                 decode_threads: int = 4, limits: Limits | None = None,
                 max_prompt_tokens: int = DEFAULT_MAX_PROMPT_TOKENS,
                 decoded_budget_bytes: int = DEFAULT_DECODED_BUDGET_MB * MB, stream_idle_timeout_s: float = 0.0):
        self.registry = registry
        self.max_message_bytes = max_message_bytes
        self.max_image_pixels = max_image_pixels
        self.limits = limits or Limits(max_image_pixels=max_image_pixels)
        self.max_prompt_tokens = max_prompt_tokens
        self.budget = MemoryBudget(decoded_budget_bytes)
        self.stream_idle_timeout_s = stream_idle_timeout_s
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

    def _prepare(self, request: scorer_pb2.ScoreRequest, *, wait=None) -> PreparedSample:
        """Admit (every bound that needs no decoding), take room in the decoded-image budget (wait:
        see MemoryBudget.acquire), decode the shown images, count the prompts' tokens. The sample
        holds its room until `_let_go(sample)`."""
        admitted = admit(to_input(request), self.registry, self.limits)
        hold = self.budget.acquire(admitted.decoded_bytes, wait=wait)
        try:
            sample = decode(admitted)
            self._check_prompt_tokens(sample)
        except BaseException:
            hold.release()
            raise
        sample.release = hold.release
        return sample

    @staticmethod
    def _let_go(sample: PreparedSample) -> None:
        """The sample's result is out or its call ended: its images go, its budget comes back."""
        sample.images = {}
        if sample.release is not None:
            sample.release()

    def _check_prompt_tokens(self, sample: PreparedSample) -> None:
        count = getattr(self.judge, "prompt_tokens", None)
        tokens = count(sample) if count is not None else None
        if not tokens:
            return
        question, longest = max(tokens.items(), key=lambda item: item[1])
        if longest <= self.max_prompt_tokens:
            return
        texts = sorted(((len(v), k) for k, v in sample.variables.items() if k in sample.protocol.variables),
                       reverse=True)[:2]
        named = ", ".join(f"{'instruction' if k == 'edit_instruction' else f'variables[{k!r}]'} "
                          f"({n} characters)" for n, k in texts)
        raise InvalidInput(f"prompt: question {question!r} comes to {longest} tokens, over the limit of "
                           f"{self.max_prompt_tokens} (--max-prompt-tokens)" + (f"; its longest texts: {named}"
                                                                                if named else ""))

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
        try:
            future = batcher.submit(sample)
        except BaseException:
            self._let_go(sample)
            raise
        future.add_done_callback(lambda _f: self._let_go(sample))
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
        ended = threading.Event()  # the call was cancelled or finished, or closed for idleness
        last_activity = [time.monotonic()]  # a request read or a result sent; guarded by `lock`

        def admit(request, submitted):
            """On a decode thread: validate and decode, then queue for the device."""
            sample = None
            try:
                try:
                    # waits for room in the decoded-image budget while the stream lasts (back-pressure)
                    sample = self._prepare(request, wait=lambda: not ended.is_set())
                except InvalidInput as exc:
                    deliver(ScoreOutcome(request.sample_id, STATUS_INVALID,
                                         protocol=request.protocol[:self.limits.max_id_chars], error=str(exc)))
                    return
                except Cancelled:
                    return  # the stream ended while this one waited for room: nobody to answer
                if ended.is_set():
                    self._let_go(sample)
                    return
                try:
                    # wait for room: a stream slows down instead of being refused
                    future = batcher.submit(sample, block=True)
                except EditfleetError as exc:
                    self._let_go(sample)
                    deliver(ScoreOutcome(request.sample_id, STATUS_ERROR, protocol=sample.protocol.name,
                                         protocol_hash=sample.protocol.sha256, error=str(exc)))
                    return
                future.add_done_callback(lambda _f, s=sample: self._let_go(s))
                with lock:
                    futures.append(future)
                if ended.is_set():
                    future.cancel()
                future.add_done_callback(
                    lambda f, sid=sample.sample_id, p=sample.protocol, t=submitted: on_done(f, sid, p, t)
                )
            except Exception as exc:  # noqa: BLE001 - every request read gets exactly one result
                if sample is not None:
                    self._let_go(sample)
                log.exception("admitting sample %.200r failed", request.sample_id)
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
                        if ended.is_set():
                            break  # closed (idle) or cancelled meanwhile: nobody would answer it
                        pending += 1
                        last_activity[0] = submitted
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
        idle_limit = self.stream_idle_timeout_s
        poll = min(1.0, idle_limit / 4) if idle_limit > 0 else None
        while True:
            try:
                item = results.get(timeout=poll)
            except queue.Empty:
                item = None
            if fatal:
                cancel_all()
                raise fatal[0]  # the interceptor maps it to its status code
            if item is not None:
                sent += 1
                yield self._result(item)
            with lock:
                if item is not None:
                    last_activity[0] = time.monotonic()
                finished = reader_done.is_set() and sent == pending
                idle_s = time.monotonic() - last_activity[0]
                # nothing owed and nothing sent for the limit: close (the reader takes nothing more)
                idle = idle_limit > 0 and not finished and sent == pending and idle_s > idle_limit
                if idle:
                    ended.set()
            if finished:
                return
            if idle:
                log.info("closing a ScoreStream idle for %.0fs (no request, no result owed; "
                         "--stream-idle-timeout-s %g) after %d result(s)", idle_s, idle_limit, sent)
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


def service_spec(args, registry: ProtocolRegistry, *, load, memory_guard=None) -> "ServiceSpec":
    """The scorer in the service frame (editfleet_common.service): `load(lifecycle, service)` gives
    the judge on the frame's loading thread; it is warmed up, then batched and served."""
    from editfleet_common.service import ServiceSpec, StartFailed

    from .samples import warmup_sample

    service = ScorerService(registry, max_message_bytes=args.max_message_bytes,
                            max_image_pixels=args.max_input_pixels, decode_threads=args.decode_threads,
                            limits=limits_from(args),
                            max_prompt_tokens=getattr(args, "max_prompt_tokens", DEFAULT_MAX_PROMPT_TOKENS),
                            decoded_budget_bytes=getattr(args, "decoded_budget_mb", DEFAULT_DECODED_BUDGET_MB) * MB,
                            stream_idle_timeout_s=getattr(args, "stream_idle_timeout_s", 0.0))
    batchers: list[Batcher] = []
    hosts: list = []  # the frame's ServiceHost (its health), learnt from the load's lifecycle
    watches: list[HealthWatch] = []

    def load_judge(lifecycle):
        hosts.append(lifecycle.host)
        return load(lifecycle, service)

    def warm_up(judge: Judge) -> None:
        if args.no_warmup:
            return
        try:
            outcome = judge.warm_up(warmup_sample(registry))
        except JudgeUnusable as exc:  # e.g. an API that refuses the key: one line, before any sample
            raise StartFailed(str(exc)) from None
        if outcome.status == STATUS_ERROR:
            from editfleet_common.memory_fit import said_out_of_memory

            if memory_guard is not None and said_out_of_memory(outcome.error or ""):  # one line with the remedy
                memory_guard.refuse("warming up (one sample)", outcome.error)
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
        stuck_after_s = getattr(args, "stuck_after_s", 0.0)
        if hosts:  # health tells the truth: NOT_SERVING while the worker is stuck, for good once it is dead
            watches.append(HealthWatch(hosts[0], lambda: stall_problem(batcher, stuck_after_s),
                                       interval_s=min(1.0, stuck_after_s / 4) if stuck_after_s > 0 else 1.0).start())

    def after_stop() -> None:
        for watch in watches:
            watch.stop()
        for batcher in batchers:
            batcher.stop(timeout=args.grace)

    return ServiceSpec(
        name=SERVICE_NAME,
        servicer=service,
        register=scorer_pb2_grpc.add_ScorerServicer_to_server,
        load=load_judge,
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
