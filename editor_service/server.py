"""The editor's gRPC adapter: messages in and out, one worker thread that owns the pipeline.

The pipeline (pipeline.py) knows nothing of gRPC; domain errors become status codes in
editfleet_common's ErrorInterceptor. Each Edit call gets a queue of its own between the worker
thread and the handler's generator, so progress is sent as each denoise step finishes.
"""

from __future__ import annotations

import collections
import json
import logging
import queue
import threading
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Callable, Iterator

import numpy as np

from editfleet.v1 import editor_pb2, editor_pb2_grpc

from editfleet_common.errors import Cancelled, NotReady, Overloaded
from editfleet_common.identity import identity_to_proto
from editfleet_common.metrics import EditorMetrics, status_of

if TYPE_CHECKING:  # pipeline.py imports torch: only the loading thread pays for that
    from editfleet_common.service import ServiceSpec

    from .pipeline import EditOutput, EditPipeline, EditRequest, PreparedEdit

log = logging.getLogger(__name__)

SERVICE_NAME = editor_pb2.DESCRIPTOR.services_by_name["Editor"].full_name


class Job:
    """One accepted edit: its events flow to the handler through `events`."""

    def __init__(self, prepared: PreparedEdit):
        self.prepared = prepared
        self.events: queue.Queue = queue.Queue()
        self.cancelled = threading.Event()
        self.enqueued_at = time.perf_counter()

    @property
    def label(self) -> str:
        return self.prepared.request.sample_id or "-"


class EditWorker:
    """Runs edits one at a time on the device; at most `max_queue` more wait their turn."""

    def __init__(self, max_queue: int, metrics: EditorMetrics | None = None):
        self.max_queue = max_queue
        self.metrics = metrics if metrics is not None else EditorMetrics()
        self.pipeline: EditPipeline | None = None
        self._cv = threading.Condition()
        self._waiting: collections.deque[Job] = collections.deque()
        self._running: Job | None = None
        self._draining = False
        self._thread = threading.Thread(target=self._loop, name="edit-worker", daemon=True)
        self.metrics.watch_worker(lambda: len(self._waiting), lambda: len(self._waiting) + (self._running is not None))

    @property
    def ready(self) -> bool:
        return self.pipeline is not None and self._thread.is_alive()

    def start(self, pipeline: EditPipeline) -> None:
        self.pipeline = pipeline
        self._thread.start()

    def submit(self, prepared: PreparedEdit) -> Job:
        job = Job(prepared)
        with self._cv:
            if self._draining:
                raise NotReady("editor is shutting down")
            busy = len(self._waiting) + (self._running is not None)
            if busy >= self.max_queue + 1:
                raise Overloaded(
                    f"editor busy: 1 edit running and {len(self._waiting)} waiting (max queue {self.max_queue})"
                )
            self._waiting.append(job)
            self._cv.notify_all()
        return job

    def cancel(self, job: Job) -> None:
        """Called when the RPC ends early: a waiting job is dropped, a running one stops within a step."""
        with self._cv:
            job.cancelled.set()
            if job in self._waiting:
                self._waiting.remove(job)
                log.info("edit %s: cancelled while waiting; dropped without running", job.label)
                self._cv.notify_all()
        job.events.put(("error", Cancelled("cancelled by the client")))

    def drain(self, timeout: float) -> bool:
        """Refuse new work and wait (up to timeout) for accepted edits to finish."""
        deadline = time.monotonic() + timeout
        with self._cv:
            self._draining = True
            while self._waiting or self._running is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
        return True

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._waiting:
                    self._cv.wait()
                job = self._waiting.popleft()
                self._running = job
            try:
                self._run(job)
            finally:
                with self._cv:
                    self._running = None
                    self._cv.notify_all()

    def _run(self, job: Job) -> None:
        queue_s = time.perf_counter() - job.enqueued_at
        steps = job.prepared.steps
        self.metrics.queue_wait_seconds.observe(queue_s)

        def on_step(step: int, total: int, elapsed: float) -> None:
            self.metrics.denoise_steps.inc()
            job.events.put(("progress", (step, total, elapsed)))

        try:
            output = self.pipeline.edit(job.prepared, on_step, job.cancelled.is_set, queue_s=queue_s)
        except Cancelled as exc:
            log.info("edit %s: %s", job.label, exc)
            job.events.put(("error", exc))
        except Exception as exc:  # noqa: BLE001 - the handler turns it into a status code
            log.warning("edit %s failed: %s: %s", job.label, type(exc).__name__, exc)
            job.events.put(("error", exc))
        else:
            self.metrics.edit_seconds.observe(output.timings.run_s)
            log.info(
                "edit %s: %d steps, seed %d, %dx%d, queue %.2fs run %.2fs",
                job.label, steps, output.seed, output.width, output.height, queue_s, output.timings.run_s,
            )
            job.events.put(("result", output))


