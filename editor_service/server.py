"""The editor's core (`EditWorker`: admission, the queue, the worker threads that own the editor) and
its gRPC adapter (`EditorServicer`: messages in and out).

The pipeline (pipeline.py) knows nothing of gRPC; domain errors become status codes in
editfleet_common's ErrorInterceptor. Each edit gets a queue of its own between the worker thread and
the caller, so progress is sent as each denoise step finishes. The OpenAI Images API route
(http_api.py) is a second adapter over the same `EditWorker.begin`: the same checks, limits and queue.

The worker runs `slots` edits at once: 1 for a diffusers pipeline on a device, `max_concurrency`
for an API editor (api_editor/), whose edits are requests in flight to a provider.
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

from editfleet_common.errors import Cancelled, EditfleetError, NotReady, Overloaded
from editfleet_common.identity import identity_to_proto
from editfleet_common.metrics import EditorMetrics, status_of

from .checks import DEFAULT_MAX_ID_CHARS, check_sample_id

if TYPE_CHECKING:  # pipeline.py imports torch: only the loading thread pays for that
    from editfleet_common.service import ServiceSpec

    from .pipeline import EditOutput, EditPipeline, EditRequest, PreparedEdit

log = logging.getLogger(__name__)

SERVICE_NAME = editor_pb2.DESCRIPTOR.services_by_name["Editor"].full_name


class EditorUnusable(EditfleetError):
    """The editor can serve nothing more (an API editor whose key the provider refused): the edit that
    met it is answered UNAVAILABLE (another editor may take it) and the service stops, exit code 1."""

    grpc_code = "UNAVAILABLE"


class Job:
    """One accepted edit: its events flow to the caller through `events`: ("progress", (step, total,
    elapsed_s)), ("partial", (step, PIL image)) where partial images were asked for, then one
    ("result", EditOutput) or ("error", exception)."""

    def __init__(self, prepared: PreparedEdit):
        self.prepared = prepared
        self.events: queue.Queue = queue.Queue()
        self.cancelled = threading.Event()
        self.enqueued_at = time.perf_counter()
        self.finished = False  # its result or error was taken by the caller

    @property
    def label(self) -> str:
        return self.prepared.request.sample_id or "-"


class EditWorker:
    """Runs `slots` edits at once (1 on a device); at most `max_queue` more wait their turn."""

    def __init__(self, max_queue: int, metrics: EditorMetrics | None = None, *, slots: int = 1,
                 max_id_chars: int = DEFAULT_MAX_ID_CHARS):
        self.max_queue = max_queue
        self.max_id_chars = max_id_chars  # --max-id-chars: a longer sample_id is refused before anything else
        self.slots = max(1, slots)
        self.metrics = metrics if metrics is not None else EditorMetrics()
        self.pipeline: EditPipeline | None = None
        self._cv = threading.Condition()
        self._waiting: collections.deque[Job] = collections.deque()
        self._running: set[Job] = set()
        self._draining = False
        # called once with the reason when an edit meets EditorUnusable (the service then stops)
        self.on_unusable: Callable[[str], None] | None = None
        self._unusable: str | None = None
        self._exiting = threading.Event()  # set as an unusable editor's process is about to exit
        self._threads = [threading.Thread(target=self._loop, name=f"edit-worker-{i}", daemon=True)
                         for i in range(self.slots)]
        self.metrics.watch_worker(lambda: len(self._waiting), lambda: len(self._waiting) + len(self._running))

    @property
    def ready(self) -> bool:
        return self.pipeline is not None and all(t.is_alive() for t in self._threads)

    def attach(self, pipeline: EditPipeline) -> None:
        self.pipeline = pipeline
        for thread in self._threads:
            thread.start()

    def editor(self) -> EditPipeline:
        """The loaded editor (a pipeline or an API editor); NotReady while it loads."""
        if self._unusable is not None:
            raise NotReady(f"editor stopping: {self._unusable}")
        if not self.ready:
            raise NotReady("editor is loading its model")
        return self.pipeline

    def begin(self, request: EditRequest) -> Job:
        """Check and admit one edit (the core both adapters call): every check reads no more than each
        image's header; an admitted edit waits encoded and is decoded in its turn."""
        return self.begin_many([request])[0]

    def begin_many(self, requests: list[EditRequest]) -> list[Job]:
        """Several edits (the HTTP route's n > 1) checked, then admitted together or not at all."""
        for request in requests:
            check_sample_id(request.sample_id, self.max_id_chars)
        self.hold_if_unusable()
        editor = self.editor()
        prepared = [editor.prepare(request, decode=False) for request in requests]
        return self.submit_many(prepared)

    def submit(self, prepared: PreparedEdit) -> Job:
        return self.submit_many([prepared])[0]

    def submit_many(self, prepared: list[PreparedEdit]) -> list[Job]:
        jobs = [Job(p) for p in prepared]
        with self._cv:
            if self._draining:
                raise NotReady("editor is shutting down")
            busy = len(self._waiting) + len(self._running)
            if busy + len(jobs) > self.max_queue + self.slots:
                running = len(self._running)
                raise Overloaded(
                    f"editor busy: {running} edit{'' if running == 1 else 's'} running and {len(self._waiting)} "
                    f"waiting (max queue {self.max_queue}" + (f", {self.slots} at once" if self.slots > 1 else "")
                    + ")" + (f"; {len(jobs)} asked at once" if len(jobs) > 1 else "")
                )
            self._waiting.extend(jobs)
            self._cv.notify_all()
        return jobs

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
            while self._waiting or self._running:
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
                self._running.add(job)
            try:
                self._run(job)
            finally:
                with self._cv:
                    self._running.discard(job)
                    self._cv.notify_all()

    def _run(self, job: Job) -> None:
        queue_s = time.perf_counter() - job.enqueued_at
        steps = job.prepared.steps
        self.metrics.queue_wait_seconds.observe(queue_s)

        def on_step(step: int, total: int, elapsed: float) -> None:
            self.metrics.denoise_steps.inc()
            job.events.put(("progress", (step, total, elapsed)))

        def on_preview(step: int, image) -> None:
            job.events.put(("partial", (step, image)))

        try:
            output = self.pipeline.edit(job.prepared, on_step, job.cancelled.is_set, queue_s=queue_s,
                                        on_preview=on_preview if job.prepared.preview_steps else None)
        except Cancelled as exc:
            log.info("edit %s: %s", job.label, exc)
            job.events.put(("error", exc))
        except EditorUnusable as exc:
            log.error("edit %s: %s", job.label, exc)
            job.events.put(("error", exc))
            self._became_unusable(str(exc))
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

    def hold_if_unusable(self, timeout: float = 120.0) -> None:
        """An editor that can serve nothing more (EditorUnusable) answers a call only as its process exits:
        a client sees the editor gone, not an editor that fails call after call (the orchestrator then
        restarts it once, instead of spending the sample's attempts on it)."""
        if self._unusable is not None:
            self._exiting.wait(timeout)
            raise NotReady(f"editor stopped: {self._unusable}")

    def exiting(self) -> None:
        """The process is about to exit: the held calls are answered (UNAVAILABLE)."""
        self._exiting.set()

    @property
    def unusable(self) -> str | None:
        """Why the editor stopped serving (EditorUnusable), or None."""
        return self._unusable

    def _became_unusable(self, reason: str) -> None:
        with self._cv:
            first = self._unusable is None
            self._unusable = self._unusable or reason
            self._draining = True  # nothing new is admitted; what waits is answered as it comes
        if first and self.on_unusable is not None:
            self.on_unusable(reason)


