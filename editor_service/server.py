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

from editfleet.v1 import common_pb2, editor_pb2, editor_pb2_grpc

from editfleet_common.errors import Cancelled, NotReady, Overloaded

if TYPE_CHECKING:  # pipeline.py imports torch: only the loading thread pays for that
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

    def __init__(self, max_queue: int):
        self.max_queue = max_queue
        self.pipeline: EditPipeline | None = None
        self._cv = threading.Condition()
        self._waiting: collections.deque[Job] = collections.deque()
        self._running: Job | None = None
        self._draining = False
        self._thread = threading.Thread(target=self._loop, name="edit-worker", daemon=True)

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

        def on_step(step: int, total: int, elapsed: float) -> None:
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
        pipeline = self._pipeline()
        prepared = pipeline.prepare(request_from_proto(request))
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


def identity_to_proto(identity) -> common_pb2.ModelIdentity:
    return common_pb2.ModelIdentity(**asdict(identity))


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


def serve(
    load: Callable[[], EditPipeline],
    *,
    host: str,
    port: int,
    max_queue: int,
    max_message_bytes: int,
    grace_s: float,
    max_streams: int = 16,
    tls=None,
    on_bound: Callable[[int], None] | None = None,
) -> int:
    """Run until SIGTERM/SIGINT. Health is NOT_SERVING until the model is loaded and warmed up.
    Returns the process exit code: 0 after a graceful stop, 1 when the model failed to load."""
    from editfleet_common.grpc_server import ServiceHost

    worker = EditWorker(max_queue)
    service = ServiceHost(
        service_names=[SERVICE_NAME],
        host=host,
        port=port,
        max_message_bytes=max_message_bytes,
        # an Edit holds a handler thread while it waits, runs and sends its result (a client that
        # stops reading keeps it past the edit); capped so that health checks always find a thread
        long_running_methods=[f"/{SERVICE_NAME}/Edit"],
        max_streams=max_streams,
        grace_s=grace_s,
        tls=tls,
    )
    service.add(
        editor_pb2_grpc.add_EditorServicer_to_server,
        EditorServicer(worker, max_message_bytes=max_message_bytes),
    )
    service.start()
    log.info("listening on %s:%d (NOT_SERVING while the model loads)", host, service.port)
    if on_bound is not None:
        on_bound(service.port)

    def drain() -> None:
        if worker.pipeline is not None:
            finished = worker.drain(grace_s)
            log.info("drained: %s", "all accepted edits finished" if finished else "grace period ran out")

    service.install_signal_handlers(on_stop=drain)
    failure: list[BaseException] = []

    def load_and_warm_up() -> None:
        try:
            pipeline = load()
            started = time.perf_counter()
            pipeline.warm_up()
            log.info("warm-up edit in %.1fs; model %s", time.perf_counter() - started, json.dumps(asdict(pipeline.identity)))
        except BaseException as exc:  # noqa: BLE001 - reported, then the process exits non-zero
            from editfleet_common.errors import EditfleetError

            from .adapters import AdapterError

            if isinstance(exc, (AdapterError, EditfleetError)):  # a bad LoRA, model or setting: said in one line
                log.error("model failed to load: %s", exc)
            else:
                log.exception("model failed to load")
            failure.append(exc)
            threading.Thread(target=service.stop, daemon=True).start()
            return
        worker.start(pipeline)
        service.set_serving(True)
        log.info("SERVING")

    threading.Thread(target=load_and_warm_up, name="model-load", daemon=True).start()
    service.wait()
    log.info("stopped")
    return 1 if failure else 0