class EditorServicer(editor_pb2_grpc.EditorServicer):
    def __init__(self, worker: EditWorker, *, max_message_bytes: int):
        self.worker = worker
        self.max_message_bytes = max_message_bytes

    def _pipeline(self) -> EditPipeline:
        if not self.worker.ready:
            raise NotReady("editor is loading its model")
        return self.worker.pipeline

    def Edit(self, request: editor_pb2.EditRequest, context) -> Iterator[editor_pb2.EditEvent]:
        # Counted before the client can see the outcome: OK as the result is sent (a client that reads
        # its result and then scrapes finds it counted), a failure before its status is sent.
        edits = self.worker.metrics.edits
        finished = False
        try:
            for event in self._edit(request, context):
                if event.HasField("result"):
                    edits.labels(status="OK").inc()
                    finished = True
                yield event
        except BaseException as exc:  # GeneratorExit: the client went away mid-stream
            if not finished:
                edits.labels(status="CANCELLED" if isinstance(exc, GeneratorExit) else status_of(exc)).inc()
            raise

    def _edit(self, request: editor_pb2.EditRequest, context) -> Iterator[editor_pb2.EditEvent]:
        pipeline = self._pipeline()
        # Checked (each image from its header) and admitted before any pixel is decoded: a refused
        # request costs no decode, and an admitted one waits encoded; the worker decodes it in its turn.
        prepared = pipeline.prepare(request_from_proto(request), decode=False)
        job = self.worker.submit(prepared)
        if not context.add_callback(lambda: self.worker.cancel(job)):
            self.worker.cancel(job)  # the call already ended (cancelled or past its deadline)
        while True:
            kind, payload = job.events.get()
            if kind == "progress":
                step, total, elapsed = payload
                yield editor_pb2.EditEvent(
                    progress=editor_pb2.EditProgress(step=step, total_steps=total, elapsed_s=elapsed)
                )
            elif kind == "result":
                yield editor_pb2.EditEvent(result=result_to_proto(payload))
                return
            else:
                raise payload

    def GetInfo(self, request, context) -> editor_pb2.EditorInfo:
        pipeline = self._pipeline()
        defaults = pipeline.defaults
        return editor_pb2.EditorInfo(
            model=identity_to_proto(pipeline.identity),
            defaults=editor_pb2.EditDefaults(
                num_inference_steps=defaults.num_inference_steps,
                guidance_scale=defaults.guidance_scale,
                negative_prompt=defaults.negative_prompt,
                min_steps=defaults.min_steps,
                max_steps=defaults.max_steps,
            ),
            max_queue=self.worker.max_queue,
            max_input_pixels=pipeline.max_input_pixels,
            max_message_bytes=self.max_message_bytes,
            call_parameters=pipeline.call_parameters,
            max_images=pipeline.max_images,
        )


# ------------------------------------------------------------------ conversions


def request_from_proto(msg: editor_pb2.EditRequest) -> EditRequest:
    from .pipeline import EditRequest

    return EditRequest(
        instruction=msg.instruction,
        image=msg.source_image,
        sample_id=msg.sample_id,
        negative_prompt=msg.negative_prompt if msg.HasField("negative_prompt") else None,
        num_inference_steps=msg.num_inference_steps,
        # proto floats are float32: take the shortest decimal that round-trips (what the client
        # wrote, 0.1 rather than 0.10000000149...), so call arguments and records read naturally
        guidance_scale=float(str(np.float32(msg.guidance_scale))) if msg.HasField("guidance_scale") else None,
        seed=msg.seed if msg.HasField("seed") else None,
        width=msg.width,
        height=msg.height,
        extras=dict(msg.extras),
        images=list(msg.images),
    )


def result_to_proto(out: EditOutput) -> editor_pb2.EditResult:
    return editor_pb2.EditResult(
        sample_id=out.sample_id,
        image_png=out.image_png,
        width=out.width,
        height=out.height,
        seed=out.seed,
        num_inference_steps=out.num_inference_steps,
        timings=editor_pb2.EditTimings(**asdict(out.timings)),
        model=identity_to_proto(out.model),
        call_arguments=out.call_arguments,
    )


# ------------------------------------------------------------------ process


def service_spec(load: Callable[[], EditPipeline], *, max_queue: int, max_message_bytes: int) -> "ServiceSpec":
    """The editor in the service frame (editfleet_common.service): `load` builds the pipeline on the
    frame's loading thread (torch is imported there, so the port answers health checks at once)."""
    from editfleet_common.service import ServiceSpec

    worker = EditWorker(max_queue)  # its metrics: served on --metrics-port

    def warm_up(pipeline: EditPipeline) -> None:
        started = time.perf_counter()
        pipeline.warm_up()
        log.info("warm-up edit in %.1fs; model %s", time.perf_counter() - started, json.dumps(asdict(pipeline.identity)))

    def drain(grace_s: float) -> None:
        finished = worker.drain(grace_s)
        log.info("drained: %s", "all accepted edits finished" if finished else "grace period ran out")

    return ServiceSpec(
        name=SERVICE_NAME,
        servicer=EditorServicer(worker, max_message_bytes=max_message_bytes),
        register=editor_pb2_grpc.add_EditorServicer_to_server,
        load=lambda _lifecycle: load(),
        warm_up=warm_up,
        attach=worker.start,
        drain=drain,
        # an Edit holds a handler thread while it waits, runs and sends its result (a client that
        # stops reading keeps it past the edit); capped so that health checks always find a thread
        long_running_methods=[f"/{SERVICE_NAME}/Edit"],
        label="model",
        log_format="%(asctime)s %(levelname)s editor[%(process)d] %(name)s: %(message)s",
        metrics=worker.metrics,
    )