class EditorServicer(editor_pb2_grpc.EditorServicer):
    def __init__(self, worker: EditWorker, *, max_message_bytes: int):
        self.worker = worker
        self.max_message_bytes = max_message_bytes

    def _pipeline(self) -> EditPipeline:
        return self.worker.editor()

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
        # Checked (each image from its header) and admitted before any pixel is decoded: a refused
        # request costs no decode, and an admitted one waits encoded; the worker decodes it in its turn.
        job = self.worker.begin(request_from_proto(request))
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
            elif kind == "error":
                if isinstance(payload, EditorUnusable):
                    self.worker.hold_if_unusable()
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


def service_spec(load: Callable[[], EditPipeline], *, max_queue: int, max_message_bytes: int,
                 worker: EditWorker | None = None, memory_guard=None) -> "ServiceSpec":
    """The editor in the service frame (editfleet_common.service): `load` builds the pipeline (or the
    API editor) on the frame's loading thread (torch is imported there, so the port answers health
    checks at once). `worker`: one made by the caller (its slots; the HTTP route shares it).
    memory_guard: a memory_fit.OutOfMemoryGuard that says the warm-up's out-of-memory error in one line."""
    import sys
    from contextlib import nullcontext

    from editfleet_common.service import ServiceSpec

    worker = worker if worker is not None else EditWorker(max_queue)  # its metrics: served on --metrics-port

    def load_in(lifecycle) -> EditPipeline:
        def unusable(reason: str) -> None:
            # one line as a failed start says it; the edits accepted finish (their results are sent), new
            # calls are held; then the process stops (exit 1) and the held calls are answered as it goes
            print(f"error: {reason}", file=sys.stderr, flush=True)

            def stop() -> None:
                worker.drain(lifecycle.host.grace_s)
                threading.Thread(target=lifecycle.host.stop, daemon=True).start()
                time.sleep(0.2)  # the last results out before the held calls end
                worker.exiting()

            threading.Thread(target=stop, daemon=True).start()

        worker.on_unusable = unusable
        return load()

    def warm_up(pipeline: EditPipeline) -> None:
        started = time.perf_counter()
        with memory_guard.during("warming up (its first edit)") if memory_guard is not None else nullcontext():
            pipeline.warm_up()
        log.info("warm-up edit in %.1fs; model %s", time.perf_counter() - started, json.dumps(asdict(pipeline.identity)))

    def drain(grace_s: float) -> None:
        finished = worker.drain(grace_s)
        log.info("drained: %s", "all accepted edits finished" if finished else "grace period ran out")

    return ServiceSpec(
        name=SERVICE_NAME,
        servicer=EditorServicer(worker, max_message_bytes=max_message_bytes),
        register=editor_pb2_grpc.add_EditorServicer_to_server,
        load=load_in,
        warm_up=warm_up,
        attach=worker.attach,
        drain=drain,
        # an Edit holds a handler thread while it waits, runs and sends its result (a client that
        # stops reading keeps it past the edit); capped so that health checks always find a thread
        long_running_methods=[f"/{SERVICE_NAME}/Edit"],
        label="model",
        log_format="%(asctime)s %(levelname)s editor[%(process)d] %(name)s: %(message)s",
        metrics=worker.metrics,
    )
